//! `#[derive(Validate)]` and `#[derive(JsonSchema)]`: one reading of the
//! `#[garde(...)]` rules for both the check and the schema.
//!
//! garde's and schemars' derives each read `#[garde(...)]` their own way
//! (`inner` on an `Option`, byte and character lengths), and the
//! disagreement was silent. Here the attribute is parsed once
//! ([`parse_rules`]) and both derives emit from that one parse: the check
//! calls `ferrapi_core::validation::rules`, the schema is schemars' derive
//! of a shadow copy of the type without the `#[garde]` attributes, then
//! `ferrapi_core::validation::constrain` writes each rule's keywords. A
//! rule with no schema form that is not check-only by nature is a compile
//! error.

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Data, DeriveInput, Expr, ExprLit, Fields, GenericParam, Ident, Lit, LitStr, Meta,
    Token, Type,
};

/// One parsed rule.
pub(crate) enum Rule {
    Length {
        min: Option<Expr>,
        max: Option<Expr>,
    },
    Range {
        min: Option<Expr>,
        max: Option<Expr>,
    },
    /// A regular expression (pattern, contains, prefix, suffix, ascii,
    /// alphanumeric), checked at compile time.
    Pattern(String, Span),
    Email,
    Url,
    Ip(&'static str),
    Required,
    Matches(Ident),
    Custom(Expr),
    Inner(Vec<Rule>),
}

/// A field's parsed `#[garde]` attributes.
#[derive(Default)]
pub(crate) struct FieldSpec {
    pub(crate) skip: bool,
    pub(crate) rules: Vec<Rule>,
}

fn err<T>(span: Span, msg: impl std::fmt::Display) -> syn::Result<T> {
    Err(syn::Error::new(span, msg))
}

fn lit_str(expr: &Expr, rule: &str) -> syn::Result<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.value()),
        other => err(
            other.span(),
            format!(
                "`{rule}(...)` needs a string literal: the OpenAPI schema shows it as a pattern, so it must be known at compile time"
            ),
        ),
    }
}

fn bounds(list: &syn::MetaList, rule: &str) -> syn::Result<(Option<Expr>, Option<Expr>)> {
    let mut min = None;
    let mut max = None;
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(list.tokens.clone())?;
    for meta in metas {
        match &meta {
            Meta::NameValue(nv) if nv.path.is_ident("min") => min = Some(nv.value.clone()),
            Meta::NameValue(nv) if nv.path.is_ident("max") => max = Some(nv.value.clone()),
            Meta::NameValue(nv) if nv.path.is_ident("equal") => {
                min = Some(nv.value.clone());
                max = Some(nv.value.clone());
            }
            Meta::Path(p) if rule == "length" && p.is_ident("chars") => {}
            Meta::Path(p)
                if rule == "length"
                    && ["bytes", "simple", "graphemes", "utf16"]
                        .iter()
                        .any(|m| p.is_ident(m)) =>
            {
                return err(
                    p.span(),
                    "only character lengths can be shown in JSON Schema (`maxLength` counts characters, as pydantic does): write `length(min = …, max = …)` (ferrapi counts characters on strings and elements on lists), or check other lengths in a `custom` rule",
                );
            }
            other => {
                return err(
                    other.span(),
                    format!("`{rule}` takes `min = …`, `max = …` or `equal = …`"),
                );
            }
        }
    }
    if min.is_none() && max.is_none() {
        return err(
            list.span(),
            format!("`{rule}` needs `min`, `max` or `equal`"),
        );
    }
    Ok((min, max))
}

fn check_regex(pattern: &str, span: Span) -> syn::Result<()> {
    regex_syntax::Parser::new()
        .parse(pattern)
        .map(|_| ())
        .or_else(|e| err(span, format!("invalid regular expression: {e}")))
}

