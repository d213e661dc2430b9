//! The shapes that cross to JS, one sample of each with every optional
//! field set, kept in `tests/contract/shapes.json`. This test fails when
//! what Rust serializes changes and the file was not regenerated
//! (`TIDEMARK_WRITE_SHAPES=1 cargo test -p tidemark-core contract`);
//! `tests/contract.test.mjs` checks the file against `npm/tidemark/index.d.ts`
//! both ways, so the TypeScript contract cannot drift from Rust.

use serde_json::{json, Value};

use crate::adopt::{AdoptReport, AdoptState, Adopted, PendingFile};
use crate::error::{Error, Folder, Kind};
use crate::report::*;

fn applied() -> AppliedMigration {
    AppliedMigration {
        version: "001".into(),
        name: "init".into(),
        file: "001_init.sql".into(),
        duration_ms: 3,
    }
}

fn s(text: &str) -> String {
    text.to_string()
}

/// Every event variant: the match makes a new variant a compile error
/// here until it has a sample.
fn events() -> Vec<Event> {
    let all = vec![
        Event::Connecting {
            source: s("DATABASE_URL"),
            url: Some(s("postgres://h/d")),
            instead_of: Some(s("POSTGRES_URL")),
            pooler: Some(s("port 6543")),
            dir: Some(s(".tidemark/pglite")),
            reason: Some(s("no database URL is set")),
            served_by: Some(1),
        },
        Event::ConnectRetry {
            attempt: 1,
            error: s("refused"),
            delay_ms: 100,
        },
        Event::Connected {
            host: s("h"),
            port: 5432,
            database: s("d"),
            sslmode: s("prefer"),
        },
        Event::Warning {
            code: s("W_X"),
            message: s("m"),
            file: Some(s("f")),
        },
        Event::Planned {
            applied: 1,
            pending: 2,
        },
        Event::UpToDate { applied: 1 },
        Event::LockAcquired,
        Event::TrackingTableCreated { table: s("t") },
        Event::TrackingTableUpgraded { table: s("t") },
        Event::MigrationApplied {
            version: s("001"),
            name: s("init"),
            file: s("001_init.sql"),
            duration_ms: 1,
        },
        Event::StatementApplied {
            version: s("001"),
            index: 1,
            total: 2,
        },
        Event::MigrationResumed {
            version: s("001"),
            name: s("init"),
            skipped_statements: 1,
        },
        Event::MigrationFailed {
            version: s("001"),
            name: s("init"),
            file: s("001_init.sql"),
            message: s("m"),
        },
        Event::MigrationReverted {
            version: s("001"),
            name: s("init"),
            file: s("001_init.sql"),
            duration_ms: 1,
        },
        Event::SeedApplied {
            name: s("001_users"),
            file: s("001_users.sql"),
            duration_ms: 1,
        },
        Event::SeedSkipped {
            name: s("001_users"),
            file: s("001_users.sql"),
        },
        Event::SchemasDropped {
            schemas: vec![s("public")],
        },
    ];
    for e in &all {
        match e {
            Event::Connecting { .. }
            | Event::ConnectRetry { .. }
            | Event::Connected { .. }
            | Event::Warning { .. }
            | Event::Planned { .. }
            | Event::UpToDate { .. }
            | Event::LockAcquired
            | Event::TrackingTableCreated { .. }
            | Event::TrackingTableUpgraded { .. }
            | Event::MigrationApplied { .. }
            | Event::StatementApplied { .. }
            | Event::MigrationResumed { .. }
            | Event::MigrationFailed { .. }
            | Event::MigrationReverted { .. }
            | Event::SeedApplied { .. }
            | Event::SeedSkipped { .. }
            | Event::SchemasDropped { .. } => {}
        }
    }
    all
}

