//! The dashboard in a real browser: the `dashboard` example serves it on a
//! free loopback port, headless Chromium loads the page, lets it poll the
//! JSON endpoint, and the rendered DOM must hold the pattern names, the
//! numbers the endpoint gives and the four charts.
//!
//! Needs Chromium (`.ci/run` installs Debian's `chromium`; set `CHROMIUM` to
//! use another binary) and the example binary, which `cargo test` builds.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/<profile>/examples/dashboard`, beside this test's binary.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("dashboard{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples; with a filter, run `cargo build --example dashboard` first",
        path.display()
    );
    path
}

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return path.into();
    }
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    found.expect(
        "Chromium is needed for the dashboard's browser test: `apt-get install chromium` \
         (what .ci/run does), or set CHROMIUM to a Chromium or Chrome binary",
    )
}

/// Starts the example, which runs `rounds` rounds of its workflows and then
/// keeps serving; returns it once the rounds are done, with its address.
fn start_example(rounds: u32) -> (Killed, SocketAddr) {
    let mut child = Command::new(example_binary())
        .args(["--addr", "127.0.0.1:0", "--rounds", &rounds.to_string()])
        .args(["--pause-ms", "5", "--probe", "idle", "--refresh-secs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut addr = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("dashboard: http://") {
            addr = Some(url.trim_end_matches('/').parse().unwrap());
        }
        if line.starts_with(&format!("ran {rounds} rounds")) {
            return (child, addr.expect("the address is printed first"));
        }
    }
    panic!("the example ended before finishing its rounds");
}

/// The page as Chromium renders it after its script has run (virtual time
/// lets the page load, poll and draw before the DOM is dumped).
fn rendered_dom(url: &str) -> String {
    let profile = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-chromium");
    let _ = std::fs::remove_dir_all(&profile);
    let mut browser = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = browser.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let browser = Killed(browser);
    let deadline = Instant::now() + Duration::from_mins(2);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "Chromium did not finish in 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(browser);
    reader.join().unwrap()
}

