//! [`Patch<T>`]: a field of a partial update, which tells "absent" from
//! "set" — pydantic's `model_fields_set` / `exclude_unset`.
//!
//! Two states, not three: whether `null` is a value the client may send is
//! said by `T` itself, as everywhere else in ferrapi. `Patch<String>` is
//! either absent or a string (`null` is refused with pydantic's
//! `string_type`, as for a `name: str` field); `Patch<Option<String>>` is
//! absent, `null` (`Set(None)`: clear the value) or a string. The OpenAPI
//! document follows: the property is never required, and is nullable only
//! when `T` is.
//!
//! The field needs `#[serde(default)]` (on it, or on the struct): serde
//! calls `Default` (`Absent`) for a missing field only then. Forgetting it
//! is not silent: the field is then documented as required and a request
//! without it is answered 422 `missing`.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;

/// A field of a partial update (a `PATCH` body): [`Absent`](Patch::Absent)
/// when the client did not send it, [`Set`](Patch::Set) when it did.
///
/// Put `#[serde(default)]` on the field (or the struct). `null` is accepted
/// only when `T` accepts it: use `Patch<Option<T>>` for a value the client
/// may clear. Constraints (`#[garde(length(...))]`, `range`, `email`, …)
/// apply to a set value and pass an absent one; a bad value is answered
/// with FastAPI's 422 at `["body", "field"]`.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::Patch;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct UserPatch {
///     /// Absent, or a new name (never `null`).
///     #[serde(default)]
///     #[garde(length(chars, min = 2))]
///     name: Patch<String>,
///     /// Absent, `null` (remove the nickname), or a new one.
///     #[serde(default)]
///     #[garde(length(chars, min = 1))]
///     nickname: Patch<Option<String>>,
/// }
///
/// struct User { name: String, nickname: Option<String> }
///
/// let mut user = User { name: "Ada".into(), nickname: Some("ada".into()) };
/// let patch: UserPatch = serde_json::from_str(r#"{"nickname": null}"#).unwrap();
/// assert!(patch.name.is_absent());
/// patch.name.apply_to(&mut user.name);         // absent: unchanged
/// patch.nickname.apply_to(&mut user.nickname); // set to null: cleared
/// assert_eq!((user.name.as_str(), user.nickname), ("Ada", None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Patch<T> {
    /// The client did not send the field.
    #[default]
    Absent,
    /// The client sent this value (`None` of a `Patch<Option<U>>` is an
    /// explicit `null`).
    Set(T),
}

impl<T> Patch<T> {
    /// True when the field was not sent.
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// True when the field was sent.
    pub fn is_set(&self) -> bool {
        matches!(self, Patch::Set(_))
    }

    /// The sent value, if any.
    pub fn as_ref(&self) -> Patch<&T> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Set(v) => Patch::Set(v),
        }
    }

    /// Maps a sent value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Set(v) => Patch::Set(f(v)),
        }
    }

    /// `Some` of the sent value, `None` when absent.
    pub fn into_option(self) -> Option<T> {
        match self {
            Patch::Absent => None,
            Patch::Set(v) => Some(v),
        }
    }

    /// Writes the sent value into `target`; an absent field leaves it as
    /// it is. Returns whether `target` was written.
    pub fn apply_to(self, target: &mut T) -> bool {
        match self {
            Patch::Absent => false,
            Patch::Set(v) => {
                *target = v;
                true
            }
        }
    }
}

impl<T> From<T> for Patch<T> {
    fn from(value: T) -> Self {
        Patch::Set(value)
    }
}

/// Through a JSON value first: serde gives a field missing without
/// `#[serde(default)]` as `deserialize_any` failing with "missing field"
/// (and as `None` to `deserialize_option`): reading the value whole keeps
/// a forgotten `default` loud instead of turning absent into `null`.
impl<'de, T: DeserializeOwned> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        T::deserialize(value)
            .map(Patch::Set)
            .map_err(D::Error::custom)
    }
}

/// A set value is serialized as it is, an absent one as `null`: skip it
/// with `#[serde(skip_serializing_if = "Patch::is_absent")]`.
impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Absent => serializer.serialize_none(),
            Patch::Set(v) => v.serialize(serializer),
        }
    }
}

/// `T`'s schema, inlined: nullable only when `T` is. Not required comes
/// from `#[serde(default)]`, which schemars reads.
impl<T: JsonSchema> JsonSchema for Patch<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// The rules of ferrapi's `#[derive(Validate)]` see through a `Patch`: an
/// absent field passes, a set one is checked as its value.
mod rules_impls {
    use super::Patch;
    use ferrapi_core::validation::Validate;
    use ferrapi_core::validation::rules::{Bounded, Length, Presence, Text};
    use garde::{Path, Report};

    impl<T: Validate> Validate for Patch<T> {
        fn validate_into(&self, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
            if let Patch::Set(value) = self {
                value.validate_into(parent, report);
            }
        }
    }

    impl<T: Length> Length for Patch<T> {
        fn length(&self) -> Option<usize> {
            match self {
                Patch::Absent => None,
                Patch::Set(v) => v.length(),
            }
        }
    }

    impl<T: Bounded> Bounded for Patch<T> {
        type Bound = T::Bound;
        fn value(&self) -> Option<&T::Bound> {
            match self {
                Patch::Absent => None,
                Patch::Set(v) => v.value(),
            }
        }
    }

    impl<T: Text> Text for Patch<T> {
        fn text(&self) -> Option<&str> {
            match self {
                Patch::Absent => None,
                Patch::Set(v) => v.text(),
            }
        }
    }

    /// `#[garde(required)]`: the field must be sent.
    impl<T> Presence for Patch<T> {
        fn is_present(&self) -> bool {
            matches!(self, Patch::Set(_))
        }
    }

    /// `#[garde(inner(...))]` applies to the set value, as for `Option`.
    impl<T> garde::rules::inner::Inner<T> for Patch<T> {
        type Key = garde::error::NoKey;

        fn validate_inner<F>(&self, mut f: F)
        where
            F: FnMut(&T, &Self::Key),
        {
            if let Patch::Set(item) = self {
                f(item, &garde::error::NoKey::default());
            }
        }
    }
}
