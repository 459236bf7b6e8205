//! When a stage fails, the `compensate` steps of the completed stages run in
//! reverse order, then the error is returned.

mod common;

use common::Trace;
use ndf::prelude::*;

#[derive(Clone, Debug, Default)]
struct Order {
    trace: Trace,
    fail_at: &'static str,
    fail_compensation: &'static str,
}

impl Order {
    fn step(self, name: &str) -> Result<Self, StepError> {
        if self.fail_at == name {
            self.trace.push(format!("{name} failed"));
            return Err(StepError::msg(format!("{name} failed")));
        }
        self.trace.push(name);
        Ok(self)
    }

    fn undo(&self, name: &str) -> Result<(), StepError> {
        if self.fail_compensation == name {
            self.trace.push(format!("{name} failed"));
            return Err(StepError::msg(format!("{name} failed")));
        }
        self.trace.push(name);
        Ok(())
    }
}

#[pattern(compensate = release_stock)]
async fn reserve_stock(o: Order) -> Result<Order, StepError> {
    o.step("reserve_stock")
}

#[pattern]
async fn release_stock(o: Order) -> Result<(), StepError> {
    o.undo("release_stock")
}

#[pattern(compensate = refund_payment)]
async fn charge_payment(o: Order) -> Result<Order, StepError> {
    o.step("charge_payment")
}

#[pattern]
async fn refund_payment(o: Order) -> Result<(), StepError> {
    o.undo("refund_payment")
}

#[pattern]
async fn notify_customer(o: Order) -> Result<Order, StepError> {
    o.step("notify_customer")
}

#[pattern(compensate = cancel_shipment)]
async fn ship_order(o: Order) -> Result<Order, StepError> {
    o.step("ship_order")
}

#[pattern]
async fn cancel_shipment(o: Order) {
    o.trace.push("cancel_shipment");
}

fn order(fail_at: &'static str) -> Order {
    Order {
        fail_at,
        ..Order::default()
    }
}

#[tokio::test]
async fn completed_steps_are_compensated_in_reverse_order() {
    let ndf = common::ndf();
    let flow = sequential!(name = "shop.checkout"; reserve_stock => charge_payment => notify_customer => ship_order);
    let o = order("ship_order");
    let err = ndf
        .run(&flow, o.clone(), &PatternContext::new("shop"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ndf::Error::Execution { step, .. } if step == "ship_order"),
        "{err}"
    );
    assert_eq!(
        o.trace.events(),
        [
            "reserve_stock",
            "charge_payment",
            "notify_customer",
            "ship_order failed",
            "refund_payment",
            "release_stock"
        ]
    );
    assert_eq!(
        ndf.stats("refund_payment", "shop"),
        None,
        "compensations are counted on the step they undo"
    );
    assert_eq!(
        ndf.stats("charge_payment", "shop").unwrap().compensations,
        1
    );
}

#[tokio::test]
async fn a_successful_run_compensates_nothing() {
    let ndf = common::ndf();
    let flow = sequential!(reserve_stock => charge_payment => ship_order);
    let o = order("");
    ndf.run(&flow, o.clone(), &PatternContext::new("shop"))
        .await
        .unwrap();
    assert_eq!(
        o.trace.events(),
        ["reserve_stock", "charge_payment", "ship_order"]
    );
}

#[tokio::test]
async fn a_failing_first_stage_compensates_nothing() {
    let ndf = common::ndf();
    let flow = sequential!(reserve_stock => charge_payment);
    let o = order("reserve_stock");
    ndf.run(&flow, o.clone(), &PatternContext::new("shop"))
        .await
        .unwrap_err();
    assert_eq!(o.trace.events(), ["reserve_stock failed"]);
}

