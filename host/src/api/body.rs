//! The one JSON body extractor. Every route that takes a JSON document
//! reads it through [`JsonBody`], so a body that is not JSON, has the wrong
//! shape, is too large or is sent without its content type is refused with
//! the same `{code, message}` everywhere. The extractor never refuses by
//! itself: the handler reads the body after its role check, so a caller
//! without the role learns nothing about the body it sent.
//!
//! A number written with a zero fraction (`3.0`) is read as the integer it
//! names, as JSON Schema reads it: the OpenAPI document calls such fields
//! integers, and a client (or a fuzzer) that follows the document may
//! write them either way.

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use super::ApiError;

/// A request's JSON body, or what was wrong with it.
pub struct JsonBody<T>(Result<T, Refusal>);

/// Why a body could not be read: it was not a JSON document, or the
/// document does not have the shape the route reads.
enum Refusal {
    Unread(JsonRejection),
    /// The field at fault and what is wrong with it, such as
    /// `flow_version: invalid type: string "a", expected u32`.
    Shape(String),
}

impl<T> JsonBody<T> {
    /// The body, or its refusal.
    pub fn read(self) -> Result<T, ApiError> {
        self.0.map_err(|e| match e {
            Refusal::Unread(e) => refusal(e),
            Refusal::Shape(m) => ApiError::bad_request("request.bad_json", m),
        })
    }

    /// The body, or its refusal with `code` when it is JSON of the wrong
    /// shape (a missing or unknown field, a wrong type), so that a route
    /// names such a fault like its other validation errors.
    pub fn read_as(self, code: &'static str) -> Result<T, ApiError> {
        self.0.map_err(|e| match e {
            Refusal::Unread(e) => refusal(e),
            Refusal::Shape(m) => ApiError::bad_request(code, m),
        })
    }
}

impl<T: Default> JsonBody<T> {
    /// The body; an empty body sent without a content type is the default.
    pub fn read_or_default(self) -> Result<T, ApiError> {
        match self.0 {
            Err(Refusal::Unread(JsonRejection::MissingJsonContentType(_))) => Ok(T::default()),
            other => JsonBody(other).read(),
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Infallible> {
        let body = match Json::<Value>::from_request(request, state).await {
            Ok(Json(value)) => shaped(whole_numbers(value)),
            Err(e) => Err(Refusal::Unread(e)),
        };
        Ok(JsonBody(body))
    }
}

/// The document read as `T`, or the path of the field at fault.
fn shaped<T: DeserializeOwned>(value: Value) -> Result<T, Refusal> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.into_inner();
        Refusal::Shape(if path == "." {
            format!("Failed to deserialize the JSON body into the target type: {problem}")
        } else {
            format!("Failed to deserialize the JSON body into the target type: {path}: {problem}")
        })
    })
}

/// Every number with a zero fraction that fits a 64-bit integer, as that
/// integer. Fields typed as floating point read integers as well, so only
/// fields typed as integers see a difference.
fn whole_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::Number(whole(n)),
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, whole_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A number with a zero fraction as an integer, when one holds it exactly.
fn whole(n: Number) -> Number {
    // 2^64 and -2^63, both exact as f64.
    const U64_END: f64 = 18_446_744_073_709_551_616.0;
    const I64_START: f64 = -9_223_372_036_854_775_808.0;
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && (0.0..U64_END).contains(&f) => {
            Number::from(f as u64)
        }
        Some(f) if n.is_f64() && f.fract() == 0.0 && (I64_START..0.0).contains(&f) => {
            Number::from(f as i64)
        }
        _ => n,
    }
}

/// A JSON body that could not be read, as our error shape.
pub(super) fn refusal(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.bad_json",
            e.body_text(),
        ),
        // Too large is the same refusal, with the same code, on every route.
        JsonRejection::BytesRejection(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                e.body_text(),
            )
        }
        JsonRejection::BytesRejection(_) => {
            ApiError::bad_request("request.bad_body", e.body_text())
        }
        _ => ApiError::bad_request("request.bad_json", e.body_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_integers_and_fractions_stay() {
        let doc = serde_json::json!({"a": 3.0, "b": [-2.0, 1.5], "c": 1e300, "d": 7});
        assert_eq!(
            whole_numbers(doc),
            serde_json::json!({"a": 3, "b": [-2, 1.5], "c": 1e300, "d": 7})
        );
    }

    #[test]
    fn a_wrong_shape_names_its_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            n: Vec<u32>,
        }
        let Err(Refusal::Shape(m)) = shaped::<Body>(serde_json::json!({"n": [1, 2.5]})) else {
            panic!("a fraction is not a u32");
        };
        assert!(
            m.contains("n[1]: invalid type: floating point `2.5`"),
            "{m}"
        );
        assert!(shaped::<Body>(whole_numbers(serde_json::json!({"n": [1, 2.0]}))).is_ok());
    }
}
