//! Merges a partition's batch of row changes into the fewest statements with the same
//! effect (Otter's merge step).
//!
//! Invariants:
//! - For a table with a primary key, only the last change of each key counts, because
//!   row images are full: insert or update leaves the row equal to its after image
//!   (an upsert), delete removes it. So insert + update → upsert of the final image,
//!   update + update → the last image, anything + delete → delete, delete + insert →
//!   upsert (replace). A key change is a delete of the old key and an upsert of the new
//!   one (capture already publishes it so; an update whose images disagree on the key is
//!   split here the same way), so chains of key changes follow through.
//! - A run's deletes are written before its upserts: after merging no key appears in
//!   both, and freeing unique values first avoids false conflicts on secondary keys.
//! - Tables without a primary key are not merged: each change is applied on its own, in
//!   order, matching the full before image, so duplicate rows stay duplicates.
//! - A batch is cut into runs where the table's schema changes, and runs are applied in
//!   order; nothing is merged across a schema change.
//!
//! The merge law (applying the merged runs equals applying the changes one by one) is a
//! property test below.

use std::collections::HashMap;
use std::sync::Arc;

use otter_core::codec::{encode_key, CodecError};
use otter_core::{ChangeEvent, Op, Row, TableSchema};

/// The final state of one key within a run; borrows the image from its change, so
/// merging copies no row (the worker keeps the changes for retries).
#[derive(Debug, Clone, PartialEq)]
pub enum Final<'a> {
    Upsert(&'a Row),
    /// The identifying (before) image of the deleted row.
    Delete(&'a Row),
}

/// Consecutive changes of one schema version, merged.
#[derive(Debug, Clone, PartialEq)]
pub enum Run<'a> {
    Keyed {
        schema: &'a Arc<TableSchema>,
        /// One entry per key, in order of the key's first change in the run.
        finals: Vec<Final<'a>>,
    },
    Keyless {
        schema: &'a Arc<TableSchema>,
        changes: Vec<&'a ChangeEvent>,
    },
}

impl Run<'_> {
    pub fn schema(&self) -> &Arc<TableSchema> {
        match self {
            Run::Keyed { schema, .. } | Run::Keyless { schema, .. } => schema,
        }
    }

    /// Rows this run writes (statements' worth of row operations).
    pub fn rows(&self) -> usize {
        match self {
            Run::Keyed { finals, .. } => finals.len(),
            Run::Keyless { changes, .. } => changes.len(),
        }
    }
}

struct KeyedBuilder<'a> {
    schema: &'a Arc<TableSchema>,
    index: HashMap<Vec<u8>, usize>,
    finals: Vec<Final<'a>>,
    key_buf: Vec<u8>,
}

impl<'a> KeyedBuilder<'a> {
    fn set(&mut self, state: Final<'a>) -> Result<(), CodecError> {
        let (Final::Upsert(row) | Final::Delete(row)) = state;
        self.key_buf.clear();
        encode_key(&mut self.key_buf, self.schema, row)?;
        match self.index.get(&self.key_buf) {
            Some(&i) => self.finals[i] = state,
            None => {
                self.index.insert(self.key_buf.clone(), self.finals.len());
                self.finals.push(state);
            }
        }
        Ok(())
    }

    fn push(&mut self, ev: &'a ChangeEvent) -> Result<(), CodecError> {
        match (ev.op, &ev.before, &ev.after) {
            (Op::Delete, Some(before), _) => self.set(Final::Delete(before)),
            (Op::Insert, _, Some(after)) => self.set(Final::Upsert(after)),
            (Op::Update, Some(before), Some(after)) => {
                let moved = self
                    .schema
                    .key
                    .iter()
                    .any(|&k| before.get(k) != after.get(k));
                if moved {
                    self.set(Final::Delete(before))?;
                }
                self.set(Final::Upsert(after))
            }
            // `ChangeEvent::check` ran at decode time; an event without its images
            // cannot reach here.
            (op, _, _) => Err(CodecError::Column {
                column: String::new(),
                problem: format!("{op:?} event without its row images"),
            }),
        }
    }
}

/// Merges `changes` (one partition, in order) into runs.
pub fn merge<'a>(
    changes: impl IntoIterator<Item = &'a ChangeEvent>,
) -> Result<Vec<Run<'a>>, CodecError> {
    let mut runs = Vec::new();
    let mut keyed: Option<KeyedBuilder<'a>> = None;
    let mut keyless: Option<(&'a Arc<TableSchema>, Vec<&'a ChangeEvent>)> = None;
    for ev in changes {
        let same = |s: &Arc<TableSchema>| Arc::ptr_eq(s, &ev.schema) || **s == *ev.schema;
        if ev.schema.key.is_empty() {
            if let Some(b) = keyed.take() {
                runs.push(finish_keyed(b));
            }
            match &mut keyless {
                Some((s, list)) if same(s) => list.push(ev),
                _ => {
                    if let Some((schema, changes)) = keyless.take() {
                        runs.push(Run::Keyless { schema, changes });
                    }
                    keyless = Some((&ev.schema, vec![ev]));
                }
            }
            continue;
        }
        if let Some((schema, changes)) = keyless.take() {
            runs.push(Run::Keyless { schema, changes });
        }
        if keyed.as_ref().is_some_and(|b| !same(b.schema)) {
            if let Some(b) = keyed.take() {
                runs.push(finish_keyed(b));
            }
        }
        let b = keyed.get_or_insert_with(|| KeyedBuilder {
            schema: &ev.schema,
            index: HashMap::new(),
            finals: Vec::new(),
            key_buf: Vec::new(),
        });
        b.push(ev)?;
    }
    if let Some(b) = keyed {
        runs.push(finish_keyed(b));
    }
    if let Some((schema, changes)) = keyless {
        runs.push(Run::Keyless { schema, changes });
    }
    Ok(runs)
}

fn finish_keyed(b: KeyedBuilder<'_>) -> Run<'_> {
    Run::Keyed {
        schema: b.schema,
        finals: b.finals,
    }
}

#[cfg(test)]
mod tests;
