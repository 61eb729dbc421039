//! Topic naming. Every topic name in otter comes from [`topic_for`].

use crate::event::TableId;

/// The topic that carries the changes of `table`: `<prefix>.<database>.<table>`.
///
/// Kafka topic names allow `[a-zA-Z0-9._-]` only. Letters, digits and `_` are kept; any
/// other byte of a database or table name (including `-` and `.`) is written as `-HH`,
/// its hex value, so distinct tables never share a topic and plain names stay readable.
pub fn topic_for(prefix: &str, table: &TableId) -> String {
    let mut out = String::with_capacity(prefix.len() + table.db.len() + table.table.len() + 2);
    out.push_str(prefix);
    out.push('.');
    escape_into(&table.db, &mut out);
    out.push('.');
    escape_into(&table.table, &mut out);
    out
}

fn escape_into(name: &str, out: &mut String) {
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("-{b:02x}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(db: &str, table: &str) -> TableId {
        TableId::new(db, table)
    }

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(
            topic_for("otter", &t("shop", "orders")),
            "otter.shop.orders"
        );
    }

    #[test]
    fn dots_and_unicode_are_escaped_so_tables_never_collide() {
        assert_eq!(topic_for("p", &t("a.b", "c")), "p.a-2eb.c");
        assert_ne!(
            topic_for("p", &t("a.b", "c")),
            topic_for("p", &t("a", "b.c"))
        );
        assert_eq!(topic_for("p", &t("d", "é")), "p.d.-c3-a9");
    }

    #[test]
    fn a_literal_escape_character_is_escaped() {
        assert_eq!(topic_for("p", &t("d", "a-2e")), "p.d.a-2d2e");
        assert_ne!(
            topic_for("p", &t("d", "a-2e")),
            topic_for("p", &t("d", "a."))
        );
    }
}
