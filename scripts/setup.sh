#!/usr/bin/env bash
# Installs the build tools tidemark needs, from the package registries only
# (rustup, crates.io, PyPI). Idempotent: fast when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

# The toolchain, components and targets pinned in rust-toolchain.toml.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup component add rustfmt clippy >/dev/null 2>&1
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# The native addon is linked against glibc 2.17 symbols with zig (from PyPI)
# and cargo-zigbuild (from crates.io), so it loads on older distributions
# than the build machine (Vercel builds on Amazon Linux 2023, glibc 2.34).
ZIGLANG_VERSION=0.13.0
if ! python3 -c "import ziglang" >/dev/null 2>&1; then
  python3 -m pip install --quiet "ziglang==${ZIGLANG_VERSION}"
fi
if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  cargo install cargo-zigbuild --locked
fi

# wasm-bindgen's CLI must be exactly the version the crate pins (Cargo.lock).
# (Its own lockfile pins crates the registry may lack, so no --locked here.)
wbg=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen ${wbg}" ]; then
  cargo install wasm-bindgen-cli --version "${wbg}" --force
fi
