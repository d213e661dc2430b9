//! The tracking-table reads: the fast path's read without the lock, the
//! locked reads that create or upgrade the tables (and hand back the
//! [`Lock`]), and the read-only explanation of another tool's table.

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::outcome::rollback;
use super::sql::{explain_shape_sql, lock_and_read_seeds_sql};
use super::{
    lock_and_read_sql, select_rows_sql, Lock, SessionSettings, Tracking, INCOMPATIBLE_SHAPE,
    LOCK_NOT_AVAILABLE, UNDEFINED_TABLE,
};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::plan::{AcceptedRow, AppliedRow};
use crate::report::{Event, Reporter};

/// What the first read found.
#[derive(Debug)]
pub(crate) enum FirstRead {
    /// The tracking table does not exist: nothing is applied.
    NoTable,
    Rows(Vec<AppliedRow>),
    /// Rows of a shape tidemark does not know; the locked path decides.
    Foreign,
}

/// One row of [`select_rows_sql`]. `None` for rows of another tool's shape.
pub(crate) fn parse_row(r: &tokio_postgres::SimpleQueryRow) -> Option<AppliedRow> {
    let text = |i: usize| r.try_get(i).ok().flatten().map(str::to_string);
    if text(1).as_deref() != Some("string") || text(2).as_deref() != Some("f") {
        return None;
    }
    Some(AppliedRow {
        version: text(0)?,
        name: text(3),
        checksum: text(4),
        applied_at: text(5),
        duration_ms: text(6).and_then(|v| v.parse().ok()),
        completed: text(7).is_none_or(|s| s == "completed"),
        error_message: text(8),
        statements_done: text(9).and_then(|v| v.parse().ok()),
        statements_checksum: text(10),
        accepted: text(11).map(|from| AcceptedRow {
            from,
            at: text(12),
            by: text(13),
            reason: text(14),
        }),
    })
}

/// The fast-path read: one message, no lock, no write. `before` runs first
/// in the same message (adoption's probe for other tools' tables); its rows
/// come back beside the result, also when the tracking table is missing.
pub(crate) async fn first_read(
    client: &Client,
    t: &Tracking,
    before: &str,
) -> Result<(FirstRead, Vec<tokio_postgres::SimpleQueryRow>)> {
    let sql = format!("{before}{}", select_rows_sql(&t.qualified));
    let mut other = Vec::new();
    let mut rows = Vec::new();
    let mut foreign = false;
    let mut failure = None;
    match client.simple_query_raw(&sql).await {
        Err(e) => failure = Some(e),
        Ok(stream) => {
            pin_mut!(stream);
            while let Some(m) = stream.next().await {
                match m {
                    Ok(SimpleQueryMessage::Row(r)) => {
                        if r.columns().first().map(|c| c.name()) != Some("tidemark_row") {
                            other.push(r);
                        } else if let Some(row) = parse_row(&r) {
                            rows.push(row);
                        } else {
                            foreign = true;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
    }
    let first = match failure {
        Some(e) if DbDetails::from_error(&e).sql_state.as_deref() == Some(UNDEFINED_TABLE) => {
            FirstRead::NoTable
        }
        Some(e) => {
            return Err(Error::database(
                &format!("could not read the tracking table {}", t.display()),
                &e,
            ))
        }
        None if foreign => FirstRead::Foreign,
        None => FirstRead::Rows(rows),
    };
    Ok((first, other))
}

pub(crate) fn describe_foreign_shape(t: &Tracking, detail: &str) -> Error {
    let (cols, vtype) = detail.split_once(" / version ").unwrap_or((detail, "?"));
    let cols_list: Vec<&str> = cols.split(", ").collect();
    let (looks_like, adopt) = if cols_list.contains(&"dirty") {
        (" (golang-migrate's shape)", " (when it holds golang-migrate's history, `tidemark adopt` takes it over instead, converting the table in place)")
    } else if cols_list == ["version"] {
        (" (dbmate's shape)", " (when it holds dbmate's history, `tidemark adopt` takes it over instead, converting the table in place)")
    } else {
        ("", "")
    };
    // The host appends how to name another table, in its caller's words.
    Error::new(
        Kind::TrackingTableIncompatible,
        format!(
            "the tracking table {} already exists with columns ({cols}; version is {vtype}){looks_like}, which tidemark cannot use{adopt}; tidemark leaves another tool's table alone, so keep tidemark's history in another table",
            t.display()
        ),
    )
}

/// The locked read: takes the advisory lock (waiting up to the wait
/// timeout), applies session settings, creates or upgrades the tracking
/// table and re-reads it, all in one message.
pub(crate) async fn lock_and_read<'c, R: Reporter + ?Sized>(
    client: &'c Client,
    t: &Tracking,
    s: SessionSettings,
    reporter: &R,
) -> Result<(Lock<'c>, Vec<AppliedRow>)> {
    let sql = lock_and_read_sql(t, s);
    let messages = match client.simple_query(&sql).await {
        Ok(m) => m,
        Err(e) => {
            abort_if_pooled(client, s).await;
            let db = DbDetails::from_error(&e);
            return Err(match db.sql_state.as_deref() {
                Some(LOCK_NOT_AVAILABLE) => lock_timeout_error(client, t, s).await,
                Some(INCOMPATIBLE_SHAPE) => {
                    describe_foreign_shape(t, db.detail.as_deref().unwrap_or(""))
                }
                _ => Error::database(
                    &format!("could not lock and read the tracking table {}", t.display()),
                    &e,
                ),
            });
        }
    };
    reporter.report(Event::LockAcquired);
    let lock = Lock::taken(client, t, s);
    let mut rows = Vec::new();
    for m in messages {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        match r.columns().first().map(|c| c.name()) {
            Some("tidemark_shape") => match r.get(0) {
                Some("created") => {
                    reporter.report(Event::TrackingTableCreated { table: t.display() })
                }
                Some("upgraded") => {
                    reporter.report(Event::TrackingTableUpgraded { table: t.display() })
                }
                _ => {}
            },
            Some("tidemark_row") => {
                if let Some(row) = parse_row(&r) {
                    rows.push(row);
                }
            }
            _ => {}
        }
    }
    Ok((lock, rows))
}

/// Takes the lock and makes sure the seeds table exists, then reads it.
pub(crate) async fn lock_and_read_seeds<'c, R: Reporter + ?Sized>(
    client: &'c Client,
    t: &Tracking,
    s: SessionSettings,
    reporter: &R,
) -> Result<(Lock<'c>, Vec<(String, String)>)> {
    let sql = lock_and_read_seeds_sql(t, s);
    let messages = match client.simple_query(&sql).await {
        Ok(m) => m,
        Err(e) => {
            abort_if_pooled(client, s).await;
            return Err(match DbDetails::from_error(&e).sql_state.as_deref() {
                Some(LOCK_NOT_AVAILABLE) => lock_timeout_error(client, t, s).await,
                _ => Error::database("could not lock and read the seeds table", &e),
            });
        }
    };
    reporter.report(Event::LockAcquired);
    let lock = Lock::taken(client, t, s);
    let seeds = messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r)
                if r.columns()
                    .first()
                    .is_some_and(|c| c.name() == "tidemark_seed") =>
            {
                Some((
                    r.try_get(0).ok()??.to_string(),
                    r.try_get(1).ok()??.to_string(),
                ))
            }
            _ => None,
        })
        .collect();
    Ok((lock, seeds))
}

