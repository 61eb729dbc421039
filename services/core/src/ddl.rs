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
    AlterTable, AlterTableOperation, ColumnDef, ColumnOption, CreateTable, CreateTableLikeKind,
    Ident, MySQLColumnPosition, ObjectName, ObjectNamePart, ObjectType, RenameTable,
    RenameTableNameKind, Statement, TableConstraint, Truncate, TruncateTableTarget,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::event::TableId;
pub use crate::shape::{charset_of_collation, ColumnShape, TableShape};

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

/// The database a `DROP DATABASE`/`DROP SCHEMA` statement drops, if it is one. The
/// statement names no table: the caller knows which tables it takes with it (capture's
/// schema history) and gives each a [`TableDdl::dropped_with_database`].
pub fn dropped_database(sql: &str) -> Option<String> {
    let stmts = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    match stmts.as_slice() {
        [Statement::Drop {
            object_type: ObjectType::Schema | ObjectType::Database,
            names,
            ..
        }] => names.first().and_then(|n| match n.0.last() {
            Some(ObjectNamePart::Identifier(i)) => Some(i.value.clone()),
            _ => None,
        }),
        _ => None,
    }
}

impl TableDdl {
    /// `table`'s part of a `DROP DATABASE`: the table is dropped.
    pub fn dropped_with_database(table: &TableId) -> Result<TableDdl, DdlParseError> {
        Ok(TableDdl {
            table: table.clone(),
            kind: DdlKind::DropTable,
            additive: false,
            stmt: reparse(&format!("DROP TABLE IF EXISTS {}", object_name(table)))?,
        })
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

// ---------------------------------------------------------------- shapes

/// Table shapes by table: capture's view of the source's tables at one binlog point.
pub type Shapes = std::collections::HashMap<TableId, std::sync::Arc<TableShape>>;

/// Why a change's effect on a table's shape cannot be known from the statement alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shape of {table} after this statement is unknown: {why}")]
pub struct ShapeUnknown {
    pub table: TableId,
    pub why: String,
}

impl TableDdl {
    /// Applies this change to `shapes`. Where the new shape cannot be known from the
    /// statement and the shapes before it (`CREATE TABLE ... SELECT`, a `LIKE` of or a
    /// rename of a table not in `shapes`, an ALTER on a table not in it or naming a
    /// column it lacks, an operation not modelled here), the table's shape is removed and
    /// the error says why: the caller learns it elsewhere (the binlog's table map with
    /// full metadata, the source's catalog) or refuses to guess.
    pub fn evolve(&self, shapes: &mut Shapes) -> Result<(), ShapeUnknown> {
        let t = &self.table;
        let unknown = |shapes: &mut Shapes, table: &TableId, why: String| {
            shapes.remove(table);
            Err(ShapeUnknown {
                table: table.clone(),
                why,
            })
        };
        match &self.stmt {
            Statement::CreateTable(ct) => {
                if ct.if_not_exists && shapes.contains_key(t) {
                    return Ok(());
                }
                if let Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) =
                    &ct.like
                {
                    let model = table_of(&l.name, &t.db).and_then(|m| shapes.get(&m).cloned());
                    return match model {
                        Some(m) => {
                            shapes.insert(t.clone(), m);
                            Ok(())
                        }
                        None => unknown(shapes, t, format!("the shape of `{}` is unknown", l.name)),
                    };
                }
                if ct.query.is_some() {
                    return unknown(shapes, t, "its columns come from a SELECT".into());
                }
                let charset = table_charset(&ct.table_options.to_string());
                let mut shape = TableShape {
                    columns: Vec::new(),
                    key: Vec::new(),
                    charset: charset.clone(),
                };
                for c in &ct.columns {
                    let opts: Vec<&ColumnOption> = c.options.iter().map(|o| &o.option).collect();
                    if opts
                        .iter()
                        .any(|o| matches!(o, ColumnOption::PrimaryKey(_)))
                    {
                        shape.key = vec![c.name.value.clone()];
                    }
                    shape.columns.push(column_shape(
                        &c.name,
                        &c.data_type,
                        &opts,
                        charset.as_deref(),
                    ));
                }
                for k in &ct.constraints {
                    if let TableConstraint::PrimaryKey(pk) = k {
                        shape.key = pk.columns.iter().map(index_column_name).collect();
                    }
                }
                shapes.insert(t.clone(), std::sync::Arc::new(shape));
                Ok(())
            }
            Statement::AlterTable(at) => {
                let Some(old) = shapes.get(t).cloned() else {
                    return unknown(shapes, t, "its shape before it is unknown".into());
                };
                let mut shape = (*old).clone();
                let mut renamed = None;
                for op in &at.operations {
                    if let Err(why) = alter(&mut shape, op) {
                        return unknown(shapes, t, why);
                    }
                    if let AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                    } = op
                    {
                        renamed = table_of(n, &t.db);
                    }
                }
                let shape = std::sync::Arc::new(shape);
                match renamed {
                    Some(to) => {
                        shapes.remove(t);
                        shapes.insert(to, shape);
                    }
                    None => {
                        shapes.insert(t.clone(), shape);
                    }
                }
                Ok(())
            }
            Statement::RenameTable(pairs) => {
                let moved = shapes.remove(t);
                for p in pairs {
                    let Some(to) = table_of(&p.new_name, &t.db) else {
                        continue;
                    };
                    match &moved {
                        Some(s) => {
                            shapes.insert(to, s.clone());
                        }
                        None => {
                            return unknown(shapes, &to, format!("the shape of {t} is unknown"))
                        }
                    }
                }
                Ok(())
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                ..
            } => {
                shapes.remove(t);
                Ok(())
            }
            // TRUNCATE, CREATE/DROP INDEX: the columns stay as they are.
            _ => Ok(()),
        }
    }
}

