//! Reading request bodies the way ARM reads them: property names compared
//! case-insensitively, `null` the same as absent.
//!
//! ARM accepts `{"Properties": {"Mode": "complete"}}` as readily as the
//! documented spelling, so a classifier that looked up exact keys would miss
//! what Azure acts on. A name that appears twice, in the same or in
//! different letter case, is refused: Airlock cannot know which one Azure
//! would take.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::ClassifyError;

/// Deserializes a JSON value like `serde_json::Value` does, but refuses an
/// object that names one property twice (where `Value` keeps the last).
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }
    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "the property '{key}' appears more than once"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses a body that must be a JSON object; `what` names it in errors.
pub(crate) fn object(body: &[u8], what: &str) -> Result<Map<String, Value>, ClassifyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ClassifyError::content(format!(
            "the {what} body is empty; send the JSON body Azure documents for this request"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = Strict
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ClassifyError::content(format!(
            "the {what} body must be a JSON object; send the JSON body Azure documents for this request"
        ))),
        // Only a property named twice is a data error here (the rest are syntax).
        Err(error) if error.is_data() => Err(ClassifyError::content(format!(
            "the {what} body names a property twice ({error}); Azure reads one of them and Airlock cannot know which, so send each property once"
        ))),
        Err(error) => Err(ClassifyError::content(format!(
            "the {what} body is not valid JSON ({error}); Airlock must read it to authorize what it carries, so send plain JSON without comments or trailing commas"
        ))),
    }
}

/// The value of `key`, compared ignoring ASCII case; `None` when absent or `null`.
pub(crate) fn get<'v>(
    object: &'v Map<String, Value>,
    key: &str,
) -> Result<Option<&'v Value>, ClassifyError> {
    let mut found = None;
    for (name, value) in object {
        if !name.eq_ignore_ascii_case(key) {
            continue;
        }
        if found.is_some() {
            return Err(ClassifyError::content(format!(
                "the property '{key}' appears more than once in different letter case; Azure reads property names case-insensitively, so send it once"
            )));
        }
        found = Some(value);
    }
    Ok(found.filter(|value| !value.is_null()))
}

/// The string value of `key`; a value of another type is an error.
pub(crate) fn get_str<'v>(
    object: &'v Map<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, ClassifyError> {
    match get(object, key)? {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(ClassifyError::content(format!(
            "the property '{key}' must be a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_null_is_absent() {
        let Value::Object(map) = json!({"Mode": "Complete", "templateLink": null}) else {
            unreachable!()
        };
        assert_eq!(get_str(&map, "mode").unwrap(), Some("Complete"));
        assert_eq!(get(&map, "templatelink").unwrap(), None);
    }

    #[test]
    fn a_key_in_two_cases_is_ambiguous() {
        let Value::Object(map) = json!({"mode": "Incremental", "MODE": "Complete"}) else {
            unreachable!()
        };
        assert!(get(&map, "mode").is_err());
    }
}
