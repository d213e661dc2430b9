//! `accept`: records that an applied migration's file was edited in a way
//! that changes no behaviour (a comment, whitespace), so that `status` shows
//! it as accepted rather than drifted and `deploy` goes on.
//!
//! The record lives in four columns of the tracking row itself
//! (`accepted_from`, `accepted_at`, `accepted_by`, `accepted_reason`), added
//! by the first `accept` only: the row's `checksum` becomes the accepted
//! file's, so every existing drift check (deploy's included) compares against
//! what was accepted, and a later edit is drift again. The fast-path read
//! picks the columns up with the rest of the row (it reads rows as JSON), so
//! no extra round trip and no side table to keep in step; re-applying the
//! migration (`redo`) replaces the row and with it the acceptance.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::{first_read, quote_literal, xact_lock_sql, FirstRead, SessionSettings, Tracking};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::report::{AcceptReport, AcceptedEdit};
use crate::source::{cmp_versions, Migration};

/// SQLSTATE of a lock wait that hit `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// What to accept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptOptions {
    /// The migration's version.
    pub version: Option<String>,
    /// Why the edit changes no behaviour; required.
    pub reason: Option<String>,
    /// Who accepts it, as the host knows them (the OS user); the database
    /// role is recorded beside it.
    pub by: Option<String>,
}

/// The one message that records the acceptance, under the migration lock
/// (transaction-scoped, so it works the same through a pooler). The update
/// only matches the row as it was read: a deploy in between makes it match
/// nothing.
fn accept_sql(
    t: &Tracking,
    lock_wait_ms: u64,
    version: &str,
    old: &str,
    new: &str,
    by: Option<&str>,
    reason: &str,
) -> String {
    let q = &t.qualified;
    let by = by.map_or("current_user".to_string(), |b| {
        format!("{} || ' (role ' || current_user || ')'", quote_literal(b))
    });
    format!(
        "BEGIN;\n{lock}\
         ALTER TABLE {q} ADD COLUMN IF NOT EXISTS accepted_from text, \
         ADD COLUMN IF NOT EXISTS accepted_at timestamptz, \
         ADD COLUMN IF NOT EXISTS accepted_by text, \
         ADD COLUMN IF NOT EXISTS accepted_reason text;\n\
         UPDATE {q} SET accepted_from = coalesce(accepted_from, checksum), checksum = {new}, \
         accepted_at = clock_timestamp(), accepted_by = {by}, accepted_reason = {reason} \
         WHERE version = {version} AND status = 'completed' AND checksum = {old} \
         RETURNING accepted_from AS tidemark_accepted, to_jsonb(accepted_at) #>> '{{}}', accepted_by;\n\
         COMMIT;\n",
        lock = xact_lock_sql(t, SessionSettings::waiting(lock_wait_ms)),
        new = quote_literal(new),
        old = quote_literal(old),
        version = quote_literal(version),
        reason = quote_literal(reason),
    )
}

/// Accepts the edit of applied migration `options.version`.
pub(crate) async fn accept(
    client: &Client,
    t: &Tracking,
    migrations: &[Migration],
    options: &AcceptOptions,
    lock_wait_ms: u64,
) -> Result<AcceptReport> {
    let version = options
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::new(
                Kind::InvalidOption,
                "accept needs the version of the applied migration whose edit to accept",
            )
        })?;
    let reason = options
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            Error::new(
                Kind::InvalidOption,
                format!("accepting the edit of {version} needs a reason (why it changes no behaviour), which is recorded with it"),
            )
        })?;
    let m = migrations
        .iter()
        .find(|m| cmp_versions(&m.version, version).is_eq())
        .ok_or_else(|| {
            Error::new(
                Kind::UnknownVersion,
                format!("no migration file has the version {version}; an edit can only be accepted for a file in the migrations folder"),
            )
            .with_version(version)
        })?;
    let rows = match first_read(client, t, "").await?.0 {
        FirstRead::Rows(rows) => rows,
        FirstRead::NoTable => Vec::new(),
        FirstRead::Foreign => {
            return Err(Error::new(
                Kind::TrackingTableIncompatible,
                format!(
                    "the tracking table {} is not tidemark's, so nothing can be accepted in it",
                    t.display()
                ),
            ))
        }
    };
    let row = rows
        .iter()
        .find(|r| r.completed && cmp_versions(&r.version, version).is_eq());
    let nothing = |why: String| {
        Error::new(Kind::NothingToAccept, why)
            .at(m.file(), None, None)
            .with_version(&m.version)
    };
    let Some(row) = row else {
        return Err(nothing(format!(
            "{} is not applied, so there is no edit to accept: a pending migration runs as the file is now",
            m.file()
        )));
    };
    let Some(old) = row.checksum.as_deref() else {
        return Err(nothing(format!(
            "{} was applied without a checksum, so no edit can be detected or accepted",
            m.file()
        )));
    };
    if old == m.checksum {
        return Err(nothing(format!(
            "{} has not changed since it was applied{}; there is nothing to accept",
            m.file(),
            if row.accepted.is_some() {
                " (or since its edit was accepted)"
            } else {
                ""
            }
        )));
    }
    let sql = accept_sql(
        t,
        lock_wait_ms,
        &m.version,
        old,
        &m.checksum,
        options.by.as_deref(),
        reason,
    );
    let messages = match client.simple_query(&sql).await {
        Ok(messages) => messages,
        Err(e) => {
            let _ = client.simple_query("ROLLBACK").await;
            let db = DbDetails::from_error(&e);
            if db.sql_state.as_deref() == Some(LOCK_NOT_AVAILABLE) {
                return Err(Error::new(
                    Kind::LockTimeout,
                    format!(
                        "could not take the migration lock on {} within {lock_wait_ms} ms: another run holds it; nothing was accepted",
                        t.display()
                    ),
                )
                .with_db(&db));
            }
            return Err(Error::database(
                &format!("could not record the accepted edit of {}", m.file()),
                &e,
            ));
        }
    };
    let recorded = messages.iter().find_map(|msg| match msg {
        SimpleQueryMessage::Row(r)
            if r.columns()
                .first()
                .is_some_and(|c| c.name() == "tidemark_accepted") =>
        {
            Some((
                r.get(0).unwrap_or(old).to_string(),
                r.get(1).map(str::to_string),
                r.get(2).map(str::to_string),
            ))
        }
        _ => None,
    });
    let Some((from, at, by)) = recorded else {
        return Err(Error::new(
            Kind::Database,
            format!(
                "the tracking row of {} changed while accepting (another run re-applied or reverted it); nothing was accepted, run again",
                m.file()
            ),
        ));
    };
    Ok(AcceptReport {
        accepted: AcceptedEdit {
            version: m.version.clone(),
            name: m.name.clone(),
            file: m.file().to_string(),
            applied_checksum: from,
            accepted_checksum: m.checksum.clone(),
            accepted_at: at,
            accepted_by: by,
            reason: reason.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_matches_only_the_row_as_read_under_the_lock() {
        let t = Tracking::new("public", "schema_migrations", "schema_seeds");
        let sql = accept_sql(
            &t,
            1000,
            "003",
            "aaa",
            "bbb",
            Some("o'neil"),
            "comment only",
        );
        assert!(sql.contains(&format!("pg_advisory_xact_lock({})", t.lock_key)));
        assert!(sql.contains("WHERE version = '003' AND status = 'completed' AND checksum = 'aaa'"));
        assert!(sql.contains("'o''neil' || ' (role ' || current_user || ')'"));
        assert!(sql.starts_with("BEGIN;") && sql.ends_with("COMMIT;\n"));
    }
}
