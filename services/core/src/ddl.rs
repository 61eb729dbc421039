//! What a DDL statement does to each table it names, parsed with `sqlparser`'s MySQL
//! dialect, and how to say the same thing about the target's tables.
//!
//! Capture uses [`analyze`] and [`tables`] to route a schema change to the topic of every
//! table it changes, with its [`DdlKind`]; apply re-analyses the record's statement and
//! [`render_all`]s it under the target's names.
//!
//! Invariants:
//! - One statement naming several tables (`DROP TABLE a, b`, `RENAME TABLE a TO b, c TO
//!   d`, `TRUNCATE a, b`) becomes one [`TableDdl`] per table, each a complete statement
//!   about that table alone, in the order the statement names them.
//! - Every table name in a [`TableDdl`]'s statement is qualified with its database, so
//!   the statement means the same thing whatever the session's default database.
//! - A statement the parser cannot read is an [`DdlParseError`] with the parser's reason;
//!   the caller falls back to the tables a tokenizer finds and ships the text as is
//!   ([`DdlKind::Unparsed`]). Nothing here panics on any input.
//! - Statements that change no table's shape or content (views, routines, grants,
//!   temporary tables) give no [`TableDdl`].

use sqlparser::ast::{
    AlterTable, AlterTableOperation, ColumnDef, CreateTable, CreateTableLikeKind, Ident,
    ObjectName, ObjectNamePart, ObjectType, RenameTable, RenameTableNameKind, Statement, Truncate,
    TruncateTableTarget,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::event::TableId;

/// What a schema change does, as carried in the change stream (`ddl_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DdlKind {
    CreateTable,
    AlterTable,
    DropTable,
    RenameTable,
    TruncateTable,
    CreateIndex,
    DropIndex,
    /// Not understood by the parser: the statement text is all there is.
    Unparsed,
    /// Named without being changed (the model of `CREATE TABLE ... LIKE`): on this
    /// table's stream only so the change sits between the same rows there too.
    Referenced,
}

impl DdlKind {
    pub const ALL: [DdlKind; 9] = [
        DdlKind::CreateTable,
        DdlKind::AlterTable,
        DdlKind::DropTable,
        DdlKind::RenameTable,
        DdlKind::TruncateTable,
        DdlKind::CreateIndex,
        DdlKind::DropIndex,
        DdlKind::Unparsed,
        DdlKind::Referenced,
    ];

    /// The name used in the change stream.
    pub fn as_str(self) -> &'static str {
        match self {
            DdlKind::CreateTable => "create_table",
            DdlKind::AlterTable => "alter_table",
            DdlKind::DropTable => "drop_table",
            DdlKind::RenameTable => "rename_table",
            DdlKind::TruncateTable => "truncate_table",
            DdlKind::CreateIndex => "create_index",
            DdlKind::DropIndex => "drop_index",
            DdlKind::Unparsed => "unparsed",
            DdlKind::Referenced => "referenced",
        }
    }

    pub fn from_name(s: &str) -> Option<DdlKind> {
        DdlKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The parser's reason for not reading a statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the SQL parser cannot read this statement: {0}")]
pub struct DdlParseError(pub String);

/// One table's part of a DDL statement.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDdl {
    /// The table whose stream carries the change (the old name of a renamed table).
    pub table: TableId,
    pub kind: DdlKind,
    /// Only adds to the table (a new table, column or index), never removes or changes
    /// what is there.
    pub additive: bool,
    stmt: Statement,
}

/// How [`TableDdl::render`] names things on the target.
pub trait Names {
    /// The target table of a source table.
    fn table(&self, source: &TableId) -> TableId;
    /// The target name of a source table's column; `None` when it is not written.
    fn column(&self, source: &TableId, column: &str) -> Option<String>;
}

/// Source names unchanged.
pub struct SameNames;

impl Names for SameNames {
    fn table(&self, source: &TableId) -> TableId {
        source.clone()
    }
    fn column(&self, _: &TableId, column: &str) -> Option<String> {
        Some(column.to_owned())
    }
}

