//! tidemark's engine: plans PostgreSQL migrations in pure code and applies
//! them over an already connected `tokio_postgres::Client` in as few round
//! trips as the protocol allows.
//!
//! The crate never dials, spawns, sleeps, reads the clock or touches the
//! filesystem: hosts (the napi addon, the wasm build) connect and read the
//! files, and pass them in as [`SourceFile`]s. Time comes from the server.
//!
//! ```no_run
//! # async fn run(client: tokio_postgres::Client) -> Result<(), tidemark_core::Error> {
//! use tidemark_core::{status, Options, SourceFile, Silent};
//! let files = vec![SourceFile::new("001_init.sql", b"create table t (id int);".to_vec())];
//! let report = status(&client, files, &Options::default(), &Silent).await?;
//! println!("{} pending", report.pending);
//! # Ok(()) }
//! ```

// Without the `full` feature the operations beyond the deploy path are not
// dispatched (see `Operation::in_build`), and their code is left for the
// linker to drop.
#![cfg_attr(not(feature = "full"), allow(dead_code))]

mod accept;
pub mod adopt;
mod check;
pub mod connect;
mod create_db;
mod db;
mod dry_run;
mod engine;
mod error;
pub mod layout;
pub mod lexer;
pub mod plan;
pub mod report;
pub mod source;
mod unlock;
pub mod url;
mod verify;

pub use accept::AcceptOptions;
pub use adopt::AdoptReport;
pub use create_db::maintenance_target;
pub use db::{quote_ident, quote_literal};
pub use engine::{
    accept, create_database, deploy, down, dry_run, execute, migrate, redo, reset, seed, status,
    unlock, Operation, Options, Outcome, Request, SeedOptions,
};
pub use error::{Error, Location, Result};
pub use plan::Policy;
pub use report::{
    AppliedMigration, ChecksumState, DownReport, Event, LockHolder, MigrateReport, MigrationState,
    RedoReport, Reporter, ResetReport, SeedReport, SeedRun, Silent, StatusReport, StatusRow,
    UnlockReport,
};
pub use source::{Migrations, SourceFile};
pub use unlock::UnlockOptions;
