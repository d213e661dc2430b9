//! `plan` (`deploy --dry-run`): what `deploy` would do now and the messages
//! it would send, built by the same code that builds them for `deploy`
//! ([`db::lock_and_read_sql`], [`db::build_batch`], [`db::next_run`]), after
//! the same checks. Reads the tracking table once; takes no lock, writes
//! nothing.

use tokio_postgres::Client;

use crate::adopt;
use crate::check::{Body, Step};
use crate::db::{self, FirstRead, Item};
use crate::engine::{load, prepare_up, up_items, Options, Prepared};
use crate::error::Result;
use crate::plan::{self, Policy};
use crate::report::{PlanReport, PlannedMessage, PlannedMigration, Reporter};
use crate::source::SourceFile;

/// Plans a deploy of `files`.
pub(crate) async fn plan<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<PlanReport> {
    let t = options.tracking()?;
    let s = options.session();
    let migrations = load(files, reporter)?;
    // deploy's first read: the probe for other tools' tables, then the rows.
    let read = format!(
        "{}{}",
        adopt::probe_sql(&t),
        db::select_rows_sql(&t.qualified)
    );
    let first = adopt::first_read(client, &t).await?;
    let (rows, exists) = match first {
        FirstRead::Rows(rows) => (rows, true),
        FirstRead::NoTable => (Vec::new(), false),
        // Explained read-only: plan takes no lock and changes nothing.
        FirstRead::Foreign => return Err(db::explain_foreign(client, &t).await),
    };
    let p = plan::plan_up(&migrations, &rows, Policy::default(), None)?;
    for w in &p.warnings {
        reporter.report(w.clone());
    }
    let mut report = PlanReport {
        already_applied: p.applied,
        up_to_date: p.pending.is_empty(),
        creates_tracking_table: !exists,
        complete: true,
        messages: vec![PlannedMessage {
            purpose: "read the tracking table and look for other tools' tables (no lock)".into(),
            sql: read,
        }],
        ..PlanReport::default()
    };
    if p.pending.is_empty() {
        return Ok(report);
    }
    // The same refusals as deploy: bad SQL stops the plan too.
    let mut prepared: Prepared<'_> = Vec::new();
    for (m, _) in &p.pending {
        prepared.push((m, prepare_up(m, options)?));
    }
    let items = up_items(&p.pending, options, &mut prepared)?;
    report.pending = items
        .iter()
        .map(|i| PlannedMigration {
            version: i.key.to_string(),
            name: i.name.to_string(),
            file: i.text.file.clone(),
            transaction: !matches!(i.body, Body::NoTransaction { .. }),
        })
        .collect();
    let table = if exists {
        "upgrade the tracking table if it is older"
    } else {
        "create the tracking table"
    };
    report.messages.push(PlannedMessage {
        purpose: format!("take the migration lock, {table}, and read it again"),
        sql: db::lock_and_read_sql(&t, s),
    });
    let mut unlocked = false;
    let mut start = 0;
    while start < items.len() {
        let end = db::next_run(&items, start, options.max_message_bytes);
        let item = &items[start];
        match &item.body {
            Body::NoTransaction { statements } => {
                report.complete = false;
                for (k, (_, code)) in statements.iter().enumerate() {
                    report.messages.push(PlannedMessage {
                        purpose: format!(
                            "{} statement {} of {}, without a transaction (tracking updates between statements not shown)",
                            item.text.file,
                            k + 1,
                            statements.len()
                        ),
                        sql: code.to_string(),
                    });
                }
            }
            Body::Copy { steps, .. } => {
                report.complete = false;
                for step in steps {
                    let sql = match step {
                        Step::Sql(statements) => statements
                            .iter()
                            .map(|(_, c)| format!("{c}\n;\n"))
                            .collect::<String>(),
                        Step::Rows { inserts, .. } => inserts.join(";\n"),
                    };
                    report.messages.push(PlannedMessage {
                        purpose: format!(
                            "{} in its transaction, in several messages (COPY data as INSERTs; BEGIN, COMMIT and the tracking row not shown)",
                            item.text.file
                        ),
                        sql,
                    });
                }
            }
            Body::Transactional { .. } => {
                let trailer = db::batch_trailer(&t, s, end == items.len());
                unlocked = !trailer.is_empty();
                let (sql, _) = db::build_batch(&items[start..end], &t, s, &trailer);
                report.messages.push(PlannedMessage {
                    purpose: batch_purpose(&items[start..end], unlocked),
                    sql,
                });
            }
        }
        start = end;
    }
    if !unlocked && !s.pool_safe {
        report.messages.push(PlannedMessage {
            purpose: "release the migration lock".into(),
            sql: db::unlock_sql(&t),
        });
    }
    for m in &mut report.messages {
        let (sql, hidden) = hide_passwords(&m.sql);
        if hidden {
            m.sql = sql;
            report.redacted = true;
        }
    }
    Ok(report)
}

fn batch_purpose(items: &[Item<'_>], unlocks: bool) -> String {
    let versions: Vec<&str> = items.iter().map(|i| i.key).collect();
    format!(
        "apply {}, each in its own transaction with its tracking row{}",
        versions.join(", "),
        if unlocks {
            ", and release the lock"
        } else {
            ""
        }
    )
}

/// Replaces the string literal after each `PASSWORD` keyword (`CREATE ROLE
/// ... PASSWORD 'x'`, `ALTER USER ... WITH PASSWORD E'x'`) with `'****'`.
fn hide_passwords(sql: &str) -> (String, bool) {
    let lower = sql.to_ascii_lowercase();
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut hidden = false;
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let at = from + found;
        from = at + "password".len();
        let word_start = at == 0 || !is_word(bytes[at - 1]);
        if !word_start || bytes.get(from).is_some_and(|b| is_word(*b)) {
            continue;
        }
        let mut i = from;
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        let literal = i;
        if matches!(bytes.get(i), Some(b'E' | b'e')) && bytes.get(i + 1) == Some(&b'\'') {
            i += 1;
        }
        if bytes.get(i) != Some(&b'\'') {
            continue;
        }
        // The literal ends at a quote that is not doubled (or escaped with
        // a backslash in an E'' string: skipping `\'` is safe either way).
        let mut j = i + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'\'' if bytes.get(j + 1) == Some(&b'\'') => j += 2,
                b'\'' => break,
                _ => j += 1,
            }
        }
        if j >= bytes.len() {
            continue;
        }
        out.push_str(&sql[copied..literal]);
        out.push_str("'****'");
        copied = j + 1;
        from = j + 1;
        hidden = true;
    }
    out.push_str(&sql[copied..]);
    (out, hidden)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_literals_are_hidden_and_nothing_else() {
        let (sql, hidden) =
            hide_passwords("CREATE ROLE app LOGIN PASSWORD 'it''s secret';\nSELECT 'password';");
        assert_eq!(
            sql,
            "CREATE ROLE app LOGIN PASSWORD '****';\nSELECT 'password';"
        );
        assert!(hidden);
        let (sql, _) = hide_passwords("alter user x with password E'a\\'b' valid until 'infinity'");
        assert_eq!(
            sql,
            "alter user x with password '****' valid until 'infinity'"
        );
        let plain = "SELECT password_hash FROM users";
        assert_eq!(hide_passwords(plain), (plain.to_string(), false));
    }
}
