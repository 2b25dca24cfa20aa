//! [`JsonBody`]: a JSON response written by serde straight into the response bytes and
//! documented with the type's OpenAPI schema.
//!
//! poem-openapi's `Json<T>` answers by first building a `serde_json::Value` tree through
//! `ToJSON` (a map per object, an allocation per key and string) and then writing the tree;
//! under GET and list load that tree was most of the API's CPU. Every view derives both
//! `poem_openapi::Object` (the schema, and `ToJSON` where a view is stored as JSON) and
//! `serde::Serialize` (the bytes sent); `views::tests` checks the two agree for every view.

use poem::http::StatusCode;
use poem::http::header::CONTENT_TYPE;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

/// A `200 application/json` response serialised with serde.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + Serialize + Send> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        // Most views are a few hundred bytes; a page of 50 stores is ~40 KiB.
        let mut bytes = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut bytes, &self.0) {
            Ok(()) => Response::builder()
                .header(CONTENT_TYPE, <Self as Payload>::CONTENT_TYPE)
                .body(bytes),
            // Views have string keys only and no fallible `Serialize`; kept total anyway.
            Err(e) => crate::problem::ApiError::internal(&e.to_string()).into_response(),
        }
    }
}

impl<T: Type + Serialize + Send> ApiResponse for JsonBody<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(StatusCode::OK.as_u16()),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: <Self as Payload>::CONTENT_TYPE,
                    schema: <Self as Payload>::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
