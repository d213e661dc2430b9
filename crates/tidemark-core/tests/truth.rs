//! Truthful results at the edges (issue 11) and other tools' files (issue
//! 12), against a real PostgreSQL server, each test in a fresh database.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tidemark_core::{deploy, down, migrate, Options, Silent};

fn opts() -> Options {
    Options::default()
}

async fn value(c: &tokio_postgres::Client, sql: &str) -> Option<String> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
}

// Regression: `set_config('search_path', '', false)` (every pg_dump file has
// it) made the next migration of the same deploy fail, and turned off the
// session's timeouts for every later migration.
#[tokio::test]
async fn each_migration_starts_from_the_same_session_state() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![
        file(
            "001_dump.sql",
            "SELECT pg_catalog.set_config('search_path', '', false);\nSET statement_timeout = 0;\nCREATE TABLE public.a (id int);",
        ),
        file("002_next.sql", "CREATE TABLE b (id int);\nCREATE TABLE seen AS SELECT current_setting('search_path') AS path;"),
    ];
    let r = deploy(&c, files, &opts(), &Silent).await.unwrap();
    assert_eq!(r.applied.len(), 2);
    assert!(table_exists(&c, "b").await);
    assert_eq!(
        value(&c, "SELECT path FROM seen").await.as_deref(),
        Some("\"$user\", public")
    );
}

// Regression: `--statement-timeout 2s` also bounded the wait for the lock.
#[tokio::test]
async fn statement_timeout_does_not_bound_the_lock_wait() {
    let db = TestDb::new().await;
    let holder = db.client().await;
    let c = db.client().await;
    // Take tidemark's lock the way a running deploy holds it.
    migrate(&holder, many(1), &opts(), None, &Silent)
        .await
        .unwrap();
    let key = value(&holder, "SELECT ('x' || substr(encode(sha256('tidemark:public.schema_migrations'), 'hex'), 1, 16))::bit(64)::bigint::text").await.unwrap();
    holder
        .simple_query(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .unwrap();
    c.simple_query("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        holder
            .simple_query(&format!("SELECT pg_advisory_unlock({key})"))
            .await
            .unwrap();
        holder
    });
    let o = Options {
        lock_wait_timeout_ms: 10_000,
        ..opts()
    };
    let r = migrate(&c, many(2), &o, None, &Silent).await.unwrap();
    assert_eq!(r.applied.len(), 1);
    release.await.unwrap();
}

#[tokio::test]
async fn a_wrapper_keeps_its_transaction_modes() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![file(
        "001_serial.sql",
        "BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE iso AS SELECT current_setting('transaction_isolation') AS level;\nCOMMIT;\n",
    )];
    deploy(&c, files, &opts(), &Silent).await.unwrap();
    assert_eq!(
        value(&c, "SELECT level FROM iso").await.as_deref(),
        Some("serializable")
    );
}

#[tokio::test]
async fn pg_dump_baseline_with_restrict_and_copy() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict Zq1xYz\n\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n\nCREATE TABLE public.users (id integer NOT NULL, name text);\n\nCOPY public.users (id, name) FROM stdin;\n1\tada\n2\tgrace; o'hara\n3\t\\N\n\\.\n\n\nALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);\n\n\\unrestrict Zq1xYz\n";
    let files = vec![
        file("001_baseline.sql", dump),
        file("002_more.sql", "INSERT INTO users VALUES (4, 'next');"),
    ];
    let r = deploy(&c, files, &opts(), &Silent).await.unwrap();
    assert_eq!(r.applied.len(), 2);
    assert_eq!(
        value(
            &c,
            "SELECT string_agg(coalesce(name, 'NULL'), ',' ORDER BY id) FROM users"
        )
        .await
        .as_deref(),
        Some("ada,grace; o'hara,NULL,next")
    );
    // A bad row rolls the whole migration back and names the file.
    let db2 = TestDb::new().await;
    let c2 = db2.client().await;
    let bad = "CREATE TABLE t (id int);\nCOPY t (id) FROM stdin;\n1\nnot-a-number\n\\.\n";
    let err = deploy(&c2, vec![file("001_bad.sql", bad)], &opts(), &Silent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_MIGRATION_FAILED");
    assert_eq!((err.file(), err.line()), (Some("001_bad.sql"), Some(2)));
    assert!(!table_exists(&c2, "t").await);
    assert_eq!(
        tracking(&c2).await,
        [("001".to_string(), "failed".to_string())]
    );
}

