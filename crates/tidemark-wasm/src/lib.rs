//! tidemark's WebAssembly build: the same engine as the native addon, with
//! the socket (and TLS) opened by the JS host, one per connection attempt.
//! Conversion only (style rule 9): the exports take the same options and
//! return the same reports and errors as the napi addon.
//!
//! Built twice (scripts/build-wasm.sh): with the `full` feature, every
//! operation; without it, the deploy path within its size budget, which
//! answers `E_WASM_FULL_MODULE` for the rest before doing anything.

mod dial;
mod socket;
mod tls;

use js_sys::{Function, Reflect};
use serde::{Deserialize, Serialize};
use tidemark_core::url::{connect_budget, ConnectError, Endpoint};
use tidemark_core::Operation;
use wasm_bindgen::prelude::*;

pub use socket::{Duplex, JsSocket};

/// One file the JS host read.
#[derive(Debug, Deserialize)]
struct HostFile {
    name: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
}

/// The options of every operation: the same keys as the native addon's.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct HostOptions {
    url: String,
    migrations: Vec<HostFile>,
    seeds: Vec<HostFile>,
    schema: Option<String>,
    table: Option<String>,
    seeds_table: Option<String>,
    lock_wait_timeout_ms: Option<u64>,
    lock_timeout_ms: Option<u64>,
    statement_timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    allow_drift: bool,
    allow_missing: bool,
    allow_out_of_order: bool,
    to: Option<String>,
    steps: Option<usize>,
    environment: Option<String>,
    production: bool,
    allow_production: bool,
    force: bool,
    application_name: Option<String>,
    tls_insecure: bool,
    pool_safe: bool,
    /// `unlock --terminate`, and the holder the user confirmed.
    terminate: bool,
    pid: Option<u32>,
    /// `seed --only <name>`.
    only: Option<String>,
    /// `accept <version> --reason`, and who accepts (the OS user).
    version: Option<String>,
    reason: Option<String>,
    accepted_by: Option<String>,
    /// `adopt --from`.
    from: Option<String>,
    /// `adopt --dry-run`, `baseline --dry-run`.
    dry_run: bool,
    /// The operating system's user name: libpq's (and the native addon's)
    /// user when the URL names none.
    os_user: Option<String>,
}

impl HostOptions {
    fn options(&self) -> tidemark_core::Options {
        let d = tidemark_core::Options::default();
        tidemark_core::Options {
            schema: self.schema.clone().unwrap_or(d.schema),
            table: self.table.clone().unwrap_or(d.table),
            seeds_table: self.seeds_table.clone().unwrap_or(d.seeds_table),
            lock_wait_timeout_ms: self.lock_wait_timeout_ms.unwrap_or(d.lock_wait_timeout_ms),
            lock_timeout_ms: self.lock_timeout_ms,
            statement_timeout_ms: self.statement_timeout_ms,
            max_message_bytes: d.max_message_bytes,
            pool_safe: self.pool_safe,
            policy: tidemark_core::Policy {
                allow_drift: self.allow_drift,
                allow_missing: self.allow_missing,
                allow_out_of_order: self.allow_out_of_order,
            },
        }
    }

    fn seed_options(&self) -> tidemark_core::SeedOptions {
        tidemark_core::SeedOptions {
            environment: self
                .environment
                .clone()
                .unwrap_or_else(|| "development".into()),
            production: self.production,
            allow_production: self.allow_production,
            force: self.force,
            only: self.only.clone(),
        }
    }
}

fn files(list: Vec<HostFile>) -> Vec<tidemark_core::SourceFile> {
    list.into_iter()
        .map(|f| tidemark_core::SourceFile::new(f.name, f.bytes))
        .collect()
}

/// Reports and events cross to JS as one JSON text that JS parses: built
/// field by field through serde-wasm-bindgen, a 200-row status report took
/// thousands of calls across the boundary.
#[inline(never)]
pub(crate) fn to_js<T: Serialize>(value: &T) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or(JsValue::NULL)
}

/// Forwards core events to the JS callback.
struct JsReporter(Option<Function>);

impl JsReporter {
    fn send(&self, value: &impl Serialize) {
        if let Some(f) = &self.0 {
            let _ = f.call1(&JsValue::NULL, &to_js(value));
        }
    }
}

impl tidemark_core::Reporter for JsReporter {
    fn report(&self, event: tidemark_core::Event) {
        self.send(&event);
    }
}

/// An `Error` with `code` and the location fields, like the native addon's.
fn js_error(code: &str, message: &str) -> js_sys::Error {
    let err = js_sys::Error::new(message);
    let _ = Reflect::set(&err, &"code".into(), &code.into());
    err
}

