//! HTTP API (axum on a multi-thread Tokio runtime).

use std::net::SocketAddr;

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::stress::XorShift;

pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/plaintext", get(plaintext))
        .route("/api/hello", get(hello))
        .route("/api/alloc", get(alloc))
        .route("/api/handoff", get(handoff))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

#[derive(Debug, Default, Deserialize)]
pub struct HelloQuery {
    pub name: Option<String>,
    pub occupation: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HelloResponse {
    pub message: String,
}

fn non_empty(v: Option<&str>, default: &str) -> String {
    match v.map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => default.to_string(),
    }
}

pub fn hello_message(q: &HelloQuery) -> HelloResponse {
    let name = non_empty(q.name.as_deref(), "world");
    let occupation = non_empty(q.occupation.as_deref(), "developer");
    HelloResponse {
        message: format!("Hello, {name}! You are a {occupation}."),
    }
}

async fn hello(Query(q): Query<HelloQuery>) -> Json<HelloResponse> {
    Json(hello_message(&q))
}

#[derive(Debug, Deserialize)]
pub struct AllocQuery {
    pub n: Option<String>,
}

pub const ALLOC_DEFAULT: usize = 100;
pub const ALLOC_MAX: usize = 100_000;

/// Parse and clamp `n` (bad input falls back to the default).
pub fn alloc_n(q: &AllocQuery) -> usize {
    q.n.as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|n| n.clamp(1, ALLOC_MAX as i64) as usize)
        .unwrap_or(ALLOC_DEFAULT)
}

struct Record {
    id: u32,
    key: String,
    name: String,
    email: String,
    tags: Vec<String>,
    scores: Vec<u32>,
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "so", "ta", "vi", "xe", "zu", "an", "or", "el", "is",
];
const TAGS: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "musl", "glibc", "tokio", "axum", "heap", "arena",
];

fn word(rng: &mut XorShift, parts: usize) -> String {
    let mut s = String::new();
    for _ in 0..parts {
        s.push_str(SYLLABLES[rng.range(0, SYLLABLES.len() - 1)]);
    }
    s
}

/// Everything `/api/alloc` allocates before it serialises: the records and the JSON tree
/// built from them (~10 allocations per record).
pub struct AllocParts {
    doc: Value,
    // Never read: held so that it is freed with the parts, after `doc` (as it always was).
    _records: Vec<Record>,
}

impl AllocParts {
    /// The response body. Dropping `self` afterwards frees every allocation of the parts.
    pub fn render(&self) -> String {
        serde_json::to_string(&self.doc).expect("serialising a Value cannot fail")
    }
}

/// Build the allocation-heavy JSON document for `/api/alloc`: allocated, serialised and
/// freed on the calling thread.
pub fn alloc_document(n: usize) -> String {
    alloc_parts(n).render()
}

/// Make the allocations of the `/api/alloc` document (see [`AllocParts`]).
pub fn alloc_parts(n: usize) -> AllocParts {
    let seed = (n as u64) ^ 0x5EED_0000_0000_0000;
    let mut rng = XorShift::new(seed);
    let mut records: Vec<Record> = (0..n)
        .map(|i| {
            let name = format!("{} {}", word(&mut rng, 2), word(&mut rng, 3));
            let key = format!("{}-{:06}", word(&mut rng, 3), rng.range(0, 999_999));
            let email = format!("{}@{}.example", word(&mut rng, 2), word(&mut rng, 2));
            let tags = (0..rng.range(1, 4))
                .map(|_| TAGS[rng.range(0, TAGS.len() - 1)].to_string())
                .collect();
            let scores = (0..rng.range(4, 12))
                .map(|_| (rng.next_u64() % 1000) as u32)
                .collect();
            Record {
                id: i as u32,
                key,
                name,
                email,
                tags,
                scores,
            }
        })
        .collect();
    records.sort_by(|a, b| a.key.cmp(&b.key).then(a.id.cmp(&b.id)));

    let mut checksum: u64 = 0;
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            let sum: u64 = r.scores.iter().map(|&s| u64::from(s)).sum();
            checksum = checksum.wrapping_mul(31).wrapping_add(sum);
            json!({
                "id": r.id,
                "key": r.key,
                "name": r.name,
                "email": r.email,
                "tags": r.tags,
                "scores": r.scores,
                "total": sum,
            })
        })
        .collect();
    let doc = json!({
        "n": n,
        "seed": seed,
        "checksum": checksum,
        "items": items,
    });
    AllocParts {
        doc,
        _records: records,
    }
}

