//! Splitting SQL files into top-level statements and recognising the ones
//! that need special handling (transaction control, statements PostgreSQL
//! refuses to run inside a transaction block).
//!
//! The lexer only understands as much of PostgreSQL's lexical grammar as is
//! needed to find top-level `;`: strings of every flavour, quoted
//! identifiers, dollar quotes, (nested) comments and SQL-standard
//! `BEGIN ATOMIC ... END` function bodies. Everything else is a word or an
//! opaque token. All delimiters are ASCII, so every token boundary falls on a
//! char boundary of the input.

use std::iter::Peekable;

/// One top-level statement of a SQL file, as a slice of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text: from the end of the previous statement (so it
    /// includes leading whitespace and comments) up to and including its
    /// terminating top-level `;`, or to the end of input for the last one.
    pub text: &'a str,
    /// Byte offset of `text` in the input.
    pub start: usize,
    /// Byte offset (in the input) of the first character that is not
    /// whitespace or a comment, i.e. where the statement's code begins.
    /// Equals `start + text.len()` when the statement has no code (a lone
    /// terminating `;` is not code).
    pub code_start: usize,
    /// Byte offset (in the input) just past the statement's code: before
    /// its terminating `;` and any whitespace or comments around it. Found
    /// once, when the statement is split off (see [`Statement::code`]).
    pub code_end: usize,
    pub kind: StatementKind,
    /// `'...'` strings in this statement treat `\` as an escape, because an
    /// earlier `SET standard_conforming_strings = off` in the same file said
    /// so (PostgreSQL's default, `on`, makes them plain).
    pub backslash_quotes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// Only whitespace, comments and/or a lone `;` — nothing to run.
    Empty,
    /// BEGIN / START TRANSACTION (top level; NOT `BEGIN ATOMIC`, which only
    /// occurs inside CREATE FUNCTION/PROCEDURE bodies).
    Begin,
    /// COMMIT / END (as a statement, optionally followed by WORK/TRANSACTION
    /// or AND [NO] CHAIN).
    Commit,
    /// ROLLBACK / ABORT, but NOT `ROLLBACK TO [SAVEPOINT] x` (that is Other:
    /// fine inside a transaction).
    Rollback,
    /// PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED: transaction
    /// control that can never be part of a migration.
    OtherTransactionControl,
    /// A statement PostgreSQL refuses to run inside a transaction block. The
    /// `&'static str` is a short human label, e.g. "CREATE INDEX CONCURRENTLY".
    NonTransactional(&'static str),
    /// `COPY ... FROM STDIN`: its data follows in the file (pg_dump).
    CopyFromStdin,
    /// The inline data of the `COPY ... FROM STDIN` before it, up to and
    /// including the `\.` line that ends it (or to the end of the input when
    /// that line is missing).
    CopyData,
    /// `COPY ... TO STDOUT`: rows sent back to the client.
    CopyToStdout,
    /// A psql meta-command line (`\restrict`, `\i`, `\set`, ...), which is
    /// not SQL. Recognised only where a statement begins; it ends at the end
    /// of its line.
    PsqlMeta,
    /// Anything else.
    Other,
}

/// Split SQL into top-level statements. Concatenating every `text` in order
/// gives back `sql` exactly (no byte lost or added), for every input.
///
/// The final piece after the last `;` is returned only if it is non-empty (it
/// may be [`StatementKind::Empty`] if it holds only whitespace/comments).
/// For an empty input, returns an empty Vec.
pub fn split(sql: &str) -> Vec<Statement<'_>> {
    split_from(sql, false)
}

/// [`split`] starting in the given `standard_conforming_strings` mode (for
/// re-reading a statement that came after a `SET ... = off`).
pub(crate) fn split_from(sql: &str, backslash_quotes: bool) -> Vec<Statement<'_>> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut code_start = None;
    let mut body = RoutineBody::default();
    // Parentheses: like psql, a `;` inside them does not end the statement
    // (`CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT ...; INSERT ...)`).
    let mut parens = 0usize;
    let mut lexer = Lexer::with_quotes(sql, backslash_quotes);
    while let Some(token) = lexer.next() {
        if code_start.is_none() && sql.as_bytes().get(token.start) == Some(&b'\\') {
            // A psql meta-command: the rest of the line.
            let end = line_comment_end(sql.as_bytes(), token.start);
            statements.push(Statement::new(
                sql,
                start,
                token.start,
                end,
                lexer.backslash_quotes,
            ));
            start = end;
            lexer.pos = end;
            continue;
        }
        match token.kind {
            TokenKind::OpenParen => parens += 1,
            TokenKind::CloseParen => parens = parens.saturating_sub(1),
            _ => {}
        }
        if token.kind == TokenKind::Semicolon && !body.is_open() && parens == 0 {
            let code_start = code_start.take().unwrap_or(token.end);
            let statement =
                Statement::new(sql, start, code_start, token.end, lexer.backslash_quotes);
            start = token.end;
            body = RoutineBody::default();
            if let Some(on) = standard_conforming_strings(statement.code()) {
                lexer.backslash_quotes = !on;
            }
            let copy = statement.kind == StatementKind::CopyFromStdin;
            statements.push(statement);
            if copy {
                // The data starts on the next line and ends with a `\.` line.
                let bytes = sql.as_bytes();
                let data = (line_comment_end(bytes, start) + 1).min(sql.len());
                let end = copy_data_end(sql, data);
                if end > start {
                    let mut block = Statement::new(sql, start, data, end, lexer.backslash_quotes);
                    if !block.code().is_empty() {
                        block.kind = StatementKind::CopyData;
                    }
                    statements.push(block);
                    start = end;
                    lexer.pos = end;
                }
            }
            continue;
        }
        code_start.get_or_insert(token.start);
        body.feed(token.text(sql));
    }
    if start < sql.len() {
        let code_start = code_start.unwrap_or(sql.len());
        statements.push(Statement::new(
            sql,
            start,
            code_start,
            sql.len(),
            lexer.backslash_quotes,
        ));
    }
    statements
}

