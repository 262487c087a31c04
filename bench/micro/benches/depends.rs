//! Issue 4's acceptance benchmark for dependency injection: a chain of five
//! nested request-scoped dependencies, against the same chain written as
//! plain axum extractors (each calling the one below), and the cost of a
//! cached hit with 1 and with 64 dependencies in the request's cache.
//!
//! Requests go through each framework's router as a tower service
//! (`oneshot`), with the body read to the end, so every figure is a whole
//! request; each chain has a baseline route (same handler, no dependency)
//! beside it, so the chain's own cost is the difference.
//!
//! `cargo bench -p ferrapi-micro --bench depends` (in bench/).

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use ferrapi::extract::{Dependency, Depends, FromRequestParts, Rejection, RequestContext};
use ferrapi::http;
use ferrapi::http::request::Parts;
use ferrapi::prelude::*;
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::hint::black_box;
use tower::ServiceExt;

// ---------------------------------------------------------------- ferrapi chain

/// The bottom of the chain.
#[derive(Clone)]
struct C1(u64);

impl Dependency for C1 {
    async fn resolve(_parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
        Ok(C1(1))
    }
}

macro_rules! ferrapi_chain {
    ($($name:ident <- $below:ident;)*) => {$(
        #[derive(Clone)]
        struct $name(u64);

        impl Dependency for $name {
            async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
                let Depends(below) = Depends::<$below>::from_request_parts(parts, cx).await?;
                Ok($name(below.0 + 1))
            }
        }
    )*};
}

ferrapi_chain! {
    C2 <- C1;
    C3 <- C2;
    C4 <- C3;
    C5 <- C4;
}

async fn ferrapi_none() -> String {
    black_box(5u64).to_string()
}

async fn ferrapi_chain(Depends(top): Depends<C5>) -> String {
    top.0.to_string()
}

// ---------------------------------------------------------------- axum chain

mod bare {
    use super::*;

    /// The bottom of the chain.
    pub struct A1(pub u64);

    impl<S: Send + Sync> axum::extract::FromRequestParts<S> for A1 {
        type Rejection = Infallible;
        async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
            Ok(A1(1))
        }
    }

    macro_rules! axum_chain {
        ($($name:ident <- $below:ident;)*) => {$(
            pub struct $name(pub u64);

            impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $name {
                type Rejection = Infallible;
                async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
                    let below = $below::from_request_parts(parts, state).await?;
                    Ok($name(below.0 + 1))
                }
            }
        )*};
    }

    axum_chain! {
        A2 <- A1;
        A3 <- A2;
        A4 <- A3;
        A5 <- A4;
    }

    async fn none() -> String {
        black_box(5u64).to_string()
    }

    async fn chain(top: A5) -> String {
        top.0.to_string()
    }

    pub fn app() -> axum::Router {
        axum::Router::new()
            .route("/none", axum::routing::get(none))
            .route("/chain", axum::routing::get(chain))
    }
}

// ---------------------------------------------------------------- cached hits

macro_rules! leaves {
    ($($name:ident),*) => {$(
        #[derive(Clone)]
        struct $name;

        impl Dependency for $name {
            async fn resolve(_parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
                Ok($name)
            }
        }
    )*};
}

leaves!(
    L01, L02, L03, L04, L05, L06, L07, L08, L09, L10, L11, L12, L13, L14, L15, L16, L17, L18, L19,
    L20, L21, L22, L23, L24, L25, L26, L27, L28, L29, L30, L31, L32, L33, L34, L35, L36, L37, L38,
    L39, L40, L41, L42, L43, L44, L45, L46, L47, L48, L49, L50, L51, L52, L53, L54, L55, L56, L57,
    L58, L59, L60, L61, L62, L63
);

/// Resolves 63 more dependencies, so that the request's cache holds 64.
#[derive(Clone)]
struct Many;

