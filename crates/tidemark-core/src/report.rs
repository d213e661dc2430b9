//! What the engine tells its front ends: [`Event`]s while it works, a report
//! when it is done (style rule 2: one orchestration, many renderers).

use serde::Serialize;

/// Receives every event the engine emits, in order. The CLI prints them, the
/// bindings forward them to JS callbacks.
pub trait Reporter {
    fn report(&self, event: Event);
}

/// A reporter that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

impl<F: Fn(Event)> Reporter for F {
    fn report(&self, event: Event) {
        self(event)
    }
}

/// One step of the engine's work. Serialized as `{"event": "migrationApplied", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// The host is about to connect to `url` (redacted), found in `source`
    /// (`--url`, `DATABASE_URL`, ...); `instead_of` the pooled URL of that
    /// source, which looked pooled for the reason `pooler`. For the host's
    /// embedded database, `source` is `embedded`, with its folder, why it
    /// is used, and, while `db serve` serves it, its URL and that process.
    Connecting {
        source: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        instead_of: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pooler: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dir: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        served_by: Option<u32>,
    },
    /// A connection attempt failed and will be retried after `delay_ms`.
    ConnectRetry {
        attempt: u32,
        error: String,
        delay_ms: u64,
    },
    /// Connected and authenticated.
    Connected {
        host: String,
        port: u16,
        database: String,
        sslmode: String,
    },
    /// Something looks wrong but does not stop the run (a badly named file, a
    /// relaxed drift check).
    Warning {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<String>,
    },
    /// The tracking table was read and the work planned.
    Planned { applied: usize, pending: usize },
    /// Nothing to do: answered from one read, without the lock.
    UpToDate { applied: usize },
    /// The advisory lock is held.
    LockAcquired,
    /// The tracking table was created.
    TrackingTableCreated { table: String },
    /// The tracking table had an older shape and got the missing columns.
    TrackingTableUpgraded { table: String },
    /// One migration is committed.
    MigrationApplied {
        version: String,
        name: String,
        file: String,
        duration_ms: u64,
    },
    /// One statement of a `-- tidemark:no-transaction` migration has run.
    StatementApplied {
        version: String,
        index: usize,
        total: usize,
    },
    /// A no-transaction migration resumes after statements that ran before.
    MigrationResumed {
        version: String,
        name: String,
        skipped_statements: usize,
    },
    /// One migration failed; it was rolled back (or, without a transaction,
    /// stopped at the failing statement).
    MigrationFailed {
        version: String,
        name: String,
        file: String,
        message: String,
    },
    /// One migration was rolled back by its down SQL.
    MigrationReverted {
        version: String,
        name: String,
        file: String,
        duration_ms: u64,
    },
    /// One seed file ran and committed.
    SeedApplied {
        name: String,
        file: String,
        duration_ms: u64,
    },
    /// A seed that already ran with the same contents.
    SeedSkipped { name: String, file: String },
    /// `reset` dropped and recreated these schemas.
    SchemasDropped { schemas: Vec<String> },
    /// `verify`: one finding of the lint or of the target check, as it is
    /// found (the report lists them all again).
    Finding(Finding),
}

/// A migration that was applied by this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedMigration {
    pub version: String,
    pub name: String,
    pub file: String,
    pub duration_ms: u64,
}

/// What `migrate`, `deploy` and `redo`'s up half return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// Migrations applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// Migrations already applied before this run.
    pub already_applied: usize,
    /// Pending migrations left (above `--to`).
    pub pending: usize,
    /// True when the run answered from the lock-free fast path.
    pub up_to_date: bool,
}

/// What `down` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownReport {
    /// Migrations reverted, newest first.
    pub reverted: Vec<AppliedMigration>,
}

/// What `redo` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedoReport {
    pub reverted: Vec<AppliedMigration>,
    pub applied: Vec<AppliedMigration>,
}

