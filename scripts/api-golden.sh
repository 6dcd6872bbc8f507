#!/usr/bin/env bash
# Captures the JSON that the README's tour and the main CLI commands print, for a fixed
# seed, so that two builds can be compared byte for byte:
#   scripts/api-golden.sh OLD_BINARY /tmp/old && scripts/api-golden.sh NEW_BINARY /tmp/new
#   diff -r /tmp/old /tmp/new
# Fields that differ between runs by design (key ids, timestamps, timings) are masked.
set -euo pipefail
BIN=$(realpath "$1")
OUT=$2
rm -rf "$OUT" && mkdir -p "$OUT"
WORK=$(mktemp -d)
SERVER=; trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
DATA=$WORK/data
AT='"2026-01-01T00:00:00Z"'
mask() { sed -E 's/"(created|created_at|updated_at|at|time|started|finished|when|ms|micros|elapsed_ms|duration_ms|took_ms|eval_us|actual_us|us)": *("[^"]*"|[0-9.]+)/"\1":"*"/g; s/cidb_[A-Za-z0-9_-]+/cidb_*/g; s/"id": *"[0-9a-f]{12}"/"id":"*"/g; s/key:[0-9a-f]{12}/key:*/g; s@/tmp/tmp\.[A-Za-z0-9]+@TMP@g'; }
"$BIN" --data "$DATA" generate --persons 3000 --seed 7 --out "$WORK/p.jsonl" >/dev/null 2>&1 \
  || "$BIN" --data "$DATA" generate --persons 3000 --seed 7 > "$WORK/p.jsonl"
"$BIN" --data "$DATA" --json import "$WORK/p.jsonl" | mask > "$OUT/import.json" || true
"$BIN" --data "$DATA" --json stats | mask > "$OUT/stats.json" || true
"$BIN" --data "$DATA" --json check | mask > "$OUT/check.json" || true
EMAIL=$(grep -m1 -oE '"email":"[a-z0-9.]+@[a-z0-9.]+"' "$WORK/p.jsonl" | head -1 | cut -d'"' -f4 || true)
"$BIN" --data "$DATA" --json lookup --email "$EMAIL" | mask > "$OUT/lookup.json" || true
"$BIN" --data "$DATA" --json query 'country = "NL" AND age BETWEEN 25 AND 40' | mask > "$OUT/query.json" || true
"$BIN" --data "$DATA" --json query --breakdown country 'consent("marketing")' | mask > "$OUT/breakdown.json" || true
"$BIN" --data "$DATA" --json segment save nl 'country = "NL"' | mask > "$OUT/segment-save.json" || true
"$BIN" --data "$DATA" --json segment list | mask > "$OUT/segment-list.json" || true
"$BIN" --data "$DATA" --json destination create nl-meta --segment nl --format meta-api | mask > "$OUT/dest-create.json" || true
"$BIN" --data "$DATA" --json destination list | mask > "$OUT/dest-list.json" || true
"$BIN" --data "$DATA" --json sync nl-meta --out "$WORK/sync" | mask > "$OUT/sync.json" || true
"$BIN" --data "$DATA" --json sync nl-meta --ack | mask > "$OUT/sync-ack.json" || true
"$BIN" --data "$DATA" --json object --email "$EMAIL" --channel email | mask > "$OUT/object.json" || true
"$BIN" --data "$DATA" --json object --list | mask > "$OUT/object-list.json" || true
"$BIN" --data "$DATA" --json audit | mask > "$OUT/audit.json" || true
KEY=$("$BIN" --data "$DATA" --json keys create --role admin | sed -E 's/.*"key": *"([^"]*)".*/\1/')
"$BIN" --data "$DATA" --json keys list | mask > "$OUT/keys-list.json" || true
"$BIN" --data "$DATA" serve --addr 127.0.0.1:0 > "$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(head -1 "$WORK/serve.out" | sed 's/listening on //')
c() { curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
c "$URL/v1/segments/count" -d "{\"expr\": \"country = \\\"NL\\\" AND interests HAS \\\"running\\\" AND age BETWEEN 25 AND 40\", \"at\": $AT}" | mask > "$OUT/h-count.json"
c "$URL/v1/segments/breakdown" -d "{\"expr\": \"consent(\\\"marketing\\\")\", \"field\": \"country\", \"top\": 5, \"at\": $AT}" | mask > "$OUT/h-breakdown.json"
c "$URL/v1/segments/sample" -d "{\"expr\": \"country = \\\"NL\\\"\", \"size\": 5, \"seed\": 1, \"at\": $AT}" | mask > "$OUT/h-sample.json"
c "$URL/v1/segments/overlap" -d "{\"exprs\": [\"country = \\\"NL\\\"\", \"age < 30\"], \"at\": $AT}" | mask > "$OUT/h-overlap.json"
c -X PUT "$URL/v1/segments/nl_runners" -d '{"expr": "country = \"NL\" AND interests HAS \"running\""}' | mask > "$OUT/h-put.json"
c "$URL/v1/segments" | mask > "$OUT/h-list.json"
c "$URL/v1/segments/nl_runners" | mask > "$OUT/h-get.json"
c "$URL/v1/segments/nl_runners/export" -d '{"format": "meta-api"}' | mask > "$OUT/h-export-meta.jsonl"
c "$URL/v1/segments/nl_runners/export" -d '{"format": "google-api", "mode": "adds"}' | mask > "$OUT/h-adds.jsonl"
c "$URL/v1/segments/nl_runners/export" -d '{"format": "google-api", "mode": "removes"}' | mask > "$OUT/h-removes.jsonl"
c "$URL/v1/segments/nl_runners/export/ack" -d '{"format": "google-api"}' | mask > "$OUT/h-ack.json"
c "$URL/v1/profiles/lookup?email=$EMAIL" | mask > "$OUT/h-lookup.json"
c "$URL/v1/privacy/access?email=$EMAIL" | mask > "$OUT/h-access.json"
c "$URL/v1/privacy/objections" | mask > "$OUT/h-objections.json"
c "$URL/v1/records" -d '[{"source":"crm","identifiers":{"email":"golden@example.com"},"attributes":{"country":"NL"}},{"bad":1}]' | mask > "$OUT/h-ingest.json"
c "$URL/v1/segments/count" -d '{"expr": "country = "}' | mask > "$OUT/h-error.json"
c "$URL/v1/privacy/forget" -d '{"email": "golden@example.com"}' | mask > "$OUT/h-forget.json"
c "$URL/v1/audit?limit=50" | mask > "$OUT/h-audit.json"
c "$URL/healthz" > "$OUT/h-health.json"
kill $SERVER; wait $SERVER 2>/dev/null || true
"$BIN" --data "$DATA" --json check | mask > "$OUT/check-after.json" || true
ls "$OUT" | wc -l
