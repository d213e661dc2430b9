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

// Out of line (the `#[inline(never)]`s and boxed futures marked "out of
// line"): async code compiles into one state machine per call chain, and
// what is called once is inlined into it, so a whole operation can become a
// single wasm function of 50 KB. V8 runs wasm from its baseline compiler
// first and compiles a function again with its optimizing compiler once that
// function has run enough code, which per-row loops inside it do: for that
// one function, 200 ms and 30 MB on the 2-core machine of bench/README.md,
// in a `status` of 200 migrations. Out of line, the loops tier up alone, in
// a millisecond or two.
pub use out_of_line::{out_of_line, OutOfLine};

mod out_of_line {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// `future`, polled in a function of its own rather than inlined into
    /// the state machine that awaits it (see "Out of line" in lib.rs).
    pub fn out_of_line<F: Future>(future: F) -> OutOfLine<F> {
        OutOfLine(Box::pin(future))
    }

    /// See [`out_of_line`].
    pub struct OutOfLine<F>(Pin<Box<F>>);

    impl<F> std::fmt::Debug for OutOfLine<F> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("OutOfLine")
        }
    }

    impl<F: Future> Future for OutOfLine<F> {
        type Output = F::Output;

        #[inline(never)]
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.0.as_mut().poll(cx)
        }
    }
}

mod accept;
pub mod adopt;
mod check;
pub mod connect;
#[cfg(test)]
mod contract;
mod create_db;
mod db;
mod dry_run;
mod engine;
mod error;
pub mod layout;
pub mod lexer;
#[cfg(feature = "lint")]
mod lint;
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
    accept, create_database, defaults, deploy, down, dry_run, execute, execute_after, load_ahead,
    migrate, read_ahead, redo, reset, seed, status, unlock, Defaults, Dial, Embedded, LoadedAhead,
    NoScripts, Operation, Options, Outcome, ReadAhead, Request, Scripts, SeedOptions,
};
pub use error::{Error, Folder, Location, Result};
#[cfg(feature = "lint")]
pub use lint::{lint, ALLOW, ALLOW_FILE};
pub use plan::Policy;
pub use report::{
    AppliedMigration, ChecksumState, DownReport, Event, Finding, LockHolder, MigrateReport,
    MigrationState, RedoReport, Rehearsal, Reporter, ResetReport, ScriptSeed, SeedReport, SeedRun,
    Severity, Silent, StatusReport, StatusRow, TargetCheck, UnlockReport, VerifyReport,
};
pub use source::{Migrations, SourceFile};
pub use unlock::UnlockOptions;
pub use verify::VerifyOptions;
