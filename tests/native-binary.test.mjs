// The shipped .node must load where Vercel builds (Amazon Linux 2023,
// glibc 2.34) and older: no GLIBC_ symbol version above 2.28, no OpenSSL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const addon = fileURLToPath(new URL('../npm/platforms/linux-x64-gnu/tidemark.linux-x64-gnu.node', import.meta.url));

function versionKey(v) {
  const [major = 0, minor = 0, patch = 0] = v.split('.').map(Number);
  return (major * 1000 + minor) * 1000 + patch;
}

test('native addon needs glibc 2.28 or older and links no OpenSSL', () => {
  assert.ok(existsSync(addon), `${addon} is missing: run npm run build`);
  const symbols = execFileSync('objdump', ['-T', addon], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const versions = [...new Set(symbols.match(/GLIBC_[0-9.]+/g) ?? [])].map((v) => v.slice(6));
  versions.sort((a, b) => versionKey(a) - versionKey(b));
  const highest = versions.at(-1);
  assert.ok(highest, 'no GLIBC_ symbols found: is this a glibc build?');
  assert.ok(versionKey(highest) <= versionKey('2.28'), `needs GLIBC_${highest}; the limit is 2.28`);
  const dynamic = execFileSync('objdump', ['-p', addon], { encoding: 'utf8' });
  const needed = [...dynamic.matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]);
  assert.ok(!needed.some((lib) => /ssl|crypto/.test(lib)), `links ${needed.join(', ')}`);
  // Stripped, LTO: a few MB, not tens.
  assert.ok(statSync(addon).size < 8 << 20, `addon is ${statSync(addon).size} bytes`);
});
