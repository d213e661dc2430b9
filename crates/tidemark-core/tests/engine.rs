//! The engine against a real PostgreSQL server, each test in a fresh database.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tidemark_core::{
    deploy, down, migrate, redo, seed, status, unlock, Event, MigrationState, NoScripts, Options,
    Policy, ScriptSeed, SeedOptions, Silent, UnlockOptions,
};

fn opts() -> Options {
    Options::default()
}

fn five_with_failure_in_third(third: &str) -> Vec<tidemark_core::SourceFile> {
    vec![
        file("001_a.sql", "CREATE TABLE a (id int);"),
        file("002_b.sql", "CREATE TABLE b (id int);"),
        file("003_c.sql", third),
        file("004_d.sql", "CREATE TABLE d (id int);"),
        file("005_e.sql", "CREATE TABLE e (id int);"),
    ]
}

#[tokio::test]
async fn fresh_apply_then_rerun_is_a_noop() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let events = Events::default();
    let r = migrate(&c, many(3), &opts(), None, &events).await.unwrap();
    assert_eq!(r.applied.len(), 3);
    assert!(!r.up_to_date);
    assert_eq!(
        tracking(&c).await,
        [
            ("0001", "completed"),
            ("0002", "completed"),
            ("0003", "completed")
        ]
        .map(|(a, b)| (a.into(), b.into()))
    );
    assert!(table_exists(&c, "t3").await);
    let applied: Vec<_> = events
        .all()
        .into_iter()
        .filter_map(|e| match e {
            Event::MigrationApplied { version, .. } => Some(version),
            _ => None,
        })
        .collect();
    assert_eq!(applied, ["0001", "0002", "0003"]);
    // Durations and applied_by come from the server.
    let row = c
        .query_one("SELECT duration_ms, applied_by, checksum FROM schema_migrations WHERE version = '0001'", &[])
        .await
        .unwrap();
    assert!(row.get::<_, i32>(0) >= 0);
    assert_eq!(row.get::<_, String>(1), "postgres");
    assert_eq!(row.get::<_, String>(2).len(), 64);

    // Each migration's duration is its own, not counted from the start of
    // the message that carried it.
    let db2 = TestDb::new().await;
    let c2 = db2.client().await;
    let slow_first = vec![
        file("1_slow.sql", "SELECT pg_sleep(0.4);"),
        file("2_fast.sql", "SELECT 1;"),
    ];
    let r = migrate(&c2, slow_first, &opts(), None, &Silent)
        .await
        .unwrap();
    assert!(r.applied[0].duration_ms >= 400, "{:?}", r.applied);
    assert!(r.applied[1].duration_ms < 300, "{:?}", r.applied);

    let again = migrate(&c, many(3), &opts(), None, &Silent).await.unwrap();
    assert!(again.up_to_date);
    assert!(again.applied.is_empty());
    assert_eq!(again.already_applied, 3);
}

#[tokio::test]
async fn runtime_failure_in_third_of_five() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let third = "CREATE TABLE c (id int);\n\nINSERT INTO c VALUES (1);\nINSERT INTO missing_table VALUES (1);\n";
    let err = migrate(
        &c,
        five_with_failure_in_third(third),
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "E_MIGRATION_FAILED");
    assert_eq!(err.file(), Some("003_c.sql"));
    assert_eq!(err.line(), Some(4));
    assert_eq!(err.column(), Some(13));
    assert_eq!(err.sql_state(), Some("42P01"));
    assert_eq!(err.version(), Some("003"));
    assert_eq!(err.applied().len(), 2);
    assert!(
        err.message()
            .contains("relation \"missing_table\" does not exist"),
        "{}",
        err.message()
    );
    assert_eq!(
        tracking(&c).await,
        [
            ("001", "completed"),
            ("002", "completed"),
            ("003", "failed")
        ]
        .map(|(a, b)| (a.into(), b.into()))
    );
    assert!(!table_exists(&c, "c").await, "003 must be rolled back");
    assert!(!table_exists(&c, "d").await);
    let msg: String = c
        .query_one(
            "SELECT error_message FROM schema_migrations WHERE version = '003'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(msg.contains("missing_table"));

    // Fixed, the next run retries 003 and the failed row becomes completed.
    let fixed = five_with_failure_in_third("CREATE TABLE c (id int);");
    let r = migrate(&c, fixed, &opts(), None, &Silent).await.unwrap();
    assert_eq!(
        r.applied
            .iter()
            .map(|a| a.version.as_str())
            .collect::<Vec<_>>(),
        ["003", "004", "005"]
    );
    assert!(tracking(&c).await.iter().all(|(_, s)| s == "completed"));
}

