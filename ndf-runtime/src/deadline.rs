//! The worst-case time of a workflow, computed by the compiler: each step's
//! from its options (timeout, attempts, backoff caps, fallback, rate and
//! bulkhead waits), a sequence's and a `degrade!`'s as sums, a
//! `parallel!`'s as the longest task. A workflow with a `deadline` that
//! its worst case can exceed does not compile; the message names the
//! slowest path.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::large_types_passed_by_value,
    reason = "const fns convert with `as` (nanoseconds, never negative, within range) and build messages by moving their buffer"
)]

use core::time::Duration;

use crate::model::StepMeta;
use crate::order::Violation;

/// Steps a path names at most in a message.
const PATH: usize = 12;

/// The worst-case time of part of a workflow, and its slowest path.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    nanos: u128,
    /// The steps of the slowest path, with their worst cases.
    path: [(&'static str, u128); PATH],
    len: usize,
    /// Steps on the path beyond [`PATH`].
    more: usize,
    /// A step whose worst case cannot be known (no `timeout` of its own).
    unknown: Option<&'static str>,
}

const fn nanos(d: Duration) -> u128 {
    d.as_nanos()
}

impl Cost {
    const ZERO: Cost = Cost {
        nanos: 0,
        path: [("", 0); PATH],
        len: 0,
        more: 0,
        unknown: None,
    };

    /// The worst case of one step: `1 + retries` attempts under its
    /// timeout, the backoff between them (each delay at its planned value,
    /// which jitter only shortens, capped at `max_delay`), its fallback's
    /// timeout, and the waits for a start of its `rate` and a place of its
    /// bulkhead (each at most its timeout). `unknown` without a timeout of
    /// its own, or a fallback without one.
    #[must_use]
    pub const fn step(meta: &StepMeta) -> Cost {
        let Some(timeout) = meta.timeout else {
            return Cost {
                unknown: Some(meta.name),
                ..Cost::ZERO
            };
        };
        let timeout = nanos(timeout);
        let retries = meta.retry.max_retries as u128;
        let mut total = timeout * (1 + retries);
        let cap = nanos(meta.retry.max_delay);
        let mut delay = nanos(meta.retry.initial) as f64;
        let mut r = 0;
        while r < retries {
            let planned = if delay > cap as f64 {
                cap
            } else {
                delay as u128
            };
            total += planned;
            delay *= if meta.retry.multiplier < 1.0 {
                1.0
            } else {
                meta.retry.multiplier
            };
            r += 1;
        }
        if meta.fallback.is_some() {
            match meta.fallback_timeout {
                Some(t) => total += nanos(t),
                None => {
                    return Cost {
                        unknown: match meta.fallback {
                            Some(name) => Some(name),
                            None => Some(meta.name),
                        },
                        ..Cost::ZERO
                    };
                }
            }
        }
        if meta.rate.is_some() {
            total += timeout;
        }
        if meta.bulkhead.is_some() {
            total += timeout;
        }
        let mut path = [("", 0); PATH];
        path[0] = (meta.name, total);
        Cost {
            nanos: total,
            path,
            len: 1,
            more: 0,
            unknown: None,
        }
    }

    /// Stages one after another (a `sequential!`, the levels of a
    /// `degrade!`, the phases of an `orchestrate!`): their sum.
    #[must_use]
    pub const fn sum(parts: &[Cost]) -> Cost {
        let mut out = Cost::ZERO;
        let mut i = 0;
        while i < parts.len() {
            let p = parts[i];
            if out.unknown.is_none() && p.unknown.is_some() {
                out.unknown = p.unknown;
            }
            out.nanos += p.nanos;
            let mut j = 0;
            while j < p.len {
                if out.len < PATH {
                    out.path[out.len] = p.path[j];
                    out.len += 1;
                } else {
                    out.more += 1;
                }
                j += 1;
            }
            out.more += p.more;
            i += 1;
        }
        out
    }

    /// Tasks side by side (a `parallel!`): the longest.
    #[must_use]
    pub const fn longest(parts: &[Cost]) -> Cost {
        let mut out = Cost::ZERO;
        let mut i = 0;
        while i < parts.len() {
            let p = parts[i];
            if p.unknown.is_some() {
                return p;
            }
            if i == 0 || p.nanos > out.nanos {
                out = p;
            }
            i += 1;
        }
        out
    }

    /// The worst case, when it is known.
    #[must_use]
    pub const fn worst(&self) -> Option<Duration> {
        if self.unknown.is_some() {
            return None;
        }
        let secs = self.nanos / 1_000_000_000;
        let secs = if secs > u64::MAX as u128 {
            u64::MAX
        } else {
            secs as u64
        };
        Some(Duration::new(secs, (self.nanos % 1_000_000_000) as u32))
    }
}

/// Writes `nanos` as milliseconds (`1234ms`).
const fn push_ms(v: Violation, nanos: u128) -> Violation {
    let mut ms = nanos / 1_000_000;
    let mut digits = [0u8; 40];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (ms % 10) as u8;
        n += 1;
        ms /= 10;
        if ms == 0 {
            break;
        }
    }
    let mut v = v;
    while n > 0 {
        n -= 1;
        let d = [digits[n]];
        v = match core::str::from_utf8(&d) {
            Ok(s) => v.push(s),
            Err(_) => v,
        };
    }
    v.push("ms")
}

/// Why `workflow` with worst case `cost` cannot keep its `deadline`, if it
/// cannot.
#[must_use]
pub const fn check_deadline(workflow: &str, cost: &Cost, deadline: Duration) -> Option<Violation> {
    if let Some(step) = cost.unknown {
        let v = Violation::new()
            .push("workflow `")
            .push(workflow)
            .push("` has a `deadline`, but step `")
            .push(step)
            .push("` has no `timeout` of its own, so its worst case is not known at compile time; give it one, such as `#[pattern(timeout = \"500ms\")]`");
        return Some(v);
    }
    if cost.nanos <= nanos(deadline) {
        return None;
    }
    let mut v = Violation::new()
        .push("workflow `")
        .push(workflow)
        .push("` can take ");
    v = push_ms(v, cost.nanos);
    v = v.push(", past its `deadline` of ");
    v = push_ms(v, nanos(deadline));
    v = v.push(": its slowest path is ");
    let mut i = 0;
    while i < cost.len {
        if i > 0 {
            v = v.push(" => ");
        }
        v = v.push(cost.path[i].0).push(" (");
        v = push_ms(v, cost.path[i].1);
        v = v.push(")");
        i += 1;
    }
    if cost.more > 0 {
        v = v.push(" => …");
    }
    Some(v.push("; shorten its timeouts, retries or backoff, or raise the deadline"))
}
