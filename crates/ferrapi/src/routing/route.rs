//! [`Route`]: one path operation, declared once.

use super::handler::{BoxedHandler, Handler};
use crate::openapi::OperationBuilder;
use crate::openapi::asyncapi::MessageType;
use http::{Method, StatusCode};
use std::fmt;
use std::panic::Location;

/// One path operation: method, path template, handler and what the document
/// says of it. Built by the route attribute macros, or by hand:
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::http::StatusCode;
///
/// async fn health() -> Json<serde_json::Value> {
///     Json(serde_json::json!({"status": "ok"}))
/// }
///
/// let route = Route::get("/health/live", health)
///     .tags(["health"])
///     .summary("Liveness")
///     .response(StatusCode::SERVICE_UNAVAILABLE, "Not live");
/// let app = App::new().route(route);
/// ```
pub struct Route {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) prefixes: Vec<String>,
    pub(crate) name: String,
    pub(crate) handler: BoxedHandler,
    pub(crate) describe: fn(&mut OperationBuilder<'_>, StatusCode),
    pub(crate) status: StatusCode,
    pub(crate) tags: Vec<String>,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) operation_id: Option<String>,
    pub(crate) deprecated: bool,
    pub(crate) include_in_schema: bool,
    pub(crate) responses: Vec<(StatusCode, String)>,
    pub(crate) body_limit: Option<usize>,
    pub(crate) dependencies: Vec<super::RouteDependency>,
    /// WebSocket routes: the message types the client sends.
    pub(crate) ws_receives: Vec<MessageType>,
    /// WebSocket routes: the message types the server sends.
    pub(crate) ws_sends: Vec<MessageType>,
    pub(crate) declared_at: &'static Location<'static>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("name", &self.name)
            .field("status", &self.status)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// Adds `ty` to `list` unless it is there.
pub(crate) fn push_new(list: &mut Vec<MessageType>, ty: MessageType) {
    if !list.contains(&ty) {
        list.push(ty);
    }
}