#[tokio::test]
async fn runtime_failure_without_position_names_the_statement_line() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let third = "CREATE TABLE c (id int PRIMARY KEY);\nINSERT INTO c VALUES (1);\n-- again\nINSERT INTO c VALUES (1);\n";
    let err = migrate(
        &c,
        five_with_failure_in_third(third),
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(err.sql_state(), Some("23505"));
    assert_eq!((err.file(), err.line()), (Some("003_c.sql"), Some(4)));
}

#[tokio::test]
async fn syntax_error_in_third_still_applies_first_two() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let third = "CREATE TABLE c (id int);\nCREATE TABLE oops (id int,,);\n";
    let err = migrate(
        &c,
        five_with_failure_in_third(third),
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(err.sql_state(), Some("42601"));
    assert_eq!(
        (err.file(), err.line(), err.column()),
        (Some("003_c.sql"), Some(2), Some(27))
    );
    assert_eq!(err.applied().len(), 2);
    assert_eq!(
        tracking(&c).await,
        [
            ("001", "completed"),
            ("002", "completed"),
            ("003", "failed")
        ]
        .map(|(a, b)| (a.into(), b.into()))
    );
    assert!(
        table_exists(&c, "b").await && !table_exists(&c, "c").await && !table_exists(&c, "d").await
    );
}

#[tokio::test]
async fn sectioned_file_error_lines_count_from_the_file_top() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![file(
        "001_a.sql",
        "-- migrate:up\nCREATE TABLE a (id int);\nSELECT nope FROM a;\n-- migrate:down\nDROP TABLE a;\n",
    )];
    let err = migrate(&c, files, &opts(), None, &Silent)
        .await
        .unwrap_err();
    assert_eq!((err.line(), err.column()), (Some(3), Some(8)));
}

#[tokio::test]
async fn self_wrapped_files_run_inside_tidemarks_transaction() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![
        file("001_a.sql", "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n"),
        file(
            "002_b.sql",
            "begin transaction;\nCREATE TABLE b (id int);\nINSERT INTO nope VALUES (1);\nend;\n",
        ),
    ];
    let err = migrate(&c, files, &opts(), None, &Silent)
        .await
        .unwrap_err();
    // 002's own COMMIT was removed, so its failure rolls back its table.
    assert_eq!((err.file(), err.line()), (Some("002_b.sql"), Some(3)));
    assert!(table_exists(&c, "a").await);
    assert!(!table_exists(&c, "b").await);
}

#[tokio::test]
async fn transaction_control_inside_a_file_is_refused_before_anything_runs() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![
        file("001_a.sql", "CREATE TABLE a (id int);"),
        file(
            "002_b.sql",
            "CREATE TABLE b (id int);\nCOMMIT;\nCREATE TABLE b2 (id int);\n",
        ),
    ];
    let err = migrate(&c, files, &opts(), None, &Silent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_TRANSACTION_CONTROL");
    assert_eq!((err.file(), err.line()), (Some("002_b.sql"), Some(2)));
    assert!(!table_exists(&c, "a").await);
    assert!(
        !table_exists(&c, "schema_migrations").await,
        "nothing may be written"
    );
}

#[tokio::test]
async fn do_blocks_functions_and_triggers() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let sql = r#"
CREATE TABLE items (id serial PRIMARY KEY, name text, updated_at timestamptz);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.updated_at := now(); -- a ; inside
  RETURN NEW;
