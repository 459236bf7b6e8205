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

/// The one table of a macro's options: each key written once, with the
/// type darling reads it as and, where darling's own words for a value of
/// the wrong kind would not help, the form it takes. Generates the raw
/// options struct (every field optional, so that options can be read one
/// at a time and a bad one hides no other), the list of keys for
/// [`check_keys`], a `merge` of options read one at a time, and the form
/// of each key.
///
/// `krate as "crate": syn::LitStr` names a key that is a Rust keyword.
macro_rules! option_table {
    (
        $(#[$meta:meta])*
        struct $raw:ident, keys $keys:ident, forms $form:ident {
            $( $key:ident $(as $shown:literal)? : $ty:ty $(=> $text:literal)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(darling::FromMeta, Default)]
        struct $raw {
            $( $(#[darling(rename = $shown)])? $key: Option<$ty>, )*
        }

        /// Every key, as written.
        pub(crate) const $keys: &[&str] = &[$( crate::keys::option_table!(@key $key $($shown)?) ),*];

        impl $raw {
            /// Takes every option `other` has.
            #[allow(dead_code)]
            fn merge(&mut self, other: Self) {
                $( if other.$key.is_some() { self.$key = other.$key; } )*
            }
        }

        /// The form the value of `key` takes, where the table gives one.
        #[allow(dead_code)]
        fn $form(key: &str) -> Option<&'static str> {
            const FORMS: &[(&str, Option<&str>)] = &[$(
                (
                    crate::keys::option_table!(@key $key $($shown)?),
                    crate::keys::option_table!(@form $($text)?),
                )
            ),*];
            FORMS.iter().find(|(k, _)| *k == key).and_then(|(_, form)| *form)
        }
    };
    (@key $key:ident $shown:literal) => { $shown };
    (@key $key:ident) => { stringify!($key) };
    (@form $text:literal) => { Some($text) };
    (@form) => { None };
}
pub(crate) use option_table;

/// The path of `crate = "…"`: where a crate that re-exports ndf keeps it.
pub(crate) fn crate_path(lit: &syn::LitStr) -> darling::Result<syn::Path> {
    lit.parse::<syn::Path>().map_err(|_| {
        darling::Error::custom(format!(
            "`crate` takes the path of the `ndf` crate, such as \"my_crate::ndf\"; `{}` is not a path",
            lit.value()
        ))
        .with_span(lit)
    })
}

/// The path generated code reaches ndf's support items through.
pub(crate) fn private_path(krate: Option<&syn::Path>) -> proc_macro2::TokenStream {
    krate.map_or_else(
        || quote::quote!(::ndf::__private),
        |path| quote::quote!(#path::__private),
    )
}

/// darling's own words for a value of the wrong kind ("Unexpected type
/// `int`") become ours, naming the key and the form it takes (`form_of`,
/// from the macro's option table).
pub(crate) fn reword(
    item: &NestedMeta,
    error: darling::Error,
    form_of: fn(&str) -> Option<&'static str>,
) -> darling::Error {
    let NestedMeta::Meta(syn::Meta::NameValue(nv)) = item else {
        return error;
    };
    let key = nv
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    let Some(form) = form_of(&key) else {
        return error;
    };
    darling::Error::custom(format!("`{key}` takes {form}")).with_span(&nv.value)
}
