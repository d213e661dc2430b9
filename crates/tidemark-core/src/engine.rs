//! The one orchestration (style rule 2): every front end calls these and
//! only renders the events and reports.

use std::future::Future;

use tokio_postgres::Client;

use crate::accept::AcceptOptions;
use crate::adopt::{self, AdoptReport};
use crate::check::{prepare, Body, Guard};
use crate::db::{self, FirstRead, Item, Lock, SessionSettings, Tracking, Work};
use crate::error::{Error, Folder, Kind, Result};
use crate::plan::{self, AppliedRow, Policy};
use crate::report::{
    AcceptReport, AppliedMigration, CreateDatabaseReport, DownReport, Event, MigrateReport,
    PlanReport, RedoReport, Reporter, ResetReport, ScriptSeed, SeedReport, SeedRun, StatusReport,
    UnlockReport, VerifyReport,
};
use crate::source::{Migration, Migrations, ScriptTool, Seeds, SourceFile};
use crate::unlock::UnlockOptions;
use crate::url::{ConnectError, Endpoint, Target};
use crate::verify::VerifyOptions;

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
    /// The defaults of [`Request`], the one place they are declared.
    fn default() -> Self {
        Request::default().options()
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
    /// What says this is production (`NODE_ENV=production`), if anything.
    pub production: Option<String>,
    /// Seed production anyway, from the `production` seeds only.
    pub allow_production: bool,
    /// Run every seed again, even those that ran with the same contents.
    pub force: bool,
    /// Run this seed alone (its name, `001_users`, or its file name).
    pub only: Option<String>,
}

/// What only the host can do for `seed`: run a script seed (`.mjs`, `.ts`,
/// ...), which the engine never spawns. The engine calls it when the seed
/// is due, in folder order, while it holds the seed lock, so that seed
/// commands racing on one database run each script once, as they do SQL
/// seeds. It records the seed when the run resolves (with how long it ran,
/// in ms, by the host's clock), and stops the seeds there, nothing recorded
/// for it, when the run fails.
pub trait Scripts {
    /// Whether this host runs scripts; when it does not, `seed` stops
    /// before a script that is due and reports it as
    /// [`SeedReport::script_due`].
    fn runs_scripts(&self) -> bool {
        true
    }

    /// Runs `due` to its end.
    fn run(&self, due: ScriptSeed) -> impl Future<Output = Result<u64>>;
}

/// A host that runs no scripts (see [`Scripts::runs_scripts`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoScripts;

impl Scripts for NoScripts {
    fn runs_scripts(&self) -> bool {
        false
    }

    fn run(&self, due: ScriptSeed) -> impl Future<Output = Result<u64>> {
        std::future::ready(Err(Error::new(
            Kind::InvalidOption,
            format!(
                "{} is a script seed, and this host runs no scripts",
                due.file
            ),
        )))
    }
}

/// A host's runner, when it has one.
impl<S: Scripts> Scripts for Option<S> {
    fn runs_scripts(&self) -> bool {
        self.as_ref().is_some_and(S::runs_scripts)
    }

    async fn run(&self, due: ScriptSeed) -> Result<u64> {
        match self {
            Some(scripts) => scripts.run(due).await,
            None => NoScripts.run(due).await,
        }
    }
}

impl<F, Fut> Scripts for F
where
    F: Fn(ScriptSeed) -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    fn run(&self, due: ScriptSeed) -> impl Future<Output = Result<u64>> {
        self(due)
    }
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

/// [`load`], or the files loaded ahead: the same migrations, warnings and
/// error, reported here, in the same place.
fn load_or_take(
    files: Vec<SourceFile>,
    loaded: Option<LoadedAhead>,
    reporter: &(impl Reporter + ?Sized),
) -> Result<Vec<Migration>> {
    let Some(LoadedAhead(loaded)) = loaded else {
        return load(files, reporter);
    };
    let m = loaded?;
    report_all(reporter, &m.warnings);
    Ok(m.migrations)
}

