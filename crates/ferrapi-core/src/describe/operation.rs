//! The describe walk's context: [`OperationBuilder`], which every
//! extractor, dependency and response type fills while describing itself.
//!
//! Written by hand. It lives with the contracts (it moved here from the
//! document model, `ferrapi-openapi`, which keeps only the model, the schema
//! registry and the document helpers) because the walk records two things
//! at once: the operation's document (its fields here) and the route's
//! runtime facts ([`PlanBuilder`], the field [`OperationBuilder::plan`]).
//! One walk, not two hooks, so that a hand-written dependency that forwards
//! only `describe` cannot switch the runtime checks off.

use super::plan::PlanBuilder;
use ferrapi_openapi::JsonSchema;
use ferrapi_openapi::{
    MediaType, Operation, Parameter, ParameterIn, RequestBody, Response, SchemaRegistry,
};
use http::StatusCode;
use serde_json::{Value, json};

/// Collects one operation's parameters, body and responses while the route's
/// extractor and response types describe themselves, and in
/// [`plan`](Self::plan) what the route needs at run time.
///
/// A hand-written extractor documents the header it reads and the state it
/// needs:
///
/// ```
/// use ferrapi::openapi::{DescribeInput, OperationBuilder, ParameterIn, SchemaRegistry};
///
/// struct Tenant;
///
/// impl DescribeInput for Tenant {
///     fn describe(op: &mut OperationBuilder<'_>) {
///         let schema = serde_json::json!({"type": "string"});
///         op.parameter("x-tenant", ParameterIn::Header, true, schema);
///         op.require_state::<String>();
///     }
/// }
///
/// let mut registry = SchemaRegistry::default();
/// let mut op = OperationBuilder::new(&mut registry, Vec::new());
/// Tenant::describe(&mut op);
/// assert_eq!(op.plan.required_state.len(), 1);
/// let operation = op.finish();
/// assert_eq!(operation.parameters[0].name, "x-tenant");
/// assert!(operation.responses.contains_key("422"));
/// ```
#[derive(Debug)]
pub struct OperationBuilder<'a> {
    /// The schema registry of the document being built.
    pub registry: &'a mut SchemaRegistry,
    /// The operation under construction.
    pub operation: Operation,
    /// The route's path template variables, in order.
    pub path_variables: Vec<String>,
    /// True once any extractor that can fail validation (path, query, header,
    /// cookie, body) has described itself: the operation then documents 422.
    pub validates_input: bool,
    /// Security schemes the operation's extractors declared, by name.
    pub security_schemes: serde_json::Map<String, Value>,
    /// Mistakes found while describing (dependency cycles), reported by the
    /// application build with the route named.
    pub problems: Vec<String>,
    /// The route's runtime facts (body buffering, dependency scope,
    /// background tasks, path shape, state read), recorded by the same walk.
    pub plan: PlanBuilder,
}

impl<'a> OperationBuilder<'a> {
    /// A builder for an operation on a path with these template variables.
    pub fn new(registry: &'a mut SchemaRegistry, path_variables: Vec<String>) -> Self {
        Self {
            registry,
            operation: Operation::default(),
            path_variables,
            validates_input: false,
            security_schemes: serde_json::Map::new(),
            problems: Vec::new(),
            plan: PlanBuilder::new(),
        }
    }

    /// Adds a parameter; a parameter of the same name and location is replaced.
    pub fn parameter(&mut self, name: &str, location: ParameterIn, required: bool, schema: Value) {
        self.validates_input = true;
        let param = Parameter {
            name: name.to_owned(),
            location,
            required: required || location == ParameterIn::Path,
            schema,
            description: None,
        };
        let params = &mut self.operation.parameters;
        match params
            .iter_mut()
            .find(|p| p.name == param.name && p.location == param.location)
        {
            Some(existing) => *existing = param,
            None => params.push(param),
        }
    }

