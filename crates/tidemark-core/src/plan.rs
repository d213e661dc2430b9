//! Pure planning (style rule 1): rows of the tracking table plus the files
//! give what to apply, what drifted, what is missing and what is out of
//! order. No database here; every rule is unit-tested with hand-built input.

use crate::error::{Error, Kind, Result};
use crate::report::{AcceptedEdit, ChecksumState, Event, MigrationState, StatusReport, StatusRow};
use crate::source::{cmp_versions, Migration};

/// One row of the tracking table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedRow {
    pub version: String,
    pub name: Option<String>,
    pub checksum: Option<String>,
    /// Server time, ISO 8601.
    pub applied_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// `false` for a `failed` row.
    pub completed: bool,
    pub error_message: Option<String>,
    /// For a failed no-transaction migration: statements that completed.
    pub statements_done: Option<usize>,
    /// Checksum of those statements, to resume only when they are unchanged.
    pub statements_checksum: Option<String>,
    /// An edit accepted with `accept`: the checksum that was applied (the
    /// row's `checksum` is then the accepted file's).
    pub accepted: Option<AcceptedRow>,
}

/// The `accepted_*` columns of a tracking row (see [`crate::accept`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedRow {
    pub from: String,
    pub at: Option<String>,
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// Which checks are relaxed. Everything is strict by default; `deploy`
/// always is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Applied files that changed are a warning instead of an error.
    pub allow_drift: bool,
    /// Applied migrations whose file is gone are a warning.
    pub allow_missing: bool,
    /// Pending migrations below the highest applied version are applied
    /// (with a warning) instead of refused.
    pub allow_out_of_order: bool,
}

/// What `migrate` will do.
#[derive(Debug)]
pub struct UpPlan<'a> {
    /// Migrations to apply, in order, each with the failed row left by an
    /// earlier attempt (if any).
    pub pending: Vec<(&'a Migration, Option<&'a AppliedRow>)>,
    /// Completed rows, i.e. migrations already applied.
    pub applied: usize,
    /// Pending migrations above the target, left for later.
    pub beyond_target: usize,
    /// Relaxed problems, reported as warnings.
    pub warnings: Vec<Event>,
}

/// Rows looked up by version (by numeric value: `001` is `1`), in O(log n):
/// with a few hundred migrations a scan per migration cost more than the
/// rest of a no-op deploy on the wasm backend.
struct RowIndex<'a>(Vec<&'a AppliedRow>);

impl<'a> RowIndex<'a> {
    fn new(rows: &'a [AppliedRow]) -> Self {
        let mut sorted: Vec<&AppliedRow> = rows.iter().collect();
        // Stable: of two rows with the same version, the first one wins, as
        // with a scan.
        sorted.sort_by(|a, b| cmp_versions(&a.version, &b.version));
        RowIndex(sorted)
    }

    fn find(&self, version: &str) -> Option<&'a AppliedRow> {
        let at = self
            .0
            .partition_point(|r| cmp_versions(&r.version, version).is_lt());
        self.0
            .get(at)
            .copied()
            .filter(|r| cmp_versions(&r.version, version).is_eq())
    }
}

/// The migrations' versions, sorted, for "is there a file for this row".
fn version_set(migrations: &[Migration]) -> Vec<&str> {
    let mut versions: Vec<&str> = migrations.iter().map(|m| m.version.as_str()).collect();
    versions.sort_by(|a, b| cmp_versions(a, b));
    versions
}

fn has_version(sorted: &[&str], version: &str) -> bool {
    sorted
        .binary_search_by(|v| cmp_versions(v, version))
        .is_ok()
}

fn find<'a>(rows: &'a [AppliedRow], version: &str) -> Option<&'a AppliedRow> {
    rows.iter()
        .find(|r| cmp_versions(&r.version, version).is_eq())
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

fn applied_on(row: &AppliedRow) -> String {
    match row.applied_at.as_deref().and_then(|a| a.get(..10)) {
        Some(day) => format!(" on {day}"),
        None => String::new(),
    }
}