/// Parses a list of rules (the inside of `#[garde(...)]` or `inner(...)`).
fn parse_list(tokens: TokenStream2, spec: &mut FieldSpec, top: bool) -> syn::Result<Vec<Rule>> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut rules = Vec::new();
    for meta in metas {
        let name = meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let span = meta.span();
        let rule = match (name.as_str(), &meta) {
            ("skip", Meta::Path(_)) if top => {
                spec.skip = true;
                continue;
            }
            // Nested models are always checked (as pydantic does): `dive`
            // is accepted and changes nothing.
            ("dive", Meta::Path(_)) if top => continue,
            ("dive", _) => {
                return err(
                    span,
                    "`dive(context)` is not supported: ferrapi validates with the unit context",
                );
            }
            ("required", Meta::Path(_)) => Rule::Required,
            ("email", Meta::Path(_)) => Rule::Email,
            ("url", Meta::Path(_)) => Rule::Url,
            ("ip", Meta::Path(_)) => Rule::Ip("Any"),
            ("ipv4", Meta::Path(_)) => Rule::Ip("V4"),
            ("ipv6", Meta::Path(_)) => Rule::Ip("V6"),
            ("ascii", Meta::Path(_)) => Rule::Pattern(r"^[\x00-\x7F]*$".into(), span),
            ("alphanumeric", Meta::Path(_)) => {
                Rule::Pattern(r"^[\p{Alphabetic}\p{N}]*$".into(), span)
            }
            ("length", Meta::List(l)) => {
                let (min, max) = bounds(l, "length")?;
                Rule::Length { min, max }
            }
            ("range", Meta::List(l)) => {
                let (min, max) = bounds(l, "range")?;
                Rule::Range { min, max }
            }
            ("pattern", Meta::List(l)) => {
                let e: Expr = syn::parse2(l.tokens.clone())?;
                let p = lit_str(&e, "pattern")?;
                check_regex(&p, e.span())?;
                Rule::Pattern(p, e.span())
            }
            (r @ ("contains" | "prefix" | "suffix"), Meta::List(l)) => {
                let e: Expr = syn::parse2(l.tokens.clone())?;
                let s = regex_syntax::escape(&lit_str(&e, r)?);
                let p = match r {
                    "contains" => s,
                    "prefix" => format!("^{s}"),
                    _ => format!("{s}$"),
                };
                Rule::Pattern(p, e.span())
            }
            ("matches", Meta::List(l)) => Rule::Matches(syn::parse2(l.tokens.clone())?),
            ("custom", Meta::List(l)) => Rule::Custom(syn::parse2(l.tokens.clone())?),
            ("inner", Meta::List(l)) => Rule::Inner(parse_list(l.tokens.clone(), spec, false)?),
            ("credit_card" | "phone_number", _) => {
                return err(
                    span,
                    format!("`{name}` is not available in ferrapi: check it in a `custom` rule"),
                );
            }
            ("adapt", _) => return err(span, "`adapt` is not supported by ferrapi's `Validate`"),
            _ => {
                return err(
                    span,
                    format!(
                        "unknown rule `{}`: ferrapi's rules are skip, required, length, range, pattern, contains, prefix, suffix, ascii, alphanumeric, email, url, ip, ipv4, ipv6, matches, custom, inner, dive",
                        quote::ToTokens::to_token_stream(meta.path())
                    ),
                );
            }
        };
        rules.push(rule);
    }
    let patterns = rules
        .iter()
        .filter(|r| matches!(r, Rule::Pattern(..)))
        .count();
    if patterns > 1
        && let Some(Rule::Pattern(_, span)) =
            rules.iter().rev().find(|r| matches!(r, Rule::Pattern(..)))
    {
        return err(
            *span,
            "one string pattern per value (pattern, contains, prefix, suffix, ascii and alphanumeric are each a JSON Schema `pattern`): combine them into one `pattern(\"…\")`",
        );
    }
    Ok(rules)
}

/// The `#[garde(...)]` attributes of a field.
pub(crate) fn parse_rules(attrs: &[Attribute]) -> syn::Result<FieldSpec> {
    let mut spec = FieldSpec::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("garde")) {
        let list = attr.meta.require_list()?;
        let rules = parse_list(list.tokens.clone(), &mut spec, true)?;
        spec.rules.extend(rules);
    }
    Ok(spec)
}

/// Container-level `#[garde(...)]`: `custom(...)` rules on the whole value.
fn container_rules(attrs: &[Attribute]) -> syn::Result<Vec<Expr>> {
    let mut customs = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("garde")) {
        let metas = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for meta in metas {
            match &meta {
                Meta::List(l) if l.path.is_ident("custom") => {
                    customs.push(syn::parse2(l.tokens.clone())?)
                }
                Meta::Path(p) if p.is_ident("allow_unvalidated") || p.is_ident("transparent") => {}
                Meta::List(l) if l.path.is_ident("context") => {
                    return err(
                        l.span(),
                        "`context(...)` is not supported: ferrapi validates with the unit context (`custom` functions take `&()`)",
                    );
                }
                other => {
                    return err(
                        other.span(),
                        "unknown container rule: ferrapi takes `custom(...)` here",
                    );
                }
            }
        }
    }
    Ok(customs)
}

