//! The web UI: static files from `ui/`, embedded in the binary so the one
//! binary is the whole product, served with a strict content security
//! policy. The pages are plain HTML, CSS and JavaScript that talk to the
//! same `/api/v1` as every other client.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// Declares the embedded files as `name => content type`.
macro_rules! files {
    ($($name:literal => $kind:literal,)*) => {
        const FILES: &[(&str, &str, &[u8])] = &[
            $(($name, $kind, include_bytes!(concat!("../../../ui/", $name))),)*
        ];
    };
}

files! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "lib.js" => "text/javascript; charset=utf-8",
    "releases.js" => "text/javascript; charset=utf-8",
    "release.js" => "text/javascript; charset=utf-8",
    "evidence.js" => "text/javascript; charset=utf-8",
    "trains.js" => "text/javascript; charset=utf-8",
    "plugins.js" => "text/javascript; charset=utf-8",
    "schedules.js" => "text/javascript; charset=utf-8",
    "audit.js" => "text/javascript; charset=utf-8",
    "board.js" => "text/javascript; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
}

/// Each file's entity tag, so a browser revalidates cheaply.
static TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(_, _, body)| format!("\"{}\"", &hex::encode(Sha256::digest(body))[..16]))
        .collect()
});

/// Pages run only our own scripts and styles and talk only to this daemon;
/// nothing is fetched from elsewhere, and no other site may frame them.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes: `/` and `/ui/{file}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move {
                serve(&file, &headers)
            }),
        )
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the UI has no file `{name}`"),
        )
        .into_response();
    };
    let (_, kind, body) = FILES[index];
    let tag = &TAGS[index];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(tag) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, tag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_pages_import_is_embedded() {
        // A page that imports a file the binary does not carry would break
        // only in a browser; catch it here.
        let names: Vec<&str> = FILES.iter().map(|(n, _, _)| *n).collect();
        for (name, _, body) in FILES {
            let text = String::from_utf8_lossy(body);
            for part in text.split("\"./").skip(1) {
                let Some(end) = part.find('"') else { continue };
                let imported = &part[..end];
                assert!(
                    names.contains(&imported),
                    "{name} refers to ./{imported}, which is not embedded"
                );
            }
        }
    }
}
