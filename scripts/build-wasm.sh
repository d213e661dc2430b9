#!/usr/bin/env bash
# Builds the wasm backend into npm/tidemark-wasm/pkg: cargo (opt-level z),
# wasm-bindgen (the CLI pinned to the crate's version), wasm-opt -Oz (npm's
# binaryen: JS + wasm, no download).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p tidemark-wasm --target wasm32-unknown-unknown --profile wasm-release
out=npm/tidemark-wasm/pkg
rm -rf "$out"
wasm-bindgen --target nodejs --out-dir "$out" --remove-name-section --remove-producers-section \
  "${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/wasm-release/tidemark_wasm.wasm
npx --no-install wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-mutable-globals --enable-reference-types --enable-multivalue --strip-debug --strip-producers \
  "$out/tidemark_wasm_bg.wasm" -o "$out/tidemark_wasm_bg.wasm"
rm -f "$out"/*.d.ts "$out/package.json" "$out/.gitignore"
raw=$(stat -c %s "$out/tidemark_wasm_bg.wasm")
gz=$(gzip -9c "$out/tidemark_wasm_bg.wasm" | wc -c)
echo "tidemark_wasm_bg.wasm: ${raw} bytes, ${gz} gzipped"
