//! The audit log under load: unknown routes and wrong methods are audited
//! as denied, a flood of refused requests grows the log by a bounded
//! amount, retention keeps it within its age and size (oldest first), and
//! the paged API reads every entry exactly once.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::edge::{audit_page, flood};
use crate::support::releases::advance;
use crate::support::{Daemon, cli};

/// Every entry of the audit log, following the cursor.
async fn whole_audit(d: &Daemon, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let query = match before {
            Some(seq) => format!("limit={limit}&before={seq}"),
            None => format!("limit={limit}"),
        };
        let page = audit_page(d, &query).await;
        all.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_u64() {
            Some(next) => before = Some(next),
            None => return all,
        }
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn an_unknown_route_and_a_wrong_method_are_audited_as_denied() {
    let d = Daemon::start().await;
    let (status, body) = d.send(d.request(Method::POST, "/api/v1/nothing")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = d.send(d.request(Method::DELETE, "/api/v1/releases")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // Without a token, a refusal of any kind is a denial.
    let (status, _) = d
        .send(reqwest::Client::new().post(d.url("/api/v1/releases/%ff/approve")))
        .await;
    assert_eq!(status, 401);
    let (status, _) = d
        .send(reqwest::Client::new().put(d.url("/api/v1/nothing/here")))
        .await;
    assert_eq!(status, 404);

    let page = audit_page(&d, "limit=4").await;
    let seen: Vec<(&str, &str, &str, u64, &str)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("anonymous", "PUT (no route)", "denied", 404, "not_found"),
            (
                "anonymous",
                "POST /api/v1/releases/{id}/{action}",
                "denied",
                401,
                "auth.unauthorized"
            ),
            (
                "admin",
                "DELETE /api/v1/releases",
                "denied",
                405,
                "method_not_allowed"
            ),
            ("admin", "POST (no route)", "denied", 404, "not_found"),
        ],
        "{page:#}"
    );
}

/// Finding 2: a thousand refused approvals without a token, each with a
/// 60,000-character path, once grew the store by 190 MiB and made
/// `GET /api/v1/audit?limit=1000` a 108 MB answer. The limits are raised
/// here so that the requests reach the audit log at all (by default the
/// header block is refused first), and the entries are bounded anyway.
#[tokio::test]
async fn a_flood_of_refused_requests_with_long_paths_grows_the_audit_by_a_bounded_amount() {
    let d = Daemon::start_with_config(
        "[http]\nmax_header_bytes = 131072\nmax_uri_bytes = 131072\n\
         unauthenticated_per_minute = 1000000\n",
    )
    .await;
    let db = d.data.join("db");
    let before = dir_bytes(&db);
    let path = format!("/api/v1/releases/{}/approve", "x".repeat(60_000));
    let start = Instant::now();
    let statuses = flood(&d, 1000, 8, &path, &json!({})).await;
    let took = start.elapsed();
    assert_eq!(statuses, [(401, 1000)].into_iter().collect());
    let after_paths = dir_bytes(&db);
    // And large comments, which a refused request does not leave in the log.
    let comment = json!({"comment": "c".repeat(512 * 1024)});
    let statuses = flood(&d, 20, 4, "/api/v1/releases/r1/approve", &comment).await;
    assert_eq!(statuses, [(401, 20)].into_iter().collect());
    let after_comments = dir_bytes(&db);

    let answer = d
        .request(Method::GET, "/api/v1/audit?limit=5000")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&answer).unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1000, "the limit is capped at 1,000");
    assert!(page["next_before"].is_u64(), "and the rest is a page away");
    let largest = entries.iter().map(|e| e.to_string().len()).max().unwrap();
    for e in entries {
        let target = e["target"].as_str().unwrap();
        assert!(
            target.chars().count() <= 512 + " (cut)".len() + 1 && target.ends_with("… (cut)")
                || target == "/api/v1/releases/r1/approve",
            "{target}"
        );
        assert!(e["comment"].is_null(), "{e}");
        assert!(
            e["release"].as_str().unwrap().chars().count() <= 128 + 8,
            "{e}"
        );
        assert_eq!(e["outcome"], "denied");
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "finding 2: 1,000 refused approvals with 60,000-character paths in {took:.1?}: store grew \
         {:.2} MiB; 20 with 512 KiB comments: {:.2} MiB; largest entry {largest} bytes; \
         GET /api/v1/audit?limit=5000: {} entries, {} bytes",
        mib(after_paths.saturating_sub(before)),
        mib(after_comments.saturating_sub(after_paths)),
        entries.len(),
        answer.len()
    );
    assert!(largest < 1500, "{largest}");
    assert!(answer.len() < 2 * 1024 * 1024, "{}", answer.len());
    assert!(
        after_comments.saturating_sub(before) < 16 * 1024 * 1024,
        "the store grew by {:.1} MiB",
        mib(after_comments.saturating_sub(before))
    );
}