/// The value of `attr` in the first tag of `dom` that contains `anchor`.
fn attr_of(dom: &str, anchor: &str, attr: &str) -> String {
    let at = dom
        .find(anchor)
        .unwrap_or_else(|| panic!("no {anchor} in the rendered page"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    let tag = &dom[start..end];
    let key = format!("{attr}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {tag}"))
        + key.len();
    tag[from..from + tag[from..].find('"').unwrap()].to_owned()
}

/// The markup of one element opened by the tag containing `anchor`, up to
/// its closing `</name>`.
fn element<'a>(dom: &'a str, anchor: &str, name: &str) -> &'a str {
    let at = dom
        .find(anchor)
        .unwrap_or_else(|| panic!("no {anchor} in the rendered page"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find(&format!("</{name}>")).unwrap();
    &dom[start..end]
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_page_renders_the_endpoints_numbers_and_four_charts_in_chromium() {
    let (_example, addr) = start_example(12);
    let (status, body) = common::http_get(addr, "/api/dashboard");
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    let dom = rendered_dom(&format!("http://{addr}/"));

    assert_eq!(
        attr_of(&dom, "<body", "data-loaded"),
        "true",
        "the page polled the endpoint and drew it"
    );

    overview_matches(&dom, &json);
    rows_match(&dom, &json);
    charts_match(&dom, &json);
    alerts_match(&dom, &json);
    assert!(!dom.contains("tok-do-not-show") && !body.contains("tok-do-not-show"));
}

/// The overview shows the numbers of the endpoint.
fn overview_matches(dom: &str, json: &Value) {
    let overview = &json["overview"];
    for field in ["executions_today", "active_patterns", "learning_patterns"] {
        let anchor = format!("data-field=\"{field}\"");
        let expected = overview[field].as_u64().unwrap();
        assert_eq!(attr_of(dom, &anchor, "data-value"), expected.to_string());
        assert!(element(dom, &anchor, "div").ends_with(&format!(">{expected}")));
    }
    assert_eq!(
        overview["executions_today"],
        12 * 4,
        "four workflows a round"
    );
    let rate = overview["success_rate_24h"].as_f64().unwrap();
    let shown: f64 = attr_of(dom, "data-field=\"success_rate_24h\"", "data-value")
        .parse()
        .unwrap();
    assert!((shown - rate).abs() < 1e-12, "{shown} vs {rate}");
}

/// One table row per pattern, with its runs, success rate and trend.
fn rows_match(dom: &str, json: &Value) {
    let patterns = json["patterns"].as_array().unwrap();
    assert!(patterns.len() >= 4 + 10, "4 workflows and their 10 steps");
    for p in patterns {
        let (name, domain) = (
            p["pattern"].as_str().unwrap(),
            p["domain"].as_str().unwrap(),
        );
        let row = element(
            dom,
            &format!("<tr data-pattern=\"{name}\" data-domain=\"{domain}\""),
            "tr",
        );
        assert!(row.contains(&format!(">{name}")), "{row}");
        assert_eq!(
            attr_of(row, "data-field=\"executions\"", "data-value"),
            p["executions"].as_u64().unwrap().to_string(),
            "{name}"
        );
        let trend = p["confidence_trend"].as_array().unwrap().len();
        if trend >= 2 {
            assert_eq!(
                attr_of(row, "<polyline", "data-points"),
                trend.to_string(),
                "{name}'s confidence trend"
            );
        }
        let rate = attr_of(row, "data-field=\"success_rate\"", "data-value");
        match p["success_rate"].as_f64() {
            Some(expected) => assert!((rate.parse::<f64>().unwrap() - expected).abs() < 1e-12),
            None => assert_eq!(rate, ""),
        }
    }
}

/// The four charts draw the endpoint's series, bars and bins.
fn charts_match(dom: &str, json: &Value) {
    let response = element(dom, "id=\"chart-response-time\"", "svg");
    for s in json["response_time"].as_array().unwrap() {
        let series = format!(
            "{} ({})",
            s["pattern"].as_str().unwrap(),
            s["domain"].as_str().unwrap()
        );
        assert!(
            response.contains(&format!("data-series=\"{series}\"")),
            "no line of {series}"
        );
    }
    assert_eq!(
        count(response, "<path"),
        json["response_time"].as_array().unwrap().len()
    );

    let gauge = element(dom, "id=\"chart-success-rate\"", "svg");
    let drawn: f64 = attr_of(gauge, "class=\"gauge-value\"", "data-value")
        .parse()
        .unwrap();
    let rate = json["overview"]["success_rate_24h"].as_f64().unwrap();
    assert!((drawn - rate).abs() < 1e-12);

    let usage = element(dom, "id=\"chart-usage\"", "svg");
    let bars = json["usage"].as_array().unwrap();
    assert_eq!(bars.len(), 4);
    assert_eq!(count(usage, "<rect"), bars.len());
    for u in bars {
        let anchor = format!("data-pattern=\"{}\"", u["pattern"].as_str().unwrap());
        assert_eq!(
            attr_of(usage, &anchor, "data-value"),
            u["executions"].as_u64().unwrap().to_string()
        );
    }

    let histogram = element(dom, "id=\"chart-confidence\"", "svg");
    let bins = json["confidence_histogram"].as_array().unwrap();
    assert_eq!(count(histogram, "<rect"), bins.len());
    let total: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, json["patterns"].as_array().unwrap().len() as u64);
}

/// The alerts the endpoint lists.
fn alerts_match(dom: &str, json: &Value) {
    let alerts = element(dom, "id=\"alerts\"", "ul");
    let raised = json["alerts"].as_array().unwrap();
    assert!(
        !raised.is_empty(),
        "the nightly report fails one run in three"
    );
    for a in raised {
        let message = a["message"].as_str().unwrap();
        assert!(alerts.contains(message), "{message} not in {alerts}");
    }
}
