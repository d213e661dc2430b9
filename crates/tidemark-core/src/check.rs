//! Pre-flight checks on SQL before anything is sent: transaction control and
//! statements that cannot run in a transaction are refused here, with the
//! file and line, so a bad migration never half-runs.

use crate::error::{Error, Kind, Result};
use crate::lexer::{split, StatementKind};
use crate::source::{SqlText, NO_TRANSACTION_MARKER};

/// How a piece of SQL will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// Inside tidemark's own transaction: `sql` is the text to send (a
    /// self-wrapping `BEGIN; ... COMMIT;` removed), starting at byte `offset`
    /// of the file text. `statements` are the byte offsets (in the file text)
    /// where each statement's code starts, to name the line of a failing
    /// statement when the server gives no position.
    Transactional {
        sql: &'a str,
        offset: usize,
        statements: Vec<usize>,
    },
    /// Outside any transaction, one statement per message: (byte offset in
    /// the file text, code).
    NoTransaction { statements: Vec<(usize, &'a str)> },
}

fn refuse(kind: Kind, text: &SqlText, offset: usize, message: String) -> Error {
    let (line, col) = text.line_col(offset);
    Error::new(kind, format!("{}:{line}: {message}", text.file)).at(
        &text.file,
        Some(line),
        Some(col),
    )
}

/// Checks `text` and decides how it runs. `no_transaction` is the file's
/// `-- tidemark:no-transaction` marker.
pub(crate) fn prepare(text: &SqlText, no_transaction: bool) -> Result<Body<'_>> {
    let sql = text.sql.as_str();
    // Appending a statement tells whether the file ends inside a string,
    // quoted identifier, dollar quote or comment: then the probe is swallowed.
    // Sending such a file inside a batch could swallow tidemark's own COMMIT.
    let probe = format!("{sql}\n;select 1");
    let ends_clean = split(&probe)
        .last()
        .is_some_and(|s| s.start == sql.len() + 2);
    if !ends_clean {
        let start = split(sql).last().map_or(0, |s| s.code_start);
        return Err(refuse(
            Kind::Unterminated,
            text,
            start,
            "the file ends inside an unterminated string, quoted identifier, dollar quote ($$) or /* comment that starts in this statement; close it".into(),
        ));
    }
    let all = split(sql);
    let code: Vec<_> = all
        .iter()
        .filter(|s| s.kind != StatementKind::Empty)
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
        }
        return Ok(Body::NoTransaction {
            statements: code.iter().map(|s| (s.code_start, s.code())).collect(),
        });
    }

    // A file that wraps itself in BEGIN; ... COMMIT; runs unwrapped inside
    // tidemark's transaction.
    let (from, to, inner) = match (code.first(), code.last()) {
        (Some(b), Some(c))
            if code.len() >= 2
                && b.kind == StatementKind::Begin
                && c.kind == StatementKind::Commit =>
        {
            (b.start + b.text.len(), c.start, &code[1..code.len() - 1])
        }
        _ => (0, sql.len(), &code[..]),
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
    Ok(Body::Transactional {
        sql: &sql[from..to],
        offset: from,
        statements: inner.iter().map(|s| s.code_start).collect(),
    })
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
        } = prepare(&t, false).unwrap()
        else {
            panic!()
        };
        assert_eq!((sql, offset), (t.sql.as_str(), 0));
        assert_eq!(statements, [0, 23]);
    }

    #[test]
    fn self_wrapped_file_is_unwrapped() {
        let t = text("-- header\nBEGIN;\ncreate table a(x int);\nCOMMIT;\n");
        let Body::Transactional { sql, .. } = prepare(&t, false).unwrap() else {
            panic!()
        };
        assert_eq!(sql, "\ncreate table a(x int);");
    }

    #[test]
    fn transaction_control_inside_is_refused_with_line() {
        let err = prepare(
            &text("create table a();\ncommit;\ncreate table b();\n"),
            false,
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
        let err = prepare(&text(sql), false).unwrap_err();
        assert_eq!(err.code(), "E_NEEDS_NO_TRANSACTION");
        assert_eq!(err.line(), Some(2));
        let t = text(sql);
        let Body::NoTransaction { statements } = prepare(&t, true).unwrap() else {
            panic!()
        };
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].1, "create index concurrently i on a(x)");
    }

    #[test]
    fn unterminated_dollar_quote_is_refused() {
        let err = prepare(&text("select 1;\ndo $$ begin perform 1;\n"), false).unwrap_err();
        assert_eq!(err.code(), "E_UNTERMINATED_SQL");
        assert_eq!(err.line(), Some(2));
    }

    #[test]
    fn trailing_line_comment_without_newline_is_fine() {
        assert!(prepare(&text("select 1; -- done"), false).is_ok());
    }
}
