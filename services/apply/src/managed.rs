//! An apply process that takes its pipeline from ZooKeeper (`otter-apply serve`).
//!
//! Every instance registers under `/nodes` (with the partitions it holds) and joins the
//! pipeline's consumer group; the group shares the partitions out. The process follows
//! the definition and desired state: pausing or stopping ends the run after the batch in
//! hand is committed (the group is left cleanly); resuming or a definition change that
//! alters apply's configuration (mapping, batch sizes, error policy) starts a new run
//! from the positions stored in the target, i.e. at a clean batch boundary.
//!
//! Invariant: apply's correctness never depends on ZooKeeper (positions live in the
//! target), so while ZooKeeper is unreachable a running apply keeps applying with the
//! last definition it read, and says so.

use std::time::Duration;

use otter_coord::control::{Control, View};
use otter_coord::topology::Instance;
use otter_coord::ZkSettings;
use otter_core::ErrorClass;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::error::{chain, ServiceError};
use crate::metrics::Metrics;
use crate::run::{run_with, Hooks};

/// Serves `me.pipeline` until `shutdown` turns true or ZooKeeper refuses this process.
pub async fn serve(
    settings: ZkSettings,
    me: Instance,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let (pipeline, instance) = (me.pipeline.clone(), me.instance.clone());
    let (pipeline, instance) = (pipeline.as_str(), instance.as_str());
    let control = Control::start(settings, me)
        .await
        .map_err(|e| ServiceError::Control(chain(&e)))?;
    info!(pipeline, instance, "apply registered");
    let hooks = Hooks {
        errors: control.errors(),
        held: Default::default(),
        beats: Default::default(),
        rejoin: Default::default(),
        listed: Default::default(),
    };
    let lag_source = std::sync::Arc::new(std::sync::Mutex::new(None));
    let lag = tokio::spawn(crate::lag::run(
        hooks.beats.clone(),
        lag_source.clone(),
        metrics.clone(),
        pipeline.to_owned(),
    ));
    let reporter = tokio::spawn(report(
        metrics.clone(),
        pipeline.to_owned(),
        hooks.clone(),
        control.reporter(),
        control.session(),
    ));
    let mut view = control.view();
    let mut delay = Duration::from_millis(500);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let v = view.borrow_and_update().clone();
        let Some(spec) = v.running() else {
            let state = match (&v.spec, v.desired) {
                (None, _) => "waiting: pipeline not defined",
                (_, Some(d)) => d.as_str(),
                (_, None) => "waiting: no state",
            };
            control.report(|i| i.status = state.into());
            metrics.health.ready(state);
            info!(pipeline, state, "pipeline not running: apply idle");
            tokio::select! {
                _ = view.changed() => continue,
                _ = shutdown.changed() => continue,
            }
        };
        let cfg = match Config::from_spec(spec) {
            Ok(c) => c,
            Err(e) => {
                error!(pipeline, error = %chain(&e), "the pipeline's definition is not usable on this machine; fix it with `otterctl pipeline edit` (or this machine's credentials)");
                control.report(|i| i.status = "waiting: invalid definition".into());
                metrics
                    .health
                    .not_ready("the pipeline definition is not usable here");
                hooks
                    .errors
                    .report("config", ErrorClass::Permanent, chain(&e));
                tokio::select! {
                    _ = view.changed() => continue,
                    _ = shutdown.changed() => continue,
                }
            }
        };
        if let Ok(mut s) = lag_source.lock() {
            s.clone_from(&cfg.source_url);
        }
        control.report(|i| i.status = "applying".into());
        let (stop_tx, stop_rx) = watch::channel(false);
        let trigger = {
            let mut view = view.clone();
            let mut shutdown = shutdown.clone();
            let cfg = same(&cfg);
            tokio::spawn(async move {
                tokio::select! {
                    _ = view.wait_for(|v| differs(v, &cfg)) => info!("pipeline definition or state changed: finishing the batch in hand"),
                    _ = shutdown.wait_for(|s| *s) => {}
                }
                let _ = stop_tx.send(true);
            })
        };
        let result = run_with(cfg, metrics.clone(), stop_rx, hooks.clone()).await;
        trigger.abort();
        match result {
            Ok(()) => delay = Duration::from_millis(500),
            Err(e) => {
                hooks.errors.report(e.code(), e.class(), chain(&e));
                warn!(pipeline, error = %chain(&e), retry_ms = delay.as_millis() as u64, "apply run ended with an error; starting again after a delay or a definition change");
                control.report(|i| i.status = format!("waiting: error {}", e.code()));
                metrics
                    .health
                    .not_ready(&format!("apply stopped by error {}", e.code()));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = view.changed() => {}
                    _ = shutdown.changed() => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    reporter.abort();
    lag.abort();
    control.close().await;
    Ok(())
}

fn same(cfg: &Config) -> serde_json::Value {
    serde_json::to_value(cfg).unwrap_or_default()
}

fn differs(v: &View, cfg: &serde_json::Value) -> bool {
    match v.running() {
        None => true,
        Some(spec) => Config::from_spec(spec).map_or(true, |c| same(&c) != *cfg),
    }
}

/// How long a partition of the pipeline may stay held by no applying instance before
/// each instance asks its consumer to leave and rejoin the group. Longer than a
/// rebalance that waits for a killed member to time out (`kafka.session_timeout_ms`,
/// 10 s by default) plus the registrations' report interval.
const ORPHANED_AFTER: Duration = Duration::from_secs(12);

/// Every report interval: held partitions, changes applied in total and per second,
/// backlog, stall and lag. And the group watchdog: with Tansu 0.6 a member killed with
/// `kill -9` can stay in the group holding its partitions until the next rebalance, and
/// a rebalance after several members were killed can end with nobody assigned (both
/// seen by loadtest/chaos.py); nothing then asks for another rebalance. When some
/// partition the broker lists ([`Hooks::listed`]) has been held by no registered
/// applying instance for [`ORPHANED_AFTER`], this one sets [`Hooks::rejoin`]; the
/// rebalance its rejoin starts drops the dead members.
async fn report(
    metrics: Metrics,
    pipeline: String,
    hooks: Hooks,
    to: otter_coord::control::Reporter,
    session: watch::Receiver<Option<otter_coord::Zk>>,
) {
    let mut meter = otter_coord::control::RateMeter::default();
    let mut orphaned_since: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(otter_coord::control::REPORT_EVERY).await;
        let listed = hooks.listed.lock().map(|l| l.clone()).unwrap_or_default();
        let zk = session.borrow().clone();
        let orphaned = match zk {
            Some(zk) if !listed.is_empty() => otter_coord::topology::Topology::new(zk)
                .instances(Some(&pipeline))
                .await
                .map(|all| {
                    let applying: Vec<_> = all
                        .iter()
                        .filter(|i| i.service == "apply" && i.status == "applying")
                        .collect();
                    let held: std::collections::BTreeSet<&String> =
                        applying.iter().flat_map(|i| i.partitions.iter()).collect();
                    if applying.is_empty() {
                        0 // paused, stopped or waiting: nobody should hold any
                    } else {
                        listed.iter().filter(|p| !held.contains(p)).count()
                    }
                })
                .unwrap_or(0),
            _ => 0,
        };
        match (orphaned > 0, orphaned_since) {
            (false, _) => orphaned_since = None,
            (true, None) => orphaned_since = Some(std::time::Instant::now()),
            (true, Some(t)) if t.elapsed() >= ORPHANED_AFTER => {
                warn!(
                    pipeline,
                    partitions = orphaned,
                    secs = t.elapsed().as_secs(),
                    "partitions of the pipeline held by no live apply instance: rejoining the consumer group"
                );
                hooks
                    .rejoin
                    .store(true, std::sync::atomic::Ordering::Release);
                orphaned_since = None;
            }
            (true, Some(_)) => {}
        }
        let total = metrics.events.with_label_values(&[pipeline.as_str()]).get();
        let rate = meter.read(total);
        let held: Vec<String> = hooks
            .held
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        let p = [pipeline.as_str()];
        let beat = hooks.beats.load(std::sync::atomic::Ordering::Acquire);
        to.set(|i| {
            i.partitions = held;
            i.total = total;
            i.rate = rate;
            i.backlog = metrics.backlog.with_label_values(&p).get();
            i.stalled_seconds = metrics.stalled.with_label_values(&p).get();
            i.lag_seconds = (beat > 0).then(|| metrics.lag.with_label_values(&p).get());
        });
    }
}
