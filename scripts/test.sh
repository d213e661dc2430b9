#!/usr/bin/env bash
# The whole test suite: what `npm test` runs locally and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build tools (rustup target, zig, cargo-zigbuild)"
bash scripts/setup.sh

echo "== rustfmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== engine: unit, property and integration tests (real PostgreSQL)"
cargo test --workspace

echo "== engine builds for wasm32-unknown-unknown"
cargo build -p tidemark-core --target wasm32-unknown-unknown

echo "== native addon (release, glibc 2.17 symbols)"
bash scripts/build-native.sh

echo "== end-to-end: CLI and API through the native addon (real PostgreSQL)"
TIDEMARK_BACKEND=native node --test --test-concurrency=2 tests/*.test.mjs