#[tokio::test]
async fn nested_workflows_are_compensated_step_by_step_in_reverse() {
    let ndf = common::ndf();
    let flow = sequential!(name = "shop.nested_checkout";
        reserve_stock => sequential!(charge_payment => notify_customer) => ship_order);
    let o = order("ship_order");
    ndf.run(&flow, o.clone(), &PatternContext::new("shop"))
        .await
        .unwrap_err();
    assert_eq!(
        o.trace.events(),
        [
            "reserve_stock",
            "charge_payment",
            "notify_customer",
            "ship_order failed",
            "refund_payment",
            "release_stock"
        ]
    );
}

#[tokio::test]
async fn a_failure_inside_a_nested_workflow_compensates_outward() {
    let ndf = common::ndf();
    let flow = sequential!(reserve_stock => sequential!(charge_payment => ship_order));
    let o = order("ship_order");
    ndf.run(&flow, o.clone(), &PatternContext::new("shop"))
        .await
        .unwrap_err();
    assert_eq!(
        o.trace.events(),
        [
            "reserve_stock",
            "charge_payment",
            "ship_order failed",
            "refund_payment",
            "release_stock"
        ]
    );
}

#[tokio::test]
async fn a_failing_compensation_does_not_stop_the_others() {
    let ndf = common::ndf();
    let flow = sequential!(reserve_stock => charge_payment => ship_order);
    let o = Order {
        fail_at: "ship_order",
        fail_compensation: "refund_payment",
        ..Order::default()
    };
    let err = ndf
        .run(&flow, o.clone(), &PatternContext::new("shop"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ndf::Error::Execution { step, .. } if step == "ship_order"),
        "the original error: {err}"
    );
    assert_eq!(
        o.trace.events(),
        [
            "reserve_stock",
            "charge_payment",
            "ship_order failed",
            "refund_payment failed",
            "release_stock"
        ]
    );
    let stats = ndf.stats("charge_payment", "shop").unwrap();
    assert_eq!((stats.compensations, stats.compensation_failures), (1, 1));
}

/// A quick step whose undo is slow: the undo has a timeout of its own.
#[pattern(timeout = "50ms", compensate = slow_release)]
async fn quick_hold(x: u32) -> u32 {
    x
}

#[pattern(timeout = "5s")]
async fn slow_release(_x: u32) -> Result<(), StepError> {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(())
}

#[pattern]
async fn refuse(_x: u32) -> Result<u32, StepError> {
    Err(StepError::msg("no"))
}

#[tokio::test(start_paused = true)]
async fn a_compensation_runs_under_its_own_timeout_not_the_undone_steps() {
    let ndf = Ndf::builder().build().unwrap();
    let flow = sequential!(name = "orders.hold_then_refuse"; quick_hold => refuse);
    let ctx = PatternContext::new("orders");
    assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    let undone = ndf.stats("quick_hold", "orders").unwrap();
    assert_eq!(
        (undone.compensations, undone.compensation_failures),
        (1, 0),
        "a 200 ms undo with a 5 s timeout succeeds although the undone step's timeout is 50 ms"
    );
}

/// Two holds whose undos each take 600 ms under a 1 s timeout.
#[pattern(compensate = release_hold)]
async fn hold(x: u32) -> u32 {
    x
}

#[pattern(compensate = release_hold)]
async fn hold_again(x: u32) -> u32 {
    x
}

#[pattern(timeout = "1s")]
async fn release_hold(_x: u32) -> Result<(), StepError> {
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn each_compensation_starts_its_timeout_when_its_turn_comes() {
    let ndf = Ndf::builder().build().unwrap();
    let flow = sequential!(name = "orders.two_holds"; hold => hold_again => refuse);
    let ctx = PatternContext::new("orders");
    let started = tokio::time::Instant::now();
    assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    // One after the other: 600 ms each. Had both timeouts started when the
    // run failed, the second undo would end at 1.2 s, past its 1 s.
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(1200));
    for step in ["hold", "hold_again"] {
        let undone = ndf.stats(step, "orders").unwrap();
        assert_eq!(
            (undone.compensations, undone.compensation_failures),
            (1, 0),
            "{step}'s undo ran whole under its own 1 s"
        );
    }
}
