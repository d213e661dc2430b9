#![allow(missing_debug_implementations)] // napi objects: they only cross the boundary
//! Options as they arrive from JS (style rule 9: camelCase structs in one
//! place). Reports and events leave as JSON values serialized by the core.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// One file the JS host read.
#[napi(object)]
pub struct JsSourceFile {
    pub name: String,
    pub bytes: Buffer,
}

/// A script seed the host ran: `scriptDue` handed back with its duration.
#[napi(object)]
pub struct JsScriptRun {
    pub name: String,
    pub checksum: String,
    pub duration_ms: u32,
}

/// Everything an operation needs; only `url` and `migrations` are required.
#[napi(object)]
pub struct NativeOptions {
    pub url: String,
    pub migrations: Vec<JsSourceFile>,
    pub seeds: Option<Vec<JsSourceFile>>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub seeds_table: Option<String>,
    pub lock_wait_timeout_ms: Option<u32>,
    pub lock_timeout_ms: Option<u32>,
    pub statement_timeout_ms: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub allow_drift: Option<bool>,
    pub allow_missing: Option<bool>,
    pub allow_out_of_order: Option<bool>,
    pub to: Option<String>,
    pub steps: Option<u32>,
    pub environment: Option<String>,
    pub production: Option<bool>,
    pub allow_production: Option<bool>,
    pub force: Option<bool>,
    pub application_name: Option<String>,
    /// `TIDEMARK_TLS_INSECURE=1`, passed by the host: encrypt without
    /// verifying the certificate.
    pub tls_insecure: Option<bool>,
    /// The URL goes through a transaction-mode pooler and no direct URL is
    /// set (the host decides): pool-safe mode.
    pub pool_safe: Option<bool>,
    /// `unlock --terminate`.
    pub terminate: Option<bool>,
    /// `unlock --terminate`: the holder the user confirmed.
    pub pid: Option<u32>,
    /// `seed --only <name>`.
    pub only: Option<String>,
    /// `seed`: the script seed the host ran (the last call's `scriptDue`).
    pub ran_script: Option<JsScriptRun>,
    /// `accept <version> --reason`, and who accepts (the OS user).
    pub version: Option<String>,
    pub reason: Option<String>,
    pub accepted_by: Option<String>,
    /// `adopt --from`.
    pub from: Option<String>,
    /// `adopt --dry-run`, `baseline --dry-run`.
    pub dry_run: Option<bool>,
}

/// Options of `create`.
#[napi(object)]
pub struct CreateOptions {
    pub existing: Vec<String>,
    pub name: String,
    pub reversible: Option<bool>,
    /// UTC `YYYYMMDDHHMMSS`.
    pub stamp: String,
    /// Epoch milliseconds.
    pub millis: f64,
}

/// A file `create` writes.
#[napi(object)]
pub struct CreatedFile {
    pub name: String,
    pub contents: String,
}

/// What `create` returns.
#[napi(object)]
pub struct CreateResult {
    pub version: String,
    pub files: Vec<CreatedFile>,
}

/// The options with the file bytes copied out of JS memory, so the work can
/// run on another thread: the core's request plus how to connect.
#[derive(Debug)]
pub struct Owned {
    pub url: String,
    pub request: tidemark_core::Request,
    pub connect_timeout_ms: Option<u64>,
    pub application_name: Option<String>,
    pub tls_insecure: bool,
}

fn files(list: Vec<JsSourceFile>) -> Vec<tidemark_core::SourceFile> {
    list.into_iter()
        .map(|f| tidemark_core::SourceFile::new(f.name, f.bytes.to_vec()))
        .collect()
}

impl From<NativeOptions> for Owned {
    fn from(o: NativeOptions) -> Owned {
        let defaults = tidemark_core::Options::default();
        Owned {
            request: tidemark_core::Request {
                options: tidemark_core::Options {
                    schema: o.schema.unwrap_or(defaults.schema),
                    table: o.table.unwrap_or(defaults.table),
                    seeds_table: o.seeds_table.unwrap_or(defaults.seeds_table),
                    lock_wait_timeout_ms: o
                        .lock_wait_timeout_ms
                        .map_or(defaults.lock_wait_timeout_ms, u64::from),
                    lock_timeout_ms: o.lock_timeout_ms.map(u64::from),
                    statement_timeout_ms: o.statement_timeout_ms.map(u64::from),
                    max_message_bytes: defaults.max_message_bytes,
                    pool_safe: o.pool_safe.unwrap_or(false),
                    policy: tidemark_core::Policy {
                        allow_drift: o.allow_drift.unwrap_or(false),
                        allow_missing: o.allow_missing.unwrap_or(false),
                        allow_out_of_order: o.allow_out_of_order.unwrap_or(false),
                    },
                },
                seed_options: tidemark_core::SeedOptions {
                    environment: o.environment.unwrap_or_else(|| "development".into()),
                    production: o.production.unwrap_or(false),
                    allow_production: o.allow_production.unwrap_or(false),
                    force: o.force.unwrap_or(false),
                    only: o.only,
                    ran_script: o.ran_script.map(|r| tidemark_core::ScriptRun {
                        name: r.name,
                        checksum: r.checksum,
                        duration_ms: u64::from(r.duration_ms),
                    }),
                },
                migrations: files(o.migrations),
                seeds: o.seeds.map(files).unwrap_or_default(),
                to: o.to,
                steps: o.steps.map(|s| s as usize),
                unlock: tidemark_core::UnlockOptions {
                    terminate: o.terminate.unwrap_or(false),
                    pid: o.pid,
                },
                accept: tidemark_core::AcceptOptions {
                    version: o.version,
                    reason: o.reason,
                    by: o.accepted_by,
                },
                create_database: None,
                from: o.from,
                dry_run: o.dry_run.unwrap_or(false),
            },
            url: o.url,
            connect_timeout_ms: o.connect_timeout_ms.map(u64::from),
            application_name: o.application_name,
            tls_insecure: o.tls_insecure.unwrap_or(false),
        }
    }
}
