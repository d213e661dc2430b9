//! The connection policy, once for both bindings: which failures are
//! retried, how long to wait, the one loop over a host's [`Dialer`], the
//! `connected`/`connectRetry` events and the connection-error text. Pure:
//! the host dials, sleeps and says how long each attempt took; the core
//! never reads the clock.

use std::future::Future;

use crate::report::{Event, Reporter};
use crate::url::{ConnectError, Endpoint};

/// Why one connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The OS's, the TLS layer's or the server's words.
    pub message: String,
    /// The server's SQLSTATE, when it answered with an error.
    pub sql_state: Option<String>,
}

impl AttemptError {
    /// Why a tokio-postgres connect failed: the server's message and
    /// SQLSTATE, or the whole source chain (tokio-postgres's own Display can
    /// be just "db error").
    pub fn of(e: &tokio_postgres::Error) -> AttemptError {
        if let Some(db) = e.as_db_error() {
            return AttemptError {
                message: format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                sql_state: Some(db.code().code().to_string()),
            };
        }
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            let t = s.to_string();
            if !text.contains(&t) {
                text = format!("{text}: {t}");
            }
            source = s.source();
        }
        AttemptError {
            message: text,
            sql_state: None,
        }
    }
}

/// What a host provides to connect: one attempt at a time, and sleeping.
pub trait Dialer {
    type Connection;
    /// One attempt (TCP, TLS, startup, authentication) bounded by
    /// `remaining_ms`; returns its outcome and how long it took in ms.
    fn dial(
        &mut self,
        remaining_ms: u64,
    ) -> impl Future<Output = (Result<Self::Connection, AttemptError>, u64)>;
    /// Waits `ms` milliseconds.
    fn sleep(&mut self, ms: u64) -> impl Future<Output = ()>;
    /// A number in [0, 1) that spreads the retries of parallel deploys.
    fn jitter(&mut self) -> f64;
}

/// Whether a failed connection attempt is worth another try: refused
/// connections, name-resolution failures, timeouts, and a server (or a cold
/// Neon compute) that is still starting or full. Authentication failures
/// never are.
pub fn retryable(message: &str, sql_state: Option<&str>) -> bool {
    match sql_state {
        // cannot_connect_now (starting up), too_many_connections.
        Some("57P03" | "53300") => return true,
        // invalid_password, invalid_authorization_specification, unknown database...
        Some(s) if s.starts_with("28") || s == "3D000" || s == "42501" => return false,
        _ => {}
    }
    let m = message.to_ascii_lowercase();
    [
        "connection refused",
        "econnrefused",
        "could not translate host name",
        "failed to lookup address",
        "name or service not known",
        "temporary failure in name resolution",
        "enotfound",
        "eai_again",
        "timed out",
        "etimedout",
        "connection reset",
        "econnreset",
        "compute node",
        "is starting up",
        "endpoint is disabled",
        "too many clients",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// The wait before retry `attempt` (1-based): exponential from 100 ms, capped
/// at 2 s, scaled by `jitter` in [0, 1) to between half and all of it, so
/// that parallel deploys do not retry in step.
///
/// ```
/// use tidemark_core::connect::backoff_ms;
/// assert_eq!((backoff_ms(1, 1.0), backoff_ms(3, 1.0), backoff_ms(9, 0.0)), (100, 400, 1000));
/// ```
pub fn backoff_ms(attempt: u32, jitter: f64) -> u64 {
    let base = 100u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(10))
        .min(2000);
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    (base as f64 * factor) as u64
}

/// What the user can do about a failure the URL can fix (rustls's and
/// Node's words for the same problems).
fn hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("notvalidforname")
        || r.contains("err_tls_cert_altname_invalid")
        || r.contains("does not match certificate's altnames")
    {
        "; the server's certificate is not valid for this host name: connect with the name the certificate was issued for, or use sslmode=verify-ca to check only the chain"
    } else if (r.contains("certificate") || r.contains("tls"))
        && (r.contains("unknownissuer")
            || r.contains("invalid peer")
            || r.contains("self-signed")
            || r.contains("self signed")
            || r.contains("unable to verify")
            || r.contains("unable to get"))
    {
        "; the server's certificate could not be verified (not signed by a CA tidemark trusts): add sslrootcert=/path/to/ca.pem to the URL, or encrypt without verifying with sslmode=no-verify (or TIDEMARK_TLS_INSECURE=1)"
    } else if r.contains("password authentication failed") {
        "; check the user name and password"
    } else {
        ""
    }
}

/// The connection error: where, how often, why, and the fix when the URL
/// has one.
pub fn connect_error(
    endpoint: &Endpoint,
    attempts: u32,
    elapsed_ms: u64,
    failure: &AttemptError,
) -> ConnectError {
    let tries = if attempts > 1 {
        format!(" (after {attempts} attempts over {elapsed_ms} ms)")
    } else {
        String::new()
    };
    let user = if endpoint.user.is_empty() {
        "the default".to_string()
    } else {
        endpoint.user.clone()
    };
    ConnectError {
        code: "E_CONNECT",
        message: format!(
            "could not connect to {}:{} (database {}, user {user}, sslmode {}){tries}: {}{}",
            endpoint.host,
            endpoint.port,
            if endpoint.database.is_empty() {
                &user
            } else {
                &endpoint.database
            },
            endpoint.sslmode,
            failure.message,
            hint(&failure.message)
        ),
        sql_state: failure.sql_state.clone(),
    }
}

