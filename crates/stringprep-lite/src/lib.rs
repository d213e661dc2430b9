//! `saslprep` as tokio-postgres's SCRAM authentication calls it
//! (postgres-protocol: `stringprep::saslprep(password)`, and the raw password
//! when it fails).
//!
//! With the `tables` feature this is crates.io's `stringprep` 0.1.5. Without
//! it (the wasm deploy-path module, whose size budget the Unicode tables
//! would break) only ASCII passwords are supported: SASLprep leaves printable
//! ASCII unchanged, and fails on ASCII control characters, after which
//! postgres-protocol uses the password as it is, which is again the same
//! bytes. A non-ASCII password is refused before connecting by the host
//! ([`needs_tables`]), which then uses a build with the tables.

#[cfg(not(feature = "tables"))]
use std::borrow::Cow;

#[cfg(feature = "tables")]
pub use stringprep_tables::{saslprep, Error};

/// Whether SASLprep of `password` needs the Unicode tables: true for any
/// non-ASCII character.
pub fn needs_tables(password: &[u8]) -> bool {
    !password.is_ascii()
}

/// The error of [`saslprep`] without the tables.
#[cfg(not(feature = "tables"))]
#[derive(Debug)]
pub struct Error;

#[cfg(not(feature = "tables"))]
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SASLprep of a non-ASCII string needs the Unicode tables")
    }
}

#[cfg(not(feature = "tables"))]
impl std::error::Error for Error {}

/// SASLprep of an ASCII string: unchanged (see the crate documentation).
#[cfg(not(feature = "tables"))]
pub fn saslprep(s: &str) -> Result<Cow<'_, str>, Error> {
    if s.is_ascii() {
        Ok(Cow::Borrowed(s))
    } else {
        Err(Error)
    }
}
