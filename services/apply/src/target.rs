//! The target database: connection pool and session set-up, the bookkeeping tables, and
//! the one transaction a batch is written in.
//!
//! Invariants:
//! - A batch's statements and its partition's new position (`apply_position`) commit in
//!   one transaction, so the target holds a batch's rows exactly when it holds the
//!   position past them; a crash at any instant loses or repeats nothing.
//! - The position row is claimed before anything is written: a partition's first batch
//!   INSERTs it (a duplicate key means another instance got there first), every later
//!   batch locks the existing row (`SELECT ... FOR UPDATE`) and compares it with the
//!   position the writer started from. If another instance moved it (a rebalance, a
//!   paused process coming back), the transaction is rolled back with
//!   [`ApplyError::Fenced`] and the writer reloads. Two instances can never both apply
//!   the same records.
//! - No transaction locks a missing position row: a locking read of an absent key takes
//!   a gap lock, and two instances starting fresh partitions in the same gap would
//!   deadlock on their inserts. The first batch's plain INSERT takes no gap lock.
//! - Every connection runs [`SESSION_SETUP`] first; the literals of `sql::mysql` rely on it.
//!   Nothing changes a pooled session after that ([`Target::ddl_execute`] closes the
//!   connection it ran `USE` on), so connections are not reset on their way back to the
//!   pool (a reset costs a round trip, then `SESSION_SETUP` again, and drops the cached
//!   prepared statements); the pool still rolls back a transaction left open.
//!
//! Requires of the target: InnoDB, a user that may create the state database and write
//! the replicated ones, `max_allowed_packet` at least `apply.max_statement_bytes` (and
//! larger than the hex form of the largest row).

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, TxOpts};
use otter_core::event::OrderKey;
use otter_core::url::redact_url;
use otter_core::{SourcePos, TableId};

use crate::error::ApplyError;
use crate::sql::Stmt;

/// MySQL's duplicate-key error (`ER_DUP_ENTRY`).
const ER_DUP_ENTRY: u16 = 1062;

/// Statements every target connection runs first, and why:
/// - utf8mb4 so any text reaches the server unchanged; the server converts it to each
///   column's charset (latin1 columns get their cp1252 bytes back).
/// - UTC so TIMESTAMP literals (written as UTC wall-clock time) are the same instant.
/// - sql_mode: strict, so a value that does not fit is an error and not a silent
///   truncation; no NO_ZERO_DATE / NO_ZERO_IN_DATE, so zero dates the source holds are
///   written as they are; NO_AUTO_VALUE_ON_ZERO, so a 0 in an AUTO_INCREMENT column
///   stays 0; no NO_BACKSLASH_ESCAPES, which the literal escaping assumes.
/// - foreign_key_checks = 0: tables are applied per partition, not in the source's
///   cross-table order, so a child row may arrive before its parent (as replicas do).
pub const SESSION_SETUP: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
    "SET foreign_key_checks = 0",
];

/// Prepared statements each connection keeps: a table's inserts need a few texts (row
/// counts are powers of two, `sql::mysql`), and a backlog spans a few tables per
/// connection. The target's `max_prepared_stmt_count` must allow this times the pool.
const STMT_CACHE: usize = 128;

/// What a partition has applied, as stored in `apply_position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// First Kafka offset not yet applied.
    pub next_offset: i64,
    /// Source order of the last applied change ([`otter_core::event::SourceInfo::order`]).
    pub order: Option<OrderKey>,
}

/// A position row's columns as a [`Stored`] (the order only when all of it is there).
fn stored(
    next_offset: i64,
    file: Option<u32>,
    pos: Option<u64>,
    row: Option<u32>,
    part: Option<u8>,
) -> Stored {
    Stored {
        next_offset,
        order: match (file, pos, row, part) {
            (Some(f), Some(p), Some(r), Some(part)) => {
                Some([u64::from(f), p, u64::from(r), u64::from(part)])
            }
            _ => None,
        },
    }
}

/// A change refused for good and skipped by policy, recorded in `apply_skipped`.
#[derive(Debug, Clone)]
pub struct Skip {
    pub offset: i64,
    pub table: Option<TableId>,
    pub at: Option<SourcePos>,
    pub code: &'static str,
    pub error: String,
}

