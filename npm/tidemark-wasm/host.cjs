'use strict';
// The wasm backend's side of the seam: the engine in wasm cannot open
// sockets, so this opens them (node:net), does PostgreSQL's SSLRequest and
// upgrades with node:tls when the URL asks for TLS, computes the channel
// binding for SCRAM-SHA-256-PLUS, and hands the duplex to the engine.
// Connection attempts that can heal (refused, DNS, timeouts) are retried
// with backoff until the connect timeout is spent, as the native addon does.
const net = require('node:net');
const tls = require('node:tls');
const fs = require('node:fs');
const crypto = require('node:crypto');

// int32 length 8, int32 80877103: "please speak TLS".
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

function connectError(info, reason, attempts, elapsedMs) {
  const tries = attempts > 1 ? ` (after ${attempts} attempts over ${elapsedMs} ms)` : '';
  const err = new Error(
    `could not connect to ${info.host}:${info.port} (database ${info.database}, user ${info.user}, sslmode ${info.sslmode})${tries}: ${reason}${hint(reason)}`,
  );
  err.code = 'E_CONNECT';
  return err;
}

/** The same advice the native addon gives for what the URL can fix. */
function hint(reason) {
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames|Hostname\/IP does not match/i.test(reason)) {
    return "; the server's certificate is not valid for this host name: connect with the name the certificate was issued for, or use sslmode=verify-ca to check only the chain";
  }
  if (/self[- ]signed certificate|unable to verify|unable to get (local )?issuer|certificate/i.test(reason) && /TLS/.test(reason)) {
    return "; the server's certificate could not be verified (not signed by a CA tidemark trusts): add sslrootcert=/path/to/ca.pem to the URL, or encrypt without verifying with sslmode=no-verify (or TIDEMARK_TLS_INSECURE=1)";
  }
  return '';
}

/** Which failures are worth another attempt (the engine's url::retryable). */
function retryable(message) {
  return /connection refused|econnrefused|enotfound|eai_again|etimedout|timed out|econnreset|connection reset|could not translate host name|compute node|is starting up|endpoint is disabled/i.test(
    message,
  );
}

/** The engine's url::backoff_ms: 100 ms doubling to 2 s, jittered to 50-100 %. */
function backoffMs(attempt) {
  const base = Math.min(2000, 100 * 2 ** Math.min(attempt - 1, 10));
  return Math.floor(base * (0.5 + 0.5 * Math.random()));
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
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function askForTls(socket) {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('data', (chunk) => {
      socket.removeListener('error', reject);
      resolve(String.fromCharCode(chunk[0]));
    });
    socket.write(SSL_REQUEST);
  });
}

function readPem(file) {
  return fs.readFileSync(file);
}

function upgrade(socket, info) {
  return new Promise((resolve, reject) => {
    const verify = info.tls === 'verify-ca' || info.tls === 'verify-full';
    const options = {
      socket,
      // SNI: poolers such as Neon's route by it (never sent for addresses).
      servername: net.isIP(info.host) ? undefined : info.host,
      rejectUnauthorized: verify,
      // The name verify-full checks: the URL's host, address or not (left
      // unset, Node would check "localhost").
      checkServerIdentity: (_, cert) => {
        const err = tls.checkServerIdentity(info.host, cert);
        if (err) err.message += ` (the certificate is for ${cert.subjectaltname || cert.subject?.CN || 'no name'})`;
        return err;
      },
    };
    if (verify) {
      const ca = [...tls.rootCertificates];
      if (process.env.SSL_CERT_FILE && fs.existsSync(process.env.SSL_CERT_FILE)) ca.push(readPem(process.env.SSL_CERT_FILE));
      if (info.rootCert) ca.push(readPem(info.rootCert));
      options.ca = ca;
      // verify-ca checks the chain only, as libpq does.
      if (info.tls === 'verify-ca') options.checkServerIdentity = () => undefined;
    }
    if (info.sslCert) {
      options.cert = readPem(info.sslCert);
      options.key = readPem(info.sslKey);
    }
    const secure = tls.connect(options);
    secure.once('secureConnect', () => {
      secure.removeAllListeners('error');
      resolve(secure);
    });
    secure.once('error', (e) => reject(new Error(`TLS: ${e.message}${e.code ? ` (${e.code})` : ''}`)));
  });
}

