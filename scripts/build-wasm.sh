#!/usr/bin/env bash
# Builds the wasm backend into npm/tidemark-wasm/pkg, twice from the same
# crate: `tidemark_lite` (no cargo features: the deploy path, migrate /
# deploy / status / down / redo / seed / reset, which a Vercel build loads)
# and `tidemark_full` (feature `full`: every operation). Each is cargo
# (opt-level z), wasm-bindgen (the CLI pinned to the crate's version),
# wasm-opt -Oz (npm's binaryen: JS + wasm, no download). The lite module's
# size budget (600 KB raw, 250 KB gzipped) is checked by
# tests/wasm-size.test.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."

out=npm/tidemark-wasm/pkg
rm -rf "$out"
built="${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/wasm-release/tidemark_wasm.wasm
for module in lite full; do
  features=(--no-default-features)
  [ "$module" = full ] && features=(--features full)
  cargo build -p tidemark-wasm --target wasm32-unknown-unknown --profile wasm-release "${features[@]}"
  wasm-bindgen --target nodejs --out-dir "$out" --out-name "tidemark_${module}" \
    --remove-name-section --remove-producers-section "$built"
  # --one-caller-inline-max-function-size: wasm-opt would otherwise inline
  # every function that has one caller, whatever its size, turning an async
  # call chain into one 55 KB function, which V8 re-compiles with its
  # optimizing compiler once a per-row loop in it gets hot: 200 ms and 30 MB
  # in a 200-migration status (see "Out of line" in tidemark-core's lib.rs).
  npx --no-install wasm-opt -Oz --one-caller-inline-max-function-size=2000 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-mutable-globals --enable-reference-types --enable-multivalue --strip-debug --strip-producers \
    "$out/tidemark_${module}_bg.wasm" -o "$out/tidemark_${module}_bg.wasm"
done
rm -f "$out"/*.d.ts "$out/package.json" "$out/.gitignore"
for module in lite full; do
  raw=$(stat -c %s "$out/tidemark_${module}_bg.wasm")
  gz=$(gzip -9c "$out/tidemark_${module}_bg.wasm" | wc -c)
  echo "tidemark_${module}_bg.wasm: ${raw} bytes, ${gz} gzipped"
done
