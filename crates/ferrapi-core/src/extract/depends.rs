//! Dependency injection: [`Depends<T>`], FastAPI's `Depends`.
//!
//! A dependency is a type implementing [`Dependency`] — by hand, or from an
//! `async fn` with `#[dependency]` — whose value is built from the request
//! (any extractor), application state and other dependencies. Within one
//! request each dependency is resolved at most once (a `TypeId`-keyed map,
//! O(1)), and a dependency can register cleanup code ([`defer`]) that runs
//! after the handler, knowing the [`Outcome`] — FastAPI's dependencies with
//! `yield`. Tests replace any dependency with
//! [`App::override_dependency`](crate::App::override_dependency).
//!
//! Written here rather than taken from a crate: no DI crate on the registry
//! resolves per-request graphs from extractors with caching, cleanup that
//! survives cancellation, and OpenAPI description; the mechanism is small.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::describe::DescribeInput;
use crate::describe::OperationBuilder;
use crate::error::Error;
use futures_util::future::BoxFuture;
use http::request::Parts;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A value built per request from the request, state and other
/// dependencies, asked for with [`Depends<T>`].
///
/// ```
/// use ferrapi::extract::{Dependency, Depends, Rejection, RequestContext};
/// use ferrapi::openapi::OperationBuilder;
/// use ferrapi::prelude::*;
/// use ferrapi::http::request::Parts;
///
/// #[derive(Clone)]
/// struct Settings { greeting: String }
///
/// impl Dependency for Settings {
///     async fn resolve(_parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
///         Ok(cx.state::<Settings>().cloned().unwrap_or(Settings { greeting: "hello".into() }))
///     }
/// }
///
/// #[get("/greet")]
/// async fn greet(Depends(settings): Depends<Settings>) -> String {
///     settings.greeting
/// }
/// ```
pub trait Dependency: Clone + Send + Sync + 'static {
    /// Builds the value. Nested dependencies come from
    /// `Depends::<D>::from_request_parts(parts, cx)`, any other input from
    /// its extractor.
    fn resolve(
        parts: &mut Parts,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<Self, Rejection>> + Send;

    /// Documents what the dependency reads (its extractors and nested
    /// dependencies), so that the operations of the routes using it show
    /// them. `#[dependency]` writes this from the function's parameters.
    fn describe(op: &mut OperationBuilder<'_>) {
        let _ = op;
    }

    /// `false` for a dependency that must be built afresh at every use
    /// (FastAPI's `use_cache=False`).
    const CACHED: bool = true;
}

/// A dependency's value, resolved once per request and shared by every
/// parameter and dependency that asks for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Depends<T>(pub T);

impl<T> std::ops::Deref for Depends<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// How a request ended, as cleanup code sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler answered with a status below 400.
    Success,
    /// The handler (or an extractor) answered with a status of 400 or more.
    Error,
    /// The handler panicked.
    Panicked,
    /// The client went away before the handler finished.
    Cancelled,
}

impl Outcome {
    /// True only for [`Outcome::Success`].
    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}

/// `TypeId` keys used as they are (no SipHash on every cached hit).
type TypeIdHash = std::hash::BuildHasherDefault<crate::validation::pipeline::TypeIdHasher>;

#[doc(hidden)]
pub type CleanupFn = Box<dyn FnOnce(Outcome) -> BoxFuture<'static, Result<(), Error>> + Send>;

/// One request's dependency cache and cleanups, kept in the request's
/// extensions while its handler runs.
#[doc(hidden)]
#[derive(Default)]
pub struct RequestScope {
    cache: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>, TypeIdHash>>,
    cleanups: Mutex<Vec<CleanupFn>>,
    /// Headers, cookies and status written through `ResponseParts`.
    pub response: super::PendingParts,
}

impl RequestScope {
    /// The request's scope, made on first use.
    pub fn of(parts: &mut Parts) -> Arc<RequestScope> {
        if let Some(scope) = parts.extensions.get::<Arc<RequestScope>>() {
            return scope.clone();
        }
        // Room for a typical graph's values up front: the cache does not
        // grow (reallocate and rehash) while a chain resolves.
        let scope = Arc::new(RequestScope {
            cache: Mutex::new(HashMap::with_capacity_and_hasher(8, TypeIdHash::default())),
            cleanups: Mutex::new(Vec::new()),
            response: Default::default(),
        });
        parts.extensions.insert(scope.clone());
        scope
    }

    fn get<T: Clone + 'static>(&self) -> Option<T> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    fn put<T: Send + Sync + 'static>(&self, value: T) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Takes the cleanups, most recent first.
    pub fn take_cleanups(&self) -> Vec<CleanupFn> {
        let mut list =
            std::mem::take(&mut *self.cleanups.lock().unwrap_or_else(|p| p.into_inner()));
        list.reverse();
        list
    }
}

/// Runs cleanups in order; the first error is returned (all run).
#[doc(hidden)]
pub async fn run_cleanups(cleanups: Vec<CleanupFn>, outcome: Outcome) -> Option<Error> {
    let mut first = None;
    for cleanup in cleanups {
        if let Err(e) = cleanup(outcome).await {
            tracing::error!(error = %e, ?outcome, "dependency cleanup failed");
            first.get_or_insert(e);
        }
    }
    first
}

