//! Taking over another tool's history (`adopt`) and marking a database built
//! outside any tool (`baseline`), without running a migration.
//!
//! The decisions are pure (style rule 1): [`Tool::entries`] turns the rows a
//! peer wrote into [`Entry`]s, [`plan`] matches them to the local files by the
//! peer's own identity (a name, a version, or drizzle's SHA-256 of the file)
//! and says what tidemark records. The SQL lives in `run` (three messages:
//! lock and look, read, write and commit, in one transaction under
//! tidemark's lock) and `first_read` (deploy's refusal). Neither touches the
//! peer's table, except dbmate's and golang-migrate's `schema_migrations`
//! when it is tidemark's own table, which is converted in place with its rows
//! kept.

use sha2::{Digest, Sha384};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::{self, quote_literal, Tracking};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::layout;
use crate::plan::AppliedRow;
use crate::source::{cmp_versions, hex, normalize, parse_file_name, Migrations, SourceFile};

/// The tools whose history tidemark adopts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    NodePgMigrate,
    Knex,
    Drizzle,
    Prisma,
    Sqlx,
    Dbmate,
    GolangMigrate,
    Diesel,
    PostgresMigrations,
}

impl Tool {
    /// Every tool, in the order they are looked for.
    pub const ALL: [Tool; 9] = [
        Tool::NodePgMigrate,
        Tool::Knex,
        Tool::Drizzle,
        Tool::Prisma,
        Tool::Sqlx,
        Tool::Dbmate,
        Tool::GolangMigrate,
        Tool::Diesel,
        Tool::PostgresMigrations,
    ];

    /// The name users know it by (and `--from` takes).
    pub fn name(self) -> &'static str {
        match self {
            Tool::NodePgMigrate => "node-pg-migrate",
            Tool::Knex => "knex",
            Tool::Drizzle => "drizzle",
            Tool::Prisma => "prisma",
            Tool::Sqlx => "sqlx",
            Tool::Dbmate => "dbmate",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Diesel => "diesel",
            Tool::PostgresMigrations => "postgres-migrations",
        }
    }

    /// Parses a `--from` value.
    pub fn parse(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The history table, as looked up (through `search_path` when
    /// unqualified).
    fn table(self) -> &'static str {
        match self {
            Tool::NodePgMigrate => "pgmigrations",
            Tool::Knex => "knex_migrations",
            Tool::Drizzle => "drizzle.__drizzle_migrations",
            Tool::Prisma => "_prisma_migrations",
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Dbmate | Tool::GolangMigrate => "schema_migrations",
            Tool::Diesel => "__diesel_schema_migrations",
            // A name other tools use too (TypeORM's, Laravel's): only a table
            // with its `hash` and `executed_at` counts (see `probe_row`).
            Tool::PostgresMigrations => "migrations",
        }
    }

    /// The columns read from the peer's table, in this order (missing ones
    /// read as NULL: the rows are read through `to_jsonb`).
    fn fields(self) -> &'static [&'static str] {
        match self {
            // node-pg-migrate: pgmigrations (id serial, name varchar, run_on timestamp)
            Tool::NodePgMigrate => &["id", "name", "run_on"],
            // knex: knex_migrations (id serial, name varchar: the file name
            // with its extension, batch integer, migration_time timestamptz)
            Tool::Knex => &["id", "name", "migration_time"],
            // drizzle-orm: drizzle.__drizzle_migrations (id serial, hash text, created_at bigint)
            Tool::Drizzle => &["id", "hash", "created_at", "name"],
            // Prisma Migrate: _prisma_migrations
            Tool::Prisma => &[
                "migration_name",
                "checksum",
                "started_at",
                "finished_at",
                "rolled_back_at",
                "logs",
            ],
            // sqlx: _sqlx_migrations (version bigint, description, installed_on,
            // success, checksum bytea (SHA-384), execution_time in ns)
            Tool::Sqlx => &[
                "version",
                "description",
                "installed_on",
                "success",
                "checksum",
                "execution_time",
            ],
            Tool::Dbmate => &["version"],
            Tool::GolangMigrate => &["version", "dirty"],
            // diesel: __diesel_schema_migrations (version varchar(50), run_on timestamp)
            Tool::Diesel => &["version", "run_on"],
            // postgres-migrations: migrations (id integer: the file's number,
            // name varchar(100): the file name after it, hash varchar(40):
            // SHA-1 of the file name and contents, executed_at timestamp)
            Tool::PostgresMigrations => &["id", "name", "hash", "executed_at"],
        }
    }

    /// How an entry of this tool is matched to a local file.
    fn describe_identity(self) -> &'static str {
        match self {
            Tool::NodePgMigrate | Tool::Knex => "by file name",
            Tool::Prisma => "by folder name",
            Tool::Drizzle => "by the SHA-256 of the file and the journal's `when`",
            Tool::GolangMigrate => "every file up to the recorded version",
            Tool::Sqlx | Tool::Dbmate | Tool::Diesel => "by version",
            Tool::PostgresMigrations => "by the file's number (its id)",
        }
    }

    /// Turns the rows read with [`Tool::fields`] into entries, or stops at a
    /// failure the peer recorded (which the user must resolve first).
    pub fn entries(self, rows: &[Vec<Option<String>>]) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let get = |r: &[Option<String>], i: usize| r.get(i).cloned().flatten();
        // The first field orders the history: an id or a version, digits.
        let mut rows: Vec<&Vec<Option<String>>> = rows.iter().collect();
        rows.sort_by(|a, b| {
            cmp_versions(
                &get(a, 0).unwrap_or_default(),
                &get(b, 0).unwrap_or_default(),
            )
        });
        let failed = |version: &str, message: String| {
            Err(Error::new(Kind::PeerFailed, message).with_version(version))
        };
        match self {
            Tool::NodePgMigrate => {
                for r in rows {
                    let Some(name) = get(r, 1) else { continue };
                    out.push(Entry {
                        applied_at: get(r, 2),
                        ..Entry::new(name.clone(), Key::Name(name))
                    });
                }
            }
            Tool::Knex => {
                // knex records the file name with its extension
                // (`20240101120000_create_users.js`); the files are matched
                // without it, so a migration rewritten as SQL still matches.
                for r in rows {
                    let Some(file) = get(r, 1) else { continue };
                    let name = file
                        .rsplit_once('.')
                        .filter(|(_, ext)| ext.chars().all(|c| c.is_ascii_alphanumeric()))
                        .map_or(file.as_str(), |(stem, _)| stem)
                        .to_string();
                    out.push(Entry {
                        applied_at: get(r, 2),
                        ..Entry::new(file.clone(), Key::Name(name))
                    });
                }
            }
            Tool::Drizzle => {
                for r in rows {
                    let Some(hash) = get(r, 1) else { continue };
                    let (when, name) = (get(r, 2), get(r, 3));
                    let label = match (&name, &when) {
                        (Some(name), _) => name.clone(),
                        (None, Some(w)) => format!("created_at {w} (hash {})", short(&hash)),
                        (None, None) => format!("hash {}", short(&hash)),
                    };
                    let hash = hash.to_ascii_lowercase();
                    out.push(Entry::new(label, Key::Hash { hash, when, name }));
                }
            }
            Tool::Prisma => {
                // A migration may have several rows: a failed or rolled-back
                // attempt, then the one that finished. The finished one counts;
                // a migration without one stops adoption.
                let mut names: Vec<String> = rows.iter().filter_map(|r| get(r, 0)).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let mine: Vec<_> = rows
                        .iter()
                        .filter(|r| get(r, 0).as_deref() == Some(name.as_str()))
                        .collect();
                    let Some(done) = mine
                        .iter()
                        .find(|r| get(r, 3).is_some() && get(r, 4).is_none())
                    else {
                        let unfinished = mine
                            .iter()
                            .any(|r| get(r, 3).is_none() && get(r, 4).is_none());
                        return failed(
                            &name,
                            if unfinished {
                                format!(
                                "Prisma recorded migration {name} as started but not finished (finished_at is NULL): it failed or is still running, and its changes may be partly applied; resolve it the Prisma way first (fix the database, then `prisma migrate resolve --applied {name}` or `--rolled-back {name}`), then run tidemark adopt again"
                            )
                            } else {
                                format!(
                                "Prisma marked migration {name} as rolled back (rolled_back_at is set) and has not applied it since; apply it with `prisma migrate deploy` or remove its folder, then run tidemark adopt again"
                            )
                            },
                        );
                    };
                    out.push(Entry {
                        applied_at: get(done, 3),
                        duration_ms: millis_between(get(done, 2), get(done, 3)),
                        checksum: get(done, 1).map(|c| c.to_ascii_lowercase()),
                        ..Entry::new(name.clone(), Key::Name(name))
                    });
                }
            }
            Tool::Sqlx => {
                for r in rows {
                    let Some(version) = get(r, 0) else { continue };
                    let description = get(r, 1).unwrap_or_default();
                    if get(r, 3).as_deref() == Some("false") {
                        return failed(&version, format!(
                            "sqlx recorded migration {version} ({description}) as failed (success = false in _sqlx_migrations), so its changes may be partly applied; fix the database, then delete that row (DELETE FROM _sqlx_migrations WHERE version = {version}) and run it again with sqlx, or run tidemark adopt again once it is resolved"
                        ));
                    }
                    let label = format!("{version} {description}");
                    let name = Some(description.replace(' ', "_"));
                    out.push(Entry {
                        applied_at: get(r, 2),
                        // execution_time is in nanoseconds.
                        duration_ms: get(r, 5)
                            .and_then(|ns| ns.parse::<u64>().ok())
                            .map(|ns| ns / 1_000_000),
                        // bytea reads as `\x<hex>`.
                        checksum: get(r, 4)
                            .map(|c| c.trim_start_matches("\\x").to_ascii_lowercase()),
                        ..Entry::new(label, Key::Version { version, name })
                    });
                }
            }
            Tool::Dbmate | Tool::Diesel => {
                for r in rows {
                    let Some(version) = get(r, 0) else { continue };
                    let key = Key::Version {
                        version: version.clone(),
                        name: None,
                    };
                    out.push(Entry {
                        applied_at: get(r, 1).filter(|_| self == Tool::Diesel),
                        row_key: (self == Tool::Dbmate).then(|| version.clone()),
                        ..Entry::new(version, key)
                    });
                }
            }
            Tool::PostgresMigrations => {
                for r in rows {
                    let (Some(id), Some(name)) = (get(r, 0), get(r, 1)) else {
                        continue;
                    };
                    // Its own first migration, which creates this table and
                    // has no file in the folder.
                    if id == "0" && name == "create-migrations-table" {
                        continue;
                    }
                    out.push(Entry {
                        applied_at: get(r, 3),
                        checksum: get(r, 2).map(|h| h.to_ascii_lowercase()),
                        ..Entry::new(
                            format!("{id} {name}"),
                            Key::Version {
                                version: id,
                                name: Some(name),
                            },
                        )
                    });
                }
            }
            Tool::GolangMigrate => {
                for r in rows {
                    let Some(version) = get(r, 0) else { continue };
                    if get(r, 1).as_deref() == Some("true") {
                        return failed(&version, format!(
                            "golang-migrate left version {version} dirty (dirty = true in schema_migrations): that migration failed part-way and its changes may be half applied; fix the database by hand, then record what is true with `migrate force {version}` (it is applied) or `migrate force <the version before it>` (it is not), and run tidemark adopt again"
                        ));
                    }
                    out.push(Entry {
                        row_key: Some(version.clone()),
                        ..Entry::new(format!("version {version}"), Key::UpTo(version))
                    });
                }
            }
        }
        Ok(out)
    }
}