// Regression: a NUL byte in 003 gave 001 a failed row.
#[tokio::test]
async fn unsendable_input_is_refused_before_anything_runs() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let mut files = many(2);
    files.push(tidemark_core::SourceFile::new(
        "0003_nul.sql",
        b"SELECT '\0';".to_vec(),
    ));
    let err = deploy(&c, files, &opts(), &Silent).await.unwrap_err();
    assert_eq!(
        (err.code(), err.file()),
        ("E_NUL_BYTE", Some("0003_nul.sql"))
    );
    assert!(!table_exists(&c, "schema_migrations").await);
    // And COPY ... TO STDOUT, which committed behind the client's back.
    let files = vec![
        file("001_a.sql", "CREATE TABLE a (id int);"),
        file("002_copy.sql", "COPY (SELECT 1) TO stdout;"),
        file("003_c.sql", "CREATE TABLE c (id int);"),
    ];
    let err = deploy(&c, files, &opts(), &Silent).await.unwrap_err();
    assert_eq!(
        (err.code(), err.file()),
        ("E_UNSUPPORTED_STATEMENT", Some("002_copy.sql"))
    );
    assert!(!table_exists(&c, "schema_migrations").await);
    assert!(!table_exists(&c, "a").await);
}

/// A table with a duplicate, so that a unique concurrent build fails and
/// leaves an INVALID index behind, as an interrupted build does.
async fn invalid_index(c: &tokio_postgres::Client) {
    c.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (1);")
        .await
        .unwrap();
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x)")
        .await
        .is_err());
    c.batch_execute("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
        .await
        .unwrap();
    assert_eq!(
        value(
            c,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_x'::regclass"
        )
        .await
        .as_deref(),
        Some("false")
    );
}

