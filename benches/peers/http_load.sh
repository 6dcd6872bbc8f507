#!/usr/bin/env bash
# The query server under load (issue 18, part 3): `cidb serve` on a database, and wrk
# posting one segment count over and over from the same machine.
#
#   benches/peers/http_load.sh --data DIR [--query NAME] [--threads 2] [--connections 32]
#                              [--duration 30] [--at RFC3339] [--cidb BIN] [--port 18080]
#
# --query names a query of benches/queries.json (default `marketing_8`, the 8-predicate
# marketing segment); its `segments` are saved first (`cidb segment save`). Without --at
# every request is evaluated "now" (as most clients ask); with --at the evaluation time is
# pinned in the body. An analyst key is created for the run (`cidb keys create`) and
# revoked afterwards. Installs Debian's wrk when it is missing. Prints wrk's report
# and a one-line markdown row (requests/s, p50, p99); run it on an otherwise idle machine.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DATA= QUERY=marketing_8 THREADS=2 CONNECTIONS=32 DURATION=30 AT= CIDB= PORT=18080
while [ $# -gt 0 ]; do
  case $1 in
    --data) DATA=$2; shift 2 ;;
    --query) QUERY=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --at) AT=$2; shift 2 ;;
    --cidb) CIDB=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$DATA" ] || { echo "--data DIR is required" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  # Debian's package, as .ci/run installs Chromium: sudo only when not root.
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null ||
    { echo "wrk is missing and could not be installed: apt-get install -y wrk" >&2; exit 2; }
fi
if [ -z "$CIDB" ]; then
  CIDB=${CARGO_TARGET_DIR:-$REPO/target}/release/cidb
  [ -x "$CIDB" ] || (cd "$REPO" && cargo build --release -p cidb-server)
fi

SCRATCH=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  [ -n "${KEY_ID:-}" ] && "$CIDB" --data "$DATA" keys revoke "$KEY_ID" >/dev/null 2>&1
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# The query and the segments it uses, from benches/queries.json.
python3 - "$REPO/benches/queries.json" "$QUERY" "$AT" "$SCRATCH" <<'EOF'
import json, sys
spec, name, at, out = sys.argv[1:]
doc = json.load(open(spec))
query = next((q for q in doc["queries"] if q["name"] == name), None)
if query is None:
    sys.exit(f"no query {name!r} in {spec}")
body = {"expr": query["expr"]}
if at:
    body["at"] = at
open(f"{out}/body.json", "w").write(json.dumps(body))
with open(f"{out}/segments.tsv", "w") as f:
    for seg, expr in doc.get("segments", {}).items():
        f.write(f"{seg}\t{expr}\n")
EOF
while IFS=$'\t' read -r name expr; do
  "$CIDB" --data "$DATA" segment save "$name" "$expr" >/dev/null
done < "$SCRATCH/segments.tsv"

KEY_JSON=$("$CIDB" --data "$DATA" keys create --role analyst --json)
KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$KEY_JSON")
KEY_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$KEY_JSON")

cat > "$SCRATCH/count.lua" <<EOF
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$SCRATCH/body.json")
wrk.body = f:read("*a")
f:close()
EOF

"$CIDB" --data "$DATA" serve --addr "127.0.0.1:$PORT" > "$SCRATCH/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 600); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$SCRATCH/serve.log" >&2; exit 1; }
  sleep 0.1
done
# One request first: the answer must be a count, not an error.
curl -fsS -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  --data @"$SCRATCH/body.json" "http://127.0.0.1:$PORT/v1/segments/count"
echo

wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$SCRATCH/count.lua" \
  "http://127.0.0.1:$PORT/v1/segments/count" | tee "$SCRATCH/wrk.txt"
# How many counts the server answered from its count cache (servers that have one).
curl -fsS "http://127.0.0.1:$PORT/metrics" | grep '^cidb_segment_count_cache' || true

python3 - "$SCRATCH/wrk.txt" "$QUERY" "$CONNECTIONS" "${AT:-now}" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"| `{sys.argv[2]}` (at {sys.argv[4]}) | {sys.argv[3]} | {float(rps):,.0f} | {lat.get('50')} | {lat.get('99')} | {errors.group(1) if errors else 0} |")
EOF
