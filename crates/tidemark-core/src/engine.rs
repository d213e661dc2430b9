//! The one orchestration (style rule 2): every front end calls these and
//! only renders the events and reports.

use tokio_postgres::Client;

use crate::accept::AcceptOptions;
use crate::adopt::{self, AdoptReport};
use crate::check::{prepare, Body, Guard};
use crate::db::{self, FirstRead, Item, SessionSettings, Tracking, Work};
use crate::error::{Error, Kind, Result};
use crate::plan::{self, AppliedRow, Policy};
use crate::report::{
    AcceptReport, AppliedMigration, CreateDatabaseReport, DownReport, Event, MigrateReport,
    PlanReport, RedoReport, Reporter, ResetReport, SeedReport, SeedRun, StatusReport, UnlockReport,
    VerifyReport,
};
use crate::source::{Migration, Migrations, Seeds, SourceFile};
use crate::unlock::UnlockOptions;

/// Settings shared by every operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Schema of the tracking tables. Default `public`.
    pub schema: String,
    /// Tracking table. Default `schema_migrations`.
    pub table: String,
    /// Seed log table. Default `schema_seeds`.
    pub seeds_table: String,
    /// How long to wait for another run's migration lock. Default 120 s.
    pub lock_wait_timeout_ms: u64,
    /// `lock_timeout` for the migrations' own statements.
    pub lock_timeout_ms: Option<u64>,
    /// `statement_timeout` for the migrations' own statements.
    pub statement_timeout_ms: Option<u64>,
    /// Transactional migrations go to the server in messages of about this
    /// many bytes at most (a single larger migration goes alone).
    pub max_message_bytes: usize,
    /// Relaxed checks for `migrate` (`deploy` ignores them).
    pub policy: Policy,
    /// The connection goes through a transaction-mode pooler (PgBouncer,
    /// Supavisor, Neon's `-pooler` hosts): keep no session state, take a
    /// transaction-scoped lock in every transaction, and claim each
    /// migration inside its own transaction so that it is still applied
    /// exactly once. `lock_timeout_ms` / `statement_timeout_ms` are then set
    /// with `SET LOCAL`; on direct connections the host sends them in the
    /// startup packet instead (see [`crate::url::startup_options`]).
    pub pool_safe: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            schema: "public".into(),
            table: "schema_migrations".into(),
            seeds_table: "schema_seeds".into(),
            lock_wait_timeout_ms: 120_000,
            lock_timeout_ms: None,
            statement_timeout_ms: None,
            max_message_bytes: 8 << 20,
            policy: Policy::default(),
            pool_safe: false,
        }
    }
}

impl Options {
    pub(crate) fn tracking(&self) -> Result<Tracking> {
        for (what, value) in [
            ("schema", &self.schema),
            ("table", &self.table),
            ("seeds table", &self.seeds_table),
        ] {
            if value.is_empty() || value.len() > 63 || value.contains('\0') {
                return Err(Error::new(
                    Kind::InvalidOption,
                    format!("the tracking {what} name {value:?} must be 1 to 63 characters"),
                ));
            }
        }
        Ok(Tracking::new(&self.schema, &self.table, &self.seeds_table))
    }

    /// The tracking table, which no migration or seed may touch.
    fn guard(&self) -> Guard<'_> {
        Guard {
            schema: &self.schema,
            table: &self.table,
        }
    }

    pub(crate) fn session(&self) -> SessionSettings {
        SessionSettings {
            pool_safe: self.pool_safe,
            lock_wait_timeout_ms: self.lock_wait_timeout_ms,
            lock_timeout_ms: self.lock_timeout_ms,
            statement_timeout_ms: self.statement_timeout_ms,
        }
    }
}

/// What `seed` needs to know about where it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedOptions {
    /// The seed folder's environment (`development`, `preview`, ...).
    pub environment: String,
    /// True when `NODE_ENV` or `VERCEL_ENV` says production.
    pub production: bool,
    /// `--allow-production`: seed production, from `seeds/production` only.
    pub allow_production: bool,
    /// Run every seed again, even those that ran with the same contents.
    pub force: bool,
    /// `seed --only <name>`: run this seed alone (its name, `001_users`, or
    /// its file name).
    pub only: Option<String>,
}

fn report_all<R: Reporter + ?Sized>(reporter: &R, events: &[Event]) {
    for e in events {
        reporter.report(e.clone());
    }
}

