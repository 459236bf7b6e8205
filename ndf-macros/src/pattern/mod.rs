//! `#[pattern]`: an async fn becomes a workflow step. The fn stays as
//! written; a step type of the same name is added in the type namespace.

mod args;
mod expand;
mod signature;

use proc_macro2::TokenStream;
use quote::ToTokens as _;

/// Entry point of `#[pattern]`.
pub(crate) fn pattern(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(f) = syn::parse2::<syn::ItemFn>(item.clone()) else {
        let error = syn::Error::new_spanned(
            &item,
            "`#[pattern]` goes on an `async fn`, such as `async fn validate_input(raw: Raw) -> Result<Valid, MyError>`",
        );
        let mut out = error.to_compile_error();
        out.extend(item);
        return out;
    };
    let (options, option_errors) = args::parse(args, &f.sig.ident.to_string());
    match signature::analyse(&f) {
        Ok(sig) => {
            let mut out = expand::expand(&f, &options, &sig);
            if let Err(e) = option_errors {
                out.extend(e.write_errors());
            }
            out
        }
        Err(sig_errors) => {
            // The fn is emitted as written, so that its own body still
            // checks, beside a stub step type with the signature as near as
            // it can be read: workflows that use the step add no second
            // error (thiserror's fallback impls do the same).
            let mut all = darling::Error::accumulator();
            all.push(sig_errors);
            if let Err(e) = option_errors {
                all.push(e);
            }
            let mut out = f.to_token_stream();
            if let Some(stand_in) = signature::stand_in(&f) {
                out.extend(expand::stub(&f, &options, &stand_in));
            }
            if let Err(e) = all.finish() {
                out.extend(e.write_errors());
            }
            out
        }
    }
}
