//! Eight deploys racing on one database, and the round trips they cost.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tidemark_core::{migrate, Event, Options, Silent};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_apply_each_migration_exactly_once() {
    let db = TestDb::new().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = db.client().await;
        tasks.push(tokio::spawn(async move {
            let events = Events::default();
            let r = migrate(&c, many(20), &Options::default(), None, &events).await;
            (r, events.all())
        }));
    }
    let mut applied_total = 0;
    let mut applied_events = 0;
    for t in tasks {
        let (r, events) = t.await.unwrap();
        let r = r.expect("every client succeeds");
        applied_total += r.applied.len();
        applied_events += events
            .iter()
            .filter(|e| matches!(e, Event::MigrationApplied { .. }))
            .count();
    }
    assert_eq!(
        applied_total, 20,
        "each migration applied by exactly one client"
    );
    assert_eq!(applied_events, 20);
    let c = db.client().await;
    let rows = tracking(&c).await;
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|(_, s)| s == "completed"));
    let tables: i64 = c
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 20);
}

#[tokio::test]
async fn nothing_pending_costs_one_query_message_and_no_lock() {
    let db = TestDb::new().await;
    let c = db.client().await;
    migrate(&c, many(20), &Options::default(), None, &Silent)
        .await
        .unwrap();
    let (counted, counter) = db.counted_client().await;
    let r = migrate(&counted, many(20), &Options::default(), None, &Silent)
        .await
        .unwrap();
    assert!(r.up_to_date);
    let q = counter.queries();
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(!q[0].contains("pg_advisory_lock"));
    assert!(!q[0].to_ascii_uppercase().contains("INSERT"));
    assert!(
        counter.other().is_empty(),
        "no extended-protocol messages: {:?}",
        counter.other()
    );
}

#[tokio::test]
async fn pending_migrations_cost_at_most_three_query_messages() {
    for n in [1usize, 20, 200] {
        let db = TestDb::new().await;
        let (c, counter) = db.counted_client().await;
        let r = migrate(&c, many(n), &Options::default(), None, &Silent)
            .await
            .unwrap();
        assert_eq!(r.applied.len(), n);
        let q = counter.queries();
        eprintln!("N = {n}: {} query messages after authentication", q.len());
        assert!(q.len() <= 3, "N = {n}: {} query messages", q.len());
        assert!(counter.other().is_empty(), "N = {n}: {:?}", counter.other());
        // The lock is released: another session can take it at once.
        let other = db.client().await;
        let free: bool = other
            .query_one("SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", &[])
            .await
            .unwrap()
            .get(0);
        assert!(free, "N = {n}: the advisory lock is still held");
        assert_eq!(tracking(&other).await.len(), n);
    }
}