pub(crate) fn load(
    files: Vec<SourceFile>,
    reporter: &(impl Reporter + ?Sized),
) -> Result<Vec<Migration>> {
    let m = Migrations::from_files(files)?;
    report_all(reporter, &m.warnings);
    Ok(m.migrations)
}

/// Checks one pending migration and decides how it runs (lexes it once).
pub(crate) fn prepare_up<'a>(m: &'a Migration, options: &Options) -> Result<Body<'a>> {
    if m.script {
        return Err(Error::new(
            Kind::ScriptMigration,
            format!(
                "{} is a node-pg-migrate JavaScript/TypeScript migration, and tidemark runs only SQL, so nothing was run; it is fine as history when it is already applied (tidemark adopt records it), but this one is pending: write it as SQL ({}_{}.sql) and delete the script",
                m.file(),
                m.version,
                m.name
            ),
        )
        .at(m.file(), None, None)
        .with_version(&m.version));
    }
    if m.no_transaction && options.pool_safe {
        return Err(Error::new(
            Kind::PoolNoTransaction,
            format!(
                "{} runs without a transaction, which needs a session of its own, but the database URL goes through a connection pooler; set the direct URL (DIRECT_URL, DATABASE_URL_UNPOOLED or POSTGRES_URL_NON_POOLING) for migrations",
                m.file()
            ),
        )
        .at(m.file(), None, None)
        .with_version(&m.version));
    }
    prepare(&m.up, m.no_transaction, Some(options.guard()))
}

/// Bodies prepared before the lock, by migration, so that a file is lexed
/// once per deploy.
pub(crate) type Prepared<'a> = Vec<(&'a Migration, Body<'a>)>;

pub(crate) fn up_items<'m: 'a, 'a>(
    pending: &[(&'a Migration, Option<&'a AppliedRow>)],
    options: &Options,
    prepared: &mut Prepared<'m>,
) -> Result<Vec<Item<'a>>> {
    pending
        .iter()
        .map(|(m, previous)| {
            let body: Body<'a> = match prepared.iter().position(|(p, _)| std::ptr::eq(*p, *m)) {
                Some(i) => prepared.swap_remove(i).1,
                None => prepare_up(m, options)?,
            };
            Ok(Item {
                work: Work::Up,
                key: &m.version,
                name: &m.name,
                text: &m.up,
                body,
                checksum: &m.checksum,
                previous: *previous,
            })
        })
        .collect()
}

pub(crate) fn down_items<'a>(chosen: &[&'a Migration], options: &Options) -> Result<Vec<Item<'a>>> {
    chosen
        .iter()
        .filter_map(|m| m.down.as_ref().map(|d| (m, d)))
        .map(|(m, down)| {
            let marked = m.down_no_transaction;
            Ok(Item {
                work: Work::Down,
                key: &m.version,
                name: &m.name,
                text: down,
                body: prepare(down, marked, Some(options.guard()))?,
                checksum: &m.checksum,
                previous: None,
            })
        })
        .collect()
}

async fn apply<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    policy: Policy,
    target: Option<&str>,
    reporter: &R,
) -> Result<MigrateReport> {
    let t = options.tracking()?;
    let migrations = load(files, reporter)?;

    // The fast path: one read, no lock, no write.
    let mut prepared: Prepared<'_> = Vec::new();
    let first = adopt::first_read(client, &t).await?;
    let rows = match &first {
        FirstRead::Rows(rows) => rows.as_slice(),
        FirstRead::NoTable => &[],
        FirstRead::Foreign => &[],
    };
    if !matches!(first, FirstRead::Foreign) {
        let p = plan::plan_up(&migrations, rows, policy, target)?;
        if p.pending.is_empty() {
            report_all(reporter, &p.warnings);
            reporter.report(Event::UpToDate { applied: p.applied });
            return Ok(MigrateReport {
                applied: Vec::new(),
                already_applied: p.applied,
                pending: p.beyond_target,
                up_to_date: true,
            });
        }
        // Refuse bad SQL before taking the lock or creating anything.
        for (m, _) in &p.pending {
            prepared.push((m, prepare_up(m, options)?));
        }
    }

    let mut applied = Vec::new();
    // Pool-safe mode holds no lock between messages: a migration another
    // deploy applied meanwhile stops the batch at its claim, and the plan is
    // made again from a fresh read. Each round applies at least one
    // migration or finds it applied, so this ends.
    for _ in 0..=migrations.len() {
        let rows = db::lock_and_read(client, &t, options.session(), reporter).await?;
        let result = async {
            let p = plan::plan_up(&migrations, &rows, policy, target)?;
            report_all(reporter, &p.warnings);
            reporter.report(Event::Planned {
                applied: p.applied,
                pending: p.pending.len(),
            });
            let items = up_items(&p.pending, options, &mut prepared)?;
            let (done, unlocked) = run(client, &t, options, &items, reporter).await?;
            Ok::<_, Error>((done, p.applied, p.beyond_target, unlocked))
        }
        .await;
        match result {
            Ok((done, already, beyond, unlocked)) => {
                if !unlocked {
                    db::unlock(client, &t, options.session()).await;
                }
                // Earlier rounds' migrations are in this round's rows.
                let already = already.saturating_sub(applied.len());
                applied.extend(done);
                return Ok(MigrateReport {
                    already_applied: already,
                    applied,
                    pending: beyond,
                    up_to_date: false,
                });
            }
            Err(e) if e.claimed_elsewhere() => applied.extend(e.applied().iter().cloned()),
            Err(e) => {
                db::unlock(client, &t, options.session()).await;
                let mut all = applied;
                all.extend(e.applied().iter().cloned());
                return Err(e.with_applied(all));
            }
        }
    }
    Err(Error::new(
        Kind::Database,
        "concurrent deploys kept applying the same migrations; run again",
    ))
}

