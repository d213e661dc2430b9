#!/usr/bin/env bash
# The fault-injection suite (issue 11), once per backend: SIGKILL, cut
# connections, server restarts, silent networks, servers that close while
# connecting, and the issue's single-shot regressions. Needs what npm test
# needs, plus root and iproute2 for the silent-network trials (ip netns).
#   TIDEMARK_FAULT_TRIALS=20   the full count (default 5 per fault kind)
#   TIDEMARK_FAULT_SEED=<n>    replay the fault points of a run (printed first)
# Both backends always run; the exit status is 1 when either failed.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
for backend in native wasm; do
  echo "== fault injection through the ${backend} backend (real PostgreSQL, real sockets)"
  TIDEMARK_BACKEND=${backend} node --test tests/faults.test.mjs || status=1
done
exit $status
