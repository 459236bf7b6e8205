//! Every form of `breaker(…)`: the defaults, a window of calls, a window
//! of time, and every field.
use ndf::prelude::*;

#[pattern(breaker())]
async fn defaults(x: u32) -> u32 {
    x
}

#[pattern(breaker(window = 20))]
async fn by_calls(x: u32) -> u32 {
    x
}

#[pattern(breaker(window = "30s", failure_ratio = 0.25, min_calls = 50))]
async fn by_time(x: u32) -> u32 {
    x
}

#[pattern(slow_call = "2s", breaker(window = 100, failure_ratio = 1.0, min_calls = 100, break_for = "1m", probes = 1))]
async fn everything(x: u32) -> u32 {
    x
}

fn main() {
    use ndf::Step as _;
    let meta = <by_time as ndf::Step>::META.breaker.unwrap();
    assert_eq!(meta.window, ndf::SlidingWindow::Time(std::time::Duration::from_secs(30)));
    assert_eq!((meta.failure_ratio, meta.min_calls), (0.25, 50));
    let meta = <by_calls as ndf::Step>::META.breaker.unwrap();
    assert_eq!((meta.window, meta.min_calls), (ndf::SlidingWindow::Calls(20), 20));
    let meta = <defaults as ndf::Step>::META.breaker.unwrap();
    assert_eq!((meta.window, meta.failure_ratio, meta.min_calls), (ndf::SlidingWindow::Calls(100), 0.5, 20));
    assert_eq!(meta.break_for, None);
    let meta = <everything as ndf::Step>::META.breaker.unwrap();
    assert_eq!((meta.break_for, meta.probes), (Some(std::time::Duration::from_secs(60)), Some(1)));
}
