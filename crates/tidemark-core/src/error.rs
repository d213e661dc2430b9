//! The one error type of the engine (style rule 5): an opaque [`Error`] with a
//! private kind, a stable [`Error::code`], accessors for where it happened, and
//! the partial progress made before it.

use crate::report::AppliedMigration;
use crate::source::SourceFile;
use crate::url::ConnectError;

/// Where in a source file an error points. Lines and columns are 1-based;
/// columns count characters, as editors do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// Every way the engine can fail. Private so that variants can grow without
/// breaking callers; callers match on [`Error::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    DuplicateVersion,
    InvalidUtf8,
    OrphanDown,
    TransactionControl,
    NeedsNoTransaction,
    Unterminated,
    ChecksumMismatch,
    MissingMigration,
    OutOfOrder,
    MigrationFailed,
    LockTimeout,
    TrackingTableIncompatible,
    NoDown,
    UnknownVersion,
    ResumeRefused,
    SeedProduction,
    ResetProduction,
    SeedFailed,
    InvalidOption,
    PoolNoTransaction,
    ClaimedElsewhere,
    PeerHistory,
    NoPeerHistory,
    PeerFailed,
    AdoptAmbiguous,
    UnknownLayout,
    BadFileName,
    InvalidMarker,
    NulByte,
    ScriptMigration,
    UnsupportedStatement,
    TrackingTableTouched,
    ConnectionLost,
    UnlockRefused,
    NothingToAccept,
    CreateDatabaseRefused,
    Database,
    /// The URL cannot be read (a configuration error).
    InvalidUrl,
    /// Every connection attempt failed.
    Connect,
    /// A bug: a binding caught a panic.
    Panic,
    /// A host asked a build of the engine for an operation it leaves out.
    #[cfg(not(feature = "full"))]
    Internal,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::DuplicateVersion => "E_DUPLICATE_VERSION",
            Kind::InvalidUtf8 => "E_INVALID_UTF8",
            Kind::OrphanDown => "E_ORPHAN_DOWN",
            Kind::TransactionControl => "E_TRANSACTION_CONTROL",
            Kind::NeedsNoTransaction => "E_NEEDS_NO_TRANSACTION",
            Kind::Unterminated => "E_UNTERMINATED_SQL",
            Kind::ChecksumMismatch => "E_CHECKSUM_MISMATCH",
            Kind::MissingMigration => "E_MISSING_MIGRATION",
            Kind::OutOfOrder => "E_OUT_OF_ORDER",
            Kind::MigrationFailed => "E_MIGRATION_FAILED",
            Kind::LockTimeout => "E_LOCK_TIMEOUT",
            Kind::TrackingTableIncompatible => "E_TRACKING_TABLE_INCOMPATIBLE",
            Kind::NoDown => "E_NO_DOWN_MIGRATION",
            Kind::UnknownVersion => "E_UNKNOWN_VERSION",
            Kind::ResumeRefused => "E_RESUME_REFUSED",
            Kind::SeedProduction => "E_SEED_PRODUCTION",
            Kind::ResetProduction => "E_RESET_PRODUCTION",
            Kind::SeedFailed => "E_SEED_FAILED",
            Kind::InvalidOption => "E_INVALID_OPTION",
            Kind::PoolNoTransaction => "E_POOL_NO_TRANSACTION",
            Kind::ClaimedElsewhere => "E_CLAIMED_ELSEWHERE",
            Kind::PeerHistory => "E_PEER_HISTORY",
            Kind::NoPeerHistory => "E_NO_PEER_HISTORY",
            Kind::PeerFailed => "E_PEER_FAILED",
            Kind::AdoptAmbiguous => "E_ADOPT_AMBIGUOUS",
            Kind::UnknownLayout => "E_UNKNOWN_LAYOUT",
            Kind::BadFileName => "E_BAD_FILE_NAME",
            Kind::InvalidMarker => "E_INVALID_MARKER",
            Kind::NulByte => "E_NUL_BYTE",
            Kind::ScriptMigration => "E_SCRIPT_MIGRATION",
            Kind::UnsupportedStatement => "E_UNSUPPORTED_STATEMENT",
            Kind::TrackingTableTouched => "E_TRACKING_TABLE_TOUCHED",
            Kind::ConnectionLost => "E_CONNECTION_LOST",
            Kind::UnlockRefused => "E_UNLOCK_REFUSED",
            Kind::NothingToAccept => "E_NOTHING_TO_ACCEPT",
            Kind::CreateDatabaseRefused => "E_CREATE_DATABASE_REFUSED",
            Kind::Database => "E_DATABASE",
            Kind::InvalidUrl => "E_INVALID_URL",
            Kind::Connect => "E_CONNECT",
            Kind::Panic => "E_PANIC",
            #[cfg(not(feature = "full"))]
            Kind::Internal => "E_INTERNAL",
        }
    }
}

