// PostgreSQL helpers for the harness: psql, uniquely named databases, and a
// wire-level round-trip ping (`select 1` as a simple Query message).
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export function pgTarget() {
  const [host, port] = (process.env.BENCH_PG ?? '127.0.0.1:5432').split(':');
  return { host, port: Number(port ?? 5432), user: process.env.BENCH_PGUSER ?? 'postgres' };
}

/** URL for the tools. sslmode=disable for all of them: no TLS on loopback, and a parseable stream for the counter. */
export function dbUrl(db, { host, port, user } = pgTarget()) {
  return `postgres://${user}@${host}:${port}/${db}?sslmode=disable`;
}

export async function psql(db, sql, t = pgTarget()) {
  const { stdout } = await execFileP('psql', ['-X', '-h', t.host, '-p', String(t.port), '-U', t.user, '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { maxBuffer: 1 << 24 });
  return stdout.trim();
}

const prefix = `tidemark_bench_${process.pid}_`;
let counter = 0;

let aborted = false;
/** After this, createDb refuses (so an interrupted run cannot leave a database behind). */
export function abortCreates() { aborted = true; }

export async function createDb(tag, template) {
  if (aborted) throw new Error('aborted');
  const name = `${prefix}${++counter}_${tag}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
  await psql('postgres', `CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  return name;
}

export async function dropDb(name) {
  await psql('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** Drops every database this process created (tidemark_bench_<pid>_*). */
export async function dropAllOwn() {
  const names = (await psql('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%'`)).split('\n').filter(Boolean);
  for (const n of names) await dropDb(n);
  return names.length;
}

function msg(type, body) {
  const head = Buffer.alloc(type ? 5 : 4);
  if (type) { head.write(type, 0); head.writeInt32BE(body.length + 4, 1); } else head.writeInt32BE(body.length + 4, 0);
  return Buffer.concat([head, body]);
}

/**
 * Connects (trust auth) and sends `select 1` as a simple Query `count` times,
 * timing each until ReadyForQuery. Returns the round-trip times in ms.
 */
export function pingRtt({ host, port, user = 'postgres', database = 'postgres', count = 20 }) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const times = [];
    let buf = Buffer.alloc(0);
    let started = 0n;
    let ready = false;
    const send = () => { started = process.hrtime.bigint(); sock.write(msg('Q', Buffer.from('select 1\0'))); };
    sock.on('connect', () => {
      const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
      const body = Buffer.alloc(4 + params.length);
      body.writeInt32BE(196608, 0);
      params.copy(body, 4);
      sock.write(msg(null, body));
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const type = String.fromCharCode(buf[0]);
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'E') { sock.destroy(); return reject(new Error(`ping: ${body.toString().replace(/\0/g, ' ')}`)); }
        if (type === 'R' && body.readInt32BE(0) !== 0) { sock.destroy(); return reject(new Error('ping: the server asks for a password')); }
        if (type !== 'Z') continue;
        if (ready) times.push(Number(process.hrtime.bigint() - started) / 1e6);
        ready = true;
        if (times.length < count) send();
        else { sock.end(msg('X', Buffer.alloc(0))); resolve(times); }
      }
    });
    sock.on('error', reject);
  });
}