END;
$fn$;
CREATE TRIGGER items_touch BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();
DO $$ BEGIN RAISE NOTICE 'it''s; fine'; INSERT INTO items (name) VALUES ('a;b'); END $$;
CREATE FUNCTION two() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;
/* nested /* comment; */ still; */
INSERT INTO items (name) VALUES (E'quote \' ; here'), ('"not an ident;"');
CREATE TABLE "we""ird;" (id int);
"#;
    let files = vec![file("001_items.sql", sql)];
    migrate(&c, files, &opts(), None, &Silent).await.unwrap();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM items WHERE updated_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    let two: i32 = c.query_one("SELECT two()", &[]).await.unwrap().get(0);
    assert_eq!(two, 2);
    assert!(table_exists(&c, "\"we\"\"ird;\"").await);
}

#[tokio::test]
async fn create_index_concurrently_needs_the_marker() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let base = file("001_t.sql", "CREATE TABLE t (id int, x int);");
    let cic =
        "CREATE INDEX CONCURRENTLY t_x ON t (x);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n";
    let err = migrate(
        &c,
        vec![base.clone(), file("002_idx.sql", cic)],
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "E_NEEDS_NO_TRANSACTION");
    assert_eq!((err.file(), err.line()), (Some("002_idx.sql"), Some(1)));
    assert!(err.message().contains("-- tidemark:no-transaction"));
    assert!(!table_exists(&c, "t").await, "refused before anything ran");

    let marked = format!("-- tidemark:no-transaction\n{cic}");
    let events = Events::default();
    let r = migrate(
        &c,
        vec![
            base,
            file("002_idx.sql", &marked),
            file("003_after.sql", "CREATE TABLE after_idx ();"),
        ],
        &opts(),
        None,
        &events,
    )
    .await
    .unwrap();
    assert_eq!(r.applied.len(), 3);
    let valid: i64 = c
        .query_one("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('t_x', 't_id') AND i.indisvalid", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(valid, 2);
    assert!(tracking(&c).await.iter().all(|(_, s)| s == "completed"));
    assert!(events.all().iter().any(|e| matches!(
        e,
        Event::StatementApplied {
            index: 2,
            total: 2,
            ..
        }
    )));
}

