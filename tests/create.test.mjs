// create: the next file name in the folder's own convention, never an
// overwrite, never outside the folder. No database needed.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tidemark, project, ndjson, engine, database } from './helpers.mjs';

const list = (dir) => fs.readdirSync(dir).sort();
const utcStamp = (d) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);

test('create in a missing folder starts at 001 and creates the folder', engine, async (t) => {
  const cwd = project(t);
  const r = await tidemark(['create', 'initial schema'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(r.out, ['Created migrations/001_initial_schema.sql']);
  assert.equal(r.stderr, '');
  const text = fs.readFileSync(path.join(cwd, 'migrations/001_initial_schema.sql'), 'utf8');
  assert.match(text, /^-- /);
});

test('create keeps the sequence width: 003 after 002, 0001 after 0000 (drizzle)', engine, async (t) => {
  const seq = project(t, { 'migrations/001_a.sql': '', 'migrations/002_b.sql': '', 'migrations/README.md': '# notes\n' });
  let r = await tidemark(['create', 'add_goals'], { cwd: seq });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(r.out, ['Created migrations/003_add_goals.sql']);

  const drizzle = project(t, { 'drizzle/0000_violet_salo.sql': '' });
  r = await tidemark(['create', 'add-users', '--dir', 'drizzle'], { cwd: drizzle });
  assert.deepEqual(r.out, ['Created drizzle/0001_add_users.sql']);

  const wide = project(t, { 'db/migrations/0099_x.sql': '' });
  r = await tidemark(['create', 'y'], { cwd: wide, env: { TIDEMARK_DIR: 'db/migrations' } });
  assert.deepEqual(r.out, ['Created db/migrations/0100_y.sql']);
});

test('create uses a UTC timestamp or epoch milliseconds when the folder does', engine, async (t) => {
  const stamped = project(t, { 'migrations/20260109000000_create_extensions.sql': '' });
  const before = utcStamp(new Date());
  let r = await tidemark(['create', 'add_goals'], { cwd: stamped });
  const after = utcStamp(new Date());
  assert.equal(r.code, 0, r.all);
  const [, version] = /^Created migrations\/(\d{14})_add_goals\.sql$/.exec(r.out[0]) ?? [];
  assert.ok(version, r.stdout);
  assert.ok(version >= before && version <= after, `${version} should be between ${before} and ${after}`);

  // A folder whose last timestamp is in the future still moves forward.
  const future = project(t, { 'migrations/29990101000000_later.sql': '' });
  r = await tidemark(['create', 'next'], { cwd: future });
  assert.deepEqual(r.out, ['Created migrations/29990101000001_next.sql']);

  const millis = project(t, { 'migrations/1700000000000_init.sql': '' });
  const t0 = Date.now();
  r = await tidemark(['create', 'add_goals'], { cwd: millis });
  const t1 = Date.now();
  const [, ms] = /^Created migrations\/(\d{13})_add_goals\.sql$/.exec(r.out[0]) ?? [];
  assert.ok(ms && Number(ms) >= t0 && Number(ms) <= t1, r.stdout);
});

test('create --reversible writes an .up.sql and a .down.sql', engine, async (t) => {
  const cwd = project(t, { 'migrations/001_a.sql': '' });
  const r = await tidemark(['create', 'add_goals', '--reversible'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(r.out, ['Created migrations/002_add_goals.up.sql', 'Created migrations/002_add_goals.down.sql']);
  assert.deepEqual(list(path.join(cwd, 'migrations')), ['001_a.sql', '002_add_goals.down.sql', '002_add_goals.up.sql']);

  // reversible can come from the config file.
  const cfg = project(t, { 'tidemark.config.json': { reversible: true } });
  const c = await tidemark(['create', 'x'], { cwd: cfg });
  assert.deepEqual(c.out, ['Created migrations/001_x.up.sql', 'Created migrations/001_x.down.sql']);
});

test('create --json: created events and a done record', engine, async (t) => {
  const cwd = project(t);
  const r = await tidemark(['create', 'add_goals', '--json'], { cwd });
  assert.equal(r.code, 0, r.all);
  const records = ndjson(r.stdout);
  assert.equal(records.length, 2);
  assert.equal(records[0].event, 'created');
  assert.equal(records[0].name, '001_add_goals.sql');
  assert.equal(records[0].file, 'migrations/001_add_goals.sql');
  assert.equal(records[0].path, path.join(fs.realpathSync(cwd), 'migrations/001_add_goals.sql'));
  assert.equal(records[1].event, 'done');
  assert.equal(records[1].command, 'create');
  assert.equal(records[1].report.version, '001');
});

test('create refuses names that would leave the folder, and a missing name (exit 3)', engine, async (t) => {
  const cwd = project(t, { 'migrations/001_a.sql': '' });
  for (const name of ['../x', 'a/b', '..', '.hidden', 'a\\b']) {
    const r = await tidemark(['create', name], { cwd });
    assert.equal(r.code, 3, `${name}: ${r.all}`);
    assert.equal(r.stdout, '');
    assert.match(r.err[0], /^error: migration name .* may only use letters, digits/, name);
  }
  assert.deepEqual(list(path.join(cwd, 'migrations')), ['001_a.sql']);
  assert.deepEqual(fs.readdirSync(cwd), ['migrations']);

  const none = await tidemark(['create'], { cwd });
  assert.equal(none.code, 3);
  assert.match(none.err[0], /^error: create needs a migration name/);
});

test('create counts every version in the folder, folders included, and never overwrites', engine, async (t) => {
  // A folder named like a migration holds a version (Prisma and diesel lay
  // migrations out as folders), so the next name is 003, not 002.
  const cwd = project(t, { 'migrations/001_a.sql': '', 'migrations/002_add_goals.up.sql/keep': '' });
  const r = await tidemark(['create', 'add_goals', '--reversible'], { cwd });
  assert.equal(r.code, 0, r.all);
  assert.deepEqual(list(path.join(cwd, 'migrations')), [
    '001_a.sql',
    '002_add_goals.up.sql',
    '003_add_goals.down.sql',
    '003_add_goals.up.sql',
  ]);
  // That folder is not a migration tidemark can read: never "up to date".
  const db = await database(t);
  const d = await tidemark(['status', '--url', db.url], { cwd });
  assert.equal(d.code, 3, d.all);
  assert.match(d.all, /002_add_goals\.up\.sql\/ has no migration\.sql or up\.sql/);
});