/// An engine error: a message that names the thing and the fix, a stable code,
/// and where it happened.
///
/// ```
/// # use tidemark_core::{source::SourceFile, Migrations};
/// let files = vec![
///     SourceFile::new("001_a.sql", b"select 1;".to_vec()),
///     SourceFile::new("1_b.sql", b"select 2;".to_vec()),
/// ];
/// let err = Migrations::from_files(files).unwrap_err();
/// assert_eq!(err.code(), "E_DUPLICATE_VERSION");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.message)]
pub struct Error(Box<Inner>);

/// Which folder an error's file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Folder {
    /// The migrations folder.
    Migration,
    /// The seed environment's folder.
    Seed,
}

/// Boxed so that `Result<T, Error>` stays one pointer wide.
#[derive(Debug, Clone)]
struct Inner {
    kind: Kind,
    message: String,
    location: Option<Location>,
    folder: Option<Folder>,
    /// The text of the file's line [`Location::line`].
    source_line: Option<String>,
    version: Option<String>,
    sql_state: Option<String>,
    detail: Option<String>,
    hint: Option<String>,
    applied: Vec<AppliedMigration>,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            location: None,
            folder: None,
            source_line: None,
            version: None,
            sql_state: None,
            detail: None,
            hint: None,
            applied: Vec::new(),
        }))
    }

    pub(crate) fn at(mut self, file: &str, line: Option<u32>, column: Option<u32>) -> Self {
        self.0.location = Some(Location {
            file: file.to_string(),
            line,
            column,
        });
        self
    }

    /// Says which folder the error's file is in, unless already said.
    pub(crate) fn in_folder(mut self, folder: Folder) -> Self {
        if self.0.location.is_some() && self.0.folder.is_none() {
            self.0.folder = Some(folder);
        }
        self
    }

    /// Fills in the folder (migrations unless said) and the text of the
    /// line the error points at, from the files it was run with.
    pub(crate) fn with_source(mut self, migrations: &[SourceFile], seeds: &[SourceFile]) -> Self {
        let Some(location) = &self.0.location else {
            return self;
        };
        let folder = *self.0.folder.get_or_insert(Folder::Migration);
        let files = match folder {
            Folder::Migration => migrations,
            Folder::Seed => seeds,
        };
        if let (Some(line), None) = (location.line, &self.0.source_line) {
            let file = files.iter().find(|f| f.name == location.file);
            self.0.source_line = file.and_then(|f| {
                let text = crate::source::normalize(&f.bytes);
                let text = String::from_utf8_lossy(&text);
                text.split('\n')
                    .nth(line.checked_sub(1)? as usize)
                    .map(str::to_string)
            });
        }
        self
    }

    /// The host's request cannot be read (a wrong key type, an unknown
    /// operation).
    pub fn invalid_request(what: impl std::fmt::Display) -> Self {
        Error::new(Kind::InvalidOption, format!("invalid options: {what}"))
    }

    /// A script seed the host ran failed ([`crate::Scripts::run`]), in the
    /// host's own words.
    pub fn script_failed(message: impl Into<String>) -> Self {
        Error::new(Kind::SeedFailed, message)
    }

    /// An internal error (a bug) a host caught, such as a panic.
    pub fn panic(what: &str) -> Self {
        Error::new(
            Kind::Panic,
            format!("tidemark hit an internal error (a bug; please report it): {what}"),
        )
    }

    pub(crate) fn with_version(mut self, version: &str) -> Self {
        self.0.version = Some(version.to_string());
        self
    }

    pub(crate) fn with_applied(mut self, applied: Vec<AppliedMigration>) -> Self {
        self.0.applied = applied;
        self
    }

    pub(crate) fn with_db(mut self, db: &DbDetails) -> Self {
        self.0.sql_state = db.sql_state.clone();
        self.0.detail = db.detail.clone();
        self.0.hint = db.hint.clone();
        self
    }

    /// The stable code, e.g. `E_CHECKSUM_MISMATCH`. Codes never change meaning.
    pub fn code(&self) -> &'static str {
        self.0.kind.code()
    }

    /// The message, without code or location.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The source file the error is about, when there is one.
    pub fn file(&self) -> Option<&str> {
        self.0.location.as_ref().map(|l| l.file.as_str())
    }

    /// 1-based line in [`Error::file`].
    pub fn line(&self) -> Option<u32> {
        self.0.location.as_ref().and_then(|l| l.line)
    }

    /// 1-based column (in characters) in [`Error::file`].
    pub fn column(&self) -> Option<u32> {
        self.0.location.as_ref().and_then(|l| l.column)
    }

    /// The folder [`Error::file`] is in, when the engine knows it.
    pub fn folder(&self) -> Option<Folder> {
        self.0.folder
    }

    /// The text of line [`Error::line`] of [`Error::file`].
    pub fn source_line(&self) -> Option<&str> {
        self.0.source_line.as_deref()
    }

    /// The migration version the error is about.
    pub fn version(&self) -> Option<&str> {
        self.0.version.as_deref()
    }

    /// The server's SQLSTATE, when the server reported the error.
    pub fn sql_state(&self) -> Option<&str> {
        self.0.sql_state.as_deref()
    }

    /// The server's DETAIL line.
    pub fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }

    /// The server's HINT line, or ours.
    pub fn hint(&self) -> Option<&str> {
        self.0.hint.as_deref()
    }

    /// Another deploy applied the migration first (pool-safe mode); the
    /// engine re-reads and carries on, so callers never see this.
    pub(crate) fn claimed_elsewhere(&self) -> bool {
        self.0.kind == Kind::ClaimedElsewhere
    }

    /// Migrations that were applied (and committed) before the error.
    pub fn applied(&self) -> &[AppliedMigration] {
        &self.0.applied
    }

    /// A database or connection error that is not about a particular migration.
    pub(crate) fn database(context: &str, err: &tokio_postgres::Error) -> Self {
        let db = DbDetails::from_error(err);
        if db.lost {
            return Error::new(
                Kind::ConnectionLost,
                format!(
                    "{context}: the connection to the database was lost ({}); run the command again",
                    db.message
                ),
            )
            .with_db(&db);
        }
        Error::new(Kind::Database, format!("{context}: {}", db.message)).with_db(&db)
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Error {
        let kind = if e.code == "E_INVALID_URL" {
            Kind::InvalidUrl
        } else {
            Kind::Connect
        };
        let mut err = Error::new(kind, e.message);
        err.0.sql_state = e.sql_state;
        err
    }
}