/// End of the COPY data that starts at `data`: just past the `\.` line (and
/// its newline), or the end of the input when there is none.
fn copy_data_end(sql: &str, data: usize) -> usize {
    let mut at = data;
    while at < sql.len() {
        let line_end = sql[at..].find('\n').map_or(sql.len(), |i| at + i);
        if sql[at..line_end].trim_end_matches('\r') == "\\." {
            return (line_end + 1).min(sql.len());
        }
        at = line_end + 1;
    }
    sql.len()
}

/// `Some(on)` when `code` is `SET [SESSION|LOCAL] standard_conforming_strings
/// = on|off` (or `TO`, `DEFAULT`), or a `RESET` of it.
pub(crate) fn standard_conforming_strings(code: &str) -> Option<bool> {
    let mut c = Cursor::new(code, false);
    match c.next_word()?.as_str() {
        "RESET" => {
            let what = c.next_word()?;
            (what == "ALL" || what == "STANDARD_CONFORMING_STRINGS").then_some(true)
        }
        "SET" => {
            let _ = c.eat("SESSION") || c.eat("LOCAL");
            if !c.eat("STANDARD_CONFORMING_STRINGS") {
                return None;
            }
            let src = c.src;
            let token = c.tokens.next()?;
            let value =
                if token.is_keyword(src, "TO") || src.get(token.start..token.end) == Some("=") {
                    c.tokens.next()?
                } else {
                    return None;
                };
            let text = src
                .get(value.start..value.end)?
                .trim_matches('\'')
                .to_ascii_lowercase();
            match text.as_str() {
                "off" | "false" | "0" | "no" => Some(false),
                _ => Some(true),
            }
        }
        _ => None,
    }
}

impl<'a> Statement<'a> {
    /// `start..end` and `code_start` must be token boundaries of `sql`.
    fn new(
        sql: &'a str,
        start: usize,
        code_start: usize,
        end: usize,
        backslash_quotes: bool,
    ) -> Self {
        let code_end = code_start + code_len(&sql[code_start..end], backslash_quotes);
        let mut statement = Statement {
            text: &sql[start..end],
            start,
            code_start,
            code_end,
            kind: StatementKind::Empty,
            backslash_quotes,
        };
        statement.kind = classify(statement.code(), backslash_quotes);
        statement
    }

    /// The statement's code with leading whitespace/comments removed and the
    /// trailing `;` (plus any whitespace/comments around it) removed: a
    /// sub-slice of `text`, suitable for sending the statement on its own or
    /// quoting it in an error message. Empty for an Empty statement. A
    /// slice, not a new pass of the lexer: the checks ask for it several
    /// times per statement (a 2.5 MB file of 25,000 statements was lexed
    /// six times over; issue 15).
    pub fn code(&self) -> &'a str {
        // The fields are public, so tolerate inconsistent hand-made values.
        let (Some(from), Some(to)) = (
            self.code_start.checked_sub(self.start),
            self.code_end.checked_sub(self.start),
        ) else {
            return "";
        };
        self.text.get(from..to).unwrap_or("")
    }
}

/// The length of the code at the start of `rest` (which starts where the
/// code does): up to the end of its last token, leaving out a final `;`
/// and the whitespace and comments around it.
fn code_len(rest: &str, backslash_quotes: bool) -> usize {
    let mut end = 0;
    let mut end_before_last = 0;
    let mut last_is_semicolon = false;
    for token in Lexer::with_quotes(rest, backslash_quotes) {
        end_before_last = end;
        end = token.end;
        last_is_semicolon = token.kind == TokenKind::Semicolon;
    }
    if last_is_semicolon {
        end_before_last
    } else {
        end
    }
}

// ---------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// An unquoted identifier or keyword.
    Word,
    Semicolon,
    OpenParen,
    CloseParen,
    /// Literals, quoted identifiers, numbers, parameters, operators, and
    /// unterminated block comments. The latter count as code rather than as
    /// a comment so that a file ending in `/* ...` is sent to the server,
    /// which reports it, instead of being silently dropped as Empty.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

impl Token {
    /// The token's text if it is a word.
    fn text(self, src: &str) -> Option<&str> {
        match self.kind {
            TokenKind::Word => src.get(self.start..self.end),
            _ => None,
        }
    }

    fn is_keyword(self, src: &str, keyword: &str) -> bool {
        self.text(src)
            .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
    }
}

/// Yields the tokens of `src`, skipping whitespace and complete comments.
#[derive(Debug)]
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// `standard_conforming_strings` is off: `\` escapes in `'...'`.
    backslash_quotes: bool,
}

