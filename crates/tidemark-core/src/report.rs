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
