//! `JsSocket`: tokio `AsyncRead + AsyncWrite` over a Node duplex (a
//! `net.Socket`, a `tls.TLSSocket`, or PGlite's in-process duplex) that the
//! JS host opened. Bytes are copied at the boundary in both directions, a
//! write that Node buffers waits for `drain`, and EOF and socket errors
//! reach tokio-postgres as I/O errors.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::Uint8Array;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The part of Node's `stream.Duplex` the bridge uses.
    #[derive(Debug, Clone)]
    pub type Duplex;

    #[wasm_bindgen(method)]
    fn write(this: &Duplex, chunk: &Uint8Array) -> bool;

    #[wasm_bindgen(method)]
    fn on(this: &Duplex, event: &str, listener: &JsValue);

    #[wasm_bindgen(method)]
    fn end(this: &Duplex);

    #[wasm_bindgen(method)]
    fn destroy(this: &Duplex);
}

#[derive(Debug, Default)]
struct State {
    incoming: VecDeque<u8>,
    eof: bool,
    error: Option<String>,
    read_waker: Option<Waker>,
    /// Node returned false from `write`: wait for `drain`.
    draining: bool,
    write_waker: Option<Waker>,
}

impl State {
    fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

/// The bridge. Listeners are owned by the JS GC (`into_js_value`), so a
/// socket event that fires after the bridge is dropped never calls a freed
/// closure: it only touches the shared state, which the listener keeps alive.
#[derive(Debug)]
pub struct JsSocket {
    duplex: Duplex,
    state: Rc<RefCell<State>>,
}

impl JsSocket {
    pub fn new(duplex: Duplex) -> JsSocket {
        let state = Rc::new(RefCell::new(State::default()));
        let s = state.clone();
        let on_data = Closure::<dyn FnMut(Uint8Array)>::new(move |chunk: Uint8Array| {
            // Copy out of the JS buffer (Node may reuse it).
            let bytes = chunk.to_vec();
            let mut st = s.borrow_mut();
            st.incoming.extend(bytes);
            if let Some(w) = st.read_waker.take() {
                w.wake();
            }
        });
        duplex.on("data", &on_data.into_js_value());
        let s = state.clone();
        let on_end = Closure::<dyn FnMut()>::new(move || {
            let mut st = s.borrow_mut();
            st.eof = true;
            st.wake_all();
        });
        let on_end = on_end.into_js_value();
        duplex.on("end", &on_end);
        duplex.on("close", &on_end);
        let s = state.clone();
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |err: JsValue| {
            let message = js_sys::Reflect::get(&err, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_else(|| "socket error".into());
            let mut st = s.borrow_mut();
            st.error = Some(message);
            st.wake_all();
        });
        duplex.on("error", &on_error.into_js_value());
        let s = state.clone();
        let on_drain = Closure::<dyn FnMut()>::new(move || {
            let mut st = s.borrow_mut();
            st.draining = false;
            if let Some(w) = st.write_waker.take() {
                w.wake();
            }
        });
        duplex.on("drain", &on_drain.into_js_value());
        JsSocket { duplex, state }
    }

    fn failure(&self) -> Option<io::Error> {
        let st = self.state.borrow();
        st.error
            .as_ref()
            .map(|e| io::Error::new(io::ErrorKind::ConnectionReset, e.clone()))
    }
}

impl Drop for JsSocket {
    fn drop(&mut self) {
        self.duplex.destroy();
    }
}

impl AsyncRead for JsSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = self.state.borrow_mut();
        if !st.incoming.is_empty() {
            let n = buf.remaining().min(st.incoming.len());
            let (a, b) = st.incoming.as_slices();
            let from_a = n.min(a.len());
            buf.put_slice(&a[..from_a]);
            buf.put_slice(&b[..n - from_a]);
            st.incoming.drain(..n);
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = &st.error {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                e.clone(),
            )));
        }
        if st.eof {
            // Ready with nothing read: end of stream.
            return Poll::Ready(Ok(()));
        }
        st.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for JsSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.failure() {
            return Poll::Ready(Err(e));
        }
        let mut st = self.state.borrow_mut();
        if st.eof {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the server closed the connection",
            )));
        }
        if st.draining {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        drop(st);
        // A copy: Node may hold the chunk after this call returns, and wasm
        // memory can move when it grows.
        let chunk = Uint8Array::from(buf);
        if !self.duplex.write(&chunk) {
            self.state.borrow_mut().draining = true;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.failure() {
            return Poll::Ready(Err(e));
        }
        let mut st = self.state.borrow_mut();
        if st.draining && !st.eof {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.duplex.end();
        Poll::Ready(Ok(()))
    }
}
