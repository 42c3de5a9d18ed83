//! The optional HTTP listener (`[http] listen`): `GET /healthz` (200 or 503, a short JSON body,
//! see [`crate::daemon::health::report`]) and `GET /metrics` (the Prometheus text format,
//! [`crate::daemon::telemetry`]). Both read the outbox from the database when asked, which is
//! also how they know the database answers.
//!
//! It listens on loopback unless told otherwise, has no TLS and no authentication: what it
//! shows is counts and timestamps, no mail content or addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::daemon::health::{self, Health};
use crate::daemon::telemetry::Telemetry;
use crate::oauth::TokenSource;
use crate::shutdown::Shutdown;
use crate::store::{OutboxHealth, Store};

/// How often the recorded processing times are folded into the histogram when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(30);

/// How long a request waits for the database: a monitor's scrape gives up after ~10 s, and a
/// database that takes longer than this to count the outbox is not healthy.
const DATABASE_PATIENCE: Duration = Duration::from_secs(5);

/// The listener's address could not be bound: folio refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: cannot listen on {addr}: {source}")]
pub struct BindError {
    /// Where the address came from (`FILE: http.listen`, `FOLIO_HTTP_LISTEN`, `--http-listen`).
    pub origin: String,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// What the routes read.
#[derive(Clone)]
struct Observed {
    health: Arc<Health>,
    telemetry: Arc<Telemetry>,
    store: Store,
    clock: Arc<dyn Clock>,
    /// The OAuth2 token source, when a login uses one.
    oauth: Option<Arc<TokenSource>>,
}

impl Observed {
    /// The token source's state, setting its metrics.
    fn oauth(&self) -> Option<crate::oauth::Status> {
        let status = self.oauth.as_ref()?.status();
        let t = &self.telemetry;
        t.oauth2_ok.absolute(status.successes);
        t.oauth2_errors.absolute(status.failures);
        t.oauth2_failing.set(if status.failing_since.is_some() {
            1.0
        } else {
            0.0
        });
        let left = status
            .expires_at
            .map_or(0, |e| (e - self.clock.now()).num_seconds().max(0));
        t.oauth2_token_expiry_seconds.set(left as f64);
        Some(status)
    }

    /// The outbox as the database says, setting the gauges read at scrape time.
    async fn outbox(&self) -> Result<OutboxHealth, String> {
        let outbox = match tokio::time::timeout(DATABASE_PATIENCE, self.store.outbox_health()).await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                DATABASE_PATIENCE.as_secs()
            )),
        };
        let t = &self.telemetry;
        match &outbox {
            Ok(o) => {
                t.database_up.set(1.0);
                t.outbox_depth.set(o.depth as f64);
                let age = o
                    .oldest_queued_at
                    .map_or(0, |at| (self.clock.now() - at).num_seconds().max(0));
                t.outbox_oldest_age_seconds.set(age as f64);
            }
            Err(_) => t.database_up.set(0.0),
        }
        outbox
    }
}

/// Binds `addr` (so a wrong address stops folio before it touches the mailbox); the returned
/// listener is served by [`serve`].
pub async fn bind(addr: SocketAddr, origin: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        origin: origin.to_string(),
        addr,
        source,
    })
}

/// Serves `/healthz` and `/metrics` on `listener` until `shutdown`.
pub fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    telemetry: Arc<Telemetry>,
    store: Store,
    clock: Arc<dyn Clock>,
    oauth: Option<Arc<TokenSource>>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    let state = Observed {
        health,
        telemetry: telemetry.clone(),
        store,
        clock,
        oauth,
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state);
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "http listener ready (/healthz, /metrics)"),
        Err(e) => tracing::warn!(error = %e, "http listener ready; its address is unknown"),
    }
    tokio::spawn(async move {
        let mut stop = shutdown.clone();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            stop.wait().await;
        });
        let upkeep = async {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                telemetry.upkeep();
            }
        };
        tokio::select! {
            r = server => if let Err(e) = r {
                tracing::error!(error = %e, "http listener failed");
            },
            _ = upkeep => {}
        }
        // The server returns when shutdown began; nothing else to wait for.
        shutdown.wait().await;
    })
}

async fn healthz(State(s): State<Observed>) -> Response {
    let outbox = s.outbox().await;
    let oauth = s.oauth();
    let (healthy, body) = health::report(&s.health.seen(), &outbox, oauth.as_ref(), s.clock.now());
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(s): State<Observed>) -> Response {
    // A database that does not answer shows as folio_database_up 0; the rest still renders.
    let _ = s.outbox().await;
    let _ = s.oauth();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.telemetry.render(),
    )
        .into_response()
}
