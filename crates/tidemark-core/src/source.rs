//! The source model: migration and seed files as the host read them, turned
//! into [`Migration`]s by pure constructors (style rule 4). Nothing here does
//! I/O; a file that looks wrong becomes a warning or an error that names it.

use sha2::{Digest, Sha256};

use crate::error::{Error, Kind, Result};
use crate::report::Event;

/// A file as the host read it: its name inside the folder and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SourceFile {
    pub name: String,
    /// A `Buffer`/`Uint8Array` from JS.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        SourceFile {
            name: name.into(),
            bytes,
        }
    }
}

/// The file marker that makes a migration run outside a transaction,
/// statement by statement.
pub const NO_TRANSACTION_MARKER: &str = "-- tidemark:no-transaction";

/// SQL text taken from a file, with where it starts in that file so that
/// server error positions map back to the file's own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlText {
    /// The file it came from.
    pub file: String,
    /// The SQL, after CRLF→LF and BOM removal.
    pub sql: String,
    /// 0-based line of the file on which `sql` begins (non-zero for the up or
    /// down section of a sectioned file).
    pub first_line: u32,
}

impl SqlText {
    /// Maps a byte offset in `sql` to a 1-based (line, column) in the file;
    /// the column counts characters.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let mut line = self.first_line + 1;
        let mut col = 1u32;
        for (i, ch) in self.sql.char_indices() {
            if i >= offset {
                break;
            }
            if ch == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        (line, col)
    }
}

/// One migration: its version exactly as written (`001`), its name, the up
/// SQL and, when there is one, the down SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: String,
    pub name: String,
    pub up: SqlText,
    pub down: Option<SqlText>,
    /// Lowercase hex SHA-256 of the normalized up SQL (see [`checksum`]).
    pub checksum: String,
    /// The up SQL carries [`NO_TRANSACTION_MARKER`] (or another tool's
    /// marker: sqlx, dbmate, morph, diesel's `metadata.toml`).
    pub no_transaction: bool,
    /// The down SQL runs without a transaction (its own marker, a dbmate
    /// `-- migrate:down transaction:false`, or diesel's `metadata.toml`).
    pub down_no_transaction: bool,
    /// A `.js`/`.ts` migration (node-pg-migrate's, knex's,
    /// postgres-migrations'): history only, never run.
    pub script: Option<ScriptTool>,
}

/// Whose `.js`/`.ts` migration a script is, as its text tells:
/// node-pg-migrate, knex and postgres-migrations all name theirs
/// `<version>_<name>.js`, and the error for a pending one names the tool and
/// what its user does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptTool {
    /// `exports.up = (pgm) => ...`, or `node-pg-migrate` named.
    NodePgMigrate,
    /// `exports.up = function (knex) ...`, `import { Knex } from 'knex'`.
    Knex,
    /// `module.exports.generateSql = () => ...`.
    PostgresMigrations,
    /// No sign of any of them.
    Unknown,
}

impl ScriptTool {
    /// The tool of a script migration with these bytes: node-pg-migrate when
    /// the text names its `pgm` as a word (or the package), else knex when it
    /// names `knex`, else postgres-migrations when it exports `generateSql`.
    ///
    /// ```
    /// use tidemark_core::source::ScriptTool;
    /// assert_eq!(ScriptTool::of(b"exports.up = function (knex) { return knex.schema.createTable('t', () => {}); };"), ScriptTool::Knex);
    /// assert_eq!(ScriptTool::of(b"import type { Knex } from 'knex';\nexport async function up(k: Knex) {}"), ScriptTool::Knex);
    /// assert_eq!(ScriptTool::of(b"exports.up = (pgm) => { pgm.createTable('knex_like', {}); };"), ScriptTool::NodePgMigrate);
    /// assert_eq!(ScriptTool::of(b"module.exports.generateSql = () => 'CREATE TABLE t ()';"), ScriptTool::PostgresMigrations);
    /// assert_eq!(ScriptTool::of(b"exports.up = () => {};"), ScriptTool::Unknown);
    /// ```
    pub fn of(bytes: &[u8]) -> ScriptTool {
        let text = String::from_utf8_lossy(bytes);
        let words = |w: &str| {
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                .any(|t| t.eq_ignore_ascii_case(w))
        };
        if text.contains("node-pg-migrate") || words("pgm") {
            ScriptTool::NodePgMigrate
        } else if words("knex") {
            ScriptTool::Knex
        } else if words("generateSql") {
            ScriptTool::PostgresMigrations
        } else {
            ScriptTool::Unknown
        }
    }
}

impl Migration {
    /// The file that holds the up SQL.
    pub fn file(&self) -> &str {
        &self.up.file
    }
}

/// The checksum tidemark stores, decided once (style rule 7): SHA-256 over the
/// SQL after removing a UTF-8 BOM and turning CRLF into LF, as lowercase hex.
/// A Windows checkout therefore never looks like drift. Changing this would
/// make every applied migration look drifted: don't.
///
/// ```
/// use tidemark_core::source::checksum;
/// assert_eq!(checksum(b"select 1;\r\n"), checksum(b"\xEF\xBB\xBFselect 1;\n"));
/// ```
pub fn checksum(bytes: &[u8]) -> String {
    hex(&sha256(&normalize(bytes)))
}

/// SHA-256, fed 64 KB at a time. The same digest as one call; the slices
/// are for the wasm build: V8 replaces a function's baseline code with
/// optimized code only for later calls (a running call keeps its code), so
/// a 2 MB file hashed in one call ran in baseline code from start to end:
/// 84 ms of a 2 MB migration's deploy, where the first slices now tier the
/// hash function up for the rest.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for slice in bytes.chunks(64 << 10) {
        hasher.update(slice);
    }
    hasher.finalize().into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// BOM removal and CRLF→LF, the normalization under [`checksum`].