/// After a failed message in pool-safe mode the session sits in an aborted
/// transaction, holding a pooled server: end it.
async fn abort_if_pooled(client: &Client, s: SessionSettings) {
    if s.pool_safe {
        rollback(client).await;
    }
}

pub(crate) async fn lock_timeout_error(client: &Client, t: &Tracking, s: SessionSettings) -> Error {
    let sql = format!(
        "SELECT a.pid::text, coalesce(a.application_name, ''), coalesce(a.state, ''), \
         coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::bigint, 0)::text, \
         coalesce(left(a.query, 120), '') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE {} AND l.granted LIMIT 1",
        crate::unlock::lock_filter(t)
    );
    let sql = if s.pool_safe {
        sql
    } else {
        format!("RESET lock_timeout;\nRESET statement_timeout;\n{sql}")
    };
    let holder = match client.simple_query(&sql).await {
        Ok(messages) => messages.into_iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(format!(
                "it is held by pid {} (application_name '{}', state '{}', for {} s, last query: {}); if that deploy is stuck, end it with SELECT pg_terminate_backend({})",
                r.get(0).unwrap_or("?"),
                r.get(1).unwrap_or(""),
                r.get(2).unwrap_or(""),
                r.get(3).unwrap_or("?"),
                r.get(4).unwrap_or("").replace('\n', " "),
                r.get(0).unwrap_or("?"),
            )),
            _ => None,
        }),
        Err(_) => None,
    };
    Error::new(
        Kind::LockTimeout,
        format!(
            "could not take the migration lock on {} within {} ms: {}; or wait longer with --lock-wait-timeout",
            t.display(),
            s.lock_wait_timeout_ms,
            holder.unwrap_or_else(|| "its holder has just released it or is not visible to this user".into())
        ),
    )
    .with_db(&DbDetails {
        sql_state: Some(LOCK_NOT_AVAILABLE.into()),
        ..DbDetails::default()
    })
}

/// Explains a tracking table [`first_read`] found foreign (another tool's
/// rows), read-only: no lock, no DDL, so that `status` and `plan` can say
/// what the table is while a deploy runs. The error is the one the locked
/// read's shape check gives.
pub(crate) async fn explain_foreign(client: &Client, t: &Tracking) -> Error {
    let rows = match client.simple_query(&explain_shape_sql(t)).await {
        Ok(m) => m,
        Err(e) => {
            return Error::database(
                &format!("could not read the columns of {}", t.display()),
                &e,
            )
        }
    };
    let shape = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some((r.get(0).unwrap_or(""), r.get(1) == Some("true"))),
        _ => None,
    });
    match shape {
        Some((detail, true)) => describe_foreign_shape(t, detail),
        // Columns tidemark knows, with rows it cannot read (a NULL version).
        _ => Error::new(
            Kind::TrackingTableIncompatible,
            format!(
                "the tracking table {} has rows tidemark cannot read (a version that is not text); tidemark leaves another tool's table alone: choose another table with --table",
                t.display()
            ),
        ),
    }
}

/// Records a script seed the host ran (see [`super::record_script_seed_sql`]),
/// on the session that holds the lock.
pub(crate) async fn record_script_seed(
    lock: &Lock<'_>,
    t: &Tracking,
    s: SessionSettings,
    name: &str,
    checksum: &str,
    duration_ms: u64,
) -> Result<()> {
    let sql = super::sql::record_script_seed_sql(t, s, name, checksum, duration_ms);
    if let Err(e) = lock.client().simple_query(&sql).await {
        rollback(lock.client()).await;
        return Err(Error::database(
            &format!(
                "the script seed {name} ran to its end, but it could not be recorded, so the next \
                 seed run runs it again"
            ),
            &e,
        ));
    }
    Ok(())
}