/// Checks one pending migration and decides how it runs (lexes it once).
pub(crate) fn prepare_up<'a>(m: &'a Migration, options: &Options) -> Result<Body<'a>> {
    if let Some(tool) = m.script {
        // Whose script it is, and where its applied history comes from.
        let (whose, history) = match tool {
            ScriptTool::NodePgMigrate => (
                "a node-pg-migrate JavaScript/TypeScript migration",
                "it is already applied (tidemark adopt records it)",
            ),
            ScriptTool::Knex => (
                "a knex migration (JavaScript/TypeScript that takes knex)",
                "knex already applied it (tidemark adopt records it from knex_migrations)",
            ),
            ScriptTool::PostgresMigrations => (
                "a postgres-migrations JavaScript migration (it exports generateSql)",
                "postgres-migrations already applied it (tidemark adopt records it from its migrations table)",
            ),
            ScriptTool::Unknown => (
                "a JavaScript/TypeScript migration",
                "the tool that wrote it already applied it (tidemark adopt records it from that tool's table)",
            ),
        };
        let fix = format!(
            "{} is {whose}, and tidemark runs only SQL, so nothing was run; it is fine as history when {history}, but this one is pending: write it as SQL ({}_{}.sql) and delete the script",
            m.file(),
            m.version,
            m.name
        );
        return Err(Error::new(Kind::ScriptMigration, fix)
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

#[allow(clippy::too_many_arguments)]
async fn apply<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    policy: Policy,
    target: Option<&str>,
    reporter: &R,
    ahead: Ahead,
) -> Result<MigrateReport> {
    let t = options.tracking()?;
    let migrations = load_or_take(files, ahead.loaded, reporter)?;

    // The fast path: one read, no lock, no write.
    let mut prepared: Prepared<'_> = Vec::new();
    let first = first_read(client, &t, ahead.read).await?;
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
        let (mut lock, rows) = db::lock_and_read(client, &t, options.session(), reporter).await?;
        let result = async {
            let p = plan::plan_up(&migrations, &rows, policy, target)?;
            report_all(reporter, &p.warnings);
            reporter.report(Event::Planned {
                applied: p.applied,
                pending: p.pending.len(),
            });
            let items = up_items(&p.pending, options, &mut prepared)?;
            let done = run(&mut lock, &t, options, &items, reporter).await?;
            Ok::<_, Error>((done, p.applied, p.beyond_target))
        }
        .await;
        lock.release().await;
        match result {
            Ok((done, already, beyond)) => {
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
    migrate_after(client, files, options, target, reporter, Ahead::default()).await
}

async fn migrate_after<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    target: Option<&str>,
    reporter: &R,
    ahead: Ahead,
) -> Result<MigrateReport> {
    let policy = options.policy;
    apply(client, files, options, policy, target, reporter, ahead).await
}

/// `migrate` for CI and deploys: every check strict, whatever the options say.
pub async fn deploy<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<MigrateReport> {
    deploy_after(client, files, options, reporter, Ahead::default()).await
}

async fn deploy_after<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
    ahead: Ahead,
) -> Result<MigrateReport> {
    let policy = Policy::default();
    apply(client, files, options, policy, None, reporter, ahead).await
}

/// Reads the tracking table (one message, no lock) and describes every
/// migration.
pub async fn status<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
) -> Result<StatusReport> {
    status_after(client, files, options, reporter, Ahead::default()).await
}

async fn status_after<R: Reporter + ?Sized>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    reporter: &R,
    ahead: Ahead,
) -> Result<StatusReport> {
    let t = options.tracking()?;
    let migrations = load_or_take(files, ahead.loaded, reporter)?;
    let first = first_read(client, &t, ahead.read).await?;
    let rows = match first {
        FirstRead::Rows(rows) => rows,
        FirstRead::NoTable => Vec::new(),
        // Explained read-only: status takes no lock and changes nothing.
        FirstRead::Foreign => return Err(db::explain_foreign(client, &t).await),
    };
    Ok(plan::status(&migrations, &rows))
}

/// Runs `items` under `lock` with the options' session settings and
/// message bound; the last message releases the lock when it can.
async fn run<R: Reporter + ?Sized>(
    lock: &mut Lock<'_>,
    t: &Tracking,
    options: &Options,
    items: &[Item<'_>],
    reporter: &R,
) -> Result<Vec<AppliedMigration>> {
    let (s, max) = (options.session(), options.max_message_bytes);
    db::run_items(lock, t, s, items, max, true, reporter).await
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
    let (mut lock, rows) = db::lock_and_read(client, &t, options.session(), reporter).await?;
    let result = async {
        let chosen = plan::plan_down(&migrations, &rows, steps, to)?;
        let items = down_items(&chosen, options)?;
        let reverted = run(&mut lock, &t, options, &items, reporter).await?;
        Ok(DownReport { reverted })
    }
    .await;
    lock.release().await;
    result
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
    let (mut lock, rows) = db::lock_and_read(client, &t, options.session(), reporter).await?;
    let result = async {
        let chosen = plan::plan_down(&migrations, &rows, steps, None)?;
        let mut items = down_items(&chosen, options)?;
        let again: Vec<_> = chosen.iter().rev().map(|m| (*m, None)).collect();
        items.extend(up_items(&again, options, &mut Vec::new())?);
        let done = run(&mut lock, &t, options, &items, reporter).await?;
        let (reverted, applied) = done.split_at(chosen.len().min(done.len()));
        Ok(RedoReport {
            reverted: reverted.to_vec(),
            applied: applied.to_vec(),
        })
    }
    .await;
    lock.release().await;
    result
}

/// Runs the seeds of one environment folder, each in its own transaction,
/// logging each in the seeds table. A seed that already ran with the same
/// contents is skipped (unless `force`); a changed one runs again, so seeds
/// should be idempotent. Refuses production unless `allow_production` and
/// the environment is `production`.
pub async fn seed<R: Reporter + ?Sized, S: Scripts>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    seed_options: &SeedOptions,
    reporter: &R,
    scripts: &S,
) -> Result<SeedReport> {
    refuse_production(Operation::Seed, seed_options)?;
    // Every file this reads is a seed: errors say so, for the host to
    // find the file in the seeds folder.
    run_seeds(client, files, options, seed_options, reporter, scripts)
        .await
        .map_err(|e| e.in_folder(Folder::Seed))
}

