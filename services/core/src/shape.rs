//! Table shapes as capture's schema history keeps them: what decoding a row needs to
//! know about a table that a binlog written without full row metadata
//! (`binlog_row_metadata` below `FULL`, or servers without it) does not say.
//!
//! Invariants:
//! - Columns are in table order, the order of the values in a row image.
//! - A shape is a value: a schema change builds a new one
//!   ([`crate::ddl::TableDdl::evolve`]), the old one stays what it was for the rows
//!   written before the change.
//! - What a shape does not know it says it does not know (`None`), so decoding can
//!   fall back to the binlog's metadata or refuse, never guess.

use serde::{Deserialize, Serialize};

/// One column of a [`TableShape`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnShape {
    pub name: String,
    /// A numeric column declared UNSIGNED.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unsigned: bool,
    /// Character set of a text, ENUM or SET column (`utf8mb4`, `latin1`, `binary`),
    /// when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// ENUM members, in declaration order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<String>>,
    /// SET members, in declaration order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_values: Option<Vec<String>>,
    /// A generated (virtual or stored) column.
    #[serde(default, skip_serializing_if = "is_false")]
    pub generated: bool,
    /// MariaDB's JSON: a LONGTEXT the server checks with `json_valid()`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub json: bool,
}

impl ColumnShape {
    pub fn named(name: impl Into<String>) -> ColumnShape {
        ColumnShape {
            name: name.into(),
            unsigned: false,
            charset: None,
            enum_values: None,
            set_values: None,
            generated: false,
            json: false,
        }
    }
}

/// A table's columns and primary key as of one point of the binlog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableShape {
    pub columns: Vec<ColumnShape>,
    /// Primary-key column names, in key order; empty without a primary key.
    #[serde(default)]
    pub key: Vec<String>,
    /// The table's default character set (for columns added without one), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
}

impl TableShape {
    pub fn index_of(&self, column: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(column))
    }

    /// Primary-key column positions, in key order; `None` when a key column is missing.
    pub fn key_positions(&self) -> Option<Vec<usize>> {
        self.key.iter().map(|k| self.index_of(k)).collect()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The character set a collation name belongs to (`utf8mb4_bin` → `utf8mb4`).
pub fn charset_of_collation(collation: &str) -> String {
    let c = collation.to_ascii_lowercase();
    match c.split_once('_') {
        Some((cs, _)) => cs.to_owned(),
        None => c,
    }
}
