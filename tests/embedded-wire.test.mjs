// lib/embedded/wire.cjs against a real (in-memory) PGlite, with raw protocol
// clients: framing (split and merged packets, SSLRequest, CancelRequest), the
// session arbiter (transactions exclusive, a vanished client rolled back),
// per-connection prepared statement names, and the in-process duplex.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { pkgRequire, REPO } from './helpers.mjs';

let PGlite;
try {
  ({ PGlite } = pkgRequire(pkgRequire.resolve('@electric-sql/pglite', { paths: [REPO] })));
} catch {
  PGlite = undefined;
}
// No engine involved: runs once, in the native pass of scripts/test.sh.
const needs = !PGlite
  ? { skip: '@electric-sql/pglite is not installed (npm install at the repository root)' }
  : process.env.TIDEMARK_BACKEND === 'wasm'
    ? { skip: 'no engine involved: runs in the native pass' }
    : {};
const wire = pkgRequire('./lib/embedded/wire.cjs');

const typed = (type, body = Buffer.alloc(0)) => {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
};
const cstr = (s) => Buffer.from(`${s}\0`);
const Q = (sql) => typed('Q', cstr(sql));
const parse = (name, sql) => typed('P', Buffer.concat([cstr(name), cstr(sql), Buffer.from([0, 0])]));
const bind = (stmt) => typed('B', Buffer.concat([cstr(''), cstr(stmt), Buffer.from([0, 0, 0, 0, 0, 0])]));
const execute = () => typed('E', Buffer.concat([cstr(''), Buffer.from([0, 0, 0, 0])]));
const SYNC = typed('S');
function startup(extra = {}) {
  const params = { user: 'postgres', database: 'postgres', ...extra };
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}
const special = (code) => {
  const b = Buffer.alloc(code === 80877102 ? 16 : 8);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(code, 4);
  return b;
};