impl<'a> Lexer<'a> {
    fn with_quotes(src: &'a str, backslash_quotes: bool) -> Self {
        Lexer {
            src,
            pos: 0,
            backslash_quotes,
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let bytes = self.src.as_bytes();
        loop {
            let start = self.pos;
            let &first = bytes.get(start)?;
            let second = bytes.get(start + 1).copied();
            let (kind, end) = match first {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' => {
                    self.pos = start + 1;
                    continue;
                }
                b'-' if second == Some(b'-') => {
                    self.pos = line_comment_end(bytes, start);
                    continue;
                }
                b'/' if second == Some(b'*') => match block_comment_end(bytes, start) {
                    Some(end) => {
                        self.pos = end;
                        continue;
                    }
                    None => (TokenKind::Other, bytes.len()),
                },
                b';' => (TokenKind::Semicolon, start + 1),
                b'(' => (TokenKind::OpenParen, start + 1),
                b')' => (TokenKind::CloseParen, start + 1),
                b'\'' => (
                    TokenKind::Other,
                    quoted_end(bytes, start, b'\'', self.backslash_quotes),
                ),
                b'"' => (TokenKind::Other, quoted_end(bytes, start, b'"', false)),
                b'$' => (TokenKind::Other, dollar_end(self.src, start)),
                b'0'..=b'9' => (TokenKind::Other, number_end(bytes, start)),
                _ if is_ident_start(first) => word(bytes, start),
                // Any other ASCII byte: an operator or punctuation character.
                _ => (TokenKind::Other, start + 1),
            };
            self.pos = end;
            return Some(Token { kind, start, end });
        }
    }
}

/// Non-ASCII characters count as identifier characters, as in PostgreSQL.
#[inline(always)]
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Characters allowed after the first in a dollar-quote tag (no `$`).
#[inline(always)]
fn is_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// Characters allowed after the first in an unquoted identifier.
#[inline(always)]
fn is_ident_cont(b: u8) -> bool {
    is_tag_cont(b) || b == b'$'
}

#[inline(always)]
fn scan_while(bytes: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while bytes.get(i).is_some_and(|&b| pred(b)) {
        i += 1;
    }
    i
}

fn line_comment_end(bytes: &[u8], start: usize) -> usize {
    scan_while(bytes, start, |b| b != b'\n' && b != b'\r')
}