async fn run_seeds<R: Reporter + ?Sized, S: Scripts>(
    client: &Client,
    files: Vec<SourceFile>,
    options: &Options,
    seed_options: &SeedOptions,
    reporter: &R,
    scripts: &S,
) -> Result<SeedReport> {
    let env = seed_options.environment.as_str();
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
    // Refuse bad SQL before anything runs (script seeds are the host's).
    let mut bodies = seeds
        .seeds
        .iter()
        .map(|s| {
            (!s.script)
                .then(|| prepare(&s.sql, false, Some(options.guard())))
                .transpose()
        })
        .collect::<Result<Vec<Option<Body<'_>>>>>()?;
    let (mut lock, ran) = db::lock_and_read_seeds(client, &t, options.session(), reporter).await?;
    let result = async {
        let (s, max) = (options.session(), options.max_message_bytes);
        let mut recorded = Vec::new();
        let mut skipped = Vec::new();
        let mut script_due = None;
        let mut next = 0;
        // The SQL seeds up to the next script that is due run in one go;
        // then the host runs the script, under the same lock; and so on.
        while next < seeds.seeds.len() {
            let mut items = Vec::new();
            let mut due = None;
            for (i, seed) in seeds.seeds.iter().enumerate().skip(next) {
                next = i + 1;
                let same = ran
                    .iter()
                    .any(|(n, sum)| n == &seed.name && sum == &seed.checksum);
                if same && !seed_options.force {
                    reporter.report(Event::SeedSkipped {
                        name: seed.name.clone(),
                        file: seed.sql.file.clone(),
                    });
                    skipped.push(seed.name.clone());
                    continue;
                }
                let Some(body) = bodies[i].take() else {
                    due = Some(ScriptSeed {
                        name: seed.name.clone(),
                        file: seed.sql.file.clone(),
                        checksum: seed.checksum.clone(),
                    });
                    break;
                };
                items.push(Item {
                    work: Work::Seed,
                    key: &seed.name,
                    name: &seed.name,
                    text: &seed.sql,
                    body,
                    checksum: &seed.checksum,
                    previous: None,
                });
            }
            // The lock stays held across a script the host runs next.
            let runs = due.is_some() && scripts.runs_scripts();
            let done = db::run_items(&mut lock, &t, s, &items, max, !runs, reporter).await?;
            recorded.extend(done.into_iter().map(|d| SeedRun {
                name: d.version,
                file: d.file,
                duration_ms: d.duration_ms,
            }));
            let Some(due) = due else { break };
            if !runs {
                script_due = Some(due);
                break;
            }
            let duration_ms = scripts
                .run(due.clone())
                .await
                .map_err(|e| e.at(&due.file, None, None))?;
            db::record_script_seed(&lock, &t, s, &due.name, &due.checksum, duration_ms).await?;
            reporter.report(Event::SeedApplied {
                name: due.name.clone(),
                file: due.file.clone(),
                duration_ms,
            });
            recorded.push(SeedRun {
                name: due.name,
                file: due.file,
                duration_ms,
            });
        }
        Ok::<_, Error>(SeedReport {
            environment: env.to_string(),
            ran: recorded,
            skipped,
            script_due,
        })
    }
    .await;
    lock.release().await;
    result
}

/// Development only: drops the `public` schema (and the tracking schema)
/// with everything in them, recreates `public`, applies every migration and
/// runs the seeds. Refuses production.
pub async fn reset<R: Reporter + ?Sized, S: Scripts>(
    client: &Client,
    migrations: Vec<SourceFile>,
    seeds: Vec<SourceFile>,
    options: &Options,
    seed_options: &SeedOptions,
    reporter: &R,
    scripts: &S,
) -> Result<ResetReport> {
    refuse_production(Operation::Reset, seed_options)?;
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
        "BEGIN;\n{}{drops}CREATE SCHEMA public;\nCOMMIT;",
        db::xact_lock_sql(&t, options.session())
    );
    if let Err(e) = client.simple_query(&sql).await {
        let _ = client.simple_query("ROLLBACK").await;
        return Err(Error::database("could not drop the schemas", &e));
    }
    reporter.report(Event::SchemasDropped { schemas });
    let migrate = deploy_after(client, migrations, options, reporter, Ahead::default()).await?;
    let seed = seed(client, seeds, options, seed_options, reporter, scripts).await?;
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

