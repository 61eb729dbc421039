//! A schema change reaching one partition: the barrier across the topic's partitions,
//! the policy, and the one execution on the target.
//!
//! Invariants:
//! - A partition never applies a record after a schema change before the change is
//!   settled (applied, or passed over by policy); the rows before it are committed
//!   first.
//! - Capture writes the change to every partition of the topic of every table the
//!   statement names (`ddl_tables`: a renamed table under both names, a `LIKE`'s model)
//!   and says how many copies there are in all (`copies`; a record without it, from an
//!   older capture, counts as one). Each partition records that it has reached the
//!   change in `apply_ddl_reached`, after committing everything before it; partition 0
//!   of the first table's topic runs the whole statement once all copies have reached
//!   it, and marks it `done` in `apply_ddl`; every other partition waits for `done`. So
//!   rows written to a table's new name wait for the rename, and a swap of tables
//!   (`RENAME TABLE t TO t_old, t_new TO t`) runs as one statement after the rows
//!   before it on all three.
//! - The barrier lives in the target, next to the positions: "reached" is true exactly
//!   when the target holds the rows before it, whichever instance holds which
//!   partition, with or without a control plane. A change is named by its source
//!   position, so all its topics' copies meet in one barrier.
//! - `apply_ddl.state = executing` is written before the statement is sent. If a crash
//!   leaves it there, the statement is sent again and the errors that mean "the first
//!   run took effect" ([`DDL_ALREADY_APPLIED`]) count as done; after a refusal the state
//!   is `failed`, and the same errors on a retry stop the table like any other.
//! - Policy decisions (`apply.ddl`, `apply.ddl_skip`, map rules) are pure functions of
//!   the record and the configuration, so every partition decides alike without
//!   talking to the others: only execution needs the barrier.

use std::time::Duration;

use otter_core::codec::Record;
use otter_core::ddl::{analyze, dropped_database, render_all, DdlKind, Names as _, TableDdl};
use otter_core::SchemaChange;
use tracing::{info, warn};

use super::{Attempt, Item, Worker};
use crate::config::{ApplyTuning, DdlPolicy};
use crate::consume::Inbox;
use crate::error::{chain, ApplyError, DdlStop, PartitionError};
use crate::mapping::Mapping;
use crate::target::{DdlState, DDL_ALREADY_APPLIED};

/// What to do with one schema change.
#[derive(Debug, PartialEq)]
enum Action {
    /// Move past it; the outcome label says why.
    Pass(&'static str),
    /// Run these on the target, in order (after the barrier).
    Run(Vec<Step>),
}

#[derive(Debug, PartialEq)]
struct Step {
    sql: String,
    /// Database to create first (a new table's).
    create_db: Option<String>,
    /// Default database for a statement run as the source wrote it.
    use_db: Option<String>,
}

const POLL: Duration = Duration::from_millis(200);

impl Worker {
    /// Handles one schema-change record; `Ok(false)` when the partition was released.
    pub(super) async fn schema_change(
        &mut self,
        item: &Item,
        rx: &Inbox,
    ) -> Result<bool, PartitionError> {
        let Ok(Record::Schema(sc)) = &item.rec else {
            return self.pass(item, rx).await;
        };
        // Already applied here (re-delivered, re-published), or a deposed leader's.
        if self.plan(std::slice::from_ref(item)).ddl == 0 {
            return self.pass(item, rx).await;
        }
        let action = match decide(sc, &self.shared.mapping, &self.shared.tuning) {
            Ok(a) => a,
            Err(why) => {
                self.count(sc, "failed");
                return Err(PartitionError::Ddl {
                    place: self.place(item, item),
                    why,
                    ddl: sc.ddl.clone(),
                });
            }
        };
        let stmt = match action {
            Action::Pass(outcome) => {
                self.count(sc, outcome);
                let level_warn = matches!(outcome, "ignored" | "not_additive" | "skipped");
                if level_warn {
                    warn!(outcome, position = %sc.source.at, table = %sc.table, ddl = %sc.ddl, "schema change passed over by policy: the target keeps its old shape for it");
                } else {
                    info!(outcome, position = %sc.source.at, table = %sc.table, "schema change passed over");
                }
                return self.pass(item, rx).await;
            }
            Action::Run(s) => s,
        };
        if self.shared.dry_run {
            if self.runs(sc) {
                for step in &stmt {
                    println!(
                        "-- dry run: schema change at {} for {}\n{};",
                        sc.source.at, sc.table, step.sql
                    );
                }
            }
            self.count(sc, "dry_run");
            return self.pass(item, rx).await;
        }
        match self.barrier(sc, &stmt, rx).await {
            Ok(true) => self.pass(item, rx).await,
            Ok(false) => Ok(false),
            Err(e) => {
                self.count(sc, "failed");
                Err(PartitionError::Apply {
                    place: self.place(item, item),
                    source: e,
                })
            }
        }
    }