fn short(s: &str) -> &str {
    s.get(..12).unwrap_or(s)
}

/// Milliseconds between two ISO 8601 timestamps of the same day, when both
/// parse (Prisma's started_at and finished_at); `None` otherwise.
fn millis_between(start: Option<String>, end: Option<String>) -> Option<u64> {
    fn ms_of_day(t: &str) -> Option<f64> {
        let time = t.get(11..)?;
        let h: f64 = time.get(0..2)?.parse().ok()?;
        let m: f64 = time.get(3..5)?.parse().ok()?;
        let rest = time.get(6..)?;
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let s: f64 = rest.get(..end)?.parse().ok()?;
        Some(((h * 60.0 + m) * 60.0 + s) * 1000.0)
    }
    let (start, end) = (start?, end?);
    if start.get(..10)? != end.get(..10)?
        || start.get(19..).map(tz_suffix) != end.get(19..).map(tz_suffix)
    {
        return None;
    }
    let d = ms_of_day(&end)? - ms_of_day(&start)?;
    (d >= 0.0).then_some(d.round() as u64)
}

fn tz_suffix(rest: &str) -> &str {
    rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
}

/// How a peer names what it applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// node-pg-migrate's file name without extension, Prisma's folder name.
    Name(String),
    /// sqlx, dbmate, diesel: the version (sqlx also gives a description).
    Version {
        version: String,
        name: Option<String>,
    },
    /// golang-migrate: the latest applied version; every file up to it counts.
    UpTo(String),
    /// drizzle: SHA-256 of the file, and the journal's `when` it recorded.
    Hash {
        hash: String,
        when: Option<String>,
        name: Option<String>,
    },
}

/// One entry of a peer's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// How messages name it.
    pub label: String,
    pub key: Key,
    /// When the peer applied it (ISO 8601), where it recorded that.
    pub applied_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// The checksum the peer recorded of the file (lowercase hex): Prisma's
    /// SHA-256, sqlx's SHA-384.
    pub checksum: Option<String>,
    /// The peer's row key when its table becomes tidemark's (converted in
    /// place): the row is updated, not inserted.
    pub row_key: Option<String>,
}

impl Entry {
    /// An entry with nothing recorded beyond its identity.
    fn new(label: String, key: Key) -> Entry {
        Entry {
            label,
            key,
            applied_at: None,
            duration_ms: None,
            checksum: None,
            row_key: None,
        }
    }
}

/// One local migration file, as adoption sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub version: String,
    pub name: String,
    /// The file (for folder layouts, `<folder>/migration.sql`).
    pub file: String,
    /// tidemark's checksum (what deploy will compare with).
    pub checksum: String,
    /// The file's bytes as they are on disk: peers hash these.
    pub raw: Vec<u8>,
    /// drizzle's journal `when` for this file.
    pub when: Option<String>,
}

impl Local {
    /// The file name without its extension (node-pg-migrate's name).
    fn stem(&self) -> &str {
        let base = self.file.rsplit('/').next().unwrap_or(&self.file);
        base.rsplit_once('.').map_or(base, |(s, _)| s)
    }

    /// The folder of a folder-per-migration layout (Prisma, drizzle v1).
    fn folder(&self) -> Option<&str> {
        self.file.rsplit_once('/').map(|(f, _)| f)
    }
}

/// The local migrations as the source model reads them (node-pg-migrate's
/// `.js`/`.ts` ones included: history only), with their bytes as on disk
/// and drizzle's journal `when` where a `meta/_journal.json` says.
pub fn locals(files: &[SourceFile]) -> Result<Vec<Local>> {
    let migrations = Migrations::from_files(files.to_vec())?.migrations;
    let journal = match files.iter().find(|f| f.name == layout::DRIZZLE_JOURNAL) {
        Some(f) => layout::drizzle_journal(&f.bytes)?,
        None => Vec::new(),
    };
    Ok(migrations
        .iter()
        .map(|m| {
            let stem = m.file().strip_suffix(".sql").unwrap_or(m.file());
            Local {
                version: m.version.clone(),
                name: m.name.clone(),
                file: m.file().to_string(),
                checksum: m.checksum.clone(),
                raw: files
                    .iter()
                    .find(|f| f.name == m.file())
                    .map(|f| f.bytes.clone())
                    .unwrap_or_default(),
                when: journal
                    .iter()
                    .find(|(tag, _)| tag == stem)
                    .and_then(|(_, w)| w.map(|w| w.to_string())),
            }
        })
        .collect())
}

/// What adoption found for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AdoptState {
    /// The file is the one the peer applied.
    Matched,
    /// The file differs from the checksum the peer recorded: tidemark records
    /// the peer's checksum, so `status` shows it as changed.
    Changed,
    /// The peer applied it but its file is not in the folder: `status` shows
    /// it as missing.
    NoFile,
}

/// One migration adoption records (or, with `dryRun`, would record).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adopted {
    pub version: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub state: AdoptState,
    /// When the peer applied it, where it recorded that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// The checksum recorded: tidemark's for a matched file, the peer's
    /// otherwise.
    #[serde(skip)]
    pub checksum: Option<String>,
    #[serde(skip)]
    pub duration_ms: Option<u64>,
    #[serde(skip)]
    pub row_key: Option<String>,
}

/// A local migration that stays pending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingFile {
    pub version: String,
    pub name: String,
    pub file: String,
}

/// What `adopt` and `baseline` return.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptReport {
    /// The tool whose history was adopted, or `baseline`.
    pub from: String,
    /// The table it was read from (`public.pgmigrations`).
    pub table: String,
    /// tidemark's tracking table.
    pub tracking_table: String,
    /// How the peer's entries were matched to files (`by version`).
    pub matched_by: String,
    /// Entries in the peer's history.
    pub entries: usize,
    /// Nothing was written.
    pub dry_run: bool,
    /// The peer's table is tidemark's table and was (or would be) converted
    /// in place, its rows kept.
    pub converted: bool,
    /// Migrations recorded by this run.
    pub adopted: Vec<Adopted>,
    /// Entries tidemark's table already recorded.
    pub already_recorded: usize,
    /// Peer entries that could not be recorded (no file and no version).
    pub not_recorded: Vec<String>,
    /// Local migrations the peer did not apply: the next deploy applies them.
    pub pending: Vec<PendingFile>,
    /// Every entry matched its file (see [`AdoptReport::clean`]); the CLI
    /// exits 1 otherwise.
    pub matches_files: bool,
}

