//! `verify`: replays the migrations folder on a scratch database (the host
//! gives a fresh embedded one): each migration up in order; a reversible one
//! then down, checked to leave the schema as it was before its up (a catalog
//! fingerprint), and up again. The first migration that fails stops the run
//! with its file, line, column and SQLSTATE, as `deploy` reports it; so does
//! the first down that does not restore the schema (its up cannot run again
//! on what it left).

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::{self, FirstRead};
use crate::engine::{down_items, load, up_items, Options};
use crate::error::{Error, Kind, Result};
use crate::report::{NotReversed, Reporter, VerifyReport};
use crate::source::SourceFile;

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

/// Replays `files` on the scratch database `client` is connected to.
pub(crate) async fn verify<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<VerifyReport> {
    let t = options.tracking()?;
    let s = options.session();
    let migrations = load(files, reporter)?;
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
