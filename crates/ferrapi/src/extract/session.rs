//! Session scope: a value per authenticated principal (the loaded current
//! user, say), cached across that principal's requests for a bounded time,
//! bounded in memory, invalidated explicitly.
//!
//! The cache is written here (a map under a mutex, expiry on read, eviction
//! of the expired then the oldest entries when full) rather than taken from
//! moka, to keep the framework's default dependency count low; the cache
//! integration brings moka for application data.

use super::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::DescribeInput;
use crate::openapi::OperationBuilder;
use http::request::Parts;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A value cached per principal across requests: [`Session<T>`] loads it
/// once per key (e.g. per bearer token) and serves it from memory until its
/// TTL passes or it is invalidated with [`SessionStore<T>`].
pub trait SessionDependency: Clone + Send + Sync + 'static {
    /// The principal's key in this request (a token, a session id);
    /// `None`: nothing to cache by, `load` runs every time.
    fn key(parts: &Parts) -> Option<String>;
    /// Loads the value (on a cache miss).
    fn load(
        parts: &mut Parts,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<Self, Rejection>> + Send;
    /// Documents what `load` reads.
    fn describe(op: &mut OperationBuilder<'_>) {
        let _ = op;
    }
    /// How long a loaded value is served (default 60 s).
    const TTL: Duration = Duration::from_secs(60);
    /// How many principals are kept at most (default 10,000).
    const CAPACITY: usize = 10_000;
}

/// The cache of one session type.
pub(crate) struct SessionCache<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T: SessionDependency> SessionCache<T> {
    fn get(&self, key: &str) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((at, v)) if at.elapsed() < T::TTL => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: String, value: T) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= T::CAPACITY && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| at.elapsed() < T::TTL);
            while entries.len() >= T::CAPACITY.max(1) {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => {
                        entries.remove(&k);
                    }
                    None => break,
                }
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Every session cache of an application, by type.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Sessions {
    fn cache<T: SessionDependency>(&self) -> Arc<SessionCache<T>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(TypeId::of::<T>()).or_insert_with(|| {
            Arc::new(SessionCache::<T> {
                entries: Mutex::new(HashMap::new()),
            })
        });
        match entry.clone().downcast::<SessionCache<T>>() {
            Ok(cache) => cache,
            // Unreachable: the entry for T's TypeId is always a SessionCache<T>.
            Err(_) => Arc::new(SessionCache {
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// A session-scoped value: loaded once per principal, then served from
/// memory for `T::TTL`.
///
/// ```
/// use ferrapi::extract::{Rejection, RequestContext, Session, SessionDependency};
/// use ferrapi::http::request::Parts;
/// use ferrapi::prelude::*;
///
/// #[derive(Clone)]
/// struct LoadedUser { name: String }
///
/// impl SessionDependency for LoadedUser {
///     fn key(parts: &Parts) -> Option<String> {
///         parts.headers.get("authorization")?.to_str().ok().map(str::to_owned)
///     }
///     async fn load(_parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
///         Ok(LoadedUser { name: "ada".into() }) // a database read, in real life
///     }
/// }
///
/// #[get("/me")]
/// async fn me(Session(user): Session<LoadedUser>) -> String {
///     user.name
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Session<T>(pub T);

/// The application's session caches (kept for this extractor by every
/// application; a 500 if the context is not a ferrapi application's).
fn sessions(cx: &RequestContext) -> Result<&Sessions, Rejection> {
    cx.extension::<Sessions>()
        .ok_or_else(|| Rejection::Error(ferrapi_core::HttpError::internal().into()))
}

impl<T: SessionDependency> FromRequestParts for Session<T> {
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let Some(key) = T::key(parts) else {
            return T::load(parts, cx).await.map(Session);
        };
        let cache = sessions(cx)?.cache::<T>();
        if let Some(v) = cache.get(&key) {
            return Ok(Session(v));
        }
        let value = T::load(parts, cx).await?;
        cache.put(key, value.clone());
        Ok(Session(value))
    }
}

impl<T: SessionDependency> DescribeInput for Session<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        T::describe(op);
    }
}

/// The session cache of `T`, to invalidate entries (after a logout, a
/// password change, an update of the user).
pub struct SessionStore<T> {
    cache: Arc<SessionCache<T>>,
}

impl<T> std::fmt::Debug for SessionStore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionStore(..)")
    }
}

impl<T: SessionDependency> SessionStore<T> {
    /// Forgets the value of one principal.
    pub fn invalidate(&self, key: &str) {
        self.cache
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
    /// Forgets every value of the predicate's choosing (e.g. every token of
    /// one user).
    pub fn invalidate_where(&self, mut predicate: impl FnMut(&str, &T) -> bool) {
        self.cache
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, (_, v)| !predicate(k, v));
    }
    /// How many principals are cached.
    pub fn len(&self) -> usize {
        self.cache.len()
    }
    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: SessionDependency> FromRequestParts for SessionStore<T> {
    async fn from_request_parts(
        _parts: &mut Parts,
        cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(SessionStore {
            cache: sessions(cx)?.cache::<T>(),
        })
    }
}

impl<T> DescribeInput for SessionStore<T> {}