impl AdoptReport {
    /// True when every recorded migration matched its file.
    pub fn clean(&self) -> bool {
        self.not_recorded.is_empty() && self.adopted.iter().all(|a| a.state == AdoptState::Matched)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&crate::source::sha256(bytes))
}

/// What postgres-migrations recorded for `local` if it applied it: the SHA-1
/// of the file name followed by the contents, under the file's name here
/// and under the other names that tool accepts for it (`2-more.sql`,
/// `2more.sql`), so that a file renamed for tidemark still matches.
fn postgres_migrations_hashes(local: &Local) -> Vec<String> {
    let base = local.file.rsplit('/').next().unwrap_or(&local.file);
    let digits = base.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = base.split_at(digits);
    let after = rest.strip_prefix(['_', '-']).unwrap_or(rest);
    let mut names = vec![
        base.to_string(),
        format!("{number}-{after}"),
        format!("{number}{after}"),
    ];
    names.dedup();
    names
        .iter()
        .map(|name| {
            let mut sha = sha1::Sha1::new();
            sha.update(name.as_bytes());
            sha.update(&local.raw);
            hex(&sha.finalize())
        })
        .collect()
}

fn ambiguous(tool: Tool, entry: &str, files: &[&Local]) -> Error {
    let list: Vec<&str> = files.iter().map(|l| l.file.as_str()).collect();
    Error::new(
        Kind::AdoptAmbiguous,
        format!(
            "{} entry {entry} matches more than one file ({}); tidemark does not guess: keep one of them, then run tidemark adopt again",
            tool.name(),
            list.join(", ")
        ),
    )
}

/// Matches a peer's entries to the local files (pure). `recorded` holds the
/// versions tidemark's table already has: those are counted, not written
/// again, so adopting twice changes nothing.
pub fn plan(
    tool: Tool,
    entries: &[Entry],
    locals: &[Local],
    recorded: &[AppliedRow],
) -> Result<AdoptReport> {
    let mut acc = Acc::default();
    for entry in entries {
        let Some(candidates) = candidates(tool, entry, locals, &mut acc)? else {
            continue;
        };
        match candidates.as_slice() {
            [] => acc.no_file(entry),
            [local] => {
                let state = match (&entry.checksum, tool) {
                    (Some(sum), Tool::Sqlx) if hex(&Sha384::digest(&local.raw)) != *sum => {
                        AdoptState::Changed
                    }
                    (Some(sum), Tool::Prisma)
                        if sha256_hex(&local.raw) != *sum
                            && sha256_hex(&normalize(&local.raw)) != *sum =>
                    {
                        AdoptState::Changed
                    }
                    (Some(sum), Tool::PostgresMigrations)
                        if !postgres_migrations_hashes(local).contains(sum) =>
                    {
                        AdoptState::Changed
                    }
                    _ => AdoptState::Matched,
                };
                acc.take(local, entry, state);
            }
            several => return Err(ambiguous(tool, &entry.label, several)),
        }
    }
    // Two entries for one version (a renamed file): refuse to guess.
    for (i, a) in acc.found.iter().enumerate() {
        if let Some(b) = acc.found[i + 1..]
            .iter()
            .find(|b| cmp_versions(&a.version, &b.version).is_eq())
        {
            return Err(Error::new(
                Kind::AdoptAmbiguous,
                format!(
                    "{} recorded two migrations with version {} ({} and {}); tidemark keys migrations by version and does not guess which one to keep: give one of the files a new version, then run tidemark adopt again",
                    tool.name(),
                    a.version,
                    a.file.as_deref().unwrap_or(&a.name),
                    b.file.as_deref().unwrap_or(&b.name)
                ),
            ));
        }
    }
    let has = |v: &str| recorded.iter().any(|r| cmp_versions(&r.version, v).is_eq());
    let pending = locals
        .iter()
        .filter(|l| !acc.used.contains(&l.file) && !has(&l.version))
        .map(|l| PendingFile {
            version: l.version.clone(),
            name: l.name.clone(),
            file: l.file.clone(),
        })
        .collect();
    let (already, adopted): (Vec<Adopted>, Vec<Adopted>) = acc
        .found
        .into_iter()
        .partition(|a| a.row_key.is_none() && has(&a.version));
    Ok(AdoptReport {
        from: tool.name().to_string(),
        matched_by: tool.describe_identity().to_string(),
        entries: entries.len(),
        adopted,
        already_recorded: already.len(),
        not_recorded: acc.not_recorded,
        pending,
        ..AdoptReport::default()
    })
}

/// What [`plan`] has found so far.
#[derive(Default)]
struct Acc {
    found: Vec<Adopted>,
    used: Vec<String>,
    not_recorded: Vec<String>,
}

impl Acc {
    fn take(&mut self, local: &Local, entry: &Entry, state: AdoptState) {
        if self.used.contains(&local.file) {
            return;
        }
        self.used.push(local.file.clone());
        self.found.push(Adopted {
            version: local.version.clone(),
            name: local.name.clone(),
            file: Some(local.file.clone()),
            state,
            applied_at: entry.applied_at.clone(),
            checksum: Some(match state {
                AdoptState::Changed => entry.checksum.clone().unwrap_or_default(),
                _ => local.checksum.clone(),
            }),
            duration_ms: entry.duration_ms,
            row_key: entry.row_key.clone(),
        });
    }

    /// The peer applied something that is not in the folder. It is recorded
    /// when its version is known, so that deploy and status report it missing.
    fn no_file(&mut self, entry: &Entry) {
        let named = match &entry.key {
            Key::Name(n) => parse_file_name(&format!("{n}.sql")).map(|f| (f.version, Some(f.name))),
            Key::Version { version, name } => Some((version.clone(), name.clone())),
            Key::UpTo(v) => Some((v.clone(), None)),
            Key::Hash { .. } => None,
        };
        match named {
            Some((version, name)) => self.found.push(Adopted {
                version,
                name: name.unwrap_or_default(),
                file: None,
                state: AdoptState::NoFile,
                applied_at: entry.applied_at.clone(),
                checksum: entry.checksum.clone(),
                duration_ms: entry.duration_ms,
                row_key: entry.row_key.clone(),
            }),
            None => self.not_recorded.push(entry.label.clone()),
        }
    }
}

/// The local files an entry names, by the peer's own identity; `None` when
/// the entry is settled here (a drizzle file that changed). golang-migrate's
/// files below its version are taken here too.
fn candidates<'a>(
    tool: Tool,
    entry: &Entry,
    locals: &'a [Local],
    acc: &mut Acc,
) -> Result<Option<Vec<&'a Local>>> {
    Ok(Some(match &entry.key {
        Key::Name(name) => locals
            .iter()
            .filter(|l| match tool {
                Tool::Prisma => l.folder() == Some(name.as_str()),
                _ => l.stem() == name,
            })
            .collect(),
        Key::Version { version, .. } => locals
            .iter()
            .filter(|l| cmp_versions(&l.version, version).is_eq())
            .collect(),
        Key::UpTo(version) => {
            for l in locals
                .iter()
                .filter(|l| cmp_versions(&l.version, version).is_lt())
            {
                let before = Entry {
                    row_key: None,
                    ..entry.clone()
                };
                acc.take(l, &before, AdoptState::Matched);
            }
            locals
                .iter()
                .filter(|l| cmp_versions(&l.version, version).is_eq())
                .collect()
        }
        Key::Hash { hash, when, name } => {
            let by_when = |set: &[&'a Local]| -> Vec<&'a Local> {
                set.iter()
                    .copied()
                    .filter(|l| when.is_some() && l.when == *when)
                    .collect()
            };
            let by_name = |set: &[&'a Local]| -> Vec<&'a Local> {
                set.iter()
                    .copied()
                    .filter(|l| name.is_some() && l.folder().or(Some(l.stem())) == name.as_deref())
                    .collect()
            };
            let by_hash: Vec<&Local> = locals
                .iter()
                .filter(|l| &sha256_hex(&l.raw) == hash)
                .collect();
            match by_hash.len() {
                1 => by_hash,
                0 => {
                    // The journal's `when` (or v1's name) says which file it
                    // was: that file has changed since.
                    let all: Vec<&Local> = locals.iter().collect();
                    let mut same = by_when(&all);
                    if same.is_empty() {
                        same = by_name(&all);
                    }
                    if same.len() > 1 {
                        return Err(ambiguous(tool, &entry.label, &same));
                    }
                    if let Some(l) = same.first() {
                        let changed = Entry {
                            checksum: Some(hash.clone()),
                            ..entry.clone()
                        };
                        acc.take(l, &changed, AdoptState::Changed);
                        return Ok(None);
                    }
                    Vec::new()
                }
                _ => {
                    let mut narrowed = by_when(&by_hash);
                    if narrowed.len() != 1 {
                        narrowed = by_name(&by_hash);
                    }
                    if narrowed.len() != 1 {
                        // Identical files: the same history whichever is
                        // taken, as long as only one is still free.
                        let free: Vec<&Local> = by_hash
                            .iter()
                            .copied()
                            .filter(|l| !acc.used.contains(&l.file))
                            .collect();
                        if free.len() > 1 {
                            return Err(ambiguous(tool, &entry.label, &by_hash));
                        }
                        narrowed = free;
                    }
                    narrowed
                }
            }
        }
    }))
}

/// Plans `baseline --to V`: every local migration up to `to` is recorded as
/// applied (pure).
pub fn plan_baseline(locals: &[Local], to: &str, recorded: &[AppliedRow]) -> Result<AdoptReport> {
    let zero = to.trim_start_matches('0').is_empty();
    if !zero && !locals.iter().any(|l| cmp_versions(&l.version, to).is_eq()) {
        return Err(Error::new(
            Kind::UnknownVersion,
            format!(
                "there is no migration with version {to}; baseline marks every migration up to an existing one (run `tidemark status` to list the versions)"
            ),
        ));
    }
    let has = |v: &str| recorded.iter().any(|r| cmp_versions(&r.version, v).is_eq());
    let mut report = AdoptReport {
        from: "baseline".into(),
        ..AdoptReport::default()
    };
    for l in locals {
        if has(&l.version) {
            report.already_recorded += 1;
        } else if cmp_versions(&l.version, to).is_le() {
            report.adopted.push(Adopted {
                version: l.version.clone(),
                name: l.name.clone(),
                file: Some(l.file.clone()),
                state: AdoptState::Matched,
                applied_at: None,
                checksum: Some(l.checksum.clone()),
                duration_ms: None,
                row_key: None,
            });
        } else {
            report.pending.push(PendingFile {
                version: l.version.clone(),
                name: l.name.clone(),
                file: l.file.clone(),
            });
        }
    }
    Ok(report)
}

// ------------------------------------------------------------------ SQL

/// A peer history table found in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub tool: Tool,
    /// `schema.table`, as the server prints the regclass.
    pub table: String,
    /// It is tidemark's own tracking table (dbmate's and golang-migrate's
    /// `schema_migrations`).
    pub is_tracking: bool,
}

