//! Folder layouts: which entries of a migrations folder are migrations, in
//! the layouts users bring from other tools (style rule 4: pure, no I/O).
//!
//! The host passes every entry of the folder: files by name (`001_a.sql`),
//! files one folder down as `folder/file` (`20240101120000_init/migration.sql`,
//! `meta/_journal.json`), and folders as `folder/` (so that an empty folder, or
//! one nested deeper, is seen too). Every entry is read, reported or refused:
//! a folder in a shape tidemark does not read is an error, never "up to date".
//!
//! | layout | entries |
//! |---|---|
//! | flat (tidemark, dbmate, sqlx, node-pg-migrate, golang-migrate) | `<version>_<name>.sql`, `.up.sql` + `.down.sql` |
//! | Prisma Migrate, drizzle-kit v1 | `<version>_<name>/migration.sql` (`down.sql` beside it is the down) |
//! | diesel | `<YYYY-MM-DD-HHMMSS>_<name>/up.sql` + `down.sql` (+ `metadata.toml`) |
//! | drizzle-kit v0 | `<NNNN>_<name>.sql` + `meta/_journal.json`, which decides the set |

use crate::error::{Error, Kind, Result};
use crate::report::Event;
use crate::source::{parse_file_name, FileName, Part, SourceFile};

/// The drizzle-kit v0 journal, relative to the migrations folder.
pub const DRIZZLE_JOURNAL: &str = "meta/_journal.json";

/// The endings of the files in a migrations folder whose bytes the engine
/// reads: SQL, diesel's `metadata.toml`, drizzle-kit's journal, and script
/// migrations (their text tells node-pg-migrate's from knex's). A host reads
/// these and passes every other entry by name only (snapshots, notes);
/// hosts get the list from [`crate::defaults`].
pub const READ_ENDINGS: [&str; 9] = [
    ".sql",
    ".toml",
    "_journal.json",
    ".js",
    ".cjs",
    ".mjs",
    ".ts",
    ".cts",
    ".mts",
];

/// Extensions of node-pg-migrate's and knex's script migrations, which tidemark cannot
/// run but accepts as applied history.
const SCRIPT_EXTENSIONS: &[&str] = READ_ENDINGS.split_at(3).1;

/// One migration as the folder lays it out, before its SQL is read.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub version: String,
    pub name: String,
    /// The up SQL (or the script), named by its path in the folder.
    pub up: SourceFile,
    pub down: Option<SourceFile>,
    /// The layout itself says "no transaction" (diesel's `metadata.toml`).
    pub no_transaction: bool,
    /// A `.js`/`.ts` migration (node-pg-migrate's or knex's).
    pub script: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Laid {
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<Event>,
}

fn unknown(entry: &str, message: String) -> Error {
    Error::new(Kind::UnknownLayout, message).at(entry, None, None)
}

const SHAPES: &str = "tidemark reads <version>_<name>.sql files (or .up.sql/.down.sql pairs), \
Prisma and drizzle-kit folders <version>_<name>/migration.sql, diesel folders \
<YYYY-MM-DD-HHMMSS>_<name>/up.sql, and drizzle-kit's meta/_journal.json";

/// A migration folder's name: `<digits>_<name>` (Prisma, drizzle-kit v1) or
/// diesel's `<YYYY-MM-DD-HHMMSS>_<name>` and, since diesel 2.2,
/// `<YYYY-MM-DD-HHMMSS-NNNN>_<name>`. The version is its digits, as diesel
/// records it (both forms in one folder order by time: see
/// [`crate::source::cmp_versions`]).
///
/// ```
/// use tidemark_core::layout::parse_folder_name;
/// assert_eq!(parse_folder_name("2023-01-02-030405_create_posts"), Some(("20230102030405".into(), "create_posts".into())));
/// assert_eq!(parse_folder_name("2025-11-19-091444-0001_add_x"), Some(("202511190914440001".into(), "add_x".into())));
/// assert_eq!(parse_folder_name("20240101120000_init"), Some(("20240101120000".into(), "init".into())));
/// assert_eq!(parse_folder_name("meta"), None);
/// ```
pub fn parse_folder_name(dir: &str) -> Option<(String, String)> {
    let (head, name) = dir.split_once('_')?;
    if name.is_empty() || head.is_empty() {
        return None;
    }
    if head.bytes().all(|b| b.is_ascii_digit()) {
        return Some((head.to_string(), name.to_string()));
    }
    let b = head.as_bytes();
    let dashes: &[usize] = match b.len() {
        17 => &[4, 7, 10],
        22 => &[4, 7, 10, 17],
        _ => return None,
    };
    let diesel = b.iter().enumerate().all(|(i, c)| {
        if dashes.contains(&i) {
            *c == b'-'
        } else {
            c.is_ascii_digit()
        }
    });
    diesel.then(|| (head.replace('-', ""), name.to_string()))
}

