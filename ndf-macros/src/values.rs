//! Parsing of option values written as strings: durations and sizes.

use std::time::Duration;

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"1h"` or `"1.5s"`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let fail = || {
        format!(
            "malformed duration `{text}`: expected a number followed by `ms`, `s`, `m` or `h`, such as \"250ms\" or \"30s\""
        )
    };
    let (number, unit) = split_number(text).ok_or_else(fail)?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(fail()),
    };
    let zero = || format!("duration `{text}` must be longer than zero");
    let secs = number * scale;
    if secs <= 0.0 {
        return Err(zero());
    }
    // Shorter than a nanosecond is zero too: the runtime relies on every
    // timeout being longer than zero.
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Err(zero()),
        Ok(d) => Ok(d),
        Err(_) => Err(fail()),
    }
}

/// Parses `"512MB"`, `"2GB"`, `"64KiB"`: binary multiples (1 KB = 1024 bytes,
/// as memory budgets are meant), `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`,
/// `TB`/`TiB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let fail = || {
        format!(
            "malformed size `{text}`: expected a number followed by `B`, `KB`, `MB`, `GB` or `TB`, such as \"512MB\""
        )
    };
    let (number, unit) = split_number(text).ok_or_else(fail)?;
    let power = match unit {
        "B" => 0,
        "KB" | "KiB" => 1,
        "MB" | "MiB" => 2,
        "GB" | "GiB" => 3,
        "TB" | "TiB" => 4,
        _ => return Err(fail()),
    };
    let bytes = number * 1024f64.powi(power);
    if bytes < 1.0 || bytes > 2f64.powi(62) {
        return Err(format!("size `{text}` is out of range"));
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "range checked above"
    )]
    Ok(bytes.round() as u64)
}

/// A numeric literal, possibly negated or parenthesised.
pub(crate) fn number(expr: &syn::Expr) -> Option<f64> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f),
            ..
        }) => f.base10_parse().ok(),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse::<u32>().ok().map(f64::from),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => number(expr).map(|x| -x),
        syn::Expr::Paren(p) => number(&p.expr),
        _ => None,
    }
}

fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let number: f64 = number.parse().ok()?;
    number.is_finite().then_some((number, unit.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_mins(5)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_hours(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        // "0.0000001ms" is 0.1 ns: zero once a `Duration`, and refused so.
        for bad in [
            "",
            "30",
            "30 secs",
            "s",
            "-1s",
            "0s",
            "0.0000001ms",
            "1d",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("100B"), Ok(100));
        for bad in ["", "512", "512 megabytes", "MB", "0MB", "1PB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
