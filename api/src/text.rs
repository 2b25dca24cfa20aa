//! [`Text`]: a JSON string that must *be* a string. poem-openapi's `String` also accepts
//! numbers and booleans (`{"name": false}` would name a store "false"); request bodies use
//! `Text` so a value of the wrong type is a 400 like any other malformed body. NUL characters
//! (which Postgres text cannot hold) are refused too.
//!
//! [`ExpiryHours`]: an optional integer field that may be absent but not `null` (an
//! `Option<u32>` field takes `null` as absent, which the schema does not allow).

use std::borrow::Cow;
use std::ops::Deref;

use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

/// A string field of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

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

/// `expires_in_hours` of a token to mint: absent (the token never expires) or an integer
/// from 1 to 87,600. `null`, other types and other numbers are refused (400).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryHours(pub Option<u32>);

impl ExpiryHours {
    const MAX: u64 = 87_600;
}

impl Type for ExpiryHours {
    const IS_REQUIRED: bool = false;
    type RawValueType = u32;
    type RawElementValueType = u32;

    fn name() -> Cow<'static, str> {
        u32::name()
    }
    fn schema_ref() -> MetaSchemaRef {
        let mut schema = poem_openapi::registry::MetaSchema::new_with_format("integer", "uint32");
        schema.minimum = Some(1.0);
        schema.maximum = Some(Self::MAX as f64);
        MetaSchemaRef::Inline(Box::new(schema))
    }
    fn as_raw_value(&self) -> Option<&u32> {
        self.0.as_ref()
    }
    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a u32> + 'a> {
        Box::new(self.0.iter())
    }
}

impl ParseFromJSON for ExpiryHours {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None => Ok(ExpiryHours(None)),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(h) if (1..=Self::MAX).contains(&h) => Ok(ExpiryHours(Some(h as u32))),
                _ => Err(ParseError::custom("must be an integer from 1 to 87600")),
            },
            Some(other) => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for ExpiryHours {
    fn to_json(&self) -> Option<Value> {
        self.0.map(Value::from)
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

    #[test]
    fn expiry_hours_are_absent_or_an_integer_in_range_never_null() {
        assert_eq!(
            ExpiryHours::parse_from_json(None).unwrap(),
            ExpiryHours(None)
        );
        assert_eq!(
            ExpiryHours::parse_from_json(Some(Value::from(24))).unwrap(),
            ExpiryHours(Some(24))
        );
        for v in [
            Value::Null,
            Value::from(0),
            Value::from(87_601),
            Value::from(-1),
            Value::from(1.5),
            Value::from("24"),
        ] {
            assert!(
                ExpiryHours::parse_from_json(Some(v.clone())).is_err(),
                "{v}"
            );
        }
    }
}
