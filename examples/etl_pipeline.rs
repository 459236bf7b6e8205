//! An ETL pipeline in the shape of the guide's `data_processing_pipeline`:
//! `validate_input` → `transform_data` → `store_results` → `send_notifications`.
//!
//! The warehouse drops the first connection, so `store_results` fails once
//! and is retried with backoff; the output shows each step as it runs and
//! what the runtime learned.
//!
//! Run it with `cargo run --example etl_pipeline` (twice, to see what the
//! first run learned carried over through `etl_pipeline.db`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ndf::prelude::*;

/// One line of the daily sales export, as received.
#[derive(Clone, Debug)]
struct RawBatch {
    source: &'static str,
    lines: Vec<&'static str>,
}

/// A sale that passed validation.
#[derive(Clone, Debug)]
struct Sale {
    order_id: u32,
    customer: String,
    amount_cents: i64,
    currency: String,
}

#[derive(Clone, Debug)]
struct ValidBatch {
    source: &'static str,
    sales: Vec<Sale>,
    rejected: Vec<String>,
}

/// Revenue per customer in euro cents, ready to load.
#[derive(Clone, Debug)]
struct Summary {
    source: &'static str,
    revenue_eur_cents: BTreeMap<String, i64>,
    rejected: usize,
}

#[derive(Debug)]
struct LoadReport {
    source: &'static str,
    rows_written: usize,
    total_eur_cents: i64,
    rejected: usize,
}

#[derive(Debug, thiserror::Error)]
enum EtlError {
    #[error("batch `{0}` has no valid sales")]
    Empty(&'static str),
    #[error("no exchange rate for `{0}`")]
    UnknownCurrency(String),
    #[error("warehouse connection reset by peer")]
    ConnectionReset,
}

/// A stand-in for the warehouse: it drops the first connection.
#[derive(Default)]
struct Warehouse {
    connections: AtomicU32,
    rows: Mutex<Vec<(String, i64)>>,
}

static WAREHOUSE: std::sync::LazyLock<Arc<Warehouse>> = std::sync::LazyLock::new(Arc::default);

#[pattern(domain = "data_processing", timeout = "30s")]
async fn validate_input(raw: RawBatch) -> Result<ValidBatch, EtlError> {
    let mut sales = Vec::new();
    let mut rejected = Vec::new();
    for line in &raw.lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed = match fields.as_slice() {
            [id, customer, amount, currency] if !customer.is_empty() => id
                .parse()
                .ok()
                .zip(amount.parse::<f64>().ok().filter(|a| *a > 0.0))
                .map(|(order_id, amount)| Sale {
                    order_id,
                    customer: (*customer).to_owned(),
                    #[allow(clippy::cast_possible_truncation, reason = "amounts are small")]
                    amount_cents: (amount * 100.0).round() as i64,
                    currency: (*currency).to_owned(),
                }),
            _ => None,
        };
        match parsed {
            Some(sale) => sales.push(sale),
            None => rejected.push((*line).to_owned()),
        }
    }
    println!(
        "  validate_input      {} valid, {} rejected",
        sales.len(),
        rejected.len()
    );
    for line in &rejected {
        println!("                      rejected: {line:?}");
    }
    if sales.is_empty() {
        return Err(EtlError::Empty(raw.source));
    }
    Ok(ValidBatch {
        source: raw.source,
        sales,
        rejected,
    })
}

#[pattern(domain = "data_processing")]
async fn transform_data(batch: ValidBatch, ctx: &PatternContext) -> Result<Summary, EtlError> {
    let mut revenue_eur_cents = BTreeMap::new();
    for sale in &batch.sales {
        let rate = match sale.currency.as_str() {
            "EUR" => 1.0,
            "USD" => 0.92,
            "GBP" => 1.17,
            other => return Err(EtlError::UnknownCurrency(other.to_owned())),
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            reason = "amounts are small"
        )]
        let eur = (sale.amount_cents as f64 * rate).round() as i64;
        *revenue_eur_cents.entry(sale.customer.clone()).or_insert(0) += eur;
        let _ = sale.order_id;
    }
    let region = ctx.attribute_value("region").unwrap_or("unknown region");
    println!(
        "  transform_data      {} customers, converted to EUR for {region}",
        revenue_eur_cents.len()
    );
    Ok(Summary {
        source: batch.source,
        revenue_eur_cents,
        rejected: batch.rejected.len(),
    })
}

