//! Everything that talks to the `Client` (style rule 1: act in one place).
//!
//! Round trips are what a remote database multiplies, so the work is shaped
//! into few simple-query messages: one read for the fast path; one message
//! that takes the lock, creates or upgrades the tracking table and re-reads
//! it; one message that applies every pending transactional migration, each
//! between its own `BEGIN` and `COMMIT` with its tracking row inside.
//! Simple-query messages cannot carry bind parameters, so every value is
//! written with [`quote_literal`] and every name with [`quote_ident`].

use futures_util::{pin_mut, StreamExt};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::check::{Body, Step};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::lexer::{index_statement, IndexStatement};
use crate::plan::{AcceptedRow, AppliedRow};
use crate::report::{AppliedMigration, Event, Reporter};
use crate::source::{hex, SqlText};

/// SQLSTATE of an undefined table: the tracking table does not exist yet.
const UNDEFINED_TABLE: &str = "42P01";
/// SQLSTATE of a lock wait that hit `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE the shape check raises for a tracking table of another tool.
pub(crate) const INCOMPATIBLE_SHAPE: &str = "TMK01";

/// Quotes an identifier: `"name"`, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal so that it reads the same whatever
/// `standard_conforming_strings` is: backslashes force the `E''` form.
pub fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if quoted.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// Starts an item's clock on the server. `now()` cannot serve: within one
/// simple-query message every transaction's `now()` is the message's start.
const START_CLOCK: &str = "SELECT set_config('tidemark.started', clock_timestamp()::text, true);\n";

/// Milliseconds since [`START_CLOCK`] ran in this transaction, measured by
/// the server.
const TX_DURATION_MS: &str = "(round(extract(epoch FROM clock_timestamp() - \
     current_setting('tidemark.started')::timestamptz) * 1000))::integer";

/// A killed deploy must not keep migrating: the server checks for the
/// vanished client every 100 ms while a statement runs (PostgreSQL 14+).
/// Set again after each item's `RESET ALL`.
const CHECK_CLIENT: &str = "SELECT set_config('client_connection_check_interval', '100', false) \
     WHERE current_setting('server_version_num')::int >= 140000;\n";

/// SQLSTATE of a unique violation: in pool-safe mode, another deploy
/// claimed the migration first.
const UNIQUE_VIOLATION: &str = "23505";

/// Column name that marks tidemark's own result row at the end of an item.
const DONE_MARKER: &str = "tidemark_done";

/// The tracking tables and the lock that guards them.
#[derive(Debug, Clone)]
pub(crate) struct Tracking {
    pub schema: String,
    pub table: String,
    /// `"schema"."table"`
    pub qualified: String,
    /// `"schema"."seeds_table"`
    pub seeds_qualified: String,
    pub lock_key: i64,
}