/// The `(tag, when)` entries of a drizzle-kit journal, in journal order.
/// `when` is drizzle's `created_at` for the migration (epoch milliseconds).
///
/// ```
/// use tidemark_core::layout::drizzle_journal;
/// let j = br#"{"version":"7","dialect":"postgresql","entries":[{"idx":0,"version":"7","when":1700000000000,"tag":"0000_violet_salo","breakpoints":true}]}"#;
/// assert_eq!(drizzle_journal(j).unwrap(), [("0000_violet_salo".to_string(), Some(1700000000000))]);
/// ```
pub fn drizzle_journal(bytes: &[u8]) -> Result<Vec<(String, Option<i64>)>> {
    let bad = |why: &str| {
        unknown(
            DRIZZLE_JOURNAL,
            format!(
                "{DRIZZLE_JOURNAL} could not be read ({why}); it lists drizzle-kit's migrations, so tidemark cannot tell which to run: restore it from version control or regenerate it with drizzle-kit"
            ),
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let at = text
        .find("\"entries\"")
        .ok_or_else(|| bad("no \"entries\""))?;
    let rest = &text[at..];
    let open = rest
        .find('[')
        .ok_or_else(|| bad("\"entries\" is not a list"))?;
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut object = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for ch in rest[open + 1..].chars() {
        if in_string {
            object.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
            continue;
        }
        match ch {
            '"' => {
                in_string = true;
                object.push(ch);
            }
            '{' => {
                depth += 1;
                object.push(ch);
            }
            '}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| bad("unbalanced braces"))?;
                object.push(ch);
                if depth == 0 {
                    let tag = string_field(&object, "tag")
                        .ok_or_else(|| bad("an entry has no \"tag\""))?;
                    out.push((tag, number_field(&object, "when")));
                    object.clear();
                }
            }
            ']' if depth == 0 => return Ok(out),
            _ => object.push(ch),
        }
    }
    Err(bad("the entries list is not closed"))
}

/// The value of `"key": "value"` in one flat JSON object (no escapes).
fn string_field(object: &str, key: &str) -> Option<String> {
    let value = field(object, key)?.strip_prefix('"')?;
    let end = value.find('"')?;
    let v = &value[..end];
    (!v.contains('\\') && !v.is_empty()).then(|| v.to_string())
}

fn number_field(object: &str, key: &str) -> Option<i64> {
    let value = field(object, key)?;
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

fn field<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let at = object.find(&quoted)?;
    let rest = object[at + quoted.len()..].trim_start();
    Some(rest.strip_prefix(':')?.trim_start())
}

/// diesel's `metadata.toml`: `run_in_transaction = false`.
fn diesel_no_transaction(file: &SourceFile) -> bool {
    String::from_utf8_lossy(&file.bytes).lines().any(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        l.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "run_in_transaction" && v.trim().eq_ignore_ascii_case("false")
        })
    })
}

fn is_quiet(name: &str) -> bool {
    name.starts_with('.')
        || name.eq_ignore_ascii_case("readme.md")
        || name.eq_ignore_ascii_case("readme")
}

fn warning(code: &str, file: &str, message: String) -> Event {
    Event::Warning {
        code: code.into(),
        message,
        file: Some(file.to_string()),
    }
}

/// The entries of one subfolder: its files (by their name inside it) and
/// whether anything is nested deeper.
#[derive(Debug, Default)]
struct Folder {
    files: Vec<(String, SourceFile)>,
    nested: Vec<String>,
}

/// Sorts the folder's entries into migrations. Errors on anything it cannot
/// read as a migration where one is expected; other entries are warnings.
pub(crate) fn lay_out(files: Vec<SourceFile>) -> Result<Laid> {
    let mut laid = Laid::default();
    let mut top: Vec<SourceFile> = Vec::new();
    // (A Vec, not a map: the host passes entries sorted by name, and a map
    // costs the wasm build several KB.)
    let mut folders: Vec<(String, Folder)> = Vec::new();
    for file in files {
        match file.name.split_once('/') {
            None => top.push(file),
            Some((dir, rest)) => {
                let at = match folders.iter().rposition(|(d, _)| d == dir) {
                    Some(at) => at,
                    None => {
                        folders.push((dir.to_string(), Folder::default()));
                        folders.len() - 1
                    }
                };
                let folder = &mut folders[at].1;
                if rest.is_empty() {
                    // The folder itself.
                } else if rest.contains('/') {
                    folder.nested.push(file.name.clone());
                } else {
                    folder.files.push((rest.to_string(), file));
                }
            }
        }
    }

    // drizzle-kit v0: the journal decides the set and the order.
    let journal = folders
        .iter_mut()
        .find(|(d, _)| d == "meta")
        .map(|(_, m)| m)
        .and_then(|m| {
            m.files
                .iter()
                .position(|(n, _)| n == "_journal.json")
                .map(|i| m.files.swap_remove(i).1)
        })
        .map(|f| drizzle_journal(&f.bytes))
        .transpose()?;

    if let Some(err) = foreign_project(&top, &folders) {
        return Err(err);
    }
    for (dir, folder) in folders {
        if is_quiet(&dir) {
            continue;
        }
        if dir == "meta" && journal.is_some() {
            // drizzle-kit's snapshots: not migrations.
            continue;
        }
        folder_migration(&dir, folder, &mut laid)?;
    }

    let seen: Vec<String> = top
        .iter()
        .map(|f| f.name.clone())
        .filter(|n| !is_quiet(n) && n != "migration_lock.toml")
        .collect();
    match journal {
        Some(entries) => journal_migrations(entries, top, &mut laid)?,
        None => {
            let beside_folders = !laid.candidates.is_empty();
            flat_migrations(top, beside_folders, &mut laid)?
        }
    }
    if laid.candidates.is_empty() && !seen.is_empty() {
        // Files, none of them a migration: "up to date" would be a guess.
        let mut list = seen.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if seen.len() > 3 {
            list.push_str(&format!(" and {} more", seen.len() - 3));
        }
        return Err(unknown(
            &seen[0],
            format!("the migrations folder holds files but no migration tidemark reads ({list}), so nothing was run; {SHAPES}"),
        ));
    }
    Ok(laid)
}

