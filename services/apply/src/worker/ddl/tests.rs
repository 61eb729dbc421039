//! `decide`: every policy, the skip list, map rules, and unparsed statements.

use std::collections::BTreeMap;

use otter_core::ddl::DdlKind;
use otter_core::event::{SourceInfo, TxnMark};
use otter_core::{SchemaChange, SourcePos, TableId};

use super::{decide, Action, Step};
use crate::config::{ApplyTuning, DdlPolicy};
use crate::error::DdlStop;
use crate::mapping::{MapRule, Mapping};

fn change(ddl: &str, kind: DdlKind) -> SchemaChange {
    SchemaChange {
        table: TableId::new("shop", "t"),
        default_db: "shop".into(),
        ddl: ddl.into(),
        kind,
        schema_version: 2,
        tables: vec![TableId::new("shop", "t")],
        copies: Some(3),
        source: SourceInfo {
            server_id: 1,
            at: SourcePos::new("mariadb-bin.000003", 1234),
            row: 0,
            gtid: None,
            commit_time_ms: 0,
        },
        txn: TxnMark {
            id: "0-1-9".into(),
            total_order: 1,
            table_order: 1,
            last: true,
        },
    }
}

fn tuning(ddl: DdlPolicy) -> ApplyTuning {
    ApplyTuning {
        ddl,
        ..ApplyTuning::default()
    }
}

fn run(sql: &str) -> Result<Action, DdlStop> {
    Ok(Action::Run(vec![Step {
        sql: sql.into(),
        create_db: None,
        use_db: None,
    }]))
}

const ADD: &str = "ALTER TABLE t ADD COLUMN c INT";
const DROP: &str = "ALTER TABLE t DROP COLUMN c";

#[test]
fn each_policy_decides_as_documented() {
    let id = Mapping::identity();
    let add = change(ADD, DdlKind::AlterTable);
    let drop = change(DROP, DdlKind::AlterTable);
    let qualified_add = "ALTER TABLE `shop`.`t` ADD COLUMN `c` INT";
    assert_eq!(
        decide(&add, &id, &tuning(DdlPolicy::All)),
        run(qualified_add)
    );
    assert_eq!(
        decide(&drop, &id, &tuning(DdlPolicy::All)),
        run("ALTER TABLE `shop`.`t` DROP COLUMN `c`")
    );
    assert_eq!(
        decide(&add, &id, &tuning(DdlPolicy::Additive)),
        run(qualified_add)
    );
    assert_eq!(
        decide(&drop, &id, &tuning(DdlPolicy::Additive)),
        Ok(Action::Pass("not_additive"))
    );
    assert_eq!(
        decide(&add, &id, &tuning(DdlPolicy::Ignore)),
        Ok(Action::Pass("ignored"))
    );
    assert_eq!(
        decide(&add, &id, &tuning(DdlPolicy::Stop)),
        Err(DdlStop::Policy)
    );
}

#[test]
fn the_skip_list_passes_a_change_whatever_the_policy() {
    let t = ApplyTuning {
        ddl_skip: vec!["mariadb-bin.000003:1234".into()],
        ..tuning(DdlPolicy::Stop)
    };
    assert_eq!(
        decide(&change(ADD, DdlKind::AlterTable), &Mapping::identity(), &t),
        Ok(Action::Pass("skipped"))
    );
}

#[test]
fn map_rules_rename_skip_and_filter() {
    let renamed = Mapping::new(&[MapRule {
        source_db: "shop".into(),
        target_db: Some("copy".into()),
        columns: BTreeMap::from([("c".into(), "cc".into())]),
        ..MapRule::default()
    }])
    .expect("rule compiles");
    let all = tuning(DdlPolicy::All);
    assert_eq!(
        decide(&change(ADD, DdlKind::AlterTable), &renamed, &all),
        run("ALTER TABLE `copy`.`t` ADD COLUMN `cc` INT")
    );
    // A new table's database is created on the target first.
    assert_eq!(
        decide(
            &change("CREATE TABLE t (id INT PRIMARY KEY)", DdlKind::CreateTable),
            &renamed,
            &all
        ),
        Ok(Action::Run(vec![Step {
            sql: "CREATE TABLE IF NOT EXISTS `copy`.`t` (`id` INT PRIMARY KEY)".into(),
            create_db: Some("copy".into()),
            use_db: None,
        }]))
    );
    let excluding = Mapping::new(&[MapRule {
        exclude: vec!["c".into()],
        ..MapRule::default()
    }])
    .expect("rule compiles");
    assert_eq!(
        decide(&change(ADD, DdlKind::AlterTable), &excluding, &all),
        Ok(Action::Pass("filtered"))
    );
    let skipping = Mapping::new(&[MapRule {
        skip: true,
        ..MapRule::default()
    }])
    .expect("rule compiles");
    assert_eq!(
        decide(&change(ADD, DdlKind::AlterTable), &skipping, &all),
        Ok(Action::Pass("filtered"))
    );
}

