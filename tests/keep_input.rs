//! Data through parallel stages: `keep_input = true` on a `parallel!` or a
//! `degrade!` outputs `(input, outputs)`, so the next stage has the input
//! beside what the tasks made of it; `TaskResults` reads a `min_success`
//! tuple.

use ndf::prelude::*;

#[derive(Clone, Debug, PartialEq)]
struct Order {
    id: u32,
    email: &'static str,
}

#[pattern]
async fn send_email(order: Order) -> Result<&'static str, StepError> {
    Ok(order.email)
}

#[pattern]
async fn send_sms(order: Order) -> Result<u32, StepError> {
    if order.id.is_multiple_of(2) {
        Err(StepError::msg("no phone number"))
    } else {
        Ok(order.id)
    }
}

/// What the notifications made: a tolerant `parallel!`'s tuple.
type Sent = (Result<&'static str, StepError>, Result<u32, StepError>);

/// The next stage takes the order beside what the notifications made.
#[pattern]
async fn archive((order, (email, sms)): (Order, Sent)) -> String {
    let sent = (email, sms).succeeded();
    format!("order {} archived after {sent} notifications", order.id)
}

#[pattern]
async fn recommend(order: Order) -> Result<Vec<u32>, StepError> {
    Err(StepError::msg(format!("model down for {}", order.id)))
}

#[pattern]
async fn bestsellers(_order: Order) -> Vec<u32> {
    vec![1, 2, 3]
}

#[pattern]
async fn show((order, picks): (Order, Vec<u32>)) -> String {
    format!("{} picks for order {}", picks.len(), order.id)
}

fn ndf() -> Ndf {
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_parallel_keeps_its_input_beside_its_outputs() {
    let flow = sequential!(name = "shop.notify";
        parallel!(keep_input = true, min_success = 1; send_email, send_sms) => archive);
    let ctx = PatternContext::new("shop");
    let order = Order {
        id: 4,
        email: "ada@example.org",
    };
    assert_eq!(
        ndf().run(&flow, order, &ctx).await.unwrap(),
        "order 4 archived after 1 notifications"
    );
}

#[tokio::test]
async fn a_degrade_keeps_its_input_beside_what_served() {
    let flow = sequential!(name = "shop.recommend";
        degrade!(keep_input = true; recommend | bestsellers) => show);
    let order = Order {
        id: 7,
        email: "bo@example.org",
    };
    let out = ndf()
        .run(&flow, order, &PatternContext::new("shop"))
        .await
        .unwrap();
    assert_eq!(out, "3 picks for order 7");
}

#[tokio::test]
async fn a_kept_input_is_a_copy_of_what_the_tasks_got() {
    let flow = parallel!(keep_input = true; send_email, send_sms);
    let order = Order {
        id: 3,
        email: "cy@example.org",
    };
    let (kept, (email, sms)) = ndf()
        .run(&flow, order.clone(), &PatternContext::new("shop"))
        .await
        .unwrap();
    assert_eq!((kept, email, sms), (order, "cy@example.org", 3));
}

#[tokio::test]
async fn task_results_count_and_unpack_a_tolerant_parallel() {
    let flow = parallel!(min_success = 1; send_email, send_sms);
    let out = ndf()
        .run(
            &flow,
            Order {
                id: 2,
                email: "di@example.org",
            },
            &PatternContext::new("shop"),
        )
        .await
        .unwrap();
    assert_eq!(out.succeeded(), 1);
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.oks(), (Some("di@example.org"), None));
}
