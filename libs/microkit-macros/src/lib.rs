//! `#[protection_domain]`: marks the function that initialises a protection domain and returns
//! its [`Handler`], as in rust-sel4's `sel4-microkit`.
//!
//! ```text
//! #[protection_domain(heap_size = 0x10000)]
//! fn init() -> impl Handler { ... }
//! ```
//!
//! The generated code names the runtime crate by the name the PD's `Cargo.toml` gives it
//! (found with `proc-macro-crate`), so a PD that renames the dependency to `sel4-microkit`
//! (`sel4-microkit = { package = "edgeos-microkit", path = ... }`) builds unchanged.
//!
//! [`Handler`]: https://docs.rs/sel4-microkit

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use proc_macro_crate::{crate_name, FoundCrate};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Expr, Ident, ItemFn, Token};

/// The package name of the runtime.
const RUNTIME_PACKAGE: &str = "edgeos-microkit";

/// One `key = value` argument.
struct Arg {
    key: Ident,
    value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(Arg { key, value })
    }
}

struct Args {
    heap_size: Option<Expr>,
    stack_size: Option<Expr>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let list = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        let mut args = Args { heap_size: None, stack_size: None };
        for arg in list {
            let slot = match arg.key.to_string().as_str() {
                "heap_size" => &mut args.heap_size,
                "stack_size" => &mut args.stack_size,
                other => {
                    return Err(syn::Error::new(
                        arg.key.span(),
                        format!("unknown argument `{other}`: expected `heap_size = ...` or `stack_size = ...`"),
                    ))
                }
            };
            if slot.is_some() {
                return Err(syn::Error::new(arg.key.span(), format!("`{}` given twice", arg.key)));
            }
            *slot = Some(arg.value);
        }
        Ok(args)
    }
}

/// The path of the runtime crate as the calling crate sees it.
fn runtime_path() -> TokenStream2 {
    match crate_name(RUNTIME_PACKAGE) {
        Ok(FoundCrate::Itself) => quote!(crate),
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
        // Not found in the manifest (e.g. used through a re-export): assume the usual name.
        Err(_) => quote!(::edgeos_microkit),
    }
}

/// Declares the protection domain's entry: the function runs once and returns the handler
/// that the runtime's event loop drives.
///
/// Arguments: `heap_size = N` gives the PD a heap of N bytes (a global allocator for `alloc`);
/// `stack_size = N` is accepted for source compatibility: the stack comes from the system
/// description's `stack_size`, and N is checked against nothing.
#[proc_macro_attribute]
pub fn protection_domain(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as Args);
    let func = parse_macro_input!(item as ItemFn);
    let krate = runtime_path();
    let name = &func.sig.ident;
    if !func.sig.inputs.is_empty() {
        return syn::Error::new_spanned(&func.sig.inputs, "the protection domain's init function takes no arguments")
            .to_compile_error()
            .into();
    }
    let heap = args.heap_size.map(|size| {
        quote! {
            #krate::_private::declare_heap!(#size);
        }
    });
    let stack = args.stack_size.map(|size| {
        quote! {
            const _: usize = #size;
        }
    });
    quote! {
        #func

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn __edgeos_microkit_main() -> ! {
            #krate::_private::run_main(#name)
        }

        #heap
        #stack
    }
    .into()
}