#[test]
fn unparsed_statements_run_as_written_only_where_names_are_kept() {
    let sql = "ALTER TABLE t ADD COLUMN IF NOT EXISTS z INT";
    let sc = change(sql, DdlKind::Unparsed);
    assert_eq!(
        decide(&sc, &Mapping::identity(), &tuning(DdlPolicy::All)),
        Ok(Action::Run(vec![Step {
            sql: sql.into(),
            create_db: None,
            use_db: Some("shop".into()),
        }]))
    );
    // Not known to be additive.
    assert_eq!(
        decide(&sc, &Mapping::identity(), &tuning(DdlPolicy::Additive)),
        Ok(Action::Pass("not_additive"))
    );
    let renamed = Mapping::new(&[MapRule {
        target_table: Some("u".into()),
        ..MapRule::default()
    }])
    .expect("rule compiles");
    assert_eq!(
        decide(&sc, &renamed, &tuning(DdlPolicy::All)),
        Err(DdlStop::Unmappable)
    );
}

#[test]
fn a_statement_over_several_tables_is_decided_and_run_whole() {
    // gh-ost's cut-over, as seen from the new table's stream: the same decision as on
    // the other two, the swap one statement.
    let mut sc = change(
        "RENAME TABLE t TO _t_del, _t_gho TO t",
        DdlKind::RenameTable,
    );
    sc.tables = ["t", "_t_del", "_t_gho"]
        .map(|n| TableId::new("shop", n))
        .to_vec();
    sc.table = TableId::new("shop", "_t_gho");
    let swap = "RENAME TABLE `shop`.`t` TO `shop`.`_t_del`, `shop`.`_t_gho` TO `shop`.`t`";
    assert_eq!(
        decide(&sc, &Mapping::identity(), &tuning(DdlPolicy::All)),
        run(swap)
    );
    assert!(!sc.runs_it());
    sc.table = TableId::new("shop", "t");
    assert!(sc.runs_it());
    assert_eq!(
        decide(&sc, &Mapping::identity(), &tuning(DdlPolicy::All)),
        run(swap)
    );
    // A rename takes something away: not additive, passed over alike on every stream.
    assert_eq!(
        decide(&sc, &Mapping::identity(), &tuning(DdlPolicy::Additive)),
        Ok(Action::Pass("not_additive"))
    );
    // A skipped table that is only named (the old table's new name) changes nothing;
    // all skipped, all pass.
    let skip_del = Mapping::new(&[MapRule {
        source_table: "_t_del".into(),
        skip: true,
        ..MapRule::default()
    }])
    .expect("rule compiles");
    assert_eq!(decide(&sc, &skip_del, &tuning(DdlPolicy::All)), run(swap));
    let skip_all = Mapping::new(&[MapRule {
        skip: true,
        ..MapRule::default()
    }])
    .expect("rule compiles");
    assert_eq!(
        decide(&sc, &skip_all, &tuning(DdlPolicy::All)),
        Ok(Action::Pass("filtered"))
    );
    // Several statements run in order, each new database created first.
    let mut drop = change("DROP TABLE a, b", DdlKind::DropTable);
    drop.table = TableId::new("shop", "a");
    drop.tables = vec![TableId::new("shop", "a"), TableId::new("shop", "b")];
    assert_eq!(
        decide(&drop, &Mapping::identity(), &tuning(DdlPolicy::All)),
        Ok(Action::Run(vec![
            Step {
                sql: "DROP TABLE IF EXISTS `shop`.`a`".into(),
                create_db: None,
                use_db: None,
            },
            Step {
                sql: "DROP TABLE IF EXISTS `shop`.`b`".into(),
                create_db: None,
                use_db: None,
            },
        ]))
    );
}
