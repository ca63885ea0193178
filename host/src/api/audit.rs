//! The audit trail: a middleware that records every state-changing request
//! (allowed, denied or refused) with who made it, from where, what it did
//! and how it ended; and the route that reads the log a page at a time.
//!
//! What an entry holds is bounded: every field is cut to a few hundred
//! characters (a comment to [`COMMENT_CHARS`]), and nothing of a request's
//! body is kept but the comment a handler notes once the caller is
//! admitted. The store keeps the log within its retention, so a flood of
//! refused requests costs a bounded amount of disk.

use std::net::SocketAddr;

use std::convert::Infallible;

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::HeaderMap;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ErrorBody, ErrorCode};
use super::{ApiError, AppState, Caller, auth};
use crate::store::{self, AuditEntry, AuditFilter, Role};

/// The most of a comment kept in an entry; the rest is cut, with a mark.
const COMMENT_CHARS: usize = 2000;

/// The most of the path kept in an entry.
const TARGET_CHARS: usize = 512;

/// The most of any other field kept in an entry (names, roles, the
/// action, addresses, release ids).
const FIELD_CHARS: usize = 128;

/// What a handler adds to its request's audit entry, attached to its answer
/// (`(AuditNote, Json(dto))`). The middleware records it with what it sees
/// of every request itself, and reads neither the request's body nor the
/// answer's.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    /// The release concerned, when the path does not name it.
    pub release: Option<String>,
    /// The comment given, with what is always called out (an emergency
    /// release, a freeze override) before it.
    pub comment: Option<String>,
    /// The token a sign-in opened its session with, as name and role: the
    /// request itself presents the token in its body, never in the log.
    pub signed_in: Option<(String, String)>,
}

impl AuditNote {
    /// A note carrying a comment (none when it is empty), prefixed by the
    /// labels that apply.
    pub fn comment(comment: &str, labels: &[&str]) -> AuditNote {
        let mut parts: Vec<&str> = labels.to_vec();
        if !comment.is_empty() {
            parts.push(comment);
        }
        AuditNote {
            comment: (!parts.is_empty()).then(|| cap(&parts.join(": "), COMMENT_CHARS)),
            ..AuditNote::default()
        }
    }

    /// This note, naming a release.
    pub fn with_release(self, release: &str) -> AuditNote {
        AuditNote {
            release: Some(release.to_string()),
            ..self
        }
    }
}

impl IntoResponseParts for AuditNote {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Infallible> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

/// `text`, cut after `chars` characters with a mark saying so.
fn cap(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}… (cut)", &text[..at]),
        None => text.to_string(),
    }
}

/// Who a request says it is: its name and role as the log shows them, and
/// whether its credential is valid (a token neither unknown nor revoked).
fn identify(state: &AppState, headers: &HeaderMap) -> (String, Option<String>, bool) {
    match auth::identify(state, headers) {
        auth::Identity::Known(record) => (
            record.name,
            Some(record.role.as_str().to_string()),
            !record.revoked,
        ),
        auth::Identity::Unknown => ("unknown-token".to_string(), None, false),
        auth::Identity::Anonymous => ("anonymous".to_string(), None, false),
    }
}

/// How a request ended, for the log: `allowed` when it succeeded;
/// `denied` when it was not let in (no valid token, not the role, no such
/// route or method); `refused` when an admitted caller's request was
/// turned down by the route's own rules.
fn outcome(status: u16, authenticated: bool, routed: bool) -> &'static str {
    match status {
        s if s < 400 => "allowed",
        401 | 403 | 405 => "denied",
        _ if !authenticated || !routed => "denied",
        _ => "refused",
    }
}

