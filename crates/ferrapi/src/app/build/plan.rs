//! The build's plan phase: what each route needs at run time, decided once
//! so that requests do not ask — a dependency scope, the body read before
//! the other extractors, a background task queue — and the checks of what
//! the handler's extractors expect against the route: the shape of its path
//! parameters, the application state they read, dependency cycles.

use super::Problems;
use super::check::Declared;
use crate::app::StateMap;
use crate::extract::OverrideFn;
use crate::openapi::{OperationBuilder, PathShape, RequiredState};
use crate::routing::{Route, RouteDependency};
use std::any::TypeId;
use std::collections::HashMap;

/// A checked route and what it needs at run time, for the assembly.
pub(super) struct Planned {
    pub(super) route: Route,
    pub(super) full_path: String,
    pub(super) vars: Vec<String>,
    pub(super) uses_dependencies: bool,
    pub(super) buffers_body: bool,
    pub(super) route_dependencies: Vec<RouteDependency>,
}

/// What the app provides that routes may read: its state, the state its
/// startup hooks promise, and the dependencies overridden (a state read
/// within an overridden dependency is not needed).
pub(super) struct Registered<'a> {
    pub(super) state: &'a StateMap,
    pub(super) promised: &'a [TypeId],
    pub(super) overrides: &'a HashMap<TypeId, OverrideFn>,
}

impl Registered<'_> {
    fn provides(&self, need: &RequiredState) -> bool {
        self.state.0.contains_key(&need.type_id)
            || self.promised.contains(&need.type_id)
            || need
                .within
                .iter()
                .any(|(id, _)| self.overrides.contains_key(id))
    }
}

/// Plans `declared` from what its extractors recorded in `op.plan` while
/// describing themselves (and the mistakes in `op.problems`); its mistakes go to `problems`, the state it reads
/// that the app does not provide to `missing_state`.
pub(super) fn route(
    declared: Declared,
    route_dependencies: Vec<RouteDependency>,
    op: &mut OperationBuilder<'_>,
    registered: &Registered<'_>,
    problems: &mut Problems<'_>,
    missing_state: &mut Vec<(String, RequiredState)>,
) -> Planned {
    let Declared {
        route,
        full_path,
        vars,
    } = declared;
    for p in std::mem::take(&mut op.problems) {
        problems.push(p);
    }
    for need in std::mem::take(&mut op.plan.required_state) {
        if !registered.provides(&need) {
            missing_state.push((problems.route().to_owned(), need));
        }
    }
    // A handler taking `BackgroundTasks` gets a task queue per request.
    let route = crate::extract::with_background_queue(route, op.plan.runs_background_tasks);
    if let Some(p) = check_path_shape(op.plan.path_shape.as_ref(), &vars) {
        problems.push(p);
    }
    Planned {
        route,
        full_path,
        vars,
        uses_dependencies: op.plan.uses_dependencies,
        buffers_body: op.plan.buffers_body,
        route_dependencies,
    }
}

/// Why the handler's path extractor cannot read the path's variables.
fn check_path_shape(shape: Option<&PathShape>, vars: &[String]) -> Option<String> {
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match shape {
        None if vars.is_empty() => None,
        None => Some(format!(
            "the path has variable(s) {} but the handler takes no `Path` parameter",
            list(vars)
        )),
        Some(PathShape::Single) if vars.len() == 1 => None,
        Some(PathShape::Single) => Some(format!(
            "the handler takes one path value but the path has {} variable(s){}{}",
            vars.len(),
            if vars.is_empty() { "" } else { ": " },
            list(vars)
        )),
        Some(PathShape::Tuple(n)) if *n == vars.len() => None,
        Some(PathShape::Tuple(n)) => Some(format!(
            "the handler takes a tuple of {n} path values but the path has {} variable(s){}{}",
            vars.len(),
            if vars.is_empty() { "" } else { ": " },
            list(vars)
        )),
        Some(PathShape::Named(names)) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !vars.contains(n))
                .cloned()
                .collect();
            let unused: Vec<String> = vars
                .iter()
                .filter(|v| !names.contains(v))
                .cloned()
                .collect();
            let mut problems = Vec::new();
            if !missing.is_empty() {
                problems.push(format!(
                    "the handler's path parameter(s) {} are not in the path",
                    list(&missing)
                ));
            }
            if !unused.is_empty() {
                problems.push(format!(
                    "path variable(s) {} are not taken by the handler",
                    list(&unused)
                ));
            }
            (!problems.is_empty()).then(|| problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_shapes() {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(check_path_shape(None, &[]).is_none());
        assert!(check_path_shape(None, &v(&["id"])).is_some());
        assert!(check_path_shape(Some(&PathShape::Single), &v(&["id"])).is_none());
        assert!(check_path_shape(Some(&PathShape::Single), &v(&["a", "b"])).is_some());
        assert!(check_path_shape(Some(&PathShape::Tuple(2)), &v(&["a", "b"])).is_none());
        let named = PathShape::Named(v(&["a", "b"]));
        assert!(check_path_shape(Some(&named), &v(&["b", "a"])).is_none());
        let msg = check_path_shape(Some(&named), &v(&["a", "c"])).unwrap_or_default();
        assert!(msg.contains("`b`") && msg.contains("`c`"), "{msg}");
    }
}