    /// Whether this partition is the one that runs `sc`: partition 0 of the topic of
    /// the statement's first table.
    fn runs(&self, sc: &SchemaChange) -> bool {
        self.partition == 0 && sc.runs_it()
    }

    /// Counts an outcome once per change: every partition decides alike, the one that
    /// runs the statement speaks for them.
    fn count(&self, sc: &SchemaChange, outcome: &str) {
        if !self.runs(sc) {
            return;
        }
        self.shared
            .metrics
            .ddl
            .with_label_values(&[&self.shared.pipeline, outcome])
            .inc();
    }

    /// Commits the position past `item` (applying nothing of it).
    async fn pass(&mut self, item: &Item, rx: &Inbox) -> Result<bool, PartitionError> {
        match self.apply(std::slice::from_ref(item), &[], rx).await {
            Attempt::Done => Ok(true),
            Attempt::Released => Ok(false),
            Attempt::Failed(e) => Err(PartitionError::Apply {
                place: self.place(item, item),
                source: e,
            }),
        }
    }

    /// Waits for every copy, runs the statement once (partition 0 of the first table's
    /// topic), waits for it to be done (the others). `Ok(false)`: released while waiting.
    async fn barrier(
        &mut self,
        sc: &SchemaChange,
        stmt: &[Step],
        rx: &Inbox,
    ) -> Result<bool, ApplyError> {
        let target = self.shared.target.clone();
        let o = sc.source.order(0);
        // Records that list the statement's tables share one barrier; older ones (one
        // record per table, each run on its own topic) had one per table part.
        let id = if sc.tables.is_empty() {
            format!("{}:{}:{}", o[0], o[1], o[2])
        } else {
            format!("{}:{}", o[0], o[1])
        };
        let runs = self.runs(sc);
        let first = sc.statement_tables().first().unwrap_or(&sc.table).clone();
        let copies = u64::from(sc.copies.unwrap_or(1).max(1));
        let mut delay = Duration::from_millis(self.shared.tuning.retry_ms.max(1));
        let mut said = false;
        let mut marked = false;
        loop {
            if self.released(rx) {
                return Ok(false);
            }
            let step = async {
                // Reached is recorded once; later rounds only read.
                let reached = if marked {
                    None
                } else {
                    Some(target.ddl_reach(&self.topic, &id, self.partition).await?)
                };
                marked = true;
                let state = target.ddl_state(&id).await?;
                if state == Some(DdlState::Done) {
                    return Ok(true);
                }
                if !runs {
                    if !said {
                        info!(position = %sc.source.at, table = %sc.table, runs_on = %first, "schema change: waiting for partition 0 of the topic of the statement's first table to apply it once every partition has reached it");
                    }
                    return Ok(false);
                }
                let reached = match reached {
                    Some(n) => n,
                    None => target.ddl_reached(&id).await?,
                };
                if reached < copies {
                    if !said {
                        info!(position = %sc.source.at, table = %sc.table, reached, copies, "schema change: waiting for every partition to reach it before it is applied");
                    }
                    return Ok(false);
                }
                self.execute(sc, stmt, &id, state).await?;
                Ok::<_, ApplyError>(true)
            };
            match step.await {
                Ok(true) => return Ok(true),
                Ok(false) => {
                    said = true;
                    self.sleep(POLL).await;
                }
                Err(e) if e.class() == otter_core::ErrorClass::Transient => {
                    warn!(error = %chain(&e), retry_in_ms = delay.as_millis() as u64, "schema change: target unreachable, retrying");
                    self.sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn execute(
        &self,
        sc: &SchemaChange,
        stmt: &[Step],
        id: &str,
        state: Option<DdlState>,
    ) -> Result<(), ApplyError> {
        let target = &self.shared.target;
        let at = &sc.source.at;
        let text = stmt
            .iter()
            .map(|s| s.sql.as_str())
            .collect::<Vec<_>>()
            .join(";\n");
        target
            .ddl_mark(&self.topic, id, DdlState::Executing, at, &text)
            .await?;
        let table = self.shared.mapping.table(&sc.table);
        for step in stmt {
            let ran = target
                .ddl_execute(
                    &table,
                    step.create_db.as_deref(),
                    step.use_db.as_deref(),
                    &step.sql,
                )
                .await;
            match ran {
                Ok(()) => {
                    info!(position = %at, table = %sc.table, statement = %step.sql, "schema change applied to the target");
                }
                Err(ApplyError::Ddl {
                    source: mysql_async::Error::Server(ref e),
                    ..
                }) if state == Some(DdlState::Executing)
                    && DDL_ALREADY_APPLIED.contains(&e.code) =>
                {
                    warn!(position = %at, table = %sc.table, code = e.code, statement = %step.sql, "schema change was already applied before a restart (the target says so); taking it as done");
                }
                Err(e) => {
                    if e.class() != otter_core::ErrorClass::Transient {
                        // Refused, not interrupted: a retry's errors are its own.
                        let _ = target
                            .ddl_mark(&self.topic, id, DdlState::Failed, at, &text)
                            .await;
                    }
                    return Err(e);
                }
            }
        }
        target
            .ddl_mark(&self.topic, id, DdlState::Done, at, &text)
            .await?;
        self.count(sc, "applied");
        Ok(())
    }

    async fn sleep(&self, d: Duration) {
        let mut shutdown = self.shared.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// What `tuning` and `mapping` make of `sc`'s statement: the same on every partition of
/// every topic it went to, so they agree without talking.
fn decide(sc: &SchemaChange, mapping: &Mapping, tuning: &ApplyTuning) -> Result<Action, DdlStop> {
    let tables = sc.statement_tables();
    if tables.iter().all(|t| mapping.skips(t)) {
        return Ok(Action::Pass("filtered"));
    }
    if tuning
        .ddl_skip
        .iter()
        .any(|p| *p == sc.source.at.to_string())
    {
        return Ok(Action::Pass("skipped"));
    }
    // The statement's parts for the tables capture published it for and the mapping
    // writes, as the parser reads them.
    let parts = if sc.kind == DdlKind::Unparsed {
        None
    } else {
        analyze(&sc.ddl, &sc.default_db).ok().map(|parts| {
            // DROP DATABASE names no table: capture listed those it takes along.
            let parts = if parts.is_empty() && dropped_database(&sc.ddl).is_some() {
                tables
                    .iter()
                    .filter_map(|t| TableDdl::dropped_with_database(t).ok())
                    .collect()
            } else {
                parts
            };
            parts
                .into_iter()
                .filter(|p| tables.contains(&p.table) && !mapping.skips(&p.table))
                .collect::<Vec<_>>()
        })
    };
    let additive = parts
        .as_ref()
        .is_some_and(|ps| ps.iter().all(|p| p.additive));
    match tuning.ddl {
        DdlPolicy::Ignore => return Ok(Action::Pass("ignored")),
        DdlPolicy::Additive if !additive => return Ok(Action::Pass("not_additive")),
        DdlPolicy::Stop => return Err(DdlStop::Policy),
        DdlPolicy::All | DdlPolicy::Additive => {}
    }
    match parts {
        Some(parts) => {
            let sqls = render_all(&parts, mapping);
            if sqls.is_empty() {
                return Ok(Action::Pass("filtered"));
            }
            // A new table's database is created on the target first.
            let mut create: Vec<String> = parts
                .iter()
                .filter(|p| p.kind == DdlKind::CreateTable)
                .map(|p| mapping.table(&p.table).db)
                .collect();
            create.dedup();
            let mut create = create.into_iter();
            Ok(Action::Run(
                sqls.into_iter()
                    .map(|sql| Step {
                        sql,
                        create_db: create.next(),
                        use_db: None,
                    })
                    .collect(),
            ))
        }
        None if tables.iter().all(|t| mapping.keeps_names(t)) => Ok(Action::Run(vec![Step {
            sql: sc.ddl.clone(),
            create_db: None,
            use_db: Some(sc.default_db.clone()),
        }])),
        None => Err(DdlStop::Unmappable),
    }
}

#[cfg(test)]
mod tests;
