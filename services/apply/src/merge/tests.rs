use std::collections::BTreeMap;

use otter_core::{ColumnKind, Value};
use proptest::prelude::*;

use super::*;
use crate::testing;

fn schema(key: bool, version: u32) -> Arc<TableSchema> {
    let cols = [("id", ColumnKind::Int), ("v", ColumnKind::Int)];
    testing::schema("db", "t", &cols, if key { &[0] } else { &[] }, version)
}

fn row(id: i64, v: Option<i64>) -> Row {
    vec![Some(Value::Int(id)), v.map(Value::Int)]
}

fn event(
    schema: &Arc<TableSchema>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
) -> ChangeEvent {
    testing::change(schema, op, before, after)
}

type Table = BTreeMap<i64, Option<i64>>;

fn id_of(r: &Row) -> i64 {
    match r.first() {
        Some(Some(Value::Int(i))) => *i,
        other => panic!("test rows have an int id, got {other:?}"),
    }
}

fn val_of(r: &Row) -> Option<i64> {
    match r.get(1) {
        Some(Some(Value::Int(v))) => Some(*v),
        _ => None,
    }
}

/// What the target does with one change, applied on its own.
fn apply_one(t: &mut Table, ev: &ChangeEvent) {
    if let Some(b) = &ev.before {
        t.remove(&id_of(b));
    }
    if let Some(a) = &ev.after {
        t.insert(id_of(a), val_of(a));
    }
}

/// What the target does with merged runs: deletes, then upserts.
fn apply_runs(t: &mut Table, runs: &[Run]) {
    for run in runs {
        let Run::Keyed { finals, .. } = run else {
            panic!("keyed table gave a keyless run")
        };
        for f in finals {
            if let Final::Delete(r) = f {
                t.remove(&id_of(r));
            }
        }
        for f in finals {
            if let Final::Upsert(r) = f {
                t.insert(id_of(r), val_of(r));
            }
        }
    }
}

/// Turns random instructions into a valid change stream of a source table that starts
/// as `initial`: inserts of absent keys, updates and deletes of present ones, and key
/// moves onto absent keys.
fn stream(initial: &Table, ops: &[(u8, i64, i64)]) -> Vec<ChangeEvent> {
    let s = schema(true, 1);
    let mut src = initial.clone();
    let mut out = Vec::new();
    for &(kind, a, b) in ops {
        let present = src.get(&a).copied();
        match (kind % 4, present) {
            (0, None) => {
                let v = (b % 3 != 0).then_some(b);
                src.insert(a, v);
                out.push(event(&s, Op::Insert, None, Some(row(a, v))));
            }
            (1, Some(old)) => {
                let v = (b % 3 != 0).then_some(b);
                src.insert(a, v);
                out.push(event(&s, Op::Update, Some(row(a, old)), Some(row(a, v))));
            }
            (2, Some(old)) => {
                src.remove(&a);
                out.push(event(&s, Op::Delete, Some(row(a, old)), None));
            }
            (3, Some(old)) if !src.contains_key(&b) => {
                src.remove(&a);
                src.insert(b, old);
                // As capture publishes a key change: delete of the old key, insert of the new.
                out.push(event(&s, Op::Delete, Some(row(a, old)), None));
                out.push(event(&s, Op::Insert, None, Some(row(b, old))));
            }
            (3, Some(old)) => {
                // Moving onto a taken key is refused by the source; an update in place.
                out.push(event(&s, Op::Update, Some(row(a, old)), Some(row(a, old))));
            }
            _ => {}
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn merged_runs_have_the_effect_of_the_changes_one_by_one(
        initial in proptest::collection::btree_map(0i64..8, proptest::option::of(0i64..5), 0..6),
        ops in proptest::collection::vec((0u8..4, 0i64..8, 0i64..8), 0..40),
    ) {
        let changes = stream(&initial, &ops);
        let mut one_by_one = initial.clone();
        for ev in &changes {
            apply_one(&mut one_by_one, ev);
        }
        let runs = merge(&changes).expect("merge");
        let mut merged = initial.clone();
        apply_runs(&mut merged, &runs);
        prop_assert_eq!(&merged, &one_by_one);
        let rows: usize = runs.iter().map(Run::rows).sum();
        prop_assert!(rows <= changes.len());
    }
}

#[test]
fn an_update_that_moves_the_key_becomes_a_delete_and_an_upsert() {
    let s = schema(true, 1);
    let changes = [
        event(&s, Op::Insert, None, Some(row(1, Some(10)))),
        event(
            &s,
            Op::Update,
            Some(row(1, Some(10))),
            Some(row(2, Some(10))),
        ),
        event(
            &s,
            Op::Update,
            Some(row(2, Some(10))),
            Some(row(3, Some(11))),
        ),
    ];
    let runs = merge(&changes).expect("merge");
    assert_eq!(
        runs,
        vec![Run::Keyed {
            schema: &s,
            finals: vec![
                Final::Delete(&row(1, Some(10))),
                Final::Delete(&row(2, Some(10))),
                Final::Upsert(&row(3, Some(11))),
            ],
        }]
    );
}

#[test]
fn keyless_changes_stay_one_by_one_and_schema_changes_cut_runs() {
    let (k1, k2, nk) = (schema(true, 1), schema(true, 2), schema(false, 3));
    let dup = row(5, Some(1));
    let changes = [
        event(&k1, Op::Insert, None, Some(row(1, None))),
        event(&k1, Op::Update, Some(row(1, None)), Some(row(1, Some(2)))),
        event(&k2, Op::Delete, Some(row(1, Some(2))), None),
        event(&nk, Op::Insert, None, Some(dup.clone())),
        event(&nk, Op::Insert, None, Some(dup.clone())),
        event(&nk, Op::Delete, Some(dup.clone()), None),
    ];
    let runs = merge(&changes).expect("merge");
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].rows(), 1);
    assert!(
        matches!(&runs[1], Run::Keyed { finals, .. } if finals == &[Final::Delete(&row(1, Some(2)))])
    );
    assert!(matches!(&runs[2], Run::Keyless { changes, .. } if changes.len() == 3));
}
