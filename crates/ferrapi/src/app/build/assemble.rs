//! The build's assembly phase, once every check passed: the dispatcher of
//! the planned routes (each with its pre-resolved [`RoutePlan`]), its
//! fallback (the documents, the docs pages, mounted apps, 404) and the
//! app's layers around it.

use super::document_url;
use super::plan::Planned;
use crate::app::{AppShared, BuiltApp, LayerFn, StateMap};
use crate::extract::{OverrideFn, RequestContext, RoutePlan};
use crate::openapi::OpenApi;
use crate::openapi::asyncapi::AsyncApi;
use crate::response::ExceptionHandlers;
#[cfg(feature = "metrics")]
use crate::routing::Route;
use axum::response::IntoResponse;
use ferrapi_core::HttpError;
use http::Method;
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

/// What the assembly is made of: the app's runtime parts, its planned
/// routes, its finished documents and what the checks found.
pub(super) struct Parts {
    pub(super) state: StateMap,
    pub(super) exception_handlers: ExceptionHandlers,
    pub(super) overrides: HashMap<TypeId, OverrideFn>,
    pub(super) body_limit: usize,
    pub(super) planned: Vec<Planned>,
    pub(super) openapi: Arc<OpenApi>,
    pub(super) asyncapi: Arc<AsyncApi>,
    pub(super) openapi_url: Option<String>,
    /// The versioned documents, as (name, path prefix).
    pub(super) documents: Vec<(String, String)>,
    pub(super) asyncapi_url: Option<String>,
    pub(super) docs: crate::docs::DocsConfig,
    /// The paths the app serves itself (documents, docs pages).
    pub(super) served: Vec<String>,
    pub(super) mounted: Vec<(String, axum::Router)>,
    #[cfg(feature = "metrics")]
    pub(super) metrics: Option<Arc<crate::metrics::Metrics>>,
    pub(super) layers: Vec<LayerFn>,
    pub(super) fused: Option<(usize, crate::middleware::stack::FusedLayer)>,
}

/// The route serving the app's metrics, when it records them.
#[cfg(feature = "metrics")]
pub(super) fn metrics_route(
    routes: Vec<Route>,
    metrics: Option<(String, Arc<crate::metrics::Metrics>)>,
) -> (Vec<Route>, Option<Arc<crate::metrics::Metrics>>) {
    match metrics {
        Some((path, registry)) => {
            let mut routes = routes;
            let served = registry.clone();
            routes.push(
                Route::get(path, move || {
                    let registry = served.clone();
                    async move {
                        (
                            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            registry.render(),
                        )
                            .into_response()
                    }
                })
                .name("metrics")
                .tags(["observability"])
                .summary("Prometheus metrics"),
            );
            (routes, Some(registry))
        }
        None => (routes, None),
    }
}

/// The docs pages of the app, showing its documents at the URLs the browser
/// fetches (under the mount prefix, if any).
pub(super) fn docs_config(
    title: String,
    docs_url: Option<String>,
    redoc_url: Option<String>,
    openapi_url: &Option<String>,
    documents: &[(String, String)],
    root_path: &str,
) -> crate::docs::DocsConfig {
    crate::docs::DocsConfig {
        title,
        docs_url,
        redoc_url,
        documents: match openapi_url {
            Some(url) => {
                std::iter::once(("all".to_owned(), format!("{root_path}{url}")))
                    .chain(documents.iter().map(|(name, _)| {
                        (name.clone(), format!("{root_path}{}", document_url(name)))
                    }))
                    .collect()
            }
            None => Vec::new(),
        },
        oauth2_redirect: true,
        root_path: root_path.to_owned(),
    }
}