/** A raw protocol client over any duplex: collects backend messages. */
class Raw {
  constructor(stream) {
    this.stream = stream;
    this.buf = Buffer.alloc(0);
    this.messages = [];
    this.raw = [];
    this.closed = false;
    this.wake = () => {};
    stream.on('data', (chunk) => {
      this.raw.push(chunk);
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < 1 + len) break;
        this.messages.push({ type: String.fromCharCode(this.buf[0]), body: this.buf.subarray(5, 1 + len) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake();
    });
    const end = () => {
      this.closed = true;
      this.wake();
    };
    stream.on('end', end);
    stream.on('close', end);
  }

  static async tcp(port) {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new Raw(socket);
  }

  write(...parts) {
    this.stream.write(Buffer.concat(parts));
  }

  /** Resolves with the messages up to and including the next ReadyForQuery. */
  async ready(timeout = 10_000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const i = this.messages.findIndex((m) => m.type === 'Z');
      if (i !== -1) return this.messages.splice(0, i + 1);
      if (this.closed) throw new Error('closed');
      if (Date.now() > deadline) throw new Error(`no ReadyForQuery; have ${this.messages.map((m) => m.type).join('')}`);
      await new Promise((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  async query(sql) {
    this.write(Q(sql));
    return rows(await this.ready());
  }

  end() {
    this.write(typed('X'));
    this.stream.end();
  }
}

/** The text values of the DataRows in `messages` (first column), or the error. */
function rows(messages) {
  const err = messages.find((m) => m.type === 'E');
  if (err) return { error: /M([^\0]*)/.exec(err.body.toString())[1] };
  return messages
    .filter((m) => m.type === 'D')
    .map((m) => {
      const len = m.body.readInt32BE(2);
      return len === -1 ? null : m.body.subarray(6, 6 + len).toString();
    });
}

async function setup(t, options) {
  const db = new PGlite();
  await db.waitReady;
  const session = new wire.Session(db, options);
  const listener = await wire.listen(session, { port: 0 });
  t.after(async () => {
    await listener.close();
    await session.close();
  });
  const connect = async (params) => {
    const c = await Raw.tcp(listener.port);
    c.write(startup(params));
    const hello = await c.ready();
    assert.equal(hello[0].type, 'R');
    return c;
  };
  return { db, session, listener, connect };
}

test('framing: SSLRequest is answered N, packets split byte by byte or merged, CancelRequest hangs up', needs, async (t) => {
  const { listener } = await setup(t);
  const c = await Raw.tcp(listener.port);
  c.write(special(80877103));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual([...Buffer.concat(c.raw)], [0x4e]); // 'N'
  c.raw = [];
  c.buf = Buffer.alloc(0);
  // The startup packet and a query, one byte per write.
  const bytes = Buffer.concat([startup(), Q("select 'split'")]);
  for (const b of bytes) {
    c.stream.write(Buffer.from([b]));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await c.ready();
  assert.deepEqual(rows(await c.ready()), ['split']);
  // Two queries and a 1 MB one in a single write.
  c.write(Q('select 1'), Q('select 2'), Q(`select length('${'x'.repeat(1 << 20)}')`));
  assert.deepEqual(rows(await c.ready()), ['1']);
  assert.deepEqual(rows(await c.ready()), ['2']);
  assert.deepEqual(rows(await c.ready()), [String(1 << 20)]);
  c.end();

  const cancel = await Raw.tcp(listener.port);
  cancel.write(special(80877102));
  await once(cancel.stream, 'close');
  assert.equal(cancel.messages.length, 0);
});

test('a transaction has the session to itself; a client that vanishes inside one is rolled back', needs, async (t) => {
  const { connect } = await setup(t);
  const a = await connect();
  const b = await connect();
  await a.query('create table t (id int)');
  a.write(Q('begin; insert into t values (1)'));
  assert.equal((await a.ready()).at(-1).body.toString(), 'T');
  // b waits while a is inside its transaction ...
  b.write(Q('select count(*) from t'));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(b.messages.length, 0, 'b ran inside a\'s transaction');
  await a.query('commit');
  // ... and sees its commit.
  assert.deepEqual(rows(await b.ready()), ['1']);

  a.write(Q('begin; insert into t values (2)'));
  await a.ready();
  a.stream.destroy(); // gone without Terminate, inside the transaction
  assert.deepEqual(await b.query('select count(*) from t'), ['1']);
  assert.deepEqual(await b.query('select count(*) from pg_stat_activity where state = \'idle in transaction\''), ['0']);

  // An extended-protocol exchange (no Sync yet) also holds the session.
  const c = await connect();
  c.write(parse('', 'select 41 + 1'), bind(''), execute());
  await new Promise((resolve) => setTimeout(resolve, 100));
  b.write(Q("select 'after'"));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(b.messages.length, 0);
  c.write(SYNC);
  assert.deepEqual(rows(await c.ready()), ['42']);
  assert.deepEqual(rows(await b.ready()), ['after']);
});

test('prepared statements are per connection: two clients prepare "s1", and it goes when the client goes', needs, async (t) => {
  const { connect } = await setup(t);
  const a = await connect();
  const b = await connect();
  a.write(parse('s1', "select 'from a'"), SYNC);
  b.write(parse('s1', "select 'from b'"), SYNC);
  assert.ok(!(await a.ready()).some((m) => m.type === 'E'));
  assert.ok(!(await b.ready()).some((m) => m.type === 'E'));
  a.write(bind('s1'), execute(), SYNC);
  b.write(bind('s1'), execute(), SYNC);
  assert.deepEqual(rows(await a.ready()), ['from a']);
  assert.deepEqual(rows(await b.ready()), ['from b']);
  // The same name twice on one connection is still an error, as on a server.
  a.write(parse('s1', 'select 1'), SYNC);
  assert.match(rows(await a.ready()).error, /already exists/);
  a.end();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await b.query('select count(*) from pg_prepared_statements'), ['1']);
});

test('startup settings (application_name, options -c ...) are applied, reported, and reset when the client leaves', needs, async (t) => {
  const { connect, listener } = await setup(t);
  const other = await connect();
  const a = await Raw.tcp(listener.port);
  a.write(startup({ application_name: 'tidemark', options: '-c statement_timeout=1234 --search-path=app,public' }));
  const hello = await a.ready();
  const status = hello.filter((m) => m.type === 'S').map((m) => m.body.toString().split('\0').slice(0, 2).join('='));
  assert.ok(status.includes('application_name=tidemark'), status.join(', '));
  assert.deepEqual(await a.query('show statement_timeout'), ['1234ms']);
  assert.deepEqual(await a.query('show search_path'), ['app,public']);
  a.end();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await other.query('show statement_timeout'), ['0']);
  assert.deepEqual(await other.query('show application_name'), ['']);
  // A bad setting fails the connection, as on a server.
  const bad = await Raw.tcp(listener.port);
  bad.write(startup({ options: '-c statement_timeout=soon' }));
  await once(bad.stream, 'close');
  const err = bad.messages.find((m) => m.type === 'E');
  assert.match(err.body.toString(), /SFATAL.*invalid value for parameter "statement_timeout"/s);
  assert.ok(!bad.messages.some((m) => m.type === 'Z'));
});

test('the session is reset (DISCARD ALL) when the last client leaves, when asked to', needs, async (t) => {
  const { connect } = await setup(t, { resetWhenIdle: true });
  const a = await connect();
  await a.query("set application_name = 'first'; select pg_advisory_lock(7)");
  a.end();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const b = await connect();
  assert.deepEqual(await b.query('show application_name'), ['']);
  assert.deepEqual(await b.query("select count(*) from pg_locks where locktype = 'advisory'"), ['0']);
});

test('openDuplex: the in-process stream the wasm engine uses', needs, async (t) => {
  const db = new PGlite();
  await db.waitReady;
  const session = new wire.Session(db);
  const duplex = wire.openDuplex(session);
  const c = new Raw(duplex);
  c.write(special(80877103));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(c.raw[0][0], 0x4e);
  c.buf = Buffer.alloc(0);
  c.write(startup());
  await c.ready();
  assert.deepEqual(await c.query("select 'in process'"), ['in process']);
  c.write(typed('X'));
  await once(duplex, 'end');
  duplex.destroy();
  await session.close();
  assert.equal(db.closed, true);
});
