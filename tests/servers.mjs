// Server fixtures for the production-connection tests: throwaway PostgreSQL
// servers (TLS, SCRAM, client certificates), certificates made with the
// openssl CLI, and PgBouncer in transaction mode. Each test file starts what
// it needs once (module-level before/after) and everything is stopped and
// removed at the end, also when the process dies early.
//
// Needs: PostgreSQL's server binaries (initdb, pg_ctl, postgres; found in
// $TIDEMARK_PG_BIN, `pg_config --bindir`, or the newest
// /usr/lib/postgresql/<n>/bin), psql, openssl and (for the pooler tests)
// pgbouncer. When tests run as root, the servers run as the `postgres` OS
// user (initdb refuses root).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const SERVER_USER = 'postgres';

// ------------------------------------------------------------------ tools

function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

function findPgBin() {
  const candidates = [];
  if (process.env.TIDEMARK_PG_BIN) candidates.push(process.env.TIDEMARK_PG_BIN);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // no pg_config
  }
  try {
    const versions = fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // not a Debian layout
  }
  return candidates.find((d) => d && fs.existsSync(path.join(d, 'initdb')) && fs.existsSync(path.join(d, 'pg_ctl')));
}

export const PG_BIN = findPgBin();

const INSTALL_HINTS = {
  postgres: 'install the PostgreSQL server (Debian/Ubuntu: apt-get install -y postgresql), or set TIDEMARK_PG_BIN to the folder that holds initdb and pg_ctl',
  psql: 'install the PostgreSQL client (apt-get install -y postgresql-client)',
  openssl: 'install the openssl CLI (apt-get install -y openssl)',
  pgbouncer: 'install PgBouncer (apt-get update && apt-get install -y pgbouncer)',
  runuser: 'install util-linux (runuser), or run the tests as a user other than root',
};

function tool(name) {
  if (name === 'postgres') return PG_BIN ? path.join(PG_BIN, 'postgres') : undefined;
  if (name === 'psql') return (PG_BIN && fs.existsSync(path.join(PG_BIN, 'psql')) && path.join(PG_BIN, 'psql')) || onPath('psql');
  return onPath(name);
}

/**
 * Throws one clear error naming every missing tool and how to install it.
 * `names`: postgres (initdb + pg_ctl), psql, openssl, pgbouncer.
 */
export function requireTools(...names) {
  const wanted = [...names];
  if (IS_ROOT && (names.includes('postgres') || names.includes('pgbouncer'))) wanted.push('runuser');
  const missing = wanted.filter((n) => !tool(n));
  if (missing.length) {
    throw new Error(
      `these end-to-end tests need tools that are not installed:\n${missing.map((n) => `  - ${n}: ${INSTALL_HINTS[n]}`).join('\n')}`,
    );
  }
}

// ------------------------------------------------------------------ processes

function run(file, args, { env, timeout = 60_000, what } = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', env: env ?? process.env, timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const e = new Error(`${what ?? path.basename(file)} failed: ${error.message}\n${stdout}${stderr}`.trim());
        e.stdout = stdout;
        e.stderr = stderr;
        reject(e);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** Runs a command as the server user (root: through runuser). */
function runAsServerUser(file, args, opts = {}) {
  if (!IS_ROOT) return run(file, args, opts);
  return run(tool('runuser'), ['-u', SERVER_USER, '--', file, ...args], { what: path.basename(file), ...opts });
}

function runAsServerUserSync(file, args) {
  const [cmd, argv] = IS_ROOT ? [tool('runuser'), ['-u', SERVER_USER, '--', file, ...args]] : [file, args];
  return execFileSync(cmd, argv, { stdio: 'ignore', timeout: 15_000 });
}

let serverUid;
let serverGid;
function serverIds() {
  if (serverUid === undefined) {
    serverUid = Number(execFileSync('id', ['-u', SERVER_USER], { encoding: 'utf8' }).trim());
    serverGid = Number(execFileSync('id', ['-g', SERVER_USER], { encoding: 'utf8' }).trim());
  }
  return [serverUid, serverGid];
}

/** Hands `dir` (recursively) to the server user when we are root. */
function giveToServerUser(dir) {
  if (!IS_ROOT) return;
  const [uid, gid] = serverIds();
  const walk = (p) => {
    fs.chownSync(p, uid, gid);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}

// Temp folders made here; whatever is left when the process exits is removed.
const tempDirs = new Set();

/** A temp folder the server user can use; removed at exit at the latest. */
export function tempDir(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tidemark-${label}-`));
  tempDirs.add(dir);
  giveToServerUser(dir);
  return dir;
}

// Everything still running when the process exits is stopped here, so a
// crashed or interrupted test file does not leave servers behind.
const live = new Set();
function stopAllSync() {
  for (const s of [...live]) {
    try {
      s.stopSync();
    } catch {
      // best effort
    }
  }
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}
process.once('exit', stopAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    stopAllSync();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves when `port` accepts TCP connections, or rejects after `ms`. */
export async function waitForPort(port, ms = 10_000, host = '127.0.0.1') {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing accepted connections on ${host}:${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(no log: ${e.message})`;
  }
}

/**
 * psql with a connection URL (e.g. through PgBouncer); unaligned, tuples
 * only. The password goes in PGPASSWORD, never on the command line.
 */
export async function psqlUrl(target, sql, password) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME ?? '/tmp' };
  if (password !== undefined) env.PGPASSWORD = password;
  const { stdout } = await run(tool('psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-Atc', sql, '-d', target], { what: 'psql', env });
  return stdout.trim();
}

