//! tidemark's WebAssembly build: the same engine as the native addon, with
//! the socket (and TLS) opened by the JS host, one per connection attempt.
//! Conversion only (style rule 9): the request in (the core's serde
//! struct), the report or the core's error shape out, like the napi addon.
//!
//! Built twice (scripts/build-wasm.sh): with the `full` feature, every
//! operation; without it, the deploy path within its size budget, which
//! answers `E_WASM_FULL_MODULE` for the rest before doing anything.

mod dial;
mod socket;
mod tls;

use std::future::Future;

use futures_channel::oneshot;
use js_sys::{Function, Reflect};
use serde::Serialize;
use tidemark_core::{Operation, Request};
use wasm_bindgen::prelude::*;

pub use socket::{Duplex, JsSocket};

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

impl tidemark_core::Reporter for JsReporter {
    fn report(&self, event: tidemark_core::Event) {
        if let Some(f) = &self.0 {
            let _ = f.call1(&JsValue::NULL, &to_js(&event));
        }
    }
}

/// Runs script seeds through the host's runner: called with the seed due
/// (`{ name, file, checksum }`), it returns a promise of how long the script
/// ran, in ms (see `tidemark_core::Scripts`).
struct JsScripts(Function);

impl tidemark_core::Scripts for JsScripts {
    async fn run(&self, due: tidemark_core::ScriptSeed) -> tidemark_core::Result<u64> {
        let failed = |e: JsValue| {
            tidemark_core::Error::script_failed(
                e.dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
                    .unwrap_or_else(|| format!("{e:?}")),
            )
        };
        let promise = self.0.call1(&JsValue::NULL, &to_js(&due)).map_err(failed)?;
        let ms = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&promise))
            .await
            .map_err(failed)?;
        Ok(tidemark_core::ScriptSeed::host_duration(
            ms.as_f64().unwrap_or_default(),
        ))
    }
}

/// The JS error: an `Error` with the message and every other key of the
/// core's error shape (`code`, `file`, `folder`, `line`, ...).
fn js_error(e: &tidemark_core::Error) -> JsValue {
    let err = js_sys::Error::new(e.message());
    let shape = to_js(e);
    if let Some(entries) = js_sys::Object::try_from(&shape).map(js_sys::Object::entries) {
        for entry in entries.iter() {
            let (key, value) = (Reflect::get_u32(&entry, 0), Reflect::get_u32(&entry, 1));
            if let (Ok(key), Ok(value)) = (key, value) {
                if key.as_string().as_deref() != Some("message") {
                    let _ = Reflect::set(&err, &key, &value);
                }
            }
        }
    }
    err.into()
}

/// `op` and the request, as the core reads them. The files cross apart from
/// the other keys: their names as one text (`names`, each followed by a NUL,
/// which no file name contains), their bytes in one buffer (`files`; in
/// order: the migrations, then the seeds) and their lengths (`sizes`); the
/// request's own `migrations` holds how many of them are migrations.
/// `npm/tidemark-wasm/index.cjs` packs them. Three crossings instead of
/// several per file: 9 ms of a 200-migration no-op deploy (issue 15). Out of
/// line (a loop over every file; see "Out of line" in tidemark-core's
/// lib.rs).
#[inline(never)]
fn request(op: &str, options: JsValue, files: Files) -> Result<(Operation, Request), JsValue> {
    let invalid = |e: &dyn std::fmt::Display| js_error(&tidemark_core::Error::invalid_request(e));
    let op = serde_wasm_bindgen::from_value(JsValue::from_str(op)).map_err(|e| invalid(&e))?;
    let mut request: Request = serde_wasm_bindgen::from_value(options).map_err(|e| invalid(&e))?;
    let Files {
        names,
        bytes,
        sizes,
        migrations,
    } = files;
    let mut names = names.split_terminator('\0');
    let mut at = 0usize;
    let mut list = Vec::with_capacity(sizes.len());
    for size in sizes {
        let end = at
            .checked_add(size as usize)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| invalid(&"the file bytes are shorter than their lengths"))?;
        let name = names.next().ok_or_else(|| invalid(&"a file has no name"))?;
        list.push(tidemark_core::source::SourceFile::new(
            name,
            bytes[at..end].to_vec(),
        ));
        at = end;
    }
    if at != bytes.len() || names.next().is_some() || migrations > list.len() {
        return Err(invalid(&"the files do not add up"));
    }
    request.seeds = list.split_off(migrations);
    request.migrations = list;
    Ok((op, request))
}

