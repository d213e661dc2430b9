#!/usr/bin/env bash
# The whole test suite: what `npm test` runs locally and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build tools (rustup target, zig, cargo-zigbuild, wasm-bindgen-cli)"
bash scripts/setup.sh

echo "== rustfmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The deploy-path wasm module is built without the core's `full` feature.
cargo clippy -p tidemark-wasm --target wasm32-unknown-unknown --no-default-features -- -D warnings

echo "== engine: unit, property and integration tests (real PostgreSQL)"
cargo test --workspace

echo "== engine builds for wasm32-unknown-unknown"
cargo build -p tidemark-core --target wasm32-unknown-unknown

echo "== native addon (release, glibc 2.17 symbols)"
bash scripts/build-native.sh

echo "== wasm backend (wasm-bindgen, wasm-opt -Oz)"
bash scripts/build-wasm.sh

echo "== peer tools for tests/adopt.test.mjs (node-pg-migrate, drizzle-orm, dbmate)"
npm ci --prefix tests/peers --no-audit --no-fund

# The same end-to-end suite, once per backend (the fault-injection suite
# runs on its own below: its trials time faults and must not share the CPU).
for backend in native wasm; do
  echo "== end-to-end: CLI and API through the ${backend} backend (real PostgreSQL)"
  TIDEMARK_BACKEND=${backend} node --test --test-concurrency=2 $(ls tests/*.test.mjs | grep -v '/faults\.test\.mjs$')
done

echo "== fault injection: kills, cuts, restarts, silence (npm run test:faults)"
bash scripts/test-faults.sh
