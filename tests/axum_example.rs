//! The axum example (`examples/axum_service.rs`), served on loopback and
//! called over HTTP: the checkout route, the same workflow as a `tower`
//! service, and the dashboard nested behind the app's own middleware.

mod common;

#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../examples/axum_service.rs"]
mod example;

use ndf::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_answers_over_loopback_http() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, example::app(ndf.clone())).into_future());
    let get = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        tokio::task::spawn_blocking(move || common::http_get_with(addr, path, headers))
    };

    let (status, body) = get("/checkout/42", &[]).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["charged"], 42);
    assert_eq!(receipt["emailed"], true);

    let (status, body) = get("/checkout/0", &[]).await.unwrap();
    assert_eq!(status, 422, "a rejected input is the caller's: {body}");
    assert!(body.contains("nothing to charge"), "{body}");

    let (status, body) = get("/limited/7", &[]).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"charged\":7"), "{body}");

    // The dashboard, nested under /ops behind the app's middleware.
    assert_eq!(get("/ops", &[]).await.unwrap().0, 403);
    let key: &'static [(&str, &str)] = &[("x-ops-key", "let-me-in")];
    let (status, page) = get("/ops", key).await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("id=\"patterns\""));
    let (status, json) = get("/ops/api/dashboard", key).await.unwrap();
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["overview"]["executions_24h"], 2, "{json}");

    let learned = ndf.stats("shop.checkout", "shop").unwrap();
    assert_eq!((learned.executions, learned.rejected), (2, 1));
    server.abort();
}
