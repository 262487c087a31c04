//! [`App::build`](super::App::build) in phases, each a module with its data
//! handed to the next:
//!
//! - [`check`]: the declarations themselves — path templates, methods,
//!   clashes between routes, the state routes read, paths the app serves
//!   itself, mounted apps — each mistake a [`RouteError`] naming its route;
//! - [`document`]: the OpenAPI and AsyncAPI documents (operations, schemas,
//!   security schemes, WebSocket channels, bus topics);
//! - [`plan`]: what each route needs at run time (a dependency scope, a
//!   buffered body, a background task queue), checked against its path;
//! - [`assemble`]: the dispatcher, its fallback (documents, docs pages,
//!   mounted apps, 404) and the app's layers, as a [`BuiltApp`].
//!
//! Routes go through check, document and plan one at a time, so that the
//! mistakes of one route are reported together and in declaration order;
//! the app-wide checks follow, and assembly starts only when no mistake was
//! found. Written by hand: this is the framework's own registration logic.

mod assemble;
mod check;
mod document;
mod plan;

use super::{App, BuildError, BuiltApp, RouteError, RouteErrorKind};

/// The mistakes of one route, each recorded as a [`RouteError`] naming it.
pub(super) struct Problems<'a> {
    errors: &'a mut Vec<RouteError>,
    route: &'a str,
}

impl<'a> Problems<'a> {
    fn new(errors: &'a mut Vec<RouteError>, route: &'a str) -> Self {
        Self { errors, route }
    }

    /// Records a mistake in the route's declaration.
    fn push(&mut self, problem: String) {
        self.errors.push(RouteError {
            route: self.route.to_owned(),
            problem,
            kind: RouteErrorKind::Declaration,
        });
    }

    /// The route, as errors name it.
    fn route(&self) -> &str {
        self.route
    }
}

/// Checks every route and builds the router and the documents.
pub(super) fn build(app: App) -> Result<BuiltApp, BuildError> {
    let App {
        info,
        servers,
        external_docs,
        documents,
        docs_url,
        redoc_url,
        routes,
        state,
        exception_handlers,
        body_limit,
        layers,
        fused,
        tags,
        openapi_url,
        asyncapi_url,
        asyncapi_servers,
        topics,
        dependencies: app_dependencies,
        overrides,
        #[cfg(feature = "metrics")]
        metrics,
        lifespan,
        console_log: _,
        mounts,
        root_path,
    } = app;
    #[cfg(feature = "metrics")]
    let (routes, metrics) = assemble::metrics_route(routes, metrics);
    let mut errors = Vec::new();
    let mut missing_state = Vec::new();
    let mut planned: Vec<plan::Planned> = Vec::with_capacity(routes.len());
    let mut docs = document::Documents::new(
        info,
        tags,
        servers,
        external_docs,
        asyncapi_servers,
        &root_path,
    );
    let mut clashes = check::Clashes::new();
    let registered = plan::Registered {
        state: &state,
        promised: &lifespan.promised,
        overrides: &overrides,
    };
    for route in routes {
        let Some((declared, label)) = check::declaration(route, &mut errors) else {
            continue;
        };
        let mut problems = Problems::new(&mut errors, &label);
        let mut route_dependencies = app_dependencies.clone();
        route_dependencies.extend(declared.route.dependencies.iter().cloned());
        let mut op = document::describe(&mut docs.registry, &declared, &route_dependencies);
        let route = plan::route(
            declared,
            route_dependencies,
            &mut op,
            &registered,
            &mut problems,
            &mut missing_state,
        );
        let operation = document::finish(op, &route.route);
        let operation = docs.operation(operation, &route.route, &route.full_path, &mut problems);
        clashes.check(&route.route.method, &route.full_path, &mut problems);
        let websocket = docs.add(operation, &route.route, &route.full_path, &mut problems);
        #[cfg(feature = "ws")]
        let route = if websocket {
            plan::Planned {
                route: crate::ws::websocket_route(route.route),
                ..route
            }
        } else {
            route
        };
        #[cfg(not(feature = "ws"))]
        let _ = websocket;
        planned.push(route);
    }
    // After the routes' own mistakes.
    check::missing_state(missing_state, &mut errors);
    docs.topics(topics, &mut errors);
    let asyncapi_url = asyncapi_url.filter(|_| docs.has_channels());
    let docs_pages = assemble::docs_config(
        docs.title(),
        docs_url,
        redoc_url,
        &openapi_url,
        &documents,
        &root_path,
    );
    let served = check::served(
        &docs_pages,
        &openapi_url,
        &documents,
        &asyncapi_url,
        &planned,
        &mut errors,
    );
    let mounted = check::mounts(mounts, &root_path, &state, &planned, &served, &mut errors);
    if !errors.is_empty() {
        return Err(BuildError { errors });
    }
    let (openapi, asyncapi) = docs.finish();
    Ok(assemble::assemble(assemble::Parts {
        state,
        exception_handlers,
        overrides,
        body_limit,
        planned,
        openapi,
        asyncapi,
        openapi_url,
        documents,
        asyncapi_url,
        docs: docs_pages,
        served,
        mounted,
        #[cfg(feature = "metrics")]
        metrics,
        layers,
        fused,
    }))
}

/// Where the document of version `name` is served.
fn document_url(name: &str) -> String {
    format!("/openapi/{name}.json")
}

#[cfg(test)]
mod tests {
    use crate::app::{App, RouteErrorKind};
    use crate::extract::State;
    use crate::routing::Route;

    /// The phases hand each route's mistakes over in the order of the one
    /// pass they replace: per route its template, plan and document
    /// mistakes, then clashes and operation ids; after every route the
    /// missing state, then the paths the app serves itself.
    #[test]
    fn mistakes_keep_their_order_across_phases() {
        let err = App::new()
            .route(Route::get("/a/{id}", |State(_): State<u8>| async { "a" }))
            .route(Route::get("/a/{id}", || async { "b" }))
            .route(Route::get("/docs", || async { "c" }))
            .route(Route::get("/b/{", || async { "d" }))
            .build()
            .expect_err("every route has a mistake");
        let problems: Vec<(&str, &str)> = err
            .errors
            .iter()
            .map(|e| (e.route.split(' ').nth(1).unwrap_or(""), e.problem.as_str()))
            .collect();
        let expect = [
            ("/a/{id}", "takes no `Path` parameter"),
            ("/a/{id}", "takes no `Path` parameter"),
            ("/a/{id}", "same method and path"),
            ("/a/{id}", "is already used by"),
            ("/b/{", ""),
            ("/a/{id}", "reads state `u8`"),
            ("/docs", "is served by the app's OpenAPI"),
        ];
        assert_eq!(problems.len(), expect.len(), "{err}");
        for ((route, problem), (want_route, want)) in problems.iter().zip(expect) {
            assert_eq!(*route, want_route, "{err}");
            assert!(problem.contains(want), "{problem} lacks {want}: {err}");
        }
        assert!(matches!(
            err.errors[5].kind,
            RouteErrorKind::MissingState { type_name: "u8" }
        ));
    }
}
