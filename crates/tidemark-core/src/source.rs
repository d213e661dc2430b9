//! The source model: migration and seed files as the host read them, turned
//! into [`Migration`]s by pure constructors (style rule 4). Nothing here does
//! I/O; a file that looks wrong becomes a warning or an error that names it.

use sha2::{Digest, Sha256};

use crate::error::{Error, Kind, Result};
use crate::report::Event;

/// A file as the host read it: its name inside the folder and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
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

    /// The text of the given 1-based file line, for pointing at it.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let index = line.checked_sub(self.first_line + 1)?;
        self.sql.split('\n').nth(index as usize)
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
    /// The up SQL carries [`NO_TRANSACTION_MARKER`].
    pub no_transaction: bool,
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
    hex(&Sha256::digest(normalize(bytes)))
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
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
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

/// Compares two digit strings by numeric value without overflow.
pub fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn decode(file: &SourceFile) -> Result<String> {
    let bytes = normalize(&file.bytes);
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

fn marker(line: &str) -> Option<Part> {
    let t = line.trim();
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("-- migrate:up") || lower == "-- up migration" {
        Some(Part::Up)
    } else if lower.starts_with("-- migrate:down") || lower == "-- down migration" {
        Some(Part::Down)
    } else {
        None
    }
}

/// Splits `-- migrate:up` / `-- migrate:down` (dbmate) or `-- Up Migration` /
/// `-- Down Migration` (node-pg-migrate) sections. `None` for a file without
/// an up marker: the whole file is the up SQL.
fn sections(sql: &str) -> Option<Sections> {
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
    let (up_start, up_line) = up?;
    Some(match down {
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
    })
}

/// The marker on a line of the up SQL, or dbmate's `-- migrate:up
/// transaction:false` (so dbmate folders keep their meaning).
fn has_no_transaction_marker(up: &str, whole: &str) -> bool {
    up.lines()
        .any(|l| l.trim().eq_ignore_ascii_case(NO_TRANSACTION_MARKER))
        || whole
            .lines()
            .any(|l| marker(l) == Some(Part::Up) && l.contains("transaction:false"))
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
    pub fn from_files(files: Vec<SourceFile>) -> Result<Migrations> {
        let mut warnings = Vec::new();
        let mut ups: Vec<(FileName, SourceFile)> = Vec::new();
        let mut downs: Vec<(FileName, SourceFile)> = Vec::new();
        for file in files {
            match parse_file_name(&file.name) {
                Some(n) if n.part == Part::Down => downs.push((n, file)),
                Some(n) => ups.push((n, file)),
                None => {
                    if let Some(w) = unexpected_file_warning(&file.name, "migration") {
                        warnings.push(w);
                    }
                }
            }
        }
        ups.sort_by(|a, b| cmp_versions(&a.0.version, &b.0.version).then(a.1.name.cmp(&b.1.name)));
        for pair in ups.windows(2) {
            if cmp_versions(&pair[0].0.version, &pair[1].0.version).is_eq() {
                return Err(Error::new(
                    Kind::DuplicateVersion,
                    format!(
                        "{} and {} have the same version {}; give one of them a new version number",
                        pair[0].1.name,
                        pair[1].1.name,
                        pair[1].0.version.trim_start_matches('0')
                    ),
                )
                .at(&pair[1].1.name, None, None)
                .with_version(&pair[1].0.version));
            }
        }
        let mut migrations = Vec::with_capacity(ups.len());
        for (name, file) in ups {
            let text = decode(&file)?;
            let (up, down) = match sections(&text) {
                Some(s) => (s.up, s.down),
                None => ((text.clone(), 0), None),
            };
            let no_transaction = has_no_transaction_marker(&up.0, &text);
            let mut down = down.map(|(sql, first_line)| SqlText {
                file: file.name.clone(),
                sql,
                first_line,
            });
            if let Some(i) = downs
                .iter()
                .position(|(d, _)| d.version == name.version && d.name == name.name)
            {
                let (_, down_file) = downs.swap_remove(i);
                down = Some(SqlText {
                    sql: decode(&down_file)?,
                    file: down_file.name,
                    first_line: 0,
                });
            }
            migrations.push(Migration {
                checksum: checksum(up.0.as_bytes()),
                up: SqlText {
                    file: file.name,
                    sql: up.0,
                    first_line: up.1,
                },
                down,
                version: name.version,
                name: name.name,
                no_transaction,
            });
        }
        if let Some((_, orphan)) = downs.first() {
            return Err(Error::new(
                Kind::OrphanDown,
                format!(
                    "{} has no up migration beside it; add the matching .up.sql (or .sql) file, or remove it",
                    orphan.name
                ),
            )
            .at(&orphan.name, None, None));
        }
        Ok(Migrations {
            migrations,
            warnings,
        })
    }
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
    /// The file name without `.sql`, e.g. `001_users`; the key in `schema_seeds`.
    pub name: String,
    pub sql: SqlText,
    pub checksum: String,
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
            match parse_file_name(&file.name) {
                Some(n) if n.part == Part::Whole => named.push((n, file)),
                _ => {
                    if let Some(w) = unexpected_file_warning(&file.name, "seed") {
                        warnings.push(w);
                    }
                }
            }
        }
        named
            .sort_by(|a, b| cmp_versions(&a.0.version, &b.0.version).then(a.1.name.cmp(&b.1.name)));
        let mut seeds = Vec::with_capacity(named.len());
        for (_, file) in named {
            let sql = decode(&file)?;
            seeds.push(Seed {
                name: file.name.trim_end_matches(".sql").to_string(),
                checksum: checksum(sql.as_bytes()),
                sql: SqlText {
                    file: file.name,
                    sql,
                    first_line: 0,
                },
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
            ("init.sql", "x"),
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
        assert_eq!(warned, ["notes.txt", "init.sql"]);
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
        ]))
        .unwrap();
        let flags: Vec<_> = m.migrations.iter().map(|m| m.no_transaction).collect();
        assert_eq!(flags, [true, true, false]);
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
    let versions: Vec<String> = existing
        .iter()
        .filter_map(|f| parse_file_name(f).map(|n| n.version))
        .collect();
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let version = next_version(&refs, now_utc);
    let header = |what: &str| {
        format!(
            "-- {version}_{name}: {what}\n-- Runs in its own transaction. For CREATE INDEX CONCURRENTLY and other\n-- statements that cannot, put `{NO_TRANSACTION_MARKER}` on a line of its own.\n\n"
        )
    };
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