/// Checks that a `--to` version names a migration file (or `0`, meaning
/// "before the first").
fn check_target(migrations: &[Migration], rows: &[AppliedRow], target: &str) -> Result<()> {
    let known = target.trim_start_matches('0').is_empty()
        || migrations
            .iter()
            .any(|m| cmp_versions(&m.version, target).is_eq())
        || find(rows, target).is_some();
    if known {
        Ok(())
    } else {
        Err(Error::new(
            Kind::UnknownVersion,
            format!(
                "there is no migration with version {target}; run `tidemark status` to list the versions"
            ),
        ))
    }
}

/// Plans `migrate`: which migrations to apply, after checking drift, missing
/// files and order under `policy`.
#[inline(never)] // out of line: see lib.rs
pub fn plan_up<'a>(
    migrations: &'a [Migration],
    rows: &'a [AppliedRow],
    policy: Policy,
    target: Option<&str>,
) -> Result<UpPlan<'a>> {
    if let Some(t) = target {
        check_target(migrations, rows, t)?;
    }
    let mut warnings = Vec::new();
    let completed: Vec<&AppliedRow> = rows.iter().filter(|r| r.completed).collect();
    let index = RowIndex::new(rows);
    let files = version_set(migrations);

    for m in migrations {
        let Some(row) = index.find(&m.version).filter(|r| r.completed) else {
            continue;
        };
        let Some(stored) = row.checksum.as_deref() else {
            continue;
        };
        if stored != m.checksum {
            let message = format!(
                "migration {} was applied{} but has changed since (checksum {} then, {} now); restore the file, or put the change in a new migration",
                m.file(),
                applied_on(row),
                short(stored),
                short(&m.checksum)
            );
            if policy.allow_drift {
                warnings.push(Event::Warning {
                    code: "W_CHECKSUM_MISMATCH".into(),
                    message,
                    file: Some(m.file().to_string()),
                });
            } else {
                return Err(Error::new(Kind::ChecksumMismatch, message)
                    .at(m.file(), None, None)
                    .with_version(&m.version));
            }
        }
    }

    for row in &completed {
        if has_version(&files, &row.version) {
            continue;
        }
        let label = match &row.name {
            Some(n) => format!("{}_{}", row.version, n),
            None => row.version.clone(),
        };
        let message = format!(
            "migration {label} was applied{} but its file is not in the migrations folder; restore the file (check which folder is read, and your branch)",
            applied_on(row)
        );
        if policy.allow_missing {
            warnings.push(Event::Warning {
                code: "W_MISSING_MIGRATION".into(),
                message,
                file: None,
            });
        } else {
            return Err(Error::new(Kind::MissingMigration, message).with_version(&row.version));
        }
    }

    let highest = completed
        .iter()
        .map(|r| r.version.as_str())
        .max_by(|a, b| cmp_versions(a, b));
    let mut pending = Vec::new();
    let mut beyond_target = 0;
    for m in migrations {
        let row = index.find(&m.version);
        if row.is_some_and(|r| r.completed) {
            continue;
        }
        if target.is_some_and(|t| cmp_versions(&m.version, t).is_gt()) {
            beyond_target += 1;
            continue;
        }
        if let Some(h) = highest.filter(|h| cmp_versions(&m.version, h).is_lt()) {
            let message = format!(
                "migration {} is pending but {h} (a later version) is already applied, probably from a merged branch; give it a version above {h}, or allow out-of-order migrations",
                m.file()
            );
            if policy.allow_out_of_order {
                warnings.push(Event::Warning {
                    code: "W_OUT_OF_ORDER".into(),
                    message,
                    file: Some(m.file().to_string()),
                });
            } else {
                return Err(Error::new(Kind::OutOfOrder, message)
                    .at(m.file(), None, None)
                    .with_version(&m.version));
            }
        }
        pending.push((m, row));
    }
    Ok(UpPlan {
        pending,
        applied: completed.len(),
        beyond_target,
        warnings,
    })
}

