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
    /// Responses by status code.
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