/// What `seed` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedReport {
    pub environment: String,
    /// Seeds that ran, in order.
    pub ran: Vec<SeedRun>,
    /// Seeds skipped because they already ran with the same contents.
    pub skipped: Vec<String>,
    /// The script seed due next, when the host runs no scripts
    /// ([`crate::Scripts::runs_scripts`]): the core never spawns, so the run
    /// stops before it. Absent when every seed due ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_due: Option<ScriptSeed>,
}

/// A script seed the host is to run now (see [`crate::Scripts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptSeed {
    /// `002_posts`, the key in the seeds table.
    pub name: String,
    /// `002_posts.mjs`, in the seed folder.
    pub file: String,
    /// The checksum of the file as the engine read it: what is recorded
    /// when it has run (a file edited since runs again next time).
    pub checksum: String,
}

impl ScriptSeed {
    /// The duration a host's runner resolved with (ms, any JS number), in
    /// whole ms: 0 for one that is not a finite positive number.
    pub fn host_duration(ms: f64) -> u64 {
        if ms.is_finite() && ms > 0.0 {
            ms.round() as u64
        } else {
            0
        }
    }
}

/// One seed that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedRun {
    pub name: String,
    pub file: String,
    pub duration_ms: u64,
}

/// The state of one migration in `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MigrationState {
    /// Applied and committed.
    Applied,
    /// Not applied yet.
    Pending,
    /// Its last attempt failed (it is retried on the next run).
    Failed,
    /// Applied, but the file is gone.
    Missing,
}

/// Whether the file still matches what was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChecksumState {
    /// Same checksum as when applied.
    Ok,
    /// Changed after it was applied, and the edit was accepted (`accept`):
    /// the file has the accepted contents.
    Accepted,
    /// The file changed after it was applied (drift).
    Changed,
    /// Nothing to compare (pending, or the file is missing).
    None,
}

/// One row of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    pub version: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub state: MigrationState,
    /// Server time of the commit, ISO 8601.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub checksum: ChecksumState,
    /// Pending but below the highest applied version.
    pub out_of_order: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// What `status` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub migrations: Vec<StatusRow>,
    /// The highest applied version (`null` when none is).
    pub current_version: Option<String>,
    /// Edits accepted with `accept` (files changed after they were applied).
    pub accepted: Vec<AcceptedEdit>,
    pub applied: usize,
    pub pending: usize,
    pub drifted: usize,
    pub missing: usize,
    pub failed: usize,
}

/// What `reset` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetReport {
    pub migrate: MigrateReport,
    pub seed: SeedReport,
}

/// The session that holds the migration lock, as `unlock` found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    pub pid: u32,
    pub application_name: String,
    /// The role it connected as.
    pub user: String,
    /// `null` for a Unix-socket connection.
    pub client_addr: Option<String>,
    /// When its session started, ISO 8601 (server time). PostgreSQL does not
    /// record when an advisory lock was granted: it was at or after this.
    pub since: Option<String>,
    /// Seconds since `since`.
    pub seconds: u64,
    /// When its current (or last) statement started, ISO 8601.
    pub query_start: Option<String>,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: String,
    /// Its current (or last) statement, at most 500 characters.
    pub query: String,
}

/// What `unlock` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockReport {
    /// `schema.table` whose lock was looked up.
    pub table: String,
    /// The advisory lock key (`pg_advisory_lock(key)`), as a decimal string.
    pub lock_key: String,
    /// Who holds the lock, `null` when no one does.
    pub holder: Option<LockHolder>,
    /// Sessions waiting for it.
    pub waiting: usize,
    /// True when `terminate` ended the holder's session.
    pub terminated: bool,
}

/// An edit of an applied migration accepted with `accept`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedEdit {
    pub version: String,
    pub name: String,
    pub file: String,
    /// The checksum of the file as it was applied.
    pub applied_checksum: String,
    /// The checksum of the file as accepted (its contents now).
    pub accepted_checksum: String,
    /// Server time, ISO 8601.
    pub accepted_at: Option<String>,
    pub accepted_by: Option<String>,
    pub reason: String,
}