/// History tables of tools whose history tidemark knows by name but does not
/// adopt (their migrations are code, or their history names no file
/// tidemark reads): on a database that has one and no tidemark history,
/// `deploy`, `migrate` and `status` stop instead of running everything again.
/// As `to_regclass` reads them (quoted where the tool's name has capitals).
const UNADOPTABLE: [(&str, &str); 14] = [
    ("Flyway", "flyway_schema_history"),
    ("Liquibase", "databasechangelog"),
    ("goose", "goose_db_version"),
    ("sql-migrate", "gorp_migrations"),
    ("refinery", "refinery_schema_history"),
    ("Alembic", "alembic_version"),
    ("Django", "django_migrations"),
    ("Sequelize", "\"SequelizeMeta\""),
    ("MikroORM", "mikro_orm_migrations"),
    ("Kysely", "kysely_migration"),
    ("Entity Framework", "\"__EFMigrationsHistory\""),
    ("Atlas", "atlas_schema_revisions.atlas_schema_revisions"),
    ("graphile-migrate", "graphile_migrate.migrations"),
    ("sqitch", "sqitch.changes"),
];

/// TypeORM's history table (`migrations`: id, timestamp, name) has the name
/// postgres-migrations uses; it is told by its `timestamp` column.
const TYPEORM: &str = "TypeORM";

/// Marks an [`UNADOPTABLE`] tool's name in [`probe_sql`]'s rows.
const UNADOPTABLE_MARK: char = '~';

/// Looks for the peers' tables. A `schema_migrations` counts as dbmate's
/// when `version` is its only column, as golang-migrate's when it has
/// `(version bigint, dirty boolean)`. The first column is named
/// [`PROBE_MARKER`] so the rows can share a message with other reads.
pub(crate) fn probe_sql(t: &Tracking) -> String {
    let mut pairs: Vec<(String, &str)> = Tool::ALL
        .iter()
        .filter(|tool| **tool != Tool::GolangMigrate)
        .map(|tool| (tool.name().to_string(), tool.table()))
        .collect();
    pairs.push(("dbmate".into(), &t.qualified));
    pairs.extend(
        UNADOPTABLE
            .iter()
            .map(|(tool, table)| (format!("{UNADOPTABLE_MARK}{tool}"), *table)),
    );
    // Numbered: the rows come back in this order, whatever join the server
    // picks.
    let values: Vec<String> = pairs
        .iter()
        .enumerate()
        .map(|(n, (tool, table))| {
            format!("({n}, {}, {})", quote_literal(tool), quote_literal(table))
        })
        .collect();
    format!(
        "SELECT v.tool AS {PROBE_MARKER}, c.oid::regclass::text, c.oid = to_regclass({tracking}), \
         (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum) \
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) \
         FROM (VALUES {}) v(n, tool, name) JOIN pg_class c ON c.oid = to_regclass(v.name) \
         ORDER BY v.n;\n",
        values.join(", "),
        tracking = quote_literal(&t.qualified)
    )
}

/// Column name of [`probe_sql`]'s rows.
const PROBE_MARKER: &str = "tidemark_peer_probe";

/// A history table of a tool tidemark does not adopt (see [`UNADOPTABLE`]):
/// the tool's name and the table, as the server prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unadoptable {
    pub tool: String,
    pub table: String,
}

/// One row of [`probe_sql`], added to `found` when it is a peer's table, to
/// `others` when it is the table of a tool tidemark does not adopt.
#[inline(never)] // out of line: see lib.rs
fn probe_row(
    r: &tokio_postgres::SimpleQueryRow,
    found: &mut Vec<Found>,
    others: &mut Vec<Unadoptable>,
) {
    let (Some(name), Some(table)) = (r.get(0), r.get(1)) else {
        return;
    };
    let other = |tool: &str| Unadoptable {
        tool: tool.to_string(),
        table: table.to_string(),
    };
    if let Some(tool) = name.strip_prefix(UNADOPTABLE_MARK) {
        others.push(other(tool));
        return;
    }
    let Some(tool) = Tool::parse(name) else {
        return;
    };
    let is_tracking = r.get(2) == Some("t");
    let cols: Vec<&str> = r.get(3).unwrap_or("").split(',').collect();
    let has = |name: &str| cols.iter().any(|c| c.split(' ').next() == Some(name));
    if tool == Tool::PostgresMigrations && !(has("hash") && has("executed_at") && has("name")) {
        if has("timestamp") && has("name") && !is_tracking {
            others.push(other(TYPEORM));
        }
        return;
    }
    let tool = if tool == Tool::Dbmate {
        let string = |c: &str| c == "version text" || c.starts_with("version character varying");
        if cols.len() == 1 && string(cols[0]) {
            Tool::Dbmate
        } else if cols.len() == 2
            && cols.contains(&"version bigint")
            && cols.contains(&"dirty boolean")
        {
            Tool::GolangMigrate
        } else {
            return;
        }
    } else {
        tool
    };
    if !found.iter().any(|f| f.table == table) {
        found.push(Found {
            tool,
            table: table.to_string(),
            is_tracking,
        });
    }
}

/// The fast-path read of `deploy`, `migrate` and `status` with the peer probe
/// in the same message (so a deploy still costs three messages), then the
/// refusal when another tool keeps this database's history and tidemark has
/// none: running what that tool recorded again would fail, or worse, succeed
/// twice. Costs one more read only on such a database.
pub(crate) async fn first_read(client: &Client, t: &Tracking) -> Result<db::FirstRead> {
    // The row loop polls in a function of its own (out of line: see lib.rs).
    let (first, probed) = crate::out_of_line(db::first_read(client, t, &probe_sql(t))).await?;
    let (mut found, mut others) = (Vec::new(), Vec::new());
    for r in &probed {
        probe_row(r, &mut found, &mut others);
    }
    let empty = !matches!(&first, db::FirstRead::Rows(r) if !r.is_empty());
    if empty && !(found.is_empty() && others.is_empty()) {
        let tables: Vec<&str> = found
            .iter()
            .map(|f| f.table.as_str())
            .chain(others.iter().map(|o| o.table.as_str()))
            .collect();
        let mut has = with_history(client, &tables).await?.into_iter();
        found.retain(|_| has.next().unwrap_or(false));
        others.retain(|_| has.next().unwrap_or(false));
        refuse(t, found)?;
        refuse_unadoptable(t, &others)?;
    }
    Ok(first)
}

/// Whether each of `tables` holds at least one entry, in one message.
async fn with_history(client: &Client, tables: &[&str]) -> Result<Vec<bool>> {
    let sql: Vec<String> = tables
        .iter()
        .map(|table| format!("SELECT EXISTS (SELECT 1 FROM {table})"))
        .collect();
    let messages = client
        .simple_query(&sql.join(";\n"))
        .await
        .map_err(|e| Error::database("could not read other tools' history tables", &e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0) == Some("t")),
            _ => None,
        })
        .collect())
}