/// One batch's writes for one partition.
pub struct Commit<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// The stored position this batch was built on (`None`: no row yet).
    pub expected: Option<i64>,
    pub next: Stored,
    /// Readable source position of the last change, stored for operators.
    pub at: Option<&'a SourcePos>,
    /// [`Target::commit`] takes the prepared statements' parameters out.
    pub stmts: &'a mut [(TableId, Stmt)],
    pub skips: &'a [Skip],
    /// Where each statement's time goes, if anywhere.
    pub timing: Option<&'a prometheus::Histogram>,
}

/// The target's connection pool and bookkeeping tables.
#[derive(Clone)]
pub struct Target {
    pool: Pool,
    url: String,
    pipeline: String,
    positions: String,
    skipped: String,
    ddl: String,
    ddl_reached: String,
    connect_timeout: Duration,
}

/// How far a schema change has got on the target (`apply_ddl.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlState {
    /// Its statement was sent; it may or may not have taken effect (a crash in between).
    Executing,
    /// Applied (or nothing to apply); every partition may pass it.
    Done,
    /// The target refused it; a retry runs it again and any error is real.
    Failed,
}

/// MySQL errors a schema change re-run after a crash gets when its first run took
/// effect: the table/column/index it creates exists, the one it drops or renames is gone.
pub const DDL_ALREADY_APPLIED: &[u16] = &[1007, 1008, 1050, 1051, 1054, 1060, 1061, 1091, 1146];