/// End of the (nesting) block comment opening at `start`, or `None` if it is
/// never closed.
fn block_comment_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes.get(i..i + 2) {
            Some(b"/*") => {
                depth += 1;
                i += 2;
            }
            Some(b"*/") => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// End of the string or quoted identifier opening at `open`, where a doubled
/// quote is an escaped quote and, in `E'...'` strings, a backslash escapes
/// the next byte. Unterminated quotes run to the end of input.
fn quoted_end(bytes: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = open + 1;
    loop {
        match bytes.get(i) {
            None => return bytes.len(),
            Some(b'\\') if backslash_escapes => i += 2,
            Some(&b) if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// End of the token starting with the `$` at `start`: a dollar-quoted string
/// (`$$...$$`, `$tag$...$tag$`, unterminated ones running to the end of
/// input), a positional parameter such as `$1`, or a lone `$`.
fn dollar_end(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    let mut tag_end = start + 1;
    if bytes.get(tag_end).is_some_and(|&b| is_ident_start(b)) {
        tag_end = scan_while(bytes, tag_end + 1, is_tag_cont);
    }
    if bytes.get(tag_end) == Some(&b'$') {
        let body = tag_end + 1;
        let delimiter = &src[start..body];
        return src[body..]
            .find(delimiter)
            .map_or(src.len(), |at| body + at + delimiter.len());
    }
    if bytes.get(start + 1).is_some_and(u8::is_ascii_digit) {
        return scan_while(bytes, start + 1, |b| b.is_ascii_alphanumeric() || b == b'_');
    }
    start + 1
}

/// Numbers are opaque; swallowing trailing letters keeps `1e5` one token.
fn number_end(bytes: &[u8], start: usize) -> usize {
    scan_while(bytes, start, |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
    })
}

/// A word, or an `E'...'` escape string when the word is a lone `E`
/// immediately followed by a quote.
fn word(bytes: &[u8], start: usize) -> (TokenKind, usize) {
    let end = scan_while(bytes, start, is_ident_cont);
    let is_e = end == start + 1 && matches!(bytes.get(start), Some(b'E' | b'e'));
    if is_e && bytes.get(end) == Some(&b'\'') {
        (TokenKind::Other, quoted_end(bytes, end, b'\'', true))
    } else {
        (TokenKind::Word, end)
    }
}

// ---------------------------------------------------------------------------
// BEGIN ATOMIC bodies

/// Tracks whether we are inside a `BEGIN ATOMIC ... END` body, where `;` does
/// not end the statement. Like psql, this only applies to statements starting
/// with `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, so that e.g. a column
/// named `begin` with alias `atomic` cannot swallow the rest of the file.
#[derive(Debug, Default)]
struct RoutineBody {
    head: Head,
    /// Open `BEGIN ATOMIC` and `CASE` blocks, each closed by an `END`.
    depth: usize,
    after_begin: bool,
}

/// Progress through the words `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Head {
    #[default]
    Start,
    Create,
    CreateOr,
    CreateOrReplace,
    Routine,
    NotRoutine,
}

impl RoutineBody {
    fn is_open(&self) -> bool {
        self.depth > 0
    }

    /// Feeds the next code token: its text if it is a word, `None` otherwise.
    fn feed(&mut self, word: Option<&str>) {
        let is = |keyword: &str| word.is_some_and(|w| w.eq_ignore_ascii_case(keyword));
        self.head = match self.head {
            Head::Routine | Head::NotRoutine => self.head,
            Head::Start if is("CREATE") => Head::Create,
            Head::Create if is("OR") => Head::CreateOr,
            Head::CreateOr if is("REPLACE") => Head::CreateOrReplace,
            Head::Create | Head::CreateOrReplace if is("FUNCTION") || is("PROCEDURE") => {
                Head::Routine
            }
            _ => Head::NotRoutine,
        };
        if self.head == Head::Routine {
            if (self.after_begin && is("ATOMIC")) || (self.is_open() && is("CASE")) {
                self.depth += 1;
            } else if self.is_open() && is("END") {
                self.depth -= 1;
            }
        }
        self.after_begin = is("BEGIN");
    }
}

// ---------------------------------------------------------------------------
// Tables a statement creates, alters or drops

/// The tables a `CREATE TABLE`, `ALTER TABLE` or `DROP TABLE` statement
/// names, each as `(schema, table)` with identifiers folded as PostgreSQL
/// folds them (unquoted: lower case). Empty for any other statement.
///
/// ```
/// use tidemark_core::lexer::tables_changed;
/// assert_eq!(tables_changed(r#"ALTER TABLE IF EXISTS ONLY app."Users" ADD x int"#), [(Some("app".into()), "Users".into())]);
/// assert_eq!(tables_changed("drop table a, b cascade"), [(None, "a".into()), (None, "b".into())]);
/// assert!(tables_changed("select 1").is_empty());
/// ```
pub fn tables_changed(code: &str) -> Vec<(Option<String>, String)> {
    let mut c = Cursor::new(code, false);
    let verb = c.next_word();
    let many = match verb.as_deref() {
        Some("CREATE") => {
            // CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE
            while !c.eat("TABLE") {
                let Some(w) = c.next_word() else {
                    return Vec::new();
                };
                if !matches!(
                    w.as_str(),
                    "GLOBAL" | "LOCAL" | "TEMP" | "TEMPORARY" | "UNLOGGED"
                ) {
                    return Vec::new();
                }
            }
            if c.eat("IF") {
                let _ = c.eat("NOT") && c.eat("EXISTS");
            }
            false
        }
        Some("ALTER") => {
            if !c.eat("TABLE") {
                return Vec::new();
            }
            if c.eat("IF") {
                let _ = c.eat("EXISTS");
            }
            let _ = c.eat("ONLY");
            false
        }
        Some("DROP") => {
            if !c.eat("TABLE") {
                return Vec::new();
            }
            if c.eat("IF") {
                let _ = c.eat("EXISTS");
            }
            true
        }
        _ => return Vec::new(),
    };
    let src = c.src;
    let mut out = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let mut expect_name = true;
    for token in c.tokens.by_ref() {
        let text = src.get(token.start..token.end).unwrap_or("");
        if expect_name {
            let ident = match token.kind {
                TokenKind::Word => Some(text.to_ascii_lowercase()),
                TokenKind::Other
                    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') =>
                {
                    Some(text[1..text.len() - 1].replace("\"\"", "\""))
                }
                _ => None,
            };
            match ident {
                Some(i) => {
                    parts.push(i);
                    expect_name = false;
                }
                None => break,
            }
        } else if text == "." {
            expect_name = true;
        } else {
            let table = parts.pop().unwrap_or_default();
            out.push((parts.pop(), table));
            parts.clear();
            if many && text == "," {
                expect_name = true;
                continue;
            }
            break;
        }
    }
    if let Some(table) = parts.pop() {
        out.push((parts.pop(), table));
    }
    out
}

/// What a `CREATE INDEX CONCURRENTLY` or `DROP INDEX CONCURRENTLY`
/// statement works on, for resuming an interrupted no-transaction migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexStatement {
    /// `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON [ONLY]
    /// table`: the index name as PostgreSQL folds it, and the table as
    /// written (for `to_regclass`).
    Create { name: String, table: String },
    /// `DROP INDEX CONCURRENTLY name` (without `IF EXISTS`): the index as
    /// written.
    Drop { index: String },
}

/// Recognises the index statements that [`IndexStatement`] describes.
/// Unnamed indexes and lists of several indexes are `None`.
///
/// ```
/// use tidemark_core::lexer::{index_statement, IndexStatement};
/// assert_eq!(
///     index_statement("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS Users_Email ON ONLY app.users (email)"),
///     Some(IndexStatement::Create { name: "users_email".into(), table: "app.users".into() })
/// );
/// assert_eq!(index_statement("DROP INDEX CONCURRENTLY app.i"), Some(IndexStatement::Drop { index: "app.i".into() }));
/// assert_eq!(index_statement("CREATE INDEX CONCURRENTLY ON t (x)"), None);
/// ```
pub fn index_statement(code: &str) -> Option<IndexStatement> {
    let mut c = Cursor::new(code, false);
    let src = c.src;
    match c.next_word()?.as_str() {
        "CREATE" => {
            let _ = c.eat("UNIQUE");
            if !(c.eat("INDEX") && c.eat("CONCURRENTLY")) {
                return None;
            }
            if c.eat("IF") {
                let _ = c.eat("NOT") && c.eat("EXISTS");
            }
            let name = c.tokens.next()?;
            let name = ident(src, name)?;
            if !c.eat("ON") {
                return None;
            }
            let _ = c.eat("ONLY");
            let table = qualified_name(src, &mut c)?;
            Some(IndexStatement::Create { name, table })
        }
        "DROP" => {
            if !(c.eat("INDEX") && c.eat("CONCURRENTLY")) || c.eat("IF") {
                return None;
            }
            let index = qualified_name(src, &mut c)?;
            let rest = c.next_word();
            (rest.is_none() || matches!(rest.as_deref(), Some("CASCADE" | "RESTRICT")))
                .then_some(IndexStatement::Drop { index })
        }
        _ => None,
    }
}

/// An identifier token as PostgreSQL folds it.
fn ident(src: &str, token: Token) -> Option<String> {
    let text = src.get(token.start..token.end)?;
    match token.kind {
        TokenKind::Word => Some(text.to_ascii_lowercase()),
        TokenKind::Other if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') => {
            Some(text[1..text.len() - 1].replace("\"\"", "\""))
        }
        _ => None,
    }
}

