//! The options of `#[pattern(...)]`: read with darling, then validated into
//! [`StepOptions`] with every error reported at once on the bad value.

use std::time::Duration;

use darling::FromMeta;
use darling::ast::NestedMeta;
use proc_macro2::TokenStream;
use syn::spanned::Spanned as _;

use crate::keys::check_keys;
use crate::values::{number, parse_duration, parse_size};

crate::keys::option_table! {
    /// The options of `#[pattern]`, as darling reads them.
    struct RawArgs, keys KEYS, forms form_of {
        name: syn::LitStr => "a string, such as \"validate_input\"",
        domain: syn::LitStr => "a string, such as \"data_processing\"",
        timeout: syn::LitStr => "a duration string, such as \"30s\"",
        retries: syn::LitInt => "a whole number, such as 3",
        retry: RawRetry,
        confidence_threshold: syn::Expr,
        memory: syn::LitStr => "a size string, such as \"512MB\"",
        after: PathList,
        permissions: StrList,
        fallback: StepPath,
        compensate: StepPath,
        rate: syn::LitStr => "a rate string, such as \"100/s\" or \"5/100ms\"",
        concurrency: syn::LitInt => "a whole number of runs, such as 8",
        queue: syn::LitInt => "a whole number of runs, such as 64",
        idempotent: darling::util::Flag,
        slow_call: syn::LitStr => "a duration string, such as \"2s\"",
        hedge: RawHedge,
        breaker: RawBreaker,
        krate as "crate": syn::LitStr => "a string naming the path of `ndf`, such as \"my_crate::ndf\"",
    }
}

/// A nested option such as `retry(…)` or `hedge(…)`: its span, and its
/// fields, read once their keys are checked.
struct Nested<F> {
    span: proc_macro2::Span,
    fields: F,
}

/// What a nested option is called and accepts.
trait NestedFields: FromMeta {
    /// Its keys.
    const KEYS: &'static [&'static str];
    /// Its name in messages, such as "`retry(…)`".
    const WHAT: &'static str;
    /// What to write when it is not a list.
    const EXPECTED: &'static str;
}

impl<F: NestedFields> FromMeta for Nested<F> {
    fn from_meta(item: &syn::Meta) -> darling::Result<Self> {
        let syn::Meta::List(list) = item else {
            return Err(darling::Error::custom(F::EXPECTED).with_span(item));
        };
        let mut errors = darling::Error::accumulator();
        let items = errors
            .handle(NestedMeta::parse_meta_list(list.tokens.clone()).map_err(Into::into))
            .unwrap_or_default();
        let items = check_keys(items, F::KEYS, F::WHAT, &mut errors);
        let fields = errors.handle(F::from_list(&items));
        errors.finish()?;
        let Some(fields) = fields else {
            return Err(darling::Error::custom(format!("invalid {}", F::WHAT)).with_span(item));
        };
        Ok(Self {
            span: item.span(),
            fields,
        })
    }
}

/// `retry(max = N, initial = "100ms", multiplier = 2.0, max_delay = "10s", jitter = true)`.
type RawRetry = Nested<RetryFields>;

impl NestedFields for RetryFields {
    const KEYS: &'static [&'static str] = RETRY_KEYS;
    const WHAT: &'static str = "`retry(…)`";
    const EXPECTED: &'static str =
        "expected `retry(max = N, …)`; for a plain count write `retries = N`";
}

/// `hedge(after = "50ms", max = 2)`.
type RawHedge = Nested<HedgeFields>;

impl NestedFields for HedgeFields {
    const KEYS: &'static [&'static str] = HEDGE_KEYS;
    const WHAT: &'static str = "`hedge(…)`";
    const EXPECTED: &'static str = "expected `hedge(after = \"50ms\", max = 2)`";
}

/// `breaker(window = 100, failure_ratio = 0.5, min_calls = 20,
/// break_for = "30s", probes = 3)`.
type RawBreaker = Nested<BreakerFields>;

impl NestedFields for BreakerFields {
    const KEYS: &'static [&'static str] = BREAKER_KEYS;
    const WHAT: &'static str = "`breaker(…)`";
    const EXPECTED: &'static str =
        "expected `breaker(window = 100, failure_ratio = 0.5, …)`, or `breaker()` for the defaults";
}