    /// Adds one parameter per property of `T`'s object schema (query, header,
    /// cookie models), named by `name_of` (headers turn `_` into `-`).
    pub fn parameters_from<T: JsonSchema>(
        &mut self,
        location: ParameterIn,
        name_of: impl Fn(&str) -> String,
    ) {
        let root = ferrapi_openapi::validation_schema::<T>();
        let required: Vec<&str> = root
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(props) = root.get("properties").and_then(Value::as_object) else {
            self.validates_input = true;
            return;
        };
        // Nested definitions of the standalone schema are re-registered so the
        // parameter schemas can reference components.
        for (name, schema) in props {
            let mut schema = self.rebase_refs(&root, schema.clone());
            if let Some(problem) = not_flat(location, name, &schema)
                && !self.problems.contains(&problem)
            {
                self.problems.push(problem);
            }
            // The field's doc comment describes the parameter, as FastAPI's
            // `Query(description=…)` does.
            let description = schema
                .as_object_mut()
                .and_then(|o| o.remove("description"))
                .and_then(|d| d.as_str().map(str::to_owned));
            self.parameter(
                &name_of(name),
                location,
                required.contains(&name.as_str()),
                schema,
            );
            if let Some(p) = self.operation.parameters.last_mut() {
                p.description = description;
            }
        }
        self.validates_input = true;
    }

    /// Inlines `$defs` references of a standalone schema (parameter schemas are
    /// small; inlining keeps them self-contained).
    fn rebase_refs(&self, root: &Value, schema: Value) -> Value {
        fn walk(root: &Value, v: Value, depth: usize) -> Value {
            match v {
                Value::Object(map) => {
                    if let Some(def) = map
                        .get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .filter(|_| depth < 8)
                        .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
                    {
                        return walk(root, def.clone(), depth + 1);
                    }
                    Value::Object(
                        map.into_iter()
                            .map(|(k, v)| (k, walk(root, v, depth)))
                            .collect(),
                    )
                }
                Value::Array(a) => {
                    Value::Array(a.into_iter().map(|v| walk(root, v, depth)).collect())
                }
                other => other,
            }
        }
        walk(root, schema, 0)
    }

    /// Sets the request body: `T`'s schema under `content_type`.
    pub fn request_body<T: JsonSchema>(&mut self, content_type: &str, required: bool) {
        let schema = self.registry.schema_for::<T>();
        self.request_body_schema(content_type, schema, required);
    }

    /// Sets the request body to a hand-built `schema` under `content_type`:
    /// for bodies that are not one serde model, such as a `multipart/form-data`
    /// form whose file parts are `{"type": "string", "format": "binary"}`.
    pub fn request_body_schema(&mut self, content_type: &str, schema: Value, required: bool) {
        self.validates_input = true;
        let body = self
            .operation
            .request_body
            .get_or_insert_with(|| RequestBody {
                content: Default::default(),
                required,
            });
        body.content.insert(
            content_type.to_owned(),
            MediaType {
                schema: Some(schema),
            },
        );
    }

    /// Declares a response with an optional body schema under `content_type`.
    pub fn response(
        &mut self,
        status: StatusCode,
        description: &str,
        content: Option<(&str, Value)>,
    ) {
        let entry = self
            .operation
            .responses
            .entry(status.as_u16().to_string())
            .or_insert_with(|| Response {
                description: description.to_owned(),
                ..Default::default()
            });
        if let Some((content_type, schema)) = content {
            entry.content.insert(
                content_type.to_owned(),
                MediaType {
                    schema: Some(schema),
                },
            );
        }
    }

    /// Declares an error response answered as `{"detail": "…"}` (FastAPI's
    /// `HTTPException` body), referencing the `HTTPError` component. Several
    /// errors with one status share the response; their descriptions are
    /// joined.
    pub fn error_response(&mut self, status: StatusCode, description: &str) {
        let schema = self.registry.add_component(
            "HTTPError",
            json!({
                "type": "object",
                "title": "HTTPError",
                "properties": {"detail": {"type": "string", "title": "Detail"}},
                "required": ["detail"]
            }),
        );
        let key = status.as_u16().to_string();
        match self.operation.responses.get_mut(&key) {
            Some(existing) => {
                if !existing.description.split(" / ").any(|d| d == description) {
                    existing.description = format!("{} / {description}", existing.description);
                }
                existing
                    .content
                    .entry("application/json".to_owned())
                    .or_insert(MediaType {
                        schema: Some(schema),
                    });
            }
            None => self.response(status, description, Some(("application/json", schema))),
        }
    }

