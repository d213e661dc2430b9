//! Items that cannot go in a batch: a `-- tidemark:no-transaction`
//! migration, statement by statement with its progress recorded so that a
//! failed run resumes; and a file with `COPY ... FROM stdin` data, whose rows
//! go through the COPY protocol inside the item's transaction.

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::outcome::{connection_lost, item_error, record_failure, rollback};
use super::sql::{
    byte_at, locate_in_statements, prefix_checksum, statements_message, CHECK_CLIENT, DONE_MARKER,
    START_CLOCK,
};
use super::{quote_literal, Item, SessionSettings, Tracking, Work};
use crate::check::{Body, Step};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::lexer::{index_statement, IndexStatement};
use crate::report::{AppliedMigration, Event, Reporter};

/// Runs an item whose SQL carries `COPY ... FROM stdin` data (a pg_dump
/// file): inside one transaction as usual, but in several messages, each
/// COPY with its data through the COPY protocol.
pub(super) async fn run_copy_item<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    s: SessionSettings,
    item: &Item<'_>,
    committed: &[AppliedMigration],
    reporter: &R,
) -> Result<AppliedMigration> {
    let Body::Copy { steps, .. } = &item.body else {
        return Err(Error::new(Kind::Database, "internal: not a COPY item"));
    };
    let outcome = async {
        let (prologue, _) = item.prologue(t, s);
        client
            .simple_query(&prologue)
            .await
            .map_err(|e| (e, None))?;
        for step in steps {
            match step {
                Step::Sql(statements) => run_statements(client, statements).await?,
                Step::Rows { offset, inserts } => {
                    for sql in inserts {
                        client
                            .simple_query(sql)
                            .await
                            .map_err(|e| (e, Some(*offset)))?;
                    }
                }
            }
        }
        let finish = format!("{}{}", item.finish_sql(t, s), Item::tail(s).0);
        let messages = client.simple_query(&finish).await.map_err(|e| (e, None))?;
        Ok::<_, (tokio_postgres::Error, Option<usize>)>(
            messages
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(r)
                        if r.columns().first().is_some_and(|c| c.name() == DONE_MARKER) =>
                    {
                        r.get(0).and_then(|v| v.parse().ok())
                    }
                    _ => None,
                })
                .unwrap_or(0),
        )
    }
    .await;
    match outcome {
        Ok(ms) => {
            reporter.report(item.event(ms));
            Ok(item.done(ms))
        }
        Err((e, offset)) => {
            let db = DbDetails::from_error(&e);
            if db.lost {
                return Err(connection_lost(item, &db, committed, None));
            }
            rollback(client).await;
            if item.work == Work::Up {
                record_failure(client, t, item, &db.message, None).await;
            }
            reporter.report(Event::MigrationFailed {
                version: item.key.to_string(),
                name: item.name.to_string(),
                file: item.text.file.clone(),
                message: db.message.clone(),
            });
            let located = offset.map(|o| item.text.line_col(o));
            Err(item_error(item, &db, located, committed.len(), None))
        }
    }
}

/// Sends `statements` as one simple query; an error carries the offset (in
/// the file text) of the statement it points at.
async fn run_statements(
    client: &Client,
    statements: &[(usize, &str)],
) -> std::result::Result<(), (tokio_postgres::Error, Option<usize>)> {
    let (sql, starts) = statements_message(statements);
    let locate = |e: tokio_postgres::Error, completes: usize| {
        let position = DbDetails::from_error(&e).position;
        let offset = locate_in_statements(&sql, &starts, position, completes);
        (e, offset)
    };
    let mut completes = 0usize;
    let stream = client
        .simple_query_raw(&sql)
        .await
        .map_err(|e| locate(e, 0))?;
    pin_mut!(stream);
    while let Some(message) = stream.next().await {
        match message {
            Ok(SimpleQueryMessage::CommandComplete(_)) => completes += 1,
            Ok(_) => {}
            Err(e) => return Err(locate(e, completes)),
        }
    }
    Ok(())
}

/// The first column of the first row.
fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