pub fn normalize(bytes: &[u8]) -> Vec<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Vec::with_capacity(bytes.len());
    // The text between two CRs is copied whole: a push per byte took 35 ms
    // of a 2 MB migration on wasm (twice: decode, then checksum).
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|b| *b == b'\r') {
        out.extend_from_slice(&rest[..at]);
        if rest.get(at + 1) != Some(&b'\n') {
            out.push(b'\r');
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out
}

/// A parsed file name: `<digits>_<description>[.up|.down].sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub version: String,
    pub name: String,
    pub part: Part,
}

/// Which half of a migration a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A plain `.sql` file: up SQL, maybe with a down section.
    Whole,
    /// `.up.sql`
    Up,
    /// `.down.sql`
    Down,
}

/// Parses a migration or seed file name. `None` when it does not follow the
/// convention.
///
/// ```
/// use tidemark_core::source::{parse_file_name, Part};
/// let n = parse_file_name("003_v1.2_add_user_preferences.sql").unwrap();
/// assert_eq!((n.version.as_str(), n.name.as_str(), n.part), ("003", "v1.2_add_user_preferences", Part::Whole));
/// ```
pub fn parse_file_name(file: &str) -> Option<FileName> {
    let stem = file.strip_suffix(".sql")?;
    let (stem, part) = if let Some(s) = stem.strip_suffix(".up") {
        (s, Part::Up)
    } else if let Some(s) = stem.strip_suffix(".down") {
        (s, Part::Down)
    } else {
        (stem, Part::Whole)
    };
    let (version, name) = stem.split_once('_')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    if name.contains('/') || name.contains('\\') {
        return None;
    }
    Some(FileName {
        version: version.to_string(),
        name: name.to_string(),
        part,
    })
}

/// Compares two versions (digit strings) by numeric value without overflow,
/// except that two timestamps (14 digits or more) compare by time: digit by
/// digit, a shorter one first when it is the other's prefix. So diesel's
/// `2026-05-27-120000` (20260527120000) comes after its 2.2 form
/// `2026-05-05-180007-0000` (202605051800070000), as diesel orders them.
pub fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    if a.len() >= 14 && b.len() >= 14 {
        return a.cmp(b);
    }
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn decode(file: &SourceFile) -> Result<String> {
    let bytes = normalize(&file.bytes);
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() as u32 + 1;
        return Err(Error::new(
            Kind::NulByte,
            format!(
                "{} contains a NUL byte (line {line}), which PostgreSQL cannot take in SQL text, so nothing was run; remove it (is the file saved as UTF-16? save it as UTF-8)",
                file.name
            ),
        )
        .at(&file.name, Some(line), None));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
        Error::new(
            Kind::InvalidUtf8,
            format!(
                "{} is not valid UTF-8 (line {line}); save it as UTF-8 and run again",
                file.name
            ),
        )
        .at(&file.name, Some(line), None)
    })
}

/// Up and down parts of a file that uses in-file sections.
struct Sections {
    up: (String, u32),
    down: Option<(String, u32)>,
}

/// A section marker line: exactly `-- migrate:up` / `-- migrate:down`
/// (dbmate; options such as `transaction:false` may follow after a space),
/// `-- Up Migration` / `-- Down Migration` (node-pg-migrate), `-- +goose Up` /
/// `-- +goose Down` (goose) or `-- +migrate Up` / `-- +migrate Down`
/// (sql-migrate; `notransaction` may follow). A comment that merely starts
/// the same way (`-- migrate:update the defaults`) is not one.
fn marker(line: &str) -> Option<Part> {
    let rest = line.trim().strip_prefix("--")?.trim_start();
    let lower = rest.to_ascii_lowercase();
    if lower == "up migration" {
        return Some(Part::Up);
    }
    if lower == "down migration" {
        return Some(Part::Down);
    }
    if let Some((tool, words)) = tool_directive(&lower) {
        return match (words.as_slice(), tool) {
            (["up"], _) | (["up", "notransaction"], "migrate") => Some(Part::Up),
            (["down"], _) | (["down", "notransaction"], "migrate") => Some(Part::Down),
            _ => None,
        };
    }
    let (part, options) = if let Some(o) = lower.strip_prefix("migrate:up") {
        (Part::Up, o)
    } else if let Some(o) = lower.strip_prefix("migrate:down") {
        (Part::Down, o)
    } else {
        return None;
    };
    let options_ok = options.is_empty()
        || (options.starts_with([' ', '\t'])
            && options.split_whitespace().all(|o| {
                o.split_once(':')
                    .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
            }));
    options_ok.then_some(part)
}

/// A goose (`-- +goose ...`) or sql-migrate (`-- +migrate ...`) directive,
/// given the comment text after `--` in lower case: the tool and its words.
fn tool_directive(lower: &str) -> Option<(&'static str, Vec<&str>)> {
    let (tool, rest) = if let Some(r) = lower.strip_prefix("+goose") {
        ("goose", r)
    } else if let Some(r) = lower.strip_prefix("+migrate") {
        ("migrate", r)
    } else {
        return None;
    };
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((tool, rest.split_whitespace().collect()))
}