#[tokio::test]
async fn no_transaction_failure_resumes_after_completed_statements() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let base = file("001_t.sql", "CREATE TABLE t (id int, x int);");
    let broken = "-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);\nCREATE INDEX CONCURRENTLY t_y ON t (nope);\n";
    let err = migrate(
        &c,
        vec![base.clone(), file("002_idx.sql", broken)],
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!((err.file(), err.line()), (Some("002_idx.sql"), Some(3)));
    assert!(
        err.message()
            .contains("1 of its 2 statements had completed"),
        "{}",
        err.message()
    );
    let row = c
        .query_one(
            "SELECT status, statements_done FROM schema_migrations WHERE version = '002'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("failed".into(), 1)
    );

    // Fix the second statement: the first is not run again (it would fail:
    // t_x exists).
    let fixed = "-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);\nCREATE INDEX CONCURRENTLY t_y ON t (id);\n";
    let events = Events::default();
    migrate(
        &c,
        vec![base.clone(), file("002_idx.sql", fixed)],
        &opts(),
        None,
        &events,
    )
    .await
    .unwrap();
    assert!(events.all().iter().any(|e| matches!(
        e,
        Event::MigrationResumed {
            skipped_statements: 1,
            ..
        }
    )));
    assert!(tracking(&c).await.iter().all(|(_, s)| s == "completed"));

    // Changing a statement that already ran is refused.
    let db2 = TestDb::new().await;
    let c2 = db2.client().await;
    migrate(
        &c2,
        vec![base.clone(), file("002_idx.sql", broken)],
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    let changed = "-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY t_x2 ON t (x);\nCREATE INDEX CONCURRENTLY t_y ON t (id);\n";
    let err = migrate(
        &c2,
        vec![base, file("002_idx.sql", changed)],
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "E_RESUME_REFUSED");
}

#[tokio::test]
async fn drift_missing_and_out_of_order() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![
        file("001_a.sql", "CREATE TABLE a ();"),
        file("003_c.sql", "CREATE TABLE c ();"),
    ];
    migrate(&c, files, &opts(), None, &Silent).await.unwrap();

    let drifted = vec![
        file("001_a.sql", "CREATE TABLE a (id int);"),
        file("003_c.sql", "CREATE TABLE c ();"),
    ];
    let err = deploy(&c, drifted.clone(), &opts(), &Silent)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.file()),
        ("E_CHECKSUM_MISMATCH", Some("001_a.sql"))
    );
    let relaxed = Options {
        policy: Policy {
            allow_drift: true,
            ..Policy::default()
        },
        ..opts()
    };
    assert!(
        migrate(&c, drifted.clone(), &relaxed, None, &Silent)
            .await
            .unwrap()
            .up_to_date
    );
    // deploy is strict whatever the options say.
    assert!(deploy(&c, drifted, &relaxed, &Silent).await.is_err());

    // CRLF and a BOM are not drift.
    let crlf = vec![
        tidemark_core::SourceFile::new("001_a.sql", b"\xEF\xBB\xBFCREATE TABLE a ();".to_vec()),
        file("003_c.sql", "CREATE TABLE c ();"),
    ];
    assert!(deploy(&c, crlf, &opts(), &Silent).await.unwrap().up_to_date);

    let missing = vec![file("003_c.sql", "CREATE TABLE c ();")];
    assert_eq!(
        deploy(&c, missing, &opts(), &Silent)
            .await
            .unwrap_err()
            .code(),
        "E_MISSING_MIGRATION"
    );

    let merged = vec![
        file("001_a.sql", "CREATE TABLE a ();"),
        file("002_b.sql", "CREATE TABLE b ();"),
        file("003_c.sql", "CREATE TABLE c ();"),
    ];
    let err = deploy(&c, merged.clone(), &opts(), &Silent)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.file()),
        ("E_OUT_OF_ORDER", Some("002_b.sql"))
    );
    assert!(!table_exists(&c, "b").await);
    let ooo = Options {
        policy: Policy {
            allow_out_of_order: true,
            ..Policy::default()
        },
        ..opts()
    };
    let r = migrate(&c, merged.clone(), &ooo, None, &Silent)
        .await
        .unwrap();
    assert_eq!(r.applied[0].version, "002");

    let s = status(&c, merged, &opts(), &Silent).await.unwrap();
    assert_eq!((s.applied, s.pending, s.drifted), (3, 0, 0));
}

#[tokio::test]
async fn status_rows_show_every_state() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let s = status(&c, many(2), &opts(), &Silent).await.unwrap();
    assert_eq!((s.applied, s.pending), (0, 2));
    assert!(
        !table_exists(&c, "schema_migrations").await,
        "status never writes"
    );
    migrate(&c, many(2), &opts(), Some("1"), &Silent)
        .await
        .unwrap();
    let s = status(&c, many(2), &opts(), &Silent).await.unwrap();
    let states: Vec<_> = s.migrations.iter().map(|r| r.state).collect();
    assert_eq!(states, [MigrationState::Applied, MigrationState::Pending]);
    assert!(s.migrations[0]
        .applied_at
        .as_deref()
        .unwrap()
        .starts_with("20"));
    assert!(s.migrations[0].duration_ms.is_some());
}

fn reversible() -> Vec<tidemark_core::SourceFile> {
    vec![
        file("001_a.up.sql", "CREATE TABLE a (id int);"),
        file("001_a.down.sql", "DROP TABLE a;"),
        file(
            "002_b.sql",
            "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n",
        ),
        file(
            "003_c.sql",
            "-- Up Migration\nCREATE TABLE c (id int);\n-- Down Migration\nDROP TABLE c;\n",
        ),
    ]
}