#[tokio::test]
async fn very_large_plans_are_cut_into_bounded_messages() {
    let db = TestDb::new().await;
    let (c, counter) = db.counted_client().await;
    let small = Options {
        max_message_bytes: 4096,
        ..Options::default()
    };
    let r = migrate(&c, many(60), &small, None, &Silent).await.unwrap();
    assert_eq!(r.applied.len(), 60);
    let q = counter.queries();
    assert!(q.len() > 3, "a 4 KiB bound must split 60 migrations");
    assert!(
        q.iter().all(|m| m.len() < 4096 + 1024),
        "messages stay near the bound"
    );
    assert_eq!(tracking(&c).await.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_safe_mode_applies_each_migration_exactly_once_without_session_locks() {
    let db = TestDb::new().await;
    let pooled = Options {
        pool_safe: true,
        lock_timeout_ms: Some(5_000),
        ..Options::default()
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = db.client().await;
        let o = pooled.clone();
        tasks.push(tokio::spawn(async move {
            let r = migrate(&c, many(20), &o, None, &Silent).await;
            // No session state left behind: the lock_timeout was SET LOCAL.
            let lt: String = c.query_one("SHOW lock_timeout", &[]).await.unwrap().get(0);
            (r, lt)
        }));
    }
    let mut total = 0;
    for t in tasks {
        let (r, lock_timeout) = t.await.unwrap();
        total += r.expect("every client succeeds").applied.len();
        assert_eq!(lock_timeout, "0");
    }
    assert_eq!(total, 20);
    let c = db.client().await;
    assert_eq!(tracking(&c).await.len(), 20);
    let session_locks: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(session_locks, 0);
    // A no-transaction migration needs a session: refused through a pooler.
    let files = vec![file(
        "9999_idx.sql",
        "-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY i ON t1 (a);",
    )];
    let mut all = many(20);
    all.extend(files);
    let err = migrate(&c, all, &pooled, None, &Silent).await.unwrap_err();
    assert_eq!(err.code(), "E_POOL_NO_TRANSACTION");
}

/// A deploy through `execute_after`, with the read made ahead (or none).
async fn deploy_after(
    c: &tokio_postgres::Client,
    request: tidemark_core::Request,
    ahead: Option<tidemark_core::ReadAhead>,
) -> tidemark_core::Result<tidemark_core::MigrateReport> {
    deploy_loaded(c, request, ahead, false, &Silent).await
}

/// [`deploy_after`], the files loaded ahead (`load_ahead`) when `loaded`.
async fn deploy_loaded(
    c: &tokio_postgres::Client,
    request: tidemark_core::Request,
    ahead: Option<tidemark_core::ReadAhead>,
    loaded: bool,
    reporter: &dyn tidemark_core::Reporter,
) -> tidemark_core::Result<tidemark_core::MigrateReport> {
    use tidemark_core::{execute_after, load_ahead, NoScripts, Operation, Outcome};
    let loaded = loaded
        .then(|| load_ahead(Operation::Deploy, &request))
        .flatten();
    match execute_after(
        c,
        Operation::Deploy,
        request,
        reporter,
        ahead,
        loaded,
        &NoScripts,
    )
    .await?
    {
        Outcome::Migrate(r) => Ok(r),
        other => panic!("a deploy reports a MigrateReport, not {other:?}"),
    }
}

/// The files loaded while the connection is set up (`load_ahead`, both
/// hosts' early connect) change only when the work is done: the same
/// migrations applied, the same warnings in the same place among the
/// events, and the same error, with its source line, for a bad file.
#[tokio::test]
async fn files_loaded_ahead_give_the_same_outcome_events_and_errors() {
    use tidemark_core::{load_ahead, read_ahead, Operation, Request};
    let request = || {
        let mut migrations = many(5);
        // Not a migration: a warning event.
        migrations.push(tidemark_core::SourceFile::new("notes.txt", b"hi".to_vec()));
        Request {
            migrations,
            ..Request::default()
        }
    };
    let kinds = |events: &Events| -> Vec<String> {
        events
            .all()
            .iter()
            .map(|e| {
                let json = serde_json::to_value(e).unwrap();
                json["event"].as_str().unwrap_or("?").to_string()
            })
            .collect()
    };
    let mut seen = Vec::new();
    for loaded in [false, true] {
        let db = TestDb::new().await;
        let c = db.client().await;
        let ahead = read_ahead(&c, Operation::Deploy, &request()).await;
        let events = Events::default();
        let r = deploy_loaded(&c, request(), ahead, loaded, &events)
            .await
            .unwrap();
        assert_eq!(r.applied.len(), 5);
        assert_eq!(tracking(&c).await.len(), 5);
        let kinds = kinds(&events);
        assert!(kinds.iter().any(|k| k.starts_with("warning")), "{kinds:?}");
        seen.push(kinds);
    }
    assert_eq!(seen[0], seen[1]);

    // A bad file: the same error, its line quoted, nothing applied.
    let bad = || Request {
        migrations: vec![
            tidemark_core::SourceFile::new("001_ok.sql", b"CREATE TABLE ok1 (id int);".to_vec()),
            tidemark_core::SourceFile::new("002_nul.sql", b"select 1;\nselect 2;\0\n".to_vec()),
        ],
        ..Request::default()
    };
    let mut errors = Vec::new();
    for loaded in [false, true] {
        let db = TestDb::new().await;
        let c = db.client().await;
        let ahead = read_ahead(&c, Operation::Deploy, &bad()).await;
        let err = deploy_loaded(&c, bad(), ahead, loaded, &Silent)
            .await
            .unwrap_err();
        assert!(!table_exists(&c, "ok1").await);
        errors.push(serde_json::to_value(&err).unwrap());
    }
    assert_eq!(errors[0], errors[1]);
    assert!(
        errors[1]["message"].as_str().unwrap().contains("NUL byte"),
        "{}",
        errors[1]
    );

    // Only the operations that start with the first read load ahead.
    assert!(load_ahead(Operation::Down, &request()).is_none());
    assert!(load_ahead(Operation::Status, &request()).is_some());
}

/// The native host's early connect: the first read made while the files are
/// read (`read_ahead`) is the no-op deploy's only message; a read of another
/// tracking table is not used; a stale "nothing applied" still applies
/// exactly once; and a bad file is reported before the read's own refusal.
#[tokio::test]
async fn a_read_made_ahead_is_taken_in_place_of_the_first_read() {
    use tidemark_core::{execute_after, read_ahead, NoScripts, Operation, Outcome, Request};
    let request = |n: usize| Request {
        migrations: many(n),
        ..Request::default()
    };
    let db = TestDb::new().await;
    let (c, counter) = db.counted_client().await;
    // Ahead of an empty database: the tracking table does not exist yet.
    let ahead = read_ahead(&c, Operation::Deploy, &request(20)).await;
    assert!(ahead.is_some());
    let r = deploy_after(&c, request(20), ahead).await.unwrap();
    assert_eq!(r.applied.len(), 20);
    assert!(counter.queries().len() <= 3, "{:#?}", counter.queries());
    assert_eq!(tracking(&c).await.len(), 20);

    // Nothing pending: the read made ahead is the only message.
    let (c, counter) = db.counted_client().await;
    let ahead = read_ahead(&c, Operation::Status, &request(20)).await;
    let Outcome::Status(s) = execute_after(
        &c,
        Operation::Status,
        request(20),
        &Silent,
        ahead,
        None,
        &NoScripts,
    )
    .await
    .unwrap() else {
        panic!("status reports a StatusReport")
    };
    assert_eq!(s.migrations.len(), 20);
    let ahead = read_ahead(&c, Operation::Deploy, &request(20)).await;
    let r = deploy_after(&c, request(20), ahead).await.unwrap();
    assert!(r.up_to_date);
    assert_eq!(counter.queries().len(), 2, "{:#?}", counter.queries());

    // Made for another tracking table: not used, the table is read again.
    let (c, counter) = db.counted_client().await;
    let ahead = read_ahead(&c, Operation::Deploy, &request(20)).await;
    let other = Request {
        table: "other_migrations".into(),
        migrations: vec![tidemark_core::SourceFile::new(
            "001_other.sql",
            b"select 1;".to_vec(),
        )],
        ..Request::default()
    };
    let r = deploy_after(&c, other, ahead).await.unwrap();
    assert_eq!(r.applied.len(), 1, "other_migrations was empty");
    assert!(counter.queries()[1].contains("other_migrations"));

    // Other operations read nothing ahead.
    assert!(read_ahead(&c, Operation::Down, &request(20))
        .await
        .is_none());

    // Another tool's history: the read made ahead is a refusal, but a file
    // that cannot be read is reported first, as without it.
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101000000')")
        .await
        .unwrap();
    let ahead = read_ahead(&c, Operation::Deploy, &request(1)).await;
    let bad = Request {
        migrations: vec![tidemark_core::SourceFile::new(
            "001_nul.sql",
            b"select 1;\0".to_vec(),
        )],
        ..Request::default()
    };
    let err = deploy_after(&c, bad, ahead).await.unwrap_err();
    assert!(err.to_string().contains("NUL byte"), "{err}");
    let ahead = read_ahead(&c, Operation::Deploy, &request(1)).await;
    let err = deploy_after(&c, request(1), ahead).await.unwrap_err();
    assert!(err.to_string().contains("dbmate"), "{err}");
}
