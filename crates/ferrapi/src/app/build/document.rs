//! The build's document phase: each route's OpenAPI operation (described by
//! its dependencies, extractors and response types), its place in the
//! OpenAPI document or, for a WebSocket route, in the AsyncAPI document;
//! the bus topics; and the documents' shared parts (schemas, security
//! schemes, FastAPI's validation error components).

use super::Problems;
use super::check::Declared;
use crate::app::{RouteError, RouteErrorKind};
use crate::openapi::asyncapi::{
    AsyncApi, AsyncApiBuilder, AsyncInfo, AsyncServer, MessageType, TopicChannel, WebSocketChannel,
};
use crate::openapi::{
    ExternalDocs, Info, OpenApi, Operation, OperationBuilder, SchemaRegistry, Server, Tag,
    WebSocketOperation,
};
use crate::routing::{Route, RouteDependency};
use http::Method;
use std::collections::HashMap;
use std::sync::Arc;

/// The documents under construction.
pub(super) struct Documents {
    doc: OpenApi,
    asyncapi: AsyncApiBuilder,
    /// The schemas of the operations described so far.
    pub(super) registry: SchemaRegistry,
    security_schemes: serde_json::Map<String, serde_json::Value>,
    /// The route of each operation id taken.
    seen_ops: HashMap<String, String>,
}

impl Documents {
    /// The documents of an app with this metadata, mounted at `root_path`.
    pub(super) fn new(
        info: Info,
        tags: Vec<Tag>,
        servers: Vec<Server>,
        external_docs: Option<ExternalDocs>,
        asyncapi_servers: Vec<(String, AsyncServer)>,
        root_path: &str,
    ) -> Self {
        let registry = SchemaRegistry::new();
        let mut asyncapi = AsyncApiBuilder::new(async_info(&info, &tags, &external_docs));
        for (name, server) in asyncapi_servers {
            asyncapi.server(name, server);
        }
        if !asyncapi.servers().values().any(AsyncServer::is_websocket) {
            for (name, server) in websocket_servers(&servers) {
                asyncapi.server(name, server);
            }
        }
        let mut doc = OpenApi::new(info);
        doc.tags = tags;
        doc.servers = servers;
        // A mounted app's document names where it is mounted, as FastAPI's
        // does with its `root_path`.
        if doc.servers.is_empty() && !root_path.is_empty() {
            doc.servers.push(Server {
                url: root_path.to_owned(),
                description: None,
            });
        }
        doc.external_docs = external_docs;
        Self {
            doc,
            asyncapi,
            registry,
            security_schemes: serde_json::Map::new(),
            seen_ops: HashMap::new(),
        }
    }

    /// The app's title.
    pub(super) fn title(&self) -> String {
        self.doc.info.title.clone()
    }

    /// Whether the AsyncAPI document has channels (else it is not served).
    pub(super) fn has_channels(&self) -> bool {
        self.asyncapi.has_channels()
    }

    /// Completes a described operation: the security schemes it declared
    /// (one definition per name in the document), its tags, summary,
    /// description and operation id.
    pub(super) fn operation(
        &mut self,
        (mut operation, schemes): (Operation, serde_json::Map<String, serde_json::Value>),
        route: &Route,
        full_path: &str,
        problems: &mut Problems<'_>,
    ) -> Operation {
        for (name, scheme) in schemes {
            match self.security_schemes.get(&name) {
                Some(existing) if *existing != scheme => problems.push(format!(
                    "security scheme `{name}` is declared twice with different definitions"
                )),
                _ => {
                    self.security_schemes.insert(name, scheme);
                }
            }
        }
        operation.tags = dedup(route.tags.clone());
        // A closure has no name: FastAPI's scheme (method and path) stands in.
        let name = if is_identifier(&route.name) {
            route.name.clone()
        } else {
            generated_name(&route.method, full_path)
        };
        let (summary, description) = match (&route.summary, &route.description) {
            (None, d) => (Some(title_case(&name)), d.clone()),
            (s, d) => (s.clone(), d.clone()),
        };
        operation.summary = summary;
        operation.description = description;
        operation.deprecated = route.deprecated;
        operation.operation_id = route.operation_id.clone().unwrap_or(name);
        operation
    }

