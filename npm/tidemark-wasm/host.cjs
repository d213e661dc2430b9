'use strict';
// The wasm backend's sockets. The engine in wasm cannot open them, so for
// each connection attempt it calls dial(target, remainingMs) here: open TCP
// (node:net), set the keepalives, send PostgreSQL's SSLRequest and upgrade
// with node:tls when the URL asks for TLS, and compute the channel binding
// for SCRAM-SHA-256-PLUS. One attempt only: the retries, the connection
// events and the error text are the engine's (tidemark-core connect.rs).
const net = require('node:net');
const fs = require('node:fs');

// node:tls (7 ms to load) and node:crypto only once a server says yes to TLS:
// a local or sslmode=disable deploy never needs them.
let tlsModule;
const tls = () => (tlsModule ??= require('node:tls'));

// int32 length 8, int32 80877103: "please speak TLS".
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/**
 * Resolves with the first `event` of `socket`; rejects when the socket
 * errors, ends or closes first (a server that hangs up at any stage of
 * connecting is a failed attempt, never a promise that does not settle).
 */
function waitFor(socket, event, stage, describe = (e) => e.message) {
  return new Promise((resolve, reject) => {
    if (socket.destroyed || socket.readableEnded) {
      reject(new Error(`the server closed the connection ${stage}`));
      return;
    }
    const done = () => {
      socket.off(event, onEvent);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    const onEvent = (value) => {
      done();
      resolve(value);
    };
    const onError = (e) => {
      done();
      reject(new Error(describe(e)));
    };
    const onEnd = () => {
      done();
      reject(new Error(`the server closed the connection ${stage}`));
    };
    socket.once(event, onEvent);
    socket.once('error', onError);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

function readPem(file) {
  return fs.readFileSync(file);
}

function tlsOptions(socket, target) {
  const verify = target.tls === 'verify-ca' || target.tls === 'verify-full';
  const options = {
    socket,
    // SNI: poolers such as Neon's route by it (never sent for addresses).
    servername: net.isIP(target.host) ? undefined : target.host,
    rejectUnauthorized: verify,
    // The name verify-full checks: the URL's host, address or not (left
    // unset, Node would check "localhost").
    checkServerIdentity: (_, cert) => {
      const err = tls().checkServerIdentity(target.host, cert);
      if (err) err.message += ` (the certificate is for ${cert.subjectaltname || cert.subject?.CN || 'no name'})`;
      return err;
    },
  };
  if (verify) {
    const ca = [...tls().rootCertificates];
    if (process.env.SSL_CERT_FILE && fs.existsSync(process.env.SSL_CERT_FILE)) ca.push(readPem(process.env.SSL_CERT_FILE));
    if (target.rootCert) ca.push(readPem(target.rootCert));
    options.ca = ca;
    // verify-ca checks the chain only, as libpq does.
    if (target.tls === 'verify-ca') options.checkServerIdentity = () => undefined;
  }
  if (target.sslCert) {
    options.cert = readPem(target.sslCert);
    options.key = readPem(target.sslKey);
  }
  return options;
}

/** A TLS failure in words; a hang-up during the handshake says so. */
function tlsFailure(e) {
  if (e.code === 'ECONNRESET') return 'the server closed the connection during the TLS handshake';
  return `TLS: ${e.message}${e.code ? ` (${e.code})` : ''}`;
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
  return require('node:crypto').createHash(algorithm).update(der).digest();
}

/**
 * node:net sets SO_KEEPALIVE and its idle time, but neither the probe count
 * nor TCP_USER_TIMEOUT, so a network that goes silent while a query is in
 * flight (sent data never acknowledged) would only end at the system's
 * retransmission limit (about 15 minutes). This watches the session the way
 * those options would: when nothing has arrived from the server for the
 * keepalive window (idle + interval x count, 60 s by default), it opens a
 * fresh TCP connection to the same server. If that one is answered, the
 * server is there and merely busy (a slow statement is never cut); if it is
 * not answered within tcp_user_timeout (or the probe window), the session is
 * ended with an error, which the engine reports as a lost connection. The
 * probe sends nothing: the server logs an incomplete startup packet.
 */
function watchSilence(raw, socket, target) {
  const k = target.keepalive;
  if (!k || !k.enabled) return () => {};
  const windowMs = k.idleMs + k.intervalMs * k.count;
  const probeMs = Math.max(1000, Math.min(k.userTimeoutMs || windowMs, windowMs));
  let lastRead = raw.bytesRead;
  let quietSince = Date.now();
  let probing = false;
  const tick = setInterval(() => {
    if (socket.destroyed) return clearInterval(tick);
    if (raw.bytesRead !== lastRead) {
      lastRead = raw.bytesRead;
      quietSince = Date.now();
      return;
    }
    if (probing || Date.now() - quietSince < windowMs) return;
    probing = true;
    const probe = net.connect({ host: target.host, port: target.port });
    const done = (alive) => {
      clearTimeout(timer);
      probe.destroy();
      probing = false;
      if (alive) quietSince = Date.now();
      else if (!socket.destroyed) {
        socket.destroy(
          new Error(`the connection went silent: nothing arrived from ${target.host}:${target.port} for ${Math.round((Date.now() - quietSince) / 1000)} s, and a new connection to it was not answered within ${probeMs} ms (keepalives_*/tcp_user_timeout in the URL set these times)`),
        );
      }
    };
    const timer = setTimeout(() => done(false), probeMs);
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
  }, Math.max(250, Math.min(1000, k.intervalMs)));
  tick.unref();
  return () => clearInterval(tick);
}

/**
 * One connection attempt to `target` (from the engine: host, port, tls,
 * sslmode, rootCert, sslCert, sslKey, keepalive) within `remainingMs`,
 * which also bounds the PostgreSQL startup that follows. Resolves with
 * `{ socket, tlsServerEndPoint, connected }`: the engine calls `connected()`
 * once authenticated, which lifts the bound (from then on only the
 * keepalives watch the connection, so a slow statement is never cut).
 * Rejects with the reason in words.
 */
async function dial(target, remainingMs, signal) {
  if (signal?.aborted) throw new Error('the connection was given up');
  const unix = target.host.startsWith('/');
  const raw = net.connect(unix ? { path: `${target.host}/.s.PGSQL.${target.port}` } : { host: target.host, port: target.port });
  // Errors after the first failure (a TLS socket reports a hang-up as 'end'
  // and then 'error') are already accounted for; the engine's bridge adds
  // its own listener once it has the socket.
  const ignore = () => {};
  raw.on('error', ignore);
  let current = raw;
  const timer = setTimeout(() => current.destroy(new Error(`timed out after ${remainingMs} ms`)), Math.max(1, remainingMs));
  const connected = () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', givenUp);
    if (!unix) watchSilence(raw, current, target);
  };
  // `signal` (connect's, in index.cjs): the connection is given up, before
  // or after the socket was handed over, as long as the engine has not
  // called connected().
  const givenUp = () => {
    clearTimeout(timer);
    current.destroy(new Error('the connection was given up'));
    raw.destroy();
  };
  signal?.addEventListener('abort', givenUp, { once: true });
  try {
    await waitFor(raw, 'connect', 'before the connection was established');
    raw.setNoDelay(true);
    if (!unix && target.keepalive) {
      // node:net sets SO_KEEPALIVE and the idle time; the probe interval,
      // the probe count and TCP_USER_TIMEOUT are the system's (see README).
      raw.setKeepAlive(Boolean(target.keepalive.enabled), target.keepalive.idleMs);
    }
    if (target.tls === 'disable' || unix) return { socket: raw, connected };
    const answer = waitFor(raw, 'data', 'before answering the SSL request');
    raw.write(SSL_REQUEST);
    const chunk = await answer;
    if (chunk[0] === 0x53 /* S */) {
      const secure = tls().connect(tlsOptions(raw, target));
      secure.on('error', ignore);
      current = secure;
      await waitFor(secure, 'secureConnect', 'during the TLS handshake', tlsFailure);
      return { socket: secure, tlsServerEndPoint: tlsServerEndPoint(secure), connected };
    }
    if (target.tls === 'prefer') return { socket: raw, connected };
    throw new Error(`the server does not accept TLS connections, and sslmode=${target.sslmode} requires it`);
  } catch (err) {
    clearTimeout(timer);
    signal?.removeEventListener('abort', givenUp);
    current.destroy();
    raw.destroy();
    throw err;
  }
}

module.exports = { dial };
