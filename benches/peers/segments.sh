#!/usr/bin/env bash
# cidb and DuckDB side by side on the segments of benches/queries.json (issue 18, part 0).
#
#   benches/peers/segments.sh [--data DIR | --persons N] [options]
#
# With --data, uses that cidb database (`cidb bench` saves the file's segments in it,
# nothing else is written). Without it, generates and
# imports --persons N (default 20,000) into the scratch directory first: the quick smoke
# run is `benches/peers/segments.sh --persons 2000 --runs 3`.
#
# Steps: a venv with a pinned DuckDB (pip, once per scratch dir); `cidb dump-tables`;
# DuckDB loads the tables into SCRATCH/peers.duckdb (threads=2); every query's `sql`
# must count what cidb counts for its `expr` at the same --at (a mismatch fails, naming
# the query and both counts); then `cidb bench --runs N` (p50/p99) and DuckDB's median
# of N runs, as a markdown table on stdout and in SCRATCH/segments.md (or --out).
#
# Options:
#   --data DIR        cidb data directory to read
#   --persons N       generate this many persons when no --data (default 20000)
#   --records FILE    import this JSON Lines file instead of generating (with no --data)
#   --suppress NAME=FILE  with --records: `cidb suppress import NAME FILE` after the
#                     import (repeatable)
#   --queries FILE    queries with `sql` (default benches/queries.json; edge cases:
#                     benches/peers/edge/queries.json with --records edge/records.jsonl)
#   --seed S          generator seed (default 1)
#   --runs N          timed runs per query, both engines (default 30)
#   --at RFC3339      evaluation time (default 2026-11-01T00:00:00Z, the generator's
#                     reference time)
#   --scratch DIR     venv, tables, DuckDB file, results (default /tmp/cidb-peers)
#   --cidb BIN        cidb binary (default: target/release/cidb, built if missing)
#   --only a,b        only these queries
#   --out FILE        results file (default SCRATCH/segments.md)
#   --keep-going      time the queries even when counts differ (still exits 1)
set -euo pipefail

DUCKDB_VERSION=1.5.6
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

DATA= RECORDS= QUERIES=$REPO/benches/queries.json PERSONS=20000 SEED=1 RUNS=30 AT=2026-11-01T00:00:00Z SCRATCH=/tmp/cidb-peers
CIDB= ONLY= OUT= KEEP= SUPPRESS=()
while [ $# -gt 0 ]; do
  case $1 in
    --data) DATA=$2; shift 2 ;;
    --persons) PERSONS=$2; shift 2 ;;
    --records) RECORDS=$2; shift 2 ;;
    --queries) QUERIES=$2; shift 2 ;;
    --suppress) SUPPRESS+=("$2"); shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --at) AT=$2; shift 2 ;;
    --scratch) SCRATCH=$2; shift 2 ;;
    --cidb) CIDB=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --keep-going) KEEP=--keep-going; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)
OUT=${OUT:-$SCRATCH/segments.md}

if [ -z "$CIDB" ]; then
  TARGET=${CARGO_TARGET_DIR:-$REPO/target}
  CIDB=$TARGET/release/cidb
  if [ ! -x "$CIDB" ]; then
    (cd "$REPO" && cargo build --release -p cidb-server)
  fi
fi

# DuckDB, installed by pip into the scratch dir's venv.
VENV=$SCRATCH/venv
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "duckdb==$DUCKDB_VERSION"
fi

if [ -z "$DATA" ]; then
  # Made afresh by this build each time (a database of an older build may not open).
  DATA=$SCRATCH/data
  rm -rf "$DATA"
  if [ -z "$RECORDS" ]; then
    echo "generating $PERSONS persons (seed $SEED)" >&2
    RECORDS=$SCRATCH/records.jsonl
    "$CIDB" generate --persons "$PERSONS" --seed "$SEED" --out "$RECORDS"
  fi
  echo "importing $RECORDS into $DATA" >&2
  "$CIDB" --data "$DATA" import "$RECORDS" >/dev/null
  for s in ${SUPPRESS[@]+"${SUPPRESS[@]}"}; do
    "$CIDB" --data "$DATA" suppress import "${s%%=*}" "${s#*=}" >/dev/null
  done
fi

# The models the queries score with (the file's `models`: name -> seed), trained afresh so
# that the dumped scores and the ones `cidb bench` reads are the same.
python3 -c 'import json, sys
for name, seed in json.load(open(sys.argv[1])).get("models", {}).items():
    print(name, seed, sep="\t")' "$QUERIES" |
  while IFS=$'\t' read -r name seed; do
    echo "cidb model train $name --seed '$seed'" >&2
    "$CIDB" --data "$DATA" model train "$name" --seed "$seed" >/dev/null
  done

TABLES=$SCRATCH/tables
rm -rf "$TABLES"
echo "cidb dump-tables --without-personal --out $TABLES" >&2
"$CIDB" --data "$DATA" dump-tables --without-personal --out "$TABLES"

"$VENV/bin/python" "$HERE/peers.py" \
  --tables "$TABLES" --duckdb "$SCRATCH/peers.duckdb" --queries "$QUERIES" \
  --cidb "$CIDB" --data "$DATA" --at "$AT" --runs "$RUNS" --out "$OUT" \
  ${ONLY:+--only "$ONLY"} $KEEP
echo "results: $OUT" >&2