/// Every goose / sql-migrate directive in the file is one tidemark honours:
/// sections, statement blocks (the lexer already keeps a block whole) and
/// "no transaction". Anything else (goose's `ENVSUB ON`, which substitutes
/// environment variables into the SQL, or a directive of a newer version)
/// would change what runs, so the file is refused, never run differently.
fn check_directives(file: &str, text: &str) -> Result<()> {
    for (n, line) in text.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("--") else {
            continue;
        };
        let lower = rest.trim_start().to_ascii_lowercase();
        let Some((tool, words)) = tool_directive(&lower) else {
            continue;
        };
        let known = matches!(
            (tool, words.as_slice()),
            (_, ["up"] | ["down"] | ["statementbegin"] | ["statementend"])
                | ("goose", ["no", "transaction"] | ["envsub", "off"])
                | ("migrate", ["up" | "down", "notransaction"])
        );
        if !known {
            let line_no = n as u32 + 1;
            return Err(Error::new(
                Kind::InvalidMarker,
                format!(
                    "{file}:{line_no}: `{}` is a {tool} directive tidemark does not support, so nothing was run; tidemark reads `-- +{tool} Up`, `-- +{tool} Down`, `StatementBegin`/`StatementEnd` and {}; rewrite the file without it",
                    line.trim(),
                    if tool == "goose" { "`-- +goose NO TRANSACTION` (environment substitution is not supported: put the values in the SQL)" } else { "`-- +migrate Up notransaction`" },
                ),
            )
            .at(file, Some(line_no), None));
        }
    }
    Ok(())
}

/// Splits `-- migrate:up` / `-- migrate:down` (dbmate) or `-- Up Migration` /
/// `-- Down Migration` (node-pg-migrate) sections. `None` for a file without
/// markers: the whole file is the up SQL. `Some(Err(line))` for a down marker
/// without an up marker (its down SQL must never run as up).
fn sections(sql: &str) -> Option<std::result::Result<Sections, u32>> {
    let mut up: Option<(usize, u32)> = None;
    let mut down: Option<(usize, u32)> = None;
    let mut offset = 0usize;
    for (n, line) in sql.split_inclusive('\n').enumerate() {
        let next = offset + line.len();
        match marker(line) {
            Some(Part::Up) if up.is_none() => up = Some((next, n as u32 + 1)),
            Some(Part::Down) if down.is_none() => down = Some((next, n as u32 + 1)),
            _ => {}
        }
        offset = next;
    }
    let Some((up_start, up_line)) = up else {
        return down.map(|(_, line)| Err(line));
    };
    Some(Ok(match down {
        Some((down_start, down_line)) if down_start > up_start => {
            // The up section ends where the down marker's line begins.
            let marker_start = sql[..down_start]
                .trim_end_matches('\n')
                .rfind('\n')
                .map_or(0, |i| i + 1);
            Sections {
                up: (sql[up_start..marker_start].to_string(), up_line),
                down: Some((sql[down_start..].to_string(), down_line)),
            }
        }
        Some((down_start, down_line)) => {
            // Down section first, then up.
            let marker_start = sql[..up_start]
                .trim_end_matches('\n')
                .rfind('\n')
                .map_or(0, |i| i + 1);
            Sections {
                up: (sql[up_start..].to_string(), up_line),
                down: Some((sql[down_start..marker_start].to_string(), down_line)),
            }
        }
        None => Sections {
            up: (sql[up_start..].to_string(), up_line),
            down: None,
        },
    }))
}

/// The file runs without a transaction: [`NO_TRANSACTION_MARKER`] on a line
/// of the up SQL, or the marker users bring from another tool: sqlx's
/// `-- no-transaction` as the first line, dbmate's `-- migrate:up
/// transaction:false`, mattermost/morph's `-- morph:nontransactional`.
fn has_no_transaction_marker(up: &str, whole: &str) -> bool {
    let is = |l: &str, m: &str| l.trim().eq_ignore_ascii_case(m);
    up.lines()
        .any(|l| is(l, NO_TRANSACTION_MARKER) || is(l, "-- morph:nontransactional"))
        || whole
            .lines()
            .next()
            .is_some_and(|l| is(l, "-- no-transaction"))
        || section_without_transaction(whole, Part::Up)
        || goose_no_transaction(whole)
}

/// goose's `-- +goose NO TRANSACTION`: the whole file, up and down, runs
/// without a transaction.
fn goose_no_transaction(whole: &str) -> bool {
    whole.lines().any(|l| {
        l.trim()
            .strip_prefix("--")
            .map(|r| r.trim_start().to_ascii_lowercase())
            .and_then(|r| {
                tool_directive(&r).map(|(t, w)| t == "goose" && w == ["no", "transaction"])
            })
            .unwrap_or(false)
    })
}

/// dbmate's `-- migrate:up transaction:false` / `-- migrate:down
/// transaction:false`: that section runs without a transaction.
fn section_without_transaction(whole: &str, part: Part) -> bool {
    whole.lines().any(|l| {
        let lower = l.to_ascii_lowercase();
        marker(l) == Some(part)
            && (lower.contains("transaction:false") || lower.trim_end().ends_with(" notransaction"))
    })
}

/// The migrations of one folder, ordered by version, with the warnings found
/// while reading them.
#[derive(Debug, Clone, Default)]
pub struct Migrations {
    pub migrations: Vec<Migration>,
    pub warnings: Vec<Event>,
}

impl Migrations {
    /// Builds the migration list from the folder's files (no I/O). Errors on
    /// duplicate versions, non-UTF-8 files and down files without an up file;
    /// other unexpected files become warning events.
    #[inline(never)] // out of line: see lib.rs
    pub fn from_files(files: Vec<SourceFile>) -> Result<Migrations> {
        let laid = crate::layout::lay_out(files)?;
        let mut candidates = laid.candidates;
        candidates
            .sort_by(|a, b| cmp_versions(&a.version, &b.version).then(a.up.name.cmp(&b.up.name)));
        for pair in candidates.windows(2) {
            if cmp_versions(&pair[0].version, &pair[1].version).is_eq() {
                return Err(Error::new(
                    Kind::DuplicateVersion,
                    format!(
                        "{} and {} have the same version {}; give one of them a new version number",
                        pair[0].up.name,
                        pair[1].up.name,
                        pair[1].version.trim_start_matches('0')
                    ),
                )
                .at(&pair[1].up.name, None, None)
                .with_version(&pair[1].version));
            }
        }
        let mut migrations = Vec::with_capacity(candidates.len());
        for c in candidates {
            migrations.push(migration(c)?);
        }
        Ok(Migrations {
            migrations,
            warnings: laid.warnings,
        })
    }
}

