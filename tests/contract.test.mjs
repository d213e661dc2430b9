// The TypeScript contract (npm/tidemark/index.d.ts) against what Rust
// serializes: tests/contract/shapes.json holds one sample of every report,
// event and the error, with every optional field set, and a core test
// (crates/tidemark-core/src/contract.rs) fails when Rust's shapes change
// without that file. Here every key a sample has must be declared in its
// TypeScript type, and every key the type declares must be in the sample
// (unless the JS host adds it, listed below). Needs no engine and no server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const shapes = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/contract/shapes.json'), 'utf8'));
const dts = fs.readFileSync(path.join(REPO, 'npm/tidemark/index.d.ts'), 'utf8');

/** Keys the JS host adds to a shape the engine makes. */
const HOST_KEYS = {
  // The CLI's exit code and the --json record (lib/errors.cjs).
  TidemarkError: ['exitCode', 'toJSON'],
};

/**
 * The top-level property names of every `interface` and `class` in the
 * declarations, with those of the interfaces they extend:
 * Map<name, { keys: Set, extends: string[] }>.
 */
function declarations(text) {
  const clean = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const found = new Map();
  const head = /export (?:declare )?(?:interface|class) (\w+)(?:<[^>]*>)?(?: extends ([\w, <>']+))?\s*\{/g;
  for (let m; (m = head.exec(clean)); ) {
    let depth = 1;
    let i = head.lastIndex;
    let member = '';
    const keys = new Set();
    const take = () => {
      const k = /^\s*(?:readonly\s+)?(\w+)\??\s*[:(]/.exec(member);
      if (k && !/^\s*constructor\b/.test(member)) keys.add(k[1]);
      member = '';
    };
    for (; i < clean.length && depth > 0; i += 1) {
      const c = clean[i];
      if ('{[('.includes(c)) depth += 1;
      if ('}])'.includes(c)) depth -= 1;
      if (depth === 0) break;
      if (depth === 1 && (c === ';' || c === '\n')) take();
      else member += c;
    }
    take();
    const parents = (m[2] ?? '').split(',').map((p) => p.trim().replace(/<.*$/, '')).filter(Boolean);
    found.set(m[1], { keys, extends: parents });
  }
  return found;
}

const declared = declarations(dts);

function keysOf(name) {
  const d = declared.get(name);
  assert.ok(d, `index.d.ts declares no interface ${name}`);
  const keys = new Set(d.keys);
  for (const p of d.extends) if (declared.has(p)) for (const k of keysOf(p)) keys.add(k);
  return keys;
}

/** Checks one sample (and its nested objects, by the declared property types) against `name`. */
function check(name, sample, where) {
  const have = new Set(Object.keys(sample));
  const want = keysOf(name);
  const extra = [...have].filter((k) => !want.has(k));
  assert.deepEqual(extra, [], `${where}: Rust serializes ${extra.join(', ')}, which index.d.ts's ${name} does not declare`);
  const host = new Set(HOST_KEYS[name] ?? []);
  const missing = [...want].filter((k) => !have.has(k) && !host.has(k) && !(name === 'TidemarkError' && k === 'name'));
  assert.deepEqual(missing, [], `${where}: index.d.ts's ${name} declares ${missing.join(', ')}, which Rust never serializes`);
}

/** The interface a nested value of `key` in `name` is declared with: `key: Type` or `key: Type[]`. */
function nestedType(name, key) {
  const clean = dts.replace(/\/\*[\s\S]*?\*\//g, '');
  const body = new RegExp(`(?:interface|class) ${name}\\b[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(clean)?.[1] ?? '';
  const m = new RegExp(`\\b${key}\\??:\\s*(\\w+)(?:\\[\\])?\\s*(?:\\|\\s*null\\s*)?;`).exec(body);
  return m && declared.has(m[1]) ? m[1] : undefined;
}

function checkDeep(name, sample, where) {
  check(name, sample, where);
  for (const [key, value] of Object.entries(sample)) {
    const inner = Array.isArray(value) ? value[0] : value;
    if (inner === null || typeof inner !== 'object') continue;
    const type = nestedType(name, key);
    if (type) checkDeep(type, inner, `${where}.${key}`);
  }
}

test('every report Rust serializes has exactly the keys index.d.ts declares', () => {
  for (const [name, sample] of Object.entries(shapes.reports)) checkDeep(name, sample, name);
  // The nested ones are checked through their parents.
  assert.ok(Object.keys(shapes.reports).length >= 13);
});

test('every event Rust emits is a member of TidemarkEvent with exactly its keys', () => {
  const union = /export type TidemarkEvent =([^;]*);/.exec(dts)[1].split('|').map((s) => s.trim()).filter(Boolean);
  const byEvent = new Map();
  for (const name of union) {
    const m = new RegExp(`(?:interface|class) ${name}\\b[^{]*\\{[^}]*?event:\\s*'(\\w+)'`).exec(dts);
    if (m) byEvent.set(m[1], name);
  }
  for (const sample of shapes.events) {
    const name = byEvent.get(sample.event);
    assert.ok(name, `Rust emits { event: '${sample.event}' }, which no member of TidemarkEvent in index.d.ts declares`);
    check(name, sample, `event ${sample.event}`);
  }
});

test('the error Rust serializes has exactly the fields TidemarkError declares', () => {
  const { message, ...rest } = shapes.error;
  assert.equal(typeof message, 'string'); // Error's own message
  check('TidemarkError', rest, 'error');
});

test('the parser of index.d.ts sees what it must (a guard for this test itself)', () => {
  assert.deepEqual([...keysOf('MigrationAppliedEvent')].sort(), ['durationMs', 'event', 'file', 'name', 'version']);
  assert.ok(keysOf('TidemarkError').has('sqlState'));
  assert.equal(nestedType('StatusReport', 'migrations'), 'StatusRow');
  assert.equal(nestedType('UnlockReport', 'holder'), 'LockHolder');
});