crate::keys::option_table! {
    /// The fields of `breaker(…)`.
    struct BreakerFields, keys BREAKER_KEYS, forms breaker_form_of {
        window: RawWindow,
        failure_ratio: syn::Expr,
        min_calls: syn::LitInt,
        break_for: syn::LitStr,
        probes: syn::LitInt,
    }
}

crate::keys::option_table! {
    /// The fields of `retry(…)`, read once its keys are checked.
    struct RetryFields, keys RETRY_KEYS, forms retry_form_of {
        max: syn::LitInt,
        initial: syn::LitStr,
        multiplier: syn::Expr,
        max_delay: syn::LitStr,
        jitter: syn::LitBool,
    }
}

crate::keys::option_table! {
    /// The fields of `hedge(…)`.
    struct HedgeFields, keys HEDGE_KEYS, forms hedge_form_of {
        after: syn::LitStr,
        max: syn::LitInt,
    }
}

/// `[a, b]` or one element, each read by `one`; every element that `one`
/// refuses is reported, not only the first.
fn one_or_list<T>(
    expr: &syn::Expr,
    one: impl Fn(&syn::Expr) -> darling::Result<T>,
) -> darling::Result<Vec<T>> {
    let elems: Vec<&syn::Expr> = match expr {
        syn::Expr::Array(array) => array.elems.iter().collect(),
        other => vec![other],
    };
    let mut errors = darling::Error::accumulator();
    let items = elems
        .into_iter()
        .filter_map(|elem| errors.handle(one(elem)))
        .collect();
    errors.finish_with(items)
}

/// `[a, b::c]`, or one path.
pub(crate) struct PathList(pub(crate) Vec<syn::Path>);

impl FromMeta for PathList {
    fn from_expr(expr: &syn::Expr) -> darling::Result<Self> {
        one_or_list(expr, |elem| match elem {
            syn::Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
            other => Err(
                darling::Error::custom("expected the path of a `#[pattern]` step").with_span(other),
            ),
        })
        .map(Self)
    }
}

/// `["deploy", "read"]`, or one string.
pub(crate) struct StrList(pub(crate) Vec<syn::LitStr>);

impl FromMeta for StrList {
    fn from_expr(expr: &syn::Expr) -> darling::Result<Self> {
        one_or_list(expr, |elem| match elem {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Ok(s.clone()),
            other => Err(
                darling::Error::custom("expected a string literal, such as \"deploy\"")
                    .with_span(other),
            ),
        })
        .map(Self)
    }
}

/// The path of one step.
pub(crate) struct StepPath(pub(crate) syn::Path);

impl FromMeta for StepPath {
    fn from_expr(expr: &syn::Expr) -> darling::Result<Self> {
        match expr {
            syn::Expr::Path(p) if p.qself.is_none() => Ok(Self(p.path.clone())),
            other => Err(darling::Error::custom(
                "expected the path of a `#[pattern]` step, such as `basic_analysis`",
            )
            .with_span(other)),
        }
    }
}

/// The value of `window = …`, as written (darling would read a string
/// literal's contents as an expression).
struct RawWindow(syn::Expr);

impl FromMeta for RawWindow {
    fn from_expr(expr: &syn::Expr) -> darling::Result<Self> {
        Ok(Self(expr.clone()))
    }
}

/// A validated retry policy.
pub(crate) struct RetrySpec {
    pub(crate) span: proc_macro2::Span,
    pub(crate) max: u32,
    pub(crate) initial: Option<Duration>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) max_delay: Option<Duration>,
    pub(crate) jitter: Option<bool>,
}

/// The window of a validated `breaker(…)`.
#[derive(Clone, Copy)]
pub(crate) enum WindowSpec {
    Calls(u32),
    Time(Duration),
}

/// A validated `breaker(…)`.
pub(crate) struct BreakerSpec {
    pub(crate) window: WindowSpec,
    pub(crate) failure_ratio: f64,
    pub(crate) min_calls: u32,
    pub(crate) break_for: Option<Duration>,
    pub(crate) probes: Option<u32>,
}

