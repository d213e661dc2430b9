//! Every message tidemark sends, built by pure functions: quoting, the
//! tracking-table DDL, the lock snippets, the batch of transactional items
//! and the mapping of a server error position back to a file. Nothing here
//! touches a `Client`; the tests at the bottom need no server.

use sha2::{Digest, Sha256};

use super::{SessionSettings, Tracking, INCOMPATIBLE_SHAPE};
use crate::check::Body;
use crate::plan::AppliedRow;
use crate::report::{AppliedMigration, Event};
use crate::source::{hex, SqlText};

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
pub(super) const START_CLOCK: &str =
    "SELECT set_config('tidemark.started', clock_timestamp()::text, true);\n";

/// Milliseconds since [`START_CLOCK`] ran in this transaction, measured by
/// the server.
const TX_DURATION_MS: &str = "(round(extract(epoch FROM clock_timestamp() - \
     current_setting('tidemark.started')::timestamptz) * 1000))::integer";

/// A killed deploy must not keep migrating: the server checks for the
/// vanished client every 100 ms while a statement runs (PostgreSQL 14+).
/// Set again after each item's `RESET ALL`.
pub(super) const CHECK_CLIENT: &str =
    "SELECT set_config('client_connection_check_interval', '100', false) \
     WHERE current_setting('server_version_num')::int >= 140000;\n";

/// Column name that marks tidemark's own result row at the end of an item.
pub(super) const DONE_MARKER: &str = "tidemark_done";

