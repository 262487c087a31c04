//! Route attribute macros for ferrapi: `#[get]`, `#[post]`, `#[put]`,
//! `#[patch]`, `#[delete]`, `#[head]`, `#[options]`, `#[trace]`.
//!
//! Thin by design: the macro parses the attribute and the function, then
//! expands to calls into the `ferrapi` facade (`ferrapi::__private`). It
//! adds only what types cannot know — method, path, status, tags, the doc
//! comment — and one extraction call per parameter, spanned on that
//! parameter's type, so that a parameter that is no extractor is named by
//! the compiler error.
//!
//! ```text
//! /// Read a user.
//! ///
//! /// Answers 404 when there is no such user.
//! #[get("/users/{user_id}", tags = ["users"], responses(404 = "User not found"))]
//! async fn read_user(Path(user_id): Path<i64>) -> Result<Json<User>, HttpError> { … }
//! ```
//!
//! Attribute arguments, after the path: `status = 201`, `tags = ["a", "b"]`,
//! `summary = "…"`, `description = "…"` (default: from the doc comment: its
//! first paragraph is the summary, the rest the description),
//! `operation_id = "…"` (default: the function's name), `deprecated`,
//! `include_in_schema = false`, `responses(404 = "…", 409 = "…")`,
//! `errors(NotFound, EmailTaken)` (the variants of the handler's
//! `#[derive(ApiError)]` error type this operation documents), and for
//! WebSocket routes the message types the client sends and the server sends:
//! `receives = [Ping]`, `sends = [Pong, Notice]` (documented in the OpenAPI
//! document's `x-websockets` and the AsyncAPI document).
//!
//! The function becomes a function of the same name returning its
//! `ferrapi::Route` (pass it to `Router::route` as is: `.route(read_user)`);
//! the handler itself lives inside it. A function, not a unit struct, so
//! that a variable or parameter of the same name elsewhere is just a
//! binding. Test handlers through `ferrapi::testing::TestClient`.

mod model;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{
    Expr, ExprArray, FnArg, Ident, ItemFn, Lit, LitInt, LitStr, ReturnType, Token, Type,
    parse_macro_input,
};

struct Args {
    path: LitStr,
    status: Option<Expr>,
    tags: Vec<LitStr>,
    summary: Option<LitStr>,
    description: Option<LitStr>,
    operation_id: Option<LitStr>,
    deprecated: bool,
    include_in_schema: Option<syn::LitBool>,
    responses: Vec<(LitInt, LitStr)>,
    receives: Vec<Type>,
    sends: Vec<Type>,
    /// `errors(NotFound, EmailTaken)`: the variants of the handler's error
    /// type this operation documents (`None`: all of them).
    errors: Option<Vec<Ident>>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let path: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the route's path first, e.g. `#[get(\"/users/{user_id}\")]`",
            )
        })?;
        let mut args = Args {
            path,
            status: None,
            tags: Vec::new(),
            summary: None,
            description: None,
            operation_id: None,
            deprecated: false,
            include_in_schema: None,
            responses: Vec::new(),
            receives: Vec::new(),
            sends: Vec::new(),
            errors: None,
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "deprecated" => {
                    if input.peek(Token![=]) {
                        input.parse::<Token![=]>()?;
                        let b: syn::LitBool = input.parse()?;
                        args.deprecated = b.value;
                    } else {
                        args.deprecated = true;
                    }
                }
                "errors" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let names = content.parse_terminated(Ident::parse, Token![,])?;
                    args.errors.get_or_insert_with(Vec::new).extend(names);
                }
                "responses" => {
                    let content;
                    syn::parenthesized!(content in input);
                    while !content.is_empty() {
                        let code: LitInt = content.parse()?;
                        check_status(&code)?;
                        content.parse::<Token![=]>()?;
                        let desc: LitStr = content.parse()?;
                        args.responses.push((code, desc));
                        if content.is_empty() {
                            break;
                        }
                        content.parse::<Token![,]>()?;
                    }
                }
                other => {
                    input.parse::<Token![=]>()?;
                    match other {
                        "status" => {
                            let e: Expr = input.parse()?;
                            if let Expr::Lit(syn::ExprLit {
                                lit: Lit::Int(i), ..
                            }) = &e
                            {
                                check_status(i)?;
                            }
                            args.status = Some(e);
                        }
                        "tags" => {
                            let arr: ExprArray = input.parse()?;
                            for el in arr.elems {
                                match el {
                                    Expr::Lit(syn::ExprLit {
                                        lit: Lit::Str(s), ..
                                    }) => args.tags.push(s),
                                    other => {
                                        return Err(syn::Error::new(
                                            other.span(),
                                            "tags are string literals",
                                        ));
                                    }
                                }
                            }
                        }
                        "summary" => args.summary = Some(input.parse()?),
                        "description" => args.description = Some(input.parse()?),
                        "operation_id" => args.operation_id = Some(input.parse()?),
                        "include_in_schema" => args.include_in_schema = Some(input.parse()?),
                        "receives" => args.receives.extend(parse_types(input)?),
                        "sends" => args.sends.extend(parse_types(input)?),
                        _ => {
                            return Err(syn::Error::new(
                                key.span(),
                                "unknown argument; expected one of: status, tags, summary, description, operation_id, deprecated, include_in_schema, responses, errors, receives, sends",
                            ));
                        }
                    }
                }
            }
        }
        Ok(args)
    }
}