fn release_in(path: &str) -> Option<String> {
    path.strip_prefix("/api/v1/releases/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// Records every request that is not a read, and answers it only once its
/// change and its entry are durable.
///
/// This is the API's one durability rule: whatever a handler wrote, and
/// the entry appended here after it, are made durable by one group commit
/// ([`crate::store::Store::sync`]) before the answer leaves, so an
/// acknowledged change survives a crash whichever route made it.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>();
    let routed = route.is_some();
    let action = format!(
        "{} {}",
        request.method(),
        route.map_or("(no route)", |p| p.as_str())
    );
    let target = request.uri().path().to_string();
    let from = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let (actor, role, authenticated) = identify(&state, request.headers());
    let response = next.run(request).await;
    let status = response.status();
    let note = response
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let (actor, role, authenticated) = match note.signed_in {
        Some((name, role)) => (name, Some(role), true),
        None => (actor, role, authenticated),
    };
    let capped = |text: &str| cap(text, FIELD_CHARS);
    let entry = AuditEntry {
        seq: 0,
        at_ms: state.engine.clock().now_ms(),
        actor: capped(&actor),
        role: role.as_deref().map(capped),
        action: capped(&action),
        release: release_in(&target).or(note.release).as_deref().map(capped),
        target: cap(&target, TARGET_CHARS),
        from: from.as_deref().map(capped),
        outcome: outcome(status.as_u16(), authenticated, routed).into(),
        status: status.as_u16(),
        code: response
            .extensions()
            .get::<ErrorCode>()
            .map(|c| c.0.to_string()),
        comment: note.comment.as_deref().map(|c| cap(c, COMMENT_CHARS)),
    };
    match append_durably(&state, &entry).await {
        Ok(()) => response,
        Err(e) => ApiError::internal(
            "The change or its audit entry could not be made durable",
            &e,
        )
        .into_response(),
    }
}

async fn append_durably(state: &AppState, entry: &AuditEntry) -> Result<(), store::Error> {
    state.store.append_audit(entry)?;
    if state.answer_before_durable {
        return Ok(());
    }
    state.store.sync().await
}

/// Filters of `GET /api/v1/audit`.
/// The latest time a query may name: 2^53 - 1 ms, the largest integer
/// every JSON reader holds exactly.
const MAX_TIME_MS: u64 = super::rules::MAX_EXACT_INTEGER;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this release.
    release: Option<String>,
    /// Only entries made with this token name.
    actor: Option<String>,
    /// Only entries at or after this time (milliseconds since the epoch).
    #[param(maximum = 9_007_199_254_740_991u64)]
    since_ms: Option<u64>,
    /// Only entries at or before this time (milliseconds since the epoch).
    #[param(maximum = 9_007_199_254_740_991u64)]
    until_ms: Option<u64>,
    /// Only entries before this sequence number: the `next_before` of the
    /// previous page.
    #[param(maximum = 9_007_199_254_740_991u64)]
    before: Option<u64>,
    /// At most this many entries (100 by default); fewer than 1 counts as
    /// 1, more than 1,000 as 1,000.
    #[param(maximum = 9_007_199_254_740_991u64)]
    limit: Option<u64>,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPageDto {
    /// The entries of this page, newest first.
    pub entries: Vec<AuditEntryDto>,
    /// The `before` of the next, older page; absent (null) when nothing
    /// older is left. A page may hold fewer than `limit` entries and still
    /// have a next one: one page reads at most 10,000 entries, matching or
    /// not.
    pub next_before: Option<u64>,
}

/// One audit entry as served.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryDto {
    pub seq: u64,
    pub at_ms: u64,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub target: String,
    pub from: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub code: Option<String>,
    pub release: Option<String>,
    pub comment: Option<String>,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(e: AuditEntry) -> AuditEntryDto {
        AuditEntryDto {
            seq: e.seq,
            at_ms: e.at_ms,
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target,
            from: e.from,
            outcome: e.outcome,
            status: e.status,
            code: e.code,
            release: e.release,
            comment: e.comment,
        }
    }
}

/// Reads the audit log, a page at a time.
///
/// `GET /api/v1/audit?release=&actor=&since_ms=&until_ms=&before=&limit=`:
/// newest first, at most `limit` entries (1 to 1,000, default 100) older
/// than `before`; the answer's `next_before` is the `before` of the next
/// page. Entries appended meanwhile never shift a page: following
/// `next_before` reads every entry there was exactly once. Admins and
/// release managers.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the matching entries, newest first, with the cursor of the next.", body = AuditPageDto),
        (status = 400, description = "A bad query.", body = ErrorBody),
        (status = 401, description = "No valid token.", body = ErrorBody),
        (status = 403, description = "Neither an admin nor a release manager.", body = ErrorBody),
        (status = 500, description = "An internal failure.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPageDto>, ApiError> {
    caller.require(&[Role::ReleaseManager])?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("request.bad_query", e.body_text()))?;
    // Times past 2^53 ms (the year 285,000) are refused as the document
    // says, so that every JSON client reads the bound exactly.
    if q.since_ms
        .into_iter()
        .chain(q.until_ms)
        .chain(q.before)
        .chain(q.limit)
        .any(|t| t > MAX_TIME_MS)
    {
        return Err(ApiError::bad_request(
            "request.bad_query",
            format!("since_ms, until_ms, before, limit: at most {MAX_TIME_MS}"),
        ));
    }
    let filter = AuditFilter {
        release: q.release,
        actor: q.actor,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        before: q.before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000) as usize,
    };
    let page = state.store.audit(&filter)?;
    Ok(Json(AuditPageDto {
        entries: page.entries.into_iter().map(Into::into).collect(),
        next_before: page.next_before,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_with_a_mark() {
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("abcd", 3), "abc… (cut)");
        assert_eq!(cap(&"é".repeat(10), 2), "éé… (cut)");
    }

    #[test]
    fn who_was_not_let_in_is_denied() {
        assert_eq!(outcome(200, true, true), "allowed");
        assert_eq!(outcome(401, false, true), "denied");
        assert_eq!(outcome(403, true, true), "denied");
        assert_eq!(outcome(404, false, true), "denied", "no token");
        assert_eq!(outcome(400, false, true), "denied", "no token");
        assert_eq!(outcome(404, true, false), "denied", "no route");
        assert_eq!(outcome(405, true, true), "denied");
        assert_eq!(outcome(404, true, true), "refused", "no such release");
        assert_eq!(outcome(409, true, true), "refused");
    }
}
