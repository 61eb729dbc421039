//! Recognises what a QUERY event's statement does to the stream: transaction control,
//! statement-based DML, or DDL naming the tables whose shape it changes.
//!
//! This is a tokenizer-level recogniser, enough to route a schema change to the right
//! table topics in order with their rows. Parsing the DDL itself (to keep a schema
//! history) is a separate concern.

/// A table named by a statement, qualified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTable {
    pub db: Option<String>,
    pub table: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    Begin,
    Commit,
    Rollback,
    Savepoint,
    /// Statement-based INSERT/UPDATE/DELETE/REPLACE/LOAD.
    Dml,
    /// DDL that changes the shape or content of these tables.
    Ddl(Vec<NamedTable>),
    /// Anything else (CREATE DATABASE, GRANT, SET, views, routines, ...).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokens(sql: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < 64 {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            // Executable comments (`/*!50100 ... */`) are SQL to MySQL; keep their text.
            if b.get(i + 2) == Some(&b'!') {
                i += 3;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
        } else if c == b'*' && b.get(i + 1) == Some(&b'/') {
            i += 2;
        } else if c == b'#' || (c == b'-' && b.get(i + 1) == Some(&b'-')) {
            i = sql[i..].find('\n').map_or(b.len(), |p| i + p + 1);
        } else if c == b'`' || c == b'"' {
            let mut s = String::new();
            let mut j = i + 1;
            let rest = &sql[j..];
            let mut chars = rest.char_indices().peekable();
            let mut end = b.len();
            while let Some((k, ch)) = chars.next() {
                if ch == c as char {
                    if chars.peek().map(|&(_, n)| n) == Some(c as char) {
                        s.push(ch);
                        chars.next();
                        continue;
                    }
                    end = j + k + 1;
                    break;
                }
                s.push(ch);
            }
            j = end;
            out.push(Tok::Quoted(s));
            i = j;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Tok::Word(sql[start..i].to_owned()));
        } else {
            out.push(Tok::Punct(c as char));
            i += 1;
        }
    }
    out
}

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn kw(&mut self, w: &str) -> bool {
        if let Some(Tok::Word(x)) = self.t.get(self.i) {
            if x.eq_ignore_ascii_case(w) {
                self.i += 1;
                return true;
            }
        }
        false
    }

    fn kws(&mut self, ws: &[&str]) -> bool {
        let save = self.i;
        if ws.iter().all(|w| self.kw(w)) {
            return true;
        }
        self.i = save;
        false
    }

    fn punct(&mut self, p: char) -> bool {
        if self.t.get(self.i) == Some(&Tok::Punct(p)) {
            self.i += 1;
            return true;
        }
        false
    }

    fn ident(&mut self) -> Option<String> {
        let s = match self.t.get(self.i)? {
            Tok::Word(w) | Tok::Quoted(w) => w.clone(),
            Tok::Punct(_) => return None,
        };
        self.i += 1;
        Some(s)
    }

    fn table(&mut self) -> Option<NamedTable> {
        let first = self.ident()?;
        if self.punct('.') {
            let table = self.ident()?;
            return Some(NamedTable {
                db: Some(first),
                table,
            });
        }
        Some(NamedTable {
            db: None,
            table: first,
        })
    }

    fn table_list(&mut self) -> Vec<NamedTable> {
        let mut v = Vec::new();
        while let Some(t) = self.table() {
            v.push(t);
            if !self.punct(',') {
                break;
            }
        }
        v
    }
}