/// `[A, b::C<D>]`: a bracketed list of types.
fn parse_types(input: ParseStream) -> syn::Result<Vec<Type>> {
    let content;
    syn::bracketed!(content in input);
    let types = content.parse_terminated(Type::parse, Token![,])?;
    Ok(types.into_iter().collect())
}

fn check_status(lit: &LitInt) -> syn::Result<()> {
    match lit.base10_parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(()),
        _ => Err(syn::Error::new(
            lit.span(),
            "a status code is a number from 100 to 599",
        )),
    }
}

/// The doc comment's text, one line per `///` line.
fn doc_text(func: &ItemFn) -> String {
    let mut lines = Vec::new();
    for attr in &func.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
        {
            let v = s.value();
            lines.push(v.strip_prefix(' ').unwrap_or(&v).trim_end().to_owned());
        }
    }
    lines.join("\n")
}

/// First paragraph → summary (one line); the rest → description.
fn split_doc(doc: &str) -> (Option<String>, Option<String>) {
    let doc = doc.trim();
    if doc.is_empty() {
        return (None, None);
    }
    let mut parts = doc.splitn(2, "\n\n");
    let summary = parts
        .next()
        .map(|s| s.lines().map(str::trim).collect::<Vec<_>>().join(" "));
    let description = parts
        .next()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    (summary, description)
}

/// `Json<…>` or `Form<…>`: a body extractor of a model.
fn is_body_model(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| {
            (s.ident == "Json" || s.ident == "Form")
                && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
        }),
        _ => false,
    }
}

/// `Query<…>`, `Path<…>`, `Header<…>` or `Cookie<…>`: a request-head
/// extractor of a model (extracted as such even when last, so that a
/// model's missing trait is one error, not one per inference attempt).
fn is_parts_model(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| {
            ["Query", "Path", "Header", "Cookie"]
                .iter()
                .any(|n| s.ident == n)
                && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
        }),
        _ => false,
    }
}

