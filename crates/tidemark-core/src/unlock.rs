//! `unlock`: who holds tidemark's migration lock in this database, and, when
//! asked, ending that session. Reads `pg_locks` and `pg_stat_activity`; never
//! takes the lock itself.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::Tracking;
use crate::error::{DbDetails, Error, Kind, Result};
use crate::report::{LockHolder, UnlockReport};

/// SQLSTATE of a privilege the role lacks.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// What `unlock` should do beyond reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnlockOptions {
    /// End the holder's session (`pg_terminate_backend`).
    pub terminate: bool,
    /// With `terminate`: end the session only if this pid still holds the
    /// lock (the one the user confirmed), never another one.
    pub pid: Option<u32>,
}

/// `pg_locks` rows of tidemark's advisory lock for this tracking table in
/// the current database (also used to name the holder when a deploy's
/// wait times out). Advisory locks taken with one `bigint` key show as
/// classid = high 32 bits, objid = low 32 bits, objsubid = 1.
pub(crate) fn lock_filter(t: &Tracking) -> String {
    let classid = (t.lock_key >> 32) as u32;
    let objid = t.lock_key as u32;
    format!(
        "l.locktype = 'advisory' AND l.classid = {classid} AND l.objid = {objid} AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
}

/// One message: the holder (if any) and how many sessions wait.
fn holder_sql(t: &Tracking) -> String {
    let filter = lock_filter(t);
    format!(
        "SELECT l.pid::text AS tidemark_holder, coalesce(a.application_name, ''), \
         coalesce(a.usename::text, ''), host(a.client_addr), to_jsonb(a.backend_start) #>> '{{}}', \
         coalesce(greatest(0, extract(epoch FROM now() - a.backend_start))::bigint, 0)::text, \
         to_jsonb(a.query_start) #>> '{{}}', coalesce(a.state, ''), left(coalesce(a.query, ''), 500) \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE {filter} AND l.granted LIMIT 1;\n\
         SELECT count(*)::text AS tidemark_waiting FROM pg_locks l WHERE {filter} AND NOT l.granted;\n"
    )
}

fn parse_holder(r: &tokio_postgres::SimpleQueryRow) -> Option<LockHolder> {
    let text = |i: usize| r.try_get(i).ok().flatten().map(str::to_string);
    Some(LockHolder {
        pid: text(0)?.parse().ok()?,
        application_name: text(1).unwrap_or_default(),
        user: text(2).unwrap_or_default(),
        client_addr: text(3),
        since: text(4),
        seconds: text(5).and_then(|v| v.parse().ok()).unwrap_or(0),
        query_start: text(6),
        state: text(7).unwrap_or_default(),
        query: text(8).unwrap_or_default(),
    })
}

async fn read_holder(client: &Client, t: &Tracking) -> Result<(Option<LockHolder>, usize)> {
    let messages = client.simple_query(&holder_sql(t)).await.map_err(|e| {
        Error::database(
            &format!(
                "could not read who holds the migration lock of {}",
                t.display()
            ),
            &e,
        )
    })?;
    let mut holder = None;
    let mut waiting = 0;
    for m in messages {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        match r.columns().first().map(|c| c.name()) {
            Some("tidemark_holder") => holder = parse_holder(&r),
            Some("tidemark_waiting") => {
                waiting = r.get(0).and_then(|v| v.parse().ok()).unwrap_or(0);
            }
            _ => {}
        }
    }
    Ok((holder, waiting))
}

/// Ends `pid` only while it still holds this table's lock in this database
/// (so it is a tidemark session of this database and tracking table), then
/// waits up to 5 s on the server for the lock to be released.
fn terminate_sql(t: &Tracking, pid: u32) -> String {
    let filter = lock_filter(t);
    format!(
        "SELECT pg_terminate_backend(l.pid)::text AS tidemark_terminated FROM pg_locks l \
         WHERE {filter} AND l.granted AND l.pid = {pid} AND l.pid <> pg_backend_pid();\n\
         DO $tidemark$ BEGIN FOR i IN 1..100 LOOP \
         EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_locks l WHERE {filter} AND l.granted AND l.pid = {pid}); \
         PERFORM pg_sleep(0.05); END LOOP; END $tidemark$;\n"
    )
}

/// Reports who holds the migration lock of `t` in the connected database;
/// with `terminate`, ends that session.
pub(crate) async fn unlock(
    client: &Client,
    t: &Tracking,
    options: UnlockOptions,
) -> Result<UnlockReport> {
    let (holder, waiting) = read_holder(client, t).await?;
    let mut report = UnlockReport {
        table: t.display(),
        lock_key: t.lock_key.to_string(),
        holder,
        waiting,
        terminated: false,
    };
    if !options.terminate {
        return Ok(report);
    }
    let Some(found) = report.holder.as_ref().map(|h| h.pid) else {
        if let Some(pid) = options.pid {
            return Err(Error::new(
                Kind::UnlockRefused,
                format!(
                    "pid {pid} no longer holds the migration lock of {} (no one does now), so nothing was ended",
                    t.display()
                ),
            ));
        }
        return Ok(report);
    };
    if let Some(pid) = options.pid.filter(|p| *p != found) {
        return Err(Error::new(
            Kind::UnlockRefused,
            format!(
                "pid {pid} no longer holds the migration lock of {}: pid {found} holds it now, so nothing was ended; look again before ending a session",
                t.display()
            ),
        ));
    }
    let ended = match client.simple_query(&terminate_sql(t, found)).await {
        Ok(messages) => messages.iter().any(|m| {
            matches!(m, SimpleQueryMessage::Row(r)
                if r.columns().first().is_some_and(|c| c.name() == "tidemark_terminated")
                    && r.get(0) == Some("true"))
        }),
        Err(e) => {
            let db = DbDetails::from_error(&e);
            if db.sql_state.as_deref() == Some(INSUFFICIENT_PRIVILEGE) {
                return Err(Error::new(
                    Kind::UnlockRefused,
                    format!(
                        "the role may not end pid {found} ({}); a session can be ended by its own role, a superuser, or a member of pg_signal_backend",
                        db.message
                    ),
                )
                .with_db(&db));
            }
            return Err(Error::database(&format!("could not end pid {found}"), &e));
        }
    };
    if !ended {
        return Err(Error::new(
            Kind::UnlockRefused,
            format!(
                "pid {found} was not ended: it no longer holds the migration lock of {}, or it is this session",
                t.display()
            ),
        ));
    }
    let (after, waiting) = read_holder(client, t).await?;
    report.terminated = true;
    report.waiting = waiting;
    if let Some(h) = after.filter(|h| h.pid == found) {
        return Err(Error::new(
            Kind::UnlockRefused,
            format!(
                "pid {} was signalled to end but still holds the migration lock of {} after 5 s; look again before ending it",
                h.pid,
                t.display()
            ),
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_names_the_key_halves_and_this_database() {
        let t = Tracking::new("public", "schema_migrations", "schema_seeds");
        let f = lock_filter(&t);
        assert!(f.contains(&format!("l.classid = {}", (t.lock_key >> 32) as u32)));
        assert!(f.contains(&format!("l.objid = {}", t.lock_key as u32)));
        assert!(f.contains("current_database()"));
        // Never the session that asks.
        assert!(terminate_sql(&t, 42).contains("l.pid <> pg_backend_pid()"));
    }
}