/// Reads the tracking table whatever its shape: the server turns each row
/// into JSON and hands back the fields as text, so an older table (or another
/// tool's) reads without an error and without a JSON parser here.
///
/// `OFFSET 0` keeps the subquery a subquery: without it, PostgreSQL pulls it
/// up and evaluates `to_jsonb(t)` once per column that reads `j` (15 times a
/// row), which made this read 20 ms at 200 rows instead of 2 (issue 15).
pub(crate) fn select_rows_sql(qualified: &str) -> String {
    format!(
        "SELECT j->>'version' AS tidemark_row, jsonb_typeof(j->'version'), \
         (j ? 'dirty') OR NOT (j ? 'checksum' OR j ? 'applied_at'), \
         coalesce(j->>'name', j->>'description'), j->>'checksum', j->>'applied_at', \
         j->>'duration_ms', j->>'status', j->>'error_message', j->>'statements_done', \
         j->>'statements_checksum', j->>'accepted_from', j->>'accepted_at', j->>'accepted_by', \
         j->>'accepted_reason' FROM (SELECT to_jsonb(t) AS j FROM {qualified} t OFFSET 0) rows"
    )
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
    let columns = shape_columns_sql("rel");
    let incompatible = incompatible_when("cols", "vtype");
    let detail = shape_detail("cols", "vtype");
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
  SELECT shape_cols, shape_vtype INTO cols, vtype FROM ({columns}) shape;
  IF {incompatible} THEN
    RAISE EXCEPTION USING ERRCODE = '{INCOMPATIBLE_SHAPE}',
      MESSAGE = 'incompatible tracking table',
      DETAIL = {detail};
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

/// The columns of the relation `rel` (a `regclass` expression) as
/// `shape_cols` (in order) and the type of its `version` as `shape_vtype`.
fn shape_columns_sql(rel: &str) -> String {
    format!(
        "SELECT array_agg(attname::text ORDER BY attnum) AS shape_cols, \
         max(format_type(atttypid, atttypmod)) FILTER (WHERE attname = 'version') AS shape_vtype \
         FROM pg_attribute WHERE attrelid = {rel} AND attnum > 0 AND NOT attisdropped"
    )
}

/// The one rule for a table tidemark cannot use as its tracking table
/// (another tool's: golang-migrate's `dirty`, dbmate's lone `version`, a
/// numeric version), over a column list and the version's type.
fn incompatible_when(cols: &str, vtype: &str) -> String {
    format!(
        "({vtype} IS NULL OR ({vtype} <> 'text' AND {vtype} NOT LIKE 'character varying%') \
         OR 'dirty' = ANY({cols}) OR NOT ({cols} && ARRAY['checksum', 'applied_at']))"
    )
}

/// What [`super::describe_foreign_shape`] reads: `col, col / version type`.
fn shape_detail(cols: &str, vtype: &str) -> String {
    format!("array_to_string({cols}, ', ') || ' / version ' || coalesce({vtype}, 'missing')")
}

/// Explains a foreign tracking table without the lock and without DDL
/// (`status`, `plan`): the shape check's own rule and detail, read-only.
/// One row: the detail, and whether the rule finds the table incompatible.
pub(crate) fn explain_shape_sql(t: &Tracking) -> String {
    format!(
        "SELECT {} AS tidemark_shape_detail, {}::text FROM ({}) shape",
        shape_detail("shape_cols", "shape_vtype"),
        incompatible_when("shape_cols", "shape_vtype"),
        shape_columns_sql(&format!("to_regclass({})", quote_literal(&t.qualified)))
    )
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

/// The locked read of the seeds table: takes the lock, creates the table
/// when it is missing and reads it.
pub(crate) fn lock_and_read_seeds_sql(t: &Tracking, s: SessionSettings) -> String {
    format!(
        "{}CREATE TABLE IF NOT EXISTS {q} (name text PRIMARY KEY, checksum text NOT NULL, \
         ran_at timestamptz NOT NULL DEFAULT now(), duration_ms integer);\n\
         SELECT name AS tidemark_seed, checksum FROM {q};\n{}",
        lock_prelude(t, s),
        lock_postlude(s),
        q = t.seeds_qualified,
    )
}

/// The start of the locked read. Direct: the session lock (held until the
/// last message releases it), waited for up to the wait timeout. Pool-safe:
/// a transaction and a transaction-scoped lock ([`xact_lock_sql`]), since a
/// pooler may hand the next transaction to another server session. The
/// statement timeouts of direct sessions travel in the startup packet
/// (`url::startup_options`).
fn lock_prelude(t: &Tracking, s: SessionSettings) -> String {
    if s.pool_safe {
        return format!("BEGIN;\n{}", xact_lock_sql(t, s));
    }
    // The wait for the lock is bounded by the lock wait timeout alone: the
    // user's statement_timeout (from the startup packet or the role) is for
    // the migrations' statements, so it is lifted around the wait.
    format!(
        "SET statement_timeout = 0;\nSET lock_timeout = '{}ms';\nSELECT pg_advisory_lock({});\n\
         RESET lock_timeout;\nRESET statement_timeout;\n{CHECK_CLIENT}",
        s.lock_wait_timeout_ms.max(1),
        t.lock_key
    )
}

/// Statements in [`xact_lock_sql`].
pub(crate) const XACT_LOCK_STATEMENTS: usize = 5;

/// The one way to take tidemark's lock inside a transaction (pool-safe
/// items and reads, `reset`, `accept`, `adopt`): the wait is bounded by the
/// lock wait timeout alone (the user's `statement_timeout` is lifted around
/// it), then the user's timeouts apply again to the rest of the transaction.
pub(crate) fn xact_lock_sql(t: &Tracking, s: SessionSettings) -> String {
    let user = |ms: Option<u64>| ms.map_or("DEFAULT".to_string(), |ms| format!("'{ms}ms'"));
    format!(
        "SET LOCAL statement_timeout = 0;\nSET LOCAL lock_timeout = '{}ms';\nSELECT pg_advisory_xact_lock({});\n\
         SET LOCAL lock_timeout = {};\nSET LOCAL statement_timeout = {};\n",
        s.lock_wait_timeout_ms.max(1),
        t.lock_key,
        user(s.lock_timeout_ms),
        user(s.statement_timeout_ms),
    )
}

/// Ends what [`lock_prelude`] began (the pool-safe transaction).
fn lock_postlude(s: SessionSettings) -> &'static str {
    if s.pool_safe {
        "COMMIT;\n"
    } else {
        ""
    }
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
    pub(super) fn done(&self, duration_ms: u64) -> AppliedMigration {
        AppliedMigration {
            version: self.key.to_string(),
            name: self.name.to_string(),
            file: self.text.file.clone(),
            duration_ms,
        }
    }

    pub(super) fn event(&self, duration_ms: u64) -> Event {
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
    pub(super) fn prologue(&self, t: &Tracking, s: SessionSettings) -> (String, usize) {
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
        let mut sql = format!("{begin}{}{START_CLOCK}", xact_lock_sql(t, s));
        let mut count = 1 + XACT_LOCK_STATEMENTS + 1;
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
    pub(super) fn tail(s: SessionSettings) -> (String, usize) {
        if s.pool_safe {
            ("RESET ALL;\nCOMMIT;\n".to_string(), 3)
        } else {
            (format!("RESET ALL;\n{CHECK_CLIENT}COMMIT;\n"), 4)
        }
    }

    /// Statements that end the item inside its transaction; the last one
    /// returns the server-measured duration in a column named [`DONE_MARKER`].
    pub(super) fn finish_sql(&self, t: &Tracking, s: SessionSettings) -> String {
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
    pub(super) prologue: usize,
    item_start: usize,
    body_start: usize,
    body_end: usize,
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
pub(super) fn map_position(
    sql: &str,
    spans: &[Span],
    items: &[Item<'_>],
    position: u32,
) -> Option<(usize, Option<usize>)> {
    let byte = byte_at(sql, position)?;
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
        format!("{};\n", unlock_sql(t))
    } else {
        String::new()
    }
}

/// Checksum of the first `n` statements of a no-transaction migration, so a
/// resumed run only skips statements that are unchanged.
pub(super) fn prefix_checksum(statements: &[(usize, &str)], n: usize) -> String {
    let mut h = Sha256::new();
    for (_, code) in statements.iter().take(n) {
        h.update(code.as_bytes());
        h.update(b"\n;\n");
    }
    hex(&h.finalize())
}

/// Records a script seed the host ran, with the host's duration, in a
/// transaction of its own (under the transaction lock in pool-safe mode).
pub(crate) fn record_script_seed_sql(
    t: &Tracking,
    s: SessionSettings,
    name: &str,
    checksum: &str,
    duration_ms: u64,
) -> String {
    let lock = if s.pool_safe {
        xact_lock_sql(t, s)
    } else {
        String::new()
    };
    format!(
        "BEGIN;\n{lock}DELETE FROM {q} WHERE name = {key};\n\
         INSERT INTO {q} (name, checksum, ran_at, duration_ms) \
         VALUES ({key}, {sum}, clock_timestamp(), {ms});\nCOMMIT;",
        q = t.seeds_qualified,
        key = quote_literal(name),
        sum = quote_literal(checksum),
        ms = duration_ms.min(i32::MAX as u64),
    )
}

/// Leaves a `failed` row for a migration that did not complete, with the
/// progress of a no-transaction one, in a transaction of its own.
pub(super) fn record_failure_sql(
    t: &Tracking,
    item: &Item<'_>,
    message: &str,
    progress: Option<(usize, &str)>,
) -> String {
    let (done, sum) = match progress {
        Some((n, sum)) => (n.to_string(), quote_literal(sum)),
        None => ("NULL".into(), "NULL".into()),
    };
    format!(
        "BEGIN;\nDELETE FROM {q} WHERE version = {key};\n\
         INSERT INTO {q} (version, name, checksum, applied_at, status, error_message, statements_done, statements_checksum) \
         VALUES ({key}, {name}, {sum_file}, clock_timestamp(), 'failed', {msg}, {done}, {sum});\nCOMMIT;",
        q = t.qualified,
        key = quote_literal(item.key),
        name = quote_literal(item.name),
        sum_file = quote_literal(item.checksum),
        msg = quote_literal(message),
    )
}

/// The byte offset in `text` of the server's 1-based character `position`
/// (PostgreSQL counts characters from the start of the message).
pub(super) fn byte_at(text: &str, position: u32) -> Option<usize> {
    text.char_indices()
        .nth(position.checked_sub(1)? as usize)
        .map(|(b, _)| b)
}

/// Statements of one item sent as one message (COPY items), each followed
/// by `;` on a line of its own, with where each starts in the message.
pub(super) fn statements_message(statements: &[(usize, &str)]) -> (String, Vec<(usize, usize)>) {
    let mut sql = String::new();
    let mut starts = Vec::with_capacity(statements.len());
    for (offset, code) in statements {
        starts.push((sql.len(), *offset));
        sql.push_str(code);
        sql.push_str("\n;\n");
    }
    (sql, starts)
}

/// Maps an error in a [`statements_message`] to an offset in the file text:
/// the server's position when it gave one, else the start of the statement
/// after the `completes` that completed.
pub(super) fn locate_in_statements(
    sql: &str,
    starts: &[(usize, usize)],
    position: Option<u32>,
    completes: usize,
) -> Option<usize> {
    position
        .and_then(|p| byte_at(sql, p))
        .and_then(|byte| {
            let (start, offset) = starts.iter().rev().find(|(st, _)| *st <= byte)?;
            Some(offset + (byte - start))
        })
        .or_else(|| starts.get(completes).map(|(_, o)| *o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::prepare;

    fn direct() -> SessionSettings {
        SessionSettings {
            pool_safe: false,
            lock_wait_timeout_ms: 5000,
            lock_timeout_ms: None,
            statement_timeout_ms: Some(60_000),
        }
    }

    fn pooled() -> SessionSettings {
        SessionSettings {
            pool_safe: true,
            ..direct()
        }
    }

    fn tracking() -> Tracking {
        Tracking::new("public", "schema_migrations", "schema_seeds")
    }

    fn text(file: &str, sql: &str) -> SqlText {
        SqlText {
            file: file.into(),
            sql: sql.into(),
            first_line: 0,
        }
    }

    fn item<'a>(key: &'a str, text: &'a SqlText) -> Item<'a> {
        Item {
            work: Work::Up,
            key,
            name: "x",
            text,
            body: prepare(text, false, None).expect("valid SQL"),
            checksum: "abc",
            previous: None,
        }
    }

    /// How many statements a message holds (each of tidemark's ends with `;`
    /// and a newline, and none of the test bodies has a `;` inside).
    fn statements(sql: &str) -> usize {
        sql.matches(";\n").count()
    }

    #[test]
    fn literals_survive_both_string_modes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\'b"), r"E'a\\''b'");
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
    }

    #[test]
    fn a_user_table_name_cannot_end_the_dollar_quote() {
        let t = Tracking::new("public", "x$tidemark$y", "s");
        let sql = shape_sql(&t);
        assert!(sql.starts_with("DO $tidemark1$"));
        assert!(sql.ends_with("$tidemark1$;\n"));
    }

    #[test]
    fn the_shape_check_and_its_read_only_explanation_share_the_rule() {
        let t = tracking();
        let rule = incompatible_when("cols", "vtype");
        assert!(shape_sql(&t).contains(&rule));
        let explain = explain_shape_sql(&t);
        assert!(explain.contains(&incompatible_when("shape_cols", "shape_vtype")));
        // Read-only: no lock, no DDL.
        for word in ["lock", "CREATE", "ALTER", "DO ", "set_config"] {
            assert!(!explain.contains(word), "{word} in {explain}");
        }
    }

    #[test]
    fn the_transaction_lock_is_one_snippet_everywhere() {
        let t = tracking();
        let snippet = xact_lock_sql(&t, pooled());
        assert_eq!(statements(&snippet), XACT_LOCK_STATEMENTS);
        assert!(snippet.contains("SET LOCAL lock_timeout = '5000ms';"));
        assert!(snippet.contains(&format!("pg_advisory_xact_lock({})", t.lock_key)));
        // The user's timeouts come back for what follows the wait.
        assert!(snippet.ends_with(
            "SET LOCAL lock_timeout = DEFAULT;\nSET LOCAL statement_timeout = '60000ms';\n"
        ));
        assert!(lock_and_read_sql(&t, pooled()).contains(&snippet));
        assert!(lock_and_read_seeds_sql(&t, pooled()).contains(&snippet));
        let sql = text("001_a.sql", "create table a (id int)");
        let (prologue, count) = item("001", &sql).prologue(&t, pooled());
        assert!(prologue.contains(&snippet));
        assert_eq!(statements(&prologue), count);
    }

    #[test]
    fn a_direct_session_takes_the_session_lock_and_releases_it_once() {
        let t = tracking();
        let read = lock_and_read_sql(&t, direct());
        assert!(read.contains(&format!("SELECT pg_advisory_lock({});", t.lock_key)));
        assert!(!read.starts_with("BEGIN"));
        assert!(lock_and_read_sql(&t, pooled()).starts_with("BEGIN;\n"));
        assert_eq!(
            batch_trailer(&t, direct(), true),
            format!("{};\n", unlock_sql(&t))
        );
        assert_eq!(batch_trailer(&t, direct(), false), "");
        assert_eq!(batch_trailer(&t, pooled(), true), "");
    }

    #[test]
    fn the_prologue_counts_its_statements() {
        let t = tracking();
        let sql = text("001_a.sql", "create table a (id int)");
        for s in [direct(), pooled()] {
            let i = item("001", &sql);
            let (prologue, count) = i.prologue(&t, s);
            assert_eq!(statements(&prologue), count);
            // The tail's count includes the marker statement before it.
            let (tail, count) = Item::tail(s);
            assert_eq!(statements(&tail) + 1, count);
        }
    }

    #[test]
    fn a_batch_maps_server_positions_back_to_files() {
        let t = tracking();
        let a = text("001_a.sql", "create table a (id int)");
        let b = text("002_b.sql", "-- é\ncreate tabel b (id int)");
        let items = vec![item("001", &a), item("002", &b)];
        let (sql, spans) = build_batch(&items, &t, direct(), "");
        assert_eq!(spans.len(), 2);
        assert!(sql.contains("create table a (id int)\n;\n"));
        // The server's position counts characters of the whole message.
        let byte = sql.find("tabel").expect("in the batch");
        let position = sql[..byte].chars().count() as u32 + 1;
        let (index, offset) = map_position(&sql, &spans, &items, position).expect("mapped");
        assert_eq!(index, 1);
        let offset = offset.expect("inside the file's own SQL");
        assert_eq!(&b.sql[offset..offset + 5], "tabel");
        assert_eq!(b.line_col(offset), (2, 8));
        // A position in tidemark's own statements names the item, not a line.
        let insert = sql.find("INSERT INTO").expect("tracking insert");
        let position = sql[..insert].chars().count() as u32 + 1;
        assert_eq!(
            map_position(&sql, &spans, &items, position),
            Some((0, None))
        );
        assert_eq!(map_position(&sql, &spans, &items, 0), None);
    }

    #[test]
    fn statement_errors_map_by_position_or_by_count() {
        let statements = [(0, "select 1"), (20, "selct 2")];
        let (sql, starts) = statements_message(&statements);
        assert_eq!(sql, "select 1\n;\nselct 2\n;\n");
        let at = sql.find("selct").expect("second") as u32 + 1;
        assert_eq!(locate_in_statements(&sql, &starts, Some(at), 0), Some(20));
        assert_eq!(locate_in_statements(&sql, &starts, None, 1), Some(20));
        assert_eq!(locate_in_statements(&sql, &starts, None, 2), None);
        assert_eq!(byte_at("é1", 2), Some(2));
        assert_eq!(byte_at("é1", 0), None);
    }

    #[test]
    fn big_plans_are_cut_into_bounded_messages() {
        let t = (0..4)
            .map(|i| text(&format!("00{i}_x.sql"), &"select 1;".repeat(100)))
            .collect::<Vec<_>>();
        let items: Vec<_> = t.iter().map(|s| item("1", s)).collect();
        assert_eq!(next_run(&items, 0, usize::MAX), 4);
        assert_eq!(next_run(&items, 0, 1), 1);
        // Each item counts its SQL and tidemark's statements around it.
        assert_eq!(next_run(&items, 1, 2000), 2);
        assert_eq!(next_run(&items, 1, 4000), 3);
    }

    #[test]
    fn a_failed_row_keeps_the_progress() {
        let t = tracking();
        let sql = text("001_a.sql", "select 1");
        let i = item("001", &sql);
        let row = record_failure_sql(&t, &i, "boom 'x'", Some((2, "sum")));
        assert!(row.contains("'failed', 'boom ''x''', 2, 'sum')"));
        assert!(row.starts_with("BEGIN;") && row.ends_with("COMMIT;"));
    }
}
