//! `otterctl status` and `otterctl nodes`: what the control plane knows, plus the
//! source's head read directly (with credentials resolved on this machine).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use otter_coord::topology::{now_ms, Instance, LastError, PipelineSpec};
use otter_coord::CapturePosition;
use serde::Serialize;
use serde_json::json;

use crate::{output, Ctx, Failure, Format};

#[derive(Debug, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    pub state: Option<String>,
    /// Capture contenders in election order: the first is active.
    pub capture_active: Option<String>,
    pub capture_standbys: Vec<String>,
    pub capture_status: Option<String>,
    /// Changes published per second by the active capture (last report interval).
    pub capture_rate: f64,
    pub apply: Vec<Instance>,
    /// Changes applied per second, all apply instances together.
    pub apply_rate: f64,
    pub position: Option<CapturePosition>,
    pub source_head: Option<String>,
    pub source_error: Option<String>,
    /// Capture's stored position equals the source's head.
    pub caught_up: Option<bool>,
    /// Source time now minus the source commit time of the last captured transaction
    /// (both by the source's clock); 0 when caught up.
    pub lag_seconds: Option<i64>,
    /// End-to-end lag reported by the apply instances (the largest), seconds by the
    /// source's clock, from the last heartbeat each committed.
    pub end_to_end_lag_seconds: Option<f64>,
    /// Records in the broker not yet applied, all apply instances together.
    pub backlog: i64,
    /// Why the pipeline looks stuck: running, and capture's stored position not moving
    /// while the source is ahead (with heartbeats on, a healthy capture stores one every
    /// second), or an apply instance with records waiting and no commit.
    pub stuck: Option<String>,
    pub last_error: Option<LastError>,
}

pub async fn gather(ctx: &Ctx, name: &str, stuck_after_ms: i64) -> Result<PipelineStatus, Failure> {
    let topo = &ctx.topo;
    let spec = topo.pipeline(name).await?.map(|(s, _)| s);
    let Some(spec) = spec else {
        return Err(Failure {
            code: 4,
            message: format!("pipeline {name} does not exist (otterctl pipeline list)"),
        });
    };
    let state = topo
        .state(name)
        .await?
        .map(|s| s.desired.as_str().to_owned());
    let contenders = topo.contenders(name).await?;
    let instances = topo.instances(Some(name)).await?;
    let active = contenders.first().cloned();
    let capture = active
        .as_ref()
        .and_then(|a| instances.iter().find(|i| &i.instance == a));
    let apply: Vec<Instance> = instances
        .iter()
        .filter(|i| i.service == "apply")
        .cloned()
        .collect();
    let mut store = otter_coord::PositionStore::new(topo.zk.clone(), name);
    let position = store.load().await?;
    let (head, now, source_error) = match source_head(&spec).await {
        Ok((h, n)) => (Some(h), Some(n), None),
        Err(e) => (None, None, Some(e)),
    };
    let caught_up = match (&position, &head) {
        (Some(p), Some(h)) if !p.file.is_empty() => Some(format!("{}:{}", p.file, p.offset) == *h),
        _ => None,
    };
    let lag_seconds = match (caught_up, &position, now) {
        (Some(true), _, _) => Some(0),
        (_, Some(p), Some(now)) if p.source_ts > 0 => Some((now - i64::from(p.source_ts)).max(0)),
        _ => None,
    };
    let stuck = stuck(
        state.as_deref(),
        caught_up,
        position.as_ref().map(|p| now_ms() - p.updated_ms),
        &apply,
        stuck_after_ms,
    );
    Ok(PipelineStatus {
        stuck,
        end_to_end_lag_seconds: apply.iter().filter_map(|a| a.lag_seconds).reduce(f64::max),
        backlog: apply.iter().map(|a| a.backlog).sum(),
        name: name.to_owned(),
        state,
        capture_standbys: contenders.iter().skip(1).cloned().collect(),
        capture_active: active,
        capture_status: capture.map(|c| c.status.clone()),
        capture_rate: capture.map_or(0.0, |c| c.rate),
        apply_rate: apply.iter().map(|a| a.rate).sum(),
        apply,
        position,
        source_head: head,
        source_error,
        caught_up,
        lag_seconds,
        last_error: topo.last_error(name).await?,
    })
}

