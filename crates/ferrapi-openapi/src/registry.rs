//! The schema registry: one schemars generator per document, so that every
//! model appears once under `components/schemas` and is referenced with `$ref`.

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::Value;

/// Collects the schemas of one OpenAPI document.
///
/// ```
/// use ferrapi_openapi::{JsonSchema, SchemaRegistry};
///
/// #[derive(JsonSchema)]
/// struct User { name: String }
///
/// let mut registry = SchemaRegistry::new();
/// let schema = registry.schema_for::<User>();
/// assert_eq!(schema["$ref"], "#/components/schemas/User");
/// let components = registry.into_components();
/// assert!(components.contains_key("User"));
/// ```
#[derive(Debug)]
pub struct SchemaRegistry {
    generator: SchemaGenerator,
    extra: serde_json::Map<String, Value>,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaRegistry {
    /// A registry emitting JSON Schema 2020-12 (the dialect of OpenAPI 3.1),
    /// with definitions under `#/components/schemas`.
    pub fn new() -> Self {
        Self::with_settings(SchemaSettings::draft2020_12())
    }

    /// A registry emitting JSON Schema draft-07 (the base of AsyncAPI 3.0's
    /// default schema format), with definitions under `#/components/schemas`.
    ///
    /// ```
    /// use ferrapi_openapi::{JsonSchema, SchemaRegistry};
    ///
    /// #[derive(JsonSchema)]
    /// struct Pair(i32, i32);
    ///
    /// let mut registry = SchemaRegistry::draft07();
    /// registry.schema_for::<Pair>();
    /// // Tuples as draft-07 spells them (2020-12 says `prefixItems`).
    /// assert!(registry.into_components()["Pair"]["items"].is_array());
    /// ```
    pub fn draft07() -> Self {
        Self::with_settings(SchemaSettings::draft07())
    }

    /// Definitions under `#/components/schemas`, no `$schema`.
    fn with_settings(settings: SchemaSettings) -> Self {
        let settings = settings.with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        Self {
            generator: settings.into_generator(),
            extra: serde_json::Map::new(),
        }
    }

    /// The schema of `T`: a `$ref` for named models, inline for primitives.
    pub fn schema_for<T: JsonSchema + ?Sized>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }

    /// Adds a hand-written component schema (kept if one of that name exists).
    pub fn add_component(&mut self, name: &str, schema: Value) -> Value {
        self.extra.entry(name.to_owned()).or_insert(schema);
        serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// The component schemas collected so far, by name.
    pub fn into_components(mut self) -> serde_json::Map<String, Value> {
        let mut components = self.generator.take_definitions(true);
        for (name, schema) in self.extra {
            components.entry(name).or_insert(schema);
        }
        components
    }
}

/// A standalone JSON Schema (2020-12) of `T` with its nested definitions under
/// `$defs`: what the request validator walks.
///
/// ```
/// use ferrapi_openapi::{validation_schema, JsonSchema};
///
/// #[derive(JsonSchema)]
/// struct Page { limit: u32 }
///
/// let schema = validation_schema::<Page>();
/// assert_eq!(schema["type"], "object");
/// ```
pub fn validation_schema<T: JsonSchema + ?Sized>() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| s.meta_schema = None);
    settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}
