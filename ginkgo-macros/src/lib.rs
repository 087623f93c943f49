//! `#[derive(Settings)]`: declares a group of typed settings beside the code that uses them.
//!
//! See `ginkgo::config` for the model and a full example. The derive reads:
//!
//! - `#[settings(group = "numbers")]` on the struct: the dotted group path (empty for
//!   top-level settings), and optionally `crate = ginkgo_config` (the path of the config crate) when deriving
//!   without the `ginkgo` facade;
//! - on each field: its doc comment as help text, `#[setting(default = EXPR)]` (else
//!   `Default::default()`), and `#[setting(validate = path::to::function)]` where the function
//!   is `fn(&T) -> Result<(), String>`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::{Data, DeriveInput, Expr, ExprLit, Fields, Lit, LitStr, Meta, Path, parse_macro_input};

/// Derives `Settings` for a struct with named fields; see the crate docs.
#[proc_macro_derive(Settings, attributes(settings, setting))]
pub fn derive_settings(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

struct Field {
    ident: syn::Ident,
    ty: syn::Type,
    help: String,
    default: Option<Expr>,
    validate: Option<Path>,
}

fn doc_text(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join(" ").trim().to_owned()
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let mut group = String::new();
    let mut krate: Path = syn::parse_quote!(::ginkgo::config);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("settings")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("group") {
                group = meta.value()?.parse::<LitStr>()?.value();
                Ok(())
            } else if meta.path.is_ident("crate") {
                krate = meta.value()?.parse::<Path>()?;
                Ok(())
            } else {
                Err(meta.error("expected `group = \"...\"` or `crate = path`"))
            }
        })?;
    }
    if group.split('.').any(str::is_empty) && !group.is_empty() {
        return Err(syn::Error::new_spanned(
            name,
            format!("group {group:?} has an empty segment"),
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "Settings can only be derived for a struct with named fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            name,
            "Settings can only be derived for a struct with named fields",
        ));
    };
    let mut fields = Vec::new();
    for field in &named.named {
        let mut default = None;
        let mut validate = None;
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("setting")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    default = Some(meta.value()?.parse::<Expr>()?);
                    Ok(())
                } else if meta.path.is_ident("validate") {
                    validate = Some(meta.value()?.parse::<Path>()?);
                    Ok(())
                } else {
                    Err(meta.error("expected `default = EXPR` or `validate = path`"))
                }
            })?;
        }
        fields.push(Field {
            ident: field.ident.clone().expect("named fields have names"),
            ty: field.ty.clone(),
            help: doc_text(&field.attrs),
            default,
            validate,
        });
    }

    let private = quote!(#krate::__private);
    let info = fields.iter().map(|f| {
        let key = f.ident.to_string();
        let ty = &f.ty;
        let help = &f.help;
        let default = default_expr(f);
        quote! {
            #private::SettingInfo::new::<#ty>(#group, #key, #help, {
                let value: #ty = #default;
                #private::to_value(&value)
            })
        }
    });
    let reads = fields.iter().map(|f| {
        let ident = &f.ident;
        let key = f.ident.to_string();
        let ty = &f.ty;
        let check = match &f.validate {
            Some(path) => quote!(::core::option::Option::Some(
                #path as fn(&#ty) -> ::core::result::Result<(), ::std::string::String>
            )),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            let #ident = #private::read::<#ty>(values, #group, #key, #check, &mut problems);
        }
    });
    let build = fields.iter().map(|f| {
        let ident = &f.ident;
        quote!(#ident: #ident.expect("a missing value is recorded as a problem"))
    });
    let type_name = name.to_string();
    Ok(quote! {
        impl #krate::Settings for #name {
            const GROUP: &'static str = #group;

            fn settings() -> ::std::vec::Vec<#private::SettingInfo> {
                ::std::vec![#(#info),*]
            }

            fn from_values(
                values: &#private::Values,
            ) -> ::core::result::Result<Self, #krate::ConfigError> {
                let mut problems = ::std::vec::Vec::new();
                #(#reads)*
                if !problems.is_empty() {
                    return ::core::result::Result::Err(#private::errors(problems));
                }
                ::core::result::Result::Ok(Self { #(#build),* })
            }
        }

        #private::inventory::submit! {
            #private::Group::new::<#name>(#group, #type_name)
        }
    })
}

/// The default of a field: a string literal converts with `Into` (so `"x"` works for `String`
/// and `PathBuf`), anything else must have the field's type; no default means `Default`.
fn default_expr(field: &Field) -> Tokens {
    match &field.default {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => quote!(::core::convert::Into::into(#s)),
        Some(expr) => quote!(#expr),
        None => quote!(::core::default::Default::default()),
    }
}
