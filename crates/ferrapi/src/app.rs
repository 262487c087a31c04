//! [`App`]: the application — routes, state, exception handlers, middleware —
//! and its build step (in [`build`], by phases), where every route
//! declaration is checked and turned into the router and the documents.

mod build;

use crate::extract::{AppContext, OverrideFn, RequestContext};
use crate::openapi::asyncapi::{AsyncApi, AsyncServer, MessageType, TopicChannel};
use crate::openapi::{Contact, ExternalDocs, Info, License, OpenApi, Server, Tag};
use crate::response::{Error, ExceptionHandlers, Response};
use crate::routing::{IntoRoute, Route, Router};
use axum::response::IntoResponse;
use ferrapi_core::HttpError;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

type LayerFn = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

/// Application state by type.
#[derive(Default)]
pub(crate) struct StateMap(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl StateMap {
    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        self.get_by_id(TypeId::of::<T>())?.downcast_ref()
    }

    fn get_by_id(&self, id: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.0.get(&id).map(|b| &**b)
    }
}

/// What every request of an application shares.
pub(crate) struct AppShared {
    pub(crate) state: StateMap,
    pub(crate) exception_handlers: ExceptionHandlers,
    pub(crate) overrides: HashMap<TypeId, crate::extract::OverrideFn>,
    pub(crate) sessions: crate::extract::Sessions,
}

impl fmt::Debug for AppShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppShared")
            .field("state_types", &self.state.0.len())
            .field("exception_handlers", &self.exception_handlers)
            .finish()
    }
}

impl AppShared {
    pub(crate) fn render_error(&self, e: Error) -> Response {
        // A multipart error is answered as the HTTP error it stands for.
        #[cfg(feature = "multipart")]
        let e = crate::extract::multipart::client_error(e);
        self.exception_handlers.render(e)
    }
}

impl AppContext for AppShared {
    fn state(&self, id: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.state.get_by_id(id)
    }
    fn render_error(&self, e: Error) -> Response {
        AppShared::render_error(self, e)
    }
    fn has_overrides(&self) -> bool {
        !self.overrides.is_empty()
    }
    fn dependency_override(&self, id: TypeId) -> Option<&OverrideFn> {
        self.overrides.get(&id)
    }
    fn extension(&self, id: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        (id == TypeId::of::<crate::extract::Sessions>())
            .then_some(&self.sessions as &(dyn Any + Send + Sync))
    }
    fn body_failure(&self, e: &(dyn std::error::Error + 'static)) -> Option<HttpError> {
        crate::server::body_failure(e)
    }
}

/// A ferrapi application (FastAPI's `FastAPI()`): metadata for the
/// document, routes and routers, state, exception handlers and middleware.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[get("/health/live")]
/// async fn live() -> Json<serde_json::Value> {
///     Json(serde_json::json!({"status": "ok"}))
/// }
///
/// let app = App::new()
///     .title("Users")
///     .version("1.0.0")
///     .description("A users API")
///     .route(live);
/// let built = app.build().expect("routes are valid");
/// assert_eq!(built.openapi().info.title, "Users");
/// ```
pub struct App {
    info: Info,
    servers: Vec<Server>,
    external_docs: Option<ExternalDocs>,
    documents: Vec<(String, String)>,
    pub(crate) docs_url: Option<String>,
    redoc_url: Option<String>,
    routes: Vec<Route>,
    state: StateMap,
    exception_handlers: ExceptionHandlers,
    body_limit: usize,
    layers: Vec<LayerFn>,
    /// The fused outer layers of a [`Stack`](crate::middleware::Stack), and
    /// how many layers were added before them (see `build`).
    fused: Option<(usize, crate::middleware::stack::FusedLayer)>,
    tags: Vec<Tag>,
    pub(crate) openapi_url: Option<String>,
    asyncapi_url: Option<String>,
    asyncapi_servers: Vec<(String, AsyncServer)>,
    topics: Vec<TopicChannel>,
    dependencies: Vec<crate::routing::RouteDependency>,
    overrides: HashMap<TypeId, crate::extract::OverrideFn>,
    #[cfg(feature = "metrics")]
    metrics: Option<(String, Arc<crate::metrics::Metrics>)>,
    pub(crate) lifespan: crate::lifespan::Lifespan,
    pub(crate) console_log: Option<crate::console::ConsoleLog>,
    /// Applications mounted under a prefix ([`App::mount`]).
    mounts: Vec<(String, App)>,
    /// The prefix this app is mounted under (set by the parent's build).
    root_path: String,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("info", &self.info)
            .field("routes", &self.routes)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An application titled `ferrapi`, version `0.1.0`, serving its
    /// document at `/openapi.json`.
    pub fn new() -> Self {
        Self {
            info: Info {
                title: "ferrapi".into(),
                version: "0.1.0".into(),
                ..Default::default()
            },
            servers: Vec::new(),
            external_docs: None,
            documents: Vec::new(),
            docs_url: Some("/docs".into()),
            redoc_url: Some("/redoc".into()),
            routes: Vec::new(),
            state: StateMap::default(),
            exception_handlers: ExceptionHandlers::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            layers: Vec::new(),
            fused: None,
            tags: Vec::new(),
            openapi_url: Some("/openapi.json".into()),
            asyncapi_url: Some("/asyncapi.json".into()),
            asyncapi_servers: Vec::new(),
            topics: Vec::new(),
            dependencies: Vec::new(),
            overrides: HashMap::new(),
            #[cfg(feature = "metrics")]
            metrics: None,
            lifespan: crate::lifespan::Lifespan::default(),
            console_log: None,
            mounts: Vec::new(),
            root_path: String::new(),
        }
        .state(crate::Draining::new())
    }