// Signature algorithms whose hash is not SHA-256, as DER-encoded OIDs.
const SHA384_OIDS = ['2a864886f70d01010c', '2a8648ce3d040303'].map((h) => Buffer.from(h, 'hex'));
const SHA512_OIDS = ['2a864886f70d01010d', '2a8648ce3d040304'].map((h) => Buffer.from(h, 'hex'));

/**
 * tls-server-end-point channel binding (RFC 5929): the server certificate
 * hashed with its signature's hash, SHA-256 for MD5/SHA-1/SHA-256. The
 * certificate's own signature algorithm is the last one in its DER.
 */
function tlsServerEndPoint(secure) {
  const der = secure.getPeerCertificate(false)?.raw;
  if (!der) return undefined;
  const last = (oids) => Math.max(...oids.map((oid) => der.lastIndexOf(oid)));
  const at384 = last(SHA384_OIDS);
  const at512 = last(SHA512_OIDS);
  const algorithm = at384 < 0 && at512 < 0 ? 'sha256' : at384 > at512 ? 'sha384' : 'sha512';
  return crypto.createHash(algorithm).update(der).digest();
}

async function openOnce(info, timeoutMs) {
  const started = Date.now();
  const socket = await connectTcp(info, timeoutMs);
  if (info.tls === 'disable' || info.host.startsWith('/')) return { socket };
  // The TLS negotiation counts against the same budget: a server that
  // accepts and never answers must not hang a deploy.
  const left = Math.max(100, timeoutMs - (Date.now() - started));
  socket.setTimeout(left, () => socket.destroy(new Error(`timed out after ${timeoutMs} ms waiting for the server to answer`)));
  let answer;
  try {
    answer = await askForTls(socket);
    if (answer === 'S') {
      const secure = await upgrade(socket, info);
      return { socket: secure, tlsServerEndPoint: tlsServerEndPoint(secure) };
    }
  } finally {
    socket.setTimeout(0);
  }
  if (info.tls === 'prefer') return { socket };
  socket.destroy();
  const err = new Error(`the server does not accept TLS connections, and sslmode=${info.sslmode} requires it`);
  err.final = true;
  throw err;
}

/**
 * Opens the connection `info` (from the engine's parseUrl) describes,
 * retrying what can heal within `timeoutMs`. Resolves with `{ socket,
 * tlsServerEndPoint }`; `onRetry(attempt, message, delayMs)` hears each retry.
 */
async function openSocket(info, timeoutMs, onRetry = () => {}) {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const left = Math.max(100, timeoutMs - (Date.now() - started));
    try {
      return await openOnce(info, left);
    } catch (e) {
      const elapsed = Date.now() - started;
      // The last wait is cut to what is left, so the final attempt lands at
      // the deadline.
      const delay = Math.min(backoffMs(attempt), Math.max(0, timeoutMs - elapsed));
      if (e.final || !retryable(e.message) || elapsed + 10 >= timeoutMs) {
        throw connectError(info, e.message, attempt, elapsed);
      }
      onRetry(attempt, e.message, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Bounds the PostgreSQL startup and authentication that follow the socket
 * by what is left of the connect timeout: a server that accepts and never
 * answers must not hang a deploy. Returns the function that lifts the
 * bound once the engine says it is connected.
 */
function guardStartup(socket, ms) {
  socket.setTimeout(Math.max(100, ms), () => socket.destroy(new Error(`timed out after ${ms} ms waiting for the server to answer`)));
  return () => socket.setTimeout(0);
}

module.exports = { openSocket, guardStartup, retryable, backoffMs };
