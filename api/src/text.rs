//! [`Text`]: a JSON string that must *be* a string. poem-openapi's `String` also accepts
//! numbers and booleans (`{"name": false}` would name a store "false"); request bodies use
//! `Text` so a value of the wrong type is a 400 like any other malformed body. NUL characters
//! (which Postgres text cannot hold) are refused too.

use std::borrow::Cow;
use std::ops::Deref;

use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

/// A string field of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        String::name()
    }
    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }
    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }
    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) if s.contains('\0') => {
                Err(ParseError::custom("strings may not contain NUL characters"))
            }
            Some(Value::String(s)) => Ok(Text(s)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_strings_parse() {
        assert_eq!(
            Text::parse_from_json(Some(Value::from("a"))).unwrap(),
            Text("a".into())
        );
        for v in [
            Value::from(7),
            Value::from(false),
            Value::Null,
            serde_json::json!([]),
            Value::from("a\0b"),
        ] {
            assert!(Text::parse_from_json(Some(v)).is_err());
        }
    }
}
