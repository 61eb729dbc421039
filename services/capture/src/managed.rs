//! A capture process that takes its pipeline from ZooKeeper (`otter-capture serve`).
//!
//! Any number of such processes may serve one pipeline: each registers under
//! `/nodes`, contends in the pipeline's election, and the elected one captures while
//! the others wait as hot standbys (connected, registered, the definition read and
//! followed). The leader follows the definition and desired state: pausing or stopping
//! ends the capture session at an acknowledged, stored position; resuming or changing
//! the definition starts a new session from it.
//!
//! Invariants:
//! - Only the holder of a valid [`Lease`](otter_coord::election::Lease) publishes or
//!   stores a position ([`Authority::Leader`]); losing it (session expired, process
//!   paused past its lease, ZooKeeper unreachable for too long) stops publishing at once
//!   and sends the process back to contending.
//! - While ZooKeeper is unreachable nobody becomes leader; the log says so.

use std::time::Duration;

use otter_coord::control::{Control, View};
use otter_coord::election::Leadership;
use otter_coord::topology::Instance;
use otter_coord::{CoordError, Zk, ZkSettings};
use otter_core::ErrorClass;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{Config, ZkConfig};
use crate::error::{chain, CaptureError};
use crate::metrics::Metrics;
use crate::run::{run_as, Authority};

