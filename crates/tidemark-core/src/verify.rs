//! `verify`: replays the migrations folder on a scratch database (the host
//! gives a fresh embedded one): each migration up in order; a reversible one
//! then down, checked to leave the schema as it was before its up (a catalog
//! fingerprint), and up again. The first migration that fails stops the run
//! with its file, line, column and SQLSTATE, as `deploy` reports it; so does
//! the first down that does not restore the schema (its up cannot run again
//! on what it left).
//!
//! Before the replay, the lint (feature `lint`, see [`crate::lint`]) reports
//! what `deploy` would refuse and squawk's migration-safety findings; a
//! folder `deploy` would refuse is not replayed.
//!
//! On the target database (`VerifyOptions::target`) it replays nothing:
//! it reads the tracking table once, without the lock, and reports drift,
//! missing files and out-of-order migrations as `deploy` decides them;
//! with `rehearse` it then runs the pending migrations in one transaction
//! that it always rolls back.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::check::{Body, Step};
use crate::db::{self, quote_ident, FirstRead};
use crate::engine::{down_items, prepare_up, up_items, Options};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::plan::{self, Policy};
use crate::report::{
    CreateDatabaseReport, Event, Finding, NotReversed, PlannedMigration, Rehearsal, Reporter,
    Severity, TargetCheck, VerifyReport,
};
use crate::source::{Migration, SourceFile, SqlText};

/// What `verify` does beyond the replay on a scratch database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// `--strict`: lint warnings are errors.
    pub strict: bool,
    /// The client is connected to the target database (`verify --url`):
    /// check it as `deploy` would, without the lock and without writing,
    /// instead of replaying.
    pub target: bool,
    /// `--rehearse` (with `target`): run the pending migrations there in one
    /// transaction that is always rolled back.
    pub rehearse: bool,
    /// `db create` drops the scratch database `verify` created on a
    /// `--shadow-url` server (its name starts with [`SCRATCH_PREFIX`]).
    pub drop_scratch: bool,
}

/// The name of every scratch database `verify` creates on a shadow server
/// starts with this; it drops no other.
pub const SCRATCH_PREFIX: &str = "tidemark_verify_";

/// The rehearsal's `lock_timeout` when none is configured.
const REHEARSAL_LOCK_TIMEOUT_MS: u64 = 2_000;

/// One line per schema object in user schemas: schemas, relations (tables,
/// views, sequences, ...), columns with type, nullability and default,
/// constraints, indexes, functions, triggers, view definitions and enum
/// labels. Sorted, so two fingerprints compare line by line.
const FINGERPRINT: &str = "\
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') \
AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%') \
SELECT line AS tidemark_fingerprint FROM ( \
SELECT 'schema ' || nspname AS line FROM ns \
UNION ALL SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind <> 'i' \
UNION ALL SELECT 'column ' || c.oid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) \
  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') \
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace \
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
UNION ALL SELECT 'constraint ' || co.conrelid::regclass::text || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid) \
  FROM pg_constraint co JOIN ns ON ns.oid = co.connamespace \
UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN ns ON ns.oid = c.relnamespace \
UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(coalesce(p.prosrc, '')) FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace \
UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace WHERE NOT t.tgisinternal \
UNION ALL SELECT 'view ' || c.oid::regclass::text || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') \
UNION ALL SELECT 'enum ' || t.oid::regtype::text || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN ns ON ns.oid = t.typnamespace GROUP BY t.oid \
) objects ORDER BY 1";

async fn fingerprint(client: &Client) -> Result<Vec<String>> {
    let messages = client
        .simple_query(FINGERPRINT)
        .await
        .map_err(|e| Error::database("could not read the schema's catalog", &e))?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect())
}

/// Lines of `a` not in `b` (both sorted).
fn missing(a: &[String], b: &[String]) -> Vec<String> {
    a.iter()
        .filter(|l| b.binary_search(l).is_err())
        .cloned()
        .collect()
}

/// The lint's findings (reported as events) and the migrations to replay.
/// Without the linter (feature `lint` off) the folder's own checks still
/// stop the replay, and a warning says that nothing was linted.
fn checked<R: Reporter + ?Sized>(
    files: Vec<SourceFile>,
    options: &Options,
    v: &VerifyOptions,
    reporter: &R,
) -> Result<(Vec<Migration>, Vec<Finding>)> {
    #[cfg(feature = "lint")]
    {
        let (migrations, findings) = crate::lint::lint_folder(files, options, v.strict);
        for f in &findings {
            reporter.report(Event::Finding(f.clone()));
        }
        Ok((migrations, findings))
    }
    #[cfg(not(feature = "lint"))]
    {
        let _ = (options, v);
        reporter.report(Event::Warning {
            code: "W_NO_LINT".into(),
            message: "this build of tidemark has no linter (feature `lint`): only the replay ran"
                .into(),
            file: None,
        });
        Ok((crate::engine::load(files, reporter)?, Vec::new()))
    }
}