/// `a`, `a.b` or `"A"."b"` as written.
fn qualified_name(src: &str, c: &mut Cursor<'_>) -> Option<String> {
    let first = c.tokens.next()?;
    ident(src, first)?;
    let mut end = first.end;
    while c
        .tokens
        .next_if(|t| src.get(t.start..t.end) == Some("."))
        .is_some()
    {
        let part = c.tokens.next()?;
        ident(src, part)?;
        end = part.end;
    }
    src.get(first.start..end).map(str::to_string)
}

// ---------------------------------------------------------------------------
// Classification

/// A cursor over the tokens of a statement's code, for keyword matching.
struct Cursor<'a> {
    src: &'a str,
    tokens: Peekable<Lexer<'a>>,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str, backslash_quotes: bool) -> Self {
        Cursor {
            src,
            tokens: Lexer::with_quotes(src, backslash_quotes).peekable(),
        }
    }

    /// Consumes the rest; the direction of a `COPY`: `Some(true)` for `FROM
    /// STDIN`, `Some(false)` for `TO STDOUT` (outside parentheses).
    fn rest_copy_direction(&mut self) -> Option<bool> {
        let src = self.src;
        let mut depth = 0usize;
        let mut previous: Option<Token> = None;
        for token in self.tokens.by_ref() {
            match token.kind {
                TokenKind::OpenParen => depth += 1,
                TokenKind::CloseParen => depth = depth.saturating_sub(1),
                _ if depth == 0 => {
                    if let Some(p) = previous {
                        if p.is_keyword(src, "FROM") && token.is_keyword(src, "STDIN") {
                            return Some(true);
                        }
                        if p.is_keyword(src, "TO") && token.is_keyword(src, "STDOUT") {
                            return Some(false);
                        }
                    }
                }
                _ => {}
            }
            previous = Some(token);
        }
        None
    }

    /// Consumes the next token; returns it upper-cased if it is a word.
    fn next_word(&mut self) -> Option<String> {
        let token = self.tokens.next()?;
        token.text(self.src).map(str::to_ascii_uppercase)
    }

    /// Consumes the next token if it is `keyword`.
    fn eat(&mut self, keyword: &str) -> bool {
        let src = self.src;
        self.tokens
            .next_if(|token| token.is_keyword(src, keyword))
            .is_some()
    }

    fn is_done(&mut self) -> bool {
        self.tokens.peek().is_none()
    }

    /// If a parenthesised option list follows, consumes it and reports whether
    /// it turns `option` on (`option`, `option true`, but not `option false`).
    fn eat_options(&mut self, option: &str) -> bool {
        if self
            .tokens
            .next_if(|token| token.kind == TokenKind::OpenParen)
            .is_none()
        {
            return false;
        }
        let mut depth = 1usize;
        let mut enabled = false;
        while let Some(token) = self.tokens.next() {
            match token.kind {
                TokenKind::OpenParen => depth += 1,
                TokenKind::CloseParen => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ if depth == 1 && token.is_keyword(self.src, option) => {
                    let src = self.src;
                    let off = self.tokens.peek().is_some_and(|value| {
                        value.is_keyword(src, "FALSE")
                            || value.is_keyword(src, "OFF")
                            || src.get(value.start..value.end) == Some("0")
                    });
                    enabled = !off;
                }
                _ => {}
            }
        }
        enabled
    }

    /// Consumes the rest; true if `keyword` occurs anywhere in it.
    fn rest_contains(&mut self, keyword: &str) -> bool {
        let src = self.src;
        self.tokens.any(|token| token.is_keyword(src, keyword))
    }

    /// Consumes the rest; true if it contains `DETACH PARTITION` followed
    /// (later) by `CONCURRENTLY`.
    fn rest_detaches_concurrently(&mut self) -> bool {
        let src = self.src;
        let mut after_detach = false;
        let mut detaching = false;
        for token in self.tokens.by_ref() {
            if detaching && token.is_keyword(src, "CONCURRENTLY") {
                return true;
            }
            detaching |= after_detach && token.is_keyword(src, "PARTITION");
            after_detach = token.is_keyword(src, "DETACH");
        }
        false
    }
}