/// What `accept` returns: the edit it recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptReport {
    pub accepted: AcceptedEdit,
}

/// A migration `plan` found pending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMigration {
    pub version: String,
    pub name: String,
    pub file: String,
    /// False for a `-- tidemark:no-transaction` migration.
    pub transaction: bool,
}

/// One simple-query message `deploy` would send, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMessage {
    /// What the message does.
    pub purpose: String,
    /// Its text, exactly as sent (string literals after `PASSWORD` shown as
    /// `'****'`).
    pub sql: String,
}

/// What `plan` (`deploy --dry-run`) returns: what `deploy` would do now,
/// after the same checks, with nothing written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// Migrations already applied.
    pub already_applied: usize,
    /// Migrations `deploy` would apply, in order.
    pub pending: Vec<PlannedMigration>,
    /// Nothing to apply: `deploy` would answer from its first read.
    pub up_to_date: bool,
    /// The tracking table does not exist yet; `deploy` would create it.
    pub creates_tracking_table: bool,
    /// The messages, in order.
    pub messages: Vec<PlannedMessage>,
    /// False when a no-transaction or COPY migration is pending: its
    /// statements are listed, but the tracking updates `deploy` sends between
    /// them are not.
    pub complete: bool,
    /// True when a `PASSWORD` literal was hidden.
    pub redacted: bool,
}

/// What `db create` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDatabaseReport {
    pub database: String,
    /// False when it existed already.
    pub created: bool,
}

/// A reversible migration whose down did not restore the schema its up changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotReversed {
    pub version: String,
    pub file: String,
    /// Catalog lines (`column users.name text`, `index CREATE INDEX ...`)
    /// the up created and the down left behind.
    pub left_behind: Vec<String>,
    /// Catalog lines that were there before the up and are gone after the down.
    pub not_restored: Vec<String>,
}

/// What `verify` returns: every migration applied on a scratch database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Migrations in the folder.
    pub migrations: usize,
    /// Migrations replayed (fewer when a down did not restore the schema:
    /// the replay stops there).
    pub replayed: usize,
    /// Of those, reversible ones that were reverted and applied again.
    pub reversible: usize,
    /// Downs that did not restore the schema.
    pub not_reversed: Vec<NotReversed>,
    /// What the lint (and, on the target, the deploy checks) found, in
    /// file order.
    pub findings: Vec<Finding>,
    /// Why the replay did not run (a file `deploy` would refuse), or `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_replayed: Option<String>,
    /// The check of the target database (`verify --url`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetCheck>,
}

/// How much a [`Finding`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Fails the check: `deploy` would refuse it, or `--strict` is on.
    Error,
    /// Reported; fails the check only with `--strict`.
    Warning,
}

/// One thing `verify` found without running anything: a file `deploy`
/// would refuse, a migration-safety rule (squawk's), or on the target
/// database drift, a missing file or an out-of-order migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// 1-based line in the file (the file's own lines, sections included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column, counted in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The rule: a squawk rule name (`require-concurrent-index-creation`),
    /// or the error code `deploy` would fail with (`E_TRANSACTION_CONTROL`).
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// The safer way to write it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safer: Option<String>,
    /// Where the rule is explained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
}

/// `verify --url`: what `deploy` would decide on the target database, read
/// without the lock and without writing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCheck {
    /// Migrations applied there.
    pub applied: usize,
    /// Migrations `deploy` would apply there, in order.
    pub pending: Vec<PlannedMigration>,
    /// `--rehearse`: the pending migrations run there in one transaction
    /// that was rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Rehearsal>,
}

/// What `verify --rehearse` ran on the target before rolling it all back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rehearsal {
    /// Pending migrations that ran (then rolled back).
    pub rehearsed: usize,
    /// The first pending migration that runs without a transaction, which a
    /// rolled-back transaction cannot hold: it and the ones after it were
    /// not rehearsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_before: Option<String>,
    /// The `lock_timeout` each statement ran with.
    pub lock_timeout_ms: u64,
}