/// A folder that another tool orders by a file of its own, which tidemark
/// does not read: sqitch's plan, graphile-migrate's `committed/` chain. The
/// generic "a shape tidemark does not read" would leave its user guessing;
/// this names the tool and the conversion.
fn foreign_project(top: &[SourceFile], folders: &[(String, Folder)]) -> Option<Error> {
    let has_top = |name: &str| top.iter().any(|f| f.name == name);
    let has_dir = |name: &str| folders.iter().any(|(d, _)| d == name);
    if has_top("sqitch.plan") {
        return Some(unknown(
            "sqitch.plan",
            "sqitch.plan: this is a sqitch project (its plan orders the scripts in deploy/, revert/ and verify/), which tidemark does not read, so nothing was run; write each change of the plan, in its order, as <version>_<change>.sql (from deploy/<change>.sql) and <version>_<change>.down.sql (from revert/<change>.sql), and record the changes sqitch already deployed with tidemark baseline --to <the last one's version>".into(),
        ));
    }
    if has_dir("committed") && (has_top("current.sql") || has_dir("current")) {
        return Some(unknown(
            "committed/",
            "committed/: this is a graphile-migrate folder (committed/<number>.sql, chained by their --! Previous hashes), which tidemark does not read, so nothing was run; move each committed/<number>.sql to <number>_<name>.sql in the migrations folder (its --! lines are comments), and record the ones graphile-migrate already ran with tidemark baseline --to <the last number>".into(),
        ));
    }
    None
}

fn folder_migration(dir: &str, folder: Folder, laid: &mut Laid) -> Result<()> {
    let has_sql = folder.files.iter().any(|(n, _)| n.ends_with(".sql"));
    let Some((version, name)) = parse_folder_name(dir) else {
        // Migrations one level down (Hasura's `migrations/<database>/`).
        let inner = folder
            .nested
            .iter()
            .filter_map(|n| n.split('/').nth(1))
            .find(|sub| parse_folder_name(sub).is_some())
            .or_else(|| {
                folder
                    .files
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .find(|n| parse_file_name(n).is_some())
            });
        if let Some(inner) = inner {
            return Err(unknown(
                &format!("{dir}/"),
                format!(
                    "the folder {dir}/ holds migrations of its own ({dir}/{inner}), as Hasura keeps one folder per database; tidemark reads one folder of migrations, so nothing was run: make {dir}/ the migrations folder"
                ),
            ));
        }
        if has_sql || !folder.nested.is_empty() {
            return Err(unknown(
                &format!("{dir}/"),
                format!(
                    "the folder {dir}/ holds SQL in a shape tidemark does not read, so nothing was run; {SHAPES}. Rename it to <version>_<name>/ or move it out of the migrations folder"
                ),
            ));
        }
        laid.warnings.push(warning(
            "W_UNEXPECTED_FILE",
            &format!("{dir}/"),
            format!("{dir}/ is a folder without migrations, so nothing in it runs; move it out of the migrations folder"),
        ));
        return Ok(());
    };
    if let Some(deeper) = folder.nested.first() {
        return Err(unknown(
            deeper,
            format!("{deeper} is nested inside the migration folder {dir}/, which tidemark does not read; {SHAPES}"),
        ));
    }
    let mut up: Option<SourceFile> = None;
    let mut down: Option<SourceFile> = None;
    let mut no_transaction = false;
    for (file_name, file) in folder.files {
        match file_name.as_str() {
            "migration.sql" | "up.sql" => {
                if let Some(other) = &up {
                    return Err(unknown(
                        &file.name,
                        format!(
                            "{dir}/ has both {} and {}, so tidemark cannot tell which is the migration; keep one",
                            other.name, file.name
                        ),
                    ));
                }
                up = Some(file);
            }
            "down.sql" => down = Some(file),
            "metadata.toml" => no_transaction = diesel_no_transaction(&file),
            // Prisma's lock file and drizzle-kit v1's snapshot.
            "migration_lock.toml" | "snapshot.json" => {}
            n if is_quiet(n) => {}
            n if n.ends_with(".sql") => {
                return Err(unknown(
                    &file.name,
                    format!(
                        "{} is not a file tidemark reads in a migration folder (migration.sql, or up.sql and down.sql), so nothing was run; rename it or move it out",
                        file.name
                    ),
                ));
            }
            _ => laid.warnings.push(warning(
                "W_UNEXPECTED_FILE",
                &file.name,
                format!("{} is not a migration file, so it is not run; move it out of the migrations folder", file.name),
            )),
        }
    }
    let Some(up) = up else {
        let what = if down.is_some() {
            "a down.sql but no up.sql or migration.sql"
        } else {
            "no migration.sql or up.sql"
        };
        return Err(unknown(
            &format!("{dir}/"),
            format!("the migration folder {dir}/ has {what}, so tidemark cannot tell what it applies; add the file or remove the folder"),
        ));
    };
    laid.candidates.push(Candidate {
        version,
        name,
        up,
        down,
        no_transaction,
        script: false,
    });
    Ok(())
}

