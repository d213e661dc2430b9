//! Pre-flight checks on SQL before anything is sent: transaction control and
//! statements that cannot run in a transaction are refused here, with the
//! file and line, so a bad migration never half-runs.

use std::borrow::Cow;

use crate::error::{Error, Kind, Result};
use crate::lexer::{
    split, split_from, standard_conforming_strings, tables_changed, Statement, StatementKind,
};
use crate::source::{SqlText, NO_TRANSACTION_MARKER};

/// How a piece of SQL will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// Inside tidemark's own transaction: `sql` is the text to send (a
    /// self-wrapping `BEGIN; ... COMMIT;` removed, psql's `\restrict` lines
    /// blanked to comments of the same length), starting at byte `offset` of
    /// the file text. `statements` are the byte offsets (in the file text)
    /// where each statement's code starts, to name the line of a failing
    /// statement when the server gives no position. `modes` are the
    /// transaction modes of the file's own `BEGIN` (`ISOLATION LEVEL
    /// SERIALIZABLE`), which tidemark's `BEGIN` keeps.
    Transactional {
        sql: Cow<'a, str>,
        offset: usize,
        statements: Vec<usize>,
        modes: Option<&'a str>,
    },
    /// Inside tidemark's transaction, in several messages because the file
    /// carries `COPY ... FROM stdin` data (pg_dump), which goes through the
    /// COPY protocol.
    Copy {
        steps: Vec<Step<'a>>,
        modes: Option<&'a str>,
    },
    /// Outside any transaction, one statement per message: (byte offset in
    /// the file text, code).
    NoTransaction { statements: Vec<(usize, &'a str)> },
}

/// One message of a [`Body::Copy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// Statements sent as one simple query: byte offset of each statement's
    /// code in the file text, and the code.
    Sql(Vec<(usize, &'a str)>),
    /// The rows of a `COPY ... FROM stdin` block (at `offset`), as INSERT
    /// statements: the same rows through the same input functions, in the
    /// same transaction, without the COPY sub-protocol (which would cost the
    /// wasm build the whole extended protocol).
    Rows { offset: usize, inserts: Vec<String> },
}

fn refuse(kind: Kind, text: &SqlText, offset: usize, message: String) -> Error {
    let (line, col) = text.line_col(offset);
    Error::new(kind, format!("{}:{line}: {message}", text.file)).at(
        &text.file,
        Some(line),
        Some(col),
    )
}

/// The tracking table, which no migration may create, alter or drop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard<'a> {
    pub schema: &'a str,
    pub table: &'a str,
}

/// psql meta-commands a pg_dump file carries that are safe to skip:
/// `\restrict KEY` / `\unrestrict KEY` only guard psql itself against a
/// malicious dump.
fn is_skippable_meta(code: &str) -> bool {
    let command = code.split_whitespace().next().unwrap_or("");
    command == "\\restrict" || command == "\\unrestrict"
}

/// The data of a [`StatementKind::CopyData`] block, without its `\.` line.
fn copy_data<'a>(s: &Statement<'a>) -> &'a str {
    let data = &s.text[s.code_start - s.start..];
    let body = data.trim_end_matches('\n').trim_end_matches('\r');
    match body.strip_suffix("\\.") {
        Some(rest) if rest.is_empty() || rest.ends_with('\n') => rest,
        _ => data,
    }
}