// ------------------------------------------------------------------ certificates

async function openssl(args, cwd) {
  return run(tool('openssl'), args, { what: `openssl ${args[0]}`, env: { ...process.env, OPENSSL_CONF: '/dev/null' } }).catch((e) => {
    throw new Error(`${e.message}\n(in ${cwd})`);
  });
}

/**
 * Makes, in `dir`: a CA (`ca.pem`, `ca.key`), a server certificate for
 * `localhost` only (SAN DNS:localhost; *not* 127.0.0.1) signed by it
 * (`server.pem`, `server.key`), an unrelated CA (`wrong-ca.pem`) and a client
 * certificate with CN=certuser signed by the CA (`client.pem`, `client.key`).
 * EC P-256 keys: fast to make, accepted by rustls, Node and PostgreSQL.
 */
export async function makeCerts(dir) {
  requireTools('openssl');
  const f = (n) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const serial = () => `0x${randomBytes(8).toString('hex')}`;
  const caExt = f('ca.ext');
  fs.writeFileSync(
    caExt,
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
  );
  const makeCa = async (name, cn) => {
    await openssl(['req', '-new', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`], dir);
    await openssl(
      ['x509', '-req', '-in', f(`${name}.csr`), '-signkey', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '3650', '-set_serial', serial(), '-extfile', caExt],
      dir,
    );
  };
  const makeLeaf = async (name, cn, ext) => {
    fs.writeFileSync(f(`${name}.ext`), ext);
    await openssl(['req', '-new', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`], dir);
    await openssl(
      ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-out', f(`${name}.pem`), '-days', '3650', '-set_serial', serial(), '-extfile', f(`${name}.ext`)],
      dir,
    );
  };
  await Promise.all([makeCa('ca', 'tidemark test CA'), makeCa('wrong-ca', 'tidemark unrelated CA')]);
  const leaf = (eku) =>
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' +
    `extendedKeyUsage=${eku}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n`;
  await Promise.all([
    makeLeaf('server', 'localhost', `${leaf('serverAuth')}subjectAltName=DNS:localhost\n`),
    makeLeaf('client', 'certuser', leaf('clientAuth')),
  ]);
  for (const n of ['ca.key', 'wrong-ca.key', 'server.key', 'client.key']) fs.chmodSync(f(n), 0o600);
  giveToServerUser(dir);
  return {
    dir,
    ca: f('ca.pem'),
    wrongCa: f('wrong-ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

// ------------------------------------------------------------------ PostgreSQL

function confValue(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `'${String(v).replace(/'/g, "''")}'`;
}

/**
 * initdb's a new cluster in its own temp folder (not started). Options:
 * - name: a label for folders and messages
 * - conf: extra postgresql.conf settings ({ ssl: 'on', ... })
 * - hba: the pg_hba.conf lines (a `local all all trust` line is always first,
 *   for setup over the Unix socket)
 * - listen: listen_addresses (default 127.0.0.1)
 *
 * Returns the server: { name, dir, port, start(port?), stop(), psql(sql, db),
 * createDatabase(owner), log(), explain(result), cleanup() }.
 */
export async function createPostgres({ name = 'pg', conf = {}, hba = [], listen = '127.0.0.1' } = {}) {
  requireTools('postgres', 'psql');
  const dir = tempDir(name);
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  await runAsServerUser(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], {
    what: `initdb for the ${name} test server`,
  });
  const settings = {
    listen_addresses: listen,
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '32MB',
    max_connections: 60,
    log_connections: 'on',
    log_line_prefix: '%m [%p] %q%u@%d ',
    ...conf,
  };
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    `\n# tidemark test fixture\n${Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`).join('\n')}\n`,
  );
  fs.writeFileSync(path.join(data, 'pg_hba.conf'), `local all all trust\n${hba.join('\n')}\n`);
  giveToServerUser(dir);

  const server = {
    name,
    dir,
    data,
    logFile,
    port: undefined,
    running: false,
    counter: 0,

    /** Starts on `port` (default: a free one) and waits until it accepts connections. */
    async start(port) {
      this.port = port ?? (await freePort());
      try {
        await runAsServerUser(
          path.join(PG_BIN, 'pg_ctl'),
          ['-D', data, '-o', `-p ${this.port} -k ${dir}`, '-l', logFile, '-w', '-t', '30', 'start'],
          { what: `pg_ctl start (${name} test server)` },
        );
      } catch (e) {
        throw new Error(`${e.message}\n--- ${logFile} ---\n${tail(logFile)}`);
      }
      this.running = true;
      live.add(this);
      return this;
    },

    async stop() {
      if (!this.running) return;
      live.delete(this);
      this.running = false;
      await runAsServerUser(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { what: 'pg_ctl stop' }).catch(() => {});
    },

    stopSync() {
      if (!this.running) return;
      this.running = false;
      live.delete(this);
      runAsServerUserSync(path.join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
    },

    /** psql as the superuser over the Unix socket; unaligned, tuples only. */
    async psql(sql, db = 'postgres') {
      const { stdout } = await run(
        tool('psql'),
        ['-h', dir, '-p', String(this.port), '-U', 'postgres', '-d', db, '-X', '-v', 'ON_ERROR_STOP=1', '-Atc', sql],
        { what: `psql on the ${name} test server`, env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/tmp' } },
      );
      return stdout.trim();
    },

    /** A new database owned by `owner`; returns its name. */
    async createDatabase(owner = 'postgres') {
      this.counter += 1;
      const db = `t${this.counter}_${randomBytes(3).toString('hex')}`;
      await this.psql(`CREATE DATABASE ${db} OWNER ${owner}`);
      return db;
    },

    log(lines = 40) {
      return tail(logFile, lines);
    },

    /** A failure message: the CLI's output and the end of the server log. */
    explain(result) {
      return `${result ? `exit ${result.code}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}` : ''}--- ${name} server log (end) ---\n${tail(logFile, 25)}`;
    },

    async cleanup() {
      await this.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

// ------------------------------------------------------------------ PgBouncer

/**
 * Starts PgBouncer in transaction mode in front of `backend` on a free port.
 * `users` maps user names to plain-text passwords (the auth_file); with
 * auth_type scram-sha-256 clients authenticate to PgBouncer with SCRAM and
 * PgBouncer logs in to the backend with the same password.
 * Returns { port, dir, log(), explain(result), stop(), cleanup() }.
 */
export async function startPgBouncer({ backend, users = {}, authType = 'scram-sha-256', poolSize = 4, poolMode = 'transaction' }) {
  requireTools('pgbouncer');
  const dir = tempDir('pgbouncer');
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  const logFile = path.join(dir, 'pgbouncer.log');
  const pidFile = path.join(dir, 'pgbouncer.pid');
  const q = (s) => `"${String(s).replace(/"/g, '""')}"`;
  fs.writeFileSync(path.join(dir, 'userlist.txt'), Object.entries(users).map(([u, p]) => `${q(u)} ${q(p)}`).join('\n') + '\n');
  fs.writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=127.0.0.1 port=${backend.port}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      `auth_type = ${authType}`,
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `pool_mode = ${poolMode}`,
      'max_client_conn = 200',
      `default_pool_size = ${poolSize}`,
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${logFile}`,
      `pidfile = ${pidFile}`,
      'log_connections = 1',
      'log_disconnections = 1',
      '',
    ].join('\n'),
  );
  fs.chmodSync(path.join(dir, 'userlist.txt'), 0o600);
  giveToServerUser(dir);
  try {
    await runAsServerUser(tool('pgbouncer'), ['-d', ini], { what: 'pgbouncer -d' });
    await waitForPort(port, 10_000);
  } catch (e) {
    throw new Error(`could not start PgBouncer: ${e.message}\n--- ${logFile} ---\n${tail(logFile)}`);
  }
  const pid = () => {
    try {
      return Number(fs.readFileSync(pidFile, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  const bouncer = {
    port,
    dir,
    running: true,
    log(lines = 40) {
      return tail(logFile, lines);
    },
    explain(result) {
      return `${result ? `exit ${result.code}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}` : ''}--- pgbouncer log (end) ---\n${tail(logFile, 25)}\n--- backend log (end) ---\n${backend.log(25)}`;
    },
    stopSync() {
      if (!this.running) return;
      this.running = false;
      live.delete(this);
      const p = pid();
      if (p) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    },
    async stop() {
      const p = pid();
      this.stopSync();
      // Wait (briefly) for it to go, so the backend can stop cleanly after.
      for (let i = 0; p && i < 40; i += 1) {
        try {
          process.kill(p, 0);
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async cleanup() {
      await this.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(bouncer);
  return bouncer;
}
