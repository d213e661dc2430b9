//! tidemark's Node native addon. Conversion only (style rule 9): the
//! request in (the core's serde struct), connect, call the core's
//! `execute`, the report or the core's error shape out.

// napi's macros generate the registration code with `unsafe`; this crate's
// own code has none.
#![allow(unsafe_code)]

mod connect;

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use tidemark_core::{Operation, Request};

/// The event callback: weak, so a stored callback never keeps Node alive.
type EventFn = ThreadsafeFunction<Value, (), Value, Status, false, true>;

/// The host's script seed runner: called with the seed due
/// (`{ name, file, checksum }`), it resolves with how long the script ran,
/// in ms. Not weak: the call waits on it.
type ScriptFn = ThreadsafeFunction<Value, Promise<f64>, Value, Status, false>;

/// Runs script seeds through the JS runner (see `tidemark_core::Scripts`).
struct JsScripts(ScriptFn);

impl tidemark_core::Scripts for JsScripts {
    async fn run(&self, due: tidemark_core::ScriptSeed) -> tidemark_core::Result<u64> {
        let failed = |e: Error| tidemark_core::Error::script_failed(e.reason);
        let ms = self
            .0
            .call_async(to_json(&due))
            .await
            .map_err(failed)?
            .await
            .map_err(failed)?;
        Ok(tidemark_core::ScriptSeed::host_duration(ms))
    }
}

/// Forwards core events to the JS callback.
struct JsReporter(Option<EventFn>);