impl Tracking {
    pub fn new(schema: &str, table: &str, seeds_table: &str) -> Tracking {
        // The advisory lock key is decided once: the first 8 bytes of
        // SHA-256("tidemark:" schema "." table). Advisory locks are scoped
        // to the database already.
        let digest = Sha256::digest(format!("tidemark:{schema}.{table}").as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        Tracking {
            schema: schema.to_string(),
            table: table.to_string(),
            qualified: format!("{}.{}", quote_ident(schema), quote_ident(table)),
            seeds_qualified: format!("{}.{}", quote_ident(schema), quote_ident(seeds_table)),
            lock_key: i64::from_be_bytes(key),
        }
    }

    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// Session settings sent with the lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionSettings {
    /// Through a transaction-mode pooler: no session state, a
    /// transaction-scoped lock in every transaction.
    pub pool_safe: bool,
    pub lock_wait_timeout_ms: u64,
    pub lock_timeout_ms: Option<u64>,
    pub statement_timeout_ms: Option<u64>,
}

/// What the first read found.
#[derive(Debug)]
pub(crate) enum FirstRead {
    /// The tracking table does not exist: nothing is applied.
    NoTable,
    Rows(Vec<AppliedRow>),
    /// Rows of a shape tidemark does not know; the locked path decides.
    Foreign,
}

/// Reads the tracking table whatever its shape: the server turns each row
/// into JSON and hands back the fields as text, so an older table (or another
/// tool's) reads without an error and without a JSON parser here.
pub(crate) fn select_rows_sql(qualified: &str) -> String {
    format!(
        "SELECT j->>'version' AS tidemark_row, jsonb_typeof(j->'version'), \
         (j ? 'dirty') OR NOT (j ? 'checksum' OR j ? 'applied_at'), \
         coalesce(j->>'name', j->>'description'), j->>'checksum', j->>'applied_at', \
         j->>'duration_ms', j->>'status', j->>'error_message', j->>'statements_done', \
         j->>'statements_checksum', j->>'accepted_from', j->>'accepted_at', j->>'accepted_by', \
         j->>'accepted_reason' FROM (SELECT to_jsonb(t) AS j FROM {qualified} t) rows"
    )
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

/// Our columns, in order. Older tables get the missing ones added.
const COLUMNS: &str = "version text PRIMARY KEY, name text, checksum text, \
    applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer, \
    status text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'failed')), \
    error_message text, applied_by text DEFAULT current_user, \
    statements_done integer, statements_checksum text";

pub(crate) fn shape_sql(t: &Tracking) -> String {
    let q = &t.qualified;
    let schema = quote_literal(&t.schema);
    let schema_ident = quote_ident(&t.schema);
    let reg = quote_literal(q);
    let body = format!(
        r#"
DECLARE
  rel regclass := to_regclass({reg});
  cols text[];
  vtype text;
BEGIN
  IF rel IS NULL THEN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = {schema}) THEN
      CREATE SCHEMA {schema_ident};
    END IF;
    CREATE TABLE {q} ({COLUMNS});
    PERFORM set_config('tidemark.shape', 'created', true);
    RETURN;
  END IF;
  SELECT array_agg(attname::text ORDER BY attnum),
         max(format_type(atttypid, atttypmod)) FILTER (WHERE attname = 'version')
    INTO cols, vtype
    FROM pg_attribute WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped;
  IF vtype IS NULL OR (vtype <> 'text' AND vtype NOT LIKE 'character varying%')
     OR 'dirty' = ANY(cols) OR NOT (cols && ARRAY['checksum', 'applied_at']) THEN
    RAISE EXCEPTION USING ERRCODE = '{INCOMPATIBLE_SHAPE}',
      MESSAGE = 'incompatible tracking table',
      DETAIL = array_to_string(cols, ', ') || ' / version ' || coalesce(vtype, 'missing');
  END IF;
  IF NOT cols @> ARRAY['name', 'checksum', 'applied_at', 'duration_ms', 'status',
                       'error_message', 'applied_by', 'statements_done', 'statements_checksum'] THEN
    ALTER TABLE {q}
      ADD COLUMN IF NOT EXISTS name text,
      ADD COLUMN IF NOT EXISTS checksum text,
      ADD COLUMN IF NOT EXISTS applied_at timestamptz NOT NULL DEFAULT now(),
      ADD COLUMN IF NOT EXISTS duration_ms integer,
      ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'completed',
      ADD COLUMN IF NOT EXISTS error_message text,
      ADD COLUMN IF NOT EXISTS applied_by text DEFAULT current_user,
      ADD COLUMN IF NOT EXISTS statements_done integer,
      ADD COLUMN IF NOT EXISTS statements_checksum text;
    IF 'description' = ANY(cols) THEN
      EXECUTE format('UPDATE %s SET name = description WHERE name IS NULL', rel);
      EXECUTE format('ALTER TABLE %s ALTER COLUMN description DROP NOT NULL', rel);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                     ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                   WHERE i.indrelid = rel AND i.indisunique AND i.indnatts = 1
                     AND a.attname = 'version') THEN
      EXECUTE format('CREATE UNIQUE INDEX ON %s (version)', rel);
    END IF;
    PERFORM set_config('tidemark.shape', 'upgraded', true);
  END IF;
END
"#
    );
    let tag = dollar_tag(&body);
    format!("DO {tag}{body}{tag};\n")
}

/// A dollar-quote tag that does not occur in `body` (whose schema and table
/// names are the user's), so the quote cannot end early.
fn dollar_tag(body: &str) -> String {
    let mut tag = "$tidemark$".to_string();
    let mut n = 0u32;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$tidemark{n}$");
    }
    tag
}