#[tokio::test]
async fn down_and_redo() {
    let db = TestDb::new().await;
    let c = db.client().await;
    migrate(&c, reversible(), &opts(), None, &Silent)
        .await
        .unwrap();
    let r = down(&c, reversible(), &opts(), None, None, &Silent)
        .await
        .unwrap();
    assert_eq!(
        r.reverted
            .iter()
            .map(|m| m.version.as_str())
            .collect::<Vec<_>>(),
        ["003"]
    );
    assert!(!table_exists(&c, "c").await);
    assert_eq!(tracking(&c).await.len(), 2);

    c.batch_execute("INSERT INTO b VALUES (1)").await.unwrap();
    migrate(&c, reversible(), &opts(), None, &Silent)
        .await
        .unwrap();
    let r = redo(&c, reversible(), &opts(), Some(2), &Silent)
        .await
        .unwrap();
    assert_eq!(
        r.reverted
            .iter()
            .map(|m| m.version.as_str())
            .collect::<Vec<_>>(),
        ["003", "002"]
    );
    assert_eq!(
        r.applied
            .iter()
            .map(|m| m.version.as_str())
            .collect::<Vec<_>>(),
        ["002", "003"]
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM b", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "b was dropped and created again");

    let r = down(&c, reversible(), &opts(), None, Some("0"), &Silent)
        .await
        .unwrap();
    assert_eq!(r.reverted.len(), 3);
    assert!(tracking(&c).await.is_empty());
    assert!(!table_exists(&c, "a").await);

    // A migration without down SQL is refused before anything is reverted.
    let mut files = reversible();
    files.push(file("004_d.sql", "CREATE TABLE d ();"));
    migrate(&c, files.clone(), &opts(), None, &Silent)
        .await
        .unwrap();
    let err = down(&c, files, &opts(), Some(2), None, &Silent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_NO_DOWN_MIGRATION");
    assert_eq!(tracking(&c).await.len(), 4);
}

/// Script seeds: the core never spawns. With no runner it stops before a
/// script that is due and names it; with the host's runner it calls it in
/// folder order, records it, and goes on; a failing run stops the seeds
/// there with nothing recorded for it.
#[tokio::test]
async fn script_seeds_run_through_the_host_in_folder_order() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE log (step text)")
        .await
        .unwrap();
    let seeds = vec![
        file("001_a.sql", "INSERT INTO log VALUES ('a');"),
        file("002_b.mjs", "// the host runs this one"),
        file("003_c.sql", "INSERT INTO log VALUES ('c');"),
    ];
    let dev = SeedOptions {
        environment: "development".into(),
        ..SeedOptions::default()
    };
    let first = seed(&c, seeds.clone(), &opts(), &dev, &Silent, &NoScripts)
        .await
        .unwrap();
    assert_eq!(first.ran.len(), 1);
    let due = first.script_due.expect("002_b is due");
    assert_eq!(
        (due.name.as_str(), due.file.as_str()),
        ("002_b", "002_b.mjs")
    );
    // Nothing after the script ran.
    assert_eq!(common::tracking_seeds(&c).await, vec!["001_a".to_string()]);

    // A run that fails: nothing recorded for it, nothing after it runs.
    let failing = |due: ScriptSeed| async move {
        Err::<u64, _>(tidemark_core::Error::script_failed(format!(
            "seed {} failed: it exited with code 1",
            due.file
        )))
    };
    let err = seed(&c, seeds.clone(), &opts(), &dev, &Silent, &failing)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.file(), err.message()),
        (
            "E_SEED_FAILED",
            Some("002_b.mjs"),
            "seed 002_b.mjs failed: it exited with code 1"
        )
    );
    assert_eq!(common::tracking_seeds(&c).await, vec!["001_a".to_string()]);

    // The host's runner: the script writes through its own session, which
    // the seed lock does not block.
    let (host, port) = server();
    let name = db.name.clone();
    let runner = |due: ScriptSeed| {
        let (host, name) = (host.clone(), name.clone());
        async move {
            let other = connect_to(&host, port, &name).await;
            other
                .batch_execute(&format!("INSERT INTO log VALUES ('{}')", due.name))
                .await
                .unwrap();
            Ok(42)
        }
    };
    let events = Events::default();
    let second = seed(&c, seeds.clone(), &opts(), &dev, &events, &runner)
        .await
        .unwrap();
    assert!(second.script_due.is_none());
    let ran: Vec<_> = second.ran.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(ran, vec!["002_b", "003_c"]);
    assert_eq!(second.ran[0].duration_ms, 42);
    assert_eq!(second.skipped, vec!["001_a".to_string()]);
    assert!(events
        .all()
        .iter()
        .any(|e| matches!(e, Event::SeedApplied { name, .. } if name == "002_b")));
    assert_eq!(
        common::tracking_seeds(&c).await,
        vec![
            "001_a".to_string(),
            "002_b".to_string(),
            "003_c".to_string()
        ]
    );
    let steps: Vec<String> = c
        .query("SELECT step FROM log ORDER BY ctid", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(steps, vec!["a", "002_b", "c"], "folder order");

    // Everything ran with these contents: skipped, the script not called.
    let third = seed(&c, seeds.clone(), &opts(), &dev, &Silent, &failing)
        .await
        .unwrap();
    assert_eq!((third.ran.len(), third.skipped.len()), (0, 3));
    assert!(third.script_due.is_none());
}