/// Classifies one statement.
pub fn classify(sql: &str) -> Statement {
    let mut p = P {
        t: tokens(sql),
        i: 0,
    };
    if p.kw("BEGIN") || p.kws(&["START", "TRANSACTION"]) {
        return Statement::Begin;
    }
    if p.kw("COMMIT") {
        return Statement::Commit;
    }
    if p.kw("ROLLBACK") {
        return if p.kw("TO") {
            Statement::Savepoint
        } else {
            Statement::Rollback
        };
    }
    if p.kw("SAVEPOINT") || p.kw("RELEASE") {
        return Statement::Savepoint;
    }
    if ["INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"]
        .iter()
        .any(|w| p.kw(w))
    {
        return Statement::Dml;
    }
    if p.kw("TRUNCATE") {
        p.kw("TABLE");
        return p
            .table()
            .map_or(Statement::Other, |t| Statement::Ddl(vec![t]));
    }
    if p.kw("RENAME") {
        if !p.kw("TABLE") && !p.kw("TABLES") {
            return Statement::Other;
        }
        let mut v = Vec::new();
        while let (Some(a), true, Some(b)) = (p.table(), p.kw("TO"), p.table()) {
            v.extend([a, b]);
            if !p.punct(',') {
                break;
            }
        }
        return if v.is_empty() {
            Statement::Other
        } else {
            Statement::Ddl(v)
        };
    }
    if p.kw("ALTER") {
        while p.kw("ONLINE") || p.kw("OFFLINE") || p.kw("IGNORE") {}
        if !p.kw("TABLE") {
            return Statement::Other;
        }
        p.kws(&["IF", "EXISTS"]);
        return p
            .table()
            .map_or(Statement::Other, |t| Statement::Ddl(vec![t]));
    }
    if p.kw("DROP") {
        if p.kw("TEMPORARY") {
            return Statement::Other;
        }
        // Names no table: the decoder's schema history knows which it takes along.
        if p.kw("DATABASE") || p.kw("SCHEMA") {
            return Statement::Ddl(Vec::new());
        }
        if p.kw("TABLE") || p.kw("TABLES") {
            p.kws(&["IF", "EXISTS"]);
            let v = p.table_list();
            return if v.is_empty() {
                Statement::Other
            } else {
                Statement::Ddl(v)
            };
        }
        p.kw("ONLINE");
        p.kw("OFFLINE");
        if p.kw("INDEX") {
            p.kws(&["IF", "EXISTS"]);
            let _ = p.ident();
            if p.kw("ON") {
                return p
                    .table()
                    .map_or(Statement::Other, |t| Statement::Ddl(vec![t]));
            }
        }
        return Statement::Other;
    }
    if p.kw("CREATE") {
        p.kws(&["OR", "REPLACE"]);
        if p.kw("TEMPORARY") {
            return Statement::Other;
        }
        if p.kw("TABLE") {
            p.kws(&["IF", "NOT", "EXISTS"]);
            return p
                .table()
                .map_or(Statement::Other, |t| Statement::Ddl(vec![t]));
        }
        while p.kw("UNIQUE")
            || p.kw("FULLTEXT")
            || p.kw("SPATIAL")
            || p.kw("ONLINE")
            || p.kw("OFFLINE")
        {}
        if p.kw("INDEX") {
            p.kws(&["IF", "NOT", "EXISTS"]);
            let _ = p.ident();
            while !p.kw("ON") {
                if p.i >= p.t.len() {
                    return Statement::Other;
                }
                p.i += 1;
            }
            return p
                .table()
                .map_or(Statement::Other, |t| Statement::Ddl(vec![t]));
        }
    }
    Statement::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(db: Option<&str>, table: &str) -> NamedTable {
        NamedTable {
            db: db.map(str::to_owned),
            table: table.to_owned(),
        }
    }

    #[test]
    fn transaction_control_is_recognised() {
        assert_eq!(classify("BEGIN"), Statement::Begin);
        assert_eq!(classify("  commit"), Statement::Commit);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a"), Statement::Savepoint);
        assert_eq!(classify("ROLLBACK"), Statement::Rollback);
        assert_eq!(classify("/* x */ INSERT INTO t VALUES (1)"), Statement::Dml);
    }

    #[test]
    fn ddl_names_every_table_it_touches() {
        assert_eq!(
            classify("CREATE TABLE IF NOT EXISTS `s`.`t``x` (a int)"),
            Statement::Ddl(vec![t(Some("s"), "t`x")])
        );
        assert_eq!(
            classify("alter online table t add c int"),
            Statement::Ddl(vec![t(None, "t")])
        );
        assert_eq!(
            classify("DROP TABLE IF EXISTS a, `b`.c /* generated by server */"),
            Statement::Ddl(vec![t(None, "a"), t(Some("b"), "c")])
        );
        assert_eq!(
            classify("RENAME TABLE a TO b, c TO d.e"),
            Statement::Ddl(vec![
                t(None, "a"),
                t(None, "b"),
                t(None, "c"),
                t(Some("d"), "e")
            ])
        );
        assert_eq!(classify("TRUNCATE t1"), Statement::Ddl(vec![t(None, "t1")]));
        assert_eq!(
            classify("CREATE UNIQUE INDEX i ON db.t (a)"),
            Statement::Ddl(vec![t(Some("db"), "t")])
        );
        assert_eq!(
            classify("DROP INDEX i ON t"),
            Statement::Ddl(vec![t(None, "t")])
        );
    }

    #[test]
    fn temporary_tables_and_other_statements_are_not_table_ddl() {
        assert_eq!(
            classify("CREATE TEMPORARY TABLE t (a int)"),
            Statement::Other
        );
        assert_eq!(
            classify("DROP TEMPORARY TABLE IF EXISTS t"),
            Statement::Other
        );
        assert_eq!(classify("CREATE DATABASE d"), Statement::Other);
        assert_eq!(classify("DROP DATABASE d"), Statement::Ddl(Vec::new()));
        assert_eq!(
            classify("drop schema if exists d"),
            Statement::Ddl(Vec::new())
        );
        assert_eq!(classify("GRANT ALL ON *.* TO x"), Statement::Other);
        assert_eq!(classify(""), Statement::Other);
    }
}