/// Checks `text` and decides how it runs. `no_transaction` is the file's
/// `-- tidemark:no-transaction` marker (or another tool's); `guard` the
/// tracking table.
pub(crate) fn prepare<'a>(
    text: &'a SqlText,
    no_transaction: bool,
    guard: Option<Guard<'_>>,
) -> Result<Body<'a>> {
    let sql = text.sql.as_str();
    // Appending a statement tells whether the file ends inside a string,
    // quoted identifier, dollar quote, comment or parenthesis: then the probe
    // is swallowed. Sending such a file inside a batch could swallow
    // tidemark's own COMMIT.
    let all = split(sql);
    // Only the last statement can be left open, so only it is read again
    // with the probe (a whole 20 MB file is not lexed twice).
    let ends_clean = match all.last() {
        None => true,
        Some(last) => {
            let probe = format!("{}\n;select 1", last.text);
            // (COPY data is exempt: it runs in messages of its own, and its
            // end is checked below.)
            all.iter().any(|s| {
                matches!(
                    s.kind,
                    StatementKind::CopyFromStdin | StatementKind::CopyData
                )
            }) || last.kind == StatementKind::PsqlMeta
                || split_from(&probe, last.backslash_quotes)
                    .last()
                    .is_some_and(|s| s.start == last.text.len() + 2)
        }
    };
    if !ends_clean {
        let start = all.last().map_or(0, |s| s.code_start);
        return Err(refuse(
            Kind::Unterminated,
            text,
            start,
            "the file ends inside an unterminated string, quoted identifier, dollar quote ($$), /* comment or parenthesis that starts in this statement; close it".into(),
        ));
    }
    let code: Vec<&Statement<'_>> = all
        .iter()
        .filter(|s| s.kind != StatementKind::Empty)
        .collect();
    for (i, s) in code.iter().enumerate() {
        check_statement(text, &code, i, s, no_transaction, guard)?;
    }
    let code: Vec<&Statement<'_>> = code
        .into_iter()
        .filter(|s| !(s.kind == StatementKind::PsqlMeta && is_skippable_meta(s.code())))
        .collect();

    if no_transaction {
        for s in &code {
            if is_transaction_control(s.kind) {
                return Err(refuse(
                    Kind::TransactionControl,
                    text,
                    s.code_start,
                    format!(
                        "`{}` in a {NO_TRANSACTION_MARKER} migration is not supported; its statements already run one by one, each committing on its own: remove it",
                        first_line(s.code())
                    ),
                ));
            }
            if s.kind == StatementKind::CopyFromStdin {
                return Err(refuse(
                    Kind::UnsupportedStatement,
                    text,
                    s.code_start,
                    "COPY ... FROM stdin with inline data runs only in a migration with a transaction; move it to a migration without the no-transaction marker".into(),
                ));
            }
        }
        return Ok(Body::NoTransaction {
            statements: code.iter().map(|s| (s.code_start, s.code())).collect(),
        });
    }

    // A file that wraps itself in BEGIN; ... COMMIT; runs unwrapped inside
    // tidemark's transaction, with the transaction modes of its BEGIN.
    let (from, to, inner, modes) = match (code.first(), code.last()) {
        (Some(b), Some(c))
            if code.len() >= 2
                && b.kind == StatementKind::Begin
                && c.kind == StatementKind::Commit =>
        {
            (
                b.start + b.text.len(),
                c.start,
                &code[1..code.len() - 1],
                transaction_modes(b.code()),
            )
        }
        _ => (0, sql.len(), &code[..], None),
    };
    for s in inner {
        if is_transaction_control(s.kind) {
            return Err(refuse(
                Kind::TransactionControl,
                text,
                s.code_start,
                format!(
                    "`{}` would end tidemark's transaction in the middle of the migration; remove it (each migration already runs in its own transaction; a file wrapped in BEGIN; ... COMMIT; is fine)",
                    first_line(s.code())
                ),
            ));
        }
        if let StatementKind::NonTransactional(what) = s.kind {
            return Err(refuse(
                Kind::NeedsNoTransaction,
                text,
                s.code_start,
                format!(
                    "{what} cannot run inside a transaction; add the line `{NO_TRANSACTION_MARKER}` at the top of the file (its statements then run one by one, without a transaction), preferably in a migration of its own"
                ),
            ));
        }
    }
    if inner.iter().any(|s| s.kind == StatementKind::CopyFromStdin) {
        return Ok(Body::Copy {
            steps: copy_steps(text, inner)?,
            modes,
        });
    }
    // Skipped meta-command lines become comments of the same length, so
    // that positions still map to the file.
    let mut body: Cow<'_, str> = Cow::Borrowed(&sql[from..to]);
    for s in all.iter().filter(|s| s.kind == StatementKind::PsqlMeta) {
        if s.code_start >= from && s.code_start + 2 <= to {
            let at = s.code_start - from;
            body.to_mut().replace_range(at..at + 2, "--");
        }
    }
    Ok(Body::Transactional {
        sql: body,
        offset: from,
        statements: inner.iter().map(|s| s.code_start).collect(),
        modes,
    })
}