/// Whether the index `name` on `table` (as written in the statement) exists
/// and is valid, with its schema-qualified name. `None` when it does not
/// exist.
async fn index_state(
    client: &Client,
    name: &str,
    table: &str,
) -> std::result::Result<Option<(bool, String)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT i.indisvalid::text, format('%I.%I', n.nspname, c.relname) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname = {} AND c.relnamespace = \
         (SELECT relnamespace FROM pg_class WHERE oid = to_regclass({}))",
        quote_literal(name),
        quote_literal(table)
    );
    let rows = client.simple_query(&sql).await?;
    Ok(rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some((r.get(0) == Some("true"), r.get(1)?.to_string())),
        _ => None,
    }))
}

async fn drop_invalid(
    client: &Client,
    qualified: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    client
        .simple_query(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
        .await
        .map(|_| ())
}

/// Runs a `-- tidemark:no-transaction` item: each statement in a message of
/// its own (a multi-statement message would be one implicit transaction),
/// recording progress so that a failed run resumes where it stopped.
pub(super) async fn run_no_transaction<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    s: SessionSettings,
    item: &Item<'_>,
    reporter: &R,
) -> Result<AppliedMigration> {
    let Body::NoTransaction { statements } = &item.body else {
        return Err(Error::new(
            Kind::Database,
            "internal: not a no-transaction item",
        ));
    };
    let total = statements.len();
    let db_err = |e: &tokio_postgres::Error| {
        Error::database(&format!("while running {}", item.text.file), e)
    };
    let mut skip = 0;
    if item.work == Work::Up {
        if let Some(prev) = item.previous.filter(|p| !p.completed) {
            let n = prev.statements_done.unwrap_or(0);
            if n > 0 {
                if n <= total
                    && prev.statements_checksum.as_deref()
                        == Some(prefix_checksum(statements, n).as_str())
                {
                    skip = n;
                    reporter.report(Event::MigrationResumed {
                        version: item.key.to_string(),
                        name: item.name.to_string(),
                        skipped_statements: n,
                    });
                } else {
                    return Err(Error::new(
                        Kind::ResumeRefused,
                        format!(
                            "{} ran without a transaction and failed after {n} of its statements had completed, and those statements have changed since; restore them so the run can resume after them, or undo their effect by hand and delete its failed row (DELETE FROM {} WHERE version = '{}')",
                            item.text.file,
                            t.display(),
                            item.key
                        ),
                    )
                    .at(&item.text.file, None, None)
                    .with_version(item.key));
                }
            }
        }
        // The row exists from the start, marked failed, so a killed run
        // leaves the progress behind.
        record_failure(
            client,
            t,
            item,
            "started without a transaction and did not finish",
            Some((skip, &prefix_checksum(statements, skip))),
        )
        .await;
    }
    let resuming = item.work == Work::Up && item.previous.is_some_and(|p| !p.completed);
    let lost = |e: &tokio_postgres::Error, k: usize| {
        let db = DbDetails::from_error(e);
        if db.lost {
            connection_lost(item, &db, &[], Some((k, total)))
        } else {
            db_err(e)
        }
    };
    for (k, (offset, code)) in statements.iter().enumerate().skip(skip) {
        let index = index_statement(code);
        // The statement the last run was in when it stopped may have left
        // its work behind: a CONCURRENTLY build that committed (valid), or
        // one that was cut off (INVALID), or a drop that finished.
        let mut done_before = false;
        if resuming && k == skip {
            match &index {
                Some(IndexStatement::Create { name, table }) => {
                    match index_state(client, name, table)
                        .await
                        .map_err(|e| lost(&e, k))?
                    {
                        Some((true, _)) => done_before = true,
                        Some((false, qualified)) => {
                            drop_invalid(client, &qualified)
                                .await
                                .map_err(|e| lost(&e, k))?;
                            reporter.report(Event::Warning {
                                code: "W_INVALID_INDEX_REBUILT".into(),
                                message: format!(
                                    "{}: the index {qualified} was left INVALID by the interrupted run; dropped it and building it again",
                                    item.text.file
                                ),
                                file: Some(item.text.file.clone()),
                            });
                        }
                        None => {}
                    }
                }
                Some(IndexStatement::Drop { index }) => {
                    let sql = format!("SELECT to_regclass({}) IS NULL", quote_literal(index));
                    let gone = client.simple_query(&sql).await.map_err(|e| lost(&e, k))?;
                    done_before = first_value(&gone).as_deref() == Some("t");
                }
                None => {}
            }
        }
        let mut result = if done_before {
            Ok(Vec::new())
        } else {
            client.simple_query(code).await
        };
        // A CONCURRENTLY build can also end without an error and leave an
        // INVALID index (IF NOT EXISTS finding an invalid one): never count
        // that as done. Drop it and build once more.
        if result.is_ok() {
            if let Some(IndexStatement::Create { name, table }) = &index {
                for attempt in 0..2 {
                    match index_state(client, name, table)
                        .await
                        .map_err(|e| lost(&e, k))?
                    {
                        Some((false, qualified)) if attempt == 0 => {
                            drop_invalid(client, &qualified)
                                .await
                                .map_err(|e| lost(&e, k))?;
                            result = client.simple_query(code).await;
                            if result.is_err() {
                                break;
                            }
                        }
                        Some((false, qualified)) => {
                            return Err(Error::new(
                                Kind::MigrationFailed,
                                format!(
                                    "{}: the index {qualified} is INVALID after CREATE INDEX CONCURRENTLY finished twice (a uniqueness violation or a cancelled build leaves it so); it was left in place for you to inspect, the migration is not marked applied. Drop it with DROP INDEX CONCURRENTLY {qualified}, fix the cause, and run again",
                                    item.text.file
                                ),
                            )
                            .at(&item.text.file, Some(item.text.line_col(*offset).0), None)
                            .with_version(item.key));
                        }
                        _ => break,
                    }
                }
            }
        }
        if let Err(e) = result {
            let db = DbDetails::from_error(&e);
            if db.lost {
                return Err(connection_lost(item, &db, &[], Some((k, total))));
            }
            let located = match db.position {
                // The position counts characters of this statement alone.
                Some(p) => {
                    let inner = byte_at(code, p).unwrap_or(0);
                    Some(item.text.line_col(offset + inner))
                }
                None => Some(item.text.line_col(*offset)),
            };
            if item.work == Work::Up {
                record_failure(
                    client,
                    t,
                    item,
                    &db.message,
                    Some((k, &prefix_checksum(statements, k))),
                )
                .await;
            }
            reporter.report(Event::MigrationFailed {
                version: item.key.to_string(),
                name: item.name.to_string(),
                file: item.text.file.clone(),
                message: db.message.clone(),
            });
            let progress = (item.work == Work::Up).then_some((k, total));
            return Err(item_error(item, &db, located, 0, progress));
        }
        if item.work == Work::Up {
            let sql = format!(
                "UPDATE {} SET statements_done = {}, statements_checksum = {} WHERE version = {}",
                t.qualified,
                k + 1,
                quote_literal(&prefix_checksum(statements, k + 1)),
                quote_literal(item.key)
            );
            client
                .simple_query(&sql)
                .await
                .map_err(|e| lost(&e, k + 1))?;
        }
        reporter.report(Event::StatementApplied {
            version: item.key.to_string(),
            index: k + 1,
            total,
        });
    }
    let finish = match item.work {
        Work::Up => format!(
            "UPDATE {q} SET status = 'completed', error_message = NULL, statements_done = NULL, \
             statements_checksum = NULL, \
             duration_ms = (round(extract(epoch FROM clock_timestamp() - applied_at) * 1000))::integer, \
             applied_at = clock_timestamp() WHERE version = {key} RETURNING duration_ms;\n\
             RESET ALL;\n{CHECK_CLIENT}",
            q = t.qualified,
            key = quote_literal(item.key)
        ),
        _ => format!(
            "BEGIN;\n{START_CLOCK}{}{}",
            item.finish_sql(t, s),
            Item::tail(s).0
        ),
    };
    let messages = client.simple_query(&finish).await.map_err(|e| {
        let db = DbDetails::from_error(&e);
        if db.lost {
            connection_lost(item, &db, &[], None)
        } else {
            db_err(&e)
        }
    })?;
    let ms = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
        .unwrap_or(0);
    reporter.report(item.event(ms));
    Ok(item.done(ms))
}