/// One ALTER TABLE operation on `shape`; `Err` says why the result is unknown.
fn alter(shape: &mut TableShape, op: &AlterTableOperation) -> Result<(), String> {
    let find = |shape: &TableShape, c: &Ident| {
        shape
            .index_of(&c.value)
            .ok_or_else(|| format!("it names column `{}`, which the shape lacks", c.value))
    };
    let place = |shape: &mut TableShape,
                 col: ColumnShape,
                 at: Option<usize>,
                 pos: &Option<MySQLColumnPosition>|
     -> Result<(), String> {
        let i = match pos {
            Some(MySQLColumnPosition::First) => 0,
            Some(MySQLColumnPosition::After(c)) => {
                shape.index_of(&c.value).ok_or_else(|| {
                    format!(
                        "it places a column after `{}`, which the shape lacks",
                        c.value
                    )
                })? + 1
            }
            None => at.unwrap_or(shape.columns.len()),
        };
        shape.columns.insert(i.min(shape.columns.len()), col);
        Ok(())
    };
    match op {
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def: c,
            column_position,
            ..
        } => {
            if *if_not_exists && shape.index_of(&c.name.value).is_some() {
                return Ok(());
            }
            let opts: Vec<&ColumnOption> = c.options.iter().map(|o| &o.option).collect();
            let col = column_shape(&c.name, &c.data_type, &opts, shape.charset.as_deref());
            if opts
                .iter()
                .any(|o| matches!(o, ColumnOption::PrimaryKey(_)))
            {
                shape.key = vec![c.name.value.clone()];
            }
            place(shape, col, None, column_position)?;
        }
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            for c in column_names {
                match shape.index_of(&c.value) {
                    Some(i) => {
                        shape.columns.remove(i);
                        shape.key.retain(|k| !k.eq_ignore_ascii_case(&c.value));
                    }
                    None if *if_exists => {}
                    None => return Err(find(shape, c).err().unwrap_or_default()),
                }
            }
        }
        AlterTableOperation::ModifyColumn {
            col_name,
            data_type,
            options,
            column_position,
        } => {
            let i = find(shape, col_name)?;
            let opts: Vec<&ColumnOption> = options.iter().collect();
            let name = Ident::new(shape.columns[i].name.clone());
            let col = column_shape(&name, data_type, &opts, shape.charset.as_deref());
            shape.columns.remove(i);
            place(shape, col, Some(i), column_position)?;
        }
        AlterTableOperation::ChangeColumn {
            old_name,
            new_name,
            data_type,
            options,
            column_position,
        } => {
            let i = find(shape, old_name)?;
            let opts: Vec<&ColumnOption> = options.iter().collect();
            let col = column_shape(new_name, data_type, &opts, shape.charset.as_deref());
            let old = shape.columns.remove(i).name;
            rename_key(shape, &old, &new_name.value);
            place(shape, col, Some(i), column_position)?;
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let i = find(shape, old_column_name)?;
            let old = std::mem::replace(&mut shape.columns[i].name, new_column_name.value.clone());
            rename_key(shape, &old, &new_column_name.value);
        }
        AlterTableOperation::AddConstraint { constraint, .. } => {
            if let TableConstraint::PrimaryKey(pk) = constraint {
                shape.key = pk.columns.iter().map(index_column_name).collect();
            }
        }
        AlterTableOperation::DropPrimaryKey { .. } => shape.key.clear(),
        // Indexes, constraints, defaults, table options: no column changes.
        AlterTableOperation::RenameTable { .. }
        | AlterTableOperation::DropConstraint { .. }
        | AlterTableOperation::DropIndex { .. }
        | AlterTableOperation::DropForeignKey { .. }
        | AlterTableOperation::RenameConstraint { .. }
        | AlterTableOperation::AlterColumn { .. }
        | AlterTableOperation::Algorithm { .. }
        | AlterTableOperation::Lock { .. }
        | AlterTableOperation::AutoIncrement { .. }
        | AlterTableOperation::ValidateConstraint { .. }
        | AlterTableOperation::AddPartitions { .. }
        | AlterTableOperation::DropPartitions { .. } => {}
        other => return Err(format!("the operation `{other}` is not modelled")),
    }
    Ok(())
}