    /// The [`Draining`](crate::Draining) handle the server flips on the
    /// shutdown signal: the one registered as state.
    pub(crate) fn draining_handle(&mut self) -> crate::Draining {
        if let Some(d) = self.state.get::<crate::Draining>() {
            return d.clone();
        }
        let d = crate::Draining::new();
        self.state
            .0
            .insert(TypeId::of::<crate::Draining>(), Box::new(d.clone()));
        d
    }

    /// Records Prometheus metrics of every request into `metrics` and serves
    /// them at `path` (e.g. `/metrics`): `http_requests_total{method,route,status}`,
    /// `http_request_duration_seconds`, `http_response_size_bytes`,
    /// `http_requests_in_flight`, process metrics, and your own (keep the
    /// `Arc` to add them; it is also application state).
    ///
    /// ```
    /// use ferrapi::metrics::Metrics;
    /// use ferrapi::prelude::*;
    /// use std::sync::Arc;
    ///
    /// let metrics = Arc::new(Metrics::new());
    /// let app = App::new().metrics("/metrics", metrics.clone());
    /// ```
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn metrics(mut self, path: &str, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.state.0.insert(
            TypeId::of::<Arc<crate::metrics::Metrics>>(),
            Box::new(metrics.clone()),
        );
        self.metrics = Some((path.to_owned(), metrics));
        self
    }

    /// Runs dependency `T` for every route of the app (FastAPI's
    /// `FastAPI(dependencies=[…])`).
    #[must_use]
    pub fn dependency<T: crate::extract::Dependency>(mut self) -> Self {
        self.dependencies
            .push(crate::routing::RouteDependency::of::<T>());
        self
    }

    /// Replaces dependency `T` with a fixed value for this app (FastAPI's
    /// `app.dependency_overrides`): every `Depends<T>`, nested ones included,
    /// gets a clone of `value`. For tests: the current user, the database.
    ///
    /// ```
    /// use ferrapi::extract::{Dependency, Depends, Rejection, RequestContext};
    /// use ferrapi::http::request::Parts;
    /// use ferrapi::prelude::*;
    ///
    /// #[derive(Clone)]
    /// struct CurrentUser(String);
    /// impl Dependency for CurrentUser {
    ///     async fn resolve(_: &mut Parts, _: &RequestContext) -> Result<Self, Rejection> {
    ///         Err(HttpError::unauthorized("Not authenticated").into())
    ///     }
    /// }
    ///
    /// let app = App::new().override_dependency(CurrentUser("test-user".into()));
    /// ```
    #[must_use]
    pub fn override_dependency<T: crate::extract::Dependency>(self, value: T) -> Self {
        self.override_dependency_with::<T, _, _>(move |_, _| {
            let value = value.clone();
            async move { Ok(value) }
        })
    }

