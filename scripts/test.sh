#!/usr/bin/env bash
# The whole test suite: what `npm test` runs locally and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rustfmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== engine: unit, property and integration tests (real PostgreSQL)"
cargo test --workspace

echo "== engine builds for wasm32-unknown-unknown"
cargo build -p tidemark-core --target wasm32-unknown-unknown
