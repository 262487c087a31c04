//! The build's check phase: mistakes in the declarations themselves — a
//! route's path template and method, routes the router could not tell
//! apart, state read that no one registered, routes shadowed by the app's
//! own documents and docs pages, mounted apps and their prefixes.

use super::plan::Planned;
use super::{Problems, document_url};
use crate::app::{App, RouteError, RouteErrorKind, StateMap};
use crate::openapi::RequiredState;
use crate::routing::{Route, template};
use http::Method;
use std::any::TypeId;
use std::collections::HashMap;

/// A route whose path template and method are valid.
pub(super) struct Declared {
    pub(super) route: Route,
    /// The path with the prefixes of its routers.
    pub(super) full_path: String,
    /// The template's variables, in order.
    pub(super) vars: Vec<String>,
}

/// Checks the route's prefixes, path template and method; the route and
/// its label (`POST /users (create_user, src/users.rs:12)`), or `None` when
/// the route cannot be described.
pub(super) fn declaration(
    route: Route,
    errors: &mut Vec<RouteError>,
) -> Option<(Declared, String)> {
    let full_path = template::join(&route.prefixes, &route.path);
    let label = route.label(&full_path);
    let mut problems = Problems::new(errors, &label);
    for prefix in &route.prefixes {
        if let Some(p) = template::prefix_problems(prefix) {
            problems.push(p);
        }
    }
    let vars = match template::variables(&full_path) {
        Ok(v) => v,
        Err(ps) => {
            ps.into_iter().for_each(|p| problems.push(p));
            return None;
        }
    };
    if !crate::routing::supported_method(&route.method) {
        problems.push(format!("method {} is not supported", route.method));
        return None;
    }
    Some((
        Declared {
            route,
            full_path,
            vars,
        },
        label,
    ))
}

/// The paths seen so far, to find routes the router could not tell apart.
pub(super) struct Clashes {
    /// The first route of each method and shape of path.
    seen_shapes: HashMap<(Method, String), String>,
    /// The first spelling of each shape of path, and its route.
    names_by_shape: HashMap<String, (String, String)>,
    matcher: matchit::Router<()>,
}

impl Clashes {
    pub(super) fn new() -> Self {
        Self {
            seen_shapes: HashMap::new(),
            names_by_shape: HashMap::new(),
            matcher: matchit::Router::new(),
        }
    }

    /// Clashes: the same method on the same shape of path, or the same
    /// shape spelled with other variable names (the router could not tell
    /// them apart).
    pub(super) fn check(&mut self, method: &Method, full_path: &str, problems: &mut Problems<'_>) {
        let shape = template::shape(full_path);
        if let Some(other) = self.seen_shapes.get(&(method.clone(), shape.clone())) {
            problems.push(format!("clashes with {other}: same method and path"));
        } else {
            self.seen_shapes
                .insert((method.clone(), shape.clone()), problems.route().to_owned());
        }
        match self.names_by_shape.get(&shape) {
            Some((path, other)) if *path != full_path => problems.push(format!(
                "path `{full_path}` and `{path}` of {other} differ only in variable names; use the same names"
            )),
            Some(_) => {}
            None => {
                self.names_by_shape.insert(
                    shape.clone(),
                    (full_path.to_owned(), problems.route().to_owned()),
                );
                if let Err(e) = self.matcher.insert(full_path, ()) {
                    problems.push(format!("the router refuses this path: {e}"));
                }
            }
        }
    }
}

/// Reports the state routes read that the app does not provide, each with
/// the dependencies it is read through.
pub(super) fn missing_state(missing: Vec<(String, RequiredState)>, errors: &mut Vec<RouteError>) {
    for (route, need) in missing {
        let via = if need.within.is_empty() {
            String::new()
        } else {
            let chain: Vec<&str> = need.within.iter().map(|(_, n)| *n).collect();
            format!(" (through dependency {})", chain.join(" -> "))
        };
        errors.push(RouteError {
            route,
            problem: format!(
                "reads state `{}`{via}, but no `App::state` registered a value of that type; add `.state(value)` to the app (or override the dependency that reads it)",
                need.type_name
            ),
            kind: RouteErrorKind::MissingState {
                type_name: need.type_name,
            },
        });
    }
}

/// The paths the app serves itself (documents, docs pages), after
/// reporting the routes they would shadow.
pub(super) fn served(
    docs: &crate::docs::DocsConfig,
    openapi_url: &Option<String>,
    documents: &[(String, String)],
    asyncapi_url: &Option<String>,
    planned: &[Planned],
    errors: &mut Vec<RouteError>,
) -> Vec<String> {
    let mut served: Vec<String> = docs.paths();
    if let Some(url) = openapi_url {
        served.push(url.clone());
        served.extend(documents.iter().map(|(name, _)| document_url(name)));
    }
    if let Some(url) = asyncapi_url {
        served.push(url.clone());
    }
    for c in planned {
        if served.contains(&c.full_path) {
            errors.push(RouteError {
                route: c.route.label(&c.full_path),
                problem: format!(
                    "`{}` is served by the app's OpenAPI or AsyncAPI document or docs pages; move the route or set `openapi_url`/`asyncapi_url`/`docs_url`/`redoc_url`",
                    c.full_path
                ),
                kind: RouteErrorKind::Declaration,
            });
        }
    }
    served
}

/// Mounted applications: each checked by building it on its own, under its
/// prefix, with this app's `Draining`. Their routers, by prefix.
pub(super) fn mounts(
    mounts: Vec<(String, App)>,
    root_path: &str,
    state: &StateMap,
    planned: &[Planned],
    served: &[String],
    errors: &mut Vec<RouteError>,
) -> Vec<(String, axum::Router)> {
    let draining = state.get::<crate::Draining>().cloned();
    let mut mounted: Vec<(String, axum::Router)> = Vec::with_capacity(mounts.len());
    for (prefix, mut sub) in mounts {
        let label = format!("mount `{prefix}`");
        let mut problems = Problems::new(errors, &label);
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            problems.push("a mount prefix is a fixed path such as `/v2`".into());
            continue;
        }
        if let Some(p) = template::prefix_problems(&prefix) {
            problems.push(p);
            continue;
        }
        let under = |path: &str| {
            path == prefix.as_str()
                || path
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        for c in planned.iter().filter(|c| under(c.full_path.as_str())) {
            problems.push(format!(
                "{} is under the mount prefix: the mounted app would never see its requests",
                c.route.label(&c.full_path)
            ));
        }
        if let Some(path) = served.iter().find(|p| under(p.as_str())) {
            problems.push(format!(
                "`{path}` (the app's document or docs pages) is under the mount prefix"
            ));
        }
        if mounted.iter().any(|(p, _)| *p == prefix) {
            problems.push("another app is mounted at the same prefix".into());
        }
        sub.root_path = format!("{root_path}{prefix}");
        if let Some(d) = &draining {
            sub.state
                .0
                .insert(TypeId::of::<crate::Draining>(), Box::new(d.clone()));
        }
        match sub.build() {
            Ok(built) => mounted.push((prefix, built.router)),
            Err(e) => errors.extend(e.errors.into_iter().map(|err| RouteError {
                route: format!("{} (in the app mounted at `{prefix}`)", err.route),
                ..err
            })),
        }
    }
    mounted
}
