//! `otterctl position show|set`: the capture position in ZooKeeper.
//!
//! Invariant: a position is set only while the pipeline is stopped and its active
//! capture (if any) reports itself stopped, and through the position store's
//! compare-and-set, so a capture still writing cannot be overwritten unnoticed (it
//! gets a conflict instead).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use otter_capture::binlog::event::ty;
use otter_capture::source::Source;
use otter_coord::topology::{now_ms, Desired};
use otter_coord::{CapturePosition, PositionStore};
use otter_core::{GtidSet, SourcePos};

use crate::{output, Ctx, Failure, Format};

pub async fn show(ctx: &Ctx, name: &str) -> Result<(), Failure> {
    crate::require(&ctx.topo, name).await?;
    let mut store = PositionStore::new(ctx.topo.zk.clone(), name);
    let pos = store.load().await?;
    match (ctx.format, pos) {
        (Format::Json, p) => output::json(&p),
        (Format::Table, None) => {
            println!("no position stored: capture starts at its source.start setting")
        }
        (Format::Table, Some(p)) => output::fields(&[
            (
                "file",
                if p.file.is_empty() {
                    "(after the GTID set)".into()
                } else {
                    p.file.clone()
                },
            ),
            ("offset", p.offset.to_string()),
            ("gtids", p.gtids.clone()),
            ("source server id", p.source_server_id.to_string()),
            (
                "source commit time",
                if p.source_ts == 0 {
                    "-".into()
                } else {
                    p.source_ts.to_string()
                },
            ),
            ("stored at (ms)", p.updated_ms.to_string()),
        ]),
    }
    Ok(())
}

pub async fn set(
    ctx: &Ctx,
    name: &str,
    gtid: Option<String>,
    file_pos: Option<String>,
    timestamp: Option<String>,
) -> Result<(), Failure> {
    let (spec, _) = crate::require(&ctx.topo, name).await?;
    let state = ctx.topo.state(name).await?.map(|s| s.desired);
    if state != Some(Desired::Stopped) {
        return Err(Failure::refused(format!(
            "pipeline {name} is {}: a position can be set only while stopped (`otterctl pipeline stop {name}`)",
            state.map_or("without state", Desired::as_str)
        )));
    }
    if let Some(active) = ctx.topo.contenders(name).await?.first() {
        let status = ctx
            .topo
            .instances(Some(name))
            .await?
            .into_iter()
            .find(|i| &i.instance == active)
            .map(|i| i.status)
            .unwrap_or_default();
        if !status.starts_with("active (stopped)") {
            return Err(Failure::refused(format!(
                "capture {active} has not stopped yet (status: {status}); retry in a few seconds"
            )));
        }
    }
    let (file, offset, gtids, source_ts) = match (gtid, file_pos, timestamp) {
        (Some(g), _, _) => {
            let set = GtidSet::parse(&g).map_err(|e| Failure::refused(format!("--gtid: {e}")))?;
            (String::new(), 4, set.to_string(), 0)
        }
        (_, Some(fp), _) => {
            let p =
                SourcePos::parse(&fp).map_err(|e| Failure::refused(format!("--file-pos: {e}")))?;
            if p.offset < 4 {
                return Err(Failure::refused("--file-pos: offsets start at 4"));
            }
            (p.file, p.offset, String::new(), 0)
        }
        (_, _, Some(t)) => {
            let ts = parse_time(&t)?;
            let source = source_of(&spec, Duration::from_secs(5)).map_err(Failure::refused)?;
            let (p, at) = find_at(&source, ts).await.map_err(Failure::refused)?;
            (p.file, p.offset, String::new(), at)
        }
        _ => {
            return Err(Failure {
                code: 2,
                message: "give one of --gtid, --file-pos, --timestamp".into(),
            })
        }
    };
    let mut store = PositionStore::new(ctx.topo.zk.clone(), name);
    let old = store.load().await?;
    let new = CapturePosition {
        file,
        offset,
        gtids,
        source_server_id: old.as_ref().map_or(0, |o| o.source_server_id),
        updated_ms: now_ms(),
        source_ts,
        // Versions only ever grow; keeping them keeps re-published records' versions
        // consistent with what apply has seen.
        schema_versions: old.map(|o| o.schema_versions).unwrap_or_default(),
    };
    store.save(&new).await?;
    let shown = if new.file.is_empty() {
        format!("after GTID {}", new.gtids)
    } else {
        format!("{}:{}", new.file, new.offset)
    };
    output::done(ctx, &format!("pipeline {name}: capture resumes at {shown}"));
    Ok(())
}

