//! How large a run's future is: the awaits of a workflow share their
//! storage, so a workflow's future is about as large as its largest state.
//! What a failed run keeps while it compensates (the error, each task's
//! result, the compensating attempts) lives in a box made only when a run
//! fails, not beside every step the workflow awaits.
//!
//! The bounds compare futures of the same build with each other, not with
//! fixed numbers: they hold whatever the size of tokio's timer or of
//! `ndf::Error`.

use ndf::prelude::*;

#[pattern]
async fn step(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[pattern(compensate = undo)]
async fn kept(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[pattern]
async fn undo(_x: u64) {}

/// A step whose output is as large as a small struct of buffers.
#[pattern]
async fn wide(x: u64) -> [u64; 32] {
    [x; 32]
}

fn rig() -> (Ndf, PatternContext) {
    (
        Ndf::builder().build().expect("default config"),
        PatternContext::new("sizes"),
    )
}

/// What each task of a `parallel!` adds to a run's future: the sizes of
/// runs of `eight` and `sixteen` tasks, apart, per task.
fn per_task<A, B>(ndf: &Ndf, ctx: &PatternContext, eight: &A, sixteen: &B) -> usize
where
    A: Workflow<Input = u64>,
    B: Workflow<Input = u64>,
{
    (size_of_val(&ndf.run(sixteen, 1, ctx)) - size_of_val(&ndf.run(eight, 1, ctx))) / 8
}

#[test]
fn each_further_stage_of_a_sequence_adds_at_most_eight_bytes() {
    let (ndf, ctx) = rig();
    let one = sequential!(step);
    let ten =
        sequential!(step => step => step => step => step => step => step => step => step => step);
    let one = size_of_val(&ndf.run(&one, 1, &ctx));
    let ten = size_of_val(&ndf.run(&ten, 1, &ctx));
    println!("sequential! of 1: {one} B, of 10: {ten} B");
    // Before the error was boxed, the sequence's error (104 bytes) was
    // stored beside every stage: 10 stages came to 112 bytes more than 1.
    assert!(
        ten <= one + 9 * 8,
        "a 10-stage sequence's future is {ten} B, a 1-stage one's {one} B"
    );
}

#[pattern]
async fn unit(_x: ()) {}

#[pattern(compensate = undo_unit)]
async fn unit_kept(_x: ()) {}

#[pattern]
async fn undo_unit(_x: ()) {}

#[test]
fn a_stage_without_compensate_keeps_nothing_to_compensate() {
    let (ndf, ctx) = rig();
    // The same steps, outputs of no size, but for `compensate`: a
    // compensated step keeps whether it completed (an `Option<()>`, ten
    // bytes in all, some of them in padding); a step without keeps
    // nothing at all. When both kept an `Option<()>`, the two runs'
    // futures were the same size.
    let plain =
        sequential!(unit => unit => unit => unit => unit => unit => unit => unit => unit => unit);
    let kept = sequential!(
        unit_kept => unit_kept => unit_kept => unit_kept => unit_kept => unit_kept => unit_kept
            => unit_kept => unit_kept => unit_kept
    );
    let plain = size_of_val(&ndf.run(&plain, (), &ctx));
    let kept = size_of_val(&ndf.run(&kept, (), &ctx));
    println!("10 stages of no output: {plain} B, with `compensate`: {kept} B");
    assert!(
        plain < kept,
        "without `compensate`: {plain} B; with: {kept} B"
    );
}

#[test]
fn a_compensated_stage_adds_only_what_it_keeps() {
    let (ndf, ctx) = rig();
    let plain =
        sequential!(step => step => step => step => step => step => step => step => step => step);
    let kept =
        sequential!(kept => kept => kept => kept => kept => kept => kept => kept => kept => kept);
    let plain = size_of_val(&ndf.run(&plain, 1, &ctx));
    let kept = size_of_val(&ndf.run(&kept, 1, &ctx));
    println!("10 stages: {plain} B, with `compensate`: {kept} B");
    // Each stage keeps a copy of its output until the run ends; the
    // compensating attempts run in a box of their own.
    assert!(
        kept <= plain + 10 * size_of::<Option<u64>>(),
        "with `compensate`: {kept} B; without: {plain} B"
    );
}

/// What a task of `step` (a `u64` output, no bulkhead) adds.
fn per_small_task(ndf: &Ndf, ctx: &PatternContext) -> usize {
    let small8 = parallel!(step, step, step, step, step, step, step, step);
    let small16 = parallel!(
        step, step, step, step, step, step, step, step, step, step, step, step, step, step, step,
        step
    );
    per_task(ndf, ctx, &small8, &small16)
}

#[test]
fn a_parallel_task_stores_its_output_at_most_once() {
    let (ndf, ctx) = rig();
    let wide8 = parallel!(wide, wide, wide, wide, wide, wide, wide, wide);
    let wide16 = parallel!(
        wide, wide, wide, wide, wide, wide, wide, wide, wide, wide, wide, wide, wide, wide, wide,
        wide
    );
    let per_small = per_small_task(&ndf, &ctx);
    let per_wide = per_task(&ndf, &ctx, &wide8, &wide16);
    println!("a task: {per_small} B with a u64 output, {per_wide} B with a 256 B output");
    // Before the results were settled in a block of their own, each task's
    // result was stored twice more beside the tasks: 320 bytes a task more
    // for a 256-byte output.
    assert!(
        per_wide <= per_small + size_of::<[u64; 32]>(),
        "a task with a 256 B output costs {per_wide} B, with a u64 output {per_small} B"
    );
}

#[pattern]
async fn plain_small(x: u64) -> u64 {
    x
}

#[pattern]
async fn plain_wide(x: [u64; 32]) -> u64 {
    x[0]
}

#[pattern(retries = 2)]
async fn retried_small(x: u64) -> u64 {
    x
}

#[pattern(retries = 2)]
async fn retried_wide(x: [u64; 32]) -> u64 {
    x[0]
}

#[test]
fn a_retried_step_keeps_at_most_one_more_copy_of_its_input() {
    let (ndf, ctx) = rig();
    let plain_small = size_of_val(&ndf.run(&sequential!(plain_small), 1, &ctx));
    let plain_wide = size_of_val(&ndf.run(&sequential!(plain_wide), [1; 32], &ctx));
    let retried_small = size_of_val(&ndf.run(&sequential!(retried_small), 1, &ctx));
    let retried_wide = size_of_val(&ndf.run(&sequential!(retried_wide), [1; 32], &ctx));
    let (plain, retried) = (plain_wide - plain_small, retried_wide - retried_small);
    println!("256 B more input: a plain step's run +{plain} B, a retried step's +{retried} B");
    // A step with nothing after its first attempt keeps no spare copy of
    // its input: it grows no more than a retried step, which keeps its
    // input (in its cell) for its next attempt. That one copy is all the
    // retried step keeps more.
    assert!(
        plain <= retried,
        "a plain step's run grows by {plain} B for 256 B more input, a retried step's by {retried} B"
    );
    assert!(
        retried <= plain + size_of::<[u64; 32]>(),
        "a retried step's run grows by {retried} B for 256 B more input, a plain step's by {plain} B"
    );
}

#[pattern]
async fn plain_boxed(x: Box<[u64; 32]>) -> u64 {
    x[0]
}

#[test]
fn a_run_keeps_its_input_at_most_three_times_and_a_boxed_one_as_a_word() {
    let (ndf, ctx) = rig();
    let small = size_of_val(&ndf.run(&sequential!(plain_small), 1, &ctx));
    let wide = size_of_val(&ndf.run(&sequential!(plain_wide), [1; 32], &ctx));
    let boxed = size_of_val(&ndf.run(&sequential!(plain_boxed), Box::new([1; 32]), &ctx));
    let more = size_of::<[u64; 32]>() - size_of::<u64>();
    println!("a run of a u64 input: {small} B, of 256 B: {wide} B, of 256 B boxed: {boxed} B");
    // The README's advice: while the first step runs, the input is in
    // `Ndf::run`'s future, in the workflow's and in the step's own (an
    // `async` block keeps what it captured to its end, rust-lang/rust#62958);
    // boxed, each of the three is a word.
    assert!(
        wide - small <= 3 * more,
        "a 256-byte input makes the run {} B larger than a u64 one",
        wide - small
    );
    assert_eq!(boxed, small, "a boxed input costs the run what a u64 does");
}

#[test]
fn the_tasks_of_a_parallel_share_one_timer() {
    let (ndf, ctx) = rig();
    // Steps in the tasks of a `parallel!` share the `parallel!`'s alarm;
    // with `spawn = true` each keeps a timer of its own.
    let own8 = parallel!(spawn = true; step, step, step, step, step, step, step, step);
    let own16 = parallel!(spawn = true;
        step, step, step, step, step, step, step, step, step, step, step, step, step, step, step,
        step
    );
    let shared = per_small_task(&ndf, &ctx);
    let own = per_task(&ndf, &ctx, &own8, &own16);
    let timer = size_of::<tokio::time::Sleep>();
    println!("a task: {shared} B, {own} B with a timer of its own ({timer} B)");
    // What the two kinds of task keep apart from the timer differs by a
    // few words (a spawned attempt's handle, the shared deadline): half a
    // timer's size leaves room for them.
    assert!(
        shared + timer / 2 <= own,
        "a task sharing the alarm: {shared} B; with a timer of its own: {own} B"
    );
}

/// The same step with a bulkhead.
#[pattern(concurrency = 4)]
async fn pooled(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[test]
fn only_a_task_whose_step_has_a_bulkhead_keeps_room_for_its_place() {
    let (ndf, ctx) = rig();
    let pooled8 = parallel!(
        pooled, pooled, pooled, pooled, pooled, pooled, pooled, pooled
    );
    let pooled16 = parallel!(
        pooled, pooled, pooled, pooled, pooled, pooled, pooled, pooled, pooled, pooled, pooled,
        pooled, pooled, pooled, pooled, pooled
    );
    let plain = per_small_task(&ndf, &ctx);
    let with_place = per_task(&ndf, &ctx, &pooled8, &pooled16);
    println!("a task: {plain} B, {with_place} B when its step has a `concurrency`");
    // The place (a permit of the step's semaphore) is two words; a step
    // without a bulkhead never takes one.
    assert!(
        plain + 16 <= with_place,
        "a task is {plain} B without a bulkhead, {with_place} B with one"
    );
}

#[allow(
    clippy::unused_async,
    reason = "the baseline: the same step as a plain async fn"
)]
async fn bare(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[test]
fn a_task_of_a_plain_step_keeps_little_more_than_the_steps_future() {
    let (ndf, ctx) = rig();
    let task = per_small_task(&ndf, &ctx);
    let fut = size_of_val(&bare(1));
    println!("a task: {task} B; the step's own future: {fut} B");
    // What every task of a `parallel!` shares (the run, the alarm) and
    // what is fixed for it (its stage's index, its timeout) comes with
    // each poll. A task keeps its step's future, its deadline and its
    // span's word (16 bytes), and the `parallel!` a byte or so for what
    // compensates it. Before, a task kept all of it: 92 bytes.
    assert!(
        task <= fut + 16 + 8,
        "a task is {task} B, its step's future {fut} B"
    );
}

#[test]
fn a_parallel_of_64_steps_is_at_most_twice_tokio_join_of_the_same_steps() {
    let (ndf, ctx) = rig();
    let flow = parallel!(
        step, step, step, step, step, step, step, step, step, step, step, step, step, step, step,
        step, step, step, step, step, step, step, step, step, step, step, step, step, step, step,
        step, step, step, step, step, step, step, step, step, step, step, step, step, step, step,
        step, step, step, step, step, step, step, step, step, step, step, step, step, step, step,
        step, step, step, step
    );
    let join = async {
        let x = 1;
        tokio::join!(
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x),
            bare(x)
        )
    };
    let run = size_of_val(&ndf.run(&flow, 1, &ctx));
    let join = size_of_val(&join);
    println!("parallel! of 64: {run} B; tokio::join! of 64: {join} B");
    // The whole run: its context, its span, the `parallel!`'s gate and
    // alarm, and the tasks.
    assert!(
        run <= 2 * join,
        "a run of a `parallel!` of 64 is {run} B, `tokio::join!` of 64 {join} B"
    );
}