pub(crate) fn describe_foreign_shape(t: &Tracking, detail: &str) -> Error {
    let (cols, vtype) = detail.split_once(" / version ").unwrap_or((detail, "?"));
    let cols_list: Vec<&str> = cols.split(", ").collect();
    let (looks_like, adopt) = if cols_list.contains(&"dirty") {
        (" (golang-migrate's shape)", "; when it holds golang-migrate's history, `tidemark adopt` takes it over instead, converting the table in place")
    } else if cols_list == ["version"] {
        (" (dbmate's shape)", "; when it holds dbmate's history, `tidemark adopt` takes it over instead, converting the table in place")
    } else {
        ("", "")
    };
    Error::new(
        Kind::TrackingTableIncompatible,
        format!(
            "the tracking table {} already exists with columns ({cols}; version is {vtype}){looks_like}, which tidemark cannot use; tidemark leaves another tool's table alone: choose another table with --table (for example --table tidemark_migrations){adopt}",
            t.display()
        ),
    )
}

/// The message of [`lock_and_read`] (also shown by `plan`).
pub(crate) fn lock_and_read_sql(t: &Tracking, s: SessionSettings) -> String {
    let mut sql = lock_prelude(t, s);
    sql.push_str(&shape_sql(t));
    sql.push_str("SELECT current_setting('tidemark.shape', true) AS tidemark_shape;\n");
    sql.push_str(&select_rows_sql(&t.qualified));
    sql.push_str(";\n");
    sql.push_str(lock_postlude(s));
    sql
}

/// The locked read: takes the advisory lock (waiting up to the wait
/// timeout), applies session settings, creates or upgrades the tracking
/// table and re-reads it, all in one message.
pub(crate) async fn lock_and_read<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    s: SessionSettings,
    reporter: &R,
) -> Result<Vec<AppliedRow>> {
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
    Ok(rows)
}

/// Takes the lock and makes sure the seeds table exists, then reads it.
pub(crate) async fn lock_and_read_seeds<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    s: SessionSettings,
    reporter: &R,
) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "{}CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, checksum text NOT NULL, \
         ran_at timestamptz NOT NULL DEFAULT now(), duration_ms integer);\n\
         SELECT name AS tidemark_seed, checksum FROM {};\n{}",
        lock_prelude(t, s),
        t.seeds_qualified,
        t.seeds_qualified,
        lock_postlude(s)
    );
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
    Ok(messages
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
        .collect())
}

/// The start of the locked read. Direct: the session lock (held until the
/// last message releases it), waited for up to the wait timeout. Pool-safe:
/// a transaction and a transaction-scoped lock, since a pooler may hand the
/// next transaction to another server session. The statement timeouts of
/// direct sessions travel in the startup packet (`url::startup_options`).
fn lock_prelude(t: &Tracking, s: SessionSettings) -> String {
    let wait = s.lock_wait_timeout_ms.max(1);
    // The wait for the lock is bounded by the lock wait timeout alone: the
    // user's statement_timeout (from the startup packet or the role) is for
    // the migrations' statements, so it is lifted around the wait.
    if s.pool_safe {
        format!(
            "BEGIN;\nSET LOCAL statement_timeout = 0;\nSET LOCAL lock_timeout = '{wait}ms';\nSELECT pg_advisory_xact_lock({});\n",
            t.lock_key
        )
    } else {
        format!(
            "SET statement_timeout = 0;\nSET lock_timeout = '{wait}ms';\nSELECT pg_advisory_lock({});\n\
             RESET lock_timeout;\nRESET statement_timeout;\n{CHECK_CLIENT}",
            t.lock_key
        )
    }
}

/// Ends what [`lock_prelude`] began (the pool-safe transaction).
fn lock_postlude(s: SessionSettings) -> &'static str {
    if s.pool_safe {
        "COMMIT;\n"
    } else {
        ""
    }
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

/// Releases the session lock. Errors are ignored: closing the session
/// releases it too.
pub(crate) async fn unlock(client: &Client, t: &Tracking, s: SessionSettings) {
    if s.pool_safe {
        // Transaction-scoped locks end with their transactions.
        return;
    }
    let _ = client.simple_query(&unlock_sql(t)).await;
}

/// The message that releases the session lock.
pub(crate) fn unlock_sql(t: &Tracking) -> String {
    format!("SELECT pg_advisory_unlock({})", t.lock_key)
}

/// What an item does to the tracking tables when its SQL has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    Up,
    Down,
    Seed,
}

/// One unit of work: a migration's up or down SQL, or a seed.
#[derive(Debug)]
pub(crate) struct Item<'a> {
    pub work: Work,
    /// Version for migrations, file stem for seeds.
    pub key: &'a str,
    pub name: &'a str,
    pub text: &'a SqlText,
    pub body: Body<'a>,
    pub checksum: &'a str,
    /// The failed row an earlier attempt left (for resuming no-transaction
    /// migrations).
    pub previous: Option<&'a AppliedRow>,
}