/// A file whose name carries a version (`<version>_<name>.<ext>`, TypeORM's
/// `1700000000000-CreateUser.ts`, Sequelize's `20240101120000-create-user.js`,
/// MikroORM's `Migration20240101120000.ts`) but that is not SQL or a
/// node-pg-migrate script: another tool's migration in code (goose's `.go`
/// too) or a renamed copy (`.sql.bak`). Skipping it would report "up to date"
/// while its change never ran, so it is refused; notes (`.md`, `.txt`) are
/// only warned about.
fn foreign_migration(file: &str) -> Option<String> {
    let (stem, ext) = file.split_once('.')?;
    let ext = ext.to_ascii_lowercase();
    if matches!(ext.as_str(), "md" | "txt") {
        return None;
    }
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    let longest_run = stem
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let versioned = (digits > 0 && stem[digits..].starts_with(['_', '-', '.'])) || longest_run >= 8;
    if !versioned {
        return None;
    }
    Some(match ext.rsplit('.').next().unwrap_or_default() {
        "go" => "a Go migration (goose)".into(),
        "js" | "cjs" | "mjs" | "ts" | "cts" | "mts" => {
            format!("a .{ext} migration of another tool (TypeORM, Sequelize, knex, MikroORM name theirs so)")
        }
        _ => format!("a .{ext} file"),
    })
}

/// The name with its `.sql` in lowercase, for a file that ends in `.SQL`,
/// `.Sql`, ... (a Windows export): SQL that tidemark would otherwise call
/// "not a migration".
///
/// ```text
/// 20240101000000_init.SQL    -> 20240101000000_init.sql
/// 001_a.up.Sql               -> 001_a.up.sql
/// 001_a.sql, notes.txt       -> None
/// ```
fn uppercase_sql(file: &str) -> Option<(&str, String)> {
    let (stem, ext) = file.rsplit_once('.')?;
    (ext != "sql" && ext.eq_ignore_ascii_case("sql") && !stem.is_empty())
        .then(|| (ext, format!("{stem}.sql")))
}

fn script_name(file: &str) -> Option<FileName> {
    let ext = SCRIPT_EXTENSIONS.iter().find(|e| file.ends_with(*e))?;
    let stem = &file[..file.len() - ext.len()];
    let n = parse_file_name(&format!("{stem}.sql"))?;
    (n.part == Part::Whole).then_some(n)
}

/// The databases ory/pop names in `<version>_<name>.<dialect>.up.sql`.
const POP_DIALECTS: [&str; 6] = [
    "postgres",
    "cockroach",
    "mysql",
    "sqlite3",
    "sqlite",
    "mssql",
];

/// ory/pop's `<version>_<name>[.<dialect>][.autocommit].(up|down).sql`: the
/// dialect (none: every database), whether it runs outside a transaction,
/// and the name without them.
fn pop_name(file: &str) -> Option<(Option<&'static str>, bool, String)> {
    let (stem, part) = if let Some(s) = file.strip_suffix(".up.sql") {
        (s, "up")
    } else {
        (file.strip_suffix(".down.sql")?, "down")
    };
    let mut segments: Vec<&str> = stem.split('.').collect();
    let (mut dialect, mut autocommit) = (None, false);
    for _ in 0..2 {
        match segments.last().copied() {
            Some("autocommit") if segments.len() > 1 && !autocommit => autocommit = true,
            Some(d) if segments.len() > 1 && dialect.is_none() => {
                match POP_DIALECTS.iter().find(|x| **x == d) {
                    Some(known) => dialect = Some(*known),
                    None => break,
                }
            }
            _ => break,
        }
        segments.pop();
    }
    (segments.len() == 1 && (dialect.is_some() || autocommit))
        .then(|| (dialect, autocommit, format!("{}.{part}.sql", segments[0])))
}

/// The top files with their parsed names. In a folder laid out by ory/pop
/// (some file names a database), the files for other databases are left
/// out (pop runs them only there) and a PostgreSQL-specific file replaces
/// the all-databases file of the same version; `autocommit` files run
/// outside a transaction.
fn pop_dialects(top: Vec<SourceFile>) -> Vec<(Option<FileName>, bool, SourceFile)> {
    let pop = top
        .iter()
        .any(|f| pop_name(&f.name).is_some_and(|(d, _, _)| d.is_some()));
    let mut out: Vec<(Option<FileName>, bool, SourceFile, bool)> = Vec::with_capacity(top.len());
    for file in top {
        match pop_name(&file.name) {
            Some((dialect, autocommit, plain)) if pop || dialect.is_none() => {
                if dialect.is_some_and(|d| d != "postgres") {
                    continue;
                }
                out.push((parse_file_name(&plain), autocommit, file, dialect.is_some()));
            }
            _ => out.push((parse_file_name(&file.name), false, file, false)),
        }
    }
    let specific: Vec<(String, Part)> = out
        .iter()
        .filter(|e| e.3)
        .filter_map(|e| e.0.as_ref().map(|n| (n.version.clone(), n.part)))
        .collect();
    out.into_iter()
        .filter(|(n, _, _, is_specific)| {
            *is_specific
                || !n.as_ref().is_some_and(|n| {
                    specific
                        .iter()
                        .any(|(v, p)| *v == n.version && *p == n.part)
                })
        })
        .map(|(n, a, f, _)| (n, a, f))
        .collect()
}