/// Plans `down`: the applied migrations to revert, newest first. `steps`
/// defaults to 1; `to` reverts everything above that version (`0`: all).
pub fn plan_down<'a>(
    migrations: &'a [Migration],
    rows: &[AppliedRow],
    steps: Option<usize>,
    to: Option<&str>,
) -> Result<Vec<&'a Migration>> {
    if let Some(t) = to {
        check_target(migrations, rows, t)?;
    }
    let mut completed: Vec<&AppliedRow> = rows.iter().filter(|r| r.completed).collect();
    completed.sort_by(|a, b| cmp_versions(&b.version, &a.version));
    let chosen: Vec<&AppliedRow> = match to {
        // `--to 0` reverts everything, a version 0 (`0000_init.sql`,
        // diesel's `00000000000000_diesel_initial_setup`) included.
        Some(t) if t.bytes().all(|b| b == b'0') => completed,
        Some(t) => completed
            .into_iter()
            .filter(|r| cmp_versions(&r.version, t).is_gt())
            .collect(),
        None => completed.into_iter().take(steps.unwrap_or(1)).collect(),
    };
    chosen
        .into_iter()
        .map(|row| {
            let m = migrations
                .iter()
                .find(|m| cmp_versions(&m.version, &row.version).is_eq())
                .ok_or_else(|| {
                    Error::new(
                        Kind::MissingMigration,
                        format!(
                            "cannot revert {}: its file is not in the migrations folder, so there is no down SQL; restore the file",
                            row.version
                        ),
                    )
                    .with_version(&row.version)
                })?;
            // An empty or comment-only down file (or section) is a down that
            // does nothing; only a missing one is refused.
            if m.down.is_none() {
                return Err(Error::new(
                    Kind::NoDown,
                    format!(
                        "cannot revert {}: it has no down migration; add {}_{}.down.sql or a `-- migrate:down` section",
                        m.file(),
                        m.version,
                        m.name
                    ),
                )
                .at(m.file(), None, None)
                .with_version(&m.version));
            }
            Ok(m)
        })
        .collect()
}

/// Builds `status`: one row per file and per applied migration whose file is
/// gone, in version order.
#[inline(never)] // out of line: see lib.rs
pub fn status(migrations: &[Migration], rows: &[AppliedRow]) -> StatusReport {
    let highest = rows
        .iter()
        .filter(|r| r.completed)
        .map(|r| r.version.as_str())
        .max_by(|a, b| cmp_versions(a, b));
    let index = RowIndex::new(rows);
    let files = version_set(migrations);
    let mut out: Vec<StatusRow> = Vec::new();
    for m in migrations {
        let row = index.find(&m.version);
        let (state, checksum) = match row {
            Some(r) if r.completed => {
                let c = match r.checksum.as_deref() {
                    Some(c) if c != m.checksum => ChecksumState::Changed,
                    _ if r.accepted.is_some() => ChecksumState::Accepted,
                    _ => ChecksumState::Ok,
                };
                (MigrationState::Applied, c)
            }
            Some(_) => (MigrationState::Failed, ChecksumState::None),
            None => (MigrationState::Pending, ChecksumState::None),
        };
        out.push(StatusRow {
            version: m.version.clone(),
            name: m.name.clone(),
            file: Some(m.file().to_string()),
            state,
            applied_at: row
                .filter(|r| r.completed)
                .and_then(|r| r.applied_at.clone()),
            duration_ms: row.filter(|r| r.completed).and_then(|r| r.duration_ms),
            checksum,
            out_of_order: state != MigrationState::Applied
                && highest.is_some_and(|h| cmp_versions(&m.version, h).is_lt()),
            error_message: row
                .filter(|r| !r.completed)
                .and_then(|r| r.error_message.clone()),
        });
    }
    for r in rows.iter().filter(|r| r.completed) {
        if !has_version(&files, &r.version) {
            out.push(StatusRow {
                version: r.version.clone(),
                name: r.name.clone().unwrap_or_default(),
                file: None,
                state: MigrationState::Missing,
                applied_at: r.applied_at.clone(),
                duration_ms: r.duration_ms,
                checksum: ChecksumState::None,
                out_of_order: false,
                error_message: None,
            });
        }
    }
    out.sort_by(|a, b| cmp_versions(&a.version, &b.version));
    let count = |s: MigrationState| out.iter().filter(|r| r.state == s).count();
    StatusReport {
        current_version: highest.map(str::to_string),
        accepted: accepted_edits(migrations, &index),
        applied: count(MigrationState::Applied),
        pending: count(MigrationState::Pending) + count(MigrationState::Failed),
        drifted: out
            .iter()
            .filter(|r| r.checksum == ChecksumState::Changed)
            .count(),
        missing: count(MigrationState::Missing),
        failed: count(MigrationState::Failed),
        migrations: out,
    }
}

