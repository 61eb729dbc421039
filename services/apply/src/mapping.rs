//! Where a source table's rows land on the target: Otter's data-media pairs.
//!
//! Rules are tried in order; the first whose source patterns match a table decides its
//! target database, table and columns. A table no rule matches keeps its names.
//!
//! Invariants of a [`Shape`] (checked when it is built, a `Table`-class error if not):
//! - Generated columns are never written; the target computes its own.
//! - Every key column is written, so deletes and upserts can find their row.
//! - No two written columns have the same target name.

use std::collections::BTreeMap;

use otter_core::{ColumnKind, TableId, TableSchema};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// One mapping rule, as written in the configuration (`[[map]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapRule {
    /// Regular expression matched against the whole source database name.
    #[serde(default = "any")]
    pub source_db: String,
    /// Regular expression matched against the whole source table name.
    #[serde(default = "any")]
    pub source_table: String,
    /// Target database; `$1`.. refer to groups of `source_db`. Default: the source's.
    #[serde(default)]
    pub target_db: Option<String>,
    /// Target table; `$1`.. refer to groups of `source_table`. Default: the source's.
    /// Several source tables may map to one target table (sharded tables merged).
    #[serde(default)]
    pub target_table: Option<String>,
    /// Source column name -> target column name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Only these source columns are written (all when empty). Key columns must be in.
    #[serde(default)]
    pub include: Vec<String>,
    /// These source columns are not written. Key columns cannot be excluded.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Matching tables are not written at all: their records are consumed, counted as
    /// skipped (`reason="filtered"`) and the position moves past them (Otter's tables
    /// left out of a data-media pair, decided on the apply side).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip: bool,
}

impl MapRule {
    /// Whether the rule writes source column `column` (its `include` and `exclude`).
    fn writes(&self, column: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|i| i == column))
            && !self.exclude.iter().any(|e| e == column)
    }
}

fn any() -> String {
    ".*".into()
}

impl Default for MapRule {
    /// Matches every table and changes nothing.
    fn default() -> Self {
        MapRule {
            source_db: any(),
            source_table: any(),
            target_db: None,
            target_table: None,
            columns: BTreeMap::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            skip: false,
        }
    }
}

/// A mapping rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("map rule {rule}: `{pattern}` is not a valid regular expression")]
    Pattern { rule: usize, pattern: String },
    #[error("{table}: key column `{column}` is excluded by map rule {rule}")]
    KeyExcluded {
        table: TableId,
        column: String,
        rule: usize,
    },
    #[error("{table}: columns `{a}` and `{b}` both map to target column `{target}`")]
    Collision {
        table: TableId,
        a: String,
        b: String,
        target: String,
    },
    #[error("{table}: map rule {rule} names column `{column}`, which the table does not have")]
    UnknownColumn {
        table: TableId,
        column: String,
        rule: usize,
    },
}

struct Compiled {
    db: Regex,
    table: Regex,
    rule: MapRule,
}

/// The compiled rules of one pipeline.
pub struct Mapping {
    rules: Vec<Compiled>,
}

/// One written column of a [`Shape`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeCol {
    /// Index of the column in the source schema (and row images).
    pub src: usize,
    /// Column name on the target.
    pub name: String,
    pub kind: ColumnKind,
}

/// A source table as written on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub source: TableId,
    pub target: TableId,
    /// Written columns, in source order.
    pub cols: Vec<ShapeCol>,
    /// Indexes into `cols` of the primary key; empty for a table without one.
    pub key: Vec<usize>,
}