/// Groups statements into simple-query steps around each COPY and its data.
fn copy_steps<'a>(text: &SqlText, inner: &[&Statement<'a>]) -> Result<Vec<Step<'a>>> {
    let mut steps = Vec::new();
    let mut pending: Vec<(usize, &'a str)> = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        let s = inner[i];
        if s.kind == StatementKind::CopyFromStdin {
            if !pending.is_empty() {
                steps.push(Step::Sql(std::mem::take(&mut pending)));
            }
            // check_statement made sure the data follows.
            let data = inner.get(i + 1).map_or("", |d| copy_data(d));
            let inserts = copy_as_inserts(s.code(), data)
                .map_err(|why| refuse(Kind::UnsupportedStatement, text, s.code_start, why))?;
            steps.push(Step::Rows {
                offset: s.code_start,
                inserts,
            });
            i += 2;
            continue;
        }
        pending.push((s.code_start, s.code()));
        i += 1;
    }
    if !pending.is_empty() {
        steps.push(Step::Sql(pending));
    }
    Ok(steps)
}

/// Rows per INSERT statement made from COPY data.
const ROWS_PER_INSERT: usize = 500;

/// `COPY target FROM stdin` with text-format data (what pg_dump writes) as
/// `INSERT INTO target VALUES (...), ...` statements. Fields are split on
/// tabs; `\N` is NULL; every other field becomes an `E'...'` literal, whose
/// backslash escapes are COPY's (`\t`, `\n`, octal, `\x` hex, `\\`), except
/// `\v`, which is written as octal.
fn copy_as_inserts(statement: &str, data: &str) -> std::result::Result<Vec<String>, String> {
    let lower = statement.to_ascii_lowercase();
    let target = lower
        .find(" from ")
        .and_then(|at| statement.get(4..at))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "could not read the table of this COPY ... FROM stdin".to_string())?;
    let options = lower[lower.find(" from ").unwrap_or(0) + 6..]
        .trim()
        .trim_start_matches("stdin")
        .trim();
    if !options.is_empty() {
        return Err(format!(
            "COPY ... FROM stdin with options ({options}) is not supported; tidemark reads the text format pg_dump writes (tab-separated, \\N for NULL). Use INSERT statements, or dump with pg_dump's defaults"
        ));
    }
    let mut out = Vec::new();
    let mut sql = String::new();
    let mut rows = 0usize;
    for line in data.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        sql.push_str(if rows == 0 { "INSERT INTO " } else { ",\n(" });
        if rows == 0 {
            sql.push_str(target);
            sql.push_str(" VALUES\n(");
        }
        for (i, field) in line.split('\t').enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            if field == "\\N" {
                sql.push_str("NULL");
            } else {
                sql.push_str("E'");
                let mut chars = field.chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '\'' => sql.push_str("''"),
                        '\\' if chars.peek() == Some(&'v') => {
                            chars.next();
                            sql.push_str("\\013");
                        }
                        '\\' => {
                            sql.push('\\');
                            if let Some(next) = chars.next() {
                                sql.push(next);
                            }
                        }
                        c => sql.push(c),
                    }
                }
                sql.push('\'');
            }
        }
        sql.push(')');
        rows += 1;
        if rows == ROWS_PER_INSERT {
            out.push(std::mem::take(&mut sql));
            rows = 0;
        }
    }
    if rows > 0 {
        out.push(sql);
    }
    Ok(out)
}

/// `ISOLATION LEVEL SERIALIZABLE` from `BEGIN ISOLATION LEVEL SERIALIZABLE`
/// (also after `WORK`/`TRANSACTION`, or `START TRANSACTION`).
fn transaction_modes(begin: &str) -> Option<&str> {
    let mut rest = begin.trim_start();
    for word in ["BEGIN", "START", "WORK", "TRANSACTION"] {
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word) {
            let after = &rest[word.len()..];
            if after.is_empty()
                || after.starts_with(|c: char| c.is_whitespace() || c == '/' || c == '-')
            {
                rest = after.trim_start();
            }
        }
    }
    (!rest.is_empty()).then_some(rest)
}