/// Seed commands racing on one database run a script seed once: the lock
/// is held while the host runs it (it was released around the script
/// before, and both runs ran it).
#[tokio::test]
async fn racing_seeds_run_a_script_seed_once() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE runs (n int)").await.unwrap();
    let seeds = vec![
        file("001_a.sql", "SELECT 1;"),
        file("002_script.mjs", "// the host runs this one"),
    ];
    let dev = SeedOptions {
        environment: "development".into(),
        ..SeedOptions::default()
    };
    let (host, port) = server();
    let mut racers = Vec::new();
    for _ in 0..8 {
        let (host, name, seeds, dev) = (host.clone(), db.name.clone(), seeds.clone(), dev.clone());
        racers.push(tokio::spawn(async move {
            let client = connect_to(&host, port, &name).await;
            let runner = |_: ScriptSeed| {
                let (host, name) = (host.clone(), name.clone());
                async move {
                    // Long enough for every racer to reach the lock.
                    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                    let other = connect_to(&host, port, &name).await;
                    other
                        .batch_execute("INSERT INTO runs VALUES (1)")
                        .await
                        .unwrap();
                    Ok(1)
                }
            };
            seed(&client, seeds, &opts(), &dev, &Silent, &runner)
                .await
                .unwrap()
        }));
    }
    let mut ran = 0;
    for r in racers {
        ran += r
            .await
            .unwrap()
            .ran
            .iter()
            .filter(|s| s.name == "002_script")
            .count();
    }
    assert_eq!(ran, 1, "one racer ran the script");
    let runs: i64 = c
        .query_one("SELECT count(*) FROM runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 1);
}