/// The files at the top of the folder. `beside_folders`: the folder's
/// migrations are Prisma/drizzle/diesel folders, whose tools never run a
/// loose `.sql` file beside them, so one that is not named like a migration
/// is reported and not run (crates.io keeps a data script there).
fn flat_migrations(top: Vec<SourceFile>, beside_folders: bool, laid: &mut Laid) -> Result<()> {
    let mut downs: Vec<(FileName, SourceFile)> = Vec::new();
    for (parsed, autocommit, file) in pop_dialects(top) {
        if let Some(n) = parsed {
            match n.part {
                Part::Down => downs.push((n, file)),
                _ => laid.candidates.push(Candidate {
                    version: n.version,
                    name: n.name,
                    up: file,
                    down: None,
                    no_transaction: autocommit,
                    script: false,
                }),
            }
        } else if let Some(n) = script_name(&file.name) {
            laid.candidates.push(Candidate {
                version: n.version,
                name: n.name,
                up: file,
                down: None,
                no_transaction: false,
                script: true,
            });
        } else if file.name.ends_with(".sql") && beside_folders {
            laid.warnings.push(warning(
                "W_UNEXPECTED_FILE",
                &file.name,
                format!(
                    "{} is beside the migration folders but is not one (<version>_<name>/), so it is not run, as the folders' own tool would not run it; move it out of the migrations folder",
                    file.name
                ),
            ));
        } else if file.name.ends_with(".sql") {
            return Err(Error::new(
                Kind::BadFileName,
                format!(
                    "{} is not named <version>_<name>.sql (for example 001_create_users.sql), so tidemark cannot tell when it runs and nothing was run; {}",
                    file.name,
                    other_tool_naming(&file.name).unwrap_or_else(|| "rename it, or move it out of the migrations folder".into())
                ),
            )
            .at(&file.name, None, None));
        } else if let Some((ext, lower)) = uppercase_sql(&file.name) {
            return Err(unknown(
                &file.name,
                format!(
                    "{} ends in .{ext}, and tidemark reads only .sql in lowercase, so nothing was run; rename it to {lower}",
                    file.name
                ),
            ));
        } else if let Some(what) = foreign_migration(&file.name) {
            return Err(unknown(
                &file.name,
                format!(
                    "{} is named like a migration but is {what}, which tidemark cannot run, so nothing was run; \
                     rewrite it as a .sql migration with the same version, or move it out of the migrations folder",
                    file.name
                ),
            ));
        } else if !is_quiet(&file.name) && file.name != "migration_lock.toml" {
            laid.warnings.push(warning(
                "W_UNEXPECTED_FILE",
                &file.name,
                format!(
                    "{} is not a .sql file, so it is not run as a migration; move it out of the folder",
                    file.name
                ),
            ));
        }
    }
    for (d, down_file) in downs {
        let Some(c) = laid.candidates.iter_mut().find(|c| {
            !c.script && c.version == d.version && c.name == d.name && !c.up.name.contains('/')
        }) else {
            return Err(Error::new(
                Kind::OrphanDown,
                format!(
                    "{} has no up migration beside it; add the matching .up.sql (or .sql) file, or remove it",
                    down_file.name
                ),
            )
            .at(&down_file.name, None, None));
        };
        c.down = Some(down_file);
    }
    Ok(())
}

fn journal_migrations(
    entries: Vec<(String, Option<i64>)>,
    top: Vec<SourceFile>,
    laid: &mut Laid,
) -> Result<()> {
    let mut by_name: Vec<SourceFile> = Vec::new();
    for file in top {
        if file.name.ends_with(".sql") {
            by_name.push(file);
        } else if !is_quiet(&file.name) {
            laid.warnings.push(warning(
                "W_UNEXPECTED_FILE",
                &file.name,
                format!("{} is not a .sql file, so it is not run as a migration; move it out of the folder", file.name),
            ));
        }
    }
    for (idx, (tag, _)) in entries.iter().enumerate() {
        let file_name = format!("{tag}.sql");
        let Some(file) = by_name
            .iter()
            .position(|f| f.name == file_name)
            .map(|i| by_name.remove(i))
        else {
            return Err(unknown(
                DRIZZLE_JOURNAL,
                format!(
                    "{DRIZZLE_JOURNAL} lists {tag}, but {file_name} is not in the migrations folder, so nothing was run; restore the file from version control"
                ),
            ));
        };
        let (version, name) = match parse_file_name(&file_name) {
            Some(n) if n.part == Part::Whole => (n.version, n.name),
            _ => (format!("{idx:04}"), tag.clone()),
        };
        laid.candidates.push(Candidate {
            version,
            name,
            up: file,
            down: None,
            no_transaction: false,
            script: false,
        });
    }
    for name in by_name.into_iter().map(|f| f.name) {
        laid.warnings.push(warning(
            "W_NOT_IN_JOURNAL",
            &name,
            format!(
                "{name} is not listed in {DRIZZLE_JOURNAL}, so it is not run (drizzle-kit would not run it either); generate migrations with drizzle-kit, or delete the file"
            ),
        ));
    }
    Ok(())
}