#[pattern(
    domain = "data_processing",
    timeout = "10s",
    retry(max = 3, initial = "200ms", max_delay = "2s")
)]
async fn store_results(summary: Summary) -> Result<LoadReport, EtlError> {
    let warehouse = WAREHOUSE.clone();
    let attempt = warehouse.connections.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    if attempt == 1 {
        println!("  store_results       attempt {attempt}: connection reset, will retry");
        return Err(EtlError::ConnectionReset);
    }
    let mut rows = warehouse.rows.lock().expect("warehouse lock");
    rows.extend(
        summary
            .revenue_eur_cents
            .iter()
            .map(|(c, v)| (c.clone(), *v)),
    );
    let total = summary.revenue_eur_cents.values().sum();
    println!(
        "  store_results       attempt {attempt}: wrote {} rows",
        summary.revenue_eur_cents.len()
    );
    Ok(LoadReport {
        source: summary.source,
        rows_written: summary.revenue_eur_cents.len(),
        total_eur_cents: total,
        rejected: summary.rejected,
    })
}

#[pattern(domain = "data_processing")]
async fn send_notifications(report: LoadReport) -> LoadReport {
    println!(
        "  send_notifications  #data-team: {} loaded, {} rows, EUR {:.2} total, {} rejected",
        report.source,
        report.rows_written,
        report.total_eur_cents as f64 / 100.0,
        report.rejected
    );
    report
}

#[tokio::main]
async fn main() -> Result<(), ndf::Error> {
    // What the runtime learns is kept in SQLite: run the example twice and
    // the second run starts from what the first one learned.
    let db = std::env::var("NDF_DB").unwrap_or_else(|_| "etl_pipeline.db".to_owned());
    let ndf = Ndf::builder().store(ndf::SqliteStore::open(&db)?).build()?;
    let before = ndf
        .stats("data_processing.etl_pipeline", "data_processing")
        .map_or(0, |s| s.executions);
    println!("learning store {db}: {before} earlier runs of this pipeline");
    let etl = sequential!(name = "data_processing.etl_pipeline";
        validate_input => transform_data => store_results => send_notifications);

    let ctx = PatternContext::new("data_processing")
        .agent_type("etl")
        .priority(Priority::High)
        .attribute("region", "eu-west-1")
        .attribute("warehouse_password", "s3cr3t");

    let batch = RawBatch {
        source: "sales-2026-11-26.csv",
        lines: vec![
            "1001, acme-gmbh, 1250.00, EUR",
            "1002, globex, 980.50, USD",
            "1003, initech, 312.99, GBP",
            "1004, acme-gmbh, 75.25, EUR",
            "1005, , 10.00, EUR",
            "1006, globex, -40.00, USD",
            "1007, umbrella, 2200.00, USD",
        ],
    };

    println!(
        "running {} on {} ({} lines)",
        etl.name(),
        batch.source,
        batch.lines.len()
    );
    println!("context: {ctx:?}");
    let report = ndf.run(&etl, batch, &ctx).await?;
    println!("done: {} rows written\n", report.rows_written);

    println!("what ndf learned in domain `data_processing`:");
    for pattern in [
        etl.name(),
        "validate_input",
        "transform_data",
        "store_results",
        "send_notifications",
    ] {
        if let Some(s) = ndf.stats(pattern, "data_processing") {
            let confidence =
                ndf.confidence(pattern, "data_processing")
                    .map_or_else(String::new, |c| {
                        let plural = if c.samples == 1 { "" } else { "s" };
                        format!("  confidence {:.2} ({} outcome{plural})", c.mean, c.samples)
                    });
            println!(
                "  {pattern:<30} runs {}  ok {}  failed {}  retries {}{confidence}",
                s.executions, s.successes, s.failures, s.retries
            );
        }
    }

    let empty = RawBatch {
        source: "sales-empty.csv",
        lines: vec!["garbage"],
    };
    println!(
        "\nrunning {} on {} (expected to fail)",
        etl.name(),
        empty.source
    );
    match ndf.run(&etl, empty, &ctx).await {
        Ok(_) => println!("unexpectedly succeeded"),
        Err(e) => println!("error: {e}"),
    }
    ndf.shutdown().await
}