/// The operations the hosts run through [`execute`], by name
/// (`"migrate"`, `"createDatabase"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
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
    /// `db create`: connects to the server's `postgres` database and
    /// creates the URL's database (see [`Request::target`]).
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

/// Everything one operation may use, as a host sends it: one serde struct,
/// deserialized by both bindings from the JS options. Its keys are the keys
/// of the JS options table (`npm/tidemark/lib/options.cjs`) and of the
/// resolved config, so the host passes its config through; every default is
/// declared here (`#[serde(default)]` takes [`Request::default`]).
/// Durations are milliseconds.
///
/// ```
/// let r: tidemark_core::Request = serde_json::from_str(r#"{"url": "postgres://h/d", "lockTimeout": 5000}"#).unwrap();
/// assert_eq!((r.lock_wait_timeout, r.lock_timeout, r.seed_env.as_str()), (120_000, Some(5000), "development"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Request {
    /// The database URL (or keyword/value string).
    pub url: String,
    /// The migrations folder's entries (see [`Migrations::from_files`]).
    pub migrations: Vec<SourceFile>,
    /// The seed environment folder's files.
    pub seeds: Vec<SourceFile>,
    /// Schema of the tracking tables.
    pub schema: String,
    /// The migrations tracking table.
    pub table: String,
    /// The seed log table.
    pub seeds_table: String,
    /// How long to wait for another run's migration lock.
    pub lock_wait_timeout: u64,
    /// `lock_timeout` for the migrations' own statements.
    pub lock_timeout: Option<u64>,
    /// `statement_timeout` for the migrations' own statements.
    pub statement_timeout: Option<u64>,
    /// The whole budget for connecting, retries included; unset, the URL's
    /// `connect_timeout`, else [`crate::url::DEFAULT_CONNECT_TIMEOUT_MS`].
    pub connect_timeout: Option<u64>,
    /// Encrypt without verifying the server certificate.
    pub tls_insecure: bool,
    /// The URL goes through a transaction-mode pooler and no direct URL is
    /// set (the host decides): see [`Options::pool_safe`].
    pub pool_safe: bool,
    /// `migrate`: relaxed checks (`deploy` ignores them).
    pub allow_drift: bool,
    pub allow_missing: bool,
    pub allow_out_of_order: bool,
    /// `migrate`, `down`, `baseline`: the target version.
    pub to: Option<String>,
    /// `down`, `redo`: how many migrations.
    pub steps: Option<usize>,
    /// `adopt`: whose history to adopt (else detected).
    pub from: Option<String>,
    /// `adopt`, `baseline`: report, write nothing.
    pub dry_run: bool,
    /// The seed environment: the folder of the seeds folder the seeds come
    /// from (the options table's `env`, resolved).
    pub seed_env: String,
    /// What says this is production (`NODE_ENV=production`), if anything:
    /// seeds and reset refuse it.
    pub production_source: Option<String>,
    /// `seed`: seed production anyway, from the `production` folder only.
    pub allow_production: bool,
    /// `seed`: run every seed again.
    pub force: bool,
    /// `seed`: run this seed alone.
    pub only: Option<String>,
    /// `unlock`: end the holder's session (only this pid, when given).
    pub terminate: bool,
    pub pid: Option<u32>,
    /// `accept`: the applied migration's version, and why its edit changes
    /// no behaviour.
    pub version: Option<String>,
    pub reason: Option<String>,
    /// The operating system's user: the database user when the URL names
    /// none (libpq's default), and who accepts an edit.
    pub os_user: Option<String>,
    /// Where the host found the URL (`DATABASE_URL`, `--url`), for the
    /// `connecting` event.
    pub url_source: Option<String>,
    /// The pooled URL's source when the host switched to a direct URL, and
    /// why that one looked pooled.
    pub pooled_from: Option<String>,
    pub pooler_reason: Option<String>,
    /// No URL: the host's embedded database stands in (it says which).
    pub embedded: Option<Embedded>,
    /// `db create`: the database to create; set by [`Request::target`].
    #[serde(skip)]
    pub create_database: Option<String>,
    /// `verify`: lint warnings are errors.
    pub strict: bool,
    /// `verify`: this connection is the target database to check, as
    /// `deploy` would, without the lock or writing (see [`VerifyOptions`]).
    pub verify_target: bool,
    /// `verify` with `verify_target`: run the pending migrations there in a
    /// transaction that is rolled back.
    pub rehearse: bool,
    /// `db create`: drop verify's scratch database instead.
    pub drop_scratch: bool,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            url: String::new(),
            migrations: Vec::new(),
            seeds: Vec::new(),
            schema: "public".into(),
            table: "schema_migrations".into(),
            seeds_table: "schema_seeds".into(),
            lock_wait_timeout: 120_000,
            lock_timeout: None,
            statement_timeout: None,
            connect_timeout: None,
            tls_insecure: false,
            pool_safe: false,
            allow_drift: false,
            allow_missing: false,
            allow_out_of_order: false,
            to: None,
            steps: None,
            from: None,
            dry_run: false,
            seed_env: "development".into(),
            production_source: None,
            allow_production: false,
            force: false,
            only: None,
            terminate: false,
            pid: None,
            version: None,
            reason: None,
            os_user: None,
            url_source: None,
            pooled_from: None,
            pooler_reason: None,
            embedded: None,
            create_database: None,
            strict: false,
            verify_target: false,
            rehearse: false,
            drop_scratch: false,
        }
    }
}