/// The options of one step, validated.
#[derive(Default)]
pub(crate) struct StepOptions {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) domain: Option<syn::LitStr>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: Option<RetrySpec>,
    pub(crate) confidence_threshold: Option<f64>,
    pub(crate) memory: Option<u64>,
    pub(crate) after: Vec<syn::Path>,
    pub(crate) permissions: Vec<syn::LitStr>,
    pub(crate) fallback: Option<syn::Path>,
    pub(crate) compensate: Option<syn::Path>,
    /// `crate = "…"`: the path through which generated code reaches ndf.
    pub(crate) krate: Option<syn::Path>,
    /// `rate = "N/period"`: (N, period).
    pub(crate) rate: Option<(u32, Duration)>,
    /// `concurrency = N` with its `queue` (default 16 × N).
    pub(crate) bulkhead: Option<(u32, u32)>,
    /// `idempotent`.
    pub(crate) idempotent: bool,
    /// `slow_call = "2s"`.
    pub(crate) slow_call: Option<Duration>,
    /// `hedge(after, max)`: (after, max, span of `hedge`).
    pub(crate) hedge: Option<(Duration, u32, proc_macro2::Span)>,
    /// `breaker(…)`.
    pub(crate) breaker: Option<BreakerSpec>,
}

/// Reads and validates the attribute's arguments. Every error is reported;
/// the options that were valid are returned beside them, so that the step
/// type can still be generated and no cascade of errors follows.
pub(crate) fn parse(args: TokenStream, fn_name: &str) -> (StepOptions, darling::Result<()>) {
    let mut errors = darling::Error::accumulator();
    let items = errors
        .handle(NestedMeta::parse_meta_list(args).map_err(Into::into))
        .unwrap_or_default();
    let items = check_keys(items, KEYS, "`#[pattern]`", &mut errors);
    let mut raw = RawArgs::default();
    for item in &items {
        match RawArgs::from_list(std::slice::from_ref(item)) {
            Ok(one) => raw.merge(one),
            Err(e) => errors.push(crate::keys::reword(item, e, form_of)),
        }
    }

    let mut opts = StepOptions {
        name: raw.name,
        domain: raw.domain,
        after: raw.after.map(|a| a.0).unwrap_or_default(),
        permissions: raw.permissions.map(|p| p.0).unwrap_or_default(),
        fallback: raw.fallback.map(|f| f.0),
        compensate: raw.compensate.map(|c| c.0),
        ..StepOptions::default()
    };
    opts.krate = raw
        .krate
        .and_then(|lit| errors.handle(crate::keys::crate_path(&lit)));
    opts.rate = raw.rate.and_then(|lit| errors.handle(rate(&lit)));
    opts.idempotent = raw.idempotent.is_some_and(|flag| flag.is_present());
    let step_name = opts
        .name
        .as_ref()
        .map_or_else(|| fn_name.to_owned(), syn::LitStr::value);
    if let Some(hedge) = raw.hedge {
        opts.hedge = hedge_spec(hedge, opts.idempotent, &step_name, &mut errors);
    }
    opts.bulkhead = bulkhead(raw.concurrency, raw.queue, &mut errors);
    if let Some(name) = &opts.name
        && name.value().trim().is_empty()
    {
        errors.push(darling::Error::custom("a step's `name` cannot be empty").with_span(name));
    }
    opts.timeout = raw.timeout.and_then(|lit| errors.handle(duration(&lit)));
    opts.slow_call = raw.slow_call.and_then(|lit| errors.handle(duration(&lit)));
    opts.memory = raw.memory.and_then(|lit| {
        errors
            .handle(parse_size(&lit.value()).map_err(|m| darling::Error::custom(m).with_span(&lit)))
    });
    opts.confidence_threshold = raw
        .confidence_threshold
        .and_then(|lit| errors.handle(threshold(&lit)));
    if let Some(breaker) = raw.breaker {
        if opts.confidence_threshold.is_some() {
            errors.push(darling::Error::from(syn::Error::new(
                breaker.span,
                "give either `confidence_threshold` or `breaker(…)`, not both: a step's `breaker(…)` opens on its window's failure ratio instead of on its confidence",
            )));
        }
        opts.breaker = breaker_spec(breaker, &mut errors);
    }
    opts.retry = match (raw.retries, raw.retry) {
        (Some(count), Some(retry)) => {
            errors.push(
                darling::Error::custom("give either `retries = N` or `retry(…)`, not both")
                    .with_span(&count),
            );
            errors.handle(retry_spec(retry))
        }
        (Some(count), None) => errors
            .handle(count.base10_parse::<u32>().map_err(Into::into))
            .map(|max| RetrySpec {
                span: count.span(),
                max,
                initial: None,
                multiplier: None,
                max_delay: None,
                jitter: None,
            }),
        (None, Some(retry)) => errors.handle(retry_spec(retry)),
        (None, None) => None,
    };
    (opts, errors.finish())
}