fn to(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `{ reports: { TypeName: sample }, events: [sample], error: sample }`.
fn shapes() -> Value {
    let migrate = MigrateReport {
        applied: vec![applied()],
        already_applied: 1,
        pending: 0,
        up_to_date: false,
    };
    let seed = SeedReport {
        environment: s("development"),
        ran: vec![SeedRun {
            name: s("001_users"),
            file: s("001_users.sql"),
            duration_ms: 1,
        }],
        skipped: vec![s("002_more")],
        // Between the engine and the host only: the host runs the script
        // seed it names and returns a report without it (script-seeds.cjs).
        script_due: None,
    };
    let edit = AcceptedEdit {
        version: s("001"),
        name: s("init"),
        file: s("001_init.sql"),
        applied_checksum: s("a"),
        accepted_checksum: s("b"),
        accepted_at: Some(s("2026-01-01T00:00:00Z")),
        accepted_by: Some(s("me")),
        reason: s("comment"),
    };
    let reports = json!({
        "MigrateReport": to(&migrate),
        "AppliedMigration": to(applied()),
        "StatusReport": to(StatusReport {
            migrations: vec![StatusRow {
                version: s("001"),
                name: s("init"),
                file: Some(s("001_init.sql")),
                state: MigrationState::Applied,
                applied_at: Some(s("2026-01-01T00:00:00Z")),
                duration_ms: Some(1),
                checksum: ChecksumState::Ok,
                out_of_order: false,
                error_message: Some(s("m")),
            }],
            current_version: Some(s("001")),
            accepted: vec![edit.clone()],
            applied: 1,
            pending: 0,
            drifted: 0,
            missing: 0,
            failed: 0,
        }),
        "DownReport": to(DownReport { reverted: vec![applied()] }),
        "RedoReport": to(RedoReport { reverted: vec![applied()], applied: vec![applied()] }),
        "SeedReport": to(&seed),
        "ResetReport": to(ResetReport { migrate, seed }),
        "UnlockReport": to(UnlockReport {
            table: s("public.schema_migrations"),
            lock_key: s("1"),
            holder: Some(LockHolder {
                pid: 1,
                application_name: s("a"),
                user: s("u"),
                client_addr: Some(s("127.0.0.1")),
                since: Some(s("2026-01-01T00:00:00Z")),
                seconds: 1,
                query_start: Some(s("2026-01-01T00:00:00Z")),
                state: s("idle"),
                query: s("select 1"),
            }),
            waiting: 0,
            terminated: false,
        }),
        "AcceptReport": to(AcceptReport { accepted: edit }),
        "PlanReport": to(PlanReport {
            already_applied: 0,
            pending: vec![PlannedMigration {
                version: s("001"),
                name: s("init"),
                file: s("001_init.sql"),
                transaction: true,
            }],
            up_to_date: false,
            creates_tracking_table: true,
            messages: vec![PlannedMessage { purpose: s("read"), sql: s("select 1") }],
            complete: true,
            redacted: false,
        }),
        "CreateDatabaseReport": to(CreateDatabaseReport { database: s("d"), created: true }),
        "VerifyReport": to(VerifyReport {
            migrations: 1,
            replayed: 1,
            reversible: 1,
            not_reversed: vec![NotReversed {
                version: s("001"),
                file: s("001_init.sql"),
                left_behind: vec![s("table t")],
                not_restored: vec![s("table u")],
            }],
        }),
        "AdoptReport": to(AdoptReport {
            from: s("dbmate"),
            table: s("schema_migrations"),
            tracking_table: s("public.schema_migrations"),
            matched_by: s("version"),
            entries: 1,
            dry_run: false,
            converted: true,
            adopted: vec![Adopted {
                version: s("001"),
                name: s("init"),
                file: Some(s("001_init.sql")),
                state: AdoptState::Matched,
                applied_at: Some(s("2026-01-01T00:00:00Z")),
                checksum: None,
                duration_ms: None,
                row_key: None,
            }],
            already_recorded: 0,
            not_recorded: vec![s("002")],
            pending: vec![PendingFile { version: s("002"), name: s("b"), file: s("002_b.sql") }],
            matches_files: true,
        }),
    });
    let error = Error::new(Kind::MigrationFailed, "m")
        .at("001_init.sql", Some(1), Some(2))
        .with_version("001")
        .with_applied(vec![applied()])
        .with_db(&crate::error::DbDetails {
            sql_state: Some(s("42601")),
            detail: Some(s("d")),
            hint: Some(s("h")),
            ..Default::default()
        })
        .in_folder(Folder::Migration)
        .with_source(
            &[crate::source::SourceFile::new(
                "001_init.sql",
                b"selec 1;".to_vec(),
            )],
            &[],
        );
    json!({
        "reports": reports,
        "events": events().iter().map(to).collect::<Vec<_>>(),
        "error": to(&error),
    })
}

#[test]
#[allow(clippy::unwrap_used)]
fn the_shapes_that_cross_to_js_are_the_ones_on_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/contract/shapes.json"
    );
    let now = serde_json::to_string_pretty(&shapes()).unwrap() + "\n";
    if std::env::var_os("TIDEMARK_WRITE_SHAPES").is_some() {
        std::fs::write(path, &now).unwrap();
    }
    let on_file = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_file == now,
        "{path} is not what Rust serializes: run TIDEMARK_WRITE_SHAPES=1 cargo test -p tidemark-core contract, then node --test tests/contract.test.mjs (and update npm/tidemark/index.d.ts)"
    );
}