/// One migration from its files: text, sections, markers, checksum. Out of
/// line (see lib.rs): V8 then optimizes this function, called once per
/// file, rather than `from_files`, which runs once.
#[inline(never)]
fn migration(c: crate::layout::Candidate) -> Result<Migration> {
    if c.script {
        return Ok(Migration {
            // The bytes are read only to tell the tool: a script's checksum
            // is that of no SQL, as tidemark has recorded it (adopt) since
            // scripts were first accepted as history.
            checksum: checksum(&[]),
            script: Some(ScriptTool::of(&c.up.bytes)),
            up: SqlText {
                file: c.up.name,
                sql: String::new(),
                first_line: 0,
            },
            down: None,
            version: c.version,
            name: c.name,
            no_transaction: false,
            down_no_transaction: false,
        });
    }
    let file = c.up;
    let text = decode(&file)?;
    check_directives(&file.name, &text)?;
    let (up, down) = match sections(&text) {
        Some(Ok(s)) => (s.up, s.down),
        Some(Err(line)) => {
            return Err(Error::new(
                    Kind::InvalidMarker,
                    format!(
                        "{}:{line}: has a `-- migrate:down` section but no `-- migrate:up` line, so tidemark cannot tell which SQL applies the migration and nothing was run; add `-- migrate:up` on its own line above the up SQL",
                        file.name
                    ),
                )
                .at(&file.name, Some(line), None)
                .with_version(&c.version));
        }
        None => ((text.clone(), 0), None),
    };
    let no_transaction = c.no_transaction || has_no_transaction_marker(&up.0, &text);
    let mut down = down.map(|(sql, first_line)| SqlText {
        file: file.name.clone(),
        sql,
        first_line,
    });
    if let Some(down_file) = c.down {
        down = Some(SqlText {
            sql: decode(&down_file)?,
            file: down_file.name,
            first_line: 0,
        });
    }
    let down_no_transaction = c.no_transaction
        || down.as_ref().is_some_and(|d| {
            has_no_transaction_marker(&d.sql, &d.sql)
                || section_without_transaction(&text, Part::Down)
                || goose_no_transaction(&text)
        });
    Ok(Migration {
        checksum: checksum(up.0.as_bytes()),
        up: SqlText {
            file: file.name,
            sql: up.0,
            first_line: up.1,
        },
        down,
        version: c.version,
        name: c.name,
        no_transaction,
        down_no_transaction,
        script: None,
    })
}

/// The warning for a file that is not `<version>_<name>.sql`. Dotfiles (such
/// as `.gitkeep`) and README files are expected in these folders.
fn unexpected_file_warning(name: &str, what: &str) -> Option<Event> {
    if name.starts_with('.') || name.eq_ignore_ascii_case("readme.md") {
        return None;
    }
    let message = if name.ends_with(".sql") {
        format!(
            "{name} is not named <version>_<name>.sql (for example 001_create_users.sql), so it is not run as a {what}; rename it"
        )
    } else {
        format!(
            "{name} is not a .sql file, so it is not run as a {what}; move it out of the folder"
        )
    };
    Some(Event::Warning {
        code: "W_UNEXPECTED_FILE".into(),
        message,
        file: Some(name.to_string()),
    })
}

/// One seed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The file name without its extension, e.g. `001_users`; the key in
    /// `schema_seeds`.
    pub name: String,
    /// The SQL (empty for a script seed, whose file name is `sql.file`).
    pub sql: SqlText,
    /// SHA-256 of the file, normalized like a migration's (CRLF, BOM).
    pub checksum: String,
    /// A JavaScript or TypeScript seed (`.mjs`, `.cjs`, `.js`, `.ts`,
    /// `.mts`, `.cts`): the host runs it as a child process, the core
    /// decides when and records it.
    pub script: bool,
}

/// Extensions of script seeds.
const SCRIPT_SEED_EXTENSIONS: [&str; 6] = [".mjs", ".cjs", ".js", ".ts", ".mts", ".cts"];

/// The parsed name of a seed file, and whether it is a script.
fn parse_seed_name(file: &str) -> Option<(FileName, bool)> {
    if let Some(n) = parse_file_name(file) {
        return (n.part == Part::Whole).then_some((n, false));
    }
    if file.ends_with(".d.ts") {
        return None;
    }
    let ext = SCRIPT_SEED_EXTENSIONS.iter().find(|e| file.ends_with(*e))?;
    let n = parse_file_name(&format!("{}.sql", file.strip_suffix(ext)?))?;
    (n.part == Part::Whole).then_some((n, true))
}

/// The seeds of one environment folder, in version order.
#[derive(Debug, Clone, Default)]
pub struct Seeds {
    pub seeds: Vec<Seed>,
    pub warnings: Vec<Event>,
}