impl tidemark_core::Reporter for JsReporter {
    fn report(&self, event: tidemark_core::Event) {
        if let (Some(f), Ok(value)) = (&self.0, serde_json::to_value(&event)) {
            f.call(value, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// The JS error: an `Error` with the message and every other key of the
/// core's error shape (`code`, `file`, `folder`, `line`, ...).
fn js_error(env: &Env, e: &tidemark_core::Error) -> Error {
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, e.message()))?;
        if let Ok(Value::Object(map)) = serde_json::to_value(e) {
            for (k, v) in map {
                if k != "message" {
                    obj.set_named_property(&k, v)?;
                }
            }
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `op` and the request, as the core reads them.
fn request(env: &Env, op: &str, request: Object<'_>) -> Result<(Operation, Request)> {
    let parsed = serde_json::from_value(Value::String(op.into()))
        .map_err(tidemark_core::Error::invalid_request)
        .and_then(|op| {
            env.from_js_value(request)
                .map(|r| (op, r))
                .map_err(|e| tidemark_core::Error::invalid_request(e.reason))
        });
    parsed.map_err(|e| js_error(env, &e))
}

/// The addon's version; the JS loader checks it matches the package.
#[napi]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The defaults of the request's keys, from the core.
#[napi]
pub fn defaults() -> Value {
    to_json(&tidemark_core::defaults())
}

/// What a database URL says, from the one parser both backends use; never
/// throws.
#[napi(js_name = "inspectUrl")]
pub fn inspect_url(url: String) -> Value {
    to_json(&tidemark_core::url::inspect(&url))
}

/// `text` with every secret of `url` masked.
#[napi(js_name = "redactText")]
pub fn redact_text(text: String, url: String) -> String {
    tidemark_core::url::redact_text(&text, &url)
}

/// What the host calls before it reads a file or connects: throws what
/// `op` refuses (production seeds/reset, a URL that cannot be used) and
/// reports `connecting` (see `Request::begin`).
#[napi]
pub fn begin(
    env: &Env,
    op: String,
    options: Object<'_>,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<()> {
    let (op, request) = request(env, &op, options)?;
    let report = |event: tidemark_core::Event| {
        if let (Some(f), Ok(value)) = (&on_event, serde_json::to_value(&event)) {
            let _ = f.call(value);
        }
    };
    request.begin(op, &report).map_err(|e| js_error(env, &e))
}

fn event_fn(on_event: Option<Function<'_, Value, ()>>) -> Result<Option<EventFn>> {
    on_event
        .map(|f| {
            f.build_threadsafe_function::<Value>()
                .callee_handled::<false>()
                .weak::<true>()
                .build()
        })
        .transpose()
}

/// The connection, and the first read made on it while the host read the files.
type Early = (connect::Connected, Option<tidemark_core::ReadAhead>);
type Connecting = tokio::sync::oneshot::Receiver<tidemark_core::Result<Early>>;

/// A connection being set up for a later `execute` (see [`connect`]).
#[napi]
pub struct Dialing {
    connecting: Option<Connecting>,
    task: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for Dialing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialing")
            .field("pending", &self.connecting.is_some())
            .finish()
    }
}

#[napi]
impl Dialing {
    /// Gives the connection up when `execute` will not take it (the host
    /// failed to read the files): stops the attempt, or closes the session.
    #[napi]
    pub fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.connecting = None;
    }
}

/// Starts connecting for `op` (the same checks, target and events as
/// `execute`), so that the host reads the files while the server sets up
/// the session (issue 15); `execute` then takes the connection. Once
/// connected, `deploy`, `migrate` and `status` also send their first read
/// (tracking rows, no lock, no write: `tidemark_core::read_ahead`), so the
/// server answers it meanwhile too; nothing else is sent.
#[napi]
pub fn connect(
    env: &Env,
    op: String,
    options: Object<'_>,
    on_event: Option<Function<'_, Value, ()>>,
) -> Result<Dialing> {
    let (op, mut request) = request(env, &op, options)?;
    request.check(op).map_err(|e| js_error(env, &e))?;
    let target = request
        .target(op)
        .map_err(|e| js_error(env, &tidemark_core::Error::from(e)))?;
    let reporter = JsReporter(event_fn(on_event)?);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = napi::bindgen_prelude::spawn(async move {
        let early = match connect::connect(target, &reporter).await {
            Ok(connected) => {
                let ahead = tidemark_core::read_ahead(&connected.client, op, &request).await;
                Ok((connected, ahead))
            }
            Err(e) => Err(tidemark_core::Error::from(e)),
        };
        let _ = tx.send(early);
    });
    Ok(Dialing {
        connecting: Some(rx),
        task: Some(task.abort_handle()),
    })
}

/// Runs one operation: connect (or take the connection `dialing` set up),
/// `execute`, close; resolves with its report. `run_script` runs the script
/// seeds due (see `ScriptFn`). Panics become an `E_PANIC` error instead of
/// killing Node.
#[napi]
pub fn execute<'env>(
    env: &'env Env,
    op: String,
    options: Object<'_>,
    on_event: Option<Function<'_, Value, ()>>,
    dialing: Option<&mut Dialing>,
    run_script: Option<Function<'_, Value, Promise<f64>>>,
) -> Result<PromiseRaw<'env, Value>> {
    // The file bytes are copied out of JS memory here, on the JS thread.
    let (op, mut request) = request(env, &op, options)?;
    let callback = event_fn(on_event)?;
    let scripts = run_script
        .map(|f| {
            f.build_threadsafe_function::<Value>()
                .callee_handled::<false>()
                .build()
                .map(JsScripts)
        })
        .transpose()?;
    let early = dialing.and_then(|d| {
        d.task = None;
        d.connecting.take()
    });
    let fut = async move {
        let reporter = JsReporter(callback);
        let outcome = AssertUnwindSafe(async {
            request.check(op)?;
            // Also when `connect` dialed: `target` completes the request
            // (db create's database name).
            let dial = request.target(op)?;
            // The files are checked and hashed while the connection set up
            // early is still on its way (the outcome is taken in place).
            let loaded = early
                .is_some()
                .then(|| tidemark_core::load_ahead(op, &request))
                .flatten();
            let (connected, ahead) = match early {
                Some(rx) => rx.await.map_err(|_| {
                    tidemark_core::Error::panic("the connection set up for this call was lost")
                })??,
                None => (connect::connect(dial, &reporter).await?, None),
            };
            let result = tidemark_core::execute_after(
                &connected.client,
                op,
                request,
                &reporter,
                ahead,
                loaded,
                &scripts,
            )
            .await;
            connected.close().await;
            result.map(|outcome| to_json(&outcome))
        })
        .catch_unwind()
        .await;
        Ok(outcome.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(tidemark_core::Error::panic(&what))
        }))
    };
    env.spawn_future_with_callback(fut, |env, outcome| match outcome {
        Ok(value) => Ok(value),
        Err(e) => Err(js_error(env, &e)),
    })
}

/// Reads each file of `paths` whole, in order: `null` for one that could not
/// be read, which the host then reads itself for its error. A plain read
/// with no rules of its own (which files, and what a failure says, are
/// `lib/run.cjs`'s): one call instead of hundreds of `fs.readFileSync`
/// (start-up, issue 15).
#[napi]
pub fn read_files(paths: Vec<String>) -> Vec<Option<Buffer>> {
    paths
        .iter()
        .map(|path| std::fs::read(path).ok().map(Buffer::from))
        .collect()
}

/// The next migration file(s) in the folder's convention. Pure; the JS host
/// writes them.
#[napi]
pub fn create(env: &Env, options: Object<'_>) -> Result<Value> {
    let request: tidemark_core::source::CreateRequest = env
        .from_js_value(options)
        .map_err(|e| js_error(env, &tidemark_core::Error::invalid_request(e.reason)))?;
    tidemark_core::source::create(&request)
        .map(|created| to_json(&created))
        .map_err(|e| js_error(env, &e))
}