#[tokio::test]
async fn seeds_run_once_and_refuse_production() {
    let db = TestDb::new().await;
    let c = db.client().await;
    migrate(
        &c,
        vec![file(
            "001_users.sql",
            "CREATE TABLE users (email text PRIMARY KEY);",
        )],
        &opts(),
        None,
        &Silent,
    )
    .await
    .unwrap();
    let seeds = vec![
        file(
            "001_users.sql",
            "INSERT INTO users VALUES ('a@example.com') ON CONFLICT DO NOTHING;",
        ),
        file(
            "002_more.sql",
            "INSERT INTO users VALUES ('b@example.com') ON CONFLICT DO NOTHING;",
        ),
    ];
    let dev = SeedOptions {
        environment: "development".into(),
        ..SeedOptions::default()
    };
    let r = seed(&c, seeds.clone(), &opts(), &dev, &Silent, &NoScripts)
        .await
        .unwrap();
    assert_eq!(r.ran.len(), 2);
    let r = seed(&c, seeds.clone(), &opts(), &dev, &Silent, &NoScripts)
        .await
        .unwrap();
    assert_eq!((r.ran.len(), r.skipped.len()), (0, 2));
    let logged: i64 = c
        .query_one("SELECT count(*) FROM schema_seeds", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged, 2);

    let prod = SeedOptions {
        environment: "production".into(),
        production: Some("NODE_ENV=production".into()),
        ..SeedOptions::default()
    };
    let err = seed(&c, seeds.clone(), &opts(), &prod, &Silent, &NoScripts)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_SEED_PRODUCTION");
    // The core names no CLI flag; the host phrases the fix.
    assert_eq!(
        err.message(),
        "refusing to seed: this is production (NODE_ENV=production); seeding production could overwrite real data"
    );
    let dev_in_prod = SeedOptions {
        environment: "development".into(),
        production: Some("VERCEL_ENV=production".into()),
        allow_production: true,
        force: false,
        only: None,
    };
    assert_eq!(
        seed(
            &c,
            seeds.clone(),
            &opts(),
            &dev_in_prod,
            &Silent,
            &NoScripts
        )
        .await
        .unwrap_err()
        .code(),
        "E_SEED_PRODUCTION"
    );
    let allowed = SeedOptions {
        allow_production: true,
        ..prod
    };
    assert!(seed(&c, vec![], &opts(), &allowed, &Silent, &NoScripts)
        .await
        .is_ok());

    // A failing seed rolls back and names the file and line.
    let bad = vec![file(
        "003_bad.sql",
        "INSERT INTO users VALUES ('c@example.com');\nINSERT INTO nope VALUES (1);",
    )];
    let err = seed(&c, bad, &opts(), &dev, &Silent, &NoScripts)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.file(), err.line()),
        ("E_SEED_FAILED", Some("003_bad.sql"), Some(2))
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test]
async fn upgrades_the_older_tracking_table_shape() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = many(2);
    let sum = tidemark_core::source::checksum(&files[0].bytes);
    c.batch_execute(&format!(
        "CREATE TABLE schema_migrations (version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), checksum text, description text NOT NULL);
         INSERT INTO schema_migrations VALUES ('0001', now(), '{sum}', 'table_1');
         CREATE TABLE t1 ();"
    ))
    .await
    .unwrap();
    // Nothing pending for 0001: the fast path reads the old shape as is.
    let events = Events::default();
    let r = migrate(&c, files, &opts(), None, &events).await.unwrap();
    assert_eq!(
        r.applied
            .iter()
            .map(|a| a.version.as_str())
            .collect::<Vec<_>>(),
        ["0002"]
    );
    assert!(events
        .all()
        .iter()
        .any(|e| matches!(e, Event::TrackingTableUpgraded { .. })));
    let row = c
        .query_one(
            "SELECT name, status FROM schema_migrations WHERE version = '0001'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("table_1".into(), "completed".into())
    );
}

#[tokio::test]
async fn refuses_other_tools_tracking_tables() {
    for (ddl, tool) in [
        ("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)", "golang-migrate"),
        ("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)", "dbmate"),
    ] {
        let db = TestDb::new().await;
        let c = db.client().await;
        c.batch_execute(ddl).await.unwrap();
        let err = migrate(&c, many(1), &opts(), None, &Silent).await.unwrap_err();
        assert_eq!(err.code(), "E_TRACKING_TABLE_INCOMPATIBLE");
        assert!(err.message().contains(tool), "{}", err.message());
        assert!(err.message().contains("keep tidemark's history in another table"), "{}", err.message());
        assert!(!err.message().contains("--"), "a flag in the core's message: {}", err.message());
        // Another table works.
        let other = Options { table: "tidemark_migrations".into(), ..opts() };
        assert_eq!(migrate(&c, many(1), &other, None, &Silent).await.unwrap().applied.len(), 1);
    }
}