impl Seeds {
    pub fn from_files(files: Vec<SourceFile>) -> Result<Seeds> {
        let mut warnings = Vec::new();
        let mut named = Vec::new();
        for file in files {
            match parse_seed_name(&file.name) {
                Some((n, script)) => named.push((n, script, file)),
                None => {
                    if let Some(w) = unexpected_file_warning(&file.name, "seed") {
                        warnings.push(w);
                    }
                }
            }
        }
        named
            .sort_by(|a, b| cmp_versions(&a.0.version, &b.0.version).then(a.2.name.cmp(&b.2.name)));
        let mut seeds: Vec<Seed> = Vec::with_capacity(named.len());
        for (n, script, file) in named {
            let name = format!("{}_{}", n.version, n.name);
            if let Some(other) = seeds.iter().find(|s| s.name == name) {
                return Err(Error::new(
                    Kind::BadFileName,
                    format!(
                        "two seeds are named {name} ({} and {}), and the seeds table records seeds by name; rename one",
                        other.sql.file, file.name
                    ),
                ));
            }
            let (sql, sum) = if script {
                (String::new(), checksum(&file.bytes))
            } else {
                let sql = decode(&file)?;
                let sum = checksum(sql.as_bytes());
                (sql, sum)
            };
            seeds.push(Seed {
                name,
                checksum: sum,
                sql: SqlText {
                    file: file.name,
                    sql,
                    first_line: 0,
                },
                script,
            });
        }
        Ok(Seeds { seeds, warnings })
    }
}

/// The file name(s) `create` writes next, in the folder's own convention:
/// the same zero-padded width for sequences (`004_…` after `003_…`), a UTC
/// timestamp `YYYYMMDDHHMMSS` when the folder uses 14-digit versions, epoch
/// milliseconds when it uses 13-digit ones. `now_utc` is supplied by the host
/// (the engine never reads the clock) as `YYYYMMDDHHMMSS` and epoch ms.
///
/// ```
/// use tidemark_core::source::next_version;
/// assert_eq!(next_version(&["001", "002"], ("20260109000000", 1700000000000)), "003");
/// assert_eq!(next_version(&[], ("20260109000000", 1700000000000)), "001");
/// ```
pub fn next_version(existing: &[&str], now_utc: (&str, u64)) -> String {
    let Some(last) = existing.iter().max_by(|a, b| cmp_versions(a, b)) else {
        return "001".to_string();
    };
    let (stamp, millis) = now_utc;
    let bigger = |candidate: String| {
        if cmp_versions(&candidate, last).is_gt() {
            candidate
        } else {
            increment(last)
        }
    };
    match last.len() {
        14 => bigger(stamp.to_string()),
        13 => bigger(millis.to_string()),
        _ => increment(last),
    }
}

fn increment(version: &str) -> String {
    let width = version.len();
    let mut digits: Vec<u8> = version.bytes().collect();
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, b'1');
            break;
        }
        i -= 1;
        if digits[i] == b'9' {
            digits[i] = b'0';
        } else {
            digits[i] += 1;
            break;
        }
    }
    let s: String = digits.into_iter().map(char::from).collect();
    format!("{s:0>width$}")
}

