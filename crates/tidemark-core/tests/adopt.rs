//! `adopt` on a real server: it runs no migration, writes in one
//! transaction, and waits for tidemark's lock like any deploy.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sha2::{Digest, Sha256};
use tidemark_core::{execute, Operation, Options, Outcome, Request, Silent};

/// dbmate's table with `n` of `many`'s migrations recorded (and applied).
async fn dbmate_history(c: &tokio_postgres::Client, n: usize) {
    c.batch_execute("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
        .await
        .unwrap();
    for f in many(n) {
        c.batch_execute(std::str::from_utf8(&f.bytes).unwrap())
            .await
            .unwrap();
        let version = f.name.split('_').next().unwrap().to_string();
        c.execute("INSERT INTO schema_migrations VALUES ($1)", &[&version])
            .await
            .unwrap();
    }
}

fn request(files: usize) -> Request {
    Request {
        migrations: many(files),
        ..Request::default()
    }
}

#[tokio::test]
async fn adopt_runs_nothing_and_writes_in_one_transaction() {
    let db = TestDb::new().await;
    dbmate_history(&db.client().await, 3).await;
    let (c, counter) = db.counted_client().await;
    let Outcome::Adopt(report) = execute(&c, Operation::Adopt, request(4), &Silent)
        .await
        .unwrap()
    else {
        panic!("not an adopt report")
    };
    assert_eq!(report.adopted.len(), 3);
    assert_eq!(report.pending.len(), 1);
    assert!(report.converted);
    let q = counter.queries();
    // Lock and probe, read, write: no migration SQL, one COMMIT.
    assert_eq!(q.len(), 3, "{q:#?}");
    assert!(q.iter().all(|m| !m.contains("CREATE TABLE t")), "{q:#?}");
    assert_eq!(q.iter().filter(|m| m.contains("COMMIT")).count(), 1);
    assert!(counter.other().is_empty(), "{:?}", counter.other());
    let rows = tracking(&c).await;
    assert_eq!(rows.len(), 3);
    // The next deploy applies only the fourth.
    let r = tidemark_core::deploy(&c, many(4), &Options::default(), &Silent)
        .await
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.applied[0].version, "0004");
}

#[tokio::test]
async fn adopt_waits_for_tidemarks_lock_and_writes_nothing_when_it_cannot_take_it() {
    let db = TestDb::new().await;
    let c = db.client().await;
    dbmate_history(&c, 2).await;
    // The lock key as tidemark computes it (db.rs: pinned).
    let digest = Sha256::digest(b"tidemark:public.schema_migrations");
    let key = i64::from_be_bytes(digest[..8].try_into().unwrap());
    let holder = db.client().await;
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let mut req = request(2);
    req.lock_wait_timeout = 200;
    let err = execute(&c, Operation::Adopt, req, &Silent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "E_LOCK_TIMEOUT", "{}", err.message());
    // dbmate's table is as it was: one column.
    let cols: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'schema_migrations'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(cols, 1);
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    assert!(execute(&c, Operation::Adopt, request(2), &Silent)
        .await
        .is_ok());
}
