# Shared by the frame tests (test/frame/*.sh), sourced after test/integration/lib.sh: the short
# names those scripts use, the cluster's chunk count, and the summary comparison.

step() { it_log "$@"; }
fail() { it_fail "$@"; }
aq() { "$AQ" -c "$CONF" "$@"; }

# chunks: the chunks the whole cluster holds (every node's count in status --json), what a failed
# parse or a frame rm must leave unchanged.
chunks() {
  aq status --json | python3 -c '
import json, sys
print(sum(n.get("chunks", 0) for n in json.load(sys.stdin)["nodes"]))'
}

# same_summary A B: two `summary --json` files agree exactly, but for mean and sd, which depend on
# the order partial summaries merge in (where chunks fell, which node answered) in their last bits.
same_summary() {
  python3 - "$1" "$2" <<'PY'
import json, math, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert a["rows"] == b["rows"] and len(a["columns"]) == len(b["columns"]), (a["rows"], b["rows"])
def close(u, v):  # null (no value), a number, or "Infinity", "-Infinity", "NaN"
    if u is None or v is None:
        return u is v
    u, v = float(u), float(v)
    return (math.isnan(u) and math.isnan(v)) or math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12)
for x, y in zip(a["columns"], b["columns"]):
    assert set(x) == set(y), (x, y)
    for k in x:
        if k in ("mean", "sd"):
            assert close(x[k], y[k]), (x["name"], k, x[k], y[k])
        else:
            assert x[k] == y[k], (x["name"], k, x[k], y[k])
PY
}