impl Dependency for Many {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        macro_rules! resolve_all {
            ($($name:ident),*) => {$(
                Depends::<$name>::from_request_parts(parts, cx).await?;
            )*};
        }
        resolve_all!(
            L01, L02, L03, L04, L05, L06, L07, L08, L09, L10, L11, L12, L13, L14, L15, L16, L17,
            L18, L19, L20, L21, L22, L23, L24, L25, L26, L27, L28, L29, L30, L31, L32, L33, L34,
            L35, L36, L37, L38, L39, L40, L41, L42, L43, L44, L45, L46, L47, L48, L49, L50, L51,
            L52, L53, L54, L55, L56, L57, L58, L59, L60, L61, L62, L63
        );
        Ok(Many)
    }
}

/// How many cached hits a `Hits` dependency makes.
const HITS: u64 = 100;

/// `HITS` cached lookups of `C1` (resolved once before them).
#[derive(Clone)]
struct Hits(u64);

impl Dependency for Hits {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let mut sum = 0;
        for _ in 0..HITS {
            let Depends(c) = Depends::<C1>::from_request_parts(parts, cx).await?;
            sum += c.0;
        }
        Ok(Hits(sum))
    }
}

async fn small_base(Depends(c): Depends<C1>) -> String {
    c.0.to_string()
}
async fn small_hits(Depends(c): Depends<C1>, Depends(h): Depends<Hits>) -> String {
    (c.0 + h.0).to_string()
}
async fn big_base(Depends(c): Depends<C1>, Depends(_m): Depends<Many>) -> String {
    c.0.to_string()
}
async fn big_hits(
    Depends(c): Depends<C1>,
    Depends(_m): Depends<Many>,
    Depends(h): Depends<Hits>,
) -> String {
    (c.0 + h.0).to_string()
}

fn ferrapi_app() -> axum::Router {
    App::new()
        .route(Route::get("/none", ferrapi_none))
        .route(Route::get("/chain", ferrapi_chain))
        .route(Route::get("/small_base", small_base))
        .route(Route::get("/small_hits", small_hits))
        .route(Route::get("/big_base", big_base))
        .route(Route::get("/big_hits", big_hits))
        .into_router()
        .expect("valid routes")
}

// ---------------------------------------------------------------- helpers

fn get_req(path: &str) -> http::Request<Body> {
    http::Request::get(path)
        .body(Body::empty())
        .expect("request")
}

async fn call(router: &axum::Router, path: &str) -> Vec<u8> {
    let res = router
        .clone()
        .oneshot(get_req(path))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200, "{path}");
    res.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------- benches

fn chain(c: &mut Criterion) {
    let rt = runtime();
    let f = ferrapi_app();
    let a = bare::app();
    // Both chains compute the same value: 5.
    for app in [&f, &a] {
        assert_eq!(rt.block_on(call(app, "/chain")), b"5");
        assert_eq!(rt.block_on(call(app, "/none")), b"5");
    }
    let mut g = c.benchmark_group("depends_chain");
    g.bench_function("ferrapi, no dependency", |b| {
        b.to_async(&rt).iter(|| call(&f, "/none"))
    });
    g.bench_function("ferrapi, 5 nested Depends", |b| {
        b.to_async(&rt).iter(|| call(&f, "/chain"))
    });
    g.bench_function("axum, no extractor", |b| {
        b.to_async(&rt).iter(|| call(&a, "/none"))
    });
    g.bench_function("axum, 5 nested extractors", |b| {
        b.to_async(&rt).iter(|| call(&a, "/chain"))
    });
    g.finish();
}

fn cached(c: &mut Criterion) {
    let rt = runtime();
    let f = ferrapi_app();
    assert_eq!(rt.block_on(call(&f, "/small_hits")), b"101");
    assert_eq!(rt.block_on(call(&f, "/big_hits")), b"101");
    let mut g = c.benchmark_group("depends_cached_hit");
    for (name, path) in [
        ("1 cached, no hits", "/small_base"),
        ("1 cached, 100 hits", "/small_hits"),
        ("64 cached, no hits", "/big_base"),
        ("64 cached, 100 hits", "/big_hits"),
    ] {
        g.bench_function(name, |b| b.to_async(&rt).iter(|| call(&f, path)));
    }
    g.finish();
}

criterion_group!(benches, chain, cached);
criterion_main!(benches);
