//! tidemark's Node native addon. Conversion only (style rule 9): options in,
//! connect, call the core, report or error out. Every export takes one
//! options object and an optional event callback, and returns a promise.

// napi's macros generate the registration code with `unsafe`; this crate's
// own code has none.
#![allow(unsafe_code)]

mod connect;
mod types;

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::{json, Value};
use tidemark_core::Operation;

use crate::connect::Connected;
use crate::types::{CreateOptions, CreateResult, CreatedFile, NativeOptions, Owned};

/// The event callback: weak, so a stored callback never keeps Node alive.
type EventFn = ThreadsafeFunction<Value, (), Value, Status, false, true>;

/// Forwards core events to the JS callback.
struct JsReporter(Option<EventFn>);

impl JsReporter {
    fn send(&self, value: Value) {
        if let Some(f) = &self.0 {
            f.call(value, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

impl tidemark_core::Reporter for JsReporter {
    fn report(&self, event: tidemark_core::Event) {
        if let Ok(value) = serde_json::to_value(&event) {
            self.send(value);
        }
    }
}

/// An error on its way to JS: the core's, or a connection failure.
struct Failure {
    code: String,
    message: String,
    fields: Value,
}

impl From<tidemark_core::Error> for Failure {
    fn from(e: tidemark_core::Error) -> Failure {
        Failure {
            code: e.code().to_string(),
            message: e.message().to_string(),
            fields: json!({
                "file": e.file(),
                "line": e.line(),
                "column": e.column(),
                "sqlState": e.sql_state(),
                "version": e.version(),
                "detail": e.detail(),
                "hint": e.hint(),
                "applied": serde_json::to_value(e.applied()).unwrap_or(Value::Null),
            }),
        }
    }
}

impl From<tidemark_core::url::ConnectError> for Failure {
    fn from(e: tidemark_core::url::ConnectError) -> Failure {
        Failure {
            code: e.code.to_string(),
            message: e.message,
            fields: json!({ "sqlState": e.sql_state }),
        }
    }
}

/// Builds the JS error: an `Error` with `code`, `file`, `line`, `column`,
/// `sqlState`, `version`, `detail`, `hint` and `applied`.
fn js_error(env: &Env, failure: Failure) -> Error {
    let build = || -> Result<Error> {
        let mut obj =
            env.create_error(Error::new(Status::GenericFailure, failure.message.clone()))?;
        obj.set_named_property("code", failure.code.as_str())?;
        if let Value::Object(map) = failure.fields {
            for (k, v) in map {
                if !v.is_null() {
                    obj.set_named_property(&k, v)?;
                }
            }
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}

fn to_json<T: serde::Serialize>(report: T) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

/// Runs one operation: connect, call the core, close, and settle the
/// promise. Panics become an `E_PANIC` error instead of killing Node.
fn run<'env>(
    env: &'env Env,
    op: Operation,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    let callback = match on_event {
        Some(f) => Some(
            f.build_threadsafe_function::<Value>()
                .callee_handled::<false>()
                .weak::<true>()
                .build()?,
        ),
        None => None,
    };
    // The bytes are copied out of JS memory here, on the JS thread.
    let mut owned = Owned::from(options);
    let fut = async move {
        let reporter = JsReporter(callback);
        let outcome = AssertUnwindSafe(async {
            let mut target = tidemark_core::url::parse(&owned.url, owned.tls_insecure)?;
            if op == Operation::CreateDatabase {
                // The database does not exist yet: ask the server's `postgres` database.
                owned.request.create_database =
                    Some(tidemark_core::maintenance_target(&mut target));
            }
            let opts = &owned.request.options;
            // Direct sessions get their timeouts in the startup packet;
            // through a pooler they are SET LOCAL per transaction.
            let startup_options = if opts.pool_safe {
                None
            } else {
                tidemark_core::url::startup_options(
                    target.config.get_options(),
                    opts.lock_timeout_ms,
                    opts.statement_timeout_ms,
                )
            };
            let connected: Connected = connect::connect(
                target,
                connect::Dial {
                    connect_timeout_ms: owned.connect_timeout_ms,
                    application_name: owned.application_name.clone(),
                    startup_options,
                },
                &reporter,
            )
            .await?;
            let result = tidemark_core::execute(&connected.client, op, owned.request, &reporter)
                .await
                .map(to_json);
            connected.close().await;
            result.map_err(Failure::from)
        })
        .catch_unwind()
        .await;
        Ok(outcome.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure {
                code: "E_PANIC".into(),
                message: format!(
                    "tidemark hit an internal error (a bug; please report it): {what}"
                ),
                fields: json!({}),
            })
        }))
    };
    env.spawn_future_with_callback(fut, |env, outcome| match outcome {
        Ok(value) => Ok(value),
        Err(failure) => Err(js_error(env, failure)),
    })
}

/// The addon's version; the JS loader checks it matches the package.
#[napi]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// What a database URL says, from the one parser both backends use:
/// `{ problem, redacted, host, port, database, user, sslmode,
/// poolerReason, applicationName }`; never throws.
#[napi(js_name = "inspectUrl")]
pub fn inspect_url(url: String) -> Value {
    to_json(tidemark_core::url::inspect(&url))
}

/// `text` with every secret of `url` masked.
#[napi(js_name = "redactText")]
pub fn redact_text(text: String, url: String) -> String {
    tidemark_core::url::redact_text(&text, &url)
}

/// Applies pending migrations.
#[napi(ts_return_type = "Promise<MigrateReport>")]
pub fn migrate<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Migrate, options, on_event)
}

