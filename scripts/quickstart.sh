#!/usr/bin/env bash
# The newcomer's path (`npm run quickstart`): on a fresh clone with Rust and
# Node, install, build both engines, then run the main job on the embedded
# database (PGlite in .tidemark/pglite): no PostgreSQL server needed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules/@electric-sql/pglite ] || [ ! -e node_modules/.bin/tidemark ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

echo "== build tools (rustup target, zig, cargo-zigbuild, wasm-bindgen-cli)"
bash scripts/setup.sh

echo "== build: native addon and wasm backend"
npm run -s build

# The embedded database is what tidemark uses when no database URL is set,
# outside CI and production: make sure none leaks in from the shell.
unset TIDEMARK_DATABASE_URL DATABASE_URL_UNPOOLED POSTGRES_URL_NON_POOLING DATABASE_URL POSTGRES_URL PGHOST PGDATABASE CI
export PATH="$PWD/node_modules/.bin:$PATH"

echo "== tidemark migrate"
tidemark migrate
echo "== tidemark seed --env development"
tidemark seed --env development
echo "== tidemark status"
tidemark status
echo
echo "Done. The database lives in .tidemark/pglite (git-ignored). Next:"
echo "  npx tidemark db serve --port 5433   # serve it to your app as DATABASE_URL"
echo "  npx tidemark reset                  # delete it and start afresh"
