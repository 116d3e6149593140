#!/usr/bin/env bash
# Differential test (test/frame/csv_diff.py) on a real two-node cluster: random tables in random
# dialects with adversarial values, parsed and exported, compared field by field with Python's
# csv module. AQ_DIFF_SEED replays a seed (a failure prints it); the default seed is fixed so the
# suite is repeatable, AQ_DIFF_SEED=random draws one. Every process started is stopped on exit.
set -euo pipefail

source "$AQ_SRC/test/integration/lib.sh"
it_conf 2 1
it_log "cluster up"
it_up
seed=${AQ_DIFF_SEED:-20261206}
[ "$seed" = random ] && seed=
mkdir -p "$T/diff"
timeout 120 python3 "$AQ_SRC/test/frame/csv_diff.py" "$AQ" "$CONF" "$T/diff" "$seed" "${AQ_DIFF_TABLES:-150}" ||
  it_fail "differential test failed (see the seed above)"