/// Classifies a statement by its code (as returned by [`Statement::code`]).
fn classify(code: &str, backslash_quotes: bool) -> StatementKind {
    use StatementKind::{
        Begin, Commit, Empty, NonTransactional, Other, OtherTransactionControl, Rollback,
    };
    let mut c = Cursor::new(code, backslash_quotes);
    if c.is_done() {
        return Empty;
    }
    if code.starts_with('\\') {
        return StatementKind::PsqlMeta;
    }
    let Some(head) = c.next_word() else {
        return Other;
    };
    match head.as_str() {
        "BEGIN" if c.eat("ATOMIC") => Other,
        "BEGIN" => Begin,
        "START" if c.eat("TRANSACTION") => Begin,
        "COMMIT" if c.eat("PREPARED") => OtherTransactionControl,
        "COMMIT" | "END" => Commit,
        "ABORT" => Rollback,
        "ROLLBACK" if c.eat("PREPARED") => OtherTransactionControl,
        "ROLLBACK" => {
            let _ = c.eat("WORK") || c.eat("TRANSACTION");
            if c.eat("TO") {
                Other
            } else {
                Rollback
            }
        }
        "PREPARE" if c.eat("TRANSACTION") => OtherTransactionControl,
        "CREATE" => match c.next_word().as_deref() {
            Some("UNIQUE") if c.eat("INDEX") && c.eat("CONCURRENTLY") => {
                NonTransactional("CREATE INDEX CONCURRENTLY")
            }
            Some("INDEX") if c.eat("CONCURRENTLY") => NonTransactional("CREATE INDEX CONCURRENTLY"),
            Some("DATABASE") => NonTransactional("CREATE DATABASE"),
            Some("TABLESPACE") => NonTransactional("CREATE TABLESPACE"),
            Some("SUBSCRIPTION") => NonTransactional("CREATE SUBSCRIPTION"),
            _ => Other,
        },
        "DROP" => match c.next_word().as_deref() {
            Some("INDEX") if c.eat("CONCURRENTLY") => NonTransactional("DROP INDEX CONCURRENTLY"),
            Some("DATABASE") => NonTransactional("DROP DATABASE"),
            Some("TABLESPACE") => NonTransactional("DROP TABLESPACE"),
            Some("SUBSCRIPTION") => NonTransactional("DROP SUBSCRIPTION"),
            _ => Other,
        },
        "ALTER" => match c.next_word().as_deref() {
            Some("SYSTEM") => NonTransactional("ALTER SYSTEM"),
            Some("SUBSCRIPTION") => NonTransactional("ALTER SUBSCRIPTION"),
            Some("TABLE") if c.rest_detaches_concurrently() => {
                NonTransactional("DETACH PARTITION CONCURRENTLY")
            }
            Some("DATABASE") => {
                let _name = c.tokens.next();
                if c.eat("SET") && c.eat("TABLESPACE") {
                    NonTransactional("ALTER DATABASE SET TABLESPACE")
                } else {
                    Other
                }
            }
            _ => Other,
        },
        "REINDEX" => {
            let concurrent_option = c.eat_options("CONCURRENTLY");
            let target = c.next_word();
            if concurrent_option || c.rest_contains("CONCURRENTLY") {
                return NonTransactional("REINDEX CONCURRENTLY");
            }
            match target.as_deref() {
                Some("SYSTEM") => NonTransactional("REINDEX SYSTEM"),
                Some("DATABASE") => NonTransactional("REINDEX DATABASE"),
                Some("SCHEMA") => NonTransactional("REINDEX SCHEMA"),
                _ => Other,
            }
        }
        "VACUUM" => NonTransactional("VACUUM"),
        // Only the form without a table (which clusters every table).
        "CLUSTER" => {
            c.eat_options("VERBOSE");
            c.eat("VERBOSE");
            if c.is_done() {
                NonTransactional("CLUSTER")
            } else {
                Other
            }
        }
        "DISCARD" if c.eat("ALL") => NonTransactional("DISCARD ALL"),
        "COPY" => match c.rest_copy_direction() {
            Some(true) => StatementKind::CopyFromStdin,
            Some(false) => StatementKind::CopyToStdout,
            None => Other,
        },
        _ => Other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use StatementKind::*;

    fn texts(sql: &str) -> Vec<&str> {
        split(sql).into_iter().map(|s| s.text).collect()
    }

    fn codes(sql: &str) -> Vec<&str> {
        split(sql).iter().map(Statement::code).collect()
    }

    fn kind(sql: &str) -> StatementKind {
        let statements = split(sql);
        assert_eq!(statements.len(), 1, "{sql:?} split into {statements:?}");
        statements[0].kind
    }

    #[test]
    fn rule_actions_in_parentheses_are_one_statement() {
        // Regression: split inside the parentheses of a multi-action rule.
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;";
        assert_eq!(codes(sql).len(), 2);
    }

    #[test]
    fn standard_conforming_strings_off_is_followed() {
        // Regression: valid 'It\'s here' was unterminated, and 'C:\' swallowed the rest.
        let sql = "SET standard_conforming_strings = off;\nINSERT INTO t VALUES ('It\\'s here');\nINSERT INTO t VALUES ('C:\\\\');\nSET standard_conforming_strings TO on;\nSELECT 'C:\\';\nSELECT 2;";
        let c = codes(sql);
        assert_eq!(c.len(), 6, "{c:?}");
        assert_eq!(c[1], "INSERT INTO t VALUES ('It\\'s here')");
        assert_eq!(c[4], "SELECT 'C:\\'");
    }

    #[test]
    fn psql_meta_commands_and_copy_data() {
        let sql = "\\restrict k\nCOPY t FROM stdin;\na;b\n\\.\nSELECT 1;";
        let s = split(sql);
        let kinds: Vec<_> = s
            .iter()
            .filter(|s| s.kind != Empty)
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, [PsqlMeta, CopyFromStdin, CopyData, Other]);
        assert_eq!(kind("COPY (SELECT 1) TO stdout"), CopyToStdout);
        assert_eq!(kind("COPY t TO '/tmp/x'"), Other);
    }

    #[test]
    fn empty_input_gives_no_statements() {
        assert!(split("").is_empty());
    }

    #[test]
    fn splits_on_top_level_semicolons() {
        assert_eq!(
            texts("SELECT 1; SELECT 2;\nSELECT 3"),
            ["SELECT 1;", " SELECT 2;", "\nSELECT 3"]
        );
    }

    #[test]
    fn positions_and_code() {
        let statements = split("SELECT 1;\n  -- note\n  SELECT 2 ;\n");
        assert_eq!(statements.len(), 3);
        let second = &statements[1];
        assert_eq!(second.start, 9);
        assert_eq!(second.code_start, 9 + "\n  -- note\n  ".len());
        assert_eq!(second.code(), "SELECT 2");
        assert_eq!(statements[2].text, "\n");
        assert_eq!(statements[2].kind, Empty);
        assert_eq!(statements[2].code_start, statements[2].start + 1);
    }

    #[test]
    fn code_strips_comments_around_the_terminator() {
        assert_eq!(
            codes("/* a */ SELECT 1 /* b */ ; select 2 -- end"),
            ["SELECT 1", "select 2"]
        );
    }

    #[test]
    fn trailing_whitespace_or_comment_is_an_empty_piece() {
        let statements = split("SELECT 1;\n-- bye\n");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].kind, Empty);
        assert_eq!(statements[1].code(), "");
        assert_eq!(kind("  ;"), Empty);
        assert_eq!(kind("/* only */"), Empty);
    }

    #[test]
    fn single_quoted_strings() {
        assert_eq!(
            codes("SELECT 'it''s; fine'; SELECT 2"),
            ["SELECT 'it''s; fine'", "SELECT 2"]
        );
        // standard_conforming_strings: a backslash does not escape the quote.
        assert_eq!(
            codes(r"SELECT 'a\'; SELECT 2"),
            [r"SELECT 'a\'", "SELECT 2"]
        );
    }

    #[test]
    fn escape_strings() {
        assert_eq!(
            codes(r"SELECT E'\';'; SELECT 2"),
            [r"SELECT E'\';'", "SELECT 2"]
        );
        assert_eq!(codes(r"SELECT e'a\'b;'"), [r"SELECT e'a\'b;'"]);
        assert_eq!(codes(r"SELECT E'a''b;'"), [r"SELECT E'a''b;'"]);
        // Not a standalone E prefix: a plain string where the backslash is literal.
        assert_eq!(
            codes(r"SELECT type'\'; SELECT 2"),
            [r"SELECT type'\'", "SELECT 2"]
        );
    }

    #[test]
    fn prefixed_strings_are_plain() {
        assert_eq!(
            codes(r"SELECT U&'d\0061t;', B'1;', X'f;', N'\'; SELECT 2"),
            [r"SELECT U&'d\0061t;', B'1;', X'f;', N'\'", "SELECT 2"]
        );
    }

    #[test]
    fn dollar_quotes() {
        assert_eq!(
            codes("SELECT $$ ; $$; SELECT 2"),
            ["SELECT $$ ; $$", "SELECT 2"]
        );
        assert_eq!(
            codes("SELECT $fn$ a $$ b ; c $fn$; SELECT 2"),
            ["SELECT $fn$ a $$ b ; c $fn$", "SELECT 2"]
        );
        assert_eq!(codes("SELECT $é$ ; $é$; x"), ["SELECT $é$ ; $é$", "x"]);
    }

    #[test]
    fn unterminated_dollar_quote_runs_to_end() {
        assert_eq!(codes("SELECT $a$ ; x; $b$"), ["SELECT $a$ ; x; $b$"]);
    }

    #[test]
    fn dollar_parameters_and_identifiers_are_not_quotes() {
        assert_eq!(
            codes("PREPARE p AS SELECT $1; SELECT $2$; x"),
            ["PREPARE p AS SELECT $1", "SELECT $2$", "x"]
        );
        assert_eq!(
            codes("SELECT foo$bar; SELECT 2 $"),
            ["SELECT foo$bar", "SELECT 2 $"]
        );
        // `foo$$` is one identifier, so `$$` does not open a quote.
        assert_eq!(
            codes("SELECT foo$$; SELECT 2"),
            ["SELECT foo$$", "SELECT 2"]
        );
    }

    #[test]
    fn quoted_identifiers() {
        assert_eq!(
            codes(r#"SELECT 1 AS "quoted ""ident"";"; SELECT 2"#),
            [r#"SELECT 1 AS "quoted ""ident"";""#, "SELECT 2"]
        );
    }

    #[test]
    fn line_comments() {
        assert_eq!(
            texts("SELECT 1 -- comment ; here\n; SELECT 2"),
            ["SELECT 1 -- comment ; here\n;", " SELECT 2"]
        );
        assert_eq!(codes("SELECT 1 -- x ;\r; y"), ["SELECT 1", "y"]);
    }

    #[test]
    fn block_comments_nest() {
        assert_eq!(
            codes("SELECT /* outer /* inner ; */ still ; */ 1; SELECT 2"),
            ["SELECT /* outer /* inner ; */ still ; */ 1", "SELECT 2"]
        );
    }

    #[test]
    fn unterminated_block_comment_is_kept_as_code() {
        let statements = split("SELECT 1; /* oops ; SELECT 2");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].code(), "/* oops ; SELECT 2");
        assert_eq!(statements[1].kind, Other);
    }

    #[test]
    fn begin_atomic_bodies() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; \
                   SELECT CASE WHEN true THEN 1 END; END;";
        assert_eq!(texts(sql), [sql]);
        let sql = "create or replace procedure p() begin /* c */ atomic \
                   select case when x then case when y then 1 end end; \
                   insert into t values (1); end; SELECT 2;";
        let statements = split(sql);
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0].kind, Other);
        assert_eq!(statements[1].code(), "SELECT 2");
    }

    #[test]
    fn begin_atomic_only_counts_in_routine_definitions() {
        assert_eq!(
            codes("SELECT begin atomic FROM t; SELECT 2"),
            ["SELECT begin atomic FROM t", "SELECT 2"]
        );
    }

    #[test]
    fn unterminated_begin_atomic_does_not_panic() {
        let sql = "CREATE FUNCTION f() BEGIN ATOMIC BEGIN ATOMIC SELECT 1; END END END; x;";
        assert_eq!(codes(sql).len(), 2);
        let sql = "CREATE FUNCTION f() BEGIN ATOMIC SELECT 1; SELECT 2;";
        assert_eq!(texts(sql), [sql]);
    }

    #[test]
    fn do_blocks() {
        let sql = "DO $$ BEGIN RAISE NOTICE 'x;'; END $$;";
        assert_eq!(texts(sql), [sql]);
        assert_eq!(kind(sql), Other);
    }

    #[test]
    fn transaction_control() {
        assert_eq!(kind("BEGIN;"), Begin);
        assert_eq!(
            kind("begin transaction isolation level serializable;"),
            Begin
        );
        assert_eq!(kind("START TRANSACTION READ ONLY"), Begin);
        assert_eq!(kind("BEGIN ATOMIC"), Other);
        assert_eq!(kind("COMMIT;"), Commit);
        assert_eq!(kind("commit and no chain"), Commit);
        assert_eq!(kind("END TRANSACTION;"), Commit);
        assert_eq!(kind("ROLLBACK;"), Rollback);
        assert_eq!(kind("ABORT"), Rollback);
        assert_eq!(kind("ROLLBACK TO SAVEPOINT a"), Other);
        assert_eq!(kind("rollback work to a"), Other);
        assert_eq!(kind("PREPARE TRANSACTION 'x'"), OtherTransactionControl);
        assert_eq!(kind("COMMIT PREPARED 'x'"), OtherTransactionControl);
        assert_eq!(kind("ROLLBACK PREPARED 'x'"), OtherTransactionControl);
        assert_eq!(kind("PREPARE q AS SELECT 1"), Other);
        assert_eq!(kind("SAVEPOINT a"), Other);
        assert_eq!(kind("RELEASE SAVEPOINT a"), Other);
        assert_eq!(kind("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), Other);
        assert_eq!(kind("/* c */ -- d\n Begin /* e */ ;"), Begin);
    }

    #[test]
    fn non_transactional_statements() {
        let cases = [
            (
                "create unique index concurrently i on t (a);",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            (
                "REINDEX (VERBOSE) TABLE CONCURRENTLY x",
                "REINDEX CONCURRENTLY",
            ),
            ("REINDEX (CONCURRENTLY) TABLE x", "REINDEX CONCURRENTLY"),
            ("REINDEX DATABASE db", "REINDEX DATABASE"),
            ("reindex system", "REINDEX SYSTEM"),
            ("REINDEX SCHEMA s", "REINDEX SCHEMA"),
            ("VACUUM (ANALYZE) t", "VACUUM"),
            ("ALTER SYSTEM SET work_mem = '1MB'", "ALTER SYSTEM"),
            ("CREATE DATABASE d", "CREATE DATABASE"),
            ("DROP DATABASE IF EXISTS d", "DROP DATABASE"),
            ("CREATE TABLESPACE s LOCATION '/x'", "CREATE TABLESPACE"),
            ("DROP TABLESPACE s", "DROP TABLESPACE"),
            (
                "ALTER TABLE ONLY p DETACH PARTITION c CONCURRENTLY",
                "DETACH PARTITION CONCURRENTLY",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION p",
                "CREATE SUBSCRIPTION",
            ),
            (
                "ALTER SUBSCRIPTION s REFRESH PUBLICATION",
                "ALTER SUBSCRIPTION",
            ),
            ("DROP SUBSCRIPTION s", "DROP SUBSCRIPTION"),
            ("CLUSTER;", "CLUSTER"),
            ("CLUSTER VERBOSE", "CLUSTER"),
            ("DISCARD ALL", "DISCARD ALL"),
            (
                "ALTER DATABASE d SET TABLESPACE s",
                "ALTER DATABASE SET TABLESPACE",
            ),
        ];
        for (sql, label) in cases {
            assert_eq!(kind(sql), NonTransactional(label), "{sql}");
        }
    }

    #[test]
    fn ordinary_statements() {
        let cases = [
            "CREATE INDEX i ON t (a)",
            "CREATE UNIQUE INDEX i ON t (concurrently)",
            "DROP INDEX i",
            "REINDEX TABLE t",
            "REINDEX (CONCURRENTLY false) TABLE t",
            "ALTER TABLE p DETACH PARTITION c",
            "ALTER DATABASE d SET search_path TO x",
            "CLUSTER t USING i",
            "SELECT 'VACUUM'",
            "\"VACUUM\"",
            "(SELECT 1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "DISCARD PLANS",
            "START",
        ];
        for sql in cases {
            assert_eq!(kind(sql), Other, "{sql}");
        }
    }

    #[test]
    fn non_ascii_text_is_sliced_safely() {
        let sql = "SELECT 'é;'; -- ü\nSELECT é$; /* ß */ SELECT \"ö\"";
        let statements = split(sql);
        assert_eq!(statements.iter().map(|s| s.text).collect::<String>(), sql);
        assert_eq!(
            statements.iter().map(Statement::code).collect::<Vec<_>>(),
            ["SELECT 'é;'", "SELECT é$", "SELECT \"ö\""]
        );
    }

    #[test]
    fn code_tolerates_inconsistent_fields() {
        let statement = Statement {
            text: "é",
            start: 5,
            code_start: 6,
            code_end: 7,
            kind: Other,
            backslash_quotes: false,
        };
        assert_eq!(statement.code(), "");
        let statement = Statement {
            code_start: 0,
            ..statement
        };
        assert_eq!(statement.code(), "");
        let statement = Statement {
            code_start: 5,
            code_end: 4,
            ..statement
        };
        assert_eq!(statement.code(), "");
    }
}