fn set(err: &js_sys::Error, key: &str, value: Option<JsValue>) {
    if let Some(v) = value {
        let _ = Reflect::set(err, &key.into(), &v);
    }
}

fn core_error(e: &tidemark_core::Error) -> JsValue {
    let err = js_error(e.code(), e.message());
    let text = |v: Option<&str>| v.map(JsValue::from_str);
    set(&err, "file", text(e.file()));
    set(&err, "line", e.line().map(JsValue::from));
    set(&err, "column", e.column().map(JsValue::from));
    set(&err, "sqlState", text(e.sql_state()));
    set(&err, "version", text(e.version()));
    set(&err, "detail", text(e.detail()));
    set(&err, "hint", text(e.hint()));
    set(&err, "applied", Some(to_js(&e.applied())));
    err.into()
}

fn connect_error(e: &ConnectError) -> JsValue {
    let err = js_error(e.code, &e.message);
    set(
        &err,
        "sqlState",
        e.sql_state.as_deref().map(JsValue::from_str),
    );
    err.into()
}

/// What `create` returns.
#[derive(Serialize)]
struct Created {
    version: String,
    files: Vec<tidemark_core::source::NewFile>,
}

/// The version of this build; the JS loader checks it matches the package.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// What a database URL says, from the one parser both backends use:
/// `{ problem, redacted, host, port, database, user, sslmode,
/// poolerReason, applicationName }`; never throws.
#[wasm_bindgen(js_name = inspectUrl)]
pub fn inspect_url(url: &str) -> JsValue {
    to_js(&tidemark_core::url::inspect(url))
}

/// `text` with every secret of `url` masked.
#[wasm_bindgen(js_name = redactText)]
pub fn redact_text(text: &str, url: &str) -> String {
    tidemark_core::url::redact_text(text, url)
}

/// The options, read out of line (a loop over every file; see "Out of line"
/// in tidemark-core's lib.rs).
#[inline(never)]
fn host_options(options: JsValue) -> Result<HostOptions, serde_wasm_bindgen::Error> {
    serde_wasm_bindgen::from_value(options)
}

/// The code with which a lite module declines a call that the full module
/// can make; `npm/tidemark-wasm/index.cjs` then makes it there.
const FULL_MODULE: &str = "E_WASM_FULL_MODULE";

fn full_module_needed(what: &str) -> JsValue {
    js_error(
        FULL_MODULE,
        &format!(
            "this wasm module is built without {what}: use the full module (pkg/tidemark_full)"
        ),
    )
    .into()
}

/// Connects through the host's `dial` (one socket per attempt, see
/// `dial.rs`), runs one operation, closes.
async fn run(
    op: Operation,
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    // A module built without `full` (pkg/tidemark_lite) hands the call to the
    // full module, before anything is read, sent or reported.
    if !op.in_build() {
        return Err(full_module_needed(&format!("{op:?}")));
    }
    let mut o: HostOptions = host_options(options).map_err(|e| {
        JsValue::from(js_error(
            "E_INVALID_OPTION",
            &format!("invalid options: {e}"),
        ))
    })?;
    let reporter = JsReporter(on_event);
    let mut target =
        tidemark_core::url::parse(&o.url, o.tls_insecure).map_err(|e| connect_error(&e))?;
    // SASLprep of a non-ASCII password needs the Unicode tables, which only
    // the full module carries (crates/stringprep-lite).
    if !cfg!(feature = "full")
        && target
            .config
            .get_password()
            .is_some_and(stringprep::needs_tables)
    {
        return Err(full_module_needed("a non-ASCII password"));
    }
    if let Some(name) = &o.application_name {
        target.config.application_name(name);
    }
    // `db create`: the database does not exist yet; ask the server's `postgres` database.
    // Without a database or a user in the URL it is the OS user's name (libpq's default).
    let create_database = (op == Operation::CreateDatabase).then(|| {
        let wanted = tidemark_core::maintenance_target(&mut target);
        match &o.os_user {
            Some(user) if wanted.is_empty() => user.clone(),
            _ => wanted,
        }
    });
    let endpoint = Endpoint::of(&target);
    // Direct sessions get their timeouts in the startup packet; through a
    // pooler they are SET LOCAL per transaction.
    if !o.pool_safe {
        if let Some(options) = tidemark_core::url::startup_options(
            target.config.get_options(),
            o.lock_timeout_ms,
            o.statement_timeout_ms,
        ) {
            target.config.options(options);
        }
    }
    if target.config.get_user().is_none() {
        if let Some(user) = &o.os_user {
            target.config.user(user);
        }
    }
    let budget = connect_budget(o.connect_timeout_ms, &target);
    let mut dialer = dial::WasmDialer::new(dial, &target);
    let (client, closed_rx) = tidemark_core::connect::connect(
        &mut dialer,
        &endpoint,
        budget.as_millis() as u64,
        &reporter,
    )
    .await
    .map_err(|e| connect_error(&e))?;
    let request = tidemark_core::Request {
        options: o.options(),
        seed_options: o.seed_options(),
        to: o.to.take(),
        steps: o.steps,
        from: o.from.take(),
        dry_run: o.dry_run,
        migrations: files(std::mem::take(&mut o.migrations)),
        seeds: files(std::mem::take(&mut o.seeds)),
        unlock: tidemark_core::UnlockOptions {
            terminate: o.terminate,
            pid: o.pid,
        },
        accept: tidemark_core::AcceptOptions {
            version: o.version.take(),
            reason: o.reason.take(),
            by: o.accepted_by.take(),
        },
        create_database,
    };
    // The operation polls in functions of its own, not inlined into this
    // one (see "Out of line" in tidemark-core's lib.rs).
    let result =
        tidemark_core::out_of_line(tidemark_core::execute(&client, op, request, &reporter))
            .await
            .map(|outcome| to_js(&outcome));
    // An explicit close: wait for the connection task, so nothing is left
    // writing to the socket after the call returns.
    drop(client);
    let _ = closed_rx.await;
    result.map_err(|e| core_error(&e))
}