/// The fix for a file named in another tool's convention that tidemark does
/// not read: postgrator's `001.do.sql` / `001.undo.sql` (with an optional
/// `.description`) and Flyway's `V1__init.sql` / `U1__init.sql` /
/// `R__view.sql`, each with the file's own new name.
fn other_tool_naming(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".sql")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = stem.splitn(3, '.');
    if let (Some(version), Some(part @ ("do" | "undo"))) = (parts.next(), parts.next()) {
        if digits(version) {
            let what = parts
                .next()
                .filter(|d| !d.is_empty())
                .unwrap_or("migration");
            let new = format!(
                "{version}_{what}{}.sql",
                if part == "undo" { ".down" } else { "" }
            );
            return Some(format!(
                "it is named like a postgrator migration ({version}.do.sql / {version}.undo.sql), which tidemark reads as {version}_<name>.sql and {version}_<name>.down.sql: rename it to {new}"
            ));
        }
    }
    // postgres-migrations' `2-add-email.sql` (it also reads `2_add-email.sql`).
    if let Some((version, description)) = stem.split_once('-') {
        if digits(version) && !description.is_empty() && !description.contains("__") {
            return Some(format!(
                "it is named like a postgres-migrations migration (<id>-<name>.sql), which tidemark reads as <version>_<name>.sql: rename it to {version}_{description}.sql (tidemark adopt still matches it to that tool's history)"
            ));
        }
    }
    let (prefix, rest) = stem.split_at(stem.find("__")?);
    let description = rest.trim_start_matches('_');
    let (kind, version) = prefix.split_at(1.min(prefix.len()));
    let flyway_version = !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_');
    match kind {
        "V" | "U" if flyway_version && !description.is_empty() => {
            let plain = digits(version).then(|| {
                format!(
                    ": rename it to {version}_{description}{}.sql",
                    if kind == "U" { ".down" } else { "" }
                )
            });
            Some(format!(
                "it is named like a Flyway {} migration (V<version>__<description>.sql), which tidemark reads as <version>_<name>.sql{}",
                if kind == "U" { "undo" } else { "versioned" },
                plain.unwrap_or_else(|| format!(
                    ", with a version of digits only ({version} has dots or underscores): renumber the files in order (1, 2, ... or timestamps) and rename each to <version>_<name>.sql"
                ))
            ))
        }
        "R" if version.is_empty() && !description.is_empty() => Some(
            "it is named like a Flyway repeatable migration (R__<description>.sql, run again whenever it changes), which tidemark does not have: give it a version and name it <version>_<name>.sql (a later edit is then drift, which tidemark reports), or move it out of the migrations folder".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, &str)]) -> Vec<SourceFile> {
        list.iter()
            .map(|(n, s)| SourceFile::new(*n, s.as_bytes().to_vec()))
            .collect()
    }

    fn versions(laid: &Laid) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = laid
            .candidates
            .iter()
            .map(|c| (c.version.clone(), c.name.clone(), c.up.name.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn prisma_folders_with_lock_file() {
        let laid = lay_out(entries(&[
            ("20240101120000_init/", ""),
            ("20240101120000_init/migration.sql", "create table a();"),
            ("20240202120000_more/", ""),
            ("20240202120000_more/migration.sql", "create table b();"),
            ("migration_lock.toml", "provider = \"postgresql\""),
        ]))
        .unwrap();
        assert_eq!(
            versions(&laid),
            [
                (
                    "20240101120000".into(),
                    "init".into(),
                    "20240101120000_init/migration.sql".into()
                ),
                (
                    "20240202120000".into(),
                    "more".into(),
                    "20240202120000_more/migration.sql".into()
                ),
            ]
        );
        assert!(laid.warnings.is_empty(), "{:?}", laid.warnings);
    }

    #[test]
    fn diesel_folders_with_metadata() {
        let laid = lay_out(entries(&[
            ("00000000000000_diesel_initial_setup/up.sql", "select 1;"),
            ("00000000000000_diesel_initial_setup/down.sql", "select 0;"),
            (
                "2023-01-02-030405_index/up.sql",
                "create index concurrently i on t(x);",
            ),
            ("2023-01-02-030405_index/down.sql", "drop index i;"),
            (
                "2023-01-02-030405_index/metadata.toml",
                "run_in_transaction = false\n",
            ),
        ]))
        .unwrap();
        let c = &laid.candidates;
        assert_eq!(c.len(), 2);
        let index = c.iter().find(|c| c.name == "index").unwrap();
        assert_eq!(index.version, "20230102030405");
        assert!(index.no_transaction);
        assert_eq!(
            index.down.as_ref().unwrap().name,
            "2023-01-02-030405_index/down.sql"
        );
        let setup = c.iter().find(|c| c.version == "00000000000000").unwrap();
        assert!(!setup.no_transaction);
    }

    #[test]
    fn drizzle_journal_decides_the_set() {
        let journal = r#"{"version":"7","dialect":"postgresql","entries":[
            {"idx":0,"version":"7","when":1700000000000,"tag":"0000_violet_salo","breakpoints":true},
            {"idx":1,"version":"7","when":1700000001000,"tag":"0001_next","breakpoints":true}]}"#;
        let laid = lay_out(entries(&[
            ("meta/", ""),
            ("meta/_journal.json", journal),
            ("meta/0000_snapshot.json", "{}"),
            ("0000_violet_salo.sql", "create table a();"),
            ("0001_next.sql", "create table b();"),
            ("0002_stray.sql", "drop table a;"),
        ]))
        .unwrap();
        assert_eq!(laid.candidates.len(), 2);
        assert!(laid
            .warnings
            .iter()
            .any(|w| matches!(w, Event::Warning { code, file, .. } if code == "W_NOT_IN_JOURNAL" && file.as_deref() == Some("0002_stray.sql"))));
        let err = lay_out(entries(&[
            ("meta/_journal.json", journal),
            ("0000_violet_salo.sql", ""),
        ]))
        .unwrap_err();
        assert_eq!(err.code(), "E_UNKNOWN_LAYOUT");
        assert!(err.message().contains("0001_next"), "{}", err.message());
    }

    #[test]
    fn other_tools_names_get_their_own_rename() {
        for (name, says) in [
            ("001.do.sql", "postgrator migration (001.do.sql / 001.undo.sql), which tidemark reads as 001_<name>.sql and 001_<name>.down.sql: rename it to 001_migration.sql"),
            ("002.do.add-users.sql", "rename it to 002_add-users.sql"),
            ("002.undo.add-users.sql", "rename it to 002_add-users.down.sql"),
            ("V1__init.sql", "Flyway versioned migration (V<version>__<description>.sql), which tidemark reads as <version>_<name>.sql: rename it to 1_init.sql"),
            ("U3__init.sql", "Flyway undo migration (V<version>__<description>.sql), which tidemark reads as <version>_<name>.sql: rename it to 3_init.down.sql"),
            ("V1.1__add_b.sql", "with a version of digits only (1.1 has dots or underscores): renumber the files in order"),
            ("R__views.sql", "Flyway repeatable migration (R__<description>.sql, run again whenever it changes), which tidemark does not have"),
            ("2-add-email.sql", "postgres-migrations migration (<id>-<name>.sql), which tidemark reads as <version>_<name>.sql: rename it to 2_add-email.sql"),
            ("init.sql", "rename it, or move it out of the migrations folder"),
            ("Vx__init.sql", "rename it, or move it out of the migrations folder"),
        ] {
            let err = lay_out(entries(&[(name, "select 1;")])).unwrap_err();
            assert_eq!(err.code(), "E_BAD_FILE_NAME", "{name}");
            assert!(err.message().starts_with(&format!("{name} is not named <version>_<name>.sql")), "{}", err.message());
            assert!(err.message().contains(says), "{name}: {}", err.message());
            assert_eq!(err.file(), Some(name));
        }
    }

    #[test]
    fn migrations_one_folder_down_name_that_folder() {
        for (list, shown) in [
            (
                vec![
                    ("default/", ""),
                    ("default/1600000000000_init/", ""),
                    ("default/1600000000001_users/", ""),
                ],
                "default/1600000000000_init",
            ),
            (
                vec![("sql/", ""), ("sql/001_init.sql", "select 1;")],
                "sql/001_init.sql",
            ),
        ] {
            let err = lay_out(entries(&list)).unwrap_err();
            assert_eq!(err.code(), "E_UNKNOWN_LAYOUT");
            let dir = list[0].0;
            assert_eq!(err.file(), Some(dir));
            assert!(
                err.message()
                    .contains(&format!("holds migrations of its own ({shown})")),
                "{}",
                err.message()
            );
            assert!(
                err.message()
                    .ends_with(&format!("make {dir} the migrations folder")),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn unknown_shapes_are_errors() {
        for (list, named) in [
            (vec![("schema/", ""), ("schema/tables.sql", "x")], "schema/"),
            (vec![("init.sql", "x")], "init.sql"),
            (vec![("002_dir.sql/", "")], "002_dir.sql/"),
            (vec![("001_a/", ""), ("001_a/deeper/", "")], "001_a/deeper/"),
            (vec![("001_a/other.sql", "x")], "001_a/other.sql"),
        ] {
            let err = lay_out(entries(&list)).unwrap_err();
            assert!(
                matches!(err.code(), "E_UNKNOWN_LAYOUT" | "E_BAD_FILE_NAME"),
                "{list:?}: {}",
                err.code()
            );
            assert!(err.message().contains(named), "{}", err.message());
            assert_eq!(err.file(), Some(named));
        }
    }

    #[test]
    fn a_loose_sql_file_beside_folders_is_reported_not_run() {
        let laid = lay_out(vec![
            SourceFile::new("2023-01-02-030405_init/up.sql", b"select 1;".to_vec()),
            SourceFile::new("data_oauth_github.sql", b"insert 1;".to_vec()),
        ])
        .unwrap();
        assert_eq!(laid.candidates.len(), 1);
        assert!(
            matches!(&laid.warnings[..], [Event::Warning { code, .. }] if code == "W_UNEXPECTED_FILE")
        );
        // Without folders it would be a migration with a bad name.
        let err = lay_out(vec![SourceFile::new("data.sql", b"insert 1;".to_vec())]).unwrap_err();
        assert_eq!(err.code(), "E_BAD_FILE_NAME");
    }

    #[test]
    fn ory_pop_dialect_files() {
        let laid = lay_out(
            [
                "20150100000001000000_networks.postgres.up.sql",
                "20150100000001000000_networks.postgres.down.sql",
                "20150100000001000000_networks.mysql.up.sql",
                "20150100000001000000_networks.sqlite3.up.sql",
                "20150100000001000000_networks.cockroach.down.sql",
                "20220420102701000000_identity_metadata.up.sql",
                "20220420102701000000_identity_metadata.down.sql",
                "20230101000000000000_both.up.sql",
                "20230101000000000000_both.postgres.up.sql",
                "20241029153900000001_identities.autocommit.up.sql",
                "20241029153900000002_idx.postgres.autocommit.up.sql",
            ]
            .into_iter()
            .map(|n| SourceFile::new(n, n.as_bytes().to_vec()))
            .collect(),
        )
        .unwrap();
        let got: Vec<_> = laid
            .candidates
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.up.name.as_str(),
                    c.down.is_some(),
                    c.no_transaction,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "networks",
                    "20150100000001000000_networks.postgres.up.sql",
                    true,
                    false
                ),
                (
                    "identity_metadata",
                    "20220420102701000000_identity_metadata.up.sql",
                    true,
                    false
                ),
                (
                    "both",
                    "20230101000000000000_both.postgres.up.sql",
                    false,
                    false
                ),
                (
                    "identities",
                    "20241029153900000001_identities.autocommit.up.sql",
                    false,
                    true
                ),
                (
                    "idx",
                    "20241029153900000002_idx.postgres.autocommit.up.sql",
                    false,
                    true
                ),
            ]
        );
        // Without any dialect file, `x.mysql.up.sql` is a plain name.
        assert_eq!(pop_name("1_a.up.sql"), None);
        assert_eq!(pop_name("1_a.b.up.sql"), None);
    }

    #[test]
    fn both_diesel_names_order_by_time() {
        // crates.io's folder: diesel 2.2 added `-NNNN`, and an older-style
        // name can follow newer ones; diesel orders them by time.
        let names = [
            "2025-11-19-091444-0000_a",
            "2026-05-27-120000-0000_d",
            "2026-05-27-120000_c",
            "2026-05-05-180007-0000_b",
        ];
        let mut versions: Vec<_> = names
            .iter()
            .map(|n| parse_folder_name(n).unwrap())
            .collect();
        versions.sort_by(|a, b| crate::source::cmp_versions(&a.0, &b.0));
        let order: Vec<_> = versions.iter().map(|v| v.1.as_str()).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
        assert_eq!(parse_folder_name("2025-11-19-091444-00x0_a"), None);
    }

    #[test]
    fn code_migrations_of_other_tools_are_refused() {
        for name in [
            "00002_add_column.go",
            "20240101120000_x.sql.bak",
            "003_y.py",
            "20240101120000-create-user.js",
            "1700000000000-CreateUser.ts",
            "Migration20240101120000.ts",
        ] {
            let err = lay_out(vec![
                SourceFile::new("00001_init.sql", b"select 1;".to_vec()),
                SourceFile::new(name, b"package migrations".to_vec()),
            ])
            .unwrap_err();
            assert_eq!((err.code(), err.file()), ("E_UNKNOWN_LAYOUT", Some(name)));
            assert!(
                err.message().contains("nothing was run"),
                "{}",
                err.message()
            );
        }
        let laid = lay_out(vec![
            SourceFile::new("00001_init.sql", b"select 1;".to_vec()),
            SourceFile::new("00001_init.md", b"notes".to_vec()),
            SourceFile::new("index.ts", b"export {}".to_vec()),
        ])
        .unwrap();
        assert_eq!(laid.warnings.len(), 2);
        // Files but no migration: never "up to date".
        let err = lay_out(vec![SourceFile::new(
            "schema.prisma",
            b"model X {}".to_vec(),
        )])
        .unwrap_err();
        assert_eq!(err.code(), "E_UNKNOWN_LAYOUT");
        assert!(
            err.message().contains("holds files but no migration"),
            "{}",
            err.message()
        );
        assert!(lay_out(vec![SourceFile::new(".gitkeep", vec![])])
            .unwrap()
            .candidates
            .is_empty());
    }

    #[test]
    fn sqitch_and_graphile_migrate_folders_are_named() {
        let err = lay_out(entries(&[
            (
                "sqitch.plan",
                "%project=x\ninit 2024-01-01T00:00:00Z A <a@b> # init\n",
            ),
            ("deploy/", ""),
            ("deploy/init.sql", "create table a (id int);"),
            ("revert/", ""),
            ("revert/init.sql", "drop table a;"),
        ]))
        .unwrap_err();
        assert_eq!(err.code(), "E_UNKNOWN_LAYOUT");
        assert!(
            err.message()
                .starts_with("sqitch.plan: this is a sqitch project"),
            "{}",
            err.message()
        );
        let err = lay_out(entries(&[
            ("current.sql", "-- Enter migration here\n"),
            ("committed/", ""),
            (
                "committed/000001.sql",
                "--! Previous: -\n--! Hash: sha1:abc\n\ncreate table a (id int);",
            ),
        ]))
        .unwrap_err();
        assert!(
            err.message()
                .starts_with("committed/: this is a graphile-migrate folder"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn uppercase_sql_is_refused_with_the_name_to_give_it() {
        let err = lay_out(entries(&[
            ("001_a.sql", "select 1;"),
            ("20240101000000_Init.SQL", "create table a (id int);"),
        ]))
        .unwrap_err();
        assert!(
            err.message()
                .contains("20240101000000_Init.SQL ends in .SQL, and tidemark reads only .sql in lowercase, so nothing was run; rename it to 20240101000000_Init.sql"),
            "{}",
            err.message()
        );
        assert_eq!(
            uppercase_sql("001_a.up.Sql"),
            Some(("Sql", "001_a.up.sql".to_string()))
        );
        assert_eq!(uppercase_sql("001_a.sql"), None);
        assert_eq!(uppercase_sql("notes.txt"), None);
    }

    #[test]
    fn scripts_and_stray_folders() {
        let laid = lay_out(entries(&[
            ("1700000000000_init.js", "exports.up = () => {};"),
            ("1700000000001_next.sql", "select 1;"),
            ("fixtures/", ""),
            ("fixtures/data.json", "{}"),
        ]))
        .unwrap();
        assert!(laid
            .candidates
            .iter()
            .any(|c| c.script && c.version == "1700000000000"));
        assert_eq!(laid.warnings.len(), 1);
    }
}