/// The name of a serde attribute value: `rename = "x"` or
/// `rename(deserialize = "x")`.
fn serde_value(attrs: &[Attribute], key: &str) -> syn::Result<Option<String>> {
    let mut found = None;
    for attr in attrs
        .iter()
        .filter(|a| a.path().is_ident("serde") || a.path().is_ident("schemars"))
    {
        let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        else {
            continue;
        };
        for meta in metas {
            match &meta {
                Meta::NameValue(nv) if nv.path.is_ident(key) => {
                    if let Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) = &nv.value
                    {
                        found = Some(s.value());
                    }
                }
                Meta::List(l) if l.path.is_ident(key) => {
                    let inner =
                        Punctuated::<Meta, Token![,]>::parse_terminated.parse2(l.tokens.clone())?;
                    for m in inner {
                        if let Meta::NameValue(nv) = m
                            && nv.path.is_ident("deserialize")
                            && let Expr::Lit(ExprLit {
                                lit: Lit::Str(s), ..
                            }) = &nv.value
                        {
                            found = Some(s.value());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(found)
}

fn has_serde_flag(attrs: &[Attribute], flag: &str) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .any(|a| {
            a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
                .is_ok_and(|metas| metas.iter().any(|m| m.path().is_ident(flag)))
        })
}

/// serde's `rename_all` conversions of a snake_case field name.
fn rename_all(name: &str, rule: &str) -> String {
    let words: Vec<&str> = name.split('_').filter(|w| !w.is_empty()).collect();
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    match rule {
        "lowercase" => name.to_lowercase(),
        "UPPERCASE" => name.to_uppercase(),
        "PascalCase" => words.iter().map(|w| cap(w)).collect(),
        "camelCase" => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { (*w).to_owned() } else { cap(w) })
            .collect(),
        "SCREAMING_SNAKE_CASE" => name.to_uppercase(),
        "kebab-case" => name.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => name.replace('_', "-").to_uppercase(),
        _ => name.to_owned(),
    }
}

/// The property name of a field, as serde (and so the schema) names it.
fn property_name(field: &syn::Field, container: &[Attribute]) -> syn::Result<Option<String>> {
    let Some(ident) = &field.ident else {
        return Ok(None);
    };
    if let Some(name) = serde_value(&field.attrs, "rename")? {
        return Ok(Some(name));
    }
    let raw = ident.to_string();
    let raw = raw.strip_prefix("r#").unwrap_or(&raw).to_owned();
    Ok(Some(match serde_value(container, "rename_all")? {
        Some(rule) => rename_all(&raw, &rule),
        None => raw,
    }))
}

fn ty_mentions(ty: &Type, params: &[&Ident]) -> bool {
    let text = quote!(#ty).to_string();
    params.iter().any(|p| {
        let p = p.to_string();
        text.split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|w| w == p)
    })
}

// ------------------------------------------------------------------ check

fn rule_calls(rules: &[Rule], v: &TokenStream2) -> TokenStream2 {
    let m = quote!(::ferrapi::__private::model);
    let mut out = TokenStream2::new();
    for rule in rules {
        let call = match rule {
            Rule::Length { min, max } => {
                let min = min.as_ref().map_or(quote!(0usize), |e| quote!(#e));
                let max = max.as_ref().map_or(quote!(usize::MAX), |e| quote!(#e));
                quote!(#m::rules::length(#v, #min, #max))
            }
            Rule::Range { min, max } => {
                let min = min
                    .as_ref()
                    .map_or(quote!(None), |e| quote_spanned!(e.span()=> Some(#e)));
                let max = max
                    .as_ref()
                    .map_or(quote!(None), |e| quote_spanned!(e.span()=> Some(#e)));
                quote!(#m::rules::range(#v, #min, #max))
            }
            Rule::Pattern(p, span) => quote_spanned! {*span=> {
                static __RE: ::std::sync::LazyLock<#m::Regex> = ::std::sync::LazyLock::new(|| #m::regex(#p));
                #m::rules::pattern(#v, &__RE)
            }},
            Rule::Email => quote!(#m::rules::email(#v)),
            Rule::Url => quote!(#m::rules::url(#v)),
            Rule::Ip(kind) => {
                let kind = format_ident!("{}", kind);
                quote!(#m::rules::ip(#v, #m::rules::IpKind::#kind))
            }
            Rule::Required => quote!(#m::rules::required(#v)),
            Rule::Matches(other) => {
                let name = other.to_string();
                quote!(#m::rules::matches(#v, &self.#other, #name))
            }
            Rule::Custom(f) => quote_spanned!(f.span()=> (#f)(#v, &())),
            Rule::Inner(inner) => {
                let body = rule_calls(inner, &quote!(__v));
                out.extend(quote! {
                    #m::rules::inner(#v, |__v, __k| {
                        let __path = &mut #m::nested(&mut *__path, __k);
                        #body
                    });
                });
                continue;
            }
        };
        out.extend(quote!(#m::push(__report, &mut *__path, #call);));
    }
    out
}

/// `#[derive(Validate)]`.
pub(crate) fn derive_validate(input: DeriveInput) -> syn::Result<TokenStream2> {
    let m = quote!(::ferrapi::__private::model);
    let name = &input.ident;
    let customs = container_rules(&input.attrs)?;
    let type_params: Vec<&Ident> = input
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(&t.ident),
            _ => None,
        })
        .collect();
    let has_lifetimes = input
        .generics
        .params
        .iter()
        .any(|p| matches!(p, GenericParam::Lifetime(_)));
    let mut generics = input.generics.clone();
    {
        let wc = generics.make_where_clause();
        for p in &type_params {
            wc.predicates.push(syn::parse_quote!(#p: #m::Validate));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let mut checks = Vec::new();
    let mut partial = Vec::new();
    match &input.data {
        Data::Struct(data) => {
            for (i, field) in data.fields.iter().enumerate() {
                let spec = parse_rules(&field.attrs)?;
                if spec.skip {
                    continue;
                }
                let member: syn::Member = match &field.ident {
                    Some(id) => syn::Member::Named(id.clone()),
                    None => syn::Member::Unnamed(syn::Index::from(i)),
                };
                // Failures are reported under the field's serde name (the
                // schema's property), so that `loc` is the wire name even
                // for an explicit `#[serde(rename)]`.
                let key = match (&field.ident, property_name(field, &input.attrs)?) {
                    (Some(_), Some(prop)) if !has_serde_flag(&field.attrs, "flatten") => {
                        quote!(#prop)
                    }
                    (Some(id), _) => {
                        let s = id.to_string();
                        let s = s.strip_prefix("r#").unwrap_or(&s).to_owned();
                        quote!(#s)
                    }
                    (None, _) => quote!(#i),
                };
                let transparent =
                    matches!(data.fields, Fields::Unnamed(ref u) if u.unnamed.len() == 1);
                let calls = rule_calls(&spec.rules, &quote!(__v));
                let path = if transparent {
                    quote!(let __path = &mut *__parent;)
                } else {
                    quote!(let __path = &mut #m::nested(&mut *__parent, #key);)
                };
                checks.push(quote! {{
                    #path
                    let __v = &self.#member;
                    #calls
                    {
                        #[allow(unused_imports)]
                        use #m::{DiveValidate as _, DiveNone as _};
                        (&&#m::Dive(__v)).dive(&mut *__path, __report);
                    }
                }});
                // The field on its own, when another field failed.
                let flatten = has_serde_flag(&field.attrs, "flatten")
                    || has_serde_flag(&field.attrs, "with")
                    || has_serde_flag(&field.attrs, "deserialize_with")
                    || has_serde_flag(&field.attrs, "skip")
                    || has_serde_flag(&field.attrs, "skip_deserializing");
                let mentions_generic = ty_mentions(&field.ty, &type_params);
                if has_lifetimes || flatten || mentions_generic || transparent {
                    continue;
                }
                let Some(prop) = property_name(field, &input.attrs)? else {
                    continue;
                };
                let ty = &field.ty;
                let field_rules: Vec<&Rule> = spec
                    .rules
                    .iter()
                    .filter(|r| !matches!(r, Rule::Matches(_)))
                    .collect();
                let calls = rule_calls_refs(&field_rules);
                partial.push(quote! {
                    if let ::core::option::Option::Some(__fv) = __obj.get(#prop) {
                        let __path = &mut #m::nested(&mut *__parent, #key);
                        #[allow(unused_imports)]
                        use #m::{ParseOwned as _, ParseNone as _};
                        match (&&#m::Parse::<#ty>::new()).parse(__fv) {
                            ::core::option::Option::Some(__owned) => {
                                let __v = &__owned;
                                #calls
                                #[allow(unused_imports)]
                                use #m::{DiveValidate as _, DiveNone as _};
                                (&&#m::Dive(__v)).dive(&mut *__path, __report);
                            }
                            ::core::option::Option::None => {
                                #[allow(unused_imports)]
                                use #m::{DiveFields as _, DiveNone as _};
                                (&&#m::DiveType::<#ty>::new()).dive_fields(__fv, &mut *__path, __report);
                            }
                        }
                    }
                });
            }
        }
        Data::Enum(data) => {
            let mut arms = Vec::new();
            for variant in &data.variants {
                let vname = &variant.ident;
                let mut binds = Vec::new();
                let mut dives = Vec::new();
                for (i, field) in variant.fields.iter().enumerate() {
                    let spec = parse_rules(&field.attrs)?;
                    if !spec.rules.is_empty() {
                        return err(
                            field.span(),
                            "rules on enum variant fields are not supported: put the fields in a struct with `#[derive(Validate)]` and use it as the variant's payload",
                        );
                    }
                    let b = format_ident!("__f{}", i);
                    let pat = match &field.ident {
                        Some(id) => quote!(#id: #b),
                        None => quote!(#b),
                    };
                    binds.push(pat);
                    if !spec.skip {
                        dives.push(quote! {
                            #[allow(unused_imports)]
                            use #m::{DiveValidate as _, DiveNone as _};
                            (&&#m::Dive(#b)).dive(&mut *__parent, __report);
                        });
                    }
                }
                let arm = match &variant.fields {
                    Fields::Named(_) => quote!(Self::#vname { #(#binds,)* .. } => { #(#dives)* }),
                    Fields::Unnamed(_) => quote!(Self::#vname ( #(#binds,)* ) => { #(#dives)* }),
                    Fields::Unit => quote!(Self::#vname => {}),
                };
                arms.push(arm);
            }
            checks.push(quote! {
                #[allow(unreachable_patterns)]
                match self { #(#arms)* _ => {} }
            });
        }
        Data::Union(u) => return err(u.union_token.span(), "unions cannot derive `Validate`"),
    }
    let customs = customs.iter().map(|f| {
        quote_spanned! {f.span()=>
            #m::push(__report, &mut *__parent, (#f)(self, &()));
        }
    });
    let validate_fields = if partial.is_empty() {
        quote!()
    } else {
        quote! {
            fn validate_fields(
                __value: &#m::Value,
                __parent: &mut dyn FnMut() -> #m::Path,
                __report: &mut #m::Report,
            ) {
                let ::core::option::Option::Some(__obj) = __value.as_object() else { return };
                #(#partial)*
            }
        }
    };
    Ok(quote! {
        #[automatically_derived]
        #[allow(clippy::needless_borrow, clippy::redundant_closure_call, unused_variables)]
        impl #impl_generics #m::Validate for #name #ty_generics #where_clause {
            fn validate_into(
                &self,
                __parent: &mut dyn FnMut() -> #m::Path,
                __report: &mut #m::Report,
            ) {
                #(#checks)*
                #(#customs)*
            }
            #validate_fields
        }
    })
}

fn rule_calls_refs(rules: &[&Rule]) -> TokenStream2 {
    // `Rule` is not `Clone` (it holds expressions); calls are generated
    // per reference.
    let mut out = TokenStream2::new();
    for r in rules {
        out.extend(rule_calls(std::slice::from_ref(*r), &quote!(__v)));
    }
    out
}

// ------------------------------------------------------------------ schema

fn schema_rules(rules: &[Rule]) -> TokenStream2 {
    let m = quote!(::ferrapi::__private::model);
    let items = rules.iter().filter_map(|r| {
        Some(match r {
            Rule::Length { min, max } => {
                let min = min.as_ref().map_or(quote!(None), |e| quote!(Some(#e)));
                let max = max.as_ref().map_or(quote!(None), |e| quote!(Some(#e)));
                quote!(#m::Rule::Length { min: #min, max: #max })
            }
            Rule::Range { min, max } => {
                let min = min
                    .as_ref()
                    .map_or(quote!(None), |e| quote!(Some(#m::to_json(&(#e)))));
                let max = max
                    .as_ref()
                    .map_or(quote!(None), |e| quote!(Some(#m::to_json(&(#e)))));
                quote!(#m::Rule::Range { min: #min, max: #max })
            }
            Rule::Pattern(p, _) => quote!(#m::Rule::Pattern(::std::borrow::Cow::Borrowed(#p))),
            Rule::Email => quote!(#m::Rule::Format("email")),
            Rule::Url => quote!(#m::Rule::Format("uri")),
            Rule::Ip(kind) => {
                let f = match *kind {
                    "V4" => "ipv4",
                    "V6" => "ipv6",
                    _ => "ipvanyaddress",
                };
                quote!(#m::Rule::Format(#f))
            }
            Rule::Required => quote!(#m::Rule::Required),
            Rule::Inner(inner) => {
                let inner = schema_rules(inner);
                quote!(#m::Rule::Inner(#inner))
            }
            // Check-only by nature (pydantic's validators are not in the
            // schema either).
            Rule::Matches(_) | Rule::Custom(_) => return None,
        })
    });
    quote!(::std::vec![#(#items),*])
}

const SCHEMARS_RULES: [&str; 9] = [
    "range", "length", "regex", "pattern", "email", "url", "contains", "required", "inner",
];

/// Refuses schemars' own validation attributes: one vocabulary.
fn no_schemars_rules(attrs: &[Attribute]) -> syn::Result<()> {
    for attr in attrs
        .iter()
        .filter(|a| a.path().is_ident("schemars") || a.path().is_ident("validate"))
    {
        if attr.path().is_ident("validate") {
            return err(
                attr.span(),
                "`#[validate(...)]` is not read by ferrapi: write the rule as `#[garde(...)]`",
            );
        }
        let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        else {
            continue;
        };
        for meta in metas {
            if SCHEMARS_RULES.iter().any(|r| meta.path().is_ident(r)) {
                return err(
                    meta.span(),
                    "write constraints as `#[garde(...)]` (checked, documented and reported alike on every extractor); `#[schemars(...)]` would only document them",
                );
            }
        }
    }
    Ok(())
}

fn keep_attr(a: &Attribute) -> bool {
    a.path().is_ident("serde") || a.path().is_ident("schemars") || a.path().is_ident("doc")
}

/// `#[derive(JsonSchema)]`: schemars' derive on a shadow copy without the
/// `#[garde]` attributes, then the rules written by `constrain`.
pub(crate) fn derive_schema(input: DeriveInput) -> syn::Result<TokenStream2> {
    let m = quote!(::ferrapi::__private::model);
    let name = &input.ident;
    let shadow = format_ident!("__FerrapiSchema{}", name);
    no_schemars_rules(&input.attrs)?;
    let mut shadow_input = input.clone();
    shadow_input.ident = shadow.clone();
    shadow_input.attrs.retain(keep_attr);
    shadow_input.vis = syn::Visibility::Inherited;
    let renamed =
        serde_value(&input.attrs, "rename")?.is_some() || has_serde_flag(&input.attrs, "remote");
    if !renamed {
        let lit = LitStr::new(&name.to_string(), name.span());
        shadow_input
            .attrs
            .push(syn::parse_quote!(#[schemars(rename = #lit)]));
    }
    let mut fields_rules = Vec::new();
    let strip = |fields: &mut Fields| {
        for f in fields.iter_mut() {
            f.attrs.retain(keep_attr);
            f.vis = syn::Visibility::Inherited;
        }
    };
    match &mut shadow_input.data {
        Data::Struct(data) => {
            let orig = match &input.data {
                Data::Struct(d) => d,
                _ => unreachable!("same shape"),
            };
            let newtype = matches!(orig.fields, Fields::Unnamed(ref u) if u.unnamed.len() == 1);
            for field in orig.fields.iter() {
                no_schemars_rules(&field.attrs)?;
                let spec = parse_rules(&field.attrs)?;
                let rules = schema_rules(&spec.rules);
                if spec
                    .rules
                    .iter()
                    .all(|r| matches!(r, Rule::Matches(_) | Rule::Custom(_)))
                {
                    continue;
                }
                if has_serde_flag(&field.attrs, "flatten") {
                    return err(
                        field.span(),
                        "rules on a `#[serde(flatten)]` field cannot be shown in the schema: put them on the flattened struct's fields",
                    );
                }
                let property = if newtype {
                    quote!(None)
                } else {
                    match property_name(field, &input.attrs)? {
                        Some(p) => quote!(Some(#p)),
                        None => {
                            return err(
                                field.span(),
                                "rules on the fields of a tuple struct with several fields cannot be shown in the schema: use named fields",
                            );
                        }
                    }
                };
                fields_rules.push(quote!(#m::FieldRules { property: #property, rules: #rules }));
            }
            strip(&mut data.fields);
        }
        Data::Enum(data) => {
            for v in data.variants.iter_mut() {
                for f in v.fields.iter() {
                    no_schemars_rules(&f.attrs)?;
                    if !parse_rules(&f.attrs)?.rules.is_empty() {
                        return err(
                            f.span(),
                            "rules on enum variant fields are not supported: put the fields in a struct with `#[derive(Validate)]` and use it as the variant's payload",
                        );
                    }
                }
                v.attrs.retain(keep_attr);
                strip(&mut v.fields);
            }
        }
        Data::Union(u) => return err(u.union_token.span(), "unions cannot derive `JsonSchema`"),
    }
    let type_params: Vec<&Ident> = input
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(&t.ident),
            _ => None,
        })
        .collect();
    let mut generics = input.generics.clone();
    {
        let wc = generics.make_where_clause();
        for p in &type_params {
            wc.predicates
                .push(syn::parse_quote!(#p: ::ferrapi::schemars::JsonSchema));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let constrain = if fields_rules.is_empty() {
        quote!()
    } else {
        quote! {
            if let ::core::option::Option::Some(__obj) = __schema.as_object_mut() {
                #m::constrain(__obj, &[#(#fields_rules),*]);
            }
        }
    };
    let js = quote!(::ferrapi::schemars);
    // A transparent newtype with rules is its field's schema plus the
    // rules: inlined under an id of its own (the field type's id would
    // share, and so lose, the rules).
    let own = has_serde_flag(&input.attrs, "transparent") && !fields_rules.is_empty();
    let (inline, schema_id) = if own {
        let lit = LitStr::new(&name.to_string(), name.span());
        (
            quote!(true),
            quote!(::std::borrow::Cow::Borrowed(
                ::core::concat!(::core::module_path!(), "::", #lit)
            )),
        )
    } else {
        (
            quote!(<#shadow #ty_generics as #js::JsonSchema>::inline_schema()),
            quote!(<#shadow #ty_generics as #js::JsonSchema>::schema_id()),
        )
    };
    let crate_attr = if serde_value(&input.attrs, "crate")?.is_some() {
        quote!()
    } else {
        quote!(#[schemars(crate = "::ferrapi::schemars")])
    };
    // schemars reads a container `#[serde(default)]` from the type's
    // `Default`: the shadow's is the type's, field by field.
    let shadow_default = match (&input.data, has_serde_flag(&input.attrs, "default")) {
        (Data::Struct(data), true) => {
            let (_, sty, swhere) = input.generics.split_for_impl();
            let (simpl, _, _) = input.generics.split_for_impl();
            let build = match &data.fields {
                Fields::Named(f) => {
                    let names = f.named.iter().map(|f| &f.ident);
                    quote!(#shadow { #(#names: __d.#names),* })
                }
                Fields::Unnamed(f) => {
                    let idx = (0..f.unnamed.len()).map(syn::Index::from);
                    quote!(#shadow ( #(__d.#idx),* ))
                }
                Fields::Unit => quote!(#shadow),
            };
            quote! {
                impl #simpl ::core::default::Default for #shadow #sty #swhere
                where #name #sty: ::core::default::Default
                {
                    fn default() -> Self {
                        let __d = <#name #sty as ::core::default::Default>::default();
                        #build
                    }
                }
            }
        }
        _ => quote!(),
    };
    Ok(quote! {
        const _: () = {
            #[derive(::ferrapi::schemars::JsonSchema)]
            #crate_attr
            #[allow(dead_code, non_camel_case_types, clippy::all)]
            #shadow_input
            #shadow_default

            #[automatically_derived]
            impl #impl_generics #js::JsonSchema for #name #ty_generics #where_clause {
                fn inline_schema() -> bool {
                    #inline
                }
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    <#shadow #ty_generics as #js::JsonSchema>::schema_name()
                }
                fn schema_id() -> ::std::borrow::Cow<'static, str> {
                    #schema_id
                }
                fn json_schema(__g: &mut #js::SchemaGenerator) -> #js::Schema {
                    #[allow(unused_mut)]
                    let mut __schema = <#shadow #ty_generics as #js::JsonSchema>::json_schema(__g);
                    #constrain
                    __schema
                }
            }
        };
    })
}

// ------------------------------------------------------------------ serde

/// `#[derive(Serialize)]` / `#[derive(Deserialize)]` through ferrapi, so
/// that a user needs no `serde` dependency of their own: serde's derive
/// names `::serde` unless told `#[serde(crate = …)]`, which a derive cannot
/// add to the item it derives. So the type is copied into a shadow that
/// derives serde's impl with `#[serde(crate = "::ferrapi::serde", remote =
/// "Type")]` (serde's own way of deriving for a type from its definition),
/// and the trait impl delegates to it. Every `#[serde]` attribute works as
/// with serde's derive; borrowed fields (lifetimes) need serde's own derive.
pub(crate) fn derive_serde(input: DeriveInput, de: bool) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    if de && let Some(lt) = input.generics.lifetimes().next() {
        return err(
            lt.span(),
            "ferrapi's serde derives do not take borrowed fields: derive with serde's own (`serde::Deserialize`, with `serde` in Cargo.toml)",
        );
    }
    if has_serde_flag(&input.attrs, "remote") {
        return err(
            name.span(),
            "`#[serde(remote)]` needs serde's own derive (`serde::Serialize`/`serde::Deserialize`)",
        );
    }
    let shadow = if de {
        format_ident!("__FerrapiDe{}", name)
    } else {
        format_ident!("__FerrapiSer{}", name)
    };
    let mut shadow_input = input.clone();
    shadow_input.ident = shadow.clone();
    shadow_input.vis = syn::Visibility::Inherited;
    shadow_input.attrs.retain(|a| a.path().is_ident("serde"));
    let strip = |fields: &mut Fields| {
        for f in fields.iter_mut() {
            f.attrs.retain(|a| a.path().is_ident("serde"));
            f.vis = syn::Visibility::Inherited;
        }
    };
    match &mut shadow_input.data {
        Data::Struct(d) => strip(&mut d.fields),
        Data::Enum(d) => {
            for v in d.variants.iter_mut() {
                v.attrs.retain(|a| a.path().is_ident("serde"));
                strip(&mut v.fields);
            }
        }
        Data::Union(u) => return err(u.union_token.span(), "unions cannot derive serde's traits"),
    }
    let remote = LitStr::new(&name.to_string(), name.span());
    let crate_attr = if serde_value(&input.attrs, "crate")?.is_some() {
        quote!(#[serde(remote = #remote)])
    } else {
        quote!(#[serde(crate = "::ferrapi::serde", remote = #remote)])
    };
    let type_params: Vec<&Ident> = input.generics.type_params().map(|t| &t.ident).collect();
    let user_bound = has_serde_flag(&input.attrs, "bound");
    let s = quote!(::ferrapi::serde);
    let (derive, body) = if de {
        let mut generics = input.generics.clone();
        generics.params.insert(0, syn::parse_quote!('de));
        if !user_bound {
            let wc = generics.make_where_clause();
            for p in &type_params {
                wc.predicates
                    .push(syn::parse_quote!(#p: #s::Deserialize<'de>));
            }
        }
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        let (_, ty_generics, _) = input.generics.split_for_impl();
        (
            quote!(#[derive(::ferrapi::serde::Deserialize)]),
            quote! {
                #[automatically_derived]
                impl #impl_generics #s::Deserialize<'de> for #name #ty_generics #where_clause {
                    fn deserialize<__D>(__deserializer: __D) -> ::core::result::Result<Self, __D::Error>
                    where
                        __D: #s::Deserializer<'de>,
                    {
                        #shadow::deserialize(__deserializer)
                    }
                }
            },
        )
    } else {
        let mut generics = input.generics.clone();
        if !user_bound {
            let wc = generics.make_where_clause();
            for p in &type_params {
                wc.predicates.push(syn::parse_quote!(#p: #s::Serialize));
            }
        }
        let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
        (
            quote!(#[derive(::ferrapi::serde::Serialize)]),
            quote! {
                #[automatically_derived]
                impl #impl_generics #s::Serialize for #name #ty_generics #where_clause {
                    fn serialize<__S>(&self, __serializer: __S) -> ::core::result::Result<__S::Ok, __S::Error>
                    where
                        __S: #s::Serializer,
                    {
                        #shadow::serialize(self, __serializer)
                    }
                }
            },
        )
    };
    Ok(quote! {
        const _: () = {
            #derive
            #crate_attr
            #[allow(dead_code, non_camel_case_types, clippy::all)]
            #shadow_input

            #body
        };
    })
}
