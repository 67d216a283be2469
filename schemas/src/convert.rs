//! Between an event's serde form (JSON) and an Avro value, guided by the record schema.
//!
//! The conversion is strict where the Avro library's own resolution is lenient: a field the schema does
//! not know is an error rather than silently dropped, so an event that does not match its schema is
//! refused, and the error names the path to the offending value (`lines[0].quantity`).

use std::fmt;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamesRef, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::{Map, Number, Value as Json};

/// Where and why a value does not fit its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Path segments from the innermost outwards; displayed outermost first.
    reversed_path: Vec<String>,
    problem: String,
}

impl Mismatch {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            reversed_path: Vec::new(),
            problem: problem.into(),
        }
    }

    fn at(mut self, segment: impl Into<String>) -> Self {
        self.reversed_path.push(segment.into());
        self
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::new();
        for segment in self.reversed_path.iter().rev() {
            if !segment.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
        if path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{path}: {}", self.problem)
        }
    }
}

/// Converts the serde form of a record to an Avro value of `schema`.
///
/// # Errors
/// A [`Mismatch`] naming the first value that does not fit: a missing field without default, a field the
/// schema does not know, a wrong type, an integer out of range, an unknown enum symbol, a malformed UUID.
pub fn json_to_avro(json: &Json, schema: &Schema) -> Result<Value, Mismatch> {
    let resolved = ResolvedSchema::try_from(schema)
        .map_err(|e| Mismatch::new(format!("unusable schema: {e}")))?;
    to_avro(json, schema, resolved.get_names(), None)
}

fn to_avro(
    json: &Json,
    schema: &Schema,
    names: &NamesRef<'_>,
    namespace: Option<&str>,
) -> Result<Value, Mismatch> {
    let wrong =
        |expected: &str| Mismatch::new(format!("expected {expected}, found {}", describe(json)));
    match schema {
        Schema::Null => json
            .is_null()
            .then_some(Value::Null)
            .ok_or_else(|| wrong("null")),
        Schema::Boolean => json
            .as_bool()
            .map(Value::Boolean)
            .ok_or_else(|| wrong("a boolean")),
        Schema::Int => json
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Value::Int)
            .ok_or_else(|| wrong("an int (32 bits)")),
        Schema::Long => json
            .as_i64()
            .map(Value::Long)
            .ok_or_else(|| wrong("a long (64 bits)")),
        Schema::Float => json
            .as_f64()
            .map(|n| {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "an Avro float is 32 bits by definition"
                )]
                Value::Float(n as f32)
            })
            .ok_or_else(|| wrong("a float")),
        Schema::Double => json
            .as_f64()
            .map(Value::Double)
            .ok_or_else(|| wrong("a double")),
        Schema::String => json
            .as_str()
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| wrong("a string")),
        Schema::Uuid(_) => {
            let text = json.as_str().ok_or_else(|| wrong("a UUID string"))?;
            text.parse()
                .map(Value::Uuid)
                .map_err(|_| Mismatch::new(format!("expected a UUID, found {text:?}")))
        }
        Schema::Enum(enum_schema) => {
            let symbol = json.as_str().ok_or_else(|| wrong("an enum symbol"))?;
            let index = enum_schema
                .symbols
                .iter()
                .position(|s| s == symbol)
                .ok_or_else(|| {
                    Mismatch::new(format!(
                        "{symbol:?} is not a symbol of {} ({})",
                        enum_schema.name.fullname(namespace),
                        enum_schema.symbols.join(", ")
                    ))
                })?;
            Ok(Value::Enum(
                u32::try_from(index).expect("few symbols"),
                symbol.to_owned(),
            ))
        }
        Schema::Array(array) => {
            let items = json.as_array().ok_or_else(|| wrong("an array"))?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    to_avro(item, &array.items, names, namespace)
                        .map_err(|m| m.at(format!("[{i}]")))
                })
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        Schema::Map(map) => {
            let entries = json.as_object().ok_or_else(|| wrong("an object"))?;
            entries
                .iter()
                .map(|(k, v)| {
                    to_avro(v, &map.types, names, namespace)
                        .map(|v| (k.clone(), v))
                        .map_err(|m| m.at(format!("[{k:?}]")))
                })
                .collect::<Result<_, _>>()
                .map(Value::Map)
        }
        Schema::Record(record) => {
            let object = json.as_object().ok_or_else(|| wrong("an object"))?;
            let inner_namespace = record.name.namespace().or(namespace);
            if let Some(unknown) = object.keys().find(|k| !record.lookup.contains_key(*k)) {
                return Err(Mismatch::new(format!(
                    "field {unknown:?} is not in schema {}",
                    record.name.fullname(namespace)
                )));
            }
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                let value = match (object.get(&field.name), &field.default) {
                    (Some(value), _) => value,
                    (None, Some(default)) => default,
                    (None, None) => {
                        return Err(Mismatch::new(format!("missing field {:?}", field.name)));
                    }
                };
                let value = to_avro(value, &field.schema, names, inner_namespace)
                    .map_err(|m| m.at(&field.name))?;
                fields.push((field.name.clone(), value));
            }
            Ok(Value::Record(fields))
        }
        Schema::Union(union) => {
            let mut problems = Vec::new();
            for (index, variant) in union.variants().iter().enumerate() {
                match to_avro(json, variant, names, namespace) {
                    Ok(value) => {
                        return Ok(Value::Union(
                            u32::try_from(index).expect("few variants"),
                            Box::new(value),
                        ));
                    }
                    Err(m) => problems.push(m.to_string()),
                }
            }
            Err(Mismatch::new(format!(
                "fits no branch of the union: {}",
                problems.join("; ")
            )))
        }
        Schema::Ref { name } => {
            let target = lookup(names, name, namespace)
                .ok_or_else(|| Mismatch::new(format!("unknown type {name}")))?;
            to_avro(json, target, names, namespace)
        }
        other => Err(Mismatch::new(format!(
            "schema type {:?} is not used by orderflow's schemas",
            apache_avro::schema::SchemaKind::from(other)
        ))),
    }
}

