#!/usr/bin/env bash
# Builds the native addon (release: LTO, stripped) for linux-x64-gnu against
# glibc 2.17 symbols, and puts it into its npm package.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
cargo zigbuild --release -p tidemark-node --target "${target}.2.17"
# Copy, then rename: overwriting a .node in place crashes any process that
# has it loaded (a test run, a db serve).
dest=npm/platforms/linux-x64-gnu/tidemark.linux-x64-gnu.node
cp "${CARGO_TARGET_DIR:-target}/${target}/release/libtidemark_node.so" "${dest}.tmp"
mv -f "${dest}.tmp" "${dest}"
ls -l npm/platforms/linux-x64-gnu/tidemark.linux-x64-gnu.node
