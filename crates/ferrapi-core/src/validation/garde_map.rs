//! garde's report to pydantic-shaped errors: Rust field names mapped to the
//! schema's (serde) names, errors ordered by declaration.

use super::schema::{Keyword, Schema};
use super::{ErrorItem, Loc, LocItem};
use garde::error::Kind;
use serde_json::{Value, json};
use std::borrow::Cow;

/// Adds the errors of a garde report that [`validate`](super::validate) did
/// not already report at the same `loc` (custom rules, rules that schemars
/// does not express) as pydantic's `value_error` (`{"type": "value_error",
/// "msg": "Value error, <garde message>", "ctx": {"error": "<garde
/// message>"}, "input": <value at loc>}`), then sorts all of `errors` stably
/// by the declaration order of their `loc` (property order in the schema,
/// list index order).
///
/// garde's Rust field names are mapped to the schema's property names: an
/// exact match first, then the `rename_all` conversions (camelCase,
/// PascalCase, kebab-case, SCREAMING_SNAKE_CASE, SCREAMING-KEBAB-CASE,
/// lowercase, UPPERCASE); failing those, the Rust name is kept.
pub fn from_garde(
    report: &garde::Report,
    schema: &Schema,
    value: &Value,
    loc: &Loc,
    errors: &mut Vec<ErrorItem>,
) {
    from_garde_with(report, schema, loc, errors, || value.clone());
}

/// [`from_garde`] for callers that no longer hold the original input: it is
/// asked of `original` only when an error is added (the common case, garde
/// rules that the schema also expresses, needs no input at all).
///
/// When nothing is added, `errors` is left in the order it came in, which
/// for the output of [`validate`](super::validate) is already declaration
/// order.
pub fn from_garde_with(
    report: &garde::Report,
    schema: &Schema,
    loc: &Loc,
    errors: &mut Vec<ErrorItem>,
    original: impl FnOnce() -> Value,
) {
    let mut original = Some(original);
    let mut input_root: Option<Value> = None;
    let mut added = false;
    let mut items: Vec<Item<'_>> = Vec::new();
    for (path, err) in report.iter() {
        // garde yields a path leaf first.
        let components: Vec<(Kind, &str)> = path
            .__iter()
            .rev()
            .map(|(kind, c)| (kind, c.as_str()))
            .collect();
        items.clear();
        let mut node: Option<&Value> = Some(schema.root());
        for (kind, component) in components {
            let item = match kind {
                Kind::None => continue,
                Kind::Index => match component.parse::<usize>() {
                    Ok(i) => Item::Index(i),
                    Err(_) => Item::Key(Cow::Owned(component.to_owned())),
                },
                Kind::Key => Item::Key(
                    node.and_then(|n| map_name(schema, n, component))
                        .unwrap_or_else(|| Cow::Owned(component.to_owned())),
                ),
            };
            node = node.and_then(|n| child_schema(schema, n, &item.as_loc_item()));
            items.push(item);
        }
        if errors.iter().any(|e| same_loc(&e.loc, loc, &items)) {
            continue;
        }
        let mut item_loc = loc.clone();
        item_loc
            .0
            .extend(items.iter().map(|i| i.as_loc_item().into_owned()));
        let root = input_root.get_or_insert_with(|| original.take().map_or(Value::Null, |f| f()));
        let Some(input) = find(root, &item_loc.0[loc.0.len().min(item_loc.0.len())..]) else {
            // A field that was not sent holds its default, which pydantic
            // does not validate (a missing required field is the schema
            // walk's `missing`).
            continue;
        };
        let input = input.clone();
        let message = err.message();
        errors.push(ErrorItem {
            kind: "value_error".into(),
            loc: item_loc,
            msg: format!("Value error, {message}"),
            input,
            ctx: json!({ "error": message }).as_object().cloned(),
        });
        added = true;
    }
    if added {
        sort_by_declaration(schema, loc, errors);
    }
}

/// One element of a garde error's location, mapped to the schema's names
/// (borrowed from the schema when it has the name).
enum Item<'s> {
    Key(Cow<'s, str>),
    Index(usize),
}

impl Item<'_> {
    fn as_loc_item(&self) -> BorrowedItem<'_> {
        match self {
            Item::Key(k) => BorrowedItem::Key(k.as_ref()),
            Item::Index(i) => BorrowedItem::Index(*i),
        }
    }
}

/// A [`LocItem`] that borrows its key.
#[derive(Clone, Copy)]
enum BorrowedItem<'a> {
    Key(&'a str),
    Index(usize),
}

impl BorrowedItem<'_> {
    fn into_owned(self) -> LocItem {
        match self {
            BorrowedItem::Key(k) => LocItem::Key(Cow::Owned(k.to_owned())),
            BorrowedItem::Index(i) => LocItem::Index(i),
        }
    }

    fn matches(self, item: &LocItem) -> bool {
        match (self, item) {
            (BorrowedItem::Key(a), LocItem::Key(b)) => a == b.as_ref(),
            (BorrowedItem::Index(a), LocItem::Index(b)) => a == *b,
            _ => false,
        }
    }
}