/// Checks a name for `create`: letters, digits, `_`, `-` and `.` only, so the
/// file cannot escape the folder. Spaces become `_`.
pub fn sanitize_create_name(name: &str) -> Result<String> {
    let cleaned: String = name.trim().replace([' ', '-'], "_").to_ascii_lowercase();
    let ok = !cleaned.is_empty()
        && !cleaned.starts_with('.')
        && !cleaned.contains("..")
        && cleaned
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(cleaned)
    } else {
        Err(Error::new(
            Kind::InvalidOption,
            format!(
                "migration name {name:?} may only use letters, digits, '_', '-' and '.' (no '/' or '..'); for example: add_user_email"
            ),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
        list.iter()
            .map(|(n, s)| SourceFile::new(*n, s.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn parses_every_naming_convention() {
        let cases = [
            (
                "001_initial_schema.sql",
                "001",
                "initial_schema",
                Part::Whole,
            ),
            (
                "003_v1.2_add_user_preferences.sql",
                "003",
                "v1.2_add_user_preferences",
                Part::Whole,
            ),
            (
                "20260109000000_create_extensions.sql",
                "20260109000000",
                "create_extensions",
                Part::Whole,
            ),
            ("0000_violet_salo.sql", "0000", "violet_salo", Part::Whole),
            (
                "1700000000000_name.sql",
                "1700000000000",
                "name",
                Part::Whole,
            ),
            ("002_add.up.sql", "002", "add", Part::Up),
            ("002_add.down.sql", "002", "add", Part::Down),
        ];
        for (file, v, n, p) in cases {
            let got = parse_file_name(file).unwrap();
            assert_eq!(
                (got.version.as_str(), got.name.as_str(), got.part),
                (v, n, p),
                "{file}"
            );
        }
        for bad in [
            "init.sql",
            "001.sql",
            "_x.sql",
            "001_.sql",
            "abc_x.sql",
            "001_x.txt",
            "001_x",
        ] {
            assert!(parse_file_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn seeds_may_be_scripts_keyed_by_name_like_sql_seeds() {
        let s = Seeds::from_files(vec![
            SourceFile::new("002_posts.mjs", b"\xef\xbb\xbfconsole.log(1)\r\n".to_vec()),
            SourceFile::new("001_users.sql", b"select 1;".to_vec()),
            SourceFile::new("003_types.d.ts", b"export {};".to_vec()),
            SourceFile::new("004_more.ts", b"const n: number = 1;".to_vec()),
        ])
        .unwrap();
        let seen: Vec<_> = s
            .seeds
            .iter()
            .map(|s| (s.name.as_str(), s.sql.file.as_str(), s.script))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("001_users", "001_users.sql", false),
                ("002_posts", "002_posts.mjs", true),
                ("004_more", "004_more.ts", true),
            ]
        );
        // The file's checksum, normalized like SQL (BOM, CRLF).
        assert_eq!(s.seeds[1].checksum, checksum(b"console.log(1)\n"));
        assert_eq!(s.warnings.len(), 1, "the .d.ts file is reported");
        let twice = Seeds::from_files(vec![
            SourceFile::new("001_users.sql", b"select 1;".to_vec()),
            SourceFile::new("001_users.cjs", b"".to_vec()),
        ])
        .unwrap_err();
        assert!(twice.message().contains("two seeds are named 001_users"));
    }

    #[test]
    fn orders_numerically_and_keeps_version_text() {
        let m = Migrations::from_files(files(&[
            ("10_c.sql", "select 3;"),
            ("002_b.sql", "select 2;"),
            ("1_a.sql", "select 1;"),
        ]))
        .unwrap();
        let v: Vec<_> = m.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(v, ["1", "002", "10"]);
    }

    #[test]
    fn duplicate_versions_name_both_files() {
        let err = Migrations::from_files(files(&[("001_a.sql", ""), ("1_b.sql", "")])).unwrap_err();
        assert_eq!(err.code(), "E_DUPLICATE_VERSION");
        assert!(err.message().contains("001_a.sql") && err.message().contains("1_b.sql"));
    }

    #[test]
    fn bad_names_warn_and_readme_is_quiet() {
        let m = Migrations::from_files(files(&[
            ("001_a.sql", "select 1;"),
            ("README.md", "hi"),
            (".gitkeep", ""),
            ("notes.txt", "x"),
        ]))
        .unwrap();
        let warned: Vec<_> = m
            .warnings
            .iter()
            .filter_map(|w| match w {
                Event::Warning { file, .. } => file.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(warned, ["notes.txt"]);
        // A .sql file tidemark cannot name is never skipped.
        let err =
            Migrations::from_files(files(&[("001_a.sql", ""), ("init.sql", "x")])).unwrap_err();
        assert_eq!(
            (err.code(), err.file()),
            ("E_BAD_FILE_NAME", Some("init.sql"))
        );
    }

    #[test]
    fn normalize_drops_the_cr_of_each_crlf_only() {
        assert_eq!(normalize(b"\xEF\xBB\xBFa\r\nb"), b"a\nb");
        assert_eq!(normalize(b"a\r\r\nb\r"), b"a\r\nb\r");
        assert_eq!(normalize(b"\r\n\r\n"), b"\n\n");
        assert_eq!(normalize(b"\rx\r"), b"\rx\r");
        assert_eq!(normalize(b""), b"");
    }

    #[test]
    fn markers_are_whole_lines() {
        // Regression: a down section without an up line ran its down SQL as up.
        let err = Migrations::from_files(files(&[(
            "001_a.sql",
            "CREATE TABLE keepme (id int);\n-- migrate:down\nDROP TABLE keepme;\n",
        )]))
        .unwrap_err();
        assert_eq!((err.code(), err.line()), ("E_INVALID_MARKER", Some(2)));
        // Regression: `-- migrate:update ...` was taken as the up marker.
        let m = Migrations::from_files(files(&[(
            "001_a.sql",
            "create table a();\n-- migrate:update the defaults\nupdate a set x = 1;\n",
        )]))
        .unwrap();
        assert!(m.migrations[0].up.sql.starts_with("create table a();"));
        assert!(m.migrations[0].down.is_none());
        let m = Migrations::from_files(files(&[(
            "001_a.sql",
            "-- migrate:up transaction:false\nselect 1;\n--migrate:down\nselect 2;\n",
        )]))
        .unwrap();
        assert!(m.migrations[0].no_transaction);
        assert_eq!(m.migrations[0].down.as_ref().unwrap().sql, "select 2;\n");
    }

    #[test]
    fn nul_byte_names_file_and_line() {
        let err = Migrations::from_files(vec![
            SourceFile::new("001_a.sql", b"select 1;".to_vec()),
            SourceFile::new("003_c.sql", b"select 1;\nselect '\0';".to_vec()),
        ])
        .unwrap_err();
        assert_eq!(err.code(), "E_NUL_BYTE");
        assert_eq!((err.file(), err.line()), (Some("003_c.sql"), Some(2)));
    }

    #[test]
    fn create_follows_the_layout() {
        let now = ("20261121063800", 1_763_707_080_000);
        let (v, f) = create_files(
            &["20240101120000_init/migration.sql", "migration_lock.toml"],
            "add x",
            false,
            now,
        )
        .unwrap();
        assert_eq!(
            (v.as_str(), f[0].name.as_str()),
            ("20261121063800", "20261121063800_add_x/migration.sql")
        );
        let (_, f) = create_files(
            &[
                "2023-01-02-030405_init/up.sql",
                "2023-01-02-030405_init/down.sql",
            ],
            "add x",
            false,
            now,
        )
        .unwrap();
        let names: Vec<_> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "2026-11-21-063800-0000_add_x/up.sql",
                "2026-11-21-063800-0000_add_x/down.sql"
            ]
        );
        let err = create_files(&["0000_a.sql", "meta/_journal.json"], "x", false, now).unwrap_err();
        assert!(err.message().contains("drizzle-kit generate"));
    }

    #[test]
    fn non_utf8_is_an_error_naming_the_file_and_line() {
        let err = Migrations::from_files(vec![SourceFile::new(
            "001_a.sql",
            b"select 1;\nselect '\xff';".to_vec(),
        )])
        .unwrap_err();
        assert_eq!(err.code(), "E_INVALID_UTF8");
        assert_eq!((err.file(), err.line()), (Some("001_a.sql"), Some(2)));
    }

    #[test]
    fn reversible_pairs_and_sections() {
        let m = Migrations::from_files(files(&[
            ("001_a.up.sql", "create table a();"),
            ("001_a.down.sql", "drop table a;"),
            (
                "002_b.sql",
                "-- header\n-- migrate:up\ncreate table b();\n\n-- migrate:down\ndrop table b;\n",
            ),
            (
                "003_c.sql",
                "-- Up Migration\ncreate table c();\n-- Down Migration\ndrop table c;\n",
            ),
            ("004_d.sql", "create table d();"),
        ]))
        .unwrap();
        let [a, b, c, d] = &m.migrations[..] else {
            panic!()
        };
        assert_eq!(a.down.as_ref().unwrap().sql, "drop table a;");
        assert_eq!(a.down.as_ref().unwrap().file, "001_a.down.sql");
        assert_eq!(b.up.sql, "create table b();\n\n");
        assert_eq!(b.up.first_line, 2);
        assert_eq!(b.down.as_ref().unwrap().sql, "drop table b;\n");
        assert_eq!(b.checksum, checksum(b"create table b();\n\n"));
        assert_eq!(c.up.sql, "create table c();\n");
        assert_eq!(c.down.as_ref().unwrap().sql, "drop table c;\n");
        assert!(d.down.is_none());
        // Line mapping of a section: "create table b" is on line 3 of the file.
        assert_eq!(b.up.line_col(0), (3, 1));
    }

    #[test]
    fn orphan_down_is_an_error() {
        let err =
            Migrations::from_files(files(&[("001_a.down.sql", "drop table a;")])).unwrap_err();
        assert_eq!(err.code(), "E_ORPHAN_DOWN");
        assert_eq!(err.file(), Some("001_a.down.sql"));
    }

    #[test]
    fn editing_the_down_part_is_not_drift() {
        let one = Migrations::from_files(files(&[(
            "1_a.sql",
            "-- migrate:up\nx;\n-- migrate:down\ny;\n",
        )]))
        .unwrap();
        let two = Migrations::from_files(files(&[(
            "1_a.sql",
            "-- migrate:up\nx;\n-- migrate:down\nz;\n",
        )]))
        .unwrap();
        assert_eq!(one.migrations[0].checksum, two.migrations[0].checksum);
    }

    #[test]
    fn no_transaction_marker() {
        let m = Migrations::from_files(files(&[
            (
                "1_a.sql",
                "-- tidemark:no-transaction\ncreate index concurrently i on t(x);",
            ),
            (
                "2_b.sql",
                "-- migrate:up transaction:false\ncreate index concurrently j on t(x);",
            ),
            ("3_c.sql", "create index i on t(x);"),
            (
                "4_d.sql",
                "-- no-transaction\ncreate index concurrently k on t(x);",
            ),
            (
                "5_e.sql",
                "-- morph:nontransactional\ncreate index concurrently l on t(x);",
            ),
            ("6_f.sql", "select 1;\n-- no-transaction\n"),
        ]))
        .unwrap();
        let flags: Vec<_> = m.migrations.iter().map(|m| m.no_transaction).collect();
        assert_eq!(flags, [true, true, false, true, true, false]);
    }

    #[test]
    fn goose_and_sql_migrate_sections() {
        let m = Migrations::from_files(files(&[
            (
                "00001_users.sql",
                "-- +goose Up\n-- +goose StatementBegin\ncreate table users(id int);\n-- +goose StatementEnd\n\n-- +goose Down\ndrop table users;\n",
            ),
            (
                "00002_idx.sql",
                "-- +goose NO TRANSACTION\n-- +goose Up\ncreate index concurrently i on users(id);\n-- +goose Down\ndrop index concurrently i;\n",
            ),
            (
                "00003_posts.sql",
                "-- +migrate Up notransaction\ncreate index concurrently j on users(id);\n-- +migrate Down\ndrop index j;\n",
            ),
        ]))
        .unwrap();
        let [a, b, c] = &m.migrations[..] else {
            panic!("three migrations")
        };
        assert!(!a.up.sql.contains("drop table"), "{}", a.up.sql);
        assert!(a.up.sql.contains("create table users"));
        assert_eq!(a.down.as_ref().unwrap().sql, "drop table users;\n");
        assert!(!a.no_transaction && !a.down_no_transaction);
        assert!(b.no_transaction && b.down_no_transaction);
        assert!(!b.up.sql.contains("drop index"));
        assert!(c.no_transaction && !c.down_no_transaction);
        assert_eq!(c.down.as_ref().unwrap().sql, "drop index j;\n");
        // Directives that would change what runs are refused, with the line.
        for (text, line) in [
            (
                "-- +goose Up\n-- +goose ENVSUB ON\ncreate table t(x text default '${X}');\n",
                2,
            ),
            (
                "-- +goose Up\nselect 1;\n-- +goose Down something\nselect 2;\n",
                3,
            ),
            ("-- +migrate Up\nselect 1;\n-- +migrate Down please\n", 3),
        ] {
            let err = Migrations::from_files(files(&[("00001_a.sql", text)])).unwrap_err();
            assert_eq!(
                (err.code(), err.line()),
                ("E_INVALID_MARKER", Some(line)),
                "{text}"
            );
            assert!(
                err.message().contains("nothing was run"),
                "{}",
                err.message()
            );
        }
        // `-- +gooseberry` is just a comment.
        let m = Migrations::from_files(files(&[("1_a.sql", "-- +gooseberry up\nselect 1;\n")]))
            .unwrap();
        assert!(m.migrations[0].down.is_none());
    }

    #[test]
    fn checksum_is_pinned() {
        // Pinned: changing the algorithm makes every applied migration drift.
        assert_eq!(
            checksum(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn next_versions_follow_the_folder() {
        let now = ("20261121063800", 1_763_707_080_000);
        assert_eq!(next_version(&["001", "002"], now), "003");
        assert_eq!(next_version(&["0009"], now), "0010");
        assert_eq!(next_version(&["99"], now), "100");
        assert_eq!(next_version(&["20260109000000"], now), "20261121063800");
        assert_eq!(next_version(&["20991231000000"], now), "20991231000001");
        assert_eq!(next_version(&["1700000000000"], now), "1763707080000");
        assert_eq!(next_version(&[], now), "001");
    }

    #[test]
    fn create_names_cannot_escape() {
        assert_eq!(
            sanitize_create_name("Add user-email").unwrap(),
            "add_user_email"
        );
        for bad in ["../x", "a/b", "", ".hidden", "a\\b"] {
            assert_eq!(
                sanitize_create_name(bad).unwrap_err().code(),
                "E_INVALID_OPTION",
                "{bad}"
            );
        }
    }
}

/// A file `create` writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewFile {
    pub name: String,
    pub contents: String,
}

/// What a host asks `create` for (deserialized by both bindings).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateRequest {
    /// The migrations folder's entries.
    pub existing: Vec<String>,
    /// The migration's name.
    pub name: String,
    /// Also a `.down.sql` file.
    pub reversible: bool,
    /// The time, UTC `YYYYMMDDHHMMSS`.
    pub stamp: String,
    /// The time, epoch milliseconds.
    pub millis: f64,
}

/// What `create` returns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    pub version: String,
    pub files: Vec<NewFile>,
}

/// [`create_files`] for a host's request.
pub fn create(request: &CreateRequest) -> Result<Created> {
    let existing: Vec<&str> = request.existing.iter().map(String::as_str).collect();
    let millis = if request.millis.is_finite() && request.millis >= 0.0 {
        request.millis as u64
    } else {
        0
    };
    let (version, files) = create_files(
        &existing,
        &request.name,
        request.reversible,
        (&request.stamp, millis),
    )?;
    Ok(Created { version, files })
}

/// What `create` writes: the next version in the folder's convention and one
/// file (or an `.up.sql` / `.down.sql` pair), each with a header comment.
/// `existing` are the folder's file names; `now_utc` as in [`next_version`].
///
/// ```
/// use tidemark_core::source::create_files;
/// let (version, files) = create_files(&["001_init.sql"], "add goals", false, ("20260109000000", 0)).unwrap();
/// assert_eq!((version.as_str(), files[0].name.as_str()), ("002", "002_add_goals.sql"));
/// ```
pub fn create_files(
    existing: &[&str],
    name: &str,
    reversible: bool,
    now_utc: (&str, u64),
) -> Result<(String, Vec<NewFile>)> {
    let name = sanitize_create_name(name)?;
    if existing.contains(&crate::layout::DRIZZLE_JOURNAL) {
        return Err(Error::new(
            Kind::InvalidOption,
            format!(
                "this migrations folder is indexed by drizzle-kit's {}, which lists the migrations to run; a file tidemark wrote would not be in it, so neither drizzle-kit nor tidemark would run it: create the migration with `drizzle-kit generate` (or `drizzle-kit generate --custom` for hand-written SQL)",
                crate::layout::DRIZZLE_JOURNAL
            ),
        ));
    }
    // The folder's layout: flat files, Prisma/drizzle folders or diesel's.
    let mut versions: Vec<String> = Vec::new();
    let mut prisma = false;
    let mut diesel = false;
    for f in existing {
        if let Some((dir, file)) = f.split_once('/') {
            if let Some((v, _)) = crate::layout::parse_folder_name(dir) {
                prisma |= file == "migration.sql";
                diesel |= file == "up.sql";
                versions.push(v);
            }
        } else if let Some(n) = parse_file_name(f) {
            versions.push(n.version);
        }
    }
    versions.dedup();
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let header = |version: &str, what: &str| {
        format!(
            "-- {version}_{name}: {what}\n-- Runs in its own transaction. For CREATE INDEX CONCURRENTLY and other\n-- statements that cannot, put `{NO_TRANSACTION_MARKER}` on a line of its own.\n\n"
        )
    };
    if prisma && !diesel {
        // Timestamps, as Prisma names its folders.
        let stamp_only = (now_utc.0, now_utc.1);
        let version = match refs.iter().max_by(|a, b| cmp_versions(a, b)) {
            Some(last) if last.len() == 14 => next_version(&refs, stamp_only),
            Some(last) => increment(last),
            None => now_utc.0.to_string(),
        };
        let files = vec![NewFile {
            name: format!("{version}_{name}/migration.sql"),
            contents: header(&version, "apply"),
        }];
        return Ok((version, files));
    }
    if diesel {
        // diesel's `YYYY-MM-DD-HHMMSS-0000_<name>`, whose version is 18 digits
        // (see [`crate::layout::parse_folder_name`]); it orders after both
        // diesel forms by time (see [`cmp_versions`]).
        let now = format!("{}0000", now_utc.0);
        let version = match refs.iter().max_by(|a, b| cmp_versions(a, b)) {
            Some(last) if cmp_versions(&now, last).is_le() => increment(last),
            _ => now,
        };
        let d = &version;
        let dashed = match d.len() {
            14 | 18 => {
                let stamp = format!("{}-{}-{}-{}", &d[..4], &d[4..6], &d[6..8], &d[8..14]);
                match d.get(14..) {
                    Some(n) if !n.is_empty() => format!("{stamp}-{n}"),
                    _ => stamp,
                }
            }
            _ => d.clone(),
        };
        let files = vec![
            NewFile {
                name: format!("{dashed}_{name}/up.sql"),
                contents: header(&version, "apply"),
            },
            NewFile {
                name: format!("{dashed}_{name}/down.sql"),
                contents: format!("-- {version}_{name}: revert what up.sql does\n\n"),
            },
        ];
        return Ok((version, files));
    }
    let version = next_version(&refs, now_utc);
    let header = |what: &str| header(&version, what);
    let files = if reversible {
        vec![
            NewFile {
                name: format!("{version}_{name}.up.sql"),
                contents: header("apply"),
            },
            NewFile {
                name: format!("{version}_{name}.down.sql"),
                contents: format!("-- {version}_{name}: revert what the .up.sql file does\n\n"),
            },
        ]
    } else {
        vec![NewFile {
            name: format!("{version}_{name}.sql"),
            contents: header("apply"),
        }]
    };
    Ok((version, files))
}