/// Connects through `dialer`, retrying with backoff what can heal until
/// `budget_ms` is spent (elapsed time is what the attempts took plus the
/// waits); authentication failures fail at once. Reports `connectRetry`
/// before each wait and `connected` on success.
pub async fn connect<D: Dialer, R: Reporter + ?Sized>(
    dialer: &mut D,
    endpoint: &Endpoint,
    budget_ms: u64,
    reporter: &R,
) -> Result<D::Connection, ConnectError> {
    let budget = budget_ms.max(1);
    let mut elapsed = 0u64;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        // The budget covers the whole attempt: TCP, TLS, startup and
        // authentication (a server that accepts and never answers).
        let remaining = budget.saturating_sub(elapsed).max(100);
        let (result, took) = dialer.dial(remaining).await;
        elapsed = elapsed.saturating_add(took);
        let failure = match result {
            Ok(connection) => {
                reporter.report(Event::Connected {
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                    database: endpoint.database.clone(),
                    sslmode: endpoint.sslmode.clone(),
                });
                return Ok(connection);
            }
            Err(f) => f,
        };
        // The last wait is cut to what is left, so the final attempt lands
        // at the deadline.
        let delay = backoff_ms(attempt, dialer.jitter()).min(budget.saturating_sub(elapsed));
        if !retryable(&failure.message, failure.sql_state.as_deref()) || elapsed + 10 >= budget {
            return Err(connect_error(endpoint, attempt, elapsed, &failure));
        }
        reporter.report(Event::ConnectRetry {
            attempt,
            error: failure.message.clone(),
            delay_ms: delay,
        });
        dialer.sleep(delay).await;
        elapsed = elapsed.saturating_add(delay);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn retries_what_can_heal_and_never_authentication() {
        assert!(retryable(
            "error connecting to server: Connection refused (os error 111)",
            None
        ));
        assert!(retryable("connect ECONNREFUSED 127.0.0.1:5432", None));
        assert!(retryable(
            "failed to lookup address information: Name or service not known",
            None
        ));
        assert!(retryable(
            "the database system is starting up",
            Some("57P03")
        ));
        assert!(retryable("sorry, too many clients already", Some("53300")));
        assert!(retryable("Couldn't connect to compute node", Some("XX000")));
        assert!(!retryable(
            "password authentication failed for user \"app\"",
            Some("28P01")
        ));
        assert!(!retryable(
            "database \"nope\" does not exist",
            Some("3D000")
        ));
        assert!(!retryable(
            "the server closed the connection during TLS negotiation",
            None
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1, 1.0), 100);
        assert_eq!(backoff_ms(2, 1.0), 200);
        assert_eq!(backoff_ms(10, 1.0), 2000);
        assert_eq!(backoff_ms(1, 0.0), 50);
    }

    /// A dialer that plays back a script of failures, then succeeds.
    struct Script(Vec<AttemptError>, Vec<u64>);

    impl Dialer for Script {
        type Connection = &'static str;
        async fn dial(&mut self, _remaining: u64) -> (Result<&'static str, AttemptError>, u64) {
            if self.0.is_empty() {
                (Ok("up"), 5)
            } else {
                (Err(self.0.remove(0)), 5)
            }
        }
        async fn sleep(&mut self, ms: u64) {
            self.1.push(ms);
        }
        fn jitter(&mut self) -> f64 {
            1.0
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).unwrap()
    }

    fn endpoint() -> Endpoint {
        Endpoint {
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            user: "u".into(),
            sslmode: "prefer".into(),
        }
    }

    fn fail(m: &str, s: Option<&str>) -> AttemptError {
        AttemptError {
            message: m.into(),
            sql_state: s.map(str::to_string),
        }
    }

    #[test]
    fn one_loop_retries_reports_and_connects() {
        let events = RefCell::new(Vec::new());
        let report = |e: Event| events.borrow_mut().push(e);
        let mut d = Script(
            vec![
                fail("connect ECONNREFUSED", None),
                fail("too many clients", Some("53300")),
            ],
            vec![],
        );
        assert_eq!(
            block_on(connect(&mut d, &endpoint(), 30_000, &report)),
            Ok("up")
        );
        assert_eq!(d.1, vec![100, 200]);
        let events = events.into_inner();
        assert_eq!(events.len(), 3);
        assert!(matches!(
            &events[0],
            Event::ConnectRetry {
                attempt: 1,
                delay_ms: 100,
                ..
            }
        ));
        assert!(matches!(&events[2], Event::Connected { port: 5432, .. }));
    }

    #[test]
    fn authentication_fails_at_once_with_the_servers_sqlstate() {
        let mut d = Script(
            vec![fail(
                "password authentication failed for user \"u\"",
                Some("28P01"),
            )],
            vec![],
        );
        let e = block_on(connect(&mut d, &endpoint(), 30_000, &crate::Silent)).unwrap_err();
        assert_eq!(e.code, "E_CONNECT");
        assert_eq!(e.sql_state.as_deref(), Some("28P01"));
        assert_eq!(e.message, "could not connect to h:5432 (database d, user u, sslmode prefer): password authentication failed for user \"u\"; check the user name and password");
        assert!(d.1.is_empty());
    }

    #[test]
    fn the_budget_bounds_the_retries() {
        let mut d = Script(vec![fail("timed out", None); 50], vec![]);
        let e = block_on(connect(&mut d, &endpoint(), 1_000, &crate::Silent)).unwrap_err();
        // Waits of 100, 200, 400 and the 280 ms left; the last attempt
        // starts at the deadline.
        assert_eq!(d.1, vec![100, 200, 400, 280]);
        assert!(
            e.message
                .contains("(after 5 attempts over 1005 ms): timed out"),
            "{}",
            e.message
        );
    }
}