fn lookup<'s>(names: &NamesRef<'s>, name: &Name, namespace: Option<&str>) -> Option<&'s Schema> {
    names
        .get(name.fully_qualified_name(namespace).as_ref())
        .or_else(|| names.get(name))
        .copied()
}

fn describe(json: &Json) -> String {
    let text = json.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// Converts an Avro value back to the serde form.
///
/// # Errors
/// A [`Mismatch`] for value kinds orderflow's schemas do not use (bytes, fixed, dates, decimals).
pub fn avro_to_json(value: &Value) -> Result<Json, Mismatch> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Long(n) => Json::from(*n),
        Value::Float(n) => Number::from_f64(f64::from(*n)).map_or(Json::Null, Json::Number),
        Value::Double(n) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Union(_, inner) => avro_to_json(inner)?,
        Value::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| avro_to_json(item).map_err(|m| m.at(format!("[{i}]"))))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    avro_to_json(v)
                        .map(|v| (k.clone(), v))
                        .map_err(|m| m.at(format!("[{k:?}]")))
                })
                .collect::<Result<Map<_, _>, _>>()?,
        ),
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| avro_to_json(v).map(|v| (k.clone(), v)).map_err(|m| m.at(k)))
                .collect::<Result<Map<_, _>, _>>()?,
        ),
        other => {
            return Err(Mismatch::new(format!(
                "Avro value kind {:?} is not used by orderflow's schemas",
                apache_avro::schema::SchemaKind::from(other)
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse_str(
            r#"{"type":"record","name":"T","namespace":"t","fields":[
                {"name":"id","type":{"type":"string","logicalType":"uuid"}},
                {"name":"n","type":"int"},
                {"name":"lines","type":{"type":"array","items":{"type":"record","name":"L","fields":[
                    {"name":"q","type":"int"},{"name":"m","type":{"type":"record","name":"M","fields":[{"name":"x","type":"long"}]}}]}}},
                {"name":"again","type":"M"},
                {"name":"color","type":{"type":"enum","name":"C","symbols":["Red","Blue"]}},
                {"name":"note","type":["null","string"],"default":null}
            ]}"#,
        )
        .unwrap()
    }

    fn valid() -> Json {
        json!({"id":"0192f5a4-8d3e-7c1a-9b2f-3c4d5e6f7a8b","n":3,"lines":[{"q":1,"m":{"x":5}}],"again":{"x":7},"color":"Blue"})
    }

    #[test]
    fn converts_and_back_filling_defaults() {
        let value = json_to_avro(&valid(), &schema()).unwrap();
        assert!(value.validate(&schema()), "{value:?}");
        let mut expected = valid();
        expected["note"] = Json::Null;
        assert_eq!(avro_to_json(&value).unwrap(), expected);
    }

    #[test]
    fn names_the_path_and_the_problem() {
        let cases = [
            (
                "/lines/0/q",
                json!("1"),
                r#"lines[0].q: expected an int (32 bits), found "1""#,
            ),
            (
                "/n",
                json!(1_i64 << 40),
                "n: expected an int (32 bits), found 1099511627776",
            ),
            ("/id", json!("nope"), r#"id: expected a UUID, found "nope""#),
            (
                "/color",
                json!("Green"),
                r#"color: "Green" is not a symbol of t.C (Red, Blue)"#,
            ),
            (
                "/again/x",
                json!(null),
                "again.x: expected a long (64 bits), found null",
            ),
        ];
        for (pointer, bad, message) in cases {
            let mut json = valid();
            *json.pointer_mut(pointer).unwrap() = bad;
            assert_eq!(
                json_to_avro(&json, &schema()).unwrap_err().to_string(),
                message
            );
        }
    }

    #[test]
    fn refuses_unknown_and_missing_fields() {
        let mut json = valid();
        json["extra"] = json!(1);
        assert_eq!(
            json_to_avro(&json, &schema()).unwrap_err().to_string(),
            r#"field "extra" is not in schema t.T"#
        );
        let mut json = valid();
        json.as_object_mut().unwrap().remove("n");
        assert_eq!(
            json_to_avro(&json, &schema()).unwrap_err().to_string(),
            r#"missing field "n""#
        );
        let mut json = valid();
        json["lines"][0]["m"]["y"] = json!(1);
        assert_eq!(
            json_to_avro(&json, &schema()).unwrap_err().to_string(),
            r#"lines[0].m: field "y" is not in schema t.M"#
        );
    }
}