impl Target {
    /// Builds the pool; no connection is made until [`Target::prepare`] or first use.
    pub fn new(
        url: &str,
        pipeline: &str,
        state_db: &str,
        pool_size: usize,
        connect_timeout: Duration,
    ) -> Result<Target, ApplyError> {
        let opts = Opts::from_url(url).map_err(|e| ApplyError::Connect {
            url: redact_url(url),
            source: e.into(),
        })?;
        let constraints = PoolConstraints::new(0, pool_size.max(1)).unwrap_or_default();
        let opts = OptsBuilder::from_opts(opts)
            .init(SESSION_SETUP.to_vec())
            .client_found_rows(true)
            .stmt_cache_size(STMT_CACHE)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(false),
            );
        let q = |t: &str| format!("`{state_db}`.`{t}`");
        Ok(Target {
            pool: Pool::new(opts),
            url: redact_url(url),
            pipeline: pipeline.to_owned(),
            positions: q("apply_position"),
            skipped: q("apply_skipped"),
            ddl: q("apply_ddl"),
            ddl_reached: q("apply_ddl_reached"),
            connect_timeout,
        })
    }

    pub async fn conn(&self) -> Result<Conn, ApplyError> {
        match tokio::time::timeout(self.connect_timeout, self.pool.get_conn()).await {
            Ok(r) => r.map_err(|source| ApplyError::Connect {
                url: self.url.clone(),
                source,
            }),
            Err(_) => Err(ApplyError::ConnectTimeout {
                url: self.url.clone(),
                ms: u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    fn bk(&self, table: &str) -> impl Fn(mysql_async::Error) -> ApplyError {
        let table = table.to_owned();
        move |source| ApplyError::Bookkeeping {
            table: table.clone(),
            source,
        }
    }

    /// Checks the target's settings and creates the bookkeeping tables when missing.
    pub async fn prepare(
        &self,
        state_db: &str,
        max_statement_bytes: usize,
    ) -> Result<(), ApplyError> {
        let mut c = self.conn().await?;
        let packet: Option<u64> = c
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(self.bk("@@max_allowed_packet"))?;
        let packet = packet.unwrap_or(0);
        if packet < max_statement_bytes as u64 + 1024 {
            return Err(ApplyError::Precondition {
                variable: "max_allowed_packet",
                expected: format!(
                    ">= {} (apply.max_statement_bytes + 1 KiB)",
                    max_statement_bytes + 1024
                ),
                actual: packet.to_string(),
            });
        }
        let ddl = [
            format!("CREATE DATABASE IF NOT EXISTS `{state_db}`"),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
  pipeline VARCHAR(128) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  kafka_partition INT NOT NULL,
  next_offset BIGINT NOT NULL,
  order_file INT UNSIGNED NULL,
  order_pos BIGINT UNSIGNED NULL,
  order_row INT UNSIGNED NULL,
  order_part TINYINT UNSIGNED NULL,
  source_position VARCHAR(600) NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (pipeline, topic, kafka_partition)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                self.positions
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pipeline VARCHAR(128) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  kafka_partition INT NOT NULL,
  kafka_offset BIGINT NOT NULL,
  source_table VARCHAR(300) NULL,
  source_position VARCHAR(600) NULL,
  error_code VARCHAR(64) NOT NULL,
  error TEXT NOT NULL,
  skipped_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY by_place (pipeline, topic, kafka_partition, kafka_offset)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                self.skipped
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
  pipeline VARCHAR(128) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  ddl_id VARCHAR(80) NOT NULL,
  state VARCHAR(16) NOT NULL,
  source_position VARCHAR(600) NULL,
  statement MEDIUMTEXT NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (pipeline, ddl_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                self.ddl
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
  pipeline VARCHAR(128) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  ddl_id VARCHAR(80) NOT NULL,
  kafka_partition INT NOT NULL,
  reached_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (pipeline, ddl_id, topic, kafka_partition)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                self.ddl_reached
            ),
        ];
        for stmt in ddl {
            c.query_drop(stmt).await.map_err(self.bk(&self.positions))?;
        }
        Ok(())
    }

    /// The stored position of one partition.
    pub async fn load(&self, topic: &str, partition: i32) -> Result<Option<Stored>, ApplyError> {
        let mut c = self.conn().await?;
        self.read(&mut c, topic, partition, false).await
    }

    /// The stored positions of every partition of this pipeline, read at once (an
    /// assignment of 4,004 partitions read them one query each for ~10 s).
    pub async fn load_all(
        &self,
    ) -> Result<std::collections::HashMap<(String, i32), Stored>, ApplyError> {
        type Row = (
            String,
            i32,
            i64,
            Option<u32>,
            Option<u64>,
            Option<u32>,
            Option<u8>,
        );
        let mut c = self.conn().await?;
        let sql = format!(
            "SELECT topic, kafka_partition, next_offset, order_file, order_pos, order_row, \
             order_part FROM {} WHERE pipeline = ?",
            self.positions
        );
        let rows: Vec<Row> = c
            .exec(sql, (&self.pipeline,))
            .await
            .map_err(self.bk(&self.positions))?;
        Ok(rows
            .into_iter()
            .map(|(topic, partition, next_offset, f, p, r, part)| {
                ((topic, partition), stored(next_offset, f, p, r, part))
            })
            .collect())
    }

    async fn read<Q: Queryable>(
        &self,
        c: &mut Q,
        topic: &str,
        partition: i32,
        lock: bool,
    ) -> Result<Option<Stored>, ApplyError> {
        type Row = (i64, Option<u32>, Option<u64>, Option<u32>, Option<u8>);
        let sql = format!(
            "SELECT next_offset, order_file, order_pos, order_row, order_part FROM {} \
             WHERE pipeline = ? AND topic = ? AND kafka_partition = ?{}",
            self.positions,
            if lock { " FOR UPDATE" } else { "" }
        );
        let row: Option<Row> = c
            .exec_first(sql, (&self.pipeline, topic, partition))
            .await
            .map_err(self.bk(&self.positions))?;
        Ok(row.map(|(next_offset, f, p, r, part)| stored(next_offset, f, p, r, part)))
    }

    /// Writes one batch and its position in one transaction (see the module invariants).
    /// Returns the time spent.
    pub async fn commit(&self, batch: &mut Commit<'_>) -> Result<Duration, ApplyError> {
        let mut c = self.conn().await?;
        let started = Instant::now();
        let mut tx = c
            .start_transaction(TxOpts::default())
            .await
            .map_err(self.bk(&self.positions))?;
        self.claim(&mut tx, batch).await?;
        for (table, stmt) in batch.stmts.iter_mut() {
            let sent = Instant::now();
            let done = match stmt.params.take() {
                Some(p) => tx.exec_drop(&stmt.sql, Params::Positional(p)).await,
                None => tx.query_drop(&stmt.sql).await,
            };
            done.map_err(|source| ApplyError::Statement {
                table: table.clone(),
                kind: stmt.kind,
                source,
            })?;
            if let Some(h) = batch.timing {
                h.observe(sent.elapsed().as_secs_f64());
            }
            if stmt.expect_one && tx.affected_rows() != 1 {
                return Err(ApplyError::RowMismatch {
                    table: table.clone(),
                    kind: stmt.kind,
                    affected: tx.affected_rows(),
                });
            }
        }
        for s in batch.skips {
            tx.exec_drop(
                format!(
                    "INSERT INTO {} (pipeline, topic, kafka_partition, kafka_offset, source_table, \
                     source_position, error_code, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    self.skipped
                ),
                (
                    &self.pipeline,
                    batch.topic,
                    batch.partition,
                    s.offset,
                    s.table.as_ref().map(ToString::to_string),
                    s.at.as_ref().map(ToString::to_string),
                    s.code,
                    &s.error,
                ),
            )
            .await
            .map_err(self.bk(&self.skipped))?;
        }
        if batch.expected.is_some() {
            self.write_position(&mut tx, batch, false).await?;
        }
        tx.commit().await.map_err(self.bk(&self.positions))?;
        Ok(started.elapsed())
    }

    /// Claims the partition's position row for this transaction (see the module
    /// invariants): the first batch inserts it with the batch's new position, a later one
    /// locks it and checks it is where the writer left it.
    async fn claim(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        batch: &Commit<'_>,
    ) -> Result<(), ApplyError> {
        if batch.expected.is_none() {
            return match self.write_position(tx, batch, true).await {
                Ok(()) => Ok(()),
                Err(ApplyError::Bookkeeping {
                    source: mysql_async::Error::Server(e),
                    ..
                }) if e.code == ER_DUP_ENTRY => {
                    // Another instance applied this partition first (its insert has
                    // committed, or ours would still wait); report what it stored. The
                    // consistent read's snapshot starts here, after that commit.
                    let stored = self.read(tx, batch.topic, batch.partition, false).await?;
                    Err(ApplyError::Fenced {
                        expected: None,
                        stored: stored.map(|s| s.next_offset),
                    })
                }
                Err(e) => Err(e),
            };
        }
        let stored = self.read(tx, batch.topic, batch.partition, true).await?;
        let stored_next = stored.map(|s| s.next_offset);
        if stored_next != batch.expected {
            // Dropping the transaction rolls back.
            return Err(ApplyError::Fenced {
                expected: batch.expected,
                stored: stored_next,
            });
        }
        Ok(())
    }

    /// Writes the batch's new position: a plain INSERT for a partition's first batch (a
    /// duplicate key is an error), an UPDATE of the row [`Self::claim`] locked otherwise.
    async fn write_position(
        &self,
        tx: &mut mysql_async::Transaction<'_>,
        batch: &Commit<'_>,
        insert: bool,
    ) -> Result<(), ApplyError> {
        let o = batch.next.order;
        let order_file = o.map(|o| u32::try_from(o[0]).unwrap_or(u32::MAX));
        let order_row = o.map(|o| u32::try_from(o[2]).unwrap_or(u32::MAX));
        let order_part = o.map(|o| u8::try_from(o[3]).unwrap_or(u8::MAX));
        let at = batch.at.map(ToString::to_string);
        let sql = if insert {
            format!(
                "INSERT INTO {} (next_offset, order_file, order_pos, order_row, order_part, \
                 source_position, pipeline, topic, kafka_partition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.positions
            )
        } else {
            format!(
                "UPDATE {} SET next_offset = ?, order_file = ?, order_pos = ?, order_row = ?, \
                 order_part = ?, source_position = COALESCE(?, source_position), \
                 updated_at = CURRENT_TIMESTAMP(6) \
                 WHERE pipeline = ? AND topic = ? AND kafka_partition = ?",
                self.positions
            )
        };
        tx.exec_drop(
            sql,
            (
                batch.next.next_offset,
                order_file,
                o.map(|o| o[1]),
                order_row,
                order_part,
                at,
                &self.pipeline,
                batch.topic,
                batch.partition,
            ),
        )
        .await
        .map_err(self.bk(&self.positions))
    }

    /// Records that `partition` of `topic` has applied everything before schema change
    /// `id`, and returns how many partitions (of all the change's topics) have.
    pub async fn ddl_reach(
        &self,
        topic: &str,
        id: &str,
        partition: i32,
    ) -> Result<u64, ApplyError> {
        let mut c = self.conn().await?;
        c.exec_drop(
            format!(
                "INSERT IGNORE INTO {} (pipeline, topic, ddl_id, kafka_partition) VALUES (?, ?, ?, ?)",
                self.ddl_reached
            ),
            (&self.pipeline, topic, id, partition),
        )
        .await
        .map_err(self.bk(&self.ddl_reached))?;
        self.ddl_count(&mut c, id).await
    }

    /// How many partitions, of all the topics schema change `id` went to, have reached it.
    pub async fn ddl_reached(&self, id: &str) -> Result<u64, ApplyError> {
        let mut c = self.conn().await?;
        self.ddl_count(&mut c, id).await
    }

    async fn ddl_count(&self, c: &mut Conn, id: &str) -> Result<u64, ApplyError> {
        let n: Option<u64> = c
            .exec_first(
                format!(
                    "SELECT COUNT(*) FROM {} WHERE pipeline = ? AND ddl_id = ?",
                    self.ddl_reached
                ),
                (&self.pipeline, id),
            )
            .await
            .map_err(self.bk(&self.ddl_reached))?;
        Ok(n.unwrap_or(0))
    }

    /// Where schema change `id` stands on the target.
    pub async fn ddl_state(&self, id: &str) -> Result<Option<DdlState>, ApplyError> {
        let mut c = self.conn().await?;
        let s: Option<String> = c
            .exec_first(
                format!(
                    "SELECT state FROM {} WHERE pipeline = ? AND ddl_id = ?",
                    self.ddl
                ),
                (&self.pipeline, id),
            )
            .await
            .map_err(self.bk(&self.ddl))?;
        Ok(s.map(|s| match s.as_str() {
            "done" => DdlState::Done,
            "failed" => DdlState::Failed,
            _ => DdlState::Executing,
        }))
    }

    /// Records where schema change `id` stands (`topic`: the one whose partition 0 runs it).
    pub async fn ddl_mark(
        &self,
        topic: &str,
        id: &str,
        state: DdlState,
        at: &SourcePos,
        statement: &str,
    ) -> Result<(), ApplyError> {
        let mut c = self.conn().await?;
        let state = match state {
            DdlState::Executing => "executing",
            DdlState::Done => "done",
            DdlState::Failed => "failed",
        };
        c.exec_drop(
            format!(
                "INSERT INTO {} (pipeline, topic, ddl_id, state, source_position, statement) \
                 VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state), \
                 statement = VALUES(statement), updated_at = CURRENT_TIMESTAMP(6)",
                self.ddl
            ),
            (&self.pipeline, topic, id, state, at.to_string(), statement),
        )
        .await
        .map_err(self.bk(&self.ddl))
    }

    /// Runs one schema change: creates `create_db` first when given, runs `sql` with
    /// `use_db` as the default database when given (skipped if the target lacks it).
    /// The connection is closed afterwards, so no pooled session keeps the `USE`.
    pub async fn ddl_execute(
        &self,
        table: &TableId,
        create_db: Option<&str>,
        use_db: Option<&str>,
        sql: &str,
    ) -> Result<(), ApplyError> {
        let mut c = self.conn().await?;
        let err = |source| ApplyError::Ddl {
            table: table.clone(),
            statement: sql.to_owned(),
            source,
        };
        if let Some(db) = create_db {
            let q = format!("CREATE DATABASE IF NOT EXISTS `{}`", db.replace('`', "``"));
            c.query_drop(q).await.map_err(err)?;
        }
        if let Some(db) = use_db.filter(|d| !d.is_empty()) {
            match c
                .query_drop(format!("USE `{}`", db.replace('`', "``")))
                .await
            {
                Ok(()) => {}
                Err(mysql_async::Error::Server(e)) if e.code == 1049 => {}
                Err(e) => return Err(err(e)),
            }
        }
        let r = c.query_drop(sql).await.map_err(err);
        let _ = c.disconnect().await;
        r
    }

    pub async fn disconnect(self) {
        let _ = self.pool.disconnect().await;
    }
}
