//! The OpenAPI 3.1 document model (the subset ferrapi emits), serialized with serde.

use serde::Serialize;
use serde_json::Value;

/// Insertion-ordered map: the document keeps declaration order, as FastAPI's does.
pub type Map<K, V> = indexmap::IndexMap<K, V>;

/// The root of an OpenAPI 3.1 document.
#[derive(Debug, Clone, Serialize)]
pub struct OpenApi {
    /// Always `3.1.0`.
    pub openapi: String,
    /// Title, version, description.
    pub info: Info,
    /// Operations by path template, then by method.
    pub paths: Map<String, PathItem>,
    /// Reusable schemas and security schemes.
    pub components: Components,
    /// Tag descriptions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Servers the API is reachable at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// External documentation.
    #[serde(rename = "externalDocs", skip_serializing_if = "Option::is_none")]
    pub external_docs: Option<ExternalDocs>,
    /// The WebSocket routes, by path (the `x-websockets` extension): they
    /// are no OpenAPI operations, so they are listed here, and described in
    /// full by the AsyncAPI document.
    #[serde(rename = "x-websockets", skip_serializing_if = "Map::is_empty")]
    pub websockets: Map<String, WebSocketOperation>,
}

/// A WebSocket route in the OpenAPI document's `x-websockets` extension:
/// what an operation says of its handshake (parameters, security), and the
/// schemas of the messages exchanged once it is open.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebSocketOperation {
    /// The handshake, as an operation without responses: tags, summary,
    /// description, operation id (also the AsyncAPI channel's id),
    /// parameters, deprecation, security.
    #[serde(flatten)]
    pub operation: Operation,
    /// Messages the client sends (the server receives), by schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receives: Vec<Value>,
    /// Messages the server sends to the client, by schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<Value>,
}

/// A server the API is reachable at.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// URL (absolute, or relative to the document).
    pub url: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// External documentation.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalDocs {
    /// URL.
    pub url: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Contact information.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Contact {
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// License information.
#[derive(Debug, Clone, Serialize)]
pub struct License {
    /// Name (`MIT`).
    pub name: String,
    /// SPDX identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The document's `info`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Info {
    /// API title.
    pub title: String,
    /// API version.
    pub version: String,
    /// Markdown description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Terms of service URL.
    #[serde(rename = "termsOfService", skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// Contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// License.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
}

/// A tag with its description.
#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    /// Tag name.
    pub name: String,
    /// Markdown description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Operations of one path, keyed by lower-case method.
pub type PathItem = Map<String, Operation>;

/// `components`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Components {
    /// Schemas referenced with `$ref: #/components/schemas/Name`.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub schemas: serde_json::Map<String, Value>,
    /// Security schemes by name.
    #[serde(
        rename = "securitySchemes",
        skip_serializing_if = "serde_json::Map::is_empty"
    )]
    pub security_schemes: serde_json::Map<String, Value>,
}

/// One operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Operation {
    /// Tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// One-line summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Markdown description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unique operation id.
    #[serde(rename = "operationId")]
    pub operation_id: String,
    /// Parameters (path, query, header, cookie).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// Request body.
    #[serde(rename = "requestBody", skip_serializing_if = "Option::is_none")]
    pub request_body: Option<RequestBody>,
    /// Responses by status code (never empty in `paths`: an operation
    /// documents at least its success).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub responses: Map<String, Response>,
    /// Deprecated operation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// Security requirements.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<Value>,
}

/// A parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Parameter {
    /// Name as sent on the wire.
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    #[serde(rename = "in")]
    pub location: ParameterIn,
    /// Required parameter (always true for path parameters).
    pub required: bool,
    /// The parameter's schema.
    pub schema: Value,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where a parameter lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterIn {
    /// A path template variable.
    Path,
    /// The query string.
    Query,
    /// A header.
    Header,
    /// A cookie.
    Cookie,
}

/// A request body.
#[derive(Debug, Clone, Serialize)]
pub struct RequestBody {
    /// Media types and their schemas.
    pub content: Map<String, MediaType>,
    /// Required body.
    pub required: bool,
}

/// A media type entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaType {
    /// The schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

/// A response.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Response {
    /// Description (required by OpenAPI).
    pub description: String,
    /// Media types and their schemas.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub content: Map<String, MediaType>,
    /// Response headers.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub headers: serde_json::Map<String, Value>,
}

impl OpenApi {
    /// The document of the operations under `prefix` only (`/api/v1`): its
    /// paths, and only the components, security schemes and tags they use.
    ///
    /// ```
    /// use ferrapi_openapi::{Info, OpenApi, Operation};
    ///
    /// let mut doc = OpenApi::new(Info { title: "t".into(), version: "1".into(), ..Default::default() });
    /// doc.paths.entry("/api/v1/a".into()).or_default().insert("get".into(), Operation::default());
    /// doc.paths.entry("/api/v2/b".into()).or_default().insert("get".into(), Operation::default());
    /// let v1 = doc.subset("/api/v1");
    /// assert_eq!(v1.paths.keys().collect::<Vec<_>>(), ["/api/v1/a"]);
    /// ```
    pub fn subset(&self, prefix: &str) -> OpenApi {
        let under = |path: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        let paths: Map<String, PathItem> = self
            .paths
            .iter()
            .filter(|(p, _)| under(p))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        let websockets: Map<String, WebSocketOperation> = self
            .websockets
            .iter()
            .filter(|(p, _)| under(p))
            .map(|(p, w)| (p.clone(), w.clone()))
            .collect();
        // Components reachable from the kept operations, transitively.
        let mut used = std::collections::BTreeSet::new();
        let mut queue: Vec<String> = Vec::new();
        let paths_value = serde_json::to_value(&paths).unwrap_or_default();
        collect_refs(&paths_value, &mut queue);
        let websockets_value = serde_json::to_value(&websockets).unwrap_or_default();
        collect_refs(&websockets_value, &mut queue);
        while let Some(name) = queue.pop() {
            if used.insert(name.clone())
                && let Some(schema) = self.components.schemas.get(&name)
            {
                collect_refs(schema, &mut queue);
            }
        }
        let schemas = self
            .components
            .schemas
            .iter()
            .filter(|(name, _)| used.contains(*name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Security requirements and tags of the kept operations and WebSocket routes.
        let requirements = || {
            paths
                .values()
                .flat_map(|item| item.values())
                .map(|op| (&op.security, &op.tags))
                .chain(
                    websockets
                        .values()
                        .map(|w| (&w.operation.security, &w.operation.tags)),
                )
        };
        let security_schemes = self
            .components
            .security_schemes
            .iter()
            .filter(|(name, _)| {
                requirements().any(|(security, _)| {
                    security.iter().any(|req| req.get(name.as_str()).is_some())
                })
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let tags = self
            .tags
            .iter()
            .filter(|t| requirements().any(|(_, tags)| tags.contains(&t.name)))
            .cloned()
            .collect();
        OpenApi {
            openapi: self.openapi.clone(),
            info: self.info.clone(),
            paths,
            components: Components {
                schemas,
                security_schemes,
            },
            tags,
            servers: self.servers.clone(),
            external_docs: self.external_docs.clone(),
            websockets,
        }
    }

    /// An empty 3.1.0 document.
    pub fn new(info: Info) -> Self {
        OpenApi {
            openapi: "3.1.0".into(),
            info,
            paths: Map::new(),
            components: Components::default(),
            tags: Vec::new(),
            servers: Vec::new(),
            external_docs: None,
            websockets: Map::new(),
        }
    }
}

/// Pushes the component names `#/components/schemas/<name>` referenced in `v`.
pub(crate) fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