#[tokio::test]
async fn retention_keeps_the_audit_within_its_size_oldest_first() {
    let d = Daemon::start_with_config(
        "[http]\nunauthenticated_per_minute = 1000000\n[audit]\nmax_mib = 1\n",
    )
    .await;
    let path = format!("/api/v1/releases/{}/approve", "r".repeat(700));
    let statuses = flood(&d, 2000, 16, &path, &json!({})).await;
    assert_eq!(statuses, [(401, 2000)].into_iter().collect());
    let all = whole_audit(&d, 1000).await;
    let bytes: usize = all.iter().map(|e| e.to_string().len()).sum();
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    println!(
        "retention: {} of 2,000 entries kept, {bytes} bytes as served",
        all.len()
    );
    assert!(all.len() < 2000 && all.len() > 500, "{}", all.len());
    assert!(bytes <= 1024 * 1024, "{bytes}");
    // The newest are kept, without a gap: the oldest went first.
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    let newest = audit_page(&d, "limit=1").await;
    assert_eq!(newest["entries"][0]["seq"].as_u64(), Some(seqs[0]));
    assert!(*seqs.last().unwrap() > 1);
}

/// How many entries the newest page of the audit log holds.
async fn entries(d: &Daemon) -> usize {
    audit_page(d, "").await["entries"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn retention_removes_entries_older_than_its_age() {
    let d =
        Daemon::start_with_config("manual_clock_ms = 1800000000000\n[audit]\nmax_age_days = 1\n")
            .await;
    flood(&d, 3, 1, "/api/v1/releases/r1/approve", &json!({})).await;
    assert_eq!(entries(&d).await, 3);
    // Half a day on, they are kept.
    advance(&d, 12 * 3_600_000).await;
    assert_eq!(entries(&d).await, 4);
    // A day and a half on, the first three are a day and a half old.
    advance(&d, 24 * 3_600_000).await;
    let page = audit_page(&d, "").await;
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["POST /api/v1/clock", "POST /api/v1/clock"],
        "{page:#}"
    );
}

#[tokio::test]
async fn the_paged_audit_api_reads_every_entry_exactly_once() {
    let d = Daemon::start_with_config("[http]\nunauthenticated_per_minute = 1000000\n").await;
    flood(&d, 250, 8, "/api/v1/releases/r1/approve", &json!({})).await;
    let first = audit_page(&d, "limit=37").await;
    let top = first["entries"][0]["seq"].as_u64().unwrap();
    let mut seen: Vec<u64> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let mut next = first["next_before"].as_u64();
    // Entries appended while the pages are read do not shift them.
    let more = {
        let client = reqwest::Client::new();
        let url = d.url("/api/v1/releases/r2/approve");
        tokio::spawn(async move {
            for _ in 0..100 {
                client.post(&url).send().await.unwrap();
            }
        })
    };
    while let Some(before) = next {
        let page = audit_page(&d, &format!("limit=37&before={before}")).await;
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        next = page["next_before"].as_u64();
    }
    more.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, once each"
    );
    let everything: Vec<u64> = whole_audit(&d, 1000)
        .await
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .filter(|seq| *seq <= top)
        .collect();
    assert_eq!(seen, everything);
    assert_eq!(seen.len(), 250);

    // With a filter, and from the command line.
    let page = audit_page(&d, "release=r2&limit=30").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 30);
    let before = page["next_before"].as_u64().unwrap();
    let (ok, out, err) = cli(
        &d,
        &[
            "audit",
            "--release",
            "r2",
            "--limit",
            "5",
            "--before",
            &before.to_string(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("401 denied").count(), 5, "{out}");
    assert!(err.contains("--before"), "the next page is named: {err}");

    // The OpenAPI document says so.
    let doc: Value = reqwest::get(d.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = &doc["paths"]["/api/v1/audit"]["get"];
    assert!(
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "before"),
        "{list:#}"
    );
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AuditPageDto"
    );
    let page = &doc["components"]["schemas"]["AuditPageDto"]["properties"];
    assert!(
        page["entries"].is_object() && page["next_before"].is_object(),
        "{page:#}"
    );
}
