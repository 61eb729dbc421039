//! What every otter service exposes to its operators: Prometheus metrics on
//! `/metrics`, liveness on `/healthz`, readiness on `/readyz`, and its log format.
//!
//! Invariants:
//! - `/healthz` answers 200 while the process's runtime answers at all; `/readyz`
//!   answers 200 only while the service says it does its job ([`Health::ready`]),
//!   else 503 with the reason it gave, so a probe failure explains itself.
//! - The endpoint never blocks the service: it only reads the registry and two fields.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};

/// Whether a service is ready, and why not.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    reason: Mutex<String>,
}

impl Health {
    pub fn new() -> Arc<Health> {
        let h = Health::default();
        h.not_ready("starting");
        Arc::new(h)
    }

    pub fn ready(&self, what: &str) {
        self.set(true, what);
    }

    pub fn not_ready(&self, why: &str) {
        self.set(false, why);
    }

    fn set(&self, ready: bool, reason: &str) {
        if let Ok(mut r) = self.reason.lock() {
            if *r != reason {
                reason.clone_into(&mut r);
            }
        }
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn reason(&self) -> String {
        self.reason.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Binds `listen` (`host:port`; port 0 picks a free one) and serves the endpoints in
/// the background. Returns the bound address.
pub async fn serve(
    listen: &str,
    registry: Registry,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let metrics = move || {
        let registry = registry.clone();
        async move {
            let mut buf = Vec::new();
            match TextEncoder::new().encode(&registry.gather(), &mut buf) {
                Ok(()) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
                    buf,
                )
                    .into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
    };
    let ready = {
        let health = health.clone();
        move || {
            let health = health.clone();
            async move {
                let status = if health.is_ready() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, format!("{}\n", health.reason()))
            }
        }
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped; restart the service to get it back");
        }
    });
    Ok(addr)
}

/// [`serve`], logging where, for a service's start-up; the error names the address.
pub async fn expose(
    listen: &str,
    registry: &Registry,
    health: &Arc<Health>,
) -> Result<String, String> {
    let addr = serve(listen, registry.clone(), health.clone())
        .await
        .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))?;
    tracing::info!("metrics on http://{addr}/metrics, health on /healthz and /readyz");
    Ok(addr.to_string())
}

/// Logs to stderr: `RUST_LOG` filters (default `info`); `OTTER_LOG_FORMAT=json` gives
/// one JSON object per line; colours only on a terminal.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("OTTER_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        let code = out[9..12].parse().expect("status code");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (code, body)
    }

    #[tokio::test]
    async fn metrics_health_and_readiness_are_served() {
        let registry = Registry::new();
        let c = prometheus::IntCounter::new("otter_test_things_total", "things").expect("counter");
        registry.register(Box::new(c.clone())).expect("register");
        c.inc_by(3);
        let health = Health::new();
        let addr = serve("127.0.0.1:0", registry, health.clone())
            .await
            .expect("binds");
        let (code, body) = get(addr, "/metrics").await;
        assert_eq!(code, 200);
        assert!(body.contains("otter_test_things_total 3"), "{body}");
        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (code, body) = get(addr, "/readyz").await;
        assert_eq!((code, body.trim()), (503, "starting"));
        health.ready("capturing");
        assert_eq!(get(addr, "/readyz").await, (200, "capturing\n".into()));
        assert_eq!(get(addr, "/nope").await.0, 404);
    }
}