    /// Requires a security scheme for this operation: the scheme is added to
    /// `components/securitySchemes` under `name` and the operation's
    /// `security` lists it with `scopes`.
    pub fn security(&mut self, name: &str, scheme: Value, scopes: &[&str]) {
        self.security_schemes.insert(name.to_owned(), scheme);
        let requirement = json!({ name: scopes });
        if !self.operation.security.contains(&requirement) {
            self.operation.security.push(requirement);
        }
    }

    /// Records that the operation reads application state of type `T`
    /// (`State<T>` does): building the app fails, naming the route and `T`,
    /// when no such state was registered, unless a dependency it is read
    /// within is overridden. Recorded on [`plan`](Self::plan).
    pub fn require_state<T: 'static>(&mut self) {
        self.plan.require_state::<T>();
    }

    /// Describes dependency `T` (named `name`) with `describe`, unless that
    /// would be a cycle: then the cycle is recorded as a problem, naming
    /// every dependency in it, and `describe` is not called. The operation
    /// then uses dependencies ([`PlanBuilder::uses_dependencies`]), and the
    /// state read within `describe` is recorded as read within `T`.
    pub fn dependency<T: 'static>(&mut self, name: &'static str, describe: impl FnOnce(&mut Self)) {
        if let Err(cycle) = self.plan.enter_dependency::<T>(name) {
            let problem = cycle.to_string();
            if !self.problems.contains(&problem) {
                self.problems.push(problem);
            }
            return;
        }
        describe(self);
        self.plan.leave_dependency();
    }

    /// Declares a JSON response whose body is `T`.
    pub fn json_response<T: JsonSchema>(&mut self, status: StatusCode) {
        let schema = self.registry.schema_for::<T>();
        let description = status.canonical_reason().unwrap_or("Response");
        let description = if status == StatusCode::OK {
            "Successful Response"
        } else {
            description
        };
        self.response(status, description, Some(("application/json", schema)));
    }

    /// Finishes the operation: adds the `422` response when input is
    /// validated, and a default `200` when nothing declared a response.
    pub fn finish(self) -> Operation {
        self.finish_with_schemes().0
    }

    /// As [`finish`](Self::finish), also returning the security schemes the
    /// operation declared.
    pub fn finish_with_schemes(mut self) -> (Operation, serde_json::Map<String, Value>) {
        if self.operation.responses.is_empty() {
            self.response(StatusCode::OK, "Successful Response", None);
        }
        if self.validates_input {
            self.response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation Error",
                Some((
                    "application/json",
                    json!({"$ref": "#/components/schemas/HTTPValidationError"}),
                )),
            );
        }
        (self.operation, self.security_schemes)
    }
}

/// Why a parameter's schema cannot be read from a flat string value: a
/// nested model anywhere (FastAPI refuses it when the route is declared),
/// a list in a path (one segment is one value).
pub fn not_flat(location: ParameterIn, name: &str, schema: &Value) -> Option<String> {
    fn kinds(schema: &Value, out: &mut Vec<&'static str>, depth: usize) {
        if depth > 8 {
            return;
        }
        let ty = |t: &str| match t {
            "object" => Some("object"),
            "array" => Some("array"),
            _ => None,
        };
        match schema.get("type") {
            Some(Value::String(t)) => out.extend(ty(t)),
            Some(Value::Array(ts)) => {
                out.extend(ts.iter().filter_map(Value::as_str).filter_map(ty))
            }
            _ => {}
        }
        if schema.get("properties").is_some() {
            out.push("object");
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(members)) = schema.get(key) {
                for m in members {
                    kinds(m, out, depth + 1);
                }
            }
        }
        if let Some(items) = schema.get("items") {
            let mut inner = Vec::new();
            kinds(items, &mut inner, depth + 1);
            if inner.contains(&"object") {
                out.push("object");
            }
        }
    }
    let mut found = Vec::new();
    kinds(schema, &mut found, 0);
    let place = match location {
        ParameterIn::Path => "path",
        ParameterIn::Query => "query",
        ParameterIn::Header => "header",
        ParameterIn::Cookie => "cookie",
    };
    if found.contains(&"object") {
        return Some(format!(
            "{place} parameter `{name}` is a model: parameters are flat values (a nested model belongs in a JSON body)"
        ));
    }
    if location == ParameterIn::Path && found.contains(&"array") {
        return Some(format!(
            "path parameter `{name}` is a list: a path variable is one segment, one value"
        ));
    }
    None
}