/// The files of a request, packed by `index.cjs` (see [`request`]).
#[derive(Default)]
struct Files {
    names: String,
    bytes: Vec<u8>,
    sizes: Vec<u32>,
    migrations: usize,
}

/// The code with which a lite module declines a call that the full module
/// can make; `npm/tidemark-wasm/index.cjs` then makes it there.
const FULL_MODULE: &str = "E_WASM_FULL_MODULE";

fn full_module_needed(what: &str) -> JsValue {
    let err = js_sys::Error::new(&format!(
        "this wasm module is built without {what}: use the full module (pkg/tidemark_full)"
    ));
    let _ = Reflect::set(&err, &"code".into(), &FULL_MODULE.into());
    err.into()
}

/// The version of this build; the JS loader checks it matches the package.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The defaults of the request's keys, from the core.
#[wasm_bindgen]
pub fn defaults() -> JsValue {
    to_js(&tidemark_core::defaults())
}

/// What a database URL says, from the one parser both backends use; never
/// throws.
#[wasm_bindgen(js_name = inspectUrl)]
pub fn inspect_url(url: &str) -> JsValue {
    to_js(&tidemark_core::url::inspect(url))
}

/// `text` with every secret of `url` masked.
#[wasm_bindgen(js_name = redactText)]
pub fn redact_text(text: &str, url: &str) -> String {
    tidemark_core::url::redact_text(text, url)
}

/// What the host calls before it reads a file or connects: throws what
/// `op` refuses (production seeds/reset, a URL that cannot be used) and
/// reports `connecting` (see `Request::begin`).
#[wasm_bindgen]
pub fn begin(op: &str, options: JsValue, on_event: Option<Function>) -> Result<(), JsValue> {
    let (op, request) = request(op, options, Files::default())?;
    request
        .begin(op, &JsReporter(on_event))
        .map_err(|e| js_error(&e))
}

/// SASLprep of a non-ASCII password needs the Unicode tables, which only
/// the full module carries (crates/stringprep-lite).
fn needs_full_module(to: &tidemark_core::Dial) -> bool {
    !cfg!(feature = "full")
        && to
            .target
            .config
            .get_password()
            .is_some_and(stringprep::needs_tables)
}

/// The session a [`connect`] set up, and the first read made on it.
type Early = (dial::Session, Option<tidemark_core::ReadAhead>);

/// A connection being set up for a later [`execute`] (see [`connect`]).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Dialing {
    early: Option<oneshot::Receiver<tidemark_core::Result<Early>>>,
    /// Dropped to stop the connecting task (see [`Dialing::close`]).
    stop: Option<oneshot::Sender<()>>,
}

#[wasm_bindgen]
impl Dialing {
    /// Gives the connection up when `execute` will not take it (the host
    /// failed to read the files): the connecting task stops where it is,
    /// and reports nothing more; a session it had set up is closed. The
    /// host aborts the socket it is opening (npm/tidemark-wasm/index.cjs),
    /// as the native addon aborts its task.
    pub fn close(&mut self) {
        self.stop = None;
        self.early = None;
    }
}

