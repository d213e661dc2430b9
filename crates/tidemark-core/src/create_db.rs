//! `db create`: creates the database a URL names when it does not exist.
//! The host connects to the server's `postgres` database for this (the
//! target does not exist yet) and passes the name in.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::{quote_ident, quote_literal};
use crate::error::{DbDetails, Error, Kind, Result};
use crate::report::CreateDatabaseReport;
use crate::url::Target;

/// SQLSTATE of a privilege the role lacks.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE of `CREATE DATABASE` for a name that exists (a concurrent create).
const DUPLICATE_DATABASE: &str = "42P04";

/// Points `target` at the server's `postgres` database and returns the
/// database it named (libpq's default: the user's name), for `db create`.
pub fn maintenance_target(target: &mut Target) -> String {
    let wanted = target
        .config
        .get_dbname()
        .or(target.config.get_user())
        .unwrap_or_default()
        .to_string();
    target.config.dbname("postgres");
    wanted
}

/// Creates `name` unless a database of that name exists.
pub(crate) async fn create_database(client: &Client, name: &str) -> Result<CreateDatabaseReport> {
    if name.is_empty() {
        return Err(Error::new(
            Kind::InvalidOption,
            "the database URL names no database (and no user to default to), so there is nothing to create; put the database name in the URL",
        ));
    }
    if name.len() > 63 || name.contains('\0') {
        return Err(Error::new(
            Kind::InvalidOption,
            format!("the database name {name:?} must be 1 to 63 characters"),
        ));
    }
    let exists_sql = format!(
        "SELECT 1 AS tidemark_exists FROM pg_database WHERE datname = {}",
        quote_literal(name)
    );
    let read = client
        .simple_query(&exists_sql)
        .await
        .map_err(|e| Error::database("could not list the databases", &e))?;
    if read.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))) {
        return Ok(CreateDatabaseReport {
            database: name.to_string(),
            created: false,
        });
    }
    match client
        .simple_query(&format!("CREATE DATABASE {}", quote_ident(name)))
        .await
    {
        Ok(_) => Ok(CreateDatabaseReport {
            database: name.to_string(),
            created: true,
        }),
        Err(e) => {
            let db = DbDetails::from_error(&e);
            match db.sql_state.as_deref() {
                Some(DUPLICATE_DATABASE) => Ok(CreateDatabaseReport {
                    database: name.to_string(),
                    created: false,
                }),
                Some(INSUFFICIENT_PRIVILEGE) => Err(Error::new(
                    Kind::CreateDatabaseRefused,
                    format!(
                        "the database {name} does not exist and this role may not create it ({}); give the role CREATEDB (ALTER ROLE ... CREATEDB) or have an administrator create the database",
                        db.message
                    ),
                )
                .with_db(&db)),
                _ => Err(Error::database(
                    &format!("could not create the database {name}"),
                    &e,
                )),
            }
        }
    }
}