/// The last segment of a Rust path (`crate::users::create_user` → `create_user`).
fn short_name(type_name: &str) -> String {
    let base = type_name.split('<').next().unwrap_or(type_name);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

macro_rules! method_constructors {
    ($($(#[$doc:meta])* $fn:ident => $method:ident;)*) => {$(
        $(#[$doc])*
        #[track_caller]
        pub fn $fn<H, T>(path: impl Into<String>, handler: H) -> Self
        where
            H: Handler<T>,
            T: 'static,
        {
            Self::new(Method::$method, path, handler)
        }
    )*};
}

impl Route {
    /// A route for `method` on `path` served by `handler` (an `async fn`
    /// whose parameters are extractors and whose return type is a
    /// [`Responder`](crate::Responder)).
    #[track_caller]
    pub fn new<H, T>(method: Method, path: impl Into<String>, handler: H) -> Self
    where
        H: Handler<T>,
        T: 'static,
    {
        let name = short_name(std::any::type_name::<H>());
        Self::from_parts(
            method,
            path.into(),
            name,
            handler::into_boxed(handler),
            H::describe,
            Location::caller(),
        )
    }

    method_constructors! {
        /// A `GET` route.
        get => GET;
        /// A `POST` route.
        post => POST;
        /// A `PUT` route.
        put => PUT;
        /// A `PATCH` route.
        patch => PATCH;
        /// A `DELETE` route.
        delete => DELETE;
        /// A `HEAD` route.
        head => HEAD;
        /// An `OPTIONS` route.
        options => OPTIONS;
        /// A `TRACE` route.
        trace => TRACE;
    }

    pub(crate) fn from_parts(
        method: Method,
        path: String,
        name: String,
        handler: BoxedHandler,
        describe: fn(&mut OperationBuilder<'_>, StatusCode),
        declared_at: &'static Location<'static>,
    ) -> Self {
        Self {
            method,
            path,
            prefixes: Vec::new(),
            name,
            handler,
            describe,
            status: StatusCode::OK,
            tags: Vec::new(),
            summary: None,
            description: None,
            operation_id: None,
            deprecated: false,
            include_in_schema: true,
            responses: Vec::new(),
            body_limit: None,
            dependencies: Vec::new(),
            ws_receives: Vec::new(),
            ws_sends: Vec::new(),
            declared_at,
        }
    }

    /// The success status (200 unless set): used by responses that take the
    /// route's status ([`Json`](crate::Json), [`Text`](crate::Text), …) and
    /// by the document.
    #[must_use]
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds tags.
    #[must_use]
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The one-line summary.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// The Markdown description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The operation id (default: the handler's name).
    #[must_use]
    pub fn operation_id(mut self, id: impl Into<String>) -> Self {
        self.operation_id = Some(id.into());
        self
    }

    /// The handler's name, used for the default operation id and in messages.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Marks the operation deprecated.
    #[must_use]
    pub fn deprecated(mut self, deprecated: bool) -> Self {
        self.deprecated = deprecated;
        self
    }

    /// Leaves the route out of the OpenAPI document.
    #[must_use]
    pub fn include_in_schema(mut self, include: bool) -> Self {
        self.include_in_schema = include;
        self
    }

    /// Documents another response this route may give (401, 404, 409, …).
    #[must_use]
    pub fn response(mut self, status: StatusCode, description: impl Into<String>) -> Self {
        self.responses.push((status, description.into()));
        self
    }

    /// Runs dependency `T` before the route's parameters, without taking it
    /// as one (FastAPI's `dependencies=[Depends(…)]` on a path operation).
    #[must_use]
    pub fn dependency<T: crate::extract::Dependency>(mut self) -> Self {
        self.dependencies.push(super::RouteDependency::of::<T>());
        self
    }

    /// Documents a message type that the client of this WebSocket route
    /// sends (the server receives it): it appears in the OpenAPI
    /// document's `x-websockets` and in the AsyncAPI document (a `receive`
    /// operation). Call once per type; the route attribute's
    /// `receives = [T, …]` does the same. The application build reports it
    /// on a route that is not a WebSocket route.
    ///
    /// ```
    /// # #[cfg(feature = "ws")] {
    /// use ferrapi::prelude::*;
    /// use ferrapi::ws::{WebSocketResponse, WebSocketUpgrade};
    ///
    /// #[derive(Deserialize, JsonSchema, Validate)]
    /// struct Ping { seq: u32 }
    /// #[derive(Serialize, JsonSchema)]
    /// struct Pong { seq: u32 }
    ///
    /// async fn echo(ws: WebSocketUpgrade) -> WebSocketResponse {
    ///     ws.on_upgrade(|mut socket| async move {
    ///         while let Ok(ping) = socket.recv_json::<Ping>().await {
    ///             let _ = socket.send_json(&Pong { seq: ping.seq }).await;
    ///         }
    ///     })
    /// }
    ///
    /// let route = Route::get("/ws/echo", echo)
    ///     .websocket_receives::<Ping>()
    ///     .websocket_sends::<Pong>();
    /// let built = App::new().route(route).build().unwrap();
    /// assert_eq!(built.asyncapi().operations["receive_echo"].messages.len(), 1);
    /// # }
    /// ```
    #[must_use]
    pub fn websocket_receives<T: schemars::JsonSchema + 'static>(mut self) -> Self {
        push_new(&mut self.ws_receives, MessageType::of::<T>());
        self
    }

    /// Documents a message type that this WebSocket route's server sends to
    /// the client (see [`websocket_receives`](Self::websocket_receives));
    /// the route attribute's `sends = [T, …]` does the same.
    #[must_use]
    pub fn websocket_sends<T: schemars::JsonSchema + 'static>(mut self) -> Self {
        push_new(&mut self.ws_sends, MessageType::of::<T>());
        self
    }

    /// The largest body this route accepts (default: the app's limit).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// Where the route was declared (`file:line`).
    #[must_use]
    pub fn declared_at(mut self, location: &'static Location<'static>) -> Self {
        self.declared_at = location;
        self
    }

    /// How errors name this route: `POST /api/v1/users (create_user, src/users.rs:12)`.
    pub(crate) fn label(&self, full_path: &str) -> String {
        format!(
            "{} {} ({}, {}:{})",
            self.method,
            full_path,
            self.name,
            self.declared_at.file(),
            self.declared_at.line()
        )
    }
}

use super::handler;

#[cfg(test)]
mod tests {
    #[test]
    fn short_names() {
        assert_eq!(
            super::short_name("my_crate::users::create_user"),
            "create_user"
        );
        assert_eq!(super::short_name("create_user"), "create_user");
        assert_eq!(super::short_name("a::b<c::d>"), "b");
    }
}
