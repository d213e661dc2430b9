#!/usr/bin/env bash
# Builds the native addon (release: LTO, stripped) for linux-x64-gnu against
# glibc 2.17 symbols, and puts it into its npm package.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
cargo zigbuild --release -p tidemark-node --target "${target}.2.17"
cp "target/${target}/release/libtidemark_node.so" npm/platforms/linux-x64-gnu/tidemark.linux-x64-gnu.node
ls -l npm/platforms/linux-x64-gnu/tidemark.linux-x64-gnu.node
