//! Reading request bodies the way ARM reads them: property names compared
//! case-insensitively, `null` the same as absent.
//!
//! ARM accepts `{"Properties": {"Mode": "complete"}}` as readily as the
//! documented spelling, so a classifier that looked up exact keys would miss
//! what Azure acts on. A name that appears twice in different cases is
//! refused: Airlock cannot know which one Azure would take.

use serde_json::{Map, Value};

use crate::ClassifyError;

/// Parses a body that must be a JSON object; `what` names it in errors.
pub(crate) fn object(body: &[u8], what: &str) -> Result<Map<String, Value>, ClassifyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ClassifyError::content(format!(
            "the {what} body is empty; send the JSON body Azure documents for this request"
        )));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ClassifyError::content(format!(
            "the {what} body must be a JSON object; send the JSON body Azure documents for this request"
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
