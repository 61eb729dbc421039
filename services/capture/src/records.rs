//! ChangeEvent -> Kafka records: topic, key, value, and where it must go.
//!
//! Invariants:
//! - A change's key is its row's primary key (the before image's for updates and
//!   deletes), so all changes of one row share a partition and keep their order.
//! - A table without a primary key uses the empty key `{}` for every row: one
//!   partition holds the whole table's changes, in binlog order.
//! - An update that changes the primary key is two records, as Debezium does: a delete
//!   (`part` 0) keyed by the old key and an insert (`part` 1) keyed by the new key,
//!   both carrying the same source position. Per key the order stays exact.
//! - A schema change is copied to every partition of its table's topic.

use otter_core::codec::{self, CodecError};
use otter_core::event::{ChangeEvent, Op};
use otter_core::topic::topic_for;

use crate::binlog::Item;

/// Where a record goes within its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// By key hash (the producer's partitioner).
    ByKey,
    /// To every partition.
    AllPartitions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    pub topic: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub route: Route,
}

/// Appends the records of `item` (none for a commit marker) to `out`.
pub fn records_of(
    item: &Item,
    prefix: &str,
    now_ms: i64,
    out: &mut Vec<WireRecord>,
) -> Result<(), CodecError> {
    match item {
        Item::Change(ev) => {
            let topic = topic_for(prefix, &ev.schema.table);
            if ev.changes_key() {
                let del = ChangeEvent {
                    op: Op::Delete,
                    after: None,
                    ..ev.clone()
                };
                let ins = ChangeEvent {
                    op: Op::Insert,
                    before: None,
                    ..ev.clone()
                };
                out.push(change_record(&del, 0, topic.clone(), now_ms)?);
                out.push(change_record(&ins, 1, topic, now_ms)?);
            } else {
                out.push(change_record(ev, 0, topic, now_ms)?);
            }
        }
        Item::Schema(sc) => {
            let mut value = Vec::with_capacity(sc.ddl.len() + 256);
            codec::encode_schema_change(&mut value, sc, now_ms);
            out.push(WireRecord {
                topic: topic_for(prefix, &sc.table),
                key: b"{}".to_vec(),
                value,
                route: Route::AllPartitions,
            });
        }
        Item::Commit(_) => {}
    }
    Ok(())
}

fn change_record(
    ev: &ChangeEvent,
    part: u8,
    topic: String,
    now_ms: i64,
) -> Result<WireRecord, CodecError> {
    let mut key = Vec::with_capacity(32);
    codec::encode_key(&mut key, &ev.schema, ev.identifying_image())?;
    let mut value = Vec::with_capacity(512);
    codec::encode_change(&mut value, ev, part, now_ms)?;
    Ok(WireRecord {
        topic,
        key,
        value,
        route: Route::ByKey,
    })
}
