//! The migration lock as a value: holding a [`Lock`] is holding the lock,
//! and [`Lock::release`] is the only way tidemark gives it up.

use tokio_postgres::Client;

use super::{unlock_sql, SessionSettings, Tracking};

/// The migration lock this session holds, from a locked read
/// ([`super::lock_and_read`], [`super::lock_and_read_seeds`]).
///
/// A direct session holds a session-level advisory lock until
/// [`Lock::release`] sends the unlock, or until the last batch of
/// [`super::run_items`] carries the unlock itself (one round trip fewer) and
/// marks the value released. In pool-safe mode every transaction takes and
/// ends its own transaction-scoped lock, so there is nothing to release. A
/// `Lock` dropped without `release` (an early return the code does not
/// have, or a panic) leaves the lock to the end of the session, which every
/// host closes when the operation returns.
///
/// Every locked operation has the same shape, so that no `?` can skip the
/// release: the work is an `async` block whose result is kept, then
/// `lock.release().await`, then the result. (An `around(self, async |lock|
/// ...)` helper would say the same, but a closure lending `&mut Lock` makes
/// the operation's future fail the `Send` check the native binding needs.)
#[derive(Debug)]
#[must_use = "the migration lock stays held until Lock::release or the end of the session"]
pub(crate) struct Lock<'c> {
    client: &'c Client,
    /// The unlock message, while a session lock is held.
    held: Option<String>,
}

impl<'c> Lock<'c> {
    /// The lock the locked read just took.
    pub(super) fn taken(client: &'c Client, t: &Tracking, s: SessionSettings) -> Lock<'c> {
        Lock {
            client,
            held: (!s.pool_safe).then(|| unlock_sql(t)),
        }
    }

    /// The session that holds the lock.
    pub(crate) fn client(&self) -> &'c Client {
        self.client
    }

    /// The last message of a batch ended with the unlock and completed.
    pub(super) fn released_by_batch(&mut self) {
        self.held = None;
    }

    /// Releases the lock (nothing to do when a batch already did, or in
    /// pool-safe mode). Errors are ignored: the session's end releases it
    /// too, and the operation's own outcome is what the user needs to see.
    pub(crate) async fn release(self) {
        if let Some(sql) = self.held {
            let _ = self.client.simple_query(&sql).await;
        }
    }
}
