//! Starting and stopping one apply process.
//!
//! Start-up: the target is checked and its bookkeeping tables created (retried while the
//! target is unreachable, refused for good on a bad setting), then the consumer thread
//! joins the group. Shutdown (SIGINT/SIGTERM): fetching stops, workers finish the batch
//! in hand, the group is left; whatever was committed to the target stays the truth.

use std::sync::Arc;
use std::time::Duration;

use otter_core::ErrorClass;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::consume;
use crate::error::{chain, ServiceError};
use crate::mapping::Mapping;
use crate::metrics::Metrics;
use crate::target::Target;
use crate::worker::Shared;

/// What a managed apply shares with its control-plane link.
#[derive(Clone, Default)]
pub struct Hooks {
    pub errors: otter_coord::control::ErrorSink,
    pub held: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// Source time (µs) of the latest committed heartbeat (see `crate::lag`).
    pub beats: Arc<std::sync::atomic::AtomicI64>,
    /// Set by the group watchdog (`managed::report`) when a partition of the pipeline
    /// has been held by no live apply instance for too long; the consumer leaves and
    /// joins the group again.
    pub rejoin: Arc<std::sync::atomic::AtomicBool>,
    /// Every partition of the pipeline's topics, `topic[partition]`, as the broker
    /// last listed them (refreshed by the consumer thread every few seconds).
    pub listed: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
}

pub async fn run(
    cfg: Config,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    run_with(cfg, metrics, shutdown, Hooks::default()).await
}

/// [`run`], reporting errors and held partitions through `hooks`.
pub async fn run_with(
    cfg: Config,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
    hooks: Hooks,
) -> Result<(), ServiceError> {
    let mapping = Mapping::new(&cfg.map).map_err(|errors| {
        crate::config::ConfigError::Invalid(errors.iter().map(ToString::to_string).collect())
    })?;
    let target = Target::new(
        &cfg.target.url,
        &cfg.pipeline,
        &cfg.target.state_db,
        cfg.target.pool_size,
        Duration::from_millis(cfg.target.connect_timeout_ms),
    )?;
    let mut delay = Duration::from_millis(cfg.apply.retry_ms.max(1));
    loop {
        let ready = if cfg.dry_run {
            target.conn().await.map(drop)
        } else {
            target
                .prepare(&cfg.target.state_db, cfg.apply.max_statement_bytes)
                .await
        };
        match ready {
            Ok(()) => break,
            Err(e) if e.class() == ErrorClass::Transient => {
                metrics
                    .health
                    .not_ready(&format!("target not ready ({})", e.code()));
                warn!(error = %chain(&e), "target not ready, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
    metrics.health.ready("applying");
    info!(pipeline = %cfg.pipeline, dry_run = cfg.dry_run, group = %cfg.group_id(), "apply starting");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared {
        pipeline: cfg.pipeline.clone(),
        target: target.clone(),
        mapping,
        tuning: cfg.apply.clone(),
        dry_run: cfg.dry_run,
        metrics,
        shutdown: shutdown.clone(),
        done: done_tx,
        errors: hooks.errors,
        held: hooks.held,
        beats: hooks.beats,
        rejoin: hooks.rejoin,
        listed: hooks.listed,
        inflight: Default::default(),
    });
    let consumer = consume::consumer(&cfg, shared, tokio::runtime::Handle::current())?;
    let prefix = cfg.kafka.topic_prefix.clone();
    let (end_tx, end_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("otter-consumer".into())
        .spawn(move || {
            let r = consume::consume(consumer, &prefix, done_rx, shutdown);
            let _ = end_tx.send(r);
        })
        .map_err(|e| ServiceError::Thread(e.to_string()))?;
    let result = end_rx
        .await
        .unwrap_or_else(|_| Err(ServiceError::Thread("consumer thread panicked".into())));
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    target.disconnect().await;
    info!("apply stopped");
    result
}