/// How a database whose history tidemark cannot read becomes tidemark's.
const BASELINE_WAY: &str = "once the migrations folder holds what was applied as tidemark migrations, record those as applied with `tidemark baseline --to <the last one's version>` (it runs nothing)";

/// The start of the refusals of `deploy`, `migrate` and `status`: who keeps
/// this database's history (`names`), and that tidemark has none.
fn applied_by(names: &[String], t: &Tracking) -> String {
    format!(
        "this database's migrations were applied by {} and tidemark has no history of its own in {}, so it would run them again",
        names.join(" and "),
        t.display()
    )
}

/// The refusal of `deploy`, `migrate` and `status` when tools tidemark does
/// not adopt keep this database's history.
fn refuse_unadoptable(t: &Tracking, others: &[Unadoptable]) -> Result<()> {
    if others.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = others
        .iter()
        .map(|o| format!("{} ({})", o.tool, o.table))
        .collect();
    Err(Error::new(
        Kind::PeerHistory,
        format!(
            "{}; tidemark does not read {}'s history: {BASELINE_WAY}, then deploy",
            applied_by(&names, t),
            others[0].tool
        ),
    ))
}

/// The peer's rows, read through `to_jsonb` so that a column a version of the
/// tool does not have reads as NULL. `OFFSET 0`: `to_jsonb(p)` once a row,
/// not once per column (see `db::sql::select_rows_sql`).
fn select_peer_sql(f: &Found) -> String {
    let cols: Vec<String> = f
        .tool
        .fields()
        .iter()
        .map(|c| format!("j->>{}", quote_literal(c)))
        .collect();
    format!(
        "SELECT {tool} AS tidemark_peer, {} FROM (SELECT to_jsonb(p) AS j FROM {} p OFFSET 0) rows;\n",
        cols.join(", "),
        f.table,
        tool = quote_literal(f.tool.name())
    )
}