impl Item<'_> {
    fn done(&self, duration_ms: u64) -> AppliedMigration {
        AppliedMigration {
            version: self.key.to_string(),
            name: self.name.to_string(),
            file: self.text.file.clone(),
            duration_ms,
        }
    }

    fn event(&self, duration_ms: u64) -> Event {
        let (version, name, file) = (
            self.key.to_string(),
            self.name.to_string(),
            self.text.file.clone(),
        );
        match self.work {
            Work::Up => Event::MigrationApplied {
                version,
                name,
                file,
                duration_ms,
            },
            Work::Down => Event::MigrationReverted {
                version,
                name,
                file,
                duration_ms,
            },
            Work::Seed => Event::SeedApplied {
                name: version,
                file,
                duration_ms,
            },
        }
    }

    /// Statements that open the item's transaction, and how many there are
    /// (to name a failing statement of the item's own SQL). Pool-safe mode
    /// takes the transaction-scoped lock, sets the timeouts locally, and
    /// claims a migration by inserting its row first: a deploy that finds
    /// the row already there stops with a unique violation instead of
    /// applying the migration twice.
    fn prologue(&self, t: &Tracking, s: SessionSettings) -> (String, usize) {
        // The file's own `BEGIN ISOLATION LEVEL ...` modes.
        let begin = match &self.body {
            Body::Transactional { modes: Some(m), .. } | Body::Copy { modes: Some(m), .. } => {
                format!("BEGIN {m}\n;\n")
            }
            _ => "BEGIN;\n".to_string(),
        };
        if !s.pool_safe {
            return (format!("{begin}{START_CLOCK}"), 2);
        }
        let mut sql = format!(
            "{begin}SET LOCAL statement_timeout = 0;\nSET LOCAL lock_timeout = '{}ms';\nSELECT pg_advisory_xact_lock({});\nSET LOCAL lock_timeout = {};\nSET LOCAL statement_timeout = {};\n{START_CLOCK}",
            s.lock_wait_timeout_ms.max(1),
            t.lock_key,
            s.lock_timeout_ms.map_or("DEFAULT".to_string(), |ms| format!("'{ms}ms'")),
            s.statement_timeout_ms.map_or("DEFAULT".to_string(), |ms| format!("'{ms}ms'")),
        );
        let mut count = 7;
        if self.work == Work::Up {
            let key = quote_literal(self.key);
            sql.push_str(&format!(
                "DELETE FROM {q} WHERE version = {key} AND status = 'failed';\n\
                 INSERT INTO {q} (version, name, checksum, applied_at, status) \
                 VALUES ({key}, {name}, {sum}, clock_timestamp(), 'completed');\n",
                q = t.qualified,
                name = quote_literal(self.name),
                sum = quote_literal(self.checksum),
            ));
            count += 2;
        }
        (sql, count)
    }

    /// What follows the [`DONE_MARKER`] statement up to and including
    /// `COMMIT`, and how many statements that is. Each item leaves the
    /// session as it found it: settings the migration changed (`search_path`
    /// from a pg_dump file, timeouts) are reset before the next one starts,
    /// tidemark's own set again (the startup packet's are the reset values).
    /// Inside the transaction, so that in pool-safe mode the pooled server
    /// session is clean too.
    fn tail(s: SessionSettings) -> (String, usize) {
        if s.pool_safe {
            ("RESET ALL;\nCOMMIT;\n".to_string(), 3)
        } else {
            (format!("RESET ALL;\n{CHECK_CLIENT}COMMIT;\n"), 4)
        }
    }

    /// Statements that end the item inside its transaction; the last one
    /// returns the server-measured duration in a column named [`DONE_MARKER`].
    fn finish_sql(&self, t: &Tracking, s: SessionSettings) -> String {
        let key = quote_literal(self.key);
        match self.work {
            Work::Up if s.pool_safe => format!(
                "UPDATE {q} SET duration_ms = {TX_DURATION_MS}, applied_at = clock_timestamp() \
                 WHERE version = {key} RETURNING duration_ms AS {DONE_MARKER};\n",
                q = t.qualified
            ),
            Work::Up => format!(
                "DELETE FROM {q} WHERE version = {key};\n\
                 INSERT INTO {q} (version, name, checksum, applied_at, duration_ms, status) \
                 VALUES ({key}, {name}, {sum}, clock_timestamp(), {TX_DURATION_MS}, 'completed') \
                 RETURNING duration_ms AS {DONE_MARKER};\n",
                q = t.qualified,
                name = quote_literal(self.name),
                sum = quote_literal(self.checksum),
            ),
            Work::Down => format!(
                "DELETE FROM {q} WHERE version = {key};\nSELECT {TX_DURATION_MS} AS {DONE_MARKER};\n",
                q = t.qualified
            ),
            Work::Seed => format!(
                "DELETE FROM {q} WHERE name = {key};\n\
                 INSERT INTO {q} (name, checksum, ran_at, duration_ms) \
                 VALUES ({key}, {sum}, clock_timestamp(), {TX_DURATION_MS}) \
                 RETURNING duration_ms AS {DONE_MARKER};\n",
                q = t.seeds_qualified,
                sum = quote_literal(self.checksum),
            ),
        }
    }
}

