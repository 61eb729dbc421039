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
//!
//! [`Records`] reuses its buffers and caches topic names: this is the hot path.

use std::collections::HashMap;
use std::sync::Arc;

use otter_core::codec::{self, CodecError};
use otter_core::event::{ChangeEvent, Op};
use otter_core::topic::topic_for;
use otter_core::TableId;

use crate::binlog::Item;

/// Where a record goes within its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// By key hash (the producer's partitioner).
    #[default]
    ByKey,
    /// To every partition.
    AllPartitions,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WireRecord {
    pub topic: Arc<str>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub route: Route,
}

/// The records of one item, in reusable buffers.
pub struct Records {
    prefix: String,
    /// The publishing leader's election epoch (`source.epoch`), if elected.
    epoch: Option<i64>,
    recs: Vec<WireRecord>,
    len: usize,
    topics: HashMap<TableId, Arc<str>>,
}

impl Records {
    pub fn new(prefix: &str) -> Records {
        Records {
            prefix: prefix.to_owned(),
            epoch: None,
            recs: Vec::new(),
            len: 0,
            topics: HashMap::new(),
        }
    }

    /// The records built by the last [`Records::build`].
    pub fn as_slice(&self) -> &[WireRecord] {
        &self.recs[..self.len]
    }

    pub fn topic(&mut self, table: &TableId) -> Arc<str> {
        if let Some(t) = self.topics.get(table) {
            return t.clone();
        }
        let t: Arc<str> = topic_for(&self.prefix, table).into();
        self.topics.insert(table.clone(), t.clone());
        t
    }

    fn next(&mut self, topic: Arc<str>, route: Route) -> &mut WireRecord {
        if self.len == self.recs.len() {
            self.recs.push(WireRecord::default());
        }
        let r = &mut self.recs[self.len];
        self.len += 1;
        r.topic = topic;
        r.route = route;
        r.key.clear();
        r.value.clear();
        r
    }

    /// Marks the records built from now on with an elected leader's epoch.
    pub fn set_epoch(&mut self, epoch: i64) {
        self.epoch = Some(epoch);
    }

    /// Builds the records of `item` (none for a commit marker), replacing the last.
    pub fn build(&mut self, item: &Item, now_ms: i64) -> Result<(), CodecError> {
        self.len = 0;
        let epoch = self.epoch;
        match item {
            Item::Change(ev) => {
                let topic = self.topic(&ev.schema.table);
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
                    change_record(
                        self.next(topic.clone(), Route::ByKey),
                        &del,
                        0,
                        now_ms,
                        epoch,
                    )?;
                    change_record(self.next(topic, Route::ByKey), &ins, 1, now_ms, epoch)?;
                } else {
                    change_record(self.next(topic, Route::ByKey), ev, 0, now_ms, epoch)?;
                }
            }
            Item::Schema(sc) => {
                let topic = self.topic(&sc.table);
                let r = self.next(topic, Route::AllPartitions);
                r.key.extend_from_slice(b"{}");
                codec::encode_schema_change_as(&mut r.value, sc, now_ms, epoch);
            }
            Item::Commit(_) => {}
        }
        Ok(())
    }
}

fn change_record(
    r: &mut WireRecord,
    ev: &ChangeEvent,
    part: u8,
    now_ms: i64,
    epoch: Option<i64>,
) -> Result<(), CodecError> {
    codec::encode_key(&mut r.key, &ev.schema, ev.identifying_image())?;
    codec::encode_change_as(&mut r.value, ev, part, now_ms, epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use otter_core::event::{Column, SourceInfo, TableSchema, TxnMark};
    use otter_core::value::{ColumnKind, Value};
    use otter_core::SourcePos;

    fn update(before_id: i64, after_id: i64, key: Vec<usize>) -> Item {
        let schema = Arc::new(TableSchema {
            table: TableId::new("s", "t.x"),
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: ColumnKind::Int,
                    generated: false,
                },
                Column {
                    name: "v".into(),
                    kind: ColumnKind::Text,
                    generated: false,
                },
            ],
            key,
            version: 1,
        });
        let row = |id: i64| vec![Some(Value::Int(id)), Some(Value::Text("x".into()))];
        Item::Change(ChangeEvent {
            schema,
            op: Op::Update,
            before: Some(row(before_id)),
            after: Some(row(after_id)),
            source: SourceInfo {
                server_id: 1,
                at: SourcePos::new("b.000001", 100),
                row: 0,
                gtid: None,
                commit_time_ms: 0,
            },
            txn: TxnMark {
                id: "b.000001:90".into(),
                total_order: 1,
                table_order: 1,
                last: true,
            },
        })
    }

    #[test]
    fn a_key_change_is_a_delete_on_the_old_key_then_an_insert_on_the_new() {
        let mut r = Records::new("p");
        r.build(&update(2, 10, vec![0]), 0).expect("encodes");
        let recs = r.as_slice();
        assert_eq!(recs.len(), 2);
        assert_eq!(&*recs[0].topic, "p.s.t-2ex");
        assert_eq!(recs[0].key, br#"{"id":2}"#);
        assert_eq!(recs[1].key, br#"{"id":10}"#);
        let (d, c) = (
            codec::decode(&recs[0].value).expect("decodes"),
            codec::decode(&recs[1].value).expect("decodes"),
        );
        assert!(
            matches!(d, codec::Record::Change { ref event, part: 0 } if event.op == Op::Delete && event.after.is_none())
        );
        assert!(
            matches!(c, codec::Record::Change { ref event, part: 1 } if event.op == Op::Insert && event.before.is_none())
        );
        assert_eq!(d.order()[..3], c.order()[..3], "same source position");
    }

    #[test]
    fn an_update_keeping_its_key_is_one_record_and_key_less_tables_share_one_key() {
        let mut r = Records::new("p");
        r.build(&update(2, 2, vec![0]), 0).expect("encodes");
        assert_eq!(r.as_slice().len(), 1);
        r.build(&update(2, 3, vec![]), 0).expect("encodes");
        assert_eq!(r.as_slice().len(), 1, "no key, no key change");
        assert_eq!(r.as_slice()[0].key, b"{}");
    }
}
