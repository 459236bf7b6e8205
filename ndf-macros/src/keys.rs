//! Option keys: the rule is that every key is known and given once. Unknown
//! keys get a "did you mean" and the list of valid keys.

use darling::ast::NestedMeta;
use proc_macro2::Span;

/// Checks `items` against `known`, reporting every unknown or repeated key,
/// and returns the items whose key is known and first of its name.
pub(crate) fn check_keys(
    items: Vec<NestedMeta>,
    known: &[&str],
    what: &str,
    errors: &mut darling::error::Accumulator,
) -> Vec<NestedMeta> {
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for item in items {
        let NestedMeta::Meta(meta) = &item else {
            errors.push(
                darling::Error::custom(format!(
                    "expected `key = value`; {what} takes the options {}",
                    list(known)
                ))
                .with_span(&item),
            );
            continue;
        };
        let path = meta.path();
        let key = path.get_ident().map_or_else(
            || quote::ToTokens::to_token_stream(path).to_string(),
            ToString::to_string,
        );
        if !known.contains(&key.as_str()) {
            errors.push(unknown_key(&key, known, what, span_of(path)));
        } else if seen.contains(&key) {
            errors.push(
                darling::Error::custom(format!(
                    "`{key}` is given more than once; give each option once"
                ))
                .with_span(path),
            );
        } else {
            seen.push(key);
            kept.push(item);
        }
    }
    kept
}

fn span_of(path: &syn::Path) -> Span {
    syn::spanned::Spanned::span(path)
}

fn unknown_key(key: &str, known: &[&str], what: &str, span: Span) -> darling::Error {
    let nearest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = nearest.map_or_else(String::new, |(_, k)| format!("; did you mean `{k}`?"));
    darling::Error::from(syn::Error::new(
        span,
        format!(
            "unknown option `{key}` for {what}{hint}\nexpected one of: {}",
            list(known)
        ),
    ))
}

fn list(known: &[&str]) -> String {
    known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
