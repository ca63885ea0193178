//! The one JSON body extractor. Every route that takes a JSON document
//! reads it through [`JsonBody`], so a body that is not JSON, has the wrong
//! shape, is too large or is sent without its content type is refused with
//! the same `{code, message}` everywhere. The extractor never refuses by
//! itself: the handler reads the body after its role check, so a caller
//! without the role learns nothing about the body it sent.

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A request's JSON body, or what was wrong with it.
pub struct JsonBody<T>(Result<T, JsonRejection>);

impl<T> JsonBody<T> {
    /// The body, or its refusal.
    pub fn read(self) -> Result<T, ApiError> {
        self.0.map_err(refusal)
    }

    /// The body, or its refusal with `code` when it is JSON of the wrong
    /// shape (a missing or unknown field, a wrong type), so that a route
    /// names such a fault like its other validation errors.
    pub fn read_as(self, code: &'static str) -> Result<T, ApiError> {
        self.0.map_err(|e| match e {
            JsonRejection::JsonDataError(_) => ApiError::bad_request(code, e.body_text()),
            other => refusal(other),
        })
    }
}

impl<T: Default> JsonBody<T> {
    /// The body; an empty body sent without a content type is the default.
    pub fn read_or_default(self) -> Result<T, ApiError> {
        match self.0 {
            Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
            other => JsonBody(other).read(),
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Infallible> {
        Ok(JsonBody(
            Json::<T>::from_request(request, state)
                .await
                .map(|Json(v)| v),
        ))
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