/// The host's embedded database, for the `connecting` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Embedded {
    /// Its folder, as the host shows it.
    pub dir: String,
    /// Why it is used (no database URL is set).
    pub reason: String,
    /// While `db serve` serves it: its URL and that process.
    pub url: Option<String>,
    pub served_by: Option<u32>,
}

/// The defaults a host shows (`--help`) and resolves its config with: the
/// same values [`Request`] takes when a key is missing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    pub schema: String,
    pub table: String,
    pub seeds_table: String,
    pub lock_wait_timeout: u64,
    pub connect_timeout: u64,
    pub seed_env: String,
    /// The endings of the migration files whose bytes the engine reads
    /// ([`crate::layout::READ_ENDINGS`]); a host passes the rest by name.
    pub read_endings: &'static [&'static str],
}

/// Where and how long to connect: see [`Request::target`].
#[derive(Debug)]
pub struct Dial {
    pub target: Target,
    /// Where the connection goes, for events and messages.
    pub endpoint: Endpoint,
    /// The whole budget for connecting, retries included.
    pub budget_ms: u64,
}

/// See [`Defaults`].
pub fn defaults() -> Defaults {
    let r = Request::default();
    Defaults {
        schema: r.schema,
        table: r.table,
        seeds_table: r.seeds_table,
        lock_wait_timeout: r.lock_wait_timeout,
        connect_timeout: crate::url::DEFAULT_CONNECT_TIMEOUT_MS,
        seed_env: r.seed_env,
        read_endings: &crate::layout::READ_ENDINGS,
    }
}

impl Request {
    /// The settings every operation shares.
    pub fn options(&self) -> Options {
        Options {
            schema: self.schema.clone(),
            table: self.table.clone(),
            seeds_table: self.seeds_table.clone(),
            lock_wait_timeout_ms: self.lock_wait_timeout,
            lock_timeout_ms: self.lock_timeout,
            statement_timeout_ms: self.statement_timeout,
            max_message_bytes: 8 << 20,
            policy: Policy {
                allow_drift: self.allow_drift,
                allow_missing: self.allow_missing,
                allow_out_of_order: self.allow_out_of_order,
            },
            pool_safe: self.pool_safe,
        }
    }

    /// What `seed` and `reset` need to know about where they run.
    pub fn seed_options(&self) -> SeedOptions {
        SeedOptions {
            environment: self.seed_env.clone(),
            production: self.production_source.clone(),
            allow_production: self.allow_production,
            force: self.force,
            only: self.only.clone(),
        }
    }

    /// Where `op` connects: the URL read by the one parser (an
    /// `application_name` of its own is kept, else `tidemark`), the session
    /// settings in the startup packet on direct connections (through a
    /// pooler they are `SET LOCAL` per transaction), the operating system's
    /// user when the URL names none (libpq's default; messages still say
    /// "the default"), and for `db create` the server's `postgres` database
    /// (the database to create is kept in `create_database`).
    pub fn target(&mut self, op: Operation) -> Result<Dial, ConnectError> {
        let mut target = crate::url::parse(&self.url, self.tls_insecure)?;
        if !self.pool_safe {
            if let Some(options) = crate::url::startup_options(
                target.config.get_options(),
                self.lock_timeout,
                self.statement_timeout,
            ) {
                target.config.options(options);
            }
        }
        let os_user = self
            .os_user
            .as_deref()
            .filter(|_| target.config.get_user().is_none());
        if op == Operation::CreateDatabase {
            let wanted = crate::create_db::maintenance_target(&mut target);
            self.create_database = Some(match os_user {
                Some(user) if wanted.is_empty() => user.to_string(),
                _ => wanted,
            });
        }
        let endpoint = Endpoint::of(&target);
        if let Some(user) = os_user {
            target.config.user(user);
        }
        let budget_ms =
            crate::url::connect_budget(self.connect_timeout, &target).as_millis() as u64;
        Ok(Dial {
            target,
            endpoint,
            budget_ms,
        })
    }

    /// Refuses, before connecting, what `op` must never do with this
    /// request: seeding or resetting production (the one place this rule
    /// is written). Pure; hosts call it first, and [`execute`] again.
    pub fn check(&self, op: Operation) -> Result<()> {
        refuse_production(op, &self.seed_options())
    }