/// `verify`: on the target (`v.target`), [`target`]; else lints `files`
/// and replays them on the scratch database `client` is connected to.
pub(crate) async fn verify<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    v: &VerifyOptions,
    reporter: &R,
) -> Result<VerifyReport> {
    if v.target {
        return target(client, files, options, v, reporter).await;
    }
    let t = options.tracking()?;
    let s = options.session();
    let (migrations, findings) = checked(files, options, v, reporter)?;
    let refused = findings.iter().filter(|f| f.rule.starts_with("E_")).count();
    if refused > 0 {
        return Ok(VerifyReport {
            migrations: migrations.len(),
            findings,
            not_replayed: Some(format!(
                "deploy would refuse {refused} of the files as they are, so nothing was replayed; fix {} first",
                if refused == 1 { "it" } else { "them" }
            )),
            ..VerifyReport::default()
        });
    }
    if let FirstRead::Rows(rows) = db::first_read(client, &t, "").await?.0 {
        if !rows.is_empty() {
            return Err(Error::new(
                Kind::InvalidOption,
                format!(
                    "verify replays every migration on an empty scratch database, and this one has {} applied; nothing was run",
                    rows.len()
                ),
            ));
        }
    }
    let (mut lock, _) = db::lock_and_read(client, &t, s, reporter).await?;
    let result = async {
        let mut report = VerifyReport {
            migrations: migrations.len(),
            findings,
            ..VerifyReport::default()
        };
        let max = options.max_message_bytes;
        for m in &migrations {
            let before = if m.down.is_some() {
                Some(fingerprint(client).await?)
            } else {
                None
            };
            let up = up_items(&[(m, None)], options, &mut Vec::new())?;
            db::run_items(&mut lock, &t, s, &up, max, false, reporter).await?;
            let Some(before) = before else {
                report.replayed += 1;
                continue;
            };
            report.reversible += 1;
            let down = down_items(&[m], options)?;
            db::run_items(&mut lock, &t, s, &down, max, false, reporter).await?;
            let after = fingerprint(client).await?;
            if after != before {
                report.not_reversed.push(NotReversed {
                    version: m.version.clone(),
                    file: m.file().to_string(),
                    left_behind: missing(&after, &before),
                    not_restored: missing(&before, &after),
                });
                // Its up cannot run again on what the down left, and the
                // migrations after it would run on a schema no deploy makes.
                break;
            }
            report.replayed += 1;
            let again = up_items(&[(m, None)], options, &mut Vec::new())?;
            db::run_items(&mut lock, &t, s, &again, max, false, reporter).await?;
        }
        Ok::<_, Error>(report)
    }
    .await;
    lock.release().await;
    result
}

/// The finding for a problem `deploy` would refuse on the target, from the
/// warning the relaxed plan gave for it.
fn target_finding(code: &str, message: &str, file: Option<&str>) -> Finding {
    Finding {
        file: file.unwrap_or_default().to_string(),
        version: None,
        line: None,
        column: None,
        rule: code.replacen("W_", "E_", 1),
        severity: Severity::Error,
        message: message.to_string(),
        safer: None,
        docs: None,
    }
}

/// `verify --url`: what `deploy` would decide on the target database, from
/// one read of the tracking table, without the lock and without writing;
/// with `rehearse`, the pending migrations run in one transaction that is
/// rolled back.
async fn target<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    v: &VerifyOptions,
    reporter: &R,
) -> Result<VerifyReport> {
    let t = options.tracking()?;
    // The scratch run reported the folder's warnings already.
    let migrations = crate::source::Migrations::from_files(files)?.migrations;
    let rows = match crate::adopt::first_read(client, &t).await? {
        FirstRead::Rows(rows) => rows,
        FirstRead::NoTable => Vec::new(),
        // Explained read-only, like `plan` does.
        FirstRead::Foreign => return Err(db::explain_foreign(client, &t).await),
    };
    // Every check relaxed turns each refusal into a warning, so all of them
    // are found, each with the message deploy would give.
    let relaxed = Policy {
        allow_drift: true,
        allow_missing: true,
        allow_out_of_order: true,
    };
    let p = plan::plan_up(&migrations, &rows, relaxed, None)?;
    let mut findings = Vec::new();
    for w in &p.warnings {
        if let Event::Warning {
            code,
            message,
            file,
        } = w
        {
            let f = target_finding(code, message, file.as_deref());
            reporter.report(Event::Finding(f.clone()));
            findings.push(f);
        }
    }
    let mut check = TargetCheck {
        applied: p.applied,
        pending: p
            .pending
            .iter()
            .map(|(m, _)| PlannedMigration {
                version: m.version.clone(),
                name: m.name.clone(),
                file: m.file().to_string(),
                transaction: !m.no_transaction,
            })
            .collect(),
        rehearsal: None,
    };
    if v.rehearse {
        let pending: Vec<&Migration> = p.pending.iter().map(|(m, _)| *m).collect();
        check.rehearsal = Some(rehearse(client, &pending, options).await?);
    }
    Ok(VerifyReport {
        migrations: migrations.len(),
        findings,
        target: Some(check),
        ..VerifyReport::default()
    })
}