/// Runs `work` until it ends, or until `stop` fires (its sender dropped),
/// whichever is first; `work` is then dropped where it is, with its socket
/// and timers. Checked first: once stopped, `work` never moves on.
async fn unless_stopped<T>(
    work: impl Future<Output = T>,
    mut stop: oneshot::Receiver<()>,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if std::pin::Pin::new(&mut stop).poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Starts connecting for `op` (the same checks, target and events as
/// [`execute`]), as the native addon's `connect` does: the engine's
/// connection loop runs on the JS event loop while the host reads the
/// files (issue 15), and once connected, `deploy`, `migrate` and `status`
/// send their first read (`tidemark_core::read_ahead`: tracking rows, no
/// lock, no write); `execute` then takes the session. `undefined` when this
/// module would hand `op` to the full module (`execute` connects then).
#[wasm_bindgen]
pub fn connect(
    op: &str,
    options: JsValue,
    dial: Function,
    on_event: Option<Function>,
) -> Result<Option<Dialing>, JsValue> {
    let (op, mut request) = request(op, options, Files::default())?;
    if !op.in_build() {
        return Ok(None);
    }
    request.check(op).map_err(|e| js_error(&e))?;
    let to = request
        .target(op)
        .map_err(|e| js_error(&tidemark_core::Error::from(e)))?;
    if needs_full_module(&to) {
        return Ok(None);
    }
    let reporter = JsReporter(on_event);
    let (tx, rx) = oneshot::channel();
    let (stop, stopped) = oneshot::channel();
    wasm_bindgen_futures::spawn_local(async move {
        let work = async {
            let mut dialer = dial::WasmDialer::new(dial, &to.target);
            let session =
                tidemark_core::connect::connect(&mut dialer, &to.endpoint, to.budget_ms, &reporter)
                    .await?;
            let ahead = tidemark_core::read_ahead(&session.0, op, &request).await;
            Ok::<_, tidemark_core::Error>((session, ahead))
        };
        if let Some(early) = unless_stopped(work, stopped).await {
            // Not taken (`execute` failed before taking it): the session
            // is dropped here, which ends it.
            let _ = tx.send(early);
        }
    });
    Ok(Some(Dialing {
        early: Some(rx),
        stop: Some(stop),
    }))
}

/// Runs one operation: connects through the host's `dial` (one socket per
/// attempt, see `dial.rs`), or takes the session `dialing` set up,
/// `execute`s, closes; resolves with its report. `run_script` runs the
/// script seeds due (see `JsScripts`).
// The files cross as four arguments (see `request`), each one crossing.
#[allow(clippy::too_many_arguments)]
#[wasm_bindgen]
pub async fn execute(
    op: String,
    options: JsValue,
    names: String,
    files: Vec<u8>,
    sizes: Vec<u32>,
    migrations: usize,
    dial: Function,
    on_event: Option<Function>,
    dialing: Option<Dialing>,
    run_script: Option<Function>,
) -> Result<JsValue, JsValue> {
    let files = Files {
        names,
        bytes: files,
        sizes,
        migrations,
    };
    let (op, mut request) = request(&op, options, files)?;
    // A module built without `full` (pkg/tidemark_lite) hands the call to the
    // full module, before anything is sent or reported.
    if !op.in_build() {
        return Err(full_module_needed(&format!("{op:?}")));
    }
    let reporter = JsReporter(on_event);
    let scripts = run_script.map(JsScripts);
    // The stop sender is kept until the session is taken: dropping it would
    // stop the connecting task.
    let (early, _keep) = match dialing {
        Some(mut d) => (d.early.take(), d.stop.take()),
        None => (None, None),
    };
    let run = async {
        request.check(op)?;
        // Also when `connect` dialed: `target` completes the request.
        let to = request.target(op)?;
        if needs_full_module(&to) {
            return Ok(None);
        }
        // The files are checked and hashed while the connection set up
        // early is still on its way (the outcome is taken in place).
        let loaded = early
            .is_some()
            .then(|| tidemark_core::load_ahead(op, &request))
            .flatten();
        let ((client, closed_rx), ahead) = match early {
            Some(rx) => rx.await.map_err(|_| {
                tidemark_core::Error::panic("the connection set up for this call was lost")
            })??,
            None => {
                let mut dialer = dial::WasmDialer::new(dial, &to.target);
                let session = tidemark_core::connect::connect(
                    &mut dialer,
                    &to.endpoint,
                    to.budget_ms,
                    &reporter,
                )
                .await?;
                (session, None)
            }
        };
        // The operation polls in functions of its own, not inlined into
        // this one (see "Out of line" in tidemark-core's lib.rs).
        let result = tidemark_core::out_of_line(tidemark_core::execute_after(
            &client, op, request, &reporter, ahead, loaded, &scripts,
        ))
        .await;
        // An explicit close: wait for the connection task, so nothing is
        // left writing to the socket after the call returns.
        drop(client);
        let _ = closed_rx.await;
        result.map(Some)
    };
    match run.await {
        Ok(Some(outcome)) => Ok(to_js(&outcome)),
        Ok(None) => Err(full_module_needed("a non-ASCII password")),
        Err(e) => Err(js_error(&e)),
    }
}

/// The next migration file(s) in the folder's convention. Pure.
#[wasm_bindgen]
pub fn create(options: JsValue) -> Result<JsValue, JsValue> {
    let request: tidemark_core::source::CreateRequest = serde_wasm_bindgen::from_value(options)
        .map_err(|e| js_error(&tidemark_core::Error::invalid_request(e)))?;
    tidemark_core::source::create(&request)
        .map(|created| to_js(&created))
        .map_err(|e| js_error(&e))
}
