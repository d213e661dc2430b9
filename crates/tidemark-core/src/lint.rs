//! `verify`'s lint, without a database (feature `lint`): every refusal
//! `deploy` would make (the same checks, [`prepare_up`] and the folder's
//! own), then migration-safety rules from squawk's linter (`squawk-linter`)
//! over each pending-or-not up SQL, with each finding mapped back to the
//! file's own line and column.
//!
//! A squawk rule can be silenced with a comment:
//! `-- tidemark:allow <rule>[, <rule>...]` on the lines of a statement (or
//! the comment lines right above it) silences it for that statement;
//! `-- tidemark:allow-file <rule>[, ...]` anywhere in the up SQL, for the
//! whole file. Text after a second `--` is a free reason. The refusals of
//! `deploy` cannot be silenced: `deploy` would still refuse.
//!
//! ```
//! # #[cfg(feature = "lint")] {
//! use tidemark_core::{lint, Options, Severity, SourceFile};
//! let files = vec![SourceFile::new("001_i.sql", b"CREATE INDEX i ON t (a);\n".to_vec())];
//! let found = lint(files, &Options::default(), false);
//! assert_eq!(found[0].rule, "require-concurrent-index-creation");
//! assert_eq!((found[0].line, found[0].severity), (Some(1), Severity::Warning));
//! # }
//! ```

use squawk_linter::{Linter, Rule};
use squawk_syntax::SourceFile as SquawkFile;

use crate::engine::{down_items, prepare_up, Options};
use crate::error::Error;
use crate::lexer;
use crate::report::{Event, Finding, Severity};
use crate::source::{Migration, Migrations, SourceFile, SqlText};

/// The comment that silences a rule for one statement.
pub const ALLOW: &str = "tidemark:allow";
/// The comment that silences a rule for a whole file.
pub const ALLOW_FILE: &str = "tidemark:allow-file";

/// Squawk rules tidemark does not run: its own checks decide transactions
/// (a file's `BEGIN`/`COMMIT` wrapper, the no-transaction marker), and the
/// rest are matters of style rather than of what a deploy does to a live
/// table.
const NOT_RUN: &[Rule] = &[
    Rule::TransactionNesting,
    Rule::BanUncommittedTransaction,
    Rule::BanConcurrentIndexCreationInTransaction,
    Rule::RequireStatementTimeout,
    Rule::PreferBigintOverInt,
    Rule::PreferBigintOverSmallint,
    Rule::PreferIdentity,
    Rule::PreferTextField,
    Rule::PreferTimestampTz,
    Rule::BanCharField,
    Rule::PreferRobustStmts,
    Rule::UnusedIgnore,
];

/// tidemark's own safer form where it differs from squawk's help: the
/// CONCURRENTLY forms need a migration of their own without a transaction.
fn safer_form(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::RequireConcurrentIndexCreation => {
            "CREATE INDEX CONCURRENTLY, in a migration of its own marked `-- tidemark:no-transaction` (it cannot run in a transaction)"
        }
        Rule::RequireConcurrentIndexDeletion => {
            "DROP INDEX CONCURRENTLY, in a migration of its own marked `-- tidemark:no-transaction`"
        }
        Rule::RequireConcurrentReindex => {
            "REINDEX ... CONCURRENTLY, in a migration of its own marked `-- tidemark:no-transaction`"
        }
        Rule::RequireConcurrentPartitionDetach => {
            "DETACH PARTITION ... CONCURRENTLY, in a migration of its own marked `-- tidemark:no-transaction`"
        }
        Rule::ChangingColumnType => {
            "add a new column of the new type, backfill it in batches and move reads and writes to it; only widening varchar(n) or varchar to text skips the rewrite"
        }
        Rule::RequireLockTimeout => {
            "SET lock_timeout = '2s'; at the top of the file, or deploy with --lock-timeout 2s (TIDEMARK_LOCK_TIMEOUT)"
        }
        _ => return None,
    })
}

/// The rules `lint` runs for these options.
fn rules(options: &Options) -> Vec<Rule> {
    let mut off: Vec<Rule> = NOT_RUN.to_vec();
    // A lock_timeout from the configuration is what the rule asks for.
    if options.lock_timeout_ms.is_some() {
        off.push(Rule::RequireLockTimeout);
    }
    Linter::with_rules(&[], &off).rules.into_iter().collect()
}