/// Every accepted edit whose file still has the accepted contents.
fn accepted_edits(migrations: &[Migration], index: &RowIndex<'_>) -> Vec<AcceptedEdit> {
    migrations
        .iter()
        .filter_map(|m| {
            let r = index.find(&m.version).filter(|r| r.completed)?;
            let a = r.accepted.as_ref()?;
            (r.checksum.as_deref() == Some(m.checksum.as_str())).then(|| AcceptedEdit {
                version: m.version.clone(),
                name: m.name.clone(),
                file: m.file().to_string(),
                applied_checksum: a.from.clone(),
                accepted_checksum: m.checksum.clone(),
                accepted_at: a.at.clone(),
                accepted_by: a.by.clone(),
                reason: a.reason.clone().unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::source::{Migrations, SourceFile};

    fn migs(list: &[&str]) -> Vec<Migration> {
        Migrations::from_files(
            list.iter()
                .map(|n| {
                    SourceFile::new(
                        format!("{n}.sql"),
                        format!("-- migrate:up\nselect '{n}';\n-- migrate:down\nselect 0;\n")
                            .into_bytes(),
                    )
                })
                .collect(),
        )
        .unwrap()
        .migrations
    }

    fn row(m: &Migration) -> AppliedRow {
        AppliedRow {
            version: m.version.clone(),
            name: Some(m.name.clone()),
            checksum: Some(m.checksum.clone()),
            applied_at: Some("2026-03-02T10:00:00+00:00".into()),
            duration_ms: Some(3),
            completed: true,
            ..AppliedRow::default()
        }
    }

    fn versions(p: &UpPlan) -> Vec<String> {
        p.pending.iter().map(|(m, _)| m.version.clone()).collect()
    }

    #[test]
    fn fresh_database_plans_everything() {
        let m = migs(&["001_a", "002_b"]);
        let p = plan_up(&m, &[], Policy::default(), None).unwrap();
        assert_eq!(versions(&p), ["001", "002"]);
        assert_eq!(p.applied, 0);
    }

    #[test]
    fn applied_ones_are_skipped_and_failed_ones_retried() {
        let m = migs(&["001_a", "002_b", "003_c"]);
        let mut failed = row(&m[1]);
        failed.completed = false;
        let rows = [row(&m[0]), failed];
        let p = plan_up(&m, &rows, Policy::default(), None).unwrap();
        assert_eq!(versions(&p), ["002", "003"]);
        assert!(p.pending[0].1.is_some());
    }

    #[test]
    fn drift_is_an_error_unless_allowed() {
        let m = migs(&["001_a"]);
        let mut r = row(&m[0]);
        r.checksum = Some("0".repeat(64));
        let err = plan_up(&m, std::slice::from_ref(&r), Policy::default(), None).unwrap_err();
        assert_eq!(err.code(), "E_CHECKSUM_MISMATCH");
        assert!(
            err.message()
                .contains("001_a.sql was applied on 2026-03-02 but has changed since"),
            "{}",
            err.message()
        );
        let rows = [r];
        let p = plan_up(
            &m,
            &rows,
            Policy {
                allow_drift: true,
                ..Policy::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn missing_file_is_an_error_unless_allowed() {
        let m = migs(&["001_a", "002_b"]);
        let rows = [row(&m[0]), row(&m[1])];
        let err = plan_up(&m[..1], &rows, Policy::default(), None).unwrap_err();
        assert_eq!(err.code(), "E_MISSING_MIGRATION");
        assert!(err.message().contains("002_b"));
        assert!(plan_up(
            &m[..1],
            &rows,
            Policy {
                allow_missing: true,
                ..Policy::default()
            },
            None
        )
        .is_ok());
    }

    #[test]
    fn out_of_order_is_an_error_unless_allowed() {
        let m = migs(&["001_a", "002_b", "003_c"]);
        let rows = [row(&m[0]), row(&m[2])];
        let err = plan_up(&m, &rows, Policy::default(), None).unwrap_err();
        assert_eq!(err.code(), "E_OUT_OF_ORDER");
        assert_eq!(err.file(), Some("002_b.sql"));
        let p = plan_up(
            &m,
            &rows,
            Policy {
                allow_out_of_order: true,
                ..Policy::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(versions(&p), ["002"]);
    }

    #[test]
    fn target_limits_the_plan() {
        let m = migs(&["001_a", "002_b", "003_c"]);
        let p = plan_up(&m, &[], Policy::default(), Some("2")).unwrap();
        assert_eq!(versions(&p), ["001", "002"]);
        assert_eq!(p.beyond_target, 1);
        assert_eq!(
            plan_up(&m, &[], Policy::default(), Some("9"))
                .unwrap_err()
                .code(),
            "E_UNKNOWN_VERSION"
        );
    }

    #[test]
    fn down_plans() {
        let m = migs(&["001_a", "002_b", "003_c"]);
        let rows: Vec<_> = m.iter().map(row).collect();
        let v = |d: Vec<&Migration>| d.iter().map(|m| m.version.clone()).collect::<Vec<_>>();
        assert_eq!(v(plan_down(&m, &rows, None, None).unwrap()), ["003"]);
        assert_eq!(
            v(plan_down(&m, &rows, Some(2), None).unwrap()),
            ["003", "002"]
        );
        assert_eq!(
            v(plan_down(&m, &rows, None, Some("001")).unwrap()),
            ["003", "002"]
        );
        assert_eq!(
            v(plan_down(&m, &rows, None, Some("0")).unwrap()),
            ["003", "002", "001"]
        );
        assert!(plan_down(&m, &[], None, None).unwrap().is_empty());
    }

    #[test]
    fn down_without_down_sql_is_refused() {
        let m = Migrations::from_files(vec![SourceFile::new(
            "001_a.sql",
            b"create table a();".to_vec(),
        )])
        .unwrap()
        .migrations;
        let rows = [row(&m[0])];
        let err = plan_down(&m, &rows, None, None).unwrap_err();
        assert_eq!(err.code(), "E_NO_DOWN_MIGRATION");
        assert!(err.message().contains("001_a.down.sql"));
    }

    #[test]
    fn status_rows() {
        let m = migs(&["001_a", "002_b", "003_c"]);
        let mut drifted = row(&m[0]);
        drifted.checksum = Some("x".into());
        let gone = AppliedRow {
            version: "004".into(),
            name: Some("gone".into()),
            completed: true,
            ..AppliedRow::default()
        };
        let s = status(&m, &[drifted, row(&m[2]), gone]);
        let states: Vec<_> = s
            .migrations
            .iter()
            .map(|r| (r.version.as_str(), r.state, r.checksum, r.out_of_order))
            .collect();
        assert_eq!(
            states,
            [
                (
                    "001",
                    MigrationState::Applied,
                    ChecksumState::Changed,
                    false
                ),
                ("002", MigrationState::Pending, ChecksumState::None, true),
                ("003", MigrationState::Applied, ChecksumState::Ok, false),
                ("004", MigrationState::Missing, ChecksumState::None, false),
            ]
        );
        assert_eq!((s.applied, s.pending, s.drifted, s.missing), (2, 1, 1, 1));
    }
}