impl Mapping {
    pub fn new(rules: &[MapRule]) -> Result<Mapping, Vec<MappingError>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let compile = |p: &str| {
                Regex::new(&format!("^(?:{p})$")).map_err(|_| MappingError::Pattern {
                    rule: i + 1,
                    pattern: p.to_owned(),
                })
            };
            match (compile(&rule.source_db), compile(&rule.source_table)) {
                (Ok(db), Ok(table)) => out.push(Compiled {
                    db,
                    table,
                    rule: rule.clone(),
                }),
                (a, b) => errors.extend([a.err(), b.err()].into_iter().flatten()),
            }
        }
        if errors.is_empty() {
            Ok(Mapping { rules: out })
        } else {
            Err(errors)
        }
    }

    /// The identity mapping (no rules).
    pub fn identity() -> Mapping {
        Mapping { rules: Vec::new() }
    }

    fn rule_for(&self, src: &TableId) -> Option<(usize, &Compiled)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, c)| c.db.is_match(&src.db) && c.table.is_match(&src.table))
    }

    /// Whether `table`'s changes are left out (its rule says `skip = true`).
    pub fn skips(&self, table: &TableId) -> bool {
        self.rule_for(table).is_some_and(|(_, c)| c.rule.skip)
    }

    /// How `schema`'s rows are written on the target.
    pub fn shape(&self, schema: &TableSchema) -> Result<Shape, MappingError> {
        let src = &schema.table;
        let found = self.rule_for(src);
        let Some((i, c)) = found else {
            return Self::build(schema, src.clone(), None, 0);
        };
        Self::build(schema, Self::target(c, src), Some(&c.rule), i + 1)
    }

    fn target(c: &Compiled, src: &TableId) -> TableId {
        let db = match &c.rule.target_db {
            Some(t) => c.db.replace(&src.db, t.as_str()).into_owned(),
            None => src.db.clone(),
        };
        let table = match &c.rule.target_table {
            Some(t) => c.table.replace(&src.table, t.as_str()).into_owned(),
            None => src.table.clone(),
        };
        TableId::new(db, table)
    }

    /// Whether `src` keeps its own name and every column's on the target (so a
    /// statement about it can run there as the source wrote it).
    pub fn keeps_names(&self, src: &TableId) -> bool {
        match self.rule_for(src) {
            None => true,
            Some((_, c)) => {
                Self::target(c, src) == *src
                    && c.rule.columns.iter().all(|(a, b)| a == b)
                    && c.rule.include.is_empty()
                    && c.rule.exclude.is_empty()
            }
        }
    }

    fn build(
        schema: &TableSchema,
        target: TableId,
        rule: Option<&MapRule>,
        rule_no: usize,
    ) -> Result<Shape, MappingError> {
        let table = &schema.table;
        if let Some(r) = rule {
            let named = r.columns.keys().chain(&r.include).chain(&r.exclude);
            for name in named {
                if !schema.columns.iter().any(|c| &c.name == name) {
                    return Err(MappingError::UnknownColumn {
                        table: table.clone(),
                        column: name.clone(),
                        rule: rule_no,
                    });
                }
            }
        }
        let mut cols: Vec<ShapeCol> = Vec::new();
        let mut key = Vec::new();
        for (i, c) in schema.columns.iter().enumerate() {
            let is_key = schema.key.contains(&i);
            let written = rule.is_none_or(|r| r.writes(&c.name));
            if !written {
                if is_key {
                    return Err(MappingError::KeyExcluded {
                        table: table.clone(),
                        column: c.name.clone(),
                        rule: rule_no,
                    });
                }
                continue;
            }
            if c.generated {
                continue;
            }
            let name = rule
                .and_then(|r| r.columns.get(&c.name))
                .unwrap_or(&c.name)
                .clone();
            if let Some(prev) = cols.iter().find(|p| p.name == name) {
                return Err(MappingError::Collision {
                    table: table.clone(),
                    a: schema.columns[prev.src].name.clone(),
                    b: c.name.clone(),
                    target: name,
                });
            }
            if is_key {
                key.push(cols.len());
            }
            cols.push(ShapeCol {
                src: i,
                name,
                kind: c.kind,
            });
        }
        // Key order is the source's key order, not column order.
        key.sort_by_key(|&k| schema.key.iter().position(|&s| s == cols[k].src));
        Ok(Shape {
            source: table.clone(),
            target,
            cols,
            key,
        })
    }
}

/// Schema changes are rendered under the names rows are written with.
impl otter_core::ddl::Names for Mapping {
    fn table(&self, src: &TableId) -> TableId {
        self.rule_for(src)
            .map_or_else(|| src.clone(), |(_, c)| Self::target(c, src))
    }