    /// What a host does first, before it reads a file or connects:
    /// [`Request::check`], then, when the request has a URL, reads it (a
    /// URL that cannot be used is `E_INVALID_URL`) and reports
    /// [`Event::Connecting`] with it redacted, so that even a run that
    /// fails on its files says which database it was pointed at (or, with
    /// `embedded`, which embedded database).
    pub fn begin<R: Reporter + ?Sized>(&self, op: Operation, reporter: &R) -> Result<()> {
        self.check(op)?;
        if let Some(e) = &self.embedded {
            reporter.report(Event::Connecting {
                source: "embedded".into(),
                url: e.url.clone(),
                instead_of: None,
                pooler: None,
                dir: Some(e.dir.clone()),
                reason: Some(e.reason.clone()),
                served_by: e.served_by,
            });
            return Ok(());
        }
        if self.url.is_empty() {
            return Ok(());
        }
        let info = crate::url::inspect(&self.url);
        let source = self.url_source.as_deref().unwrap_or("the url option");
        if let Some(problem) = info.problem {
            return Err(Error::new(
                Kind::InvalidUrl,
                format!(
                    "invalid database URL {} (from {source}): {problem}",
                    info.redacted
                ),
            ));
        }
        let switched = self.pooled_from.is_some();
        reporter.report(Event::Connecting {
            source: source.to_string(),
            url: Some(info.redacted),
            instead_of: self.pooled_from.clone(),
            pooler: self.pooler_reason.clone().filter(|_| switched),
            dir: None,
            reason: None,
            served_by: None,
        });
        Ok(())
    }
}