/// Where an item's SQL sits inside a message.
#[derive(Debug)]
pub(crate) struct Span {
    /// Statements before the item's own SQL.
    prologue: usize,
    item_start: usize,
    body_start: usize,
    body_end: usize,
}

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

pub(crate) fn build_batch(
    items: &[Item<'_>],
    t: &Tracking,
    s: SessionSettings,
    trailer: &str,
) -> (String, Vec<Span>) {
    let mut sql = String::new();
    let mut spans = Vec::with_capacity(items.len());
    for item in items {
        let Body::Transactional { sql: body, .. } = &item.body else {
            continue;
        };
        let item_start = sql.len();
        let (prologue_sql, prologue) = item.prologue(t, s);
        sql.push_str(&prologue_sql);
        // Every COMMIT is synchronous: a migration is reported applied when
        // its COMMIT returns, so it must be durable by then (a server crash
        // right after must not lose it). See bench/README.md for the cost.
        let body_start = sql.len();
        sql.push_str(body);
        let body_end = sql.len();
        // The newline ends a trailing `--` comment before our `;`.
        sql.push_str("\n;\n");
        sql.push_str(&item.finish_sql(t, s));
        sql.push_str(&Item::tail(s).0);
        spans.push(Span {
            prologue,
            item_start,
            body_start,
            body_end,
        });
    }
    sql.push_str(trailer);
    (sql, spans)
}

/// Maps the server's 1-based character position to (item index, byte offset
/// in the item's file text when it falls inside the item's own SQL).
fn map_position(
    sql: &str,
    spans: &[Span],
    items: &[Item<'_>],
    position: u32,
) -> Option<(usize, Option<usize>)> {
    let byte = sql
        .char_indices()
        .nth(position.checked_sub(1)? as usize)
        .map(|(b, _)| b)?;
    let index = spans.iter().rposition(|s| s.item_start <= byte)?;
    let span = &spans[index];
    let offset = match &items[index].body {
        Body::Transactional { offset, .. } if byte >= span.body_start && byte < span.body_end => {
            Some(offset + (byte - span.body_start))
        }
        _ => None,
    };
    Some((index, offset))
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

/// Splits `items` into runs: consecutive transactional items up to
/// `max_bytes` of SQL each, and single no-transaction items.
pub(crate) fn next_run(items: &[Item<'_>], start: usize, max_bytes: usize) -> usize {
    if matches!(
        items[start].body,
        Body::NoTransaction { .. } | Body::Copy { .. }
    ) {
        return start + 1;
    }
    let mut size = 0;
    let mut end = start;
    while end < items.len() {
        let Body::Transactional { sql, .. } = &items[end].body else {
            break;
        };
        if end > start && size + sql.len() > max_bytes {
            break;
        }
        // Plus tidemark's own statements around each item.
        size += sql.len() + 768;
        end += 1;
    }
    end
}

/// What ends a batch: on a direct session the last batch releases the lock.
pub(crate) fn batch_trailer(t: &Tracking, s: SessionSettings, last: bool) -> String {
    if !s.pool_safe && last {
        format!("SELECT pg_advisory_unlock({});\n", t.lock_key)
    } else {
        String::new()
    }
}

/// Runs every item in order with as few messages as possible. The lock is
/// released by the last message on success (direct sessions); on failure the
/// caller releases it. Returns what was done.
pub(crate) async fn run_items<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    s: SessionSettings,
    items: &[Item<'_>],
    max_bytes: usize,
    reporter: &R,
) -> Result<(Vec<AppliedMigration>, bool)> {
    let mut done = Vec::new();
    let mut start = 0;
    let mut unlocked = false;
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
        let trailer = batch_trailer(t, s, end == items.len());
        unlocked = !trailer.is_empty();
        let outcome = run_batch(client, t, s, &items[start..end], &trailer, reporter).await;
        let committed = outcome.done.len();
        done.extend(outcome.done);
        let Some(mut failure) = outcome.failure else {
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
    Ok((done, unlocked))
}

/// The error for a session lost in the middle of `item`: what is known to be
/// committed, what is not known, and what to do. Never "fix the file".
fn connection_lost(
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

fn item_error(
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
    let state = db.sql_state_suffix();
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

async fn rollback(client: &Client) {
    let _ = client.simple_query("ROLLBACK").await;
}

/// Leaves a `failed` row for a migration that did not complete.
async fn record_failure(
    client: &Client,
    t: &Tracking,
    item: &Item<'_>,
    message: &str,
    progress: Option<(usize, &str)>,
) {
    let (done, sum) = match progress {
        Some((n, sum)) => (n.to_string(), quote_literal(sum)),
        None => ("NULL".into(), "NULL".into()),
    };
    let sql = format!(
        "BEGIN;\nDELETE FROM {q} WHERE version = {key};\n\
         INSERT INTO {q} (version, name, checksum, applied_at, status, error_message, statements_done, statements_checksum) \
         VALUES ({key}, {name}, {sum_file}, clock_timestamp(), 'failed', {msg}, {done}, {sum});\nCOMMIT;",
        q = t.qualified,
        key = quote_literal(item.key),
        name = quote_literal(item.name),
        sum_file = quote_literal(item.checksum),
        msg = quote_literal(message),
    );
    let _ = client.simple_query(&sql).await;
}

/// Runs an item whose SQL carries `COPY ... FROM stdin` data (a pg_dump
/// file): inside one transaction as usual, but in several messages, each
/// COPY with its data through the COPY protocol.
async fn run_copy_item<R: Reporter + ?Sized>(
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
pub(crate) async fn run_statements(
    client: &Client,
    statements: &[(usize, &str)],
) -> std::result::Result<(), (tokio_postgres::Error, Option<usize>)> {
    let mut sql = String::new();
    let mut starts = Vec::with_capacity(statements.len());
    for (offset, code) in statements {
        starts.push((sql.len(), *offset));
        sql.push_str(code);
        sql.push_str("\n;\n");
    }
    let mut completes = 0usize;
    let locate = |e: tokio_postgres::Error, completes: usize| {
        let db = DbDetails::from_error(&e);
        let offset = db
            .position
            .and_then(|p| sql.char_indices().nth(p.checked_sub(1)? as usize))
            .and_then(|(byte, _)| {
                let (start, offset) = starts.iter().rev().find(|(st, _)| *st <= byte)?;
                Some(offset + (byte - start))
            })
            .or_else(|| starts.get(completes).map(|(_, o)| *o));
        (e, offset)
    };
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

/// Checksum of the first `n` statements of a no-transaction migration, so a
/// resumed run only skips statements that are unchanged.
fn prefix_checksum(statements: &[(usize, &str)], n: usize) -> String {
    let mut h = Sha256::new();
    for (_, code) in statements.iter().take(n) {
        h.update(code.as_bytes());
        h.update(b"\n;\n");
    }
    hex(&h.finalize())
}

/// Runs a `-- tidemark:no-transaction` item: each statement in a message of
/// its own (a multi-statement message would be one implicit transaction),
/// recording progress so that a failed run resumes where it stopped.
async fn run_no_transaction<R: Reporter + ?Sized>(
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
                    let inner = code
                        .char_indices()
                        .nth(p.saturating_sub(1) as usize)
                        .map_or(0, |(b, _)| b);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_survive_both_string_modes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\'b"), r"E'a\\''b'");
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
    }

    #[test]
    fn lock_key_is_pinned() {
        // Two tidemark versions must agree on the key, or they would not
        // exclude each other.
        let a = Tracking::new("public", "schema_migrations", "schema_seeds");
        let b = Tracking::new("public", "schema_migrations", "x");
        assert_eq!(a.lock_key, b.lock_key);
        assert_ne!(
            a.lock_key,
            Tracking::new("app", "schema_migrations", "x").lock_key
        );
    }
}
