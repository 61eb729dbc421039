//! Builders the unit tests share.

use std::sync::Arc;

use otter_core::event::SourceInfo;
use otter_core::{
    ChangeEvent, Column, ColumnKind, Op, Row, SourcePos, TableId, TableSchema, TxnMark,
};

/// A table `db.table` with `cols` (none generated) and the key columns at `key`.
pub fn schema(
    db: &str,
    table: &str,
    cols: &[(&str, ColumnKind)],
    key: &[usize],
    version: u32,
) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        table: TableId::new(db, table),
        columns: cols
            .iter()
            .map(|(n, k)| Column {
                name: (*n).into(),
                kind: *k,
                generated: false,
            })
            .collect(),
        key: key.to_vec(),
        version,
    })
}

/// A change of `schema` at a fixed source position.
pub fn change(
    schema: &Arc<TableSchema>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
) -> ChangeEvent {
    ChangeEvent {
        schema: schema.clone(),
        op,
        before,
        after,
        source: SourceInfo {
            server_id: 1,
            at: SourcePos::new("bin.000001", 4),
            row: 0,
            gtid: None,
            commit_time_ms: 0,
        },
        txn: TxnMark {
            id: "t".into(),
            total_order: 1,
            table_order: 1,
            last: true,
        },
    }
}
