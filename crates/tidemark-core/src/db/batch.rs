//! Sends the batches and follows their result stream: each item's `COMMIT`
//! completing is an event; a failure is mapped back to its item and file,
//! and the items a syntax error kept from running are sent again.

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::outcome::{connection_lost, item_error, record_failure, rollback};
use super::sql::{map_position, DONE_MARKER};
use super::steps::{run_copy_item, run_no_transaction};
use super::{
    batch_trailer, build_batch, next_run, Item, Lock, SessionSettings, Tracking, Work,
    UNIQUE_VIOLATION,
};
use crate::check::Body;
use crate::error::{DbDetails, Error, Kind, Result};
use crate::report::{AppliedMigration, Event, Reporter};

/// A failure inside a batch, mapped back to its item and file position.
#[derive(Debug)]
struct Failure {
    index: usize,
    claimed_elsewhere: bool,
    db: DbDetails,
    /// Byte offset in the item's file text, when known.
    offset: Option<usize>,
}

struct BatchOutcome {
    done: Vec<AppliedMigration>,
    failure: Option<Failure>,
}

/// Sends `items` (all transactional) as one message and follows the stream:
/// each item's COMMIT completing is an event.
async fn run_batch<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    s: SessionSettings,
    items: &[Item<'_>],
    trailer: &str,
    reporter: &R,
) -> BatchOutcome {
    let (sql, spans) = build_batch(items, t, s, trailer);
    let mut done = Vec::new();
    // Statements completed in the current item (its prologue included), and
    // whether its DONE_MARKER statement has been seen, with the duration.
    let mut completes = 0usize;
    let mut marker: Option<(u64, usize)> = None;
    let fail = |done: Vec<AppliedMigration>, e: tokio_postgres::Error, completes: usize| {
        let db = DbDetails::from_error(&e);
        let index = done.len();
        let mapped = db
            .position
            .and_then(|p| map_position(&sql, &spans, items, p));
        let (index, offset) = match mapped {
            Some((i, offset)) if i >= index => (i, offset),
            _ => {
                // No position (a run-time error): the failing statement is the
                // one after those that completed in the first uncommitted item.
                let prologue = spans.get(index).map_or(0, |sp| sp.prologue);
                let offset = match items.get(index).map(|i| &i.body) {
                    Some(Body::Transactional { statements, .. }) => completes
                        .checked_sub(prologue)
                        .and_then(|k| statements.get(k).copied()),
                    _ => None,
                };
                (index, offset)
            }
        };
        // In pool-safe mode a unique violation in the prologue is the claim
        // of a migration another deploy applied first.
        let claimed_elsewhere = s.pool_safe
            && db.sql_state.as_deref() == Some(UNIQUE_VIOLATION)
            && spans.get(index).is_some_and(|sp| completes < sp.prologue)
            && items.get(index).is_some_and(|i| i.work == Work::Up);
        BatchOutcome {
            done,
            failure: Some(Failure {
                index,
                db,
                offset,
                claimed_elsewhere,
            }),
        }
    };
    let stream = match client.simple_query_raw(&sql).await {
        Ok(s) => s,
        Err(e) => return fail(done, e, 0),
    };
    pin_mut!(stream);
    while let Some(message) = stream.next().await {
        match message {
            Ok(SimpleQueryMessage::RowDescription(cols)) => {
                if cols.first().is_some_and(|c| c.name() == DONE_MARKER) {
                    marker = Some((0, 0));
                }
            }
            Ok(SimpleQueryMessage::Row(row)) => {
                // Only the marker statement's own row (seen == 0).
                if let Some((ms, 0)) = marker.as_mut() {
                    *ms = row.get(0).and_then(|v| v.parse().ok()).unwrap_or(0);
                }
            }
            Ok(SimpleQueryMessage::CommandComplete(_)) => {
                completes += 1;
                if let Some((ms, seen)) = marker.as_mut() {
                    *seen += 1;
                    // The marker statement's own completion, then the
                    // tail's up to COMMIT's.
                    if *seen == Item::tail(s).1 {
                        let item = &items[done.len()];
                        reporter.report(item.event(*ms));
                        done.push(item.done(*ms));
                        marker = None;
                        completes = 0;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => return fail(done, e, completes),
        }
    }
    BatchOutcome {
        done,
        failure: None,
    }
}

/// Runs every item in order with as few messages as possible, under
/// `lock`. On a direct session the last message also releases the lock when
/// it is the end of the work (`release_at_end`), and `lock` is then marked released.
/// Returns what was done.
pub(crate) async fn run_items<R: Reporter + ?Sized>(
    lock: &mut Lock<'_>,
    t: &Tracking,
    s: SessionSettings,
    items: &[Item<'_>],
    max_bytes: usize,
    release_at_end: bool,
    reporter: &R,
) -> Result<Vec<AppliedMigration>> {
    // The work runs on the session that holds the lock.
    let client = lock.client();
    let mut done = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let end = next_run(items, start, max_bytes);
        if matches!(items[start].body, Body::NoTransaction { .. }) {
            let d = run_no_transaction(client, t, s, &items[start], reporter)
                .await
                .map_err(|e| e.with_applied(done.clone()))?;
            done.push(d);
            start = end;
            continue;
        }
        if matches!(items[start].body, Body::Copy { .. }) {
            let d = run_copy_item(client, t, s, &items[start], &done, reporter)
                .await
                .map_err(|e| e.with_applied(done.clone()))?;
            done.push(d);
            start = end;
            continue;
        }
        let trailer = batch_trailer(t, s, release_at_end && end == items.len());
        let outcome = run_batch(client, t, s, &items[start..end], &trailer, reporter).await;
        let committed = outcome.done.len();
        done.extend(outcome.done);
        let Some(mut failure) = outcome.failure else {
            if !trailer.is_empty() {
                lock.released_by_batch();
            }
            start = end;
            continue;
        };
        if failure.db.lost {
            let item = &items[start + committed];
            return Err(connection_lost(item, &failure.db, &done, None).with_applied(done));
        }
        rollback(client).await;
        if failure.claimed_elsewhere {
            // Another deploy applied it first: the caller re-reads and goes on.
            return Err(Error::new(
                Kind::ClaimedElsewhere,
                format!(
                    "migration {} was applied by a concurrent deploy",
                    items[start + failure.index].text.file
                ),
            )
            .with_applied(done));
        }
        let mut failed_at = start + failure.index;
        let first_uncommitted = start + committed;
        if failed_at > first_uncommitted {
            // A syntax error stops the whole message before anything runs, so
            // the items before the failing one never ran: send them again.
            let retry = run_batch(
                client,
                t,
                s,
                &items[first_uncommitted..failed_at],
                "",
                reporter,
            )
            .await;
            done.extend(retry.done);
            if let Some(f) = retry.failure {
                if f.db.lost {
                    let item =
                        &items[first_uncommitted + f.index.min(failed_at - first_uncommitted)];
                    return Err(connection_lost(item, &f.db, &done, None).with_applied(done));
                }
                rollback(client).await;
                failed_at = first_uncommitted + f.index;
                failure = f;
            }
        }
        let item = &items[failed_at];
        let located = failure.offset.map(|o| item.text.line_col(o));
        if item.work == Work::Up {
            record_failure(client, t, item, &failure.db.message, None).await;
        }
        reporter.report(Event::MigrationFailed {
            version: item.key.to_string(),
            name: item.name.to_string(),
            file: item.text.file.clone(),
            message: failure.db.message.clone(),
        });
        return Err(item_error(item, &failure.db, located, done.len(), None).with_applied(done));
    }
    Ok(done)
}