/// Applies pending migrations with every check strict.
#[napi(ts_return_type = "Promise<MigrateReport>")]
pub fn deploy<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Deploy, options, on_event)
}

/// Describes every migration (one read, no lock).
#[napi(ts_return_type = "Promise<StatusReport>")]
pub fn status<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Status, options, on_event)
}

/// Reverts applied migrations.
#[napi(ts_return_type = "Promise<DownReport>")]
pub fn down<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Down, options, on_event)
}

/// Reverts and re-applies the last migrations.
#[napi(ts_return_type = "Promise<RedoReport>")]
pub fn redo<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Redo, options, on_event)
}

/// Runs the seeds of one environment.
#[napi(ts_return_type = "Promise<SeedReport>")]
pub fn seed<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Seed, options, on_event)
}

/// Development only: drops the schemas, migrates and seeds.
#[napi(ts_return_type = "Promise<ResetReport>")]
pub fn reset<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Reset, options, on_event)
}

/// Records another tool's history as tidemark's, running nothing.
#[napi(ts_return_type = "Promise<AdoptReport>")]
pub fn adopt<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Adopt, options, on_event)
}

/// Marks every migration up to a version applied, running nothing.
#[napi(ts_return_type = "Promise<AdoptReport>")]
pub fn baseline<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Baseline, options, on_event)
}

/// Shows (and with `terminate` ends) the holder of the migration lock.
#[napi(ts_return_type = "Promise<UnlockReport>")]
pub fn unlock<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Unlock, options, on_event)
}

/// Records that an applied migration's edit changes no behaviour.
#[napi(ts_return_type = "Promise<AcceptReport>")]
pub fn accept<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Accept, options, on_event)
}

/// What `deploy` would do and the messages it would send; writes nothing.
#[napi(ts_return_type = "Promise<PlanReport>")]
pub fn plan<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Plan, options, on_event)
}

/// Creates the URL's database unless it exists.
#[napi(ts_return_type = "Promise<CreateDatabaseReport>")]
pub fn create_database<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::CreateDatabase, options, on_event)
}

/// Replays the migrations on a scratch database (the host's embedded one).
#[napi(ts_return_type = "Promise<VerifyReport>")]
pub fn verify<'env>(
    env: &'env Env,
    options: NativeOptions,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<PromiseRaw<'env, Value>> {
    run(env, Operation::Verify, options, on_event)
}

/// The next migration file(s) in the folder's convention. Pure; the JS host
/// writes them.
#[napi]
pub fn create(env: &Env, options: CreateOptions) -> Result<CreateResult> {
    let existing: Vec<&str> = options.existing.iter().map(String::as_str).collect();
    let millis = if options.millis.is_finite() && options.millis >= 0.0 {
        options.millis as u64
    } else {
        0
    };
    match tidemark_core::source::create_files(
        &existing,
        &options.name,
        options.reversible.unwrap_or(false),
        (&options.stamp, millis),
    ) {
        Ok((version, files)) => Ok(CreateResult {
            version,
            files: files
                .into_iter()
                .map(|f| CreatedFile {
                    name: f.name,
                    contents: f.contents,
                })
                .collect(),
        }),
        Err(e) => Err(js_error(env, Failure::from(e))),
    }
}