/// `status` used to take the migration lock and run the tracking table's
/// DDL just to explain another tool's table: it waited behind a running
/// deploy (and could time out) for a read-only question. Now it reads.
#[tokio::test]
async fn status_explains_a_foreign_table_without_the_lock_or_ddl() {
    // Near misses of the peers' shapes: not adoptable history, so the only
    // answer is the shape check's explanation.
    for (ddl, tool) in [
        ("CREATE TABLE schema_migrations (version integer PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (20240101, false)", "golang-migrate"),
        ("CREATE TABLE schema_migrations (version bigint PRIMARY KEY); INSERT INTO schema_migrations VALUES (20240101000000)", "dbmate"),
        ("CREATE TABLE schema_migrations (version text PRIMARY KEY, note text); INSERT INTO schema_migrations VALUES ('1', 'x')", "which tidemark cannot use"),
    ] {
        let db = TestDb::new().await;
        let holder = db.client().await;
        holder.batch_execute(ddl).await.unwrap();
        // Another session holds tidemark's lock, and a lock on the table
        // that any DDL on it would wait for (reads go through).
        let key = unlock(&holder, &opts(), UnlockOptions::default())
            .await
            .unwrap()
            .lock_key;
        holder
            .batch_execute(&format!(
                "SELECT pg_advisory_lock({key}); BEGIN; LOCK TABLE schema_migrations IN EXCLUSIVE MODE"
            ))
            .await
            .unwrap();
        let objects = "SELECT count(*)::text FROM pg_class WHERE relnamespace = 'public'::regnamespace";
        let before = holder.query_one(objects, &[]).await.unwrap().get::<_, String>(0);
        let (c, counter) = db.counted_client().await;
        let patient_for_a_moment = Options {
            lock_wait_timeout_ms: 300,
            ..opts()
        };
        let err = status(&c, many(1), &patient_for_a_moment, &Silent)
            .await
            .unwrap_err();
        // The same explanation the locked path gives (not a lock timeout).
        assert_eq!(err.code(), "E_TRACKING_TABLE_INCOMPATIBLE", "{}", err.message());
        assert!(err.message().contains(tool), "{}", err.message());
        assert!(err.message().contains("keep tidemark's history in another table"), "{}", err.message());
        assert!(!err.message().contains("--"), "a flag in the core's message: {}", err.message());
        let sent = counter.queries().join("\n");
        for word in ["pg_advisory", "CREATE", "ALTER", "DO $", "BEGIN"] {
            assert!(!sent.contains(word), "status sent {word}: {sent}");
        }
        holder.batch_execute("COMMIT").await.unwrap();
        let after = holder.query_one(objects, &[]).await.unwrap().get::<_, String>(0);
        assert_eq!(before, after, "status created objects");
    }
}

#[tokio::test]
async fn lock_timeout_names_the_holder() {
    let db = TestDb::new().await;
    let blocker = db.client().await;
    blocker
        .batch_execute("SET application_name = 'stuck-deploy'")
        .await
        .unwrap();
    let c = db.client().await;
    let files = || {
        vec![
            many(1).remove(0),
            file("0002_sleep.sql", "SELECT pg_sleep(2);"),
        ]
    };
    // A deploy that holds the lock while its migration runs.
    let sleeper = tokio::spawn(async move {
        migrate(&blocker, files(), &Options::default(), None, &Silent).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let impatient = Options {
        lock_wait_timeout_ms: 200,
        ..opts()
    };
    let err = migrate(&c, files(), &impatient, None, &Silent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_LOCK_TIMEOUT");
    // Each migration ends with RESET ALL, which restores the startup
    // packet's application_name (the SET above lasts until then).
    assert!(
        err.message().contains("application_name 'tidemark-test'"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("pg_terminate_backend"),
        "{}",
        err.message()
    );
    assert!(sleeper.await.unwrap().is_ok());
    // With the holder gone, the patient run finds everything applied.
    assert!(
        migrate(&c, files(), &opts(), None, &Silent)
            .await
            .unwrap()
            .up_to_date
    );
}