/// Whether `loc` is `prefix` followed by `items`.
fn same_loc(loc: &Loc, prefix: &Loc, items: &[Item<'_>]) -> bool {
    loc.0.len() == prefix.0.len() + items.len()
        && loc.0.starts_with(&prefix.0)
        && loc.0[prefix.0.len()..]
            .iter()
            .zip(items)
            .all(|(l, i)| i.as_loc_item().matches(l))
}

/// The value found by following `path` from `value`, if the input has it.
fn find<'v>(value: &'v Value, path: &[LocItem]) -> Option<&'v Value> {
    let mut v = value;
    for item in path {
        v = match (item, v) {
            (LocItem::Key(k), Value::Object(m)) => m.get(k.as_ref())?,
            (LocItem::Index(i), Value::Array(a)) => a.get(*i)?,
            (LocItem::Index(i), Value::Object(m)) => m.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(v)
}

/// The schema property that a Rust field name stands for.
fn map_name<'s>(schema: &'s Schema, node: &'s Value, rust: &str) -> Option<Cow<'s, str>> {
    let props = schema.properties(node)?;
    if let Some((key, _)) = props.get_key_value(rust) {
        return Some(Cow::Borrowed(key.as_str()));
    }
    let words: Vec<&str> = rust.split('_').filter(|w| !w.is_empty()).collect();
    let capitalized = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    let pascal: String = words.iter().map(|w| capitalized(w)).collect();
    let camel: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                (*w).to_owned()
            } else {
                capitalized(w)
            }
        })
        .collect();
    let candidates = [
        camel,
        pascal,
        words.join("-"),
        rust.to_uppercase(),
        words.join("-").to_uppercase(),
        rust.to_lowercase(),
        rust.replace('_', "").to_lowercase(),
        rust.replace('_', "").to_uppercase(),
    ];
    candidates
        .into_iter()
        .find(|c| props.contains_key(c))
        .map(Cow::Owned)
}

/// The schema of `item` within `node`: a property, a list item, a map
/// value, or a tagged-union member.
fn child_schema<'a>(
    schema: &'a Schema,
    node: &'a Value,
    item: &BorrowedItem<'_>,
) -> Option<&'a Value> {
    let node = schema.resolve_nullable(node);
    match *item {
        BorrowedItem::Key(k) => {
            if let Some(p) = node.kw("properties").and_then(|p| p.get(k)) {
                return Some(p);
            }
            if let Some(s @ Value::Object(_)) = node.kw("additionalProperties") {
                return Some(s);
            }
            union_member(schema, node, k).map(|(_, s)| s)
        }
        BorrowedItem::Index(i) => node
            .kw("prefixItems")
            .and_then(|p| p.get(i))
            .or_else(|| node.kw("items")),
    }
}

/// The member of a union labelled `label` in a `loc` (its tag, or its
/// schema's label), with its position.
fn union_member<'a>(
    schema: &'a Schema,
    node: &'a Value,
    label: &str,
) -> Option<(usize, &'a Value)> {
    let vars = node.kw("anyOf").or_else(|| node.kw("oneOf"))?.as_array()?;
    let non_null: Vec<&Value> = vars.iter().filter(|v| !schema.is_null_schema(v)).collect();
    if let Some((_, tags)) = schema.discriminator(&non_null) {
        return tags
            .iter()
            .enumerate()
            .find(|(_, (tag, _))| super::messages::display(tag) == label)
            .map(|(i, (_, s))| (i, *s));
    }
    non_null
        .into_iter()
        .enumerate()
        .find(|(_, v)| schema.union_label(v) == label)
}

/// The declaration-order key of a `loc` below `prefix`.
fn order_key(schema: &Schema, prefix: &Loc, loc: &Loc) -> Vec<usize> {
    if !loc.0.starts_with(&prefix.0) {
        return vec![usize::MAX];
    }
    let mut key = Vec::with_capacity(loc.0.len() - prefix.0.len());
    let mut node = Some(schema.root());
    for item in &loc.0[prefix.0.len()..] {
        let position = match (item, node) {
            (LocItem::Index(i), _) => *i,
            (LocItem::Key(k), Some(n)) => {
                let resolved = schema.resolve_nullable(n);
                match resolved.kw("properties").and_then(Value::as_object) {
                    Some(props) => props
                        .keys()
                        .position(|p| p == k.as_ref())
                        .unwrap_or(usize::MAX - 1),
                    None => union_member(schema, resolved, k).map_or(usize::MAX - 1, |(i, _)| i),
                }
            }
            (LocItem::Key(_), None) => usize::MAX - 1,
        };
        key.push(position);
        let item = match item {
            LocItem::Key(k) => BorrowedItem::Key(k.as_ref()),
            LocItem::Index(i) => BorrowedItem::Index(*i),
        };
        node = node.and_then(|n| child_schema(schema, n, &item));
    }
    key
}

fn sort_by_declaration(schema: &Schema, prefix: &Loc, errors: &mut [ErrorItem]) {
    // Stable: errors at the same place keep their order.
    errors.sort_by_cached_key(|e| order_key(schema, prefix, &e.loc));
}