/// Registers code to run after the handler, with the request's [`Outcome`]
/// (FastAPI's code after `yield`). Cleanups run in reverse order of
/// registration, always — also when the handler panicked or the client went
/// away (then on a spawned task). An error from a cleanup after a successful
/// handler turns the response into that error (a failed commit is not a 201).
///
/// ```
/// use ferrapi::extract::{defer, Dependency, Outcome, Rejection, RequestContext};
/// use ferrapi::http::request::Parts;
///
/// #[derive(Clone)]
/// struct Tx;
///
/// impl Dependency for Tx {
///     async fn resolve(parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
///         defer(parts, |outcome| async move {
///             if outcome.is_success() { /* commit */ } else { /* roll back */ }
///             Ok(())
///         });
///         Ok(Tx)
///     }
/// }
/// ```
pub fn defer<F, Fut>(parts: &mut Parts, cleanup: F)
where
    F: FnOnce(Outcome) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let scope = RequestScope::of(parts);
    scope
        .cleanups
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Box::new(move |outcome| Box::pin(cleanup(outcome))));
}

fn resolve_boxed<'a, T: Dependency>(
    parts: &'a mut Parts,
    cx: &'a RequestContext,
) -> BoxFuture<'a, Result<T, Rejection>> {
    Box::pin(T::resolve(parts, cx))
}

impl<T: Dependency> FromRequestParts for Depends<T> {
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let scope = RequestScope::of(parts);
        if T::CACHED
            && let Some(v) = scope.get::<T>()
        {
            return Ok(Depends(v));
        }
        // Overrides are for tests: without any, no lookup.
        let app = cx.app();
        let overridden = if app.has_overrides() {
            app.dependency_override(TypeId::of::<T>())
        } else {
            None
        };
        let value = match overridden {
            Some(provider) => {
                let any = provider(parts, cx).await?;
                match any.downcast::<T>() {
                    Ok(v) => *v,
                    Err(_) => return Err(Rejection::Error(crate::HttpError::internal().into())),
                }
            }
            // Boxed: a dependency's future holds its nested dependencies'
            // futures, and a graph can be deep.
            None => resolve_boxed::<T>(parts, cx).await?,
        };
        if T::CACHED {
            scope.put(value.clone());
        }
        Ok(Depends(value))
    }
}

impl<T: Dependency> DescribeInput for Depends<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.dependency::<T>(std::any::type_name::<T>(), T::describe);
    }
}

/// Application state as a dependency: `Depends<AppState<T>>` is the value
/// registered with `App::state` (500 if none was).
#[derive(Debug, Clone)]
pub struct AppState<T>(pub T);

impl<T: Clone + Send + Sync + 'static> Dependency for AppState<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.require_state::<T>();
    }

    async fn resolve(_parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        match cx.state::<T>() {
            Some(v) => Ok(AppState(v.clone())),
            None => Err(Rejection::Error(Error::new(super::MissingState(
                std::any::type_name::<T>(),
            )))),
        }
    }
}

/// Registers cleanup code from a function dependency (or a handler): the
/// extractor form of [`defer`].
///
/// ```
/// use ferrapi::extract::Cleanup;
/// use ferrapi::prelude::*;
///
/// #[derive(Clone)]
/// struct Tx;
///
/// #[ferrapi::dependency]
/// async fn tx(cleanup: Cleanup) -> Tx {
///     cleanup.defer(|outcome| async move {
///         if outcome.is_success() { /* commit */ } else { /* roll back */ }
///         Ok(())
///     });
///     Tx
/// }
/// ```
#[derive(Clone)]
pub struct Cleanup(Arc<RequestScope>);

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cleanup")
    }
}

impl Cleanup {
    /// Runs `cleanup` after the handler with the request's [`Outcome`]
    /// (see [`defer`]).
    pub fn defer<F, Fut>(&self, cleanup: F)
    where
        F: FnOnce(Outcome) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.0
            .cleanups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(move |outcome| Box::pin(cleanup(outcome))));
    }
}

impl FromRequestParts for Cleanup {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(Cleanup(RequestScope::of(parts)))
    }
}

impl DescribeInput for Cleanup {
    fn describe(op: &mut OperationBuilder<'_>) {
        // The request needs a dependency scope for the cleanup to run.
        op.plan.uses_dependencies = true;
    }
}

/// A dependency run for every route under a router or app without being a
/// handler parameter (FastAPI's `dependencies=[Depends(verify_key)]`): its
/// value is cached for the request (so a parameter asking for it gets the
/// same one), its failure answers the request, its inputs are documented.
#[derive(Clone)]
pub struct RouteDependency {
    resolve: for<'a> fn(&'a mut Parts, &'a RequestContext) -> BoxFuture<'a, Result<(), Rejection>>,
    describe: fn(&mut OperationBuilder<'_>),
}

impl std::fmt::Debug for RouteDependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteDependency")
    }
}

impl RouteDependency {
    /// The dependency `T`.
    pub fn of<T: Dependency>() -> Self {
        fn resolve<'a, T: Dependency>(
            parts: &'a mut Parts,
            cx: &'a RequestContext,
        ) -> BoxFuture<'a, Result<(), Rejection>> {
            Box::pin(async move {
                Depends::<T>::from_request_parts(parts, cx)
                    .await
                    .map(|_| ())
            })
        }
        fn describe<T: Dependency>(op: &mut OperationBuilder<'_>) {
            <Depends<T> as DescribeInput>::describe(op);
        }
        Self {
            resolve: resolve::<T>,
            describe: describe::<T>,
        }
    }

    /// Runs the dependency for a request.
    pub fn resolve<'a>(
        &self,
        parts: &'a mut Parts,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<(), Rejection>> {
        (self.resolve)(parts, cx)
    }

    /// Documents the dependency's inputs on an operation.
    pub fn describe(&self, op: &mut OperationBuilder<'_>) {
        (self.describe)(op);
    }
}