/// Seeds refuse production unless allowed and from the `production`
/// folder; `reset` always refuses it (design §6). The messages name no
/// flag: the host phrases the fix from the code.
fn refuse_production(op: Operation, seed: &SeedOptions) -> Result<()> {
    let Some(signal) = seed.production.as_deref() else {
        return Ok(());
    };
    let why = format!("this is production ({signal})");
    match op {
        Operation::Reset => Err(Error::new(
            Kind::ResetProduction,
            format!("refusing to reset: {why}; reset drops the schema and every table in it, so it never runs in production"),
        )),
        Operation::Seed if !seed.allow_production => Err(Error::new(
            Kind::SeedProduction,
            format!("refusing to seed: {why}; seeding production could overwrite real data"),
        )),
        Operation::Seed if seed.environment != "production" => Err(Error::new(
            Kind::SeedProduction,
            format!(
                "refusing to seed: {why}; production is seeded only from the production seeds, and the seed environment is {:?}",
                seed.environment
            ),
        )),
        _ => Ok(()),
    }
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
/// convert the request in and the outcome (or the error) out. An error
/// about a file says which folder it is in and carries its source line.
pub async fn execute<R: Reporter + ?Sized>(
    client: &Client,
    op: Operation,
    request: Request,
    reporter: &R,
) -> Result<Outcome> {
    execute_after(client, op, request, reporter, None, None, &NoScripts).await
}

/// The first read of `deploy`, `migrate` and `status` (tracking rows and the
/// probe for other tools' tables: one message, no lock, no write), made by
/// [`read_ahead`] while the host was still reading the files. Its outcome,
/// an error included, is taken by [`execute_after`] where the read would
/// have been made, after the files are checked, so what is reported and in
/// which order is the same as without it.
#[derive(Debug)]
pub struct ReadAhead {
    qualified: String,
    read: Result<FirstRead>,
}

/// Makes the first read of `op` for `request` on a fresh connection before
/// the files arrive (the native host's early connect, issue 15): the query
/// runs on the server while the host reads the folder. `None` for an
/// operation that starts otherwise, or options [`execute`] will refuse.
pub async fn read_ahead(client: &Client, op: Operation, request: &Request) -> Option<ReadAhead> {
    if !matches!(
        op,
        Operation::Deploy | Operation::Migrate | Operation::Status
    ) {
        return None;
    }
    let t = request.options().tracking().ok()?;
    let read = adopt::first_read(client, &t).await;
    Some(ReadAhead {
        qualified: t.qualified,
        read,
    })
}

/// The migration files of a request, checked and parsed by [`load_ahead`]
/// while the connection was still being set up. Its outcome, an error or
/// warnings included, is taken by [`execute_after`] where the files would
/// have been loaded, so what is reported and in which order is the same as
/// without it: only the work is done earlier.
#[derive(Debug)]
pub struct LoadedAhead(Result<Migrations>);

/// Loads `request`'s migration files for `op` before the connection is up
/// (issue 15: the CPU work of checking and hashing them then overlaps the
/// round trips of connecting; it matters for the wasm engine and a distant
/// server). `None` for an operation that loads otherwise. Pass the result to
/// [`execute_after`] with the same `request`.
pub fn load_ahead(op: Operation, request: &Request) -> Option<LoadedAhead> {
    matches!(
        op,
        Operation::Deploy | Operation::Migrate | Operation::Status
    )
    .then(|| LoadedAhead(Migrations::from_files(request.migrations.clone())))
}

/// What was done ahead for deploy, migrate and status: the first read and
/// the files loaded.
#[derive(Debug, Default)]
struct Ahead {
    read: Option<ReadAhead>,
    loaded: Option<LoadedAhead>,
}

/// The first read: the one made ahead for this tracking table, else made now.
async fn first_read(client: &Client, t: &Tracking, ahead: Option<ReadAhead>) -> Result<FirstRead> {
    match ahead {
        Some(a) if a.qualified == t.qualified => a.read,
        _ => adopt::first_read(client, t).await,
    }
}

/// [`execute`], taking the first read [`read_ahead`] made on this `client`
/// and the files [`load_ahead`] loaded from this `request`; `seed` and
/// `reset` run the script seeds due through `scripts`.
pub async fn execute_after<R: Reporter + ?Sized, S: Scripts>(
    client: &Client,
    op: Operation,
    request: Request,
    reporter: &R,
    ahead: Option<ReadAhead>,
    loaded: Option<LoadedAhead>,
    scripts: &S,
) -> Result<Outcome> {
    let mut request = request;
    request.check(op)?;
    let (options, seed_options) = (request.options(), request.seed_options());
    // Kept to quote the failing line of a file in the error; the engine
    // itself consumes its own copies (the files loaded ahead are one).
    let migrations = match loaded {
        Some(_) => std::mem::take(&mut request.migrations),
        None => request.migrations.clone(),
    };
    let files = (migrations, request.seeds.clone());
    let ahead = Ahead {
        read: ahead,
        loaded,
    };
    dispatch(
        client,
        op,
        request,
        &options,
        &seed_options,
        reporter,
        ahead,
        scripts,
    )
    .await
    .map_err(|e| e.with_source(&files.0, &files.1))
}

// Private: what `execute_after` takes, passed on.
#[allow(clippy::too_many_arguments)]
async fn dispatch<R: Reporter + ?Sized, S: Scripts>(
    client: &Client,
    op: Operation,
    request: Request,
    o: &Options,
    seed_options: &SeedOptions,
    r: &R,
    ahead: Ahead,
    scripts: &S,
) -> Result<Outcome> {
    let Request {
        migrations,
        seeds,
        to,
        steps,
        from,
        dry_run,
        terminate,
        pid,
        version,
        reason,
        os_user,
        create_database: database,
        strict,
        verify_target,
        rehearse,
        drop_scratch,
        ..
    } = request;
    let verify_options = VerifyOptions {
        strict,
        target: verify_target,
        rehearse,
        drop_scratch,
    };
    Ok(match op {
        Operation::Migrate => {
            Outcome::Migrate(migrate_after(client, migrations, o, to.as_deref(), r, ahead).await?)
        }
        Operation::Deploy => Outcome::Migrate(deploy_after(client, migrations, o, r, ahead).await?),
        Operation::Status => Outcome::Status(status_after(client, migrations, o, r, ahead).await?),
        Operation::Down => {
            Outcome::Down(down(client, migrations, o, steps, to.as_deref(), r).await?)
        }
        Operation::Redo => Outcome::Redo(redo(client, migrations, o, steps, r).await?),
        Operation::Seed => Outcome::Seed(seed(client, seeds, o, seed_options, r, scripts).await?),
        Operation::Reset => {
            Outcome::Reset(reset(client, migrations, seeds, o, seed_options, r, scripts).await?)
        }
        #[cfg(not(feature = "full"))]
        Operation::Adopt
        | Operation::Baseline
        | Operation::Unlock
        | Operation::Plan
        | Operation::Verify
        | Operation::CreateDatabase
        | Operation::Accept => {
            let _ = (
                from,
                dry_run,
                terminate,
                pid,
                version,
                reason,
                os_user,
                database,
                verify_options,
            );
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
        Operation::Unlock => {
            Outcome::Unlock(unlock(client, o, UnlockOptions { terminate, pid }).await?)
        }
        #[cfg(feature = "full")]
        Operation::Plan => Outcome::Plan(crate::dry_run::plan(client, migrations, o, r).await?),
        #[cfg(feature = "full")]
        Operation::Verify => {
            Outcome::Verify(crate::verify::verify(client, migrations, o, &verify_options, r).await?)
        }
        #[cfg(feature = "full")]
        Operation::CreateDatabase if verify_options.drop_scratch => Outcome::CreateDatabase(
            crate::verify::drop_scratch(client, database.as_deref().unwrap_or_default()).await?,
        ),
        #[cfg(feature = "full")]
        Operation::CreateDatabase => Outcome::CreateDatabase(
            create_database(client, database.as_deref().unwrap_or_default()).await?,
        ),
        #[cfg(feature = "full")]
        Operation::Accept => {
            let accept_options = AcceptOptions {
                version,
                reason,
                by: os_user,
            };
            Outcome::Accept(accept(client, migrations, o, &accept_options, r).await?)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_request_takes_the_defaults_for_missing_keys() {
        let r: Request = serde_json::from_value(serde_json::json!({
            "url": "postgres://h/d",
            "lockTimeout": 5000,
            "allowDrift": true,
            "migrations": [{ "name": "001_a.sql", "bytes": [115, 101, 108] }],
            "somethingTheHostKeeps": { "nested": [1, 2] },
        }))
        .unwrap();
        assert_eq!(r.migrations[0].bytes, b"sel");
        let o = r.options();
        assert_eq!(
            (o.schema.as_str(), o.table.as_str(), o.seeds_table.as_str()),
            ("public", "schema_migrations", "schema_seeds")
        );
        assert_eq!(
            (o.lock_wait_timeout_ms, o.lock_timeout_ms),
            (120_000, Some(5000))
        );
        assert!(o.policy.allow_drift && !o.policy.allow_missing);
        assert_eq!(r.seed_options().environment, "development");
        assert_eq!(Options::default(), Request::default().options());
    }

    #[test]
    fn production_is_refused_before_connecting_in_words_without_flags() {
        let mut r = Request {
            production_source: Some("VERCEL_ENV=production".into()),
            ..Request::default()
        };
        let message = |r: &Request, op| r.check(op).unwrap_err().message().to_string();
        assert_eq!(
            message(&r, Operation::Seed),
            "refusing to seed: this is production (VERCEL_ENV=production); seeding production could overwrite real data"
        );
        assert!(message(&r, Operation::Reset).starts_with(
            "refusing to reset: this is production (VERCEL_ENV=production); reset drops the schema"
        ));
        r.allow_production = true;
        assert!(message(&r, Operation::Seed).ends_with("the seed environment is \"development\""));
        r.seed_env = "production".into();
        assert!(r.check(Operation::Seed).is_ok());
        assert!(r.check(Operation::Reset).is_err());
        assert!(r.check(Operation::Migrate).is_ok());
        r.production_source = None;
        assert!(r.check(Operation::Reset).is_ok());
    }

    #[test]
    fn begin_refuses_then_says_where_it_connects() {
        let events = std::cell::RefCell::new(Vec::new());
        let report = |e: Event| events.borrow_mut().push(serde_json::to_value(e).unwrap());
        let mut r = Request {
            url: "postgres://app:secret@db.example.com/app".into(),
            url_source: Some("DATABASE_URL".into()),
            ..Request::default()
        };
        r.begin(Operation::Deploy, &report).unwrap();
        r.url = "postgres://".into();
        assert_eq!(
            r.begin(Operation::Deploy, &report).unwrap_err().code(),
            "E_INVALID_URL"
        );
        r.url = String::new();
        r.embedded = Some(Embedded {
            dir: ".tidemark/pglite".into(),
            reason: "no database URL is set".into(),
            ..Embedded::default()
        });
        r.begin(Operation::Migrate, &report).unwrap();
        r.production_source = Some("NODE_ENV=production".into());
        assert_eq!(
            r.begin(Operation::Reset, &report).unwrap_err().code(),
            "E_RESET_PRODUCTION"
        );
        assert_eq!(
            events.into_inner(),
            vec![
                serde_json::json!({ "event": "connecting", "source": "DATABASE_URL", "url": "postgres://app:****@db.example.com/app" }),
                serde_json::json!({ "event": "connecting", "source": "embedded", "dir": ".tidemark/pglite", "reason": "no database URL is set" }),
            ]
        );
    }

    #[test]
    fn the_url_keeps_its_own_application_name() {
        let mut r = Request {
            url: "postgres://u@h/d?application_name=billing".into(),
            ..Request::default()
        };
        let d = r.target(Operation::Migrate).unwrap();
        assert_eq!(d.target.config.get_application_name(), Some("billing"));
        assert_eq!(d.budget_ms, crate::url::DEFAULT_CONNECT_TIMEOUT_MS);
        r.url = "postgres://h/d".into();
        r.os_user = Some("alice".into());
        r.lock_timeout = Some(5000);
        let d = r.target(Operation::Migrate).unwrap();
        assert_eq!(d.target.config.get_application_name(), Some("tidemark"));
        assert_eq!(d.target.config.get_user(), Some("alice"));
        assert_eq!(d.endpoint.user, "");
        assert_eq!(d.target.config.get_options(), Some("-c lock_timeout=5000"));
        r.url = "postgres://h".into();
        let d = r.target(Operation::CreateDatabase).unwrap();
        assert_eq!(d.target.config.get_dbname(), Some("postgres"));
        assert_eq!(r.create_database.as_deref(), Some("alice"));
    }
}