async fn alloc(Query(q): Query<AllocQuery>) -> impl IntoResponse {
    let body = alloc_document(alloc_n(&q));
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// `/api/handoff?n=`: the `/api/alloc` document, its allocations made on a thread of Tokio's
/// blocking pool and freed here, on the request's worker thread: ~1000 cross-thread frees per
/// request (a remote free for allocators with per-thread heaps, arena traffic for glibc). The
/// body is the same as `/api/alloc`'s.
async fn handoff(Query(q): Query<AllocQuery>) -> Response {
    let n = alloc_n(&q);
    // Not tokio::spawn: a task spawned from a worker tends to run on that same worker.
    match tokio::task::spawn_blocking(move || alloc_parts(n)).await {
        Ok(parts) => {
            let body = parts.render();
            drop(parts); // the cross-thread frees
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("handoff failed: {e}\n"),
        )
            .into_response(),
    }
}

/// Resolves on SIGTERM or SIGINT (handled explicitly: we may be PID 1).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

/// Exit code used when the listen address cannot be bound.
pub const EXIT_BIND: i32 = 3;

pub fn serve(addr: SocketAddr, workers: Option<usize>) -> i32 {
    use std::io::Write;

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(w) = workers {
        builder.worker_threads(w.max(1));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rust_sample: failed to start runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rust_sample: cannot bind {addr}: {e}");
                return EXIT_BIND;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {local}");
            let _ = out.flush();
        }
        let result = axum::serve(listener, router())
            .with_graceful_shutdown(shutdown_signal())
            .await;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "shutdown");
            let _ = out.flush();
        }
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rust_sample: server error: {e}");
                1
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_defaults() {
        let r = hello_message(&HelloQuery::default());
        assert_eq!(r.message, "Hello, world! You are a developer.");
        let r = hello_message(&HelloQuery {
            name: Some("Ada".into()),
            occupation: Some("  ".into()),
        });
        assert_eq!(r.message, "Hello, Ada! You are a developer.");
        let r = hello_message(&HelloQuery {
            name: Some("Ada".into()),
            occupation: Some("mathematician".into()),
        });
        assert_eq!(r.message, "Hello, Ada! You are a mathematician.");
    }

    #[test]
    fn alloc_n_defaults_and_clamps() {
        let q = |s: Option<&str>| AllocQuery {
            n: s.map(String::from),
        };
        assert_eq!(alloc_n(&q(None)), 100);
        assert_eq!(alloc_n(&q(Some("abc"))), 100);
        assert_eq!(alloc_n(&q(Some("0"))), 1);
        assert_eq!(alloc_n(&q(Some("-5"))), 1);
        assert_eq!(alloc_n(&q(Some("7"))), 7);
        assert_eq!(alloc_n(&q(Some("999999999"))), ALLOC_MAX);
    }

    #[test]
    fn alloc_document_is_deterministic_sorted_and_sized() {
        let a = alloc_document(100);
        assert_eq!(a, alloc_document(100));
        assert!(a.len() > 4096, "document too small: {}", a.len());
        let v: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["n"], 100);
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), 100);
        let keys: Vec<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        assert_ne!(a, alloc_document(101));
    }

    #[tokio::test]
    async fn handoff_serves_the_alloc_document() {
        let q = |n: &str| AllocQuery {
            n: Some(n.to_string()),
        };
        let resp = handoff(Query(q("100"))).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body, alloc_document(100).as_bytes());
    }
}