/// Lints the migrations folder: the refusals `deploy` would make (always
/// errors), then squawk's rules over each up SQL (warnings, errors with
/// `strict`). Pure: no database, no I/O.
pub fn lint(files: Vec<SourceFile>, options: &Options, strict: bool) -> Vec<Finding> {
    lint_folder(files, options, strict).1
}

/// [`lint`], also returning the migrations read (none when the folder
/// itself is refused).
pub(crate) fn lint_folder(
    files: Vec<SourceFile>,
    options: &Options,
    strict: bool,
) -> (Vec<Migration>, Vec<Finding>) {
    match Migrations::from_files(files) {
        Ok(m) => {
            let found = lint_migrations(&m.migrations, &m.warnings, options, strict);
            (m.migrations, found)
        }
        Err(e) => (Vec::new(), vec![refusal(&e, "")]),
    }
}

/// [`lint`] over a folder already read.
fn lint_migrations(
    migrations: &[Migration],
    warnings: &[Event],
    options: &Options,
    strict: bool,
) -> Vec<Finding> {
    let warn = if strict {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut out = Vec::new();
    for w in warnings {
        if let Event::Warning {
            code,
            message,
            file,
        } = w
        {
            out.push(Finding {
                file: file.clone().unwrap_or_default(),
                version: None,
                line: None,
                column: None,
                rule: code.clone(),
                severity: warn,
                message: message.clone(),
                safer: None,
                docs: None,
            });
        }
    }
    let rules = rules(options);
    for m in migrations {
        if let Err(e) = prepare_up(m, options) {
            out.push(refusal(&e, m.file()));
            continue;
        }
        // `down` and verify's replay would refuse these the same way.
        if let (Err(e), Some(down)) = (down_items(&[m], options), &m.down) {
            out.push(refusal(&e, &down.file));
        }
        out.extend(squawk(m, &rules, warn));
    }
    out
}

/// A refusal `deploy` would make, as an error finding.
fn refusal(e: &Error, file: &str) -> Finding {
    Finding {
        file: e.file().unwrap_or(file).to_string(),
        version: e.version().map(str::to_string),
        line: e.line(),
        column: e.column(),
        rule: e.code().to_string(),
        severity: Severity::Error,
        message: e.message().to_string(),
        safer: None,
        docs: None,
    }
}

/// Rule names a `tidemark:allow` comment on `line` lists (`file`: the
/// `-file` form), or `None` when the line has no such comment.
fn allow_comment(line: &str, file: bool) -> Option<Vec<&str>> {
    let at = line.find("--")?;
    let rest = line[at + 2..].trim_start();
    let names = if file {
        rest.strip_prefix(ALLOW_FILE)?
    } else {
        let r = rest.strip_prefix(ALLOW)?;
        if r.starts_with('-') {
            return None;
        }
        r
    };
    // Only whitespace may separate the keyword from the first name.
    if !names.is_empty() && !names.starts_with(char::is_whitespace) {
        return None;
    }
    let names = names.split("--").next().unwrap_or("");
    Some(
        names
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
            .collect(),
    )
}

/// 0-based index of the line holding byte `offset` of `sql`.
fn line_of(sql: &str, offset: usize) -> usize {
    sql.as_bytes()[..offset.min(sql.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// A finding at byte `offset` of `text`.
fn at(text: &SqlText, version: &str, offset: usize) -> Finding {
    let (line, column) = text.line_col(offset);
    Finding {
        file: text.file.clone(),
        version: Some(version.to_string()),
        line: Some(line),
        column: Some(column),
        rule: String::new(),
        severity: Severity::Warning,
        message: String::new(),
        safer: None,
        docs: None,
    }
}

/// Squawk's findings in one migration's up SQL, minus the silenced ones,
/// plus a finding for each `tidemark:allow` comment naming no known rule.
fn squawk(m: &Migration, rules: &[Rule], severity: Severity) -> Vec<Finding> {
    let sql = m.up.sql.as_str();
    let lines: Vec<&str> = sql.split('\n').collect();
    let mut out = Vec::new();
    let mut file_allowed: Vec<Rule> = Vec::new();
    let unknown = |name: &str, line: usize, out: &mut Vec<Finding>| {
        let offset: usize = lines[..line].iter().map(|l| l.len() + 1).sum();
        let mut f = at(&m.up, &m.version, offset);
        f.rule = "unknown-rule".into();
        f.severity = severity;
        f.message = format!(
            "`{name}` in a tidemark:allow comment is not a rule tidemark checks, so it silences nothing; use a rule name a finding shows (tidemark verify --help lists them)"
        );
        out.push(f);
    };
    let mut per_line: Vec<Vec<Rule>> = vec![Vec::new(); lines.len()];
    for (i, line) in lines.iter().enumerate() {
        if let Some(names) = allow_comment(line, true) {
            for n in names {
                match Rule::try_from(n) {
                    Ok(r) => file_allowed.push(r),
                    Err(_) => unknown(n, i, &mut out),
                }
            }
        } else if let Some(names) = allow_comment(line, false) {
            for n in names {
                match Rule::try_from(n) {
                    Ok(r) => per_line[i].push(r),
                    Err(_) => unknown(n, i, &mut out),
                }
            }
        }
    }

    let parse = SquawkFile::parse(sql);
    let mut linter = Linter::from(rules.iter().copied());
    linter.settings.assume_in_transaction = !m.no_transaction;
    let violations = linter.lint(&parse, sql);
    let statements = lexer::split(sql);
    // The lines a statement's allow comments may sit on: the comment lines
    // right above its code, and the lines of its code (a comment after its
    // `;` on its last line included).
    let allowed_for = |offset: usize| -> Vec<Rule> {
        let Some(s) = statements
            .iter()
            .find(|s| s.start <= offset && offset < s.start + s.text.len())
        else {
            return Vec::new();
        };
        let first = line_of(sql, s.code_start);
        let last = line_of(sql, (s.start + s.text.len()).saturating_sub(1));
        let mut from = first;
        while from > 0 && lines[from - 1].trim_start().starts_with("--") {
            from -= 1;
        }
        (from..=last.min(lines.len() - 1))
            .flat_map(|i| per_line[i].iter().copied())
            .collect()
    };
    for v in violations {
        if file_allowed.contains(&v.code) {
            continue;
        }
        let offset = usize::from(v.text_range.start());
        if allowed_for(offset).contains(&v.code) {
            continue;
        }
        let mut f = at(&m.up, &m.version, offset);
        f.rule = v.code.to_string();
        f.severity = severity;
        f.message = v.message;
        f.safer = safer_form(v.code)
            .map(str::to_string)
            .or(v.help)
            .or(v.fix.map(|fix| fix.title));
        f.docs = Some(format!("https://squawkhq.com/docs/{}", v.code));
        out.push(f);
    }
    let parse_errors = parse.errors();
    if let Some(e) = parse_errors.first() {
        let mut f = at(&m.up, &m.version, usize::from(e.range().start()));
        f.rule = "unparsed".into();
        f.severity = severity;
        f.message = format!(
            "the linter could not parse this ({}), so its safety rules were not checked from here on; the replay runs it for real",
            e.message()
        );
        out.push(f);
    }
    out.sort_by_key(|f| (f.line, f.column));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(files: &[(&str, &str)], strict: bool) -> Vec<Finding> {
        let files = files
            .iter()
            .map(|(n, s)| SourceFile::new(*n, s.as_bytes().to_vec()))
            .collect();
        lint(files, &Options::default(), strict)
    }

    fn rules_of(found: &[Finding]) -> Vec<(&str, Option<u32>, Option<u32>)> {
        found
            .iter()
            .map(|f| (f.rule.as_str(), f.line, f.column))
            .collect()
    }

    #[test]
    fn findings_name_the_file_line_and_column() {
        let found = run(
            &[(
                "001_x.sql",
                "SET lock_timeout = '2s';\nCREATE TABLE t (a int);\n\n  CREATE INDEX i ON u (a);\nALTER TABLE u ADD COLUMN b int NOT NULL;\n",
            )],
            false,
        );
        assert_eq!(
            rules_of(&found),
            vec![
                ("require-concurrent-index-creation", Some(4), Some(3)),
                ("adding-required-field", Some(5), Some(15)),
            ],
            "{found:#?}"
        );
        assert!(found.iter().all(|f| f.severity == Severity::Warning));
        assert!(found[0]
            .safer
            .as_deref()
            .is_some_and(|s| s.contains("tidemark:no-transaction")));
    }

    #[test]
    fn columns_count_characters_and_crlf_files_keep_their_lines() {
        let found = run(
            &[(
                "001_x.sql",
                "SET lock_timeout = '2s';\r\n\r\n/* café */ CREATE INDEX i ON u (a);\r\n",
            )],
            false,
        );
        assert_eq!(
            rules_of(&found),
            vec![("require-concurrent-index-creation", Some(3), Some(12))]
        );
    }

    #[test]
    fn lines_count_from_the_top_of_a_sectioned_file() {
        let found = run(
            &[(
                "001_x.sql",
                "-- a comment\n-- migrate:up\nSET lock_timeout = '2s';\nCREATE INDEX i ON t (a);\n-- migrate:down\nDROP INDEX i;\n",
            )],
            true,
        );
        assert_eq!(
            rules_of(&found),
            vec![("require-concurrent-index-creation", Some(4), Some(1))]
        );
        assert_eq!(found[0].severity, Severity::Error);
    }

    #[test]
    fn allow_comments_silence_a_statement_or_a_file() {
        let sql = "SET lock_timeout = '2s';\n-- tidemark:allow require-concurrent-index-creation -- small table\nCREATE INDEX i ON t (a);\nCREATE INDEX j ON t (b); -- tidemark:allow require-concurrent-index-creation\nCREATE INDEX k ON t (c);\n";
        let found = run(&[("001_x.sql", sql)], false);
        assert_eq!(
            rules_of(&found),
            vec![("require-concurrent-index-creation", Some(5), Some(1))]
        );
        let file = format!("-- tidemark:allow-file require-concurrent-index-creation\n{sql}");
        assert!(run(&[("001_x.sql", &file)], false).is_empty());
        let typo =
            "SET lock_timeout = '2s';\n-- tidemark:allow no-such-rule\nCREATE TABLE t (a int);\n";
        assert_eq!(
            rules_of(&run(&[("001_x.sql", typo)], false)),
            vec![("unknown-rule", Some(2), Some(1))]
        );
    }

    #[test]
    fn deploy_refusals_are_errors_even_without_strict() {
        let found = run(
            &[
                (
                    "001_a.sql",
                    "SET lock_timeout = '2s';\nCREATE TABLE t (a int);\nCOMMIT;\n",
                ),
                (
                    "002_b.sql",
                    "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
                ),
                ("notes.txt", "x"),
            ],
            false,
        );
        let got: Vec<_> = found
            .iter()
            .map(|f| (f.rule.as_str(), f.file.as_str(), f.line, f.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                ("W_UNEXPECTED_FILE", "notes.txt", None, Severity::Warning),
                (
                    "E_TRANSACTION_CONTROL",
                    "001_a.sql",
                    Some(3),
                    Severity::Error
                ),
                (
                    "E_NEEDS_NO_TRANSACTION",
                    "002_b.sql",
                    Some(2),
                    Severity::Error
                ),
            ],
            "{found:#?}"
        );
        let dup = run(
            &[("001_a.sql", "select 1;"), ("1_b.sql", "select 1;")],
            false,
        );
        assert_eq!(dup[0].rule, "E_DUPLICATE_VERSION");
    }

    #[test]
    fn lock_timeout_is_asked_for_unless_configured() {
        let files = || {
            vec![SourceFile::new(
                "001_x.sql",
                b"ALTER TABLE t ADD COLUMN b text;\n".to_vec(),
            )]
        };
        let found = lint(files(), &Options::default(), false);
        assert_eq!(
            found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
            vec!["require-lock-timeout"]
        );
        let configured = Options {
            lock_timeout_ms: Some(2000),
            ..Options::default()
        };
        assert!(lint(files(), &configured, false).is_empty());
    }
}