    /// Replaces dependency `T` with a provider of your own, which may read
    /// the request and resolve other dependencies itself.
    #[must_use]
    pub fn override_dependency_with<T, F, Fut>(mut self, provider: F) -> Self
    where
        T: crate::extract::Dependency,
        F: Fn(&mut http::request::Parts, &RequestContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, crate::extract::Rejection>> + Send + 'static,
    {
        let provider: crate::extract::OverrideFn = Arc::new(move |parts, cx| {
            let fut = provider(parts, cx);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Box<dyn Any + Send>) })
        });
        self.overrides.insert(TypeId::of::<T>(), provider);
        self
    }

    /// The API title.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.info.title = title.into();
        self
    }

    /// The API version.
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.info.version = version.into();
        self
    }

    /// The API description (Markdown).
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.info.description = Some(description.into());
        self
    }

    /// The terms of service URL.
    #[must_use]
    pub fn terms_of_service(mut self, url: impl Into<String>) -> Self {
        self.info.terms_of_service = Some(url.into());
        self
    }

    /// The API's contact.
    #[must_use]
    pub fn contact(mut self, contact: Contact) -> Self {
        self.info.contact = Some(contact);
        self
    }

    /// The API's license.
    #[must_use]
    pub fn license(mut self, license: License) -> Self {
        self.info.license = Some(license);
        self
    }

    /// Adds a server the API is reachable at.
    #[must_use]
    pub fn server(mut self, url: impl Into<String>, description: Option<&str>) -> Self {
        self.servers.push(Server {
            url: url.into(),
            description: description.map(str::to_owned),
        });
        self
    }

    /// Links external documentation.
    #[must_use]
    pub fn external_docs(mut self, url: impl Into<String>, description: Option<&str>) -> Self {
        self.external_docs = Some(ExternalDocs {
            url: url.into(),
            description: description.map(str::to_owned),
        });
        self
    }

    /// Serves, besides the whole document, one of the operations under
    /// `prefix` only, at `/openapi/<name>.json` (e.g. `("v1", "/api/v1")`),
    /// each selectable in the docs page.
    #[must_use]
    pub fn document(mut self, name: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.documents.push((name.into(), prefix.into()));
        self
    }

    /// Where Swagger UI is served (default `/docs`; `None`: not served).
    #[must_use]
    pub fn docs_url(mut self, url: Option<&str>) -> Self {
        self.docs_url = url.map(str::to_owned);
        self
    }

    /// Where the reading-oriented reference is served (default `/redoc`;
    /// `None`: not served).
    #[must_use]
    pub fn redoc_url(mut self, url: Option<&str>) -> Self {
        self.redoc_url = url.map(str::to_owned);
        self
    }

    /// Describes a tag in the document.
    #[must_use]
    pub fn tag(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.tags.push(Tag {
            name: name.into(),
            description: Some(description.into()),
        });
        self
    }

    /// Where the OpenAPI document is served (`None`: not served).
    #[must_use]
    pub fn openapi_url(mut self, url: Option<&str>) -> Self {
        self.openapi_url = url.map(str::to_owned);
        self
    }

    /// Where the AsyncAPI 3.0 document is served (default `/asyncapi.json`;
    /// `None`: not served). It describes the app's WebSocket routes and the
    /// bus topics it [`publishes`](Self::publishes) or
    /// [`subscribes`](Self::subscribes) to, and is served only when there is
    /// at least one of those.
    #[must_use]
    pub fn asyncapi_url(mut self, url: Option<&str>) -> Self {
        self.asyncapi_url = url.map(str::to_owned);
        self
    }

    /// Adds a server to the AsyncAPI document: a WebSocket endpoint
    /// (protocol `ws` or `wss`; the WebSocket routes' channels list these)
    /// or the message broker (`nats`, `redis`, …; the bus topics' channels
    /// list these). Without a `ws`/`wss` server, one is derived from each
    /// absolute `http(s)` URL given to [`server`](Self::server).
    ///
    /// ```
    /// use ferrapi::prelude::*;
    ///
    /// let app = App::new()
    ///     .asyncapi_server("production", "api.example.com", "wss", Some("Clients connect here"))
    ///     .asyncapi_server("bus", "nats.internal:4222", "nats", None);
    /// ```
    #[must_use]
    pub fn asyncapi_server(
        mut self,
        name: impl Into<String>,
        host: impl Into<String>,
        protocol: impl Into<String>,
        description: Option<&str>,
    ) -> Self {
        self.asyncapi_servers.push((
            name.into(),
            AsyncServer {
                host: host.into(),
                protocol: protocol.into(),
                pathname: None,
                description: description.map(str::to_owned),
            },
        ));
        self
    }

    /// Documents that the app publishes events of type `E` on bus topic
    /// `topic` (a `send` operation in the AsyncAPI document; the topic's
    /// channel carries `E`'s schema). With `ferrapi-storage`'s typed topics:
    /// `.publishes::<UserEvent>(USER_EVENTS.name(), "…")`.
    ///
    /// ```
    /// use ferrapi::prelude::*;
    ///
    /// /// A user was created or deleted.
    /// #[derive(Serialize, JsonSchema)]
    /// #[serde(tag = "type")]
    /// enum UserEvent {
    ///     Created { id: i64 },
    ///     Deleted { id: i64 },
    /// }
    ///
    /// let built = App::new()
    ///     .publishes::<UserEvent>("users", "User events, one per change.")
    ///     .build()
    ///     .unwrap();
    /// let doc = built.asyncapi();
    /// assert_eq!(doc.channels["users"].address, "users");
    /// assert!(doc.components.messages.contains_key("UserEvent"));
    /// ```
    #[must_use]
    pub fn publishes<E: schemars::JsonSchema + 'static>(
        self,
        topic: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.topic_message(
            topic.into(),
            description.into(),
            MessageType::of::<E>(),
            true,
        )
    }

    /// Documents that the app subscribes to events of type `E` on bus topic
    /// `topic` (a `receive` operation in the AsyncAPI document).
    #[must_use]
    pub fn subscribes<E: schemars::JsonSchema + 'static>(
        self,
        topic: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.topic_message(
            topic.into(),
            description.into(),
            MessageType::of::<E>(),
            false,
        )
    }

    fn topic_message(
        mut self,
        name: String,
        description: String,
        ty: MessageType,
        publishes: bool,
    ) -> Self {
        let index = match self.topics.iter().position(|t| t.name == name) {
            Some(i) => i,
            None => {
                self.topics.push(TopicChannel {
                    name,
                    description: Some(description),
                    ..Default::default()
                });
                self.topics.len() - 1
            }
        };
        let topic = &mut self.topics[index];
        let list = if publishes {
            &mut topic.publishes
        } else {
            &mut topic.subscribes
        };
        crate::routing::push_new(list, ty);
        self
    }

    /// Adds a route.
    #[must_use]
    pub fn route(mut self, route: impl IntoRoute) -> Self {
        self.routes.push(route.into_route());
        self
    }

    /// Mounts a whole application under `prefix` (FastAPI's and Starlette's
    /// `app.mount("/v2", other_app)`): every request whose path is `prefix`
    /// or starts with `prefix/` is handed to `app` with the prefix removed,
    /// through this app's middleware and then `app`'s own. `app` keeps its
    /// routes, state, exception handlers, dependencies and middleware, and
    /// serves its own document and docs pages under the prefix
    /// (`/v2/openapi.json`, `/v2/docs`), its document listing `prefix` as its
    /// server; its routes stay out of this app's document, as in FastAPI.
    /// Its startup and shutdown hooks run with this app's (after its
    /// startup hooks, before its shutdown hooks); its [`Draining`](crate::Draining)
    /// is this app's.
    ///
    /// `prefix` starts with `/` and does not end with one; a route of this
    /// app under the prefix, or a mistake in `app`, fails [`build`](Self::build).
    ///
    /// ```
    /// use ferrapi::prelude::*;
    /// use ferrapi::testing::TestClient;
    ///
    /// #[get("/items")]
    /// async fn items_v1() -> &'static str { "v1" }
    ///
    /// #[get("/items")]
    /// async fn items_v2() -> &'static str { "v2" }
    ///
    /// let v2 = App::new().title("API v2").route(items_v2);
    /// let app = App::new().route(items_v1).mount("/v2", v2);
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let client = TestClient::new(app);
    /// assert_eq!(client.get("/items").send().await.text(), "v1");
    /// assert_eq!(client.get("/v2/items").send().await.text(), "v2");
    /// let doc: serde_json::Value = client.get("/v2/openapi.json").send().await.json();
    /// assert_eq!(doc["info"]["title"], "API v2");
    /// assert_eq!(doc["servers"][0]["url"], "/v2");
    /// assert_eq!(client.get("/v2/docs").send().await.status(), 200);
    /// # });
    /// ```
    #[must_use]
    pub fn mount(mut self, prefix: impl Into<String>, app: App) -> Self {
        self.mounts.push((prefix.into(), app));
        self
    }

    /// Adds a router's routes (FastAPI's `include_router`).
    #[must_use]
    pub fn include(mut self, router: Router) -> Self {
        self.routes.extend(router.into_routes());
        self
    }

    /// Registers application state, read by handlers with
    /// [`State<T>`](crate::State). One value per type; a second call for the
    /// same type replaces the first.
    /// A route reading a type that no call registered (nor
    /// [`on_startup_state`](Self::on_startup_state) promised) fails
    /// [`build`](Self::build), naming the route and the type
    /// ([`RouteErrorKind::MissingState`]).
    #[must_use]
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.0.insert(TypeId::of::<T>(), Box::new(value));
        self
    }

    /// The largest request body accepted by body extractors (default 1 MiB);
    /// larger bodies are answered 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sizes the process-wide pool that [`blocking`](fn@crate::blocking) runs
    /// closures on (default: the number of CPU cores, or
    /// `FERRAPI_BLOCKING_THREADS`). The pool is shared by every app of the
    /// process, so this takes effect at once, for all of them.
    #[must_use]
    pub fn blocking_threads(self, threads: usize) -> Self {
        crate::blocking::BlockingPool::global().resize(threads);
        self
    }

    /// Answers errors of type `E` with `handler` (FastAPI's
    /// `exception_handler`). Handlers are tried in registration order; a
    /// handler for [`HttpError`] or [`ValidationErrors`](crate::ValidationErrors)
    /// replaces the default answer to those.
    ///
    /// ```
    /// use ferrapi::prelude::*;
    /// use ferrapi::http::StatusCode;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("out of stock")]
    /// struct OutOfStock;
    ///
    /// let app = App::new().exception_handler(|_: &OutOfStock| {
    ///     (StatusCode::CONFLICT, "sold out").into_response()
    /// });
    /// # use ferrapi::axum::response::IntoResponse;
    /// ```
    #[must_use]
    pub fn exception_handler<E, F>(mut self, handler: F) -> Self
    where
        E: std::error::Error + 'static,
        F: Fn(&E) -> Response + Send + Sync + 'static,
    {
        self.exception_handlers.add::<E, F>(handler);
        self
    }

    /// Wraps the application in a tower layer (any tower or tower-http layer
    /// works). Layers added later wrap those added earlier.
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router| router.layer(layer)));
        self
    }

    /// The fused outer layers of a [`Stack`](crate::middleware::Stack), at
    /// this point of the layer order. They stay the outermost layer, served
    /// without axum's router in front, unless a layer is added after them.
    pub(crate) fn fused_layer(mut self, fused: crate::middleware::stack::Fused) -> Self {
        if let Some((at, earlier)) = self.fused.take() {
            self.layers
                .insert(at, Box::new(move |router| router.layer(earlier)));
        }
        self.fused = Some((
            self.layers.len(),
            crate::middleware::stack::FusedLayer::new(fused),
        ));
        self
    }

    /// Installs a middleware [`Stack`](crate::middleware::Stack) (request id,
    /// timing, security headers, CORS, client IP, compression, JWT, rate
    /// limits) in its documented order, as one layer.
    #[must_use]
    pub fn middleware(self, stack: crate::middleware::Stack) -> Self {
        stack.apply(self)
    }

    /// What the server prints to the console: a startup line (address and
    /// docs URL, on stderr) and one access line per request (on stdout), by
    /// default only when no `tracing` subscriber is installed, as uvicorn
    /// prints them. The `FERRAPI_CONSOLE_LOG` environment variable (`auto`,
    /// `on`, `startup`, `off`) overrides this. See [`console`](crate::console).
    ///
    /// ```
    /// use ferrapi::console::ConsoleLog;
    /// use ferrapi::prelude::*;
    ///
    /// // Quiet: a log pipeline of your own reads the `tracing` events.
    /// let app = App::new().console_log(ConsoleLog::Off);
    /// ```
    #[must_use]
    pub fn console_log(mut self, console_log: crate::console::ConsoleLog) -> Self {
        self.console_log = Some(console_log);
        self
    }

    /// Runs the startup hooks of this app and then of its mounted apps,
    /// registering the states they make in the app that declared them; the
    /// lifespans to stop, in reverse order, once serving is over.
    pub(crate) fn start_lifespans(&mut self) -> futures_util::future::BoxFuture<'_, Started> {
        Box::pin(async move {
            let mut lifespan = std::mem::take(&mut self.lifespan);
            let made = match lifespan.start().await {
                Ok(made) => made,
                Err(e) => return Err((e, Vec::new())),
            };
            for (id, value) in made {
                self.state.0.insert(id, value);
            }
            let mut started = vec![lifespan];
            for (_, mounted) in &mut self.mounts {
                match mounted.start_lifespans().await {
                    Ok(more) => started.extend(more),
                    Err((e, more)) => {
                        started.extend(more);
                        return Err((e, started));
                    }
                }
            }
            Ok(started)
        })
    }

    /// Checks every route and builds the router and the OpenAPI document.
    /// Every mistake found is reported, each naming its route.
    pub fn build(self) -> Result<BuiltApp, BuildError> {
        build::build(self)
    }

    /// The axum router of this application (a tower service), for serving
    /// it with your own server or nesting it into an axum app.
    ///
    /// # Errors
    /// The route declarations' mistakes, as [`build`](Self::build).
    pub fn into_router(self) -> Result<axum::Router, BuildError> {
        self.build().map(|b| b.router)
    }
}

