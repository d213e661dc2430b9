//! What a failed item leaves behind (a `failed` row, a rolled-back
//! transaction) and the errors it becomes: a lost session is its own error,
//! never "fix the file".

use tokio_postgres::Client;

use super::sql::record_failure_sql;
use super::{Item, Tracking, Work};
use crate::error::{DbDetails, Error, Kind};
use crate::report::AppliedMigration;

/// The error for a session lost in the middle of `item`: what is known to be
/// committed, what is not known, and what to do. Never "fix the file".
pub(super) fn connection_lost(
    item: &Item<'_>,
    db: &DbDetails,
    committed: &[AppliedMigration],
    statements: Option<(usize, usize)>,
) -> Error {
    let (what, doing, plural) = match item.work {
        Work::Up => ("migration", "applying", "migration(s)"),
        Work::Down => ("migration", "reverting", "migration(s)"),
        Work::Seed => ("seed", "running", "seed(s)"),
    };
    let file = &item.text.file;
    let before = match committed.len() {
        0 => format!("no {plural} had committed in this run before it"),
        n => format!(
            "{n} {plural} before it committed ({})",
            committed
                .iter()
                .map(|a| a.file.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let unknown = match statements {
        Some((ran, total)) => format!(
            "{file} runs without a transaction: {ran} of its {total} statements had completed, and whether statement {} completed is not known",
            ran + 1
        ),
        None => format!("whether {file} itself committed is not known; nothing after it ran"),
    };
    let next = match (item.work, statements) {
        (Work::Up, Some(_)) => "Run the deploy again: it resumes the migration after the statements that completed (an index the interrupted statement left INVALID is dropped and built again)",
        (Work::Up, None) => "Run the deploy again: it reads what is applied and continues from there",
        (Work::Down, _) => "Run `tidemark status` to see what is applied, then run the command again",
        (Work::Seed, _) => "Run the seed command again: seeds that committed are skipped",
    };
    Error::new(
        Kind::ConnectionLost,
        format!(
            "the connection to the database was lost while {doing} {what} {file} ({}); {before}; {unknown}. {next}",
            db.message
        ),
    )
    .at(file, None, None)
    .with_version(item.key)
    .with_db(db)
}

pub(super) fn item_error(
    item: &Item<'_>,
    db: &DbDetails,
    located: Option<(u32, u32)>,
    applied_before: usize,
    statements: Option<(usize, usize)>,
) -> Error {
    let (kind, what, undo) = match item.work {
        Work::Up => (Kind::MigrationFailed, "migration", "it was rolled back"),
        Work::Down => (
            Kind::MigrationFailed,
            "down migration",
            "it was rolled back",
        ),
        Work::Seed => (Kind::SeedFailed, "seed", "it was rolled back"),
    };
    let at = match located {
        Some((line, col)) => format!(" at line {line}, column {col}"),
        None => String::new(),
    };
    let state = db
        .sql_state
        .as_deref()
        .map(|s| format!(" (SQLSTATE {s})"))
        .unwrap_or_default();
    let undo = match statements {
        Some((ran, total)) => format!(
            "it ran without a transaction: {ran} of its {total} statements had completed, and the next run resumes after them"
        ),
        None => undo.to_string(),
    };
    let before = match (item.work, applied_before) {
        (_, 0) => String::new(),
        (Work::Seed, n) => format!("; the {n} seed(s) before it are committed"),
        (_, n) => format!("; the {n} migration(s) before it are committed"),
    };
    let (line, column) = located.unzip();
    Error::new(
        kind,
        format!(
            "{what} {}{at} failed: {}{state}; {undo}{before}. Fix the file and run again",
            item.text.file, db.message
        ),
    )
    .at(&item.text.file, line, column)
    .with_version(item.key)
    .with_db(db)
}

pub(super) async fn rollback(client: &Client) {
    let _ = client.simple_query("ROLLBACK").await;
}

/// Leaves a `failed` row for a migration that did not complete.
pub(super) async fn record_failure(
    client: &Client,
    t: &Tracking,
    item: &Item<'_>,
    message: &str,
    progress: Option<(usize, &str)>,
) {
    let sql = record_failure_sql(t, item, message, progress);
    let _ = client.simple_query(&sql).await;
}