fn parse_time(t: &str) -> Result<u32, Failure> {
    if let Ok(secs) = t.parse::<u32>() {
        return Ok(secs);
    }
    let at = humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).map_err(|e| {
        Failure::refused(format!(
            "--timestamp: `{t}` is neither seconds since the epoch nor RFC 3339 (UTC): {e}"
        ))
    })?;
    at.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u32::try_from(d.as_secs()).ok())
        .ok_or_else(|| Failure::refused(format!("--timestamp: `{t}` is out of range")))
}

/// The pipeline's source, with the password as this machine resolves it.
pub fn source_of(
    spec: &otter_coord::topology::PipelineSpec,
    timeout: Duration,
) -> Result<Source, String> {
    let url = spec
        .source
        .get("url")
        .and_then(|u| u.as_str())
        .ok_or("source.url missing")?;
    let password = spec.password("source")?;
    Source::new(&otter_core::url::with_password(url, &password), timeout)
        .map_err(|e| otter_core::error::chain(&e))
}

/// A replica id for otterctl's own binlog reads, away from any capture's.
fn reader_id() -> u32 {
    4_200_000_000 + std::process::id() % 90_000_000
}

/// Events of one binlog file, until its end (rotate) or the source's end (heartbeat).
struct FileEvents {
    stream: otter_capture::source::EventStream,
}

enum Next {
    /// A transaction starts at this offset, committed at this time.
    Txn(u64, u32),
    /// The file ended (the next file follows).
    FileEnd,
    /// Nothing more has been written yet.
    SourceEnd,
}

impl FileEvents {
    async fn open(source: &Source, file: &str, mariadb: bool) -> Result<FileEvents, String> {
        let stream = source
            .stream(
                reader_id(),
                &SourcePos::new(file, 4),
                None,
                Duration::from_millis(500),
                mariadb,
            )
            .await
            .map_err(|e| otter_core::error::chain(&e))?;
        Ok(FileEvents { stream })
    }

    async fn next(&mut self) -> Result<Next, String> {
        loop {
            let ev = match tokio::time::timeout(Duration::from_secs(3), self.stream.next()).await {
                Err(_) => return Ok(Next::SourceEnd),
                Ok(r) => r.map_err(|e| otter_core::error::chain(&e))?,
            };
            let b = &ev.bytes;
            if b.len() < 19 {
                continue;
            }
            let ts = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let log_pos = u32::from_le_bytes([b[13], b[14], b[15], b[16]]);
            match ev.type_code {
                // The artificial rotate at the start has no place (log_pos 0).
                ty::ROTATE if log_pos != 0 => return Ok(Next::FileEnd),
                ty::HEARTBEAT | ty::HEARTBEAT_V2 => return Ok(Next::SourceEnd),
                ty::MARIA_GTID | ty::GTID | ty::ANONYMOUS_GTID | ty::GTID_TAGGED => {
                    return Ok(Next::Txn(ev.offset, ts))
                }
                _ => {}
            }
        }
    }

    async fn close(self) {
        self.stream.close().await;
    }
}

/// The start of the first transaction the source committed at or after `ts` (its
/// clock), and that transaction's commit time; the source's end if there is none yet.
async fn find_at(source: &Source, ts: u32) -> Result<(SourcePos, u32), String> {
    let info = source
        .check()
        .await
        .map_err(|e| otter_core::error::chain(&e))?;
    let mut conn = source
        .connect()
        .await
        .map_err(|e| otter_core::error::chain(&e))?;
    let files: Vec<(String, u64)> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| format!("SHOW BINARY LOGS: {e}"))?;
    let _ = conn.disconnect().await;
    // Newest file whose first transaction is not after `ts`: the answer is in it or later.
    let mut from = 0;
    for (i, (file, _)) in files.iter().enumerate().rev() {
        let mut f = FileEvents::open(source, file, info.mariadb).await?;
        let first = f.next().await?;
        f.close().await;
        if matches!(first, Next::Txn(_, t) if t <= ts) {
            from = i;
            break;
        }
    }
    for (file, _) in &files[from..] {
        let mut f = FileEvents::open(source, file, info.mariadb).await?;
        loop {
            match f.next().await? {
                Next::Txn(offset, t) if t >= ts => {
                    f.close().await;
                    return Ok((SourcePos::new(file.clone(), offset), t));
                }
                Next::Txn(..) => {}
                Next::FileEnd => break,
                Next::SourceEnd => {
                    f.close().await;
                    let (head, _) = source
                        .head()
                        .await
                        .map_err(|e| otter_core::error::chain(&e))?;
                    return Ok((head, 0));
                }
            }
        }
        f.close().await;
    }
    let (head, _) = source
        .head()
        .await
        .map_err(|e| otter_core::error::chain(&e))?;
    Ok((head, 0))
}