/// A checked application: its router, its OpenAPI document and its
/// AsyncAPI document.
#[derive(Debug, Clone)]
pub struct BuiltApp {
    pub(crate) router: axum::Router,
    /// What the server calls: a [`Stack`](crate::middleware::Stack)'s fused
    /// layers, if any, over the dispatcher or, when tower layers wrap the
    /// routes, over the router of those.
    pub(crate) served: crate::server::Served,
    openapi: Arc<OpenApi>,
    asyncapi: Arc<AsyncApi>,
}

impl BuiltApp {
    /// The OpenAPI document.
    pub fn openapi(&self) -> &OpenApi {
        &self.openapi
    }
    /// The AsyncAPI 3.0 document: the WebSocket routes and bus topics
    /// (without channels when the app has none).
    pub fn asyncapi(&self) -> &AsyncApi {
        &self.asyncapi
    }
    /// The router (a tower service).
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }
}

/// The lifespans of the apps started, or the error and those started before it.
pub(crate) type Started =
    Result<Vec<crate::lifespan::Lifespan>, (crate::ServeError, Vec<crate::lifespan::Lifespan>)>;

/// One mistake in a route declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// The route: `POST /api/v1/users (create_user, src/users.rs:12)`.
    pub route: String,
    /// What is wrong.
    pub problem: String,
    /// The kind of mistake, for code that tells them apart.
    pub kind: RouteErrorKind,
}