// Regression: an interrupted CREATE INDEX CONCURRENTLY left an INVALID index
// and the next deploy failed with "relation already exists", or (with IF NOT
// EXISTS) marked the migration completed around the INVALID index.
#[tokio::test]
async fn resume_rebuilds_an_invalid_index_and_never_completes_around_one() {
    for if_not_exists in ["", "IF NOT EXISTS "] {
        let db = TestDb::new().await;
        let c = db.client().await;
        invalid_index(&c).await;
        let sql = format!("-- tidemark:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY {if_not_exists}t_x ON t (x);\n");
        // First run: killed during the build (the failed row with no
        // statement done is what a kill leaves).
        let setup = || file("000_setup.sql", "SELECT 1;");
        migrate(&c, vec![setup()], &opts(), None, &Silent)
            .await
            .unwrap();
        c.batch_execute("INSERT INTO schema_migrations (version, name, status, statements_done) VALUES ('001', 'idx', 'failed', 0)").await.unwrap();
        let r = deploy(
            &c,
            vec![setup(), file("001_idx.sql", &sql)],
            &opts(),
            &Silent,
        )
        .await
        .unwrap();
        assert_eq!(r.applied.len(), 1, "{if_not_exists}");
        assert_eq!(
            value(
                &c,
                "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_x'::regclass"
            )
            .await
            .as_deref(),
            Some("true")
        );
        assert_eq!(
            tracking(&c).await[1],
            ("001".to_string(), "completed".to_string())
        );
        // A fresh run of IF NOT EXISTS over an INVALID leftover rebuilds it too.
        let db = TestDb::new().await;
        let c = db.client().await;
        invalid_index(&c).await;
        deploy(&c, vec![file("001_idx.sql", &sql)], &opts(), &Silent)
            .await
            .unwrap_or_else(|e| {
                assert!(if_not_exists.is_empty(), "{e}");
                tidemark_core::MigrateReport::default()
            });
        if !if_not_exists.is_empty() {
            assert_eq!(
                value(
                    &c,
                    "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_x'::regclass"
                )
                .await
                .as_deref(),
                Some("true")
            );
        }
    }
    // Interrupted after the build committed but before its progress was
    // written: the valid index counts as done.
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE t (x int); CREATE INDEX t_x ON t (x);")
        .await
        .unwrap();
    let setup = || file("000_setup.sql", "SELECT 1;");
    migrate(&c, vec![setup()], &opts(), None, &Silent)
        .await
        .unwrap();
    c.batch_execute("INSERT INTO schema_migrations (version, name, status, statements_done) VALUES ('001', 'idx', 'failed', 0)").await.unwrap();
    let sql = "-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);\nCREATE INDEX CONCURRENTLY t_x2 ON t (x);\n";
    deploy(
        &c,
        vec![setup(), file("001_idx.sql", sql)],
        &opts(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(
        tracking(&c).await[1],
        ("001".to_string(), "completed".to_string())
    );
}

// Regression: a lost connection was reported as "it was rolled back. Fix the
// file", naming a migration that had committed.
#[tokio::test]
async fn a_lost_connection_is_its_own_error_and_the_next_deploy_finishes() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let killer = db.client().await;
    let files = || {
        vec![
            file("001_a.sql", "CREATE TABLE a (id int);"),
            file(
                "002_slow.sql",
                "SELECT pg_sleep(3);\nCREATE TABLE b (id int);",
            ),
            file("003_c.sql", "CREATE TABLE c (id int);"),
        ]
    };
    let pid = value(&c, "SELECT pg_backend_pid()::text").await.unwrap();
    let kill = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        killer
            .simple_query(&format!("SELECT pg_terminate_backend({pid})"))
            .await
            .unwrap();
    });
    let err = deploy(&c, files(), &opts(), &Silent).await.unwrap_err();
    kill.await.unwrap();
    assert_eq!(err.code(), "E_CONNECTION_LOST", "{}", err.message());
    assert!(err.message().contains("002_slow.sql"), "{}", err.message());
    assert!(
        err.message().contains("Run the deploy again"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("Fix the file"), "{}", err.message());
    assert_eq!(err.applied().len(), 1);
    let c = db.client().await;
    assert_eq!(
        tracking(&c).await,
        [("001".to_string(), "completed".to_string())]
    );
    let r = deploy(&c, files(), &opts(), &Silent).await.unwrap();
    assert_eq!(r.applied.len(), 2);
}

#[tokio::test]
async fn down_to_zero_reverts_version_zero_and_empty_downs_are_noops() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = || {
        vec![
            file(
                "0000_init.sql",
                "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n",
            ),
            file("0001_noop.up.sql", "SELECT 1;"),
            file("0001_noop.down.sql", "-- nothing to undo\n"),
        ]
    };
    migrate(&c, files(), &opts(), None, &Silent).await.unwrap();
    let r = down(&c, files(), &opts(), None, Some("0"), &Silent)
        .await
        .unwrap();
    assert_eq!(r.reverted.len(), 2);
    assert!(tracking(&c).await.is_empty());
    assert!(!table_exists(&c, "a").await);
}

#[tokio::test]
async fn other_tools_folders_are_read_as_they_are() {
    let db = TestDb::new().await;
    let c = db.client().await;
    let files = vec![
        file("migration_lock.toml", "provider = \"postgresql\""),
        file("20240101120000_init/", ""),
        file(
            "20240101120000_init/migration.sql",
            "CREATE TABLE p (id int);",
        ),
        file("20240202120000_idx/", ""),
        file(
            "20240202120000_idx/migration.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY p_id ON p (id);",
        ),
    ];
    let r = deploy(&c, files, &opts(), &Silent).await.unwrap();
    assert_eq!(r.applied.len(), 2);
    // An unknown shape is never "up to date".
    let err = deploy(
        &c,
        vec![file("schema/", ""), file("schema/tables.sql", "x")],
        &opts(),
        &Silent,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "E_UNKNOWN_LAYOUT");
}