    /// Adds the route's operation to the OpenAPI document or, a WebSocket
    /// route (its handshake answers 101, no OpenAPI operation), to
    /// `x-websockets` and the AsyncAPI document; whether it is one.
    pub(super) fn add(
        &mut self,
        operation: Operation,
        route: &Route,
        full_path: &str,
        problems: &mut Problems<'_>,
    ) -> bool {
        #[cfg(feature = "ws")]
        let websocket = crate::ws::is_websocket(&operation);
        #[cfg(not(feature = "ws"))]
        let websocket = false;
        let declares_messages = !(route.ws_receives.is_empty() && route.ws_sends.is_empty());
        if declares_messages && !websocket {
            problems.push(
                "declares WebSocket messages (`receives`/`sends`) but is no WebSocket route: its handler takes no `WebSocketUpgrade`".into(),
            );
        }
        if !route.include_in_schema {
            return websocket;
        }
        // WebSocket routes share the operation ids' namespace: the id
        // also names the route's AsyncAPI channel.
        if let Some(other) = self.seen_ops.get(&operation.operation_id) {
            problems.push(format!(
                "operation id `{}` is already used by {other}; set `operation_id`",
                operation.operation_id
            ));
        } else {
            self.seen_ops
                .insert(operation.operation_id.clone(), problems.route().to_owned());
        }
        if websocket {
            self.websocket(operation, route, full_path, problems);
        } else {
            self.doc
                .paths
                .entry(full_path.to_owned())
                .or_default()
                .insert(route.method.as_str().to_ascii_lowercase(), operation);
        }
        websocket
    }

    /// A WebSocket route's channel and `x-websockets` entry.
    fn websocket(
        &mut self,
        operation: Operation,
        route: &Route,
        full_path: &str,
        problems: &mut Problems<'_>,
    ) {
        let registry = &mut self.registry;
        let mut schemas = |types: &[MessageType]| -> Vec<serde_json::Value> {
            types.iter().map(|t| t.schema(registry)).collect()
        };
        let receives = schemas(&route.ws_receives);
        let sends = schemas(&route.ws_sends);
        let channel = WebSocketChannel {
            id: operation.operation_id.clone(),
            address: full_path.to_owned(),
            summary: operation.summary.clone(),
            description: operation.description.clone(),
            tags: operation.tags.clone(),
            parameters: operation.parameters.clone(),
            receives: route.ws_receives.clone(),
            sends: route.ws_sends.clone(),
        };
        if let Err(e) = self.asyncapi.websocket(channel) {
            problems.push(e.to_string());
        }
        if self.doc.websockets.contains_key(full_path) {
            problems.push(format!(
                "another WebSocket route is declared on `{full_path}`"
            ));
        }
        self.doc.websockets.insert(
            full_path.to_owned(),
            WebSocketOperation {
                // The handshake's 101 (and 422) are no responses a
                // client reads: the socket opens, or closes with 1008.
                operation: Operation {
                    responses: Default::default(),
                    ..operation
                },
                receives,
                sends,
            },
        );
    }

    /// Adds the bus topics to the AsyncAPI document.
    pub(super) fn topics(&mut self, topics: Vec<TopicChannel>, errors: &mut Vec<RouteError>) {
        for topic in topics {
            let name = topic.name.clone();
            if let Err(e) = self.asyncapi.topic(topic) {
                errors.push(RouteError {
                    route: format!("bus topic `{name}`"),
                    problem: e.to_string(),
                    kind: RouteErrorKind::Declaration,
                });
            }
        }
    }

    /// The finished documents: the schemas, security schemes and, when an
    /// operation answers 422, FastAPI's validation error components.
    pub(super) fn finish(self) -> (Arc<OpenApi>, Arc<AsyncApi>) {
        let Self {
            mut doc,
            asyncapi,
            registry,
            security_schemes,
            seen_ops: _,
        } = self;
        let mut components = registry.into_components();
        if doc
            .paths
            .values()
            .flat_map(|item| item.values())
            .any(|op| op.responses.contains_key("422"))
        {
            add_validation_components(&mut components);
        }
        doc.components.schemas = components;
        doc.components.security_schemes = security_schemes;
        let asyncapi = Arc::new(asyncapi.finish(&doc.components.schemas));
        (Arc::new(doc), asyncapi)
    }
}