fn rename_key(shape: &mut TableShape, old: &str, new: &str) {
    for k in &mut shape.key {
        if k.eq_ignore_ascii_case(old) {
            *k = new.to_owned();
        }
    }
}

fn index_column_name(c: &sqlparser::ast::IndexColumn) -> String {
    match &c.column.expr {
        sqlparser::ast::Expr::Identifier(i) => i.value.clone(),
        e => e.to_string(),
    }
}

/// `DEFAULT CHARSET=x`, `CHARACTER SET x`, `COLLATE=y` among a CREATE TABLE's options.
fn table_charset(options: &str) -> Option<String> {
    let up = options.to_ascii_uppercase();
    let word_after = |key: &str| -> Option<String> {
        let i = up.find(key)? + key.len();
        let rest = options[i..].trim_start_matches([' ', '=']);
        let w: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!w.is_empty()).then(|| w.to_ascii_lowercase())
    };
    word_after("CHARSET")
        .or_else(|| word_after("CHARACTER SET"))
        .or_else(|| word_after("COLLATE").map(|c| charset_of_collation(&c)))
}

/// A column definition as a [`ColumnShape`]; `table_charset` for text columns that do
/// not name theirs.
fn column_shape(
    name: &Ident,
    ty: &sqlparser::ast::DataType,
    opts: &[&ColumnOption],
    table_charset: Option<&str>,
) -> ColumnShape {
    use sqlparser::ast::{DataType, EnumMember};
    let text = ty.to_string().to_ascii_uppercase();
    let mut col = ColumnShape::named(name.value.clone());
    col.unsigned = text.contains("UNSIGNED");
    match ty {
        DataType::Enum(members, _) => {
            col.enum_values = Some(
                members
                    .iter()
                    .map(|m| match m {
                        EnumMember::Name(n) | EnumMember::NamedValue(n, _) => n.clone(),
                    })
                    .collect(),
            )
        }
        DataType::Set(v) => col.set_values = Some(v.clone()),
        _ => {}
    }
    let binary = [
        "BINARY",
        "VARBINARY",
        "BLOB",
        "TINYBLOB",
        "MEDIUMBLOB",
        "LONGBLOB",
    ]
    .iter()
    .any(|b| text.starts_with(b));
    let texty = [
        "CHAR",
        "VARCHAR",
        "TEXT",
        "TINYTEXT",
        "MEDIUMTEXT",
        "LONGTEXT",
        "ENUM",
        "SET",
        "NCHAR",
        "NVARCHAR",
        "CHARACTER",
        "NATIONAL",
        "LONG",
    ]
    .iter()
    .any(|b| text.starts_with(b));
    col.json = text == "JSON";
    let named = opts.iter().find_map(|o| match o {
        ColumnOption::CharacterSet(n) => Some(n.to_string().trim_matches('`').to_ascii_lowercase()),
        ColumnOption::Collation(n) => Some(charset_of_collation(n.to_string().trim_matches('`'))),
        _ => None,
    });
    col.charset = if binary {
        Some("binary".into())
    } else if col.json {
        Some("utf8mb4".into())
    } else if texty {
        named.or_else(|| table_charset.map(str::to_owned))
    } else {
        None
    };
    col.generated = opts
        .iter()
        .any(|o| matches!(o, ColumnOption::Generated { .. }));
    col
}
