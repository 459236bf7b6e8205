//! Draws the gate's operating curves: the share of calls refused against a
//! dependency's true success rate, one curve per preset with its defaults
//! (paused time, one call every 100 ms, 2 000 calls, fixed seeds). Writes
//! `docs/gate_curves.svg` and prints the numbers.
//!
//! ```sh
//! cargo run --example gate_curves
//! ```

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndf::prelude::*;

#[derive(Clone)]
struct Dependency {
    rng: Arc<Mutex<fastrand::Rng>>,
    p: f64,
}

#[pattern]
async fn call_dependency(d: Dependency) -> Result<(), StepError> {
    if d.rng.lock().unwrap().f64() < d.p {
        Ok(())
    } else {
        Err(StepError::msg("dependency failed"))
    }
}

const CALLS: usize = 2000;
const SEEDS: u64 = 3;

/// The share of `CALLS` calls refused at success rate `p`.
async fn refused_share(env: Environment, p: f64) -> f64 {
    let mut refused = 0u32;
    for seed in 0..SEEDS {
        let ndf = Ndf::builder()
            .config(Config::for_environment(env))
            .resource_probe(ndf::IdleProbe)
            .build()
            .unwrap();
        let dependency = Dependency {
            rng: Arc::new(Mutex::new(fastrand::Rng::with_seed(seed))),
            p,
        };
        let flow = sequential!(name = "sim.dependency"; call_dependency);
        let ctx = PatternContext::new("sim");
        for _ in 0..CALLS {
            if let Err(ndf::Error::ConfidenceThreshold { .. }) =
                ndf.run(&flow, dependency.clone(), &ctx).await
            {
                refused += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    f64::from(refused) / (CALLS as f64 * SEEDS as f64)
}

/// One preset's curve: its name, colour, threshold, and (success rate,
/// refused share) points.
type Curve = (&'static str, &'static str, f64, Vec<(f64, f64)>);

/// A line chart of `curves` (x: success rate 0..1, y: refused share 0..1).
fn svg(curves: &[Curve]) -> String {
    let (width, height, left, top, right, bottom) = (680.0, 400.0, 60.0, 30.0, 180.0, 50.0);
    let (pw, ph) = (width - left - right, height - top - bottom);
    let x = |v: f64| left + v * pw;
    let y = |v: f64| top + (1.0 - v) * ph;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="{left}" y="18" font-size="14">Calls refused by the gate against the true success rate (dashed: threshold)</text>"##
    );
    for i in 0..=10 {
        let v = f64::from(i) / 10.0;
        let _ = write!(
            out,
            r##"<line x1="{x0}" y1="{yv}" x2="{x1}" y2="{yv}" stroke="#eee"/><line x1="{xv}" y1="{y0}" x2="{xv}" y2="{y1}" stroke="#eee"/><text x="{xv}" y="{yl}" text-anchor="middle">{v:.1}</text><text x="{xl}" y="{yt}" text-anchor="end">{pct:.0}%</text>"##,
            x0 = x(0.0),
            x1 = x(1.0),
            yv = y(v),
            xv = x(v),
            y0 = y(0.0),
            y1 = y(1.0),
            yl = y(0.0) + 16.0,
            xl = x(0.0) - 6.0,
            yt = y(v) + 4.0,
            pct = v * 100.0,
        );
    }
    let _ = write!(
        out,
        r#"<text x="{cx}" y="{by}" text-anchor="middle">true success rate</text><text x="14" y="{cy}" transform="rotate(-90 14 {cy})" text-anchor="middle">calls refused</text>"#,
        cx = x(0.5),
        by = height - 10.0,
        cy = y(0.5),
    );
    for (i, (name, colour, threshold, points)) in curves.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(p, r)| format!("{:.1},{:.1}", x(*p), y(*r)))
            .collect();
        let ly = top + 20.0 + 20.0 * i as f64;
        let _ = write!(
            out,
            r#"<line x1="{tx}" y1="{y0}" x2="{tx}" y2="{y1}" stroke="{colour}" stroke-dasharray="4 4"/><polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/><line x1="{lx}" y1="{ly}" x2="{lx2}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{tx2}" y="{lyt}">{name}, {threshold:.2}</text>"#,
            tx = x(*threshold),
            y0 = y(0.0),
            y1 = y(1.0),
            pts = path.join(" "),
            lx = width - right + 10.0,
            lx2 = width - right + 30.0,
            tx2 = width - right + 34.0,
            lyt = ly + 4.0,
        );
    }
    out.push_str("</svg>\n");
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    tokio::time::pause();
    let presets = [
        ("development", "#2a9d8f", Environment::Development),
        ("staging", "#e9c46a", Environment::Staging),
        ("production", "#e76f51", Environment::Production),
    ];
    let mut curves = Vec::new();
    for (name, colour, env) in presets {
        let threshold = Config::for_environment(env).confidence_threshold;
        let mut points = Vec::new();
        for step in 6..=20 {
            let p = f64::from(step) / 20.0;
            let share = refused_share(env, p).await;
            println!(
                "{name:<12} success rate {p:.2}: {:>5.1}% refused",
                share * 100.0
            );
            points.push((p, share));
        }
        curves.push((name, colour, threshold, points));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gate_curves.svg");
    std::fs::write(&path, svg(&curves))?;
    println!("wrote {}", path.display());
    Ok(())
}
