'use strict';
// The wasm backend's side of the seam: the engine in wasm cannot open
// sockets, so this opens them (node:net), does PostgreSQL's SSLRequest and
// upgrades with node:tls when the URL asks for TLS, and hands the duplex to
// the engine.
const net = require('node:net');
const tls = require('node:tls');
const fs = require('node:fs');

// int32 length 8, int32 80877103: "please speak TLS".
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

function connectError(info, reason) {
  const err = new Error(
    `could not connect to ${info.host}:${info.port} (database ${info.database}, user ${info.user}, sslmode ${info.sslmode}): ${reason}`,
  );
  err.code = 'E_CONNECT';
  return err;
}

function connectTcp(info, timeoutMs) {
  return new Promise((resolve, reject) => {
    const target = info.host.startsWith('/')
      ? { path: `${info.host}/.s.PGSQL.${info.port}` }
      : { host: info.host, port: info.port };
    const socket = net.connect(target);
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(connectError(info, `timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(connectError(info, e.message));
    });
  });
}

function askForTls(socket, info) {
  return new Promise((resolve, reject) => {
    const onError = (e) => reject(connectError(info, e.message));
    socket.once('error', onError);
    socket.once('data', (chunk) => {
      socket.removeListener('error', onError);
      resolve(String.fromCharCode(chunk[0]));
    });
    socket.write(SSL_REQUEST);
  });
}

function upgrade(socket, info) {
  return new Promise((resolve, reject) => {
    const options = {
      socket,
      // SNI: poolers such as Neon's route by it.
      servername: net.isIP(info.host) ? undefined : info.host,
      rejectUnauthorized: info.tls === 'verify',
    };
    if (info.tls === 'verify' && info.rootCert) {
      options.ca = [...tls.rootCertificates, fs.readFileSync(info.rootCert)];
    }
    const secure = tls.connect(options);
    secure.once('secureConnect', () => {
      secure.removeAllListeners('error');
      resolve(secure);
    });
    secure.once('error', (e) => reject(connectError(info, `TLS: ${e.message}`)));
  });
}

/**
 * Opens the connection `info` (from the engine's parseUrl) describes and
 * returns the duplex the engine speaks the protocol over.
 */
async function openSocket(info, timeoutMs) {
  const socket = await connectTcp(info, timeoutMs);
  if (info.tls === 'disable' || info.host.startsWith('/')) return socket;
  const answer = await askForTls(socket, info);
  if (answer === 'S') return upgrade(socket, info);
  if (info.tls === 'prefer') return socket;
  socket.destroy();
  throw connectError(info, `the server does not accept TLS connections, and sslmode=${info.sslmode} requires it`);
}

module.exports = { openSocket };
