//! The heartbeat: a row that capture writes on the source every second and that travels
//! through binlog, broker and apply like any change, so apply can tell how long ago, by
//! the source's clock, the source committed what apply has just committed.
//!
//! Table on the source: `otter.heartbeat (pipeline VARCHAR(64) PRIMARY KEY, beat_us
//! BIGINT NOT NULL)`, `beat_us` = the source's `NOW(6)` in microseconds since the epoch.
//! Each pipeline's capture updates its own row; every capture of that source publishes
//! every row (the table is always captured), and apply reads only its pipeline's.
//! Apply never writes heartbeat rows to the target.

use crate::event::{ChangeEvent, TableId};
use crate::value::Value;

pub const DB: &str = "otter";
pub const TABLE: &str = "heartbeat";

pub fn table() -> TableId {
    TableId::new(DB, TABLE)
}

pub fn is_heartbeat(t: &TableId) -> bool {
    t.db == DB && t.table == TABLE
}

/// `(pipeline, beat_us)` of a heartbeat change's after image, if it is one.
pub fn beat_of(ev: &ChangeEvent) -> Option<(&str, i64)> {
    if !is_heartbeat(&ev.schema.table) {
        return None;
    }
    let after = ev.after.as_ref()?;
    let col = |name: &str| {
        let i = ev.schema.columns.iter().position(|c| c.name == name)?;
        after.get(i)?.as_ref()
    };
    let pipeline = match col("pipeline")? {
        Value::Text(s) => s.as_str(),
        _ => return None,
    };
    let beat = match col("beat_us")? {
        Value::Int(v) => *v,
        Value::UInt(v) => i64::try_from(*v).ok()?,
        _ => return None,
    };
    Some((pipeline, beat))
}