/// Statements refused wherever they are, before anything runs.
fn check_statement(
    text: &SqlText,
    code: &[&Statement<'_>],
    i: usize,
    s: &Statement<'_>,
    no_transaction: bool,
    guard: Option<Guard<'_>>,
) -> Result<()> {
    let unsupported = |message: String| {
        Err(refuse(
            Kind::UnsupportedStatement,
            text,
            s.code_start,
            message,
        ))
    };
    match s.kind {
        StatementKind::CopyToStdout => unsupported(
            "COPY ... TO STDOUT sends rows back to the client, which a migration cannot take (and it would stop the rest of the deploy); copy into a table instead (INSERT INTO ... SELECT), or remove it".into(),
        ),
        StatementKind::CopyFromStdin
            if code.get(i + 1).is_none_or(|d| d.kind != StatementKind::CopyData) =>
        {
            unsupported("COPY ... FROM stdin needs its data on the lines after it, ended by a line `\\.` (as pg_dump writes it); add the data, or load it with INSERT".into())
        }
        StatementKind::CopyData
            if i == 0 || code[i - 1].kind != StatementKind::CopyFromStdin =>
        {
            unsupported("this looks like COPY data without its COPY ... FROM stdin statement".into())
        }
        StatementKind::CopyData if !s.text.trim_end().ends_with("\\.") => unsupported(
            "the data of the COPY ... FROM stdin before it does not end with a line `\\.`; add that line after the last row".into(),
        ),
        StatementKind::PsqlMeta if !is_skippable_meta(s.code()) => unsupported(format!(
            "`{}` is a psql meta-command, not SQL; tidemark sends SQL only: remove it (inline what \\i or \\ir would include; \\connect and \\set have no equivalent in a migration)",
            first_line(s.code())
        )),
        StatementKind::Other if !no_transaction => {
            if let Some(false) = standard_conforming_strings(s.code()) {
                return unsupported("SET standard_conforming_strings = off changes how the rest of the file is read, which works only when each statement is sent on its own: add `-- tidemark:no-transaction` to the file, or use E'...' strings and keep the setting on".into());
            }
            check_guard(text, s, guard)
        }
        _ => check_guard(text, s, guard),
    }
}

fn check_guard(text: &SqlText, s: &Statement<'_>, guard: Option<Guard<'_>>) -> Result<()> {
    let Some(g) = guard else { return Ok(()) };
    for (schema, table) in tables_changed(s.code()) {
        if table == g.table && schema.as_deref().is_none_or(|sc| sc == g.schema) {
            return Err(refuse(
                Kind::TrackingTableTouched,
                text,
                s.code_start,
                format!(
                    "this statement changes the table {table}, which is tidemark's tracking table ({}.{}); a migration must not touch it, so nothing was run. If your app has its own table of that name, keep tidemark's history in another table",
                    g.schema, g.table
                ),
            ));
        }
    }
    Ok(())
}

fn is_transaction_control(kind: StatementKind) -> bool {
    matches!(
        kind,
        StatementKind::Begin
            | StatementKind::Commit
            | StatementKind::Rollback
            | StatementKind::OtherTransactionControl
    )
}

fn first_line(code: &str) -> &str {
    let line = code.lines().next().unwrap_or(code).trim();
    line.get(..60).unwrap_or(line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(sql: &str) -> SqlText {
        SqlText {
            file: "001_x.sql".into(),
            sql: sql.into(),
            first_line: 0,
        }
    }

    #[test]
    fn plain_file_runs_whole() {
        let t = text("create table a(x int);\ncreate index on a(x);\n");
        let Body::Transactional {
            sql,
            offset,
            statements,
            modes,
        } = prepare(&t, false, None).unwrap()
        else {
            panic!()
        };
        assert_eq!((&*sql, offset, modes), (t.sql.as_str(), 0, None));
        assert_eq!(statements, [0, 23]);
    }

    #[test]
    fn self_wrapped_file_is_unwrapped() {
        let t = text("-- header\nBEGIN;\ncreate table a(x int);\nCOMMIT;\n");
        let Body::Transactional { sql, .. } = prepare(&t, false, None).unwrap() else {
            panic!()
        };
        assert_eq!(sql, "\ncreate table a(x int);");
    }

    #[test]
    fn transaction_control_inside_is_refused_with_line() {
        let err = prepare(
            &text("create table a();\ncommit;\ncreate table b();\n"),
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(err.code(), "E_TRANSACTION_CONTROL");
        assert_eq!(err.line(), Some(2));
        assert!(
            err.message().starts_with("001_x.sql:2: `commit`"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn concurrent_index_needs_the_marker() {
        let sql = "create table a(x int);\ncreate index concurrently i on a(x);\n";
        let err = prepare(&text(sql), false, None).unwrap_err();
        assert_eq!(err.code(), "E_NEEDS_NO_TRANSACTION");
        assert_eq!(err.line(), Some(2));
        let t = text(sql);
        let Body::NoTransaction { statements } = prepare(&t, true, None).unwrap() else {
            panic!()
        };
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].1, "create index concurrently i on a(x)");
    }

    #[test]
    fn unterminated_dollar_quote_is_refused() {
        let err = prepare(&text("select 1;\ndo $$ begin perform 1;\n"), false, None).unwrap_err();
        assert_eq!(err.code(), "E_UNTERMINATED_SQL");
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn wrapper_modes_are_kept() {
        let t = text("BEGIN ISOLATION LEVEL SERIALIZABLE;\ncreate table a();\nCOMMIT;\n");
        let Body::Transactional { modes, .. } = prepare(&t, false, None).unwrap() else {
            panic!()
        };
        assert_eq!(modes, Some("ISOLATION LEVEL SERIALIZABLE"));
        let t = text("START TRANSACTION READ WRITE;\nselect 1;\nEND;\n");
        let Body::Transactional { modes, .. } = prepare(&t, false, None).unwrap() else {
            panic!()
        };
        assert_eq!(modes, Some("READ WRITE"));
    }

    #[test]
    fn statements_a_batch_cannot_carry_are_refused() {
        // Regression: COPY ... TO STDOUT committed on the server while the
        // client reported the migration rolled back.
        let err = prepare(
            &text("select 1;\nCOPY (SELECT 1) TO stdout;\n"),
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (err.code(), err.line()),
            ("E_UNSUPPORTED_STATEMENT", Some(2))
        );
        let err = prepare(&text("COPY t FROM stdin;\n"), false, None).unwrap_err();
        assert_eq!(err.code(), "E_UNSUPPORTED_STATEMENT");
        let err = prepare(&text("select 1;\n\\i other.sql\n"), false, None).unwrap_err();
        assert_eq!(
            (err.code(), err.line()),
            ("E_UNSUPPORTED_STATEMENT", Some(2))
        );
        let err = prepare(
            &text("SET standard_conforming_strings = off;\nselect 'a\\'';\n"),
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(err.code(), "E_UNSUPPORTED_STATEMENT");
    }

    #[test]
    fn pg_dump_restrict_and_copy() {
        let sql = "\\restrict abc123\nSET x = 1;\nCREATE TABLE t (a int, b text);\nCOPY public.t (a, b) FROM stdin;\n1\tone\n2\ttwo\n\\.\n\nCREATE INDEX i ON t (a);\n\\unrestrict abc123\n";
        let t = text(sql);
        let Body::Copy { steps, .. } = prepare(&t, false, None).unwrap() else {
            panic!()
        };
        assert_eq!(steps.len(), 3, "{steps:?}");
        let Step::Rows { inserts, .. } = &steps[1] else {
            panic!()
        };
        assert_eq!(
            inserts,
            &["INSERT INTO public.t (a, b) VALUES\n(E'1', E'one'),\n(E'2', E'two')"]
        );
        let err = prepare(
            &text("COPY t FROM stdin WITH (FORMAT csv);\n1,2\n\\.\n"),
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(err.code(), "E_UNSUPPORTED_STATEMENT");
        let Step::Sql(last) = &steps[2] else { panic!() };
        assert_eq!(
            last.iter().map(|s| s.1).collect::<Vec<_>>(),
            ["CREATE INDEX i ON t (a)"]
        );
        // Without data, \restrict lines become comments of the same length.
        let t = text("\\restrict abc\ncreate table a();\n\\unrestrict abc\n");
        let Body::Transactional { sql, .. } = prepare(&t, false, None).unwrap() else {
            panic!()
        };
        assert_eq!(&*sql, "--estrict abc\ncreate table a();\n--nrestrict abc\n");
    }

    #[test]
    fn the_tracking_table_is_refused() {
        let guard = Some(Guard {
            schema: "public",
            table: "schema_migrations",
        });
        for sql in [
            "ALTER TABLE schema_migrations ADD COLUMN x int;",
            "drop table if exists public.schema_migrations;",
            "CREATE TABLE \"schema_migrations\" (version bigint);",
        ] {
            let err = prepare(&text(sql), false, guard).unwrap_err();
            assert_eq!(err.code(), "E_TRACKING_TABLE_TOUCHED", "{sql}");
            // The host names its own option for the table (no CLI flag here).
            assert!(err
                .message()
                .ends_with("keep tidemark's history in another table"));
        }
        for sql in [
            "ALTER TABLE other.schema_migrations ADD x int;",
            "CREATE TABLE schema_migrations_old ();",
        ] {
            assert!(prepare(&text(sql), false, guard).is_ok(), "{sql}");
        }
    }

    #[test]
    fn trailing_line_comment_without_newline_is_fine() {
        assert!(prepare(&text("select 1; -- done"), false, None).is_ok());
    }
}