/// `concurrency = N` and its `queue` (default 16 × N).
fn bulkhead(
    concurrency: Option<syn::LitInt>,
    queue: Option<syn::LitInt>,
    errors: &mut darling::error::Accumulator,
) -> Option<(u32, u32)> {
    let queue = queue.and_then(|lit| {
        errors
            .handle(lit.base10_parse::<u32>().map_err(|_| {
                darling::Error::custom("`queue` must be a whole number of runs").with_span(&lit)
            }))
            .map(|n| (n, lit))
    });
    match (concurrency, queue) {
        (Some(lit), queue) => match lit.base10_parse::<u32>() {
            Ok(max) if max >= 1 => Some((max, queue.map_or(max.saturating_mul(16), |(n, _)| n))),
            _ => {
                errors.push(
                    darling::Error::custom(
                        "`concurrency` must be a whole number of runs, at least 1",
                    )
                    .with_span(&lit),
                );
                None
            }
        },
        (None, Some((_, lit))) => {
            errors.push(
                darling::Error::custom(
                    "`queue` bounds the runs waiting for a `concurrency` limit; give `concurrency = N` too",
                )
                .with_span(&lit),
            );
            None
        }
        (None, None) => None,
    }
}

/// `hedge(after = "…", max = N)` of step `name`, which must be `idempotent`.
fn hedge_spec(
    hedge: RawHedge,
    idempotent: bool,
    name: &str,
    errors: &mut darling::error::Accumulator,
) -> Option<(Duration, u32, proc_macro2::Span)> {
    let RawHedge { span, fields } = hedge;
    let after = if let Some(lit) = &fields.after {
        errors.handle(duration(lit))
    } else {
        errors.push(darling::Error::from(syn::Error::new(
            span,
            "`hedge(…)` needs `after = \"50ms\"`: how long an attempt runs before another starts",
        )));
        None
    };
    let max = match &fields.max {
        Some(lit) => match lit.base10_parse::<u32>() {
            Ok(n) if n >= 2 => Some(n),
            _ => {
                errors.push(
                    darling::Error::custom(
                        "`max` is the attempts in flight at most, at least 2 (one hedge)",
                    )
                    .with_span(lit),
                );
                None
            }
        },
        None => Some(2),
    };
    if !idempotent {
        errors.push(darling::Error::from(syn::Error::new(
            span,
            format!(
                "step `{name}` is hedged but not marked `idempotent`: a hedge runs it again while the first attempt may still succeed\nhelp: add `idempotent` if running `{name}` twice does no more than running it once"
            ),
        )));
    }
    Some((after?, max?, span))
}

/// `breaker(…)`: every field checked, each error on its value.
fn breaker_spec(raw: RawBreaker, errors: &mut darling::error::Accumulator) -> Option<BreakerSpec> {
    let fields = raw.fields;
    let window = match &fields.window {
        None => Some(WindowSpec::Calls(100)),
        Some(RawWindow(expr)) => errors.handle(window_spec(expr)),
    };
    let failure_ratio = match &fields.failure_ratio {
        None => Some(0.5),
        Some(expr) => errors.handle(match number(expr) {
            Some(x) if x > 0.0 && x <= 1.0 => Ok(x),
            _ => Err(darling::Error::custom(
                "`failure_ratio` is the share of failures that opens the breaker: a number above 0.0 and at most 1.0, such as 0.5",
            )
            .with_span(expr)),
        }),
    };
    let min_calls = match (&fields.min_calls, window) {
        (None, Some(WindowSpec::Calls(size))) => Some(size.min(20)),
        (None, _) => Some(20),
        (Some(lit), window) => errors.handle(at_least_one(lit, "min_calls").and_then(|n| {
            match window {
                Some(WindowSpec::Calls(size)) if n > size => Err(darling::Error::custom(format!(
                    "`min_calls = {n}` is more than the window of {size} calls holds: the breaker could never open"
                ))
                .with_span(lit)),
                _ => Ok(n),
            }
        })),
    };
    let break_for = fields.break_for.as_ref().map(|lit| {
        errors.handle(duration(lit).and_then(|d| {
            if d.is_zero() {
                Err(darling::Error::custom("`break_for` must be longer than zero").with_span(lit))
            } else {
                Ok(d)
            }
        }))
    });
    let probes = fields
        .probes
        .as_ref()
        .map(|lit| errors.handle(at_least_one(lit, "probes")));
    Some(BreakerSpec {
        window: window?,
        failure_ratio: failure_ratio?,
        min_calls: min_calls?,
        // A given value that is wrong was reported: no spec.
        break_for: break_for.map_or(Some(None), |d| d.map(Some))?,
        probes: probes.map_or(Some(None), |n| n.map(Some))?,
    })
}

