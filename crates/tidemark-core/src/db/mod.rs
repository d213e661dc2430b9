//! Everything that talks to the `Client` (style rule 1: act in one place).
//!
//! Round trips are what a remote database multiplies, so the work is shaped
//! into few simple-query messages: one read for the fast path; one message
//! that takes the lock, creates or upgrades the tracking table and re-reads
//! it; one message that applies every pending transactional migration, each
//! between its own `BEGIN` and `COMMIT` with its tracking row inside.
//! Simple-query messages cannot carry bind parameters, so every value is
//! written with [`quote_literal`] and every name with [`quote_ident`].
//!
//! The parts, by job:
//! - [`sql`]: every message tidemark sends, built by pure functions and
//!   tested without a server (quoting, the tracking-table DDL, the lock
//!   snippets, the batch and the mapping of error positions back to files);
//! - [`read`]: the tracking-table reads, with and without the lock;
//! - [`lock`]: the held migration lock, whose release is the only unlock;
//! - [`batch`]: sends the batches and follows their result stream;
//! - [`steps`]: items that cannot go in a batch (no-transaction, COPY);
//! - [`outcome`]: what a failed item leaves behind and the errors it becomes.

mod batch;
mod lock;
mod outcome;
mod read;
mod sql;
mod steps;

use sha2::{Digest, Sha256};

pub(crate) use batch::run_items;
pub(crate) use lock::Lock;
pub(crate) use read::{
    describe_foreign_shape, explain_foreign, first_read, lock_and_read, lock_and_read_seeds,
    lock_timeout_error, parse_row, record_script_seed, FirstRead,
};
pub(crate) use sql::{
    batch_trailer, build_batch, lock_and_read_sql, next_run, select_rows_sql, shape_sql,
    unlock_sql, xact_lock_sql, Item, Work,
};
pub use sql::{quote_ident, quote_literal};

/// SQLSTATE of an undefined table: the tracking table does not exist yet.
const UNDEFINED_TABLE: &str = "42P01";
/// SQLSTATE of a lock wait that hit `lock_timeout`.
pub(crate) const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE the shape check raises for a tracking table of another tool.
pub(crate) const INCOMPATIBLE_SHAPE: &str = "TMK01";
/// SQLSTATE of a unique violation: in pool-safe mode, another deploy
/// claimed the migration first.
const UNIQUE_VIOLATION: &str = "23505";

/// The tracking tables and the lock that guards them.
#[derive(Debug, Clone)]
pub(crate) struct Tracking {
    pub schema: String,
    pub table: String,
    /// `"schema"."table"`
    pub qualified: String,
    /// `"schema"."seeds_table"`
    pub seeds_qualified: String,
    pub lock_key: i64,
}

impl Tracking {
    pub fn new(schema: &str, table: &str, seeds_table: &str) -> Tracking {
        // The advisory lock key is decided once: the first 8 bytes of
        // SHA-256("tidemark:" schema "." table). Advisory locks are scoped
        // to the database already.
        let digest = Sha256::digest(format!("tidemark:{schema}.{table}").as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        Tracking {
            schema: schema.to_string(),
            table: table.to_string(),
            qualified: format!("{}.{}", quote_ident(schema), quote_ident(table)),
            seeds_qualified: format!("{}.{}", quote_ident(schema), quote_ident(seeds_table)),
            lock_key: i64::from_be_bytes(key),
        }
    }

    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// Session settings sent with the lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionSettings {
    /// Through a transaction-mode pooler: no session state, a
    /// transaction-scoped lock in every transaction.
    pub pool_safe: bool,
    pub lock_wait_timeout_ms: u64,
    pub lock_timeout_ms: Option<u64>,
    pub statement_timeout_ms: Option<u64>,
}

impl SessionSettings {
    /// Only a wait for the lock, the session's own timeouts otherwise (for
    /// the one-transaction operations: `accept`).
    pub(crate) fn waiting(lock_wait_timeout_ms: u64) -> SessionSettings {
        SessionSettings {
            pool_safe: false,
            lock_wait_timeout_ms,
            lock_timeout_ms: None,
            statement_timeout_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_is_pinned() {
        // Two tidemark versions must agree on the key, or they would not
        // exclude each other.
        let a = Tracking::new("public", "schema_migrations", "schema_seeds");
        let b = Tracking::new("public", "schema_migrations", "x");
        assert_eq!(a.lock_key, b.lock_key);
        assert_ne!(
            a.lock_key,
            Tracking::new("app", "schema_migrations", "x").lock_key
        );
    }
}