/// The built app.
pub(super) fn assemble(p: Parts) -> BuiltApp {
    #[cfg(feature = "metrics")]
    let metrics = p.metrics;
    let shared = Arc::new(AppShared {
        state: p.state,
        exception_handlers: p.exception_handlers,
        overrides: p.overrides,
        sessions: Default::default(),
    });
    let mut dispatch = crate::routing::DispatchBuilder::new();
    for Planned {
        route,
        full_path,
        vars,
        uses_dependencies,
        buffers_body,
        route_dependencies,
    } in p.planned
    {
        let has_params = !vars.is_empty();
        let cx = Arc::new(RequestContext::new(
            shared.clone(),
            RoutePlan {
                path: Arc::from(full_path.as_str()),
                status: route.status,
                body_limit: route.body_limit.unwrap_or(p.body_limit),
                path_vars: Arc::from(vars),
                uses_dependencies,
                buffers_body,
                dependencies: Arc::from(route_dependencies),
            },
        ));
        dispatch.route(
            &full_path,
            &route.method,
            has_params,
            route.handler.clone(),
            cx,
        );
    }
    // The fallback: the document, the docs pages, and 404.
    let mut fallback = axum::Router::new();
    if let Some(url) = &p.openapi_url {
        fallback = serve_json(fallback, url, &*p.openapi);
        for (name, prefix) in &p.documents {
            fallback = serve_json(fallback, &document_url(name), &p.openapi.subset(prefix));
        }
    }
    if let Some(url) = &p.asyncapi_url {
        fallback = serve_json(fallback, url, &*p.asyncapi);
    }
    fallback = crate::docs::routes(fallback, &p.docs);
    for path in &p.served {
        dispatch.fallback_path(path);
    }
    for (prefix, router) in p.mounted {
        dispatch.fallback_path(&prefix);
        dispatch.fallback_path(&format!("{prefix}/{{*mounted}}"));
        fallback = fallback.nest_service(&prefix, router);
    }
    let not_found = shared.clone();
    #[cfg(feature = "metrics")]
    let unmatched: Arc<str> = Arc::from("unmatched");
    #[cfg(feature = "metrics")]
    let unmatched_metrics = metrics.clone();
    fallback = fallback.fallback(move |method: Method| {
        let shared = not_found.clone();
        #[cfg(feature = "metrics")]
        let measure = unmatched_metrics
            .as_ref()
            .map(|m| m.start(&unmatched, &method));
        let _ = &method;
        async move {
            let res = shared.render_error(HttpError::not_found("Not Found").into());
            #[cfg(feature = "metrics")]
            if let Some(measure) = measure {
                measure.finish(
                    res.status().as_u16(),
                    http_body::Body::size_hint(res.body()).exact(),
                );
            }
            res
        }
    });
    let dispatch = dispatch.finish(shared, fallback, |routes| {
        crate::observe::Observers::new(
            routes,
            #[cfg(feature = "metrics")]
            metrics,
        )
    });
    wrap(dispatch, p.layers, p.fused, p.openapi, p.asyncapi)
}

/// The axum router of the app (`App::into_router`, the test client, and
/// the server when layers wrap the routes): the dispatcher as the one
/// service of an empty router, so that tower layers apply to it.
/// A stack's fused layers stay outermost, called by the server over the
/// rest directly, unless layers were added after them: then they take
/// their place among the layers.
fn wrap(
    dispatch: crate::routing::Dispatch,
    mut layers: Vec<LayerFn>,
    fused: Option<(usize, crate::middleware::stack::FusedLayer)>,
    openapi: Arc<OpenApi>,
    asyncapi: Arc<AsyncApi>,
) -> BuiltApp {
    let fused = match fused {
        Some((at, fused)) if at == layers.len() => Some(fused),
        Some((at, fused)) => {
            layers.insert(at, Box::new(move |router| router.layer(fused)));
            None
        }
        None => None,
    };
    let layered = !layers.is_empty();
    let mut router = axum::Router::new().fallback_service(dispatch.clone());
    for layer in layers {
        router = layer(router);
    }
    if layered {
        // Panics in the layers; the dispatcher catches its handlers' own.
        router = router.layer(tower_http::catch_panic::CatchPanicLayer::custom(
            crate::routing::panic_response,
        ));
    }
    let routes = if layered {
        crate::server::Routes::Layered(router.clone())
    } else {
        crate::server::Routes::Direct(dispatch)
    };
    let served = crate::server::Served::new(fused.map(|fused| fused.0), routes);
    if served.hook().is_some() {
        router = axum::Router::new().fallback_service(served.clone());
    }
    BuiltApp {
        router,
        served,
        openapi,
        asyncapi,
    }
}

/// Serves `value` as JSON at `url`, serialized once: each request is a
/// reference-counted byte copy.
fn serve_json<T: serde::Serialize>(router: axum::Router, url: &str, value: &T) -> axum::Router {
    let body = bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    router.route(
        url,
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body).into_response() }
        }),
    )
}