/// The kind of a [`RouteError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteErrorKind {
    /// A mistake in the declaration itself: path, method, parameters,
    /// clashes, documentation.
    Declaration,
    /// The route reads application state (`State<T>`, `AppState<T>`) that
    /// no [`App::state`] call registered.
    ///
    /// ```
    /// use ferrapi::prelude::*;
    /// use ferrapi::RouteErrorKind;
    ///
    /// #[derive(Clone)]
    /// struct Db;
    ///
    /// #[get("/users")]
    /// async fn users(State(_db): State<Db>) -> &'static str { "[]" }
    ///
    /// let err = App::new().route(users).build().unwrap_err();
    /// assert!(matches!(
    ///     err.errors[0].kind,
    ///     RouteErrorKind::MissingState { type_name } if type_name.ends_with("::Db")
    /// ));
    /// assert!(err.to_string().contains("GET /users"));
    /// ```
    MissingState {
        /// The state's type name.
        type_name: &'static str,
    },
}

/// Every mistake found in an application's route declarations.
#[derive(Debug, Clone, thiserror::Error)]
pub struct BuildError {
    /// The mistakes, in declaration order.
    pub errors: Vec<RouteError>,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in the route declarations:",
            self.errors.len()
        )?;
        for e in &self.errors {
            writeln!(f, "  - {}: {}", e.route, e.problem)?;
        }
        Ok(())
    }
}
