//! The wasm side of the core's connection loop (`tidemark_core::connect`):
//! each attempt asks the JS host for one socket (`dial(target,
//! remainingMs)`: TCP, and TLS after the SSLRequest answer), then runs
//! PostgreSQL's startup and authentication over it here. Sleeping and the
//! attempt's duration come from JS timers and `Date.now()`.

use futures_channel::oneshot;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use tidemark_core::connect::{AttemptError, Dialer};
use tidemark_core::url::{Endpoint, Keepalive, Target};
use tokio_postgres::config::{SslMode, SslNegotiation};
use tokio_postgres::{Client, Config};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::socket::{Duplex, JsSocket};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A JS timer, cleared when dropped: a sleep given up (the connecting task
/// of a closed `Dialing`) leaves nothing that holds the process open.
struct Timer(JsValue);

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.0);
    }
}

/// What the JS host needs to open the socket: where, how to encrypt, and
/// the keepalive settings.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SocketTarget<'a> {
    host: &'a str,
    port: u16,
    sslmode: &'a str,
    tls: &'a str,
    root_cert: Option<&'a str>,
    ssl_cert: Option<&'a str>,
    ssl_key: Option<&'a str>,
    keepalive: &'a Keepalive,
}

/// A connected client and the receiver that fires when its connection
/// task has ended.
pub type Session = (Client, oneshot::Receiver<()>);

/// One socket per attempt from the JS host's `dial`.
pub struct WasmDialer {
    dial: Function,
    target: JsValue,
    config: Config,
}

impl WasmDialer {
    pub fn new(dial: Function, target: &Target) -> WasmDialer {
        let endpoint = Endpoint::of(target);
        let info = SocketTarget {
            host: &endpoint.host,
            port: endpoint.port,
            sslmode: &target.sslmode,
            tls: target.tls.name(),
            root_cert: target.root_cert.as_deref(),
            ssl_cert: target.client_cert.as_ref().map(|(c, _)| c.as_str()),
            ssl_key: target.client_cert.as_ref().map(|(_, k)| k.as_str()),
            keepalive: &target.keepalive,
        };
        WasmDialer {
            dial,
            target: crate::to_js(&info),
            config: target.config.clone(),
        }
    }

    async fn attempt(&self, remaining_ms: u64) -> Result<Session, AttemptError> {
        let opened = self
            .dial
            .call2(
                &JsValue::NULL,
                &self.target,
                &JsValue::from_f64(remaining_ms as f64),
            )
            .map_err(|e| js_failure(&e))?;
        let opened = JsFuture::from(Promise::resolve(&opened))
            .await
            .map_err(|e| js_failure(&e))?;
        let field = |name: &str| {
            Reflect::get(&opened, &JsValue::from_str(name))
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        let socket: Duplex = field("socket")
            .ok_or_else(|| AttemptError {
                message: "the host's dial() returned no socket".into(),
                sql_state: None,
            })?
            .unchecked_into();
        let binding = field("tlsServerEndPoint").map(|v| Uint8Array::new(&v).to_vec());
        let ready = field("connected").and_then(|v| v.dyn_into::<Function>().ok());
        let mut config = self.config.clone();
        // TLS, if any, was done by the host before handing over the socket.
        // One connector type for both cases keeps one copy of the
        // connection code in the .wasm.
        if binding.is_some() {
            config.ssl_mode(SslMode::Require);
            config.ssl_negotiation(SslNegotiation::Direct);
        } else {
            config.ssl_mode(SslMode::Disable);
        }
        let (client, connection) = config
            .connect_raw(
                JsSocket::new(socket),
                crate::tls::HostTls(binding.unwrap_or_default()),
            )
            .await
            .map_err(|e| AttemptError::of(&e))?;
        let (closed_tx, closed_rx) = oneshot::channel::<()>();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = connection.await;
            let _ = closed_tx.send(());
        });
        // Lifts the host's bound on the startup: from here on, only the
        // keepalives watch the connection (a slow statement is not cut).
        if let Some(f) = ready {
            let _ = f.call0(&JsValue::NULL);
        }
        Ok((client, closed_rx))
    }
}

/// The message of whatever the host's `dial` threw.
fn js_failure(e: &JsValue) -> AttemptError {
    let message = Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the socket could not be opened".into());
    AttemptError {
        message,
        sql_state: None,
    }
}

impl Dialer for WasmDialer {
    type Connection = Session;

    async fn dial(&mut self, remaining_ms: u64) -> (Result<Session, AttemptError>, u64) {
        let started = js_sys::Date::now();
        let outcome = self.attempt(remaining_ms).await;
        (outcome, (js_sys::Date::now() - started).max(0.0) as u64)
    }

    async fn sleep(&mut self, ms: u64) {
        let mut timer = Timer(JsValue::UNDEFINED);
        let wait = Promise::new(&mut |resolve, _| {
            timer.0 = set_timeout(&resolve, ms as f64);
        });
        let _ = JsFuture::from(wait).await;
        drop(timer);
    }

    fn jitter(&mut self) -> f64 {
        js_sys::Math::random()
    }
}