/// Applies pending migrations (up to `target` when given), with the checks
/// relaxed as `options.policy` says.
///
/// When nothing is pending this costs one read and takes no lock. Otherwise
/// it costs one more message to take the lock and re-read, and one message
/// that applies every pending transactional migration, each in its own
/// transaction.
///
/// ```no_run
/// # async fn run(client: tokio_postgres::Client) -> Result<(), tidemark_core::Error> {
/// use tidemark_core::{migrate, Options, SourceFile, Silent};
/// let files = vec![SourceFile::new("001_init.sql", b"create table t (id int);".to_vec())];
/// let report = migrate(&client, files, &Options::default(), None, &Silent).await?;
/// assert_eq!(report.applied.len(), 1);
/// # Ok(()) }
/// ```
pub async fn migrate<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    target: Option<&str>,
    reporter: &R,
) -> Result<MigrateReport> {
    apply(client, files, options, options.policy, target, reporter).await
}

/// `migrate` for CI and deploys: every check strict, whatever the options say.
pub async fn deploy<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<MigrateReport> {
    apply(client, files, options, Policy::default(), None, reporter).await
}

/// Reads the tracking table (one message, no lock) and describes every
/// migration.
pub async fn status<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<StatusReport> {
    let t = options.tracking()?;
    let migrations = load(files, reporter)?;
    let first = adopt::first_read(client, &t).await?;
    let rows = match first {
        FirstRead::Rows(rows) => rows,
        FirstRead::NoTable => Vec::new(),
        FirstRead::Foreign => {
            // Let the shape check explain what the table is.
            db::lock_and_read(client, &t, options.session(), reporter).await?;
            db::unlock(client, &t, options.session()).await;
            return Err(Error::new(
                Kind::TrackingTableIncompatible,
                "incompatible tracking table",
            ));
        }
    };
    Ok(plan::status(&migrations, &rows))
}

/// Runs `items` with the options' session settings and message bound.
async fn run<R: Reporter + ?Sized>(
    client: &Client,
    t: &Tracking,
    options: &Options,
    items: &[Item<'_>],
    reporter: &R,
) -> Result<(Vec<AppliedMigration>, bool)> {
    db::run_items(
        client,
        t,
        options.session(),
        items,
        options.max_message_bytes,
        reporter,
    )
    .await
}

/// Releases the lock unless the last message already did (`true` beside
/// the value), on success and on failure alike.
async fn release<T>(
    client: &Client,
    t: &Tracking,
    options: &Options,
    result: Result<(T, bool)>,
) -> Result<T> {
    if !matches!(result, Ok((_, true))) {
        db::unlock(client, t, options.session()).await;
    }
    result.map(|(value, _)| value)
}

async fn locked<R, T, F>(
    client: &Client,
    t: &Tracking,
    options: &Options,
    reporter: &R,
    work: F,
) -> Result<T>
where
    R: Reporter + ?Sized,
    F: AsyncFnOnce(Vec<AppliedRow>) -> Result<(T, bool)>,
{
    let rows = db::lock_and_read(client, t, options.session(), reporter).await?;
    release(client, t, options, work(rows).await).await
}

/// Reverts applied migrations with their down SQL, newest first: the last
/// `steps` (default 1), or every one above version `to` (`0`: all).
pub async fn down<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    steps: Option<usize>,
    to: Option<&str>,
    reporter: &R,
) -> Result<DownReport> {
    let t = options.tracking()?;
    let migrations = load(files, reporter)?;
    locked(
        client,
        &t,
        options,
        reporter,
        async |rows: Vec<AppliedRow>| {
            let chosen = plan::plan_down(&migrations, &rows, steps, to)?;
            let items = down_items(&chosen, options)?;
            let (reverted, unlocked) = run(client, &t, options, &items, reporter).await?;
            Ok((DownReport { reverted }, unlocked))
        },
    )
    .await
}

