//! TLS done by the JS host, seen from tokio-postgres: the host already
//! upgraded the socket with `node:tls` and computed the channel-binding
//! data (tls-server-end-point: the hash of the server certificate), so the
//! "handshake" here only wraps the stream and reports that binding. With
//! `sslnegotiation=direct`, tokio-postgres sends no SSLRequest of its own.

use std::future::{ready, Ready};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

use crate::socket::JsSocket;

/// The connector: carries the host's tls-server-end-point hash (unused
/// when the socket is plain: then `sslmode=disable` and it never connects).
#[derive(Debug)]
pub struct HostTls(pub Vec<u8>);

/// The already-encrypted stream.
#[derive(Debug)]
pub struct HostTlsStream(JsSocket, Vec<u8>);

impl TlsConnect<JsSocket> for HostTls {
    type Stream = HostTlsStream;
    type Error = io::Error;
    type Future = Ready<io::Result<HostTlsStream>>;

    fn connect(self, stream: JsSocket) -> Self::Future {
        ready(Ok(HostTlsStream(stream, self.0)))
    }
}

impl TlsStream for HostTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::tls_server_end_point(self.1.clone())
    }
}

impl AsyncRead for HostTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for HostTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