/// The one shape an error crosses to JS in (both bindings serialize it):
/// `{ code, message, file?, folder?, line?, column?, sourceLine?, sqlState?,
/// version?, detail?, hint?, applied }`.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Shape<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            file: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            folder: Option<Folder>,
            #[serde(skip_serializing_if = "Option::is_none")]
            line: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            column: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            source_line: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            sql_state: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            version: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            hint: Option<&'a str>,
            applied: &'a [AppliedMigration],
        }
        Shape {
            code: self.code(),
            message: self.message(),
            file: self.file(),
            folder: self.folder(),
            line: self.line(),
            column: self.column(),
            source_line: self.source_line(),
            sql_state: self.sql_state(),
            version: self.version(),
            detail: self.detail(),
            hint: self.hint(),
            applied: self.applied(),
        }
        .serialize(s)
    }
}

/// What the server said, taken out of a `tokio_postgres::Error` whose own
/// Display can be just "db error".
#[derive(Debug, Clone, Default)]
pub(crate) struct DbDetails {
    pub message: String,
    pub sql_state: Option<String>,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the query text.
    pub position: Option<u32>,
    /// The session is gone (closed socket, I/O error, or the server ending
    /// it: shutdown, restart, `pg_terminate_backend`), so what the server
    /// did with the rest of the message is unknown to this session.
    pub lost: bool,
}

impl DbDetails {
    /// ` (SQLSTATE 42P01)`, or nothing when the server gave none.
    pub fn sql_state_suffix(&self) -> String {
        self.sql_state
            .as_deref()
            .map(|s| format!(" (SQLSTATE {s})"))
            .unwrap_or_default()
    }

    pub fn from_error(err: &tokio_postgres::Error) -> Self {
        if let Some(db) = err.as_db_error() {
            let code = db.code().code();
            // 57P01 admin shutdown / terminate, 57P02 crash shutdown,
            // 57P03 cannot connect now, class 08: connection exceptions.
            let lost = err.is_closed()
                || matches!(code, "57P01" | "57P02" | "57P03")
                || code.starts_with("08");
            return DbDetails {
                lost,
                message: db.message().to_string(),
                sql_state: Some(db.code().code().to_string()),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
                position: match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                    _ => None,
                },
            };
        }
        // Walk the source chain: the outermost Display of an I/O failure is
        // only "error communicating with the server".
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = s.source();
        }
        DbDetails {
            message,
            // Not a server error: the socket closed or failed (or the
            // protocol broke), and the session cannot be trusted any more.
            lost: true,
            ..DbDetails::default()
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
