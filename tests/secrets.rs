//! A secret in a context attribute appears nowhere the runtime writes:
//! errors, `Debug` output, reports, alerts, logs.

mod common;

use std::time::Duration;

use common::Captured;
use ndf::prelude::*;

const SECRET: &str = "s3cr3t-Pa55w0rd-9f2c";

#[pattern(retries = 1)]
async fn login(user: String, ctx: &PatternContext) -> Result<String, StepError> {
    // The step reads the secret; nothing the runtime writes may show it.
    let password = ctx.attribute_value("db_password").unwrap_or_default();
    if user == "mallory" || password.is_empty() {
        return Err(StepError::msg(format!("login refused for {user}")));
    }
    Ok(format!("session for {user}"))
}

#[pattern]
async fn audit(session: String) -> String {
    assert!(
        !session.contains("panic"),
        "audit could not record the session"
    );
    session
}

#[tokio::test(start_paused = true)]
async fn secrets_appear_nowhere_the_runtime_writes() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = Config::default();
    config.min_samples = 2;
    // Lenient evidence, so that the failures open the gate and raise its alert.
    config.gate_alpha = 0.5;
    config.latency_alert = Some(Duration::from_millis(1));
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "auth.login"; login => audit);
    let ctx = PatternContext::new("auth")
        .agent_type("gateway")
        .attribute("db_password", SECRET)
        .attribute("API_TOKEN", SECRET)
        .attribute("signingKey", SECRET)
        .attribute("client_secret", SECRET)
        .attribute("aws_credentials", SECRET)
        .secret("vault_ref", SECRET)
        .attribute("region", "eu-west-1");

    let mut written = Vec::new();
    for user in ["alice", "mallory", "bob", "mallory", "mallory", "panic"] {
        match ndf.run(&flow, user.to_owned(), &ctx).await {
            Ok(session) => written.push(session),
            Err(e) => {
                written.push(e.to_string());
                written.push(format!("{e:?}"));
            }
        }
    }
    written.push(format!("{ctx:?}"));
    written.push(format!("{ndf:?}"));
    written.push(serde_json::to_string(&ndf.report(Duration::from_hours(1))).unwrap());
    let logs = captured.text();
    assert!(
        logs.contains("confidence") && logs.contains("auth.login"),
        "alerts were logged: {logs}"
    );
    written.push(logs);

    assert!(
        written
            .iter()
            .any(|w| w.contains("login refused for mallory")),
        "errors were written: {written:?}"
    );
    assert!(
        written.iter().any(|w| w.contains("eu-west-1")),
        "ordinary attributes are shown"
    );
    assert!(
        written.iter().any(|w| w.contains("[REDACTED]")),
        "secret attributes are marked"
    );
    for w in &written {
        assert!(!w.contains(SECRET), "the secret leaked into: {w}");
    }
    // The step itself could read it.
    assert_eq!(ctx.attribute_value("db_password"), Some(SECRET));
    assert_eq!(
        ndf::ExposeSecret::expose_secret(ctx.secret_value("vault_ref").unwrap()),
        SECRET
    );
}