/// Splits `sql` (run with default database `default_db`) into what it does to each
/// table; empty for statements that change no table.
pub fn analyze(sql: &str, default_db: &str) -> Result<Vec<TableDdl>, DdlParseError> {
    let stmts =
        Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| DdlParseError(e.to_string()))?;
    let mut out = Vec::new();
    for stmt in stmts {
        split(stmt, default_db, &mut out)?;
    }
    Ok(out)
}

fn split(stmt: Statement, db: &str, out: &mut Vec<TableDdl>) -> Result<(), DdlParseError> {
    let unnamed = |what: &str, n: &ObjectName| DdlParseError(format!("{what} `{n}`"));
    match stmt {
        Statement::CreateTable(mut ct) => {
            if ct.temporary {
                return Ok(());
            }
            let table = table_of(&ct.name, db).ok_or_else(|| unnamed("table name", &ct.name))?;
            ct.name = object_name(&table);
            qualify_like(&mut ct, db);
            out.push(TableDdl {
                table,
                kind: DdlKind::CreateTable,
                additive: !ct.or_replace,
                stmt: Statement::CreateTable(ct),
            });
        }
        Statement::AlterTable(mut at) => {
            let table = table_of(&at.name, db).ok_or_else(|| unnamed("table name", &at.name))?;
            at.name = object_name(&table);
            let mut kind = DdlKind::AlterTable;
            for op in &mut at.operations {
                if let AlterTableOperation::RenameTable { table_name } = op {
                    kind = DdlKind::RenameTable;
                    let n = match table_name {
                        RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n,
                    };
                    // `ALTER TABLE a RENAME TO b` renames within a's database.
                    let to = table_of(n, &table.db).ok_or_else(|| unnamed("new name", n))?;
                    *n = object_name(&to);
                }
            }
            let additive = at.operations.iter().all(additive_op);
            out.push(TableDdl {
                table,
                kind,
                additive,
                stmt: Statement::AlterTable(at),
            });
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            if_exists,
            names,
            temporary: false,
            ..
        } => {
            for n in names {
                let table = table_of(&n, db).ok_or_else(|| unnamed("table name", &n))?;
                let sql = format!(
                    "DROP TABLE {}{}",
                    if if_exists { "IF EXISTS " } else { "" },
                    object_name(&table)
                );
                out.push(TableDdl {
                    table,
                    kind: DdlKind::DropTable,
                    additive: false,
                    stmt: reparse(&sql)?,
                });
            }
        }
        Statement::Drop {
            object_type: ObjectType::Index,
            names,
            table: Some(t),
            ..
        } => {
            let table = table_of(&t, db).ok_or_else(|| unnamed("table name", &t))?;
            for n in names {
                let sql = format!("DROP INDEX {n} ON {}", object_name(&table));
                out.push(TableDdl {
                    table: table.clone(),
                    kind: DdlKind::DropIndex,
                    additive: false,
                    stmt: reparse(&sql)?,
                });
            }
        }
        Statement::CreateIndex(mut ci) => {
            let table = table_of(&ci.table_name, db)
                .ok_or_else(|| unnamed("table name", &ci.table_name))?;
            ci.table_name = object_name(&table);
            out.push(TableDdl {
                table,
                kind: DdlKind::CreateIndex,
                additive: true,
                stmt: Statement::CreateIndex(ci),
            });
        }
        Statement::RenameTable(pairs) => {
            for p in pairs {
                let from =
                    table_of(&p.old_name, db).ok_or_else(|| unnamed("table", &p.old_name))?;
                let to = table_of(&p.new_name, db).ok_or_else(|| unnamed("table", &p.new_name))?;
                out.push(TableDdl {
                    table: from.clone(),
                    kind: DdlKind::RenameTable,
                    additive: false,
                    stmt: Statement::RenameTable(vec![RenameTable {
                        old_name: object_name(&from),
                        new_name: object_name(&to),
                    }]),
                });
            }
        }
        Statement::Truncate(t) => {
            for target in &t.table_names {
                let table =
                    table_of(&target.name, db).ok_or_else(|| unnamed("table", &target.name))?;
                out.push(TableDdl {
                    table: table.clone(),
                    kind: DdlKind::TruncateTable,
                    additive: false,
                    stmt: Statement::Truncate(Truncate {
                        table_names: vec![TruncateTableTarget {
                            name: object_name(&table),
                            ..target.clone()
                        }],
                        table: true,
                        ..t.clone()
                    }),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

fn reparse(sql: &str) -> Result<Statement, DdlParseError> {
    Parser::parse_sql(&MySqlDialect {}, sql)
        .map_err(|e| DdlParseError(format!("{e} (in the rebuilt statement {sql})")))?
        .pop()
        .ok_or_else(|| DdlParseError(format!("no statement rebuilt from {sql}")))
}

fn additive_op(op: &AlterTableOperation) -> bool {
    matches!(
        op,
        AlterTableOperation::AddColumn { .. }
            | AlterTableOperation::AddConstraint { .. }
            | AlterTableOperation::Algorithm { .. }
            | AlterTableOperation::Lock { .. }
    )
}

fn qualify_like(ct: &mut CreateTable, db: &str) {
    if let Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) =
        &mut ct.like
    {
        if let Some(t) = table_of(&l.name, db) {
            l.name = object_name(&t);
        }
    }
}

fn table_of(name: &ObjectName, default_db: &str) -> Option<TableId> {
    let part = |p: &ObjectNamePart| p.as_ident().map(|i| i.value.clone());
    match name.0.as_slice() {
        [t] => Some(TableId::new(default_db, part(t)?)),
        [d, t] => Some(TableId::new(part(d)?, part(t)?)),
        _ => None,
    }
}

fn ident(s: &str) -> Ident {
    Ident::with_quote('`', s)
}

fn object_name(t: &TableId) -> ObjectName {
    ObjectName::from(vec![ident(&t.db), ident(&t.table)])
}

impl TableDdl {
    /// The statement for this table alone, with source names (qualified).
    pub fn statement(&self) -> String {
        self.stmt.to_string()
    }

    /// Other tables the statement refers to (`CREATE TABLE .. LIKE other`; the new name
    /// of a rename), with source names.
    pub fn referenced(&self) -> Vec<TableId> {
        match &self.stmt {
            Statement::CreateTable(ct) => match &ct.like {
                Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) => {
                    table_of(&l.name, &self.table.db).into_iter().collect()
                }
                None => Vec::new(),
            },
            Statement::RenameTable(p) => p
                .iter()
                .filter_map(|p| table_of(&p.new_name, &self.table.db))
                .collect(),
            Statement::AlterTable(at) => at
                .operations
                .iter()
                .filter_map(|op| match op {
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                    } => table_of(n, &self.table.db),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The statement under the target's names; `None` when nothing of it concerns the
    /// target (every column it touches is left out by the mapping).
    ///
    /// A `CREATE TABLE` becomes `CREATE TABLE IF NOT EXISTS` (the target may have been
    /// set up by hand) and a `DROP TABLE` becomes `DROP TABLE IF EXISTS`: what the source
    /// ends with is what the target ends with. A `CREATE TABLE ... SELECT` loses its
    /// `SELECT`: the copied rows follow in the stream as row changes. Column renames reach column definitions and the column
    /// operations of `ALTER TABLE`; index definitions keep their column names.
    pub fn render(&self, names: &dyn Names) -> Option<String> {
        self.render_stmt(names).map(|s| s.to_string())
    }

    fn render_stmt(&self, names: &dyn Names) -> Option<Statement> {
        let src = &self.table;
        let mut stmt = self.stmt.clone();
        match &mut stmt {
            Statement::CreateTable(ct) => {
                ct.name = object_name(&names.table(src));
                // The source's table was new; the target may have it already (created
                // by hand before the pipeline started): the rows decide from here.
                ct.if_not_exists = !ct.or_replace;
                if let Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) =
                    &mut ct.like
                {
                    if let Some(t) = table_of(&l.name, &src.db) {
                        l.name = object_name(&names.table(&t));
                    }
                }
                if !ct.columns.is_empty() {
                    ct.query = None;
                }
                ct.columns = std::mem::take(&mut ct.columns)
                    .into_iter()
                    .filter_map(|c| rename_def(c, src, names))
                    .collect();
            }
            Statement::AlterTable(at) => {
                render_alter(at, src, names)?;
            }
            Statement::RenameTable(pairs) => {
                for p in pairs.iter_mut() {
                    if let Some(to) = table_of(&p.new_name, &src.db) {
                        p.new_name = object_name(&names.table(&to));
                    }
                    p.old_name = object_name(&names.table(src));
                }
            }
            Statement::Truncate(t) => {
                for n in &mut t.table_names {
                    n.name = object_name(&names.table(src));
                }
            }
            Statement::CreateIndex(ci) => ci.table_name = object_name(&names.table(src)),
            Statement::Drop {
                names: n,
                table,
                if_exists,
                object_type,
                ..
            } => match table {
                Some(t) => *t = object_name(&names.table(src)),
                None => {
                    *n = vec![object_name(&names.table(src))];
                    // The table is gone on the source; so it shall be on the target.
                    *if_exists |= *object_type == ObjectType::Table;
                }
            },
            _ => {}
        }
        Some(stmt)
    }
}

/// Every table `parts` name, in order, each once: a part's table, and after it the
/// tables it [`TableDdl::referenced`] (a renamed table's new name, the model of a
/// `CREATE TABLE ... LIKE`). These are the streams a statement's change goes to, so it
/// sits in each between the same rows as on the source.
pub fn tables(parts: &[TableDdl]) -> Vec<TableId> {
    let mut out: Vec<TableId> = Vec::new();
    for p in parts {
        for t in std::iter::once(p.table.clone()).chain(p.referenced()) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The statement's `parts` under the target's names, as statements to run in order. The
/// parts of one `RENAME TABLE` stay one statement: `RENAME TABLE t TO t_old, t_new TO t`
/// (the cut-over of gh-ost and pt-online-schema-change) swaps atomically on the source,
/// and must on the target, where its halves one at a time would collide on `t`. Parts
/// [`TableDdl::render`] drops are left out.
pub fn render_all(parts: &[TableDdl], names: &dyn Names) -> Vec<String> {
    let mut stmts: Vec<Statement> = Vec::new();
    for s in parts.iter().filter_map(|p| p.render_stmt(names)) {
        match (stmts.last_mut(), s) {
            (Some(Statement::RenameTable(all)), Statement::RenameTable(more)) => all.extend(more),
            (_, s) => stmts.push(s),
        }
    }
    stmts.iter().map(ToString::to_string).collect()
}

fn rename_def(mut c: ColumnDef, src: &TableId, names: &dyn Names) -> Option<ColumnDef> {
    c.name = ident(&names.column(src, &c.name.value)?);
    Some(c)
}

fn col(src: &TableId, names: &dyn Names, i: &mut Ident) -> bool {
    match names.column(src, &i.value) {
        Some(n) => {
            *i = ident(&n);
            true
        }
        None => false,
    }
}

fn render_alter(at: &mut AlterTable, src: &TableId, names: &dyn Names) -> Option<()> {
    at.name = object_name(&names.table(src));
    let ops = std::mem::take(&mut at.operations);
    let mut kept = Vec::new();
    let mut changes = 0;
    for mut op in ops {
        let keep = match &mut op {
            AlterTableOperation::AddColumn { column_def, .. } => {
                col(src, names, &mut column_def.name)
            }
            AlterTableOperation::DropColumn { column_names, .. } => {
                column_names.retain_mut(|i| col(src, names, i));
                !column_names.is_empty()
            }
            AlterTableOperation::ModifyColumn { col_name, .. } => col(src, names, col_name),
            AlterTableOperation::AlterColumn { column_name, .. } => col(src, names, column_name),
            AlterTableOperation::ChangeColumn {
                old_name, new_name, ..
            } => col(src, names, old_name) && col(src, names, new_name),
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => col(src, names, old_column_name) && col(src, names, new_column_name),
            AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
            } => {
                if let Some(t) = table_of(n, &src.db) {
                    *n = object_name(&names.table(&t));
                }
                true
            }
            _ => true,
        };
        if keep {
            if !matches!(
                op,
                AlterTableOperation::Algorithm { .. } | AlterTableOperation::Lock { .. }
            ) {
                changes += 1;
            }
            kept.push(op);
        }
    }
    if changes == 0 {
        return None;
    }
    at.operations = kept;
    Some(())
}

#[cfg(test)]
mod tests;