/// The refusal of `deploy`, `migrate` and `status` when `peers` keep this
/// database's history.
fn refuse(t: &Tracking, peers: Vec<Found>) -> Result<()> {
    let Some(first) = peers.first() else {
        return Ok(());
    };
    let names: Vec<String> = peers
        .iter()
        .map(|p| format!("{} ({})", p.tool.name(), p.table))
        .collect();
    let how = if peers.len() == 1 {
        format!(
            "run `tidemark adopt` (or `tidemark adopt --from {}`)",
            first.tool.name()
        )
    } else {
        format!(
            "choose whose history is true with `tidemark adopt --from {}` (or {})",
            first.tool.name(),
            peers[1..]
                .iter()
                .map(|p| format!("--from {}", p.tool.name()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(Error::new(
        Kind::PeerHistory,
        format!(
            "{}; {how} first: it records what was applied without running anything",
            applied_by(&names, t)
        ),
    ))
}

/// Starts the adoption transaction, takes tidemark's lock in it
/// (transaction-scoped: it conflicts with a running deploy's session lock and
/// works the same through a pooler), and looks for the peers' tables and
/// tidemark's own, in one message.
async fn begin_locked(
    client: &Client,
    t: &Tracking,
    s: db::SessionSettings,
) -> Result<(Vec<Found>, Vec<Unadoptable>, bool)> {
    let sql = format!(
        "BEGIN;\n{}{}SELECT to_regclass({}) IS NOT NULL AS tidemark_exists;",
        db::xact_lock_sql(t, s),
        probe_sql(t),
        quote_literal(&t.qualified)
    );
    let messages = match client.simple_query(&sql).await {
        Ok(m) => m,
        Err(e) => {
            rollback(client).await;
            return Err(match DbDetails::from_error(&e).sql_state.as_deref() {
                Some("55P03") => db::lock_timeout_error(client, t, s).await,
                _ => Error::database("could not take the migration lock", &e),
            });
        }
    };
    let (mut found, mut others) = (Vec::new(), Vec::new());
    let mut exists = false;
    for m in messages {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        match r.columns().first().map(|c| c.name()) {
            Some(PROBE_MARKER) => probe_row(&r, &mut found, &mut others),
            Some("tidemark_exists") => exists = r.get(0) == Some("t"),
            _ => {}
        }
    }
    Ok((found, others, exists))
}

async fn rollback(client: &Client) {
    let _ = client.simple_query("ROLLBACK").await;
}

/// Reads the peers' rows and tidemark's own (inside the transaction).
async fn read_rows(
    client: &Client,
    t: &Tracking,
    peers: &[Found],
    tracking_exists: bool,
) -> Result<(Vec<(Tool, Vec<Option<String>>)>, Vec<AppliedRow>)> {
    let mut sql: String = peers.iter().map(select_peer_sql).collect();
    if tracking_exists {
        sql.push_str(&db::select_rows_sql(&t.qualified));
    }
    if sql.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let messages = client
        .simple_query(&sql)
        .await
        .map_err(|e| Error::database("could not read the migration history", &e))?;
    let mut peer_rows = Vec::new();
    let mut rows = Vec::new();
    for m in messages {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        match r.columns().first().map(|c| c.name()) {
            Some("tidemark_peer") => {
                let Some(tool) = r.get(0).and_then(Tool::parse) else {
                    continue;
                };
                let fields = (1..r.len()).map(|i| r.get(i).map(str::to_string)).collect();
                peer_rows.push((tool, fields));
            }
            Some("tidemark_row") => {
                if let Some(row) = db::parse_row(&r) {
                    rows.push(row);
                }
            }
            _ => {}
        }
    }
    Ok((peer_rows, rows))
}

/// The statements that record `report.adopted` (after converting the peer's
/// table in place when it is tidemark's), then COMMIT.
fn write_sql(t: &Tracking, found: Option<&Found>, report: &AdoptReport) -> String {
    let q = &t.qualified;
    let mut sql = String::new();
    match found {
        Some(f) if f.is_tracking && f.tool == Tool::GolangMigrate => sql.push_str(&format!(
            "ALTER TABLE {q} ALTER COLUMN version TYPE text USING version::text, DROP COLUMN dirty, ADD COLUMN checksum text;\n"
        )),
        Some(f) if f.is_tracking => {
            sql.push_str(&format!("ALTER TABLE {q} ADD COLUMN checksum text;\n"))
        }
        _ => {}
    }
    sql.push_str(&db::shape_sql(t));
    // Who and what recorded the rows: the role, and that they were adopted.
    let by = quote_literal(&match found {
        Some(f) => format!(" (adopted from {})", f.tool.name()),
        None => " (baseline)".to_string(),
    });
    for a in &report.adopted {
        let lit = |v: &Option<String>| v.as_deref().map_or("NULL".to_string(), quote_literal);
        let at = a
            .applied_at
            .as_deref()
            .map_or("clock_timestamp()".to_string(), |at| {
                format!("{}::timestamptz", quote_literal(at))
            });
        let ms = a
            .duration_ms
            .map_or("NULL".to_string(), |ms| ms.min(i32::MAX as u64).to_string());
        let name = quote_literal(&a.name);
        let version = quote_literal(&a.version);
        let checksum = lit(&a.checksum);
        match &a.row_key {
            Some(key) => sql.push_str(&format!(
                "UPDATE {q} SET version = {version}, name = {name}, checksum = {checksum}, applied_at = {at}, duration_ms = {ms}, status = 'completed', applied_by = current_user || {by} WHERE version = {key};\n",
                key = quote_literal(key)
            )),
            None => sql.push_str(&format!(
                "INSERT INTO {q} (version, name, checksum, applied_at, duration_ms, status, applied_by) VALUES ({version}, {name}, {checksum}, {at}, {ms}, 'completed', current_user || {by});\n"
            )),
        }
    }
    sql.push_str("COMMIT;");
    sql
}

/// Chooses whose history to adopt: `from` when given, else the one peer
/// whose table has entries.
fn choose<'a>(
    found: &'a [Found],
    rows: &[(Tool, Vec<Option<String>>)],
    from: Option<Tool>,
) -> Result<Option<&'a Found>> {
    if let Some(tool) = from {
        return match found.iter().find(|f| f.tool == tool) {
            Some(f) => Ok(Some(f)),
            None => Err(Error::new(
                    Kind::NoPeerHistory,
                    format!(
                        "found no {} history in this database (looked for {}{}); check the database URL, or choose another tool with --from",
                        tool.name(),
                        tool.table(),
                        if tool == Tool::Dbmate || tool == Tool::GolangMigrate {
                            format!(" with {}'s columns", tool.name())
                        } else {
                            String::new()
                        }
                    ),
                )),
        };
    }
    let with_rows: Vec<&Found> = found
        .iter()
        .filter(|f| rows.iter().any(|(t, _)| *t == f.tool))
        .collect();
    match with_rows.as_slice() {
        [] => {
            // Empty peer tables: nothing to adopt.
            Ok(None)
        }
        [one] => Ok(Some(one)),
        several => Err(Error::new(
            Kind::AdoptAmbiguous,
            format!(
                "this database has the history of more than one tool ({}); tidemark does not guess which is true: choose with --from {}",
                several
                    .iter()
                    .map(|f| format!("{} in {}", f.tool.name(), f.table))
                    .collect::<Vec<_>>()
                    .join(", "),
                several
                    .iter()
                    .map(|f| f.tool.name())
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        )),
    }
}

fn no_history_error(others: &[Unadoptable]) -> Error {
    if let Some(other) = others.first() {
        return Error::new(
            Kind::NoPeerHistory,
            format!(
                "this database's history is kept by {} ({}), which tidemark does not adopt (its migrations are code, or its history names files tidemark does not read); {BASELINE_WAY}",
                other.tool, other.table
            ),
        );
    }
    let tables: Vec<&str> = Tool::ALL
        .iter()
        .filter(|t| **t != Tool::GolangMigrate)
        .map(|t| t.table())
        .collect();
    Error::new(
        Kind::NoPeerHistory,
        format!(
            "found no other tool's migration history in this database (looked for {}); if the database was built without a migration tool (restored from a dump, say), mark what it already has with `tidemark baseline --to <version>`",
            tables.join(", ")
        ),
    )
}

/// Which command: `adopt [--from TOOL]` or `baseline --to V`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum What<'a> {
    Adopt { from: Option<&'a str> },
    Baseline { to: Option<&'a str> },
}

/// What the locked reads found.
struct History {
    found: Vec<Found>,
    /// Tables of tools tidemark does not adopt, named when there is nothing
    /// to adopt.
    others: Vec<Unadoptable>,
    peer_rows: Vec<(Tool, Vec<Option<String>>)>,
    /// tidemark's own rows (none when its table is a peer's, to convert).
    recorded: Vec<AppliedRow>,
}

/// `tidemark adopt` records the history another tool kept as tidemark's own;
/// `tidemark baseline --to V` records every migration up to V, for a
/// database built outside any tool. Both in one transaction under
/// tidemark's lock, running nothing; with `dry_run` they report the same and
/// write nothing.
pub(crate) async fn run(
    client: &Client,
    t: &Tracking,
    s: db::SessionSettings,
    files: &[SourceFile],
    what: What<'_>,
    dry_run: bool,
) -> Result<AdoptReport> {
    let from = match what {
        What::Adopt { from: Some(name) } => Some(Tool::parse(name).ok_or_else(|| {
            Error::new(
                Kind::InvalidOption,
                format!(
                    "unknown tool {name:?} to adopt from; the tools are {}",
                    Tool::ALL.map(Tool::name).join(", ")
                ),
            )
        })?),
        What::Baseline { to: None } => return Err(Error::new(
            Kind::InvalidOption,
            "baseline needs the version the database already has: tidemark baseline --to <version>",
        )),
        _ => None,
    };
    let locals = locals(files)?;
    let (found, others, exists) = begin_locked(client, t, s).await?;
    let decided = async {
        let own = exists && !found.iter().any(|f| f.is_tracking);
        let (peer_rows, recorded) = read_rows(client, t, &found, own).await?;
        let h = History {
            found,
            others,
            peer_rows,
            recorded,
        };
        match what {
            What::Adopt { .. } => adopt_report(&h, from, &locals),
            What::Baseline { to } => baseline_report(&h, to.unwrap_or_default(), &locals),
        }
    }
    .await;
    let (chosen, mut report) = match decided {
        Ok(v) => v,
        Err(e) => {
            rollback(client).await;
            return Err(e);
        }
    };
    report.tracking_table = t.display();
    report.dry_run = dry_run;
    report.matches_files = report.clean();
    if dry_run || (report.adopted.is_empty() && !report.converted) {
        rollback(client).await;
        return Ok(report);
    }
    if let Err(e) = client
        .simple_query(&write_sql(t, chosen.as_ref(), &report))
        .await
    {
        rollback(client).await;
        let db = DbDetails::from_error(&e);
        if db.sql_state.as_deref() == Some(db::INCOMPATIBLE_SHAPE) {
            return Err(db::describe_foreign_shape(
                t,
                db.detail.as_deref().unwrap_or(""),
            ));
        }
        return Err(Error::database(
            &format!(
                "could not record the migrations in {}; nothing was written",
                t.display()
            ),
            &e,
        ));
    }
    Ok(report)
}

/// `adopt`: the chosen peer and what to record.
fn adopt_report(
    h: &History,
    from: Option<Tool>,
    locals: &[Local],
) -> Result<(Option<Found>, AdoptReport)> {
    let Some(chosen) = choose(&h.found, &h.peer_rows, from)? else {
        if h.recorded.is_empty() {
            return Err(no_history_error(&h.others));
        }
        // Adopted before (a converted schema_migrations is tidemark's now).
        return Ok((
            None,
            AdoptReport {
                from: from.map_or("none", Tool::name).to_string(),
                already_recorded: h.recorded.len(),
                ..AdoptReport::default()
            },
        ));
    };
    let rows: Vec<Vec<Option<String>>> = h
        .peer_rows
        .iter()
        .filter(|(tool, _)| *tool == chosen.tool)
        .map(|(_, r)| r.clone())
        .collect();
    let mut entries = chosen.tool.entries(&rows)?;
    if !chosen.is_tracking {
        for e in &mut entries {
            e.row_key = None;
        }
    }
    let mut report = plan(chosen.tool, &entries, locals, &h.recorded)?;
    report.table = chosen.table.clone();
    report.converted = chosen.is_tracking;
    Ok((Some(chosen.clone()), report))
}

/// `baseline`: refused where a peer's history says what was applied.
fn baseline_report(
    h: &History,
    to: &str,
    locals: &[Local],
) -> Result<(Option<Found>, AdoptReport)> {
    if h.recorded.is_empty() {
        if let Some(f) = h
            .found
            .iter()
            .find(|f| h.peer_rows.iter().any(|(t, _)| *t == f.tool))
        {
            let tool = f.tool.name();
            return Err(Error::new(
                Kind::PeerHistory,
                format!(
                    "this database has {tool}'s history in {}: adopt it with `tidemark adopt --from {tool}`, which records what {tool} applied, rather than a baseline",
                    f.table
                ),
            ));
        }
    }
    let mut report = plan_baseline(locals, to, &h.recorded)?;
    report.table = String::new();
    Ok((None, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(file: &str, sql: &str) -> Local {
        let base = file.rsplit('/').next().unwrap_or(file);
        let (version, name) = match file.split_once('/') {
            // Folder layouts: `<digits>_<name>/migration.sql`, diesel's
            // `<YYYY-MM-DD-HHMMSS>_<name>/up.sql`.
            Some((folder, _)) => crate::layout::parse_folder_name(folder)
                .unwrap_or_else(|| panic!("bad test folder {file}")),
            None => {
                let n = parse_file_name(&format!(
                    "{}.sql",
                    base.rsplit_once('.').map_or(base, |(s, _)| s)
                ))
                .unwrap_or_else(|| panic!("bad test name {file}"));
                (n.version, n.name)
            }
        };
        Local {
            version,
            name,
            file: file.into(),
            checksum: crate::source::checksum(sql.as_bytes()),
            raw: sql.as_bytes().to_vec(),
            when: None,
        }
    }

    fn rows(list: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
        list.iter()
            .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
            .collect()
    }

    fn states(r: &AdoptReport) -> Vec<(&str, AdoptState)> {
        r.adopted
            .iter()
            .map(|a| (a.version.as_str(), a.state))
            .collect()
    }

    /// The entries `tool` makes of `list`, planned against `locals`.
    fn planned(tool: Tool, list: &[&[Option<&str>]], locals: &[Local]) -> AdoptReport {
        let entries = tool.entries(&rows(list)).expect("entries");
        plan(tool, &entries, locals, &[]).expect("plan")
    }

    #[test]
    fn postgres_migrations_matches_by_id_and_checks_its_sha1() {
        use sha1::Digest as _;
        let sha1 =
            |name: &str, sql: &str| hex(&sha1::Sha1::digest(format!("{name}{sql}").as_bytes()));
        let locals = vec![
            local("1_create-users.sql", "CREATE TABLE users (id int);"),
            // Renamed from postgres-migrations' `2-add-email.sql` for tidemark.
            local("2_add-email.sql", "ALTER TABLE users ADD email text;"),
            local("3_edited.sql", "SELECT 2;"),
            local("4_new.sql", "SELECT 4;"),
        ];
        let entries = Tool::PostgresMigrations
            .entries(&rows(&[
                &[
                    Some("0"),
                    Some("create-migrations-table"),
                    Some("e18db593bcde2aca2a408c4d1100f6abba2195df"),
                    Some("2024-05-01 09:00:00"),
                ],
                &[
                    Some("1"),
                    Some("create-users"),
                    Some(&sha1("1_create-users.sql", "CREATE TABLE users (id int);")),
                    Some("2024-05-01 09:00:01"),
                ],
                &[
                    Some("2"),
                    Some("add-email"),
                    Some(&sha1(
                        "2-add-email.sql",
                        "ALTER TABLE users ADD email text;",
                    )),
                    Some("2024-05-01 09:00:02"),
                ],
                &[
                    Some("3"),
                    Some("edited"),
                    Some(&sha1("3_edited.sql", "SELECT 1;")),
                    Some("2024-05-01 09:00:03"),
                ],
            ]))
            .expect("entries");
        // Its own table-creating migration 0 has no file: not an entry.
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].label, "1 create-users");
        let r = plan(Tool::PostgresMigrations, &entries, &locals, &[]).expect("plan");
        assert_eq!(
            states(&r),
            [
                ("1", AdoptState::Matched),
                ("2", AdoptState::Matched),
                ("3", AdoptState::Changed)
            ]
        );
        assert_eq!(
            r.adopted[0].applied_at.as_deref(),
            Some("2024-05-01 09:00:01")
        );
        assert_eq!(r.pending.len(), 1);
        assert_eq!(r.pending[0].file, "4_new.sql");
    }

    #[test]
    fn knex_matches_its_file_names_with_or_without_the_extension() {
        let locals = vec![
            local(
                "20240101120000_create_users.js",
                "exports.up = (knex) => knex.schema.createTable('users', () => {});",
            ),
            // Rewritten as SQL after knex applied it: still the same migration.
            local(
                "20240101120001_add_email.sql",
                "ALTER TABLE users ADD email text;",
            ),
            local("20240101120002_new.sql", "SELECT 1;"),
        ];
        let entries = Tool::Knex
            .entries(&rows(&[
                &[
                    Some("2"),
                    Some("20240101120001_add_email.js"),
                    Some("2024-05-01T10:00:00+00:00"),
                ],
                &[
                    Some("1"),
                    Some("20240101120000_create_users.js"),
                    Some("2024-05-01T09:00:00+00:00"),
                ],
            ]))
            .expect("entries");
        assert_eq!(entries[0].label, "20240101120000_create_users.js");
        assert_eq!(
            entries[0].key,
            Key::Name("20240101120000_create_users".into())
        );
        let r = plan(Tool::Knex, &entries, &locals, &[]).expect("plan");
        assert_eq!(
            states(&r),
            [
                ("20240101120000", AdoptState::Matched),
                ("20240101120001", AdoptState::Matched)
            ]
        );
        assert_eq!(
            r.adopted[0].applied_at.as_deref(),
            Some("2024-05-01T09:00:00+00:00")
        );
        assert_eq!(r.pending.len(), 1);
    }

    #[test]
    fn node_pg_migrate_matches_by_file_name_including_js() {
        let locals = vec![
            local("1700000000000_create-users.js", "exports.up = () => {};"),
            local(
                "1700000000001_add-email.sql",
                "-- Up Migration\nALTER TABLE users ADD email text;\n",
            ),
            local("1700000000002_new.sql", "SELECT 1;"),
        ];
        let entries = Tool::NodePgMigrate
            .entries(&rows(&[
                &[
                    Some("2"),
                    Some("1700000000001_add-email"),
                    Some("2024-05-01T10:00:00"),
                ],
                &[
                    Some("1"),
                    Some("1700000000000_create-users"),
                    Some("2024-05-01T09:00:00"),
                ],
            ]))
            .expect("entries");
        assert_eq!(entries[0].label, "1700000000000_create-users");
        let r = plan(Tool::NodePgMigrate, &entries, &locals, &[]).expect("plan");
        assert_eq!(
            states(&r),
            [
                ("1700000000000", AdoptState::Matched),
                ("1700000000001", AdoptState::Matched)
            ]
        );
        assert_eq!(
            r.adopted[0].applied_at.as_deref(),
            Some("2024-05-01T09:00:00")
        );
        assert_eq!(
            r.adopted[1].checksum.as_deref(),
            Some(locals[1].checksum.as_str())
        );
        assert_eq!(r.pending.len(), 1);
        assert_eq!(r.pending[0].file, "1700000000002_new.sql");
        assert!(r.clean());
    }

    #[test]
    fn an_entry_without_a_file_is_recorded_missing_when_its_version_is_known() {
        let locals = vec![local("001_a.sql", "SELECT 1;")];
        let entries = Tool::NodePgMigrate
            .entries(&rows(&[
                &[Some("1"), Some("001_a"), None],
                &[Some("2"), Some("002_gone"), None],
                &[Some("3"), Some("not-a-version"), None],
            ]))
            .expect("entries");
        let r = plan(Tool::NodePgMigrate, &entries, &locals, &[]).expect("plan");
        assert_eq!(
            states(&r),
            [("001", AdoptState::Matched), ("002", AdoptState::NoFile)]
        );
        assert_eq!(r.adopted[1].name, "gone");
        assert_eq!(r.not_recorded, ["not-a-version"]);
        assert!(!r.clean());
    }

    #[test]
    fn the_same_name_in_two_files_is_ambiguous() {
        let locals = vec![local("001_a.sql", "SELECT 1;"), local("001_a.js", "x")];
        let entries = Tool::NodePgMigrate
            .entries(&rows(&[&[Some("1"), Some("001_a"), None]]))
            .expect("entries");
        let e = plan(Tool::NodePgMigrate, &entries, &locals, &[]).expect_err("an error");
        assert_eq!(e.code(), "E_ADOPT_AMBIGUOUS");
        assert!(
            e.message().contains("001_a.sql, 001_a.js"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn adopting_twice_records_nothing_new() {
        let locals = vec![
            local("001_a.sql", "SELECT 1;"),
            local("002_b.sql", "SELECT 2;"),
        ];
        let entries = Tool::Dbmate
            .entries(&rows(&[&[Some("001")], &[Some("002")]]))
            .expect("entries");
        let mut entries_elsewhere = entries.clone();
        for e in &mut entries_elsewhere {
            e.row_key = None;
        }
        let recorded = vec![
            AppliedRow {
                version: "001".into(),
                completed: true,
                ..AppliedRow::default()
            },
            AppliedRow {
                version: "2".into(),
                completed: true,
                ..AppliedRow::default()
            },
        ];
        let r = plan(Tool::Dbmate, &entries_elsewhere, &locals, &recorded).expect("plan");
        assert!(r.adopted.is_empty());
        assert_eq!(r.already_recorded, 2);
        assert!(r.pending.is_empty());
    }

    #[test]
    fn sqlx_compares_its_sha384_and_stops_at_a_failed_row() {
        let locals = vec![
            local("20230101000000_init.sql", "CREATE TABLE a (id int);\n"),
            local(
                "20230102000000_edit.sql",
                "CREATE TABLE b (id int); -- edited\n",
            ),
        ];
        let sum = |s: &str| format!("\\x{}", hex(&Sha384::digest(s.as_bytes())).to_uppercase());
        let good = sum("CREATE TABLE a (id int);\n");
        let old = sum("CREATE TABLE b (id int);\n");
        let entries = Tool::Sqlx
            .entries(&rows(&[
                &[
                    Some("20230101000000"),
                    Some("init"),
                    Some("2024-01-01T00:00:00+00:00"),
                    Some("true"),
                    Some(&good),
                    Some("2500000"),
                ],
                &[
                    Some("20230102000000"),
                    Some("edit"),
                    None,
                    Some("true"),
                    Some(&old),
                    Some("1"),
                ],
            ]))
            .expect("entries");
        assert_eq!(entries[0].duration_ms, Some(2));
        let r = plan(Tool::Sqlx, &entries, &locals, &[]).expect("plan");
        assert_eq!(
            states(&r),
            [
                ("20230101000000", AdoptState::Matched),
                ("20230102000000", AdoptState::Changed)
            ]
        );
        // The peer's checksum is what tidemark records for the changed file,
        // so deploy and status see drift instead of a silent match.
        assert_eq!(
            r.adopted[1].checksum.as_deref(),
            Some(old.trim_start_matches("\\x").to_lowercase().as_str())
        );
        assert_ne!(
            r.adopted[1].checksum.as_deref(),
            Some(locals[1].checksum.as_str())
        );

        let e = Tool::Sqlx
            .entries(&rows(&[&[
                Some("20230101000000"),
                Some("init"),
                None,
                Some("false"),
                Some(&good),
                Some("1"),
            ]]))
            .expect_err("an error");
        assert_eq!(e.code(), "E_PEER_FAILED");
        assert!(e.message().contains("success = false"), "{}", e.message());
    }

    #[test]
    fn golang_migrate_counts_every_file_up_to_its_version_and_stops_when_dirty() {
        let locals = vec![
            local("000001_a.up.sql", "SELECT 1;"),
            local("000002_b.up.sql", "SELECT 2;"),
            local("000003_c.up.sql", "SELECT 3;"),
        ];
        let r = planned(Tool::GolangMigrate, &[&[Some("2"), Some("false")]], &locals);
        assert_eq!(
            states(&r),
            [
                ("000001", AdoptState::Matched),
                ("000002", AdoptState::Matched)
            ]
        );
        // Its one row is kept: updated to version 000002, the rest inserted.
        assert_eq!(r.adopted[0].row_key, None);
        assert_eq!(r.adopted[1].row_key.as_deref(), Some("2"));
        assert_eq!(r.pending[0].file, "000003_c.up.sql");

        let e = Tool::GolangMigrate
            .entries(&rows(&[&[Some("2"), Some("true")]]))
            .expect_err("an error");
        assert_eq!(e.code(), "E_PEER_FAILED");
        assert!(e.message().contains("migrate force 2"), "{}", e.message());
    }

    #[test]
    fn prisma_matches_folders_and_stops_at_unfinished_or_rolled_back_rows() {
        let sql = "CREATE TABLE \"User\" (id int);\n";
        let locals = vec![
            local("20230101120000_init/migration.sql", sql),
            local("20230201120000_crlf/migration.sql", "SELECT 1;\r\n"),
        ];
        let sha = sha256_hex(sql.as_bytes());
        let lf = sha256_hex(b"SELECT 1;\n");
        let entries = Tool::Prisma
            .entries(&rows(&[
                // A failed attempt, resolved, then applied: the finished row counts.
                &[
                    Some("20230101120000_init"),
                    Some(&sha),
                    Some("2024-01-01T10:00:00+00:00"),
                    None,
                    Some("2024-01-01T10:00:01+00:00"),
                    None,
                ],
                &[
                    Some("20230101120000_init"),
                    Some(&sha),
                    Some("2024-01-01T10:00:02+00:00"),
                    Some("2024-01-01T10:00:02.250+00:00"),
                    None,
                    None,
                ],
                &[
                    Some("20230201120000_crlf"),
                    Some(&lf),
                    Some("2024-02-01T10:00:00+00:00"),
                    Some("2024-02-01T10:00:00+00:00"),
                    None,
                    None,
                ],
            ]))
            .expect("entries");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].duration_ms, Some(250));
        let r = plan(Tool::Prisma, &entries, &locals, &[]).expect("plan");
        assert_eq!(
            states(&r),
            [
                ("20230101120000", AdoptState::Matched),
                // A CRLF checkout of what Prisma applied with LF is the same file.
                ("20230201120000", AdoptState::Matched)
            ]
        );
        assert_eq!(r.adopted[0].name, "init");

        let unfinished = Tool::Prisma
            .entries(&rows(&[&[
                Some("20230101120000_init"),
                Some(&sha),
                Some("2024-01-01T10:00:00+00:00"),
                None,
                None,
                None,
            ]]))
            .expect_err("an error");
        assert_eq!(unfinished.code(), "E_PEER_FAILED");
        assert!(
            unfinished.message().contains("finished_at is NULL"),
            "{}",
            unfinished.message()
        );
        let rolled_back = Tool::Prisma
            .entries(&rows(&[&[
                Some("20230101120000_init"),
                Some(&sha),
                Some("2024-01-01T10:00:00+00:00"),
                None,
                Some("2024-01-01T10:00:01+00:00"),
                None,
            ]]))
            .expect_err("an error");
        assert!(
            rolled_back.message().contains("rolled back"),
            "{}",
            rolled_back.message()
        );
    }

    #[test]
    fn diesel_matches_by_version_without_dashes() {
        let locals = vec![
            local("00000000000000_diesel_initial_setup/up.sql", "SELECT 0;"),
            local(
                "2023-01-01-120000_create_posts/up.sql",
                "CREATE TABLE posts (id int);",
            ),
        ];
        assert_eq!(locals[1].version, "20230101120000");
        let r = planned(
            Tool::Diesel,
            &[
                &[Some("20230101120000"), Some("2024-01-01T10:00:00")],
                &[Some("00000000000000"), Some("2024-01-01T09:00:00")],
            ],
            &locals,
        );
        assert_eq!(
            states(&r),
            [
                ("00000000000000", AdoptState::Matched),
                ("20230101120000", AdoptState::Matched)
            ]
        );
        assert_eq!(
            r.adopted[1].applied_at.as_deref(),
            Some("2024-01-01T10:00:00")
        );
    }

    #[test]
    fn drizzle_matches_by_hash_then_by_journal_when() {
        let mut locals = vec![
            local("0000_init.sql", "CREATE TABLE a (id int);\n"),
            local("0001_edit.sql", "CREATE TABLE b (id int); -- edited\n"),
            local("0002_new.sql", "CREATE TABLE c (id int);\n"),
        ];
        locals[0].when = Some("1700000000000".into());
        locals[1].when = Some("1700000001000".into());
        locals[2].when = Some("1700000002000".into());
        let h = |s: &str| sha256_hex(s.as_bytes());
        let r = planned(
            Tool::Drizzle,
            &[
                &[
                    Some("1"),
                    Some(&h("CREATE TABLE a (id int);\n")),
                    Some("1700000000000"),
                    None,
                ],
                &[
                    Some("2"),
                    Some(&h("CREATE TABLE b (id int);\n")),
                    Some("1700000001000"),
                    None,
                ],
                &[Some("3"), Some(&h("gone")), Some("1600000000000"), None],
            ],
            &locals,
        );
        assert_eq!(
            states(&r),
            [("0000", AdoptState::Matched), ("0001", AdoptState::Changed)]
        );
        assert_eq!(r.not_recorded.len(), 1);
        assert!(r.not_recorded[0].starts_with("created_at 1600000000000"));
        assert_eq!(r.pending.len(), 1);

        // Two files with the same content: the journal's `when` decides.
        let mut twins = vec![
            local("0000_a.sql", "SELECT 1;"),
            local("0001_b.sql", "SELECT 1;"),
        ];
        twins[1].when = Some("5".into());
        let e = Tool::Drizzle
            .entries(&rows(&[&[
                Some("1"),
                Some(&h("SELECT 1;")),
                Some("5"),
                None,
            ]]))
            .expect("entries");
        let r = plan(Tool::Drizzle, &e, &twins, &[]).expect("plan");
        assert_eq!(r.adopted[0].file.as_deref(), Some("0001_b.sql"));
        twins[1].when = None;
        assert_eq!(
            plan(Tool::Drizzle, &e, &twins, &[])
                .expect_err("an error")
                .code(),
            "E_ADOPT_AMBIGUOUS"
        );
    }

    #[test]
    fn locals_read_the_drizzle_journal_and_script_migrations() {
        let files = vec![
            SourceFile::new("0000_init.sql", b"SELECT 1;".to_vec()),
            SourceFile::new(
                "meta/_journal.json",
                br#"{"version":"7","dialect":"postgresql","entries":[{"idx":0,"version":"7","when":1712345678901,"tag":"0000_init","breakpoints":true}]}"#.to_vec(),
            ),
        ];
        let l = locals(&files).expect("locals");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].when.as_deref(), Some("1712345678901"));
        assert_eq!(l[0].raw, b"SELECT 1;");
        let scripts = vec![
            SourceFile::new("1700000000000_setup.js", b"exports.up = () => {};".to_vec()),
            SourceFile::new("1700000000001_more.sql", b"SELECT 2;".to_vec()),
        ];
        let l = locals(&scripts).expect("locals");
        assert_eq!(l[0].file, "1700000000000_setup.js");
        assert_eq!(l[0].name, "setup");
        // A script's text tells its tool only: its checksum is that of no
        // SQL, as recorded since scripts were first read as history.
        assert_eq!(l[0].checksum, crate::source::checksum(b""));
        let bad = vec![
            SourceFile::new("0000_init.sql", b"SELECT 1;".to_vec()),
            SourceFile::new("meta/_journal.json", b"{".to_vec()),
        ];
        assert_eq!(
            locals(&bad).expect_err("an error").code(),
            "E_UNKNOWN_LAYOUT"
        );
    }

    #[test]
    fn baseline_marks_up_to_the_version() {
        let locals = vec![
            local("001_a.sql", "SELECT 1;"),
            local("002_b.sql", "SELECT 2;"),
            local("003_c.sql", "SELECT 3;"),
        ];
        let r = plan_baseline(&locals, "2", &[]).expect("plan");
        assert_eq!(r.adopted.len(), 2);
        assert_eq!(r.pending.len(), 1);
        let recorded = vec![AppliedRow {
            version: "001".into(),
            completed: true,
            ..AppliedRow::default()
        }];
        let again = plan_baseline(&locals, "002", &recorded).expect("plan");
        assert_eq!((again.adopted.len(), again.already_recorded), (1, 1));
        assert_eq!(
            plan_baseline(&locals, "9", &[])
                .expect_err("an error")
                .code(),
            "E_UNKNOWN_VERSION"
        );
    }

    #[test]
    fn tool_names_round_trip() {
        for t in Tool::ALL {
            assert_eq!(Tool::parse(t.name()), Some(t));
        }
        assert_eq!(Tool::parse("flyway"), None);
    }
}