/// Why a pipeline in `state` is stuck, if it is: capture's position still for
/// `after_ms` while the source is ahead, or an apply instance with records waiting and
/// no commit for as long. A paused or stopped pipeline is never stuck.
fn stuck(
    state: Option<&str>,
    caught_up: Option<bool>,
    position_age_ms: Option<i64>,
    apply: &[Instance],
    after_ms: i64,
) -> Option<String> {
    if state != Some("running") {
        return None;
    }
    let mut why = Vec::new();
    if let (Some(false), Some(age)) = (caught_up, position_age_ms) {
        if age > after_ms {
            why.push(format!(
                "the source moved but the capture position has not for {}s",
                age / 1000
            ));
        }
    }
    for a in apply {
        if a.backlog > 0 && a.stalled_seconds * 1000.0 > after_ms as f64 {
            why.push(format!(
                "apply {} has {} record(s) waiting and committed nothing for {:.0}s",
                a.instance, a.backlog, a.stalled_seconds
            ));
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The source's binlog head (`file:offset`) and current time (its clock, seconds).
async fn source_head(spec: &PipelineSpec) -> Result<(String, i64), String> {
    let source = crate::position::source_of(spec, Duration::from_secs(3))?;
    let (head, _) = source
        .head()
        .await
        .map_err(|e| otter_core::error::chain(&e))?;
    let mut conn = source
        .connect()
        .await
        .map_err(|e| otter_core::error::chain(&e))?;
    let now: Option<i64> = conn
        .query_first("SELECT UNIX_TIMESTAMP()")
        .await
        .map_err(|e| e.to_string())?;
    let _ = conn.disconnect().await;
    Ok((head.to_string(), now.unwrap_or_default()))
}

fn age(ms: i64) -> String {
    let s = (now_ms() - ms).max(0) as f64 / 1000.0;
    format!("{s:.1}s ago")
}

pub async fn status(ctx: &Ctx, name: Option<&str>, stuck_after_ms: u64) -> Result<(), Failure> {
    let stuck_after_ms = i64::try_from(stuck_after_ms).unwrap_or(i64::MAX);
    let names = match name {
        Some(n) => vec![n.to_owned()],
        None => ctx.topo.pipelines().await?,
    };
    let mut all = Vec::new();
    for n in &names {
        all.push(gather(ctx, n, stuck_after_ms).await?);
    }
    if ctx.format == Format::Json {
        if name.is_some() {
            output::json(&all[0]);
        } else {
            output::json(&all);
        }
        return Ok(());
    }
    if let (Some(_), Some(s)) = (name, all.first()) {
        detail(s);
        return Ok(());
    }
    let rows = all
        .iter()
        .map(|s| {
            json!({
                "pipeline": s.name,
                "state": s.state,
                "capture": s.capture_active,
                "standbys": s.capture_standbys.len(),
                "apply": s.apply.len(),
                "lag": match (&s.stuck, s.end_to_end_lag_seconds, s.lag_seconds) {
                    (Some(_), _, _) => Some("STUCK".to_owned()),
                    (None, Some(l), _) => Some(format!("{l:.1}s")),
                    (None, None, l) => l.map(|l| format!("{l}s")),
                },
                "rate": format!("{:.0}/s", s.apply_rate),
                "last error": s.last_error.as_ref().map(|e| format!("{} ({})", e.code, age(e.at_ms))),
            })
        })
        .collect();
    output::rows(
        ctx,
        &[
            "pipeline",
            "state",
            "capture",
            "standbys",
            "apply",
            "lag",
            "rate",
            "last error",
        ],
        rows,
    );
    Ok(())
}

fn detail(s: &PipelineStatus) {
    let mut lines = vec![
        ("pipeline", s.name.clone()),
        ("state", s.state.clone().unwrap_or_else(|| "-".into())),
        (
            "capture",
            match &s.capture_active {
                Some(a) => format!(
                    "{a} ({}, {:.0} changes/s)",
                    s.capture_status.as_deref().unwrap_or("unregistered"),
                    s.capture_rate
                ),
                None => "no capture running".into(),
            },
        ),
        (
            "standbys",
            if s.capture_standbys.is_empty() {
                "none".into()
            } else {
                s.capture_standbys.join(", ")
            },
        ),
    ];
    if s.apply.is_empty() {
        lines.push(("apply", "no apply running".into()));
    }
    for a in &s.apply {
        lines.push((
            "apply",
            format!(
                "{} ({}, {:.0} changes/s): {}",
                a.instance,
                a.status,
                a.rate,
                if a.partitions.is_empty() {
                    "no partitions".into()
                } else {
                    a.partitions.join(" ")
                }
            ),
        ));
    }
    lines.push((
        "position",
        match &s.position {
            Some(p) if p.file.is_empty() => format!("after GTID {} (set by an operator)", p.gtids),
            Some(p) => format!(
                "{}:{} (gtid {}), stored {}",
                p.file,
                p.offset,
                if p.gtids.is_empty() { "-" } else { &p.gtids },
                age(p.updated_ms)
            ),
            None => "none stored yet".into(),
        },
    ));
    lines.push((
        "source head",
        match (&s.source_head, &s.source_error) {
            (Some(h), _) => h.clone(),
            (None, Some(e)) => format!("unknown: {e}"),
            _ => "unknown".into(),
        },
    ));
    lines.push((
        "lag",
        match (s.caught_up, s.lag_seconds) {
            (Some(true), _) => "0s (caught up)".into(),
            (_, Some(l)) => format!("{l}s behind the source"),
            _ => "unknown".into(),
        },
    ));
    lines.push((
        "end-to-end lag",
        match s.end_to_end_lag_seconds {
            Some(l) => format!(
                "{l:.1}s (last applied heartbeat), {} record(s) waiting",
                s.backlog
            ),
            None if s.apply.is_empty() => "unknown (no apply running)".into(),
            None => "unknown (no heartbeat applied yet)".into(),
        },
    ));
    if let Some(why) = &s.stuck {
        lines.push(("STUCK", why.clone()));
    }
    lines.push((
        "last error",
        match &s.last_error {
            Some(e) => format!(
                "{} {} on {} ({}, {}): {}",
                e.service,
                e.code,
                e.instance,
                e.class,
                age(e.at_ms),
                e.message
            ),
            None => "none".into(),
        },
    ));
    output::fields(&lines);
}

pub async fn nodes(ctx: &Ctx) -> Result<(), Failure> {
    let list = ctx.topo.instances(None).await?;
    if ctx.format == Format::Json {
        output::json(&list);
        return Ok(());
    }
    let rows = list
        .iter()
        .map(|i| {
            json!({
                "instance": i.instance,
                "service": i.service,
                "pipeline": i.pipeline,
                "host": format!("{}:{}", i.host, i.pid),
                "status": i.status,
                "partitions": i.partitions.len(),
                "rate": format!("{:.0}/s", i.rate),
                "seen": age(i.updated_ms),
            })
        })
        .collect();
    output::rows(
        ctx,
        &[
            "instance",
            "service",
            "pipeline",
            "host",
            "status",
            "partitions",
            "rate",
            "seen",
        ],
        rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_running_pipeline_behind_a_moving_source_with_a_still_position_is_stuck() {
        let after = 30_000;
        assert!(stuck(Some("running"), Some(false), Some(31_000), &[], after).is_some());
        assert!(
            stuck(Some("running"), Some(false), Some(5_000), &[], after).is_none(),
            "moving recently"
        );
        assert!(
            stuck(Some("running"), Some(true), Some(600_000), &[], after).is_none(),
            "idle source"
        );
        assert!(
            stuck(Some("paused"), Some(false), Some(600_000), &[], after).is_none(),
            "paused on purpose"
        );
        assert!(
            stuck(Some("running"), None, Some(600_000), &[], after).is_none(),
            "source unknown"
        );
    }

    #[test]
    fn an_apply_with_records_waiting_and_no_commit_is_stuck() {
        let apply = |backlog, stalled_seconds| Instance {
            backlog,
            stalled_seconds,
            ..Instance::new("a1", "apply", "p")
        };
        let after = 30_000;
        let why = stuck(
            Some("running"),
            Some(true),
            Some(0),
            &[apply(7, 31.0)],
            after,
        );
        assert_eq!(
            why.as_deref(),
            Some("apply a1 has 7 record(s) waiting and committed nothing for 31s")
        );
        assert!(
            stuck(
                Some("running"),
                Some(true),
                Some(0),
                &[apply(7, 5.0)],
                after
            )
            .is_none(),
            "committed recently"
        );
        assert!(
            stuck(
                Some("running"),
                Some(true),
                Some(0),
                &[apply(0, 0.0)],
                after
            )
            .is_none(),
            "nothing waiting"
        );
        assert!(
            stuck(
                Some("paused"),
                Some(true),
                Some(0),
                &[apply(7, 300.0)],
                after
            )
            .is_none(),
            "paused on purpose"
        );
    }
}