    fn column(&self, src: &TableId, column: &str) -> Option<String> {
        let Some((_, c)) = self.rule_for(src) else {
            return Some(column.to_owned());
        };
        let r = &c.rule;
        r.writes(column).then(|| {
            r.columns
                .get(column)
                .cloned()
                .unwrap_or_else(|| column.to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use otter_core::Column;

    use super::*;

    fn schema() -> TableSchema {
        let col = |name: &str, kind, generated| Column {
            name: name.into(),
            kind,
            generated,
        };
        TableSchema {
            table: TableId::new("shop_3", "orders_7"),
            columns: vec![
                col("note", ColumnKind::Text, false),
                col("id", ColumnKind::Int, false),
                col("region", ColumnKind::Text, false),
                col("total", ColumnKind::Decimal, false),
                col("total_x2", ColumnKind::Decimal, true),
            ],
            key: vec![2, 1],
            version: 1,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_whether_a_table_is_left_out() {
        let m = Mapping::new(&[
            MapRule {
                source_table: "audit_.*".into(),
                skip: true,
                ..MapRule::default()
            },
            MapRule {
                source_db: "shop_(\\d+)".into(),
                target_db: Some("shop".into()),
                ..MapRule::default()
            },
        ])
        .expect("rules compile");
        assert!(m.skips(&TableId::new("shop_3", "audit_log")));
        assert!(!m.skips(&TableId::new("shop_3", "orders_7")));
        assert!(!m.skips(&TableId::new("other", "x")));
        assert!(!Mapping::identity().skips(&TableId::new("shop_3", "audit_log")));
    }

    #[test]
    fn unmatched_tables_keep_their_names_and_skip_generated_columns() {
        let s = Mapping::identity().shape(&schema()).expect("shape");
        assert_eq!(s.target, TableId::new("shop_3", "orders_7"));
        let names: Vec<_> = s.cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["note", "id", "region", "total"]);
        let key: Vec<_> = s.key.iter().map(|&k| s.cols[k].name.as_str()).collect();
        assert_eq!(key, ["region", "id"], "source key order is kept");
    }

    #[test]
    fn rules_rename_databases_tables_and_columns_with_groups() {
        let m = Mapping::new(&[MapRule {
            source_db: "shop_(\\d+)".into(),
            source_table: "orders_\\d+".into(),
            target_db: Some("all_shops".into()),
            target_table: Some("orders".into()),
            columns: [("note".to_owned(), "remark".to_owned())].into(),
            exclude: vec!["total".into()],
            ..MapRule::default()
        }])
        .expect("valid");
        let s = m.shape(&schema()).expect("shape");
        assert_eq!(s.target, TableId::new("all_shops", "orders"));
        let names: Vec<_> = s.cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["remark", "id", "region"]);

        let m = Mapping::new(&[MapRule {
            source_db: "shop_(\\d+)".into(),
            target_db: Some("copy_$1".into()),
            ..MapRule::default()
        }])
        .expect("valid");
        let s = m.shape(&schema()).expect("shape");
        assert_eq!(s.target, TableId::new("copy_3", "orders_7"));
    }

    #[test]
    fn a_rule_may_not_lose_a_key_column_or_merge_two_columns() {
        let excl = Mapping::new(&[MapRule {
            include: vec!["id".into(), "note".into()],
            ..MapRule::default()
        }])
        .expect("valid");
        assert!(matches!(
            excl.shape(&schema()),
            Err(MappingError::KeyExcluded { column, .. }) if column == "region"
        ));
        let clash = Mapping::new(&[MapRule {
            columns: [("note".to_owned(), "region".to_owned())].into(),
            ..MapRule::default()
        }])
        .expect("valid");
        assert!(matches!(
            clash.shape(&schema()),
            Err(MappingError::Collision { .. })
        ));
        let unknown = Mapping::new(&[MapRule {
            exclude: vec!["nope".into()],
            ..MapRule::default()
        }])
        .expect("valid");
        assert!(matches!(
            unknown.shape(&schema()),
            Err(MappingError::UnknownColumn { .. })
        ));
        assert!(Mapping::new(&[MapRule {
            source_table: "(".into(),
            ..MapRule::default()
        }])
        .is_err());
    }
}