/// An error of the rehearsal at byte `offset` of `text` (when known).
fn rehearsal_error(m: &Migration, text: &SqlText, offset: Option<usize>, db: &DbDetails) -> Error {
    let (line, column) = offset.map(|o| text.line_col(o)).unzip();
    let at = match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    };
    let state = db.sql_state_suffix();
    let lock = if db.sql_state.as_deref() == Some("55P03") {
        "; another session holds a lock on what it changes, and a deploy now would wait for it"
    } else {
        ""
    };
    Error::new(
        Kind::MigrationFailed,
        format!(
            "rehearsal on the target: migration {}{at} failed: {}{state}{lock}; everything the rehearsal ran was rolled back, so the target is unchanged",
            text.file, db.message
        ),
    )
    .at(&text.file, line, column)
    .with_version(&m.version)
    .with_db(db)
}

/// Runs `statements` (byte offset in the file text, code) inside the
/// rehearsal's transaction; on failure, rolls back and says where.
async fn rehearse_statements(
    client: &Client,
    m: &Migration,
    statements: &[(usize, &str)],
) -> Result<()> {
    if let Err((e, offset)) = db::run_statements(client, statements).await {
        let db = DbDetails::from_error(&e);
        let _ = client.simple_query("ROLLBACK").await;
        return Err(rehearsal_error(m, &m.up, offset, &db));
    }
    Ok(())
}

/// Runs `pending` in one transaction with a short `lock_timeout`, then rolls
/// it back whatever happened. Stops before the first migration that runs
/// without a transaction (a transaction cannot hold it).
async fn rehearse(client: &Client, pending: &[&Migration], options: &Options) -> Result<Rehearsal> {
    let lock_timeout_ms = options
        .lock_timeout_ms
        .unwrap_or(REHEARSAL_LOCK_TIMEOUT_MS)
        .max(1);
    // Each migration starts from the same settings, as in a deploy.
    let settings = format!("SET LOCAL lock_timeout = '{lock_timeout_ms}ms'");
    let mut bodies = Vec::new();
    for m in pending {
        bodies.push((*m, prepare_up(m, options)?));
    }
    client
        .simple_query(&format!("BEGIN; {settings}"))
        .await
        .map_err(|e| Error::database("could not begin the rehearsal's transaction", &e))?;
    let mut report = Rehearsal {
        lock_timeout_ms,
        ..Rehearsal::default()
    };
    for (m, body) in &bodies {
        match body {
            Body::NoTransaction { .. } => {
                report.stopped_before = Some(m.file().to_string());
                break;
            }
            Body::Transactional { sql, offset, .. } => {
                let statements: Vec<(usize, &str)> = crate::lexer::split(sql)
                    .iter()
                    .filter(|s| s.kind != crate::lexer::StatementKind::Empty)
                    .map(|s| (offset + s.code_start, s.code()))
                    .collect();
                rehearse_statements(client, m, &statements).await?;
            }
            Body::Copy { steps, .. } => {
                for step in steps {
                    match step {
                        Step::Sql(statements) => {
                            rehearse_statements(client, m, statements).await?;
                        }
                        Step::Rows { offset, inserts } => {
                            let rows: Vec<(usize, &str)> =
                                inserts.iter().map(|i| (*offset, i.as_str())).collect();
                            rehearse_statements(client, m, &rows).await?;
                        }
                    }
                }
            }
        }
        report.rehearsed += 1;
        let reset = format!("RESET ALL; {settings}");
        rehearse_statements(client, m, &[(0, reset.as_str())]).await?;
    }
    client
        .simple_query("ROLLBACK")
        .await
        .map_err(|e| Error::database("could not roll the rehearsal back", &e))?;
    Ok(report)
}

/// Drops a scratch database `verify` created on a shadow server (over a
/// connection to another database of that server). Only names starting
/// with [`SCRATCH_PREFIX`] are dropped.
pub(crate) async fn drop_scratch(client: &Client, name: &str) -> Result<CreateDatabaseReport> {
    if !name.starts_with(SCRATCH_PREFIX) {
        return Err(Error::new(
            Kind::InvalidOption,
            format!("refusing to drop the database {name:?}: verify drops only the scratch databases it creates (named {SCRATCH_PREFIX}...)"),
        ));
    }
    client
        .simple_query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .map_err(|e| Error::database(&format!("could not drop the scratch database {name}"), &e))?;
    Ok(CreateDatabaseReport {
        database: name.to_string(),
        created: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_the_lines_one_side_lacks() {
        let a = vec!["column t.a int".to_string(), "relation t r".to_string()];
        let b = vec!["relation t r".to_string()];
        assert_eq!(missing(&a, &b), vec!["column t.a int".to_string()]);
        assert!(missing(&b, &a).is_empty());
    }
}