/// Reverts the last `steps` migrations (default 1) and applies them again, in
/// one message when they are transactional.
pub async fn redo<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    steps: Option<usize>,
    reporter: &R,
) -> Result<RedoReport> {
    let t = options.tracking()?;
    let migrations = load(files, reporter)?;
    locked(
        client,
        &t,
        options,
        reporter,
        async |rows: Vec<AppliedRow>| {
            let chosen = plan::plan_down(&migrations, &rows, steps, None)?;
            let mut items = down_items(&chosen, options)?;
            let again: Vec<_> = chosen.iter().rev().map(|m| (*m, None)).collect();
            items.extend(up_items(&again, options, &mut Vec::new())?);
            let (done, unlocked) = run(client, &t, options, &items, reporter).await?;
            let (reverted, applied) = done.split_at(chosen.len().min(done.len()));
            Ok((
                RedoReport {
                    reverted: reverted.to_vec(),
                    applied: applied.to_vec(),
                },
                unlocked,
            ))
        },
    )
    .await
}

/// Runs the seeds of one environment folder, each in its own transaction,
/// logging each in the seeds table. A seed that already ran with the same
/// contents is skipped (unless `force`); a changed one runs again, so seeds
/// should be idempotent. Refuses production unless `allow_production` and
/// the environment is `production`.
pub async fn seed<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    seed_options: &SeedOptions,
    reporter: &R,
) -> Result<SeedReport> {
    let env = seed_options.environment.as_str();
    if seed_options.production && !(seed_options.allow_production && env == "production") {
        let why = if seed_options.allow_production {
            format!("--allow-production only runs seeds/production, and the seed environment is {env:?}")
        } else {
            "seeding production could overwrite real data; if you really mean it, pass --allow-production to run seeds/production".to_string()
        };
        return Err(Error::new(
            Kind::SeedProduction,
            format!("refusing to seed: this is production (NODE_ENV or VERCEL_ENV is production); {why}"),
        ));
    }
    let t = options.tracking()?;
    let mut seeds = Seeds::from_files(files)?;
    report_all(reporter, &seeds.warnings);
    if let Some(only) = seed_options.only.as_deref() {
        let names: Vec<String> = seeds.seeds.iter().map(|s| s.name.clone()).collect();
        seeds.seeds.retain(|s| s.name == only || s.sql.file == only);
        if seeds.seeds.is_empty() {
            return Err(Error::new(
                Kind::InvalidOption,
                format!(
                    "there is no seed named {only:?} in the {env} seeds (they are: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    // Refuse bad SQL before anything runs.
    let bodies = seeds
        .seeds
        .iter()
        .map(|s| prepare(&s.sql, false, Some(options.guard())))
        .collect::<Result<Vec<Body<'_>>>>()?;
    let ran = db::lock_and_read_seeds(client, &t, options.session(), reporter).await?;
    let result = async {
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for (s, body) in seeds.seeds.iter().zip(bodies) {
            let same = ran
                .iter()
                .any(|(n, sum)| n == &s.name && sum == &s.checksum);
            if same && !seed_options.force {
                reporter.report(Event::SeedSkipped {
                    name: s.name.clone(),
                    file: s.sql.file.clone(),
                });
                skipped.push(s.name.clone());
                continue;
            }
            items.push(Item {
                work: Work::Seed,
                key: &s.name,
                name: &s.name,
                text: &s.sql,
                body,
                checksum: &s.checksum,
                previous: None,
            });
        }
        let (done, unlocked) = run(client, &t, options, &items, reporter).await?;
        Ok::<_, Error>((
            SeedReport {
                environment: env.to_string(),
                ran: done
                    .into_iter()
                    .map(|d| SeedRun {
                        name: d.version,
                        file: d.file,
                        duration_ms: d.duration_ms,
                    })
                    .collect(),
                skipped,
            },
            unlocked,
        ))
    }
    .await;
    release(client, &t, options, result).await
}

/// Development only: drops the `public` schema (and the tracking schema)
/// with everything in them, recreates `public`, applies every migration and
/// runs the seeds. Refuses production.
pub async fn reset<R: Reporter + ?Sized>(
    client: &Client,
    migrations: Vec<SourceFile>,
    seeds: Vec<SourceFile>,
    options: &Options,
    seed_options: &SeedOptions,
    reporter: &R,
) -> Result<ResetReport> {
    if seed_options.production {
        return Err(Error::new(
            Kind::ResetProduction,
            "refusing to reset: this is production (NODE_ENV or VERCEL_ENV is production), and reset drops every table; it is for development databases only",
        ));
    }
    let t = options.tracking()?;
    // Check the files before dropping anything.
    let checked = Migrations::from_files(migrations.clone())?;
    for m in &checked.migrations {
        prepare(&m.up, m.no_transaction, Some(options.guard()))?;
    }
    let mut schemas = vec!["public".to_string()];
    if t.schema != "public" {
        schemas.push(t.schema.clone());
    }
    let drops: String = schemas
        .iter()
        .map(|s| format!("DROP SCHEMA IF EXISTS {} CASCADE;\n", db::quote_ident(s)))
        .collect();
    // One transaction under the transaction-scoped lock: works the same
    // through a pooler.
    let sql = format!(
        "BEGIN;\nSET LOCAL lock_timeout = '{}ms';\nSELECT pg_advisory_xact_lock({});\n{drops}CREATE SCHEMA public;\nCOMMIT;",
        options.lock_wait_timeout_ms.max(1),
        t.lock_key
    );
    if let Err(e) = client.simple_query(&sql).await {
        let _ = client.simple_query("ROLLBACK").await;
        return Err(Error::database("could not drop the schemas", &e));
    }
    reporter.report(Event::SchemasDropped { schemas });
    let migrate = apply(
        client,
        migrations,
        options,
        Policy::default(),
        None,
        reporter,
    )
    .await?;
    let seed = seed(client, seeds, options, seed_options, reporter).await?;
    Ok(ResetReport { migrate, seed })
}

/// Shows who holds the migration lock of the tracking table in this
/// database (one read, without taking the lock); with `terminate`, ends that
/// session. See [`crate::unlock`].
pub async fn unlock(
    client: &Client,
    options: &Options,
    unlock: UnlockOptions,
) -> Result<UnlockReport> {
    crate::unlock::unlock(client, &options.tracking()?, unlock).await
}

/// Records that the file of applied migration `accept.version` was edited
/// without changing behaviour: `status` then shows it as accepted and
/// `deploy` goes on, until the file changes again. See [`crate::accept`].
pub async fn accept(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    accept: &AcceptOptions,
    reporter: &(impl Reporter + ?Sized),
) -> Result<AcceptReport> {
    let t = options.tracking()?;
    let migrations = load(files, reporter)?;
    crate::accept::accept(
        client,
        &t,
        &migrations,
        accept,
        options.lock_wait_timeout_ms,
    )
    .await
}

/// What `deploy` would do now and the exact messages it would send, after
/// the same checks; one read, no lock, nothing written. See
/// [`crate::dry_run`].
pub async fn dry_run<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<PlanReport> {
    crate::dry_run::plan(client, files, options, reporter).await
}

/// Creates the database `name` unless it exists, over a connection to
/// another database of the server (the host's job). See
/// [`crate::create_db`].
pub async fn create_database(client: &Client, name: &str) -> Result<CreateDatabaseReport> {
    crate::create_db::create_database(client, name).await
}

/// The operations the hosts export, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Migrate,
    Deploy,
    Status,
    Down,
    Redo,
    Seed,
    Reset,
    Adopt,
    Baseline,
    Unlock,
    Accept,
    Plan,
    /// `db create`: the host connects to the `postgres` database and sets
    /// `Request::create_database` to the URL's database.
    CreateDatabase,
    /// `verify`: replays the folder on a scratch database the host provides.
    Verify,
}

impl Operation {
    /// Whether this build of the engine carries the operation: all of them
    /// with the `full` feature (the default), else the deploy path only
    /// (migrate, deploy, status, down, redo, seed, reset).
    pub const fn in_build(self) -> bool {
        cfg!(feature = "full")
            || matches!(
                self,
                Operation::Migrate
                    | Operation::Deploy
                    | Operation::Status
                    | Operation::Down
                    | Operation::Redo
                    | Operation::Seed
                    | Operation::Reset
            )
    }
}

/// Everything one operation may use, as a host receives it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub migrations: Vec<SourceFile>,
    pub seeds: Vec<SourceFile>,
    pub options: Options,
    pub seed_options: SeedOptions,
    /// `migrate --to`, `down --to`.
    pub to: Option<String>,
    /// `down --steps`, `redo --steps`.
    pub steps: Option<usize>,
    /// `adopt --from`: whose history to adopt (else detected).
    pub from: Option<String>,
    /// `adopt --dry-run`, `baseline --dry-run`: report, write nothing.
    pub dry_run: bool,
    /// `unlock --terminate` (and the pid the user confirmed).
    pub unlock: UnlockOptions,
    /// `accept <version> --reason`.
    pub accept: AcceptOptions,
    /// `db create`: the database to create.
    pub create_database: Option<String>,
}

/// What an operation returns; serializes as that operation's own report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Migrate(MigrateReport),
    Status(StatusReport),
    Down(DownReport),
    Redo(RedoReport),
    Seed(SeedReport),
    Reset(ResetReport),
    Adopt(AdoptReport),
    Unlock(UnlockReport),
    Accept(AcceptReport),
    Plan(PlanReport),
    CreateDatabase(CreateDatabaseReport),
    Verify(VerifyReport),
}

/// Runs `op`: the one dispatch both bindings share, so that they only
/// convert options in and the outcome out.
pub async fn execute<R: Reporter + ?Sized>(
    client: &Client,
    op: Operation,
    request: Request,
    reporter: &R,
) -> Result<Outcome> {
    let Request {
        migrations,
        seeds,
        options,
        seed_options,
        to,
        steps,
        from,
        dry_run,
        unlock: unlock_options,
        accept: accept_options,
        create_database: database,
    } = request;
    let (o, r) = (&options, reporter);
    Ok(match op {
        Operation::Migrate => {
            Outcome::Migrate(migrate(client, migrations, o, to.as_deref(), r).await?)
        }
        Operation::Deploy => Outcome::Migrate(deploy(client, migrations, o, r).await?),
        Operation::Status => Outcome::Status(status(client, migrations, o, r).await?),
        Operation::Down => {
            Outcome::Down(down(client, migrations, o, steps, to.as_deref(), r).await?)
        }
        Operation::Redo => Outcome::Redo(redo(client, migrations, o, steps, r).await?),
        Operation::Seed => Outcome::Seed(seed(client, seeds, o, &seed_options, r).await?),
        Operation::Reset => {
            Outcome::Reset(reset(client, migrations, seeds, o, &seed_options, r).await?)
        }
        #[cfg(not(feature = "full"))]
        Operation::Adopt
        | Operation::Baseline
        | Operation::Unlock
        | Operation::Plan
        | Operation::Verify
        | Operation::CreateDatabase
        | Operation::Accept => {
            let _ = (from, dry_run, unlock_options, accept_options, database);
            return Err(Error::new(
                Kind::Internal,
                format!(
                    "this build of the engine leaves out the {op:?} operation (it was built without the `full` feature); the host must load the full build for it"
                ),
            ));
        }
        #[cfg(feature = "full")]
        Operation::Adopt | Operation::Baseline => {
            let what = match op {
                Operation::Adopt => adopt::What::Adopt {
                    from: from.as_deref(),
                },
                _ => adopt::What::Baseline { to: to.as_deref() },
            };
            let (t, s) = (o.tracking()?, o.session());
            Outcome::Adopt(adopt::run(client, &t, s, &migrations, what, dry_run).await?)
        }
        #[cfg(feature = "full")]
        Operation::Unlock => Outcome::Unlock(unlock(client, o, unlock_options).await?),
        #[cfg(feature = "full")]
        Operation::Plan => Outcome::Plan(crate::dry_run::plan(client, migrations, o, r).await?),
        #[cfg(feature = "full")]
        Operation::Verify => {
            Outcome::Verify(crate::verify::verify(client, migrations, o, r).await?)
        }
        #[cfg(feature = "full")]
        Operation::CreateDatabase => Outcome::CreateDatabase(
            create_database(client, database.as_deref().unwrap_or_default()).await?,
        ),
        #[cfg(feature = "full")]
        Operation::Accept => {
            Outcome::Accept(accept(client, migrations, o, &accept_options, r).await?)
        }
    })
}