/// Describes a route's operation: its dependencies' inputs, then its
/// handler's extractors and response type.
pub(super) fn describe<'r>(
    registry: &'r mut SchemaRegistry,
    declared: &Declared,
    route_dependencies: &[RouteDependency],
) -> OperationBuilder<'r> {
    let mut op = OperationBuilder::new(registry, declared.vars.clone());
    for dependency in route_dependencies {
        dependency.describe(&mut op);
    }
    (declared.route.describe)(&mut op, declared.route.status);
    op
}

/// The described operation with the route's declared responses, and the
/// security schemes it declared.
pub(super) fn finish(
    mut op: OperationBuilder<'_>,
    route: &Route,
) -> (Operation, serde_json::Map<String, serde_json::Value>) {
    for (status, description) in &route.responses {
        op.response(*status, description, None);
    }
    op.finish_with_schemes()
}

/// `FastAPI`'s default summary: `create_user` → `Create User`.
fn title_case(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `POST /api/v1/users/{user_id}` → `post_api_v1_users_user_id`.
fn generated_name(method: &Method, path: &str) -> String {
    let mut out = method.as_str().to_ascii_lowercase();
    for part in path
        .split(|c: char| !c.is_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        out.push('_');
        out.push_str(part);
    }
    out
}

/// The AsyncAPI document's `info`: the app's, as in the OpenAPI document.
fn async_info(info: &Info, tags: &[Tag], external_docs: &Option<ExternalDocs>) -> AsyncInfo {
    let mut info = info.clone();
    if let Some(license) = &mut info.license {
        license.identifier = None;
    }
    AsyncInfo {
        info,
        tags: tags.to_vec(),
        external_docs: external_docs.clone(),
    }
}

/// The WebSocket servers of the app's absolute `http(s)` server URLs:
/// `https://api.example.com/v1` → host `api.example.com`, `wss`, pathname `/v1`.
fn websocket_servers(servers: &[Server]) -> Vec<(String, AsyncServer)> {
    let mut out = Vec::new();
    for server in servers {
        let (protocol, rest) = if let Some(rest) = server.url.strip_prefix("https://") {
            ("wss", rest)
        } else if let Some(rest) = server.url.strip_prefix("http://") {
            ("ws", rest)
        } else {
            continue;
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if host.is_empty() {
            continue;
        }
        let path = path.trim_end_matches('/');
        let name = if out.is_empty() {
            "ws".to_owned()
        } else {
            format!("ws_{}", out.len() + 1)
        };
        out.push((
            name,
            AsyncServer {
                host: host.to_owned(),
                protocol: protocol.into(),
                pathname: (!path.is_empty()).then(|| path.to_owned()),
                description: server.description.clone(),
            },
        ));
    }
    out
}

fn dedup(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// FastAPI's `HTTPValidationError` and `ValidationError` component schemas.
fn add_validation_components(components: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::json;
    components.insert(
        "HTTPValidationError".into(),
        json!({
            "properties": {
                "detail": {
                    "items": {"$ref": "#/components/schemas/ValidationError"},
                    "type": "array",
                    "title": "Detail"
                }
            },
            "type": "object",
            "title": "HTTPValidationError"
        }),
    );
    components.insert(
        "ValidationError".into(),
        json!({
            "properties": {
                "loc": {
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "type": "array",
                    "title": "Location"
                },
                "msg": {"type": "string", "title": "Message"},
                "type": {"type": "string", "title": "Error Type"},
                "input": {"title": "Input"},
                "ctx": {"type": "object", "title": "Context"}
            },
            "type": "object",
            "required": ["loc", "msg", "type"],
            "title": "ValidationError"
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_for_closures() {
        assert!(is_identifier("create_user"));
        assert!(!is_identifier("{{closure}}"));
        assert_eq!(
            generated_name(&Method::POST, "/api/v1/users/{user_id}"),
            "post_api_v1_users_user_id"
        );
    }

    #[test]
    fn summaries_from_names() {
        assert_eq!(title_case("create_user"), "Create User");
        assert_eq!(title_case("live"), "Live");
    }
}
