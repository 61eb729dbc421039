//! Statements for a target database, built from merged runs.
//!
//! One module per dialect; MySQL/MariaDB is the first. Values become statement text only
//! in the dialect module.

pub mod mysql;

use otter_core::Op;

use crate::mapping::Shape;
use crate::merge::{Final, Run};
pub use mysql::{Sizing, SqlError, Stmt, StmtKind};

/// The statements that apply `run` (whose table is written as `shape`), in order:
/// deletes, then upserts for a keyed run; each change on its own for a keyless one,
/// consecutive inserts sharing a multi-row `INSERT`.
pub fn statements(run: &Run, shape: &Shape, sizing: Sizing) -> Result<Vec<Stmt>, SqlError> {
    match run {
        Run::Keyed { finals, .. } => {
            let mut dels = Vec::new();
            let mut ups = Vec::new();
            for f in finals {
                match f {
                    Final::Delete(r) => dels.push(r.as_slice()),
                    Final::Upsert(r) => ups.push(r.as_slice()),
                }
            }
            let mut out = mysql::deletes(shape, &dels, sizing.max_bytes)?;
            out.extend(mysql::inserts(shape, &ups, true, sizing)?);
            Ok(out)
        }
        Run::Keyless { changes, .. } => {
            let mut out = Vec::new();
            let mut inserts: Vec<&[_]> = Vec::new();
            for ev in changes {
                if let (Op::Insert, Some(after)) = (ev.op, &ev.after) {
                    inserts.push(after);
                    continue;
                }
                out.extend(mysql::inserts(shape, &inserts, false, sizing)?);
                inserts.clear();
                let missing = || SqlError::Missing {
                    column: "(row image)".into(),
                };
                let before = ev.before.as_deref().ok_or_else(missing)?;
                out.push(match &ev.after {
                    Some(after) => mysql::keyless_update(shape, before, after)?,
                    None => mysql::keyless_delete(shape, before)?,
                });
            }
            out.extend(mysql::inserts(shape, &inserts, false, sizing)?);
            Ok(out)
        }
    }
}