fn contains_impl(ty: &Type) -> bool {
    quote!(#ty).to_string().contains("impl ")
}

fn expand(method: &str, args: Args, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "a route handler must be an `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a route handler cannot be generic",
        ));
    }
    let name = &sig.ident;
    let vis = &func.vis;
    let mut types = Vec::new();
    let mut param_rules: Vec<Vec<syn::Attribute>> = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(
                    r.span(),
                    "a route handler cannot take `self`",
                ));
            }
            FnArg::Typed(pt) => {
                if contains_impl(&pt.ty) {
                    return Err(syn::Error::new(
                        pt.ty.span(),
                        "a handler parameter needs a concrete extractor type, not `impl Trait`",
                    ));
                }
                types.push((*pt.ty).clone());
                param_rules.push(
                    pt.attrs
                        .iter()
                        .filter(|a| a.path().is_ident("garde"))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    // `#[garde(...)]` on a `Path<X>` parameter: the rules of a newtype that
    // the route extracts instead (schema, check and message as for a model
    // field), then unwraps.
    let mut newtypes = Vec::new();
    let mut unwrap = Vec::new();
    for (i, (ty, rules)) in types.iter_mut().zip(&param_rules).enumerate() {
        if rules.is_empty() {
            unwrap.push(None);
            continue;
        }
        let inner = match &*ty {
            Type::Path(p) => p.path.segments.last().and_then(|s| match &s.arguments {
                syn::PathArguments::AngleBracketed(a) if s.ident == "Path" && a.args.len() == 1 => {
                    match a.args.first() {
                        Some(syn::GenericArgument::Type(t)) => Some(t.clone()),
                        _ => None,
                    }
                }
                _ => None,
            }),
            _ => None,
        };
        let Some(inner) = inner else {
            return Err(syn::Error::new(
                rules[0].span(),
                "`#[garde(...)]` on a parameter constrains a single path variable (`Path<i64>`); for query, header, cookie and body parameters write the rules on the model's fields",
            ));
        };
        let newtype = format_ident!("__FerrapiParam{}", i);
        newtypes.push(quote! {
            #[derive(::ferrapi::serde::Deserialize, ::ferrapi::JsonSchema, ::ferrapi::Validate)]
            #[serde(crate = "::ferrapi::serde", transparent)]
            #[allow(non_camel_case_types)]
            struct #newtype(#(#rules)* #inner);
        });
        *ty = syn::parse_quote!(::ferrapi::Path<#newtype>);
        unwrap.push(Some(quote!(::ferrapi::Path(__p.0.0))));
    }
    let args_idents: Vec<Ident> = (0..types.len())
        .map(|i| format_ident!("__arg{}", i, span = Span::mixed_site()))
        .collect();
    let mut extract = Vec::new();
    for (i, (ty, id)) in types.iter().zip(&args_idents).enumerate() {
        let call = if i + 1 == types.len() && is_body_model(ty) {
            // The body extractors of models: naming how they extract lets
            // the compiler report the model's missing trait (`Validate`)
            // instead of "not an extractor".
            quote_spanned!(ty.span()=> <#ty as ::ferrapi::__private::ExtractLast<::ferrapi::__private::ViaRequest>>::last(&mut __ex).await)
        } else if i + 1 == types.len() && !is_parts_model(ty) {
            quote_spanned!(ty.span()=> <#ty as ::ferrapi::__private::ExtractLast<_>>::last(&mut __ex).await)
        } else {
            quote_spanned!(ty.span()=> <#ty as ::ferrapi::__private::ExtractPart>::part(&mut __ex).await)
        };
        let unwrap = match &unwrap[i] {
            Some(u) => quote!(let #id = #id.map(|__p| #u);),
            None => quote!(),
        };
        extract.push(quote! {
            let #id = match #call {
                ::core::result::Result::Ok(v) => v,
                ::core::result::Result::Err(res) => return __ex.fail(res).await,
            };
            #unwrap
        });
    }
    let describe_inputs = types.iter().map(|ty| {
        quote_spanned!(ty.span()=> <#ty as ::ferrapi::openapi::DescribeInput>::describe(__op);)
    });
    let describe_output = match (&sig.output, &args.errors) {
        (ReturnType::Default, None) => {
            quote!(::ferrapi::__private::describe_output::<()>(__op, __status);)
        }
        (ReturnType::Type(_, ty), _) if contains_impl(ty) => quote!(),
        (ReturnType::Type(_, ty), None) => quote_spanned!(ty.span()=>
            ::ferrapi::__private::describe_output::<#ty>(__op, __status);
        ),
        (ReturnType::Default, Some(names)) => {
            let span = names.first().map_or_else(Span::call_site, Ident::span);
            return Err(syn::Error::new(
                span,
                "`errors(...)` names variants of the handler's error type: the handler returns `Result<T, E>`",
            ));
        }
        // Only the named variants are documented. Each name is checked at
        // compile time when the return type is spelled `Result<T, E>` (a
        // type alias to `E` lets the variants be named whatever path `E` is
        // written with); behind an alias of `Result`, the application build
        // reports a name that is no variant.
        (ReturnType::Type(_, ty), Some(names)) => {
            let strs = names.iter().map(Ident::to_string);
            let check = match split_result_error(ty) {
                Some(err) => {
                    let arms = names.iter().map(|n| {
                        let alias = Ident::new("__FerrapiRouteError", n.span());
                        quote_spanned!(n.span()=> #alias::#n { .. } => {})
                    });
                    quote! {
                        #[allow(non_camel_case_types, dead_code)]
                        type __FerrapiRouteError = #err;
                        #[allow(unreachable_patterns, dead_code)]
                        fn __errors_are_variants(e: &__FerrapiRouteError) {
                            match e {
                                #(#arms)*
                                _ => {}
                            }
                        }
                    }
                }
                None => quote!(),
            };
            quote_spanned! {ty.span()=>
                {
                    #check
                    ::ferrapi::__private::describe_output_with_errors::<#ty>(__op, __status, &[#(#strs),*]);
                }
            }
        }
    };
    let call = quote_spanned!(name.span()=>
        ::ferrapi::__private::assert_send(#name(#(#args_idents),*)).await
    );
    let method_ident = Ident::new(method, Span::call_site());
    let path = &args.path;
    let mut builder = Vec::new();
    if let Some(status) = &args.status {
        let status = match status {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            }) => quote! {
                ::ferrapi::http::StatusCode::from_u16(#i).unwrap_or(::ferrapi::http::StatusCode::OK)
            },
            other => quote!(#other),
        };
        builder.push(quote!(.status(#status)));
    }
    if !args.tags.is_empty() {
        let tags = &args.tags;
        builder.push(quote!(.tags([#(#tags),*])));
    }
    let (doc_summary, doc_description) = split_doc(&doc_text(&func));
    match (&args.summary, doc_summary) {
        (Some(s), _) => builder.push(quote!(.summary(#s))),
        (None, Some(s)) => builder.push(quote!(.summary(#s))),
        (None, None) => {}
    }
    match (&args.description, doc_description) {
        (Some(d), _) => builder.push(quote!(.description(#d))),
        (None, Some(d)) => builder.push(quote!(.description(#d))),
        (None, None) => {}
    }
    if let Some(id) = &args.operation_id {
        builder.push(quote!(.operation_id(#id)));
    }
    if args.deprecated {
        builder.push(quote!(.deprecated(true)));
    }
    if let Some(b) = &args.include_in_schema {
        builder.push(quote!(.include_in_schema(#b)));
    }
    for (code, desc) in &args.responses {
        builder.push(quote! {
            .response(
                ::ferrapi::http::StatusCode::from_u16(#code).unwrap_or(::ferrapi::http::StatusCode::OK),
                #desc,
            )
        });
    }
    for ty in &args.receives {
        builder.push(quote_spanned!(ty.span()=> .websocket_receives::<#ty>()));
    }
    for ty in &args.sends {
        builder.push(quote_spanned!(ty.span()=> .websocket_sends::<#ty>()));
    }
    let name_str = name.to_string();
    let route_doc = format!(
        "Route `{method} {}`: pass `{name}` to `Router::route` or `App::route`.",
        args.path.value()
    );
    let doc_attrs: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    let fn_attrs: Vec<_> = func
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("doc"))
        .collect();
    let mut inputs = sig.inputs.clone();
    for input in inputs.iter_mut() {
        if let FnArg::Typed(pt) = input {
            pt.attrs.retain(|a| !a.path().is_ident("garde"));
        }
    }
    let inputs = &inputs;
    let output = &sig.output;
    let block = &func.block;
    Ok(quote! {
        #(#doc_attrs)*
        #[doc = ""]
        #[doc = #route_doc]
        #vis fn #name() -> ::ferrapi::Route {
            #(#fn_attrs)*
            async fn #name(#inputs) #output #block
            #(#newtypes)*

            ::ferrapi::__private::route(
                ::ferrapi::http::Method::#method_ident,
                #path,
                #name_str,
                |__req: ::ferrapi::__private::Request,
                 __cx: ::ferrapi::__private::Arc<::ferrapi::__private::RequestContext>|
                 -> ::ferrapi::__private::BoxFuture<'static, ::ferrapi::axum::response::Response> {
                    ::std::boxed::Box::pin(async move {
                        #[allow(unused_mut)]
                        let mut __ex = ::ferrapi::__private::Extraction::new(__req, __cx);
                        if let ::core::result::Result::Err(res) = __ex.begin().await {
                            return __ex.fail(res).await;
                        }
                        #(#extract)*
                        if let ::core::result::Result::Err(res) = __ex.finish() {
                            return __ex.fail(res).await;
                        }
                        #[allow(irrefutable_let_patterns)]
                        let (#(::core::option::Option::Some(#args_idents),)*) = (#(#args_idents,)*) else {
                            return __ex.fail(::ferrapi::__private::internal_error()).await;
                        };
                        __ex.respond(#call).await
                    })
                },
                |__op: &mut ::ferrapi::openapi::OperationBuilder<'_>,
                 __status: ::ferrapi::http::StatusCode| {
                    #(#describe_inputs)*
                    #describe_output
                },
            )
            #(#builder)*
        }
    })
}

macro_rules! route_attr {
    ($($(#[$doc:meta])* $fn:ident => $method:literal;)*) => {$(
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $fn(attr: TokenStream, item: TokenStream) -> TokenStream {
            let args = parse_macro_input!(attr as Args);
            let func = parse_macro_input!(item as ItemFn);
            match expand($method, args, func) {
                Ok(tokens) => tokens.into(),
                Err(e) => e.to_compile_error().into(),
            }
        }
    )*};
}

/// `E` of a type spelled `Result<T, E>`.
fn split_result_error(ty: &Type) -> Option<Type> {
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && args.args.len() == 2
        && let Some(syn::GenericArgument::Type(err)) = args.args.last()
    {
        return Some(err.clone());
    }
    None
}

/// `Result<X, E>` → `(X, true)`; any other type `X` → `(X, false)`.
fn split_result(ty: &Type) -> (Type, bool) {
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(ok)) = args.args.first()
        && args.args.len() == 2
    {
        return (ok.clone(), true);
    }
    (ty.clone(), false)
}

fn expand_dependency(attr: TokenStream2, func: ItemFn) -> syn::Result<TokenStream2> {
    let mut cached = true;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("cache") {
            let b: syn::LitBool = meta.value()?.parse()?;
            cached = b.value;
            Ok(())
        } else {
            Err(meta.error("expected `cache = false`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "a dependency must be an `async fn`",
        ));
    }
    // Const and type parameters make one provider for a family of types
    // (`Pagination<50>`, `Pagination<100>`): each is a dependency of its own,
    // configured by its parameters. A lifetime cannot outlive the request.
    if let Some(lt) = sig.generics.lifetimes().next() {
        return Err(syn::Error::new(
            lt.span(),
            "a dependency cannot have lifetime parameters: its value outlives the request's borrows",
        ));
    }
    let (impl_generics, ty_generics, where_clause) = sig.generics.split_for_impl();
    let turbofish = ty_generics.as_turbofish();
    let ReturnType::Type(_, ret) = &sig.output else {
        return Err(syn::Error::new(
            sig.ident.span(),
            "a dependency returns the value it provides: `-> T` or `-> Result<T, E>`",
        ));
    };
    let (target, fallible) = split_result(ret);
    let name = &sig.ident;
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(r.span(), "a dependency cannot take `self`"));
            }
            FnArg::Typed(pt) => types.push((*pt.ty).clone()),
        }
    }
    let ids: Vec<Ident> = (0..types.len())
        .map(|i| format_ident!("__dep{}", i, span = Span::mixed_site()))
        .collect();
    let extract = types.iter().zip(&ids).map(|(ty, id)| {
        quote_spanned! {ty.span()=>
            let #id = <#ty as ::ferrapi::FromRequestParts>::from_request_parts(__parts, __cx).await?;
        }
    });
    let describe = types.iter().map(|ty| {
        quote_spanned!(ty.span()=> <#ty as ::ferrapi::openapi::DescribeInput>::describe(__op);)
    });
    let call = if fallible {
        quote! {
            #name #turbofish(#(#ids),*).await.map_err(|e| {
                ::ferrapi::extract::Rejection::Error(::ferrapi::ResponseError::into_error(e))
            })
        }
    } else {
        quote!(::core::result::Result::Ok(#name #turbofish(#(#ids),*).await))
    };
    Ok(quote! {
        #func

        impl #impl_generics ::ferrapi::extract::Dependency for #target #where_clause {
            async fn resolve(
                __parts: &mut ::ferrapi::http::request::Parts,
                __cx: &::ferrapi::extract::RequestContext,
            ) -> ::core::result::Result<Self, ::ferrapi::extract::Rejection> {
                #(#extract)*
                #call
            }
            fn describe(__op: &mut ::ferrapi::openapi::OperationBuilder<'_>) {
                #(#describe)*
            }
            const CACHED: bool = #cached;
        }
    })
}

/// Makes an `async fn` the provider of the type it returns, as FastAPI's
/// function dependencies: its parameters are extractors (other dependencies
/// with `Depends<T>`, headers, query, state, security schemes), its result
/// `T` or `Result<T, E>` (`E` a `ResponseError`, e.g. `HttpError`). Handlers
/// then ask for `Depends<T>`. `T` must be a type of your crate.
/// `#[dependency(cache = false)]` builds it afresh at every use.
///
/// ```text
/// #[dependency]
/// async fn current_user(Depends(db): Depends<Db>, token: BearerToken) -> Result<CurrentUser, HttpError> { … }
/// ```
///
/// A generic function (const or type parameters) provides each of the types
/// it returns, configured by its parameters — FastAPI's
/// `Depends(Pagination(max=50))`:
///
/// ```text
/// #[dependency]
/// async fn pagination<const MAX: u32>(Query(q): Query<PageQuery<MAX>>) -> Pagination<MAX> { … }
/// // Depends<Pagination<50>> on one route, Depends<Pagination<500>> on another.
/// ```
#[proc_macro_attribute]
pub fn dependency(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    match expand_dependency(attr.into(), func) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// One documented status of an `ApiError` type.
struct ErrorStatus {
    /// The variant's name (the type's name for a struct).
    name: String,
    pattern: TokenStream2,
    status: Option<LitInt>,
    description: String,
}

/// `#[api(status = 404, description = "…")]` on a variant or the type.
fn api_attr(attrs: &[syn::Attribute]) -> syn::Result<(Option<LitInt>, Option<String>)> {
    let mut status = None;
    let mut description = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("api")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("status") {
                let lit: LitInt = meta.value()?.parse()?;
                check_status(&lit)?;
                status = Some(lit);
                Ok(())
            } else if meta.path.is_ident("description") {
                let lit: LitStr = meta.value()?.parse()?;
                description = Some(lit.value());
                Ok(())
            } else {
                Err(meta.error("expected `status = <code>` or `description = \"…\"`"))
            }
        })?;
    }
    Ok((status, description))
}

/// thiserror's `#[error("…")]` text when it has no placeholders.
fn error_literal(attrs: &[syn::Attribute]) -> Option<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("error"))
        .find_map(|a| {
            let lit: LitStr = a.parse_args().ok()?;
            let text = lit.value();
            (!text.contains('{')).then_some(text)
        })
}

fn humanize(ident: &Ident) -> String {
    let name = ident.to_string();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn expand_api_error(input: syn::DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let (type_status, type_description) = api_attr(&input.attrs)?;
    let mut statuses = Vec::new();
    match &input.data {
        syn::Data::Enum(e) => {
            for v in &e.variants {
                let ident = &v.ident;
                let (status, description) = api_attr(&v.attrs)?;
                let status = status.or_else(|| type_status.clone());
                let description = description
                    .or_else(|| error_literal(&v.attrs))
                    .unwrap_or_else(|| humanize(ident));
                statuses.push(ErrorStatus {
                    name: ident.to_string(),
                    pattern: quote!(Self::#ident { .. }),
                    status,
                    description,
                });
            }
        }
        syn::Data::Struct(_) => {
            let description = type_description
                .clone()
                .or_else(|| error_literal(&input.attrs))
                .unwrap_or_else(|| humanize(name));
            statuses.push(ErrorStatus {
                name: name.to_string(),
                pattern: quote!(_),
                status: type_status.clone(),
                description,
            });
        }
        syn::Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "ApiError is derived for enums and structs",
            ));
        }
    }
    let arms = statuses.iter().map(|s| {
        let pattern = &s.pattern;
        match &s.status {
            Some(code) => quote! {
                #pattern => ::ferrapi::__private::http_error(#code, ::std::string::ToString::to_string(&self)),
            },
            None => quote! {
                #pattern => ::ferrapi::__private::internal_error_logged(&self),
            },
        }
    });
    let docs = statuses.iter().filter_map(|s| {
        let code = s.status.as_ref()?;
        let description = &s.description;
        Some(quote! {
            op.error_response(
                ::ferrapi::http::StatusCode::from_u16(#code)
                    .unwrap_or(::ferrapi::http::StatusCode::INTERNAL_SERVER_ERROR),
                #description,
            );
        })
    });
    let known = statuses.iter().map(|s| &s.name);
    let name_str = name.to_string();
    let docs_only = statuses.iter().filter_map(|s| {
        let code = s.status.as_ref()?;
        let description = &s.description;
        let variant = &s.name;
        Some(quote! {
            if variants.contains(&#variant) {
                op.error_response(
                    ::ferrapi::http::StatusCode::from_u16(#code)
                        .unwrap_or(::ferrapi::http::StatusCode::INTERNAL_SERVER_ERROR),
                    #description,
                );
            }
        })
    });
    Ok(quote! {
        impl #impl_generics ::ferrapi::__private::ResponseError for #name #ty_generics #where_clause {
            fn into_error(self) -> ::ferrapi::Error {
                #[allow(unreachable_patterns)]
                match &self {
                    #(#arms)*
                }
            }
            fn describe(op: &mut ::ferrapi::openapi::OperationBuilder<'_>) {
                #(#docs)*
            }
            fn describe_only(
                op: &mut ::ferrapi::openapi::OperationBuilder<'_>,
                variants: &[&str],
            ) {
                const KNOWN: &[&str] = &[#(#known),*];
                for v in variants {
                    if !KNOWN.contains(v) {
                        op.problems.push(::std::format!(
                            "errors(...) names `{}`, which is no variant of `{}`",
                            v,
                            #name_str,
                        ));
                    }
                }
                #(#docs_only)*
            }
        }
    })
}

/// Derives `ferrapi::ResponseError` for an error enum (or struct): each
/// variant marked `#[api(status = 404)]` is answered with that status and its
/// `Display` text as `detail`, and documented in the operation (description:
/// `#[api(description = "…")]`, else a placeholder-free `#[error("…")]`, else
/// the variant's name); a variant without a status is logged and answered
/// 500 `Internal Server Error`. The type implements `Display` (thiserror).
///
/// Every route returning the type documents every status, unless its
/// attribute lists the variants it can return: `errors(NotFound, EmailTaken)`
/// documents those alone (names checked at compile time).
#[proc_macro_derive(ApiError, attributes(api))]
pub fn derive_api_error(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::DeriveInput);
    match expand_api_error(input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

route_attr! {
    /// Declares a `GET` route: `#[get("/users/{user_id}")]`.
    get => "GET";
    /// Declares a `POST` route: `#[post("/users", status = 201)]`.
    post => "POST";
    /// Declares a `PUT` route.
    put => "PUT";
    /// Declares a `PATCH` route.
    patch => "PATCH";
    /// Declares a `DELETE` route.
    delete => "DELETE";
    /// Declares a `HEAD` route.
    head => "HEAD";
    /// Declares an `OPTIONS` route.
    options => "OPTIONS";
    /// Declares a `TRACE` route.
    trace => "TRACE";
}

/// `serde::Deserialize` through ferrapi (no `serde` dependency needed):
/// every `#[serde(...)]` attribute works as with serde's own derive, which
/// this one runs on a copy of the type (`#[serde(remote)]`). Types with
/// borrowed fields (lifetimes) need serde's own derive.
#[proc_macro_derive(Deserialize, attributes(serde))]
pub fn derive_deserialize(item: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(item as syn::DeriveInput);
    model::derive_serde(input, true)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// `serde::Serialize` through ferrapi (see [`macro@Deserialize`]).
#[proc_macro_derive(Serialize, attributes(serde))]
pub fn derive_serialize(item: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(item as syn::DeriveInput);
    model::derive_serde(input, false)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives ferrapi's `Validate` from `#[garde(...)]` field rules: the same
/// rules that ferrapi's `#[derive(JsonSchema)]` writes into the schema, so
/// that the check, the schema and the 422 message agree.
///
/// Rules: `length(min, max, equal)` (characters on strings, elements on
/// lists and maps), `range(min, max, equal)`, `pattern("…")`,
/// `contains("…")`, `prefix("…")`, `suffix("…")`, `ascii`,
/// `alphanumeric`, `email`, `url`, `ip`, `ipv4`, `ipv6`, `required` (on an
/// `Option`), `inner(...)` (an `Option`'s contents, a list's items),
/// `matches(field)`, `custom(fn)` (`fn(&T, &()) -> garde::Result`, also on
/// the container), `skip`, and `dive` (accepted; nested models are always
/// checked). Fields without rules need no attribute.
#[proc_macro_derive(Validate, attributes(garde))]
pub fn derive_validate(item: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(item as syn::DeriveInput);
    model::derive_validate(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `schemars::JsonSchema` with the `#[garde(...)]` rules written as
/// ferrapi's `Validate` checks them (schemars' own derive reads `inner` and
/// string lengths otherwise). Takes every `#[serde]` and `#[schemars]`
/// attribute schemars takes, except schemars' validation attributes:
/// constraints are `#[garde(...)]`, one vocabulary on every extractor.
#[proc_macro_derive(JsonSchema, attributes(garde, schemars, serde))]
pub fn derive_json_schema(item: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(item as syn::DeriveInput);
    model::derive_schema(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[cfg(test)]
mod tests {
    use super::split_doc;

    #[test]
    fn doc_split() {
        assert_eq!(split_doc(""), (None, None));
        assert_eq!(
            split_doc("Create a user."),
            (Some("Create a user.".into()), None)
        );
        assert_eq!(
            split_doc("Create\na user.\n\nMore.\n\nEven more."),
            (
                Some("Create a user.".into()),
                Some("More.\n\nEven more.".into())
            )
        );
    }
}
