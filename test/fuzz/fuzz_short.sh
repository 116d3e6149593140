#!/usr/bin/env bash
# ctest (label fuzz): every fuzz target for a short bounded time through scripts/fuzz, in its own
# clang tree (build-fuzz beside the tree under test). AQ_FUZZ_SECONDS overrides the 25 s per target.
set -euo pipefail
: "${AQ_SRC:?}"
exec "$AQ_SRC/scripts/fuzz" "${AQ_FUZZ_SECONDS:-25}"