/// Applies pending migrations.
#[wasm_bindgen]
pub async fn migrate(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Migrate, options, dial, on_event).await
}

/// Applies pending migrations with every check strict.
#[wasm_bindgen]
pub async fn deploy(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Deploy, options, dial, on_event).await
}

/// Describes every migration (one read, no lock).
#[wasm_bindgen]
pub async fn status(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Status, options, dial, on_event).await
}

/// Reverts applied migrations.
#[wasm_bindgen]
pub async fn down(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Down, options, dial, on_event).await
}

/// Reverts and re-applies the last migrations.
#[wasm_bindgen]
pub async fn redo(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Redo, options, dial, on_event).await
}

/// Runs the seeds of one environment.
#[wasm_bindgen]
pub async fn seed(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Seed, options, dial, on_event).await
}

/// Development only: drops the schemas, migrates and seeds.
#[wasm_bindgen]
pub async fn reset(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Reset, options, dial, on_event).await
}

/// Records another tool's history as tidemark's, running nothing.
#[wasm_bindgen]
pub async fn adopt(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Adopt, options, dial, on_event).await
}

/// Marks every migration up to a version applied, running nothing.
#[wasm_bindgen]
pub async fn baseline(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Baseline, options, dial, on_event).await
}

/// Shows (and with `terminate` ends) the holder of the migration lock.
#[wasm_bindgen]
pub async fn unlock(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Unlock, options, dial, on_event).await
}

/// Records that an applied migration's edit changes no behaviour.
#[wasm_bindgen]
pub async fn accept(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Accept, options, dial, on_event).await
}

/// What `deploy` would do and the messages it would send; writes nothing.
#[wasm_bindgen]
pub async fn plan(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Plan, options, dial, on_event).await
}

/// Creates the URL's database unless it exists.
#[wasm_bindgen(js_name = createDatabase)]
pub async fn create_database(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::CreateDatabase, options, dial, on_event).await
}

/// Replays the migrations on a scratch database (the host's embedded one).
#[wasm_bindgen]
pub async fn verify(
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<JsValue, JsValue> {
    run(Operation::Verify, options, dial, on_event).await
}

/// The options of `create`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOptions {
    existing: Vec<String>,
    name: String,
    #[serde(default)]
    reversible: bool,
    stamp: String,
    millis: f64,
}

/// The next migration file(s) in the folder's convention. Pure.
#[wasm_bindgen]
pub fn create(options: JsValue) -> Result<JsValue, JsValue> {
    let o: CreateOptions = serde_wasm_bindgen::from_value(options).map_err(|e| {
        JsValue::from(js_error(
            "E_INVALID_OPTION",
            &format!("invalid options: {e}"),
        ))
    })?;
    let existing: Vec<&str> = o.existing.iter().map(String::as_str).collect();
    let millis = if o.millis.is_finite() && o.millis >= 0.0 {
        o.millis as u64
    } else {
        0
    };
    let (version, files) =
        tidemark_core::source::create_files(&existing, &o.name, o.reversible, (&o.stamp, millis))
            .map_err(|e| core_error(&e))?;
    Ok(to_js(&Created { version, files }))
}