/// Serves `me.pipeline` until `shutdown` turns true or ZooKeeper refuses this process.
pub async fn serve(
    settings: ZkSettings,
    me: Instance,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), CaptureError> {
    let (pipeline, instance) = (me.pipeline.clone(), me.instance.clone());
    let (pipeline, instance) = (pipeline.as_str(), instance.as_str());
    let control = Control::start(settings.clone(), me).await?;
    info!(
        pipeline,
        instance, "capture registered; contending for the pipeline's capture"
    );
    let zk_cfg = ZkConfig {
        connect: settings.connect.clone(),
        root: settings.root.clone(),
        session_timeout_ms: settings.session_timeout.as_millis() as u64,
    };
    let reporter = tokio::spawn(report_throughput(
        metrics.clone(),
        pipeline.to_owned(),
        control.reporter(),
    ));
    let mut view = control.view();
    let mut session = control.session();
    let result = loop {
        if *shutdown.borrow() {
            break Ok(());
        }
        // A live session and an existing pipeline are needed to contend.
        let Some(zk) = session.borrow_and_update().clone() else {
            control.report(|i| i.status = "waiting: ZooKeeper unreachable".into());
            tokio::select! {
                _ = session.changed() => continue,
                _ = shutdown.changed() => continue,
            }
        };
        if view.borrow_and_update().spec.is_none() {
            control.report(|i| i.status = "waiting: pipeline not defined".into());
            info!(pipeline, "waiting for the pipeline to be defined");
            tokio::select! {
                _ = view.changed() => continue,
                _ = session.changed() => continue,
                _ = shutdown.changed() => continue,
            }
        }
        if !view.borrow().connected {
            control.report(|i| i.status = "waiting: ZooKeeper unreachable".into());
            metrics.health.not_ready("waiting for ZooKeeper");
            warn!(
                pipeline,
                "not capturing: waiting for ZooKeeper to contend for leadership"
            );
            tokio::select! {
                _ = view.wait_for(|v| v.connected) => continue,
                _ = session.changed() => continue,
                _ = shutdown.changed() => continue,
            }
        }
        control.report(|i| i.status = "standby".into());
        metrics.health.ready("standby");
        metrics.leader.with_label_values(&[pipeline]).set(0);
        let leadership = tokio::select! {
            l = Leadership::acquire(&zk, pipeline, instance) => l,
            _ = session.changed() => continue,
            _ = shutdown.changed() => continue,
            _ = view.wait_for(|v| v.spec.is_none() || !v.connected) => continue,
        };
        let leadership = match leadership {
            Ok(l) => l,
            Err(CoordError::Missing { .. }) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) if e.class() == ErrorClass::Transient => {
                warn!(pipeline, error = %chain(&e), "cannot contend for leadership; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        info!(
            pipeline,
            instance,
            epoch = leadership.epoch(),
            "elected: this process now captures the pipeline"
        );
        metrics.leader.with_label_values(&[pipeline]).set(1);
        let ended = lead(&control, &leadership, &zk, &zk_cfg, &metrics, &mut shutdown).await;
        metrics.leader.with_label_values(&[pipeline]).set(0);
        if let Err(e @ CaptureError::Fenced { .. }) = &ended {
            error!(pipeline, error = %chain(e), "leadership lost: stopped publishing; contending again (check ZooKeeper reachability and pauses of this process)");
            control
                .errors()
                .report(e.code(), ErrorClass::Transient, chain(e));
        }
        // Deleting the election node lets a standby take over at once; with ZooKeeper
        // unreachable the node goes with the session instead, so do not wait for it.
        let _ = tokio::time::timeout(Duration::from_secs(1), leadership.release(&zk)).await;
        match ended {
            Ok(()) | Err(CaptureError::Fenced { .. }) => {}
            Err(e) => break Err(e),
        }
    };
    reporter.abort();
    control.close().await;
    result
}

/// Captures while this process leads; returns when leadership ends (`Fenced`), the
/// pipeline is deleted, or on shutdown.
async fn lead(
    control: &Control,
    leadership: &Leadership,
    zk: &Zk,
    zk_cfg: &ZkConfig,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), CaptureError> {
    let lease = leadership.lease().clone();
    let mut view = control.view();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        if !lease.valid() {
            return Err(CaptureError::Fenced {
                position: "(between sessions)".into(),
            });
        }
        let v = view.borrow_and_update().clone();
        let Some(spec) = v.spec.as_ref() else {
            info!(pipeline = %control.pipeline, "pipeline deleted: giving up leadership");
            return Ok(());
        };
        let Some(spec) = v.running() else {
            let state = v.desired.map_or("undefined", |d| d.as_str());
            control.report(|i| i.status = format!("active ({state})"));
            metrics.health.ready(&format!("active, pipeline {state}"));
            info!(pipeline = %spec.name, state, "pipeline not running: capture idle at its stored position");
            tokio::select! {
                _ = view.changed() => continue,
                _ = lease.expired() => continue,
                _ = shutdown.changed() => continue,
            }
        };
        let cfg = match Config::from_spec(spec, zk_cfg.clone()) {
            Ok(c) => c,
            Err(e) => {
                error!(pipeline = %spec.name, error = %chain(&e), "the pipeline's definition is not usable on this machine; fix it with `otterctl pipeline edit` (or this machine's credentials)");
                control.report(|i| i.status = "active: invalid definition".into());
                metrics
                    .health
                    .not_ready("the pipeline definition is not usable here");
                control
                    .errors()
                    .report("config", ErrorClass::Permanent, chain(&e));
                tokio::select! {
                    _ = view.changed() => continue,
                    _ = lease.expired() => continue,
                    _ = shutdown.changed() => continue,
                }
            }
        };
        control.report(|i| i.status = "active".into());
        let (stop_tx, stop_rx) = watch::channel(false);
        let trigger = {
            let mut view = view.clone();
            let mut shutdown = shutdown.clone();
            let lease = lease.clone();
            let (cfg, zk_cfg) = (same(&cfg), zk_cfg.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = view.wait_for(|v| differs(v, &cfg, &zk_cfg)) => info!("pipeline definition or state changed: ending the capture session at a stored position"),
                    _ = lease.expired() => {}
                    _ = shutdown.wait_for(|s| *s) => {}
                }
                let _ = stop_tx.send(true);
            })
        };
        let authority = Authority::Leader {
            zk: zk.clone(),
            lease: lease.clone(),
            epoch: leadership.epoch(),
            errors: control.errors(),
        };
        let result = run_as(cfg, metrics.clone(), stop_rx, None, authority).await;
        trigger.abort();
        match result {
            Ok(_) => {}
            Err(e @ CaptureError::Fenced { .. }) => return Err(e),
            Err(e) => {
                // run_as retries transient errors itself: this one stops capture until
                // the definition changes or the pipeline is paused and resumed.
                control.errors().report(e.code(), e.class(), chain(&e));
                control.report(|i| i.status = format!("active: stopped by error {}", e.code()));
                metrics
                    .health
                    .not_ready(&format!("capture stopped by error {}", e.code()));
                tokio::select! {
                    _ = view.changed() => {}
                    _ = lease.expired() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

fn same(cfg: &Config) -> serde_json::Value {
    serde_json::to_value(cfg).unwrap_or_default()
}

/// Whether `v` asks for something other than the running configuration `cfg`.
fn differs(v: &View, cfg: &serde_json::Value, zk_cfg: &ZkConfig) -> bool {
    match v.running() {
        None => true,
        Some(spec) => Config::from_spec(spec, zk_cfg.clone()).map_or(true, |c| same(&c) != *cfg),
    }
}

/// Every report interval: changes published in total and per second, into the
/// registration.
async fn report_throughput(
    metrics: Metrics,
    pipeline: String,
    report: otter_coord::control::Reporter,
) {
    let mut meter = otter_coord::control::RateMeter::default();
    loop {
        tokio::time::sleep(otter_coord::control::REPORT_EVERY).await;
        let total: u64 = ["insert", "update", "delete"]
            .iter()
            .map(|op| {
                metrics
                    .events
                    .with_label_values(&[pipeline.as_str(), op])
                    .get()
            })
            .sum();
        let rate = meter.read(total);
        report.set(|i| {
            i.total = total;
            i.rate = rate;
        });
    }
}