/// `window = 100` (the last N outcomes) or `window = "30s"` (a period).
fn window_spec(expr: &syn::Expr) -> darling::Result<WindowSpec> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(n),
            ..
        }) => match n.base10_parse::<u32>() {
            Ok(size @ 1..=1024) => Ok(WindowSpec::Calls(size)),
            _ => Err(darling::Error::custom(
                "a window of calls holds from 1 to 1024 outcomes; for more, give a period, such as \"30s\"",
            )
            .with_span(n)),
        },
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => match duration(text)? {
            period if period >= Duration::from_millis(10) => Ok(WindowSpec::Time(period)),
            _ => Err(
                darling::Error::custom("a window of time is at least \"10ms\"").with_span(text),
            ),
        },
        other => Err(darling::Error::custom(
            "expected the outcomes the window holds, such as 100, or its period, such as \"30s\"",
        )
        .with_span(other)),
    }
}

/// A whole number of at least 1, for the option `what`.
fn at_least_one(lit: &syn::LitInt, what: &str) -> darling::Result<u32> {
    match lit.base10_parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(
            darling::Error::custom(format!("`{what}` must be a whole number, at least 1"))
                .with_span(lit),
        ),
    }
}

/// `"N/period"`: at most N starts per period (`s`, `m`, `h`, `ms`, or a
/// duration such as `100ms`).
fn rate(lit: &syn::LitStr) -> darling::Result<(u32, Duration)> {
    let text = lit.value();
    let fail = |why: &str| {
        darling::Error::custom(format!(
            "malformed rate `{text}`: {why}; expected starts per period, such as \"100/s\", \"30/m\" or \"5/100ms\""
        ))
        .with_span(lit)
    };
    let Some((count, period)) = text.split_once('/') else {
        return Err(fail("no `/`"));
    };
    let count: u32 = match count.trim().parse() {
        Ok(n) if n >= 1 => n,
        _ => return Err(fail("the count must be a whole number of at least 1")),
    };
    let period = match period.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_mins(1),
        "h" | "hour" => Duration::from_hours(1),
        "ms" => Duration::from_millis(1),
        other => parse_duration(other).map_err(|_| fail("the period is not a duration"))?,
    };
    if period.is_zero() {
        return Err(fail("the period must be longer than zero"));
    }
    Ok((count, period))
}

fn duration(lit: &syn::LitStr) -> darling::Result<Duration> {
    parse_duration(&lit.value()).map_err(|m| darling::Error::custom(m).with_span(lit))
}

fn threshold(lit: &syn::Expr) -> darling::Result<f64> {
    match number(lit) {
        Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Some(x) => Err(darling::Error::custom(format!(
            "`confidence_threshold` must be between 0.0 and 1.0, found {x}"
        ))
        .with_span(lit)),
        None => Err(
            darling::Error::custom("expected a number between 0.0 and 1.0, such as 0.85")
                .with_span(lit),
        ),
    }
}

fn retry_spec(raw: RawRetry) -> darling::Result<RetrySpec> {
    let mut errors = darling::Error::accumulator();
    let RawRetry { span, fields: raw } = raw;
    let max = if let Some(lit) = &raw.max {
        errors.handle(lit.base10_parse::<u32>().map_err(Into::into))
    } else {
        errors.push(darling::Error::from(syn::Error::new(
            span,
            "`retry(…)` needs `max = N`, the number of retries",
        )));
        None
    };
    let initial = raw.initial.and_then(|l| errors.handle(duration(&l)));
    let max_delay = raw.max_delay.and_then(|l| errors.handle(duration(&l)));
    let multiplier = raw.multiplier.and_then(|lit| match number(&lit) {
        Some(m) if m >= 1.0 => Some(m),
        _ => {
            errors.push(
                darling::Error::custom(
                    "`multiplier` must be a number of at least 1.0, such as 2.0",
                )
                .with_span(&lit),
            );
            None
        }
    });
    errors.finish()?;
    Ok(RetrySpec {
        span,
        max: max.unwrap_or(0),
        initial,
        multiplier,
        max_delay,
        jitter: raw.jitter.map(|b| b.value),
    })
}
