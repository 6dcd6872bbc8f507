#!/usr/bin/env bash
# The write path end to end, with DuckDB in the same run (issue 17, part 3):
#
#   benches/peers/write_path.sh [--persons N] [--seed S] [--events M] [--scratch DIR] [--cidb BIN]
#
# Defaults: 1,000,000 persons, seed 1, --events = persons, scratch /tmp/cidb-peers-write
# (everything it writes goes there, and is replaced on each run; about 5 GB at 1M).
# A quick run: benches/peers/write_path.sh --persons 20000
#
# 1. `cidb generate --persons N --seed S --out records.jsonl`
# 2. DuckDB (pinned, pip into SCRATCH/venv, threads=2):
#    CREATE TABLE records AS SELECT * FROM read_json_auto('records.jsonl'); CHECKPOINT
#    (wall time, peak RSS, database file size)
# 3. `cidb import records.jsonl` into a new data directory: wall time (/usr/bin/time),
#    records/s, peak RSS
# 4. `du -sb` of the data directory and of sled/, index.ckpt, keys.bin vs DuckDB's file;
#    then `cidb compact` (wall time, peak RSS) and the sizes again
# 5. reopen: `cidb query 'country = "NL"'` (open + first count) and `cidb stats`
# 6. `cidb export ALL --format hashes|meta-api --policy ALL`: wall time minus the reopen
#    (the query's time), profiles/s
# 7. `cidb generate --events-only --events M` (live.jsonl) and `cidb import` of it onto
#    the database: events/s
# Prints one markdown table with the machine and the data's shape (also SCRATCH/write_path.md).
set -euo pipefail

DUCKDB_VERSION=1.5.6
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

PERSONS=1000000 SEED=1 EVENTS= SCRATCH=/tmp/cidb-peers-write CIDB=
while [ $# -gt 0 ]; do
  case $1 in
    --persons) PERSONS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --scratch) SCRATCH=$2; shift 2 ;;
    --cidb) CIDB=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
EVENTS=${EVENTS:-$PERSONS}
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)

if [ -z "$CIDB" ]; then
  CIDB=${CARGO_TARGET_DIR:-$REPO/target}/release/cidb
  [ -x "$CIDB" ] || (cd "$REPO" && cargo build --release -p cidb-server)
fi
VENV=$SCRATCH/venv
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "duckdb==$DUCKDB_VERSION"
fi

RECORDS=$SCRATCH/records.jsonl LIVE=$SCRATCH/live.jsonl DATA=$SCRATCH/cidb-data
DUCK=$SCRATCH/records.duckdb TIMES=$SCRATCH/times
rm -rf "$DATA" "$DUCK" "$DUCK.wal" "$TIMES" "$SCRATCH"/export.*
mkdir -p "$TIMES"
# timed NAME CMD...: runs CMD under /usr/bin/time; stdout to TIMES/NAME.out; sets WALL
# (seconds) and RSS_KB.
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$TIMES/$name.time" "$@" > "$TIMES/$name.out"
  read -r WALL RSS_KB < "$TIMES/$name.time"
}
json_field() { "$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
calc() { "$VENV/bin/python" -c "print(format($1, '$2'))"; }

echo "1. generate $PERSONS persons (seed $SEED)" >&2
"$CIDB" --json generate --persons "$PERSONS" --seed "$SEED" --out "$RECORDS" > "$TIMES/generate.json"
N_RECORDS=$(json_field "$TIMES/generate.json" records)
N_EVENTS=$(json_field "$TIMES/generate.json" events)
FILE_BYTES=$(stat -c %s "$RECORDS")

echo "2. DuckDB read_json_auto" >&2
timed duckdb "$VENV/bin/python" -c "
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute('SET threads = 2')
con.execute('SET enable_progress_bar = false')
t = time.perf_counter()
con.execute(\"CREATE TABLE records AS SELECT * FROM read_json_auto('\" + sys.argv[2].replace(\"'\", \"''\") + \"')\")
con.execute('CHECKPOINT')
print(time.perf_counter() - t, con.execute('SELECT count(*) FROM records').fetchone()[0])
" "$DUCK" "$RECORDS"
read -r DUCK_LOAD DUCK_ROWS < "$TIMES/duckdb.out"
DUCK_WALL=$WALL DUCK_RSS_KB=$RSS_KB
DUCK_BYTES=$(du -sb "$DUCK" | cut -f1)
[ "$DUCK_ROWS" = "$N_RECORDS" ] || echo "warning: DuckDB loaded $DUCK_ROWS rows of $N_RECORDS records" >&2

echo "3. cidb import" >&2
timed import "$CIDB" --data "$DATA" --json import "$RECORDS"
IMPORT_WALL=$WALL IMPORT_RSS_KB=$RSS_KB

echo "4. disk" >&2
DATA_BYTES=$(du -sb "$DATA" | cut -f1)
part() { if [ -e "$DATA/$1" ]; then du -sb "$DATA/$1" | cut -f1; else echo 0; fi; }
SLED_BYTES=$(part sled) CKPT_BYTES=$(part index.ckpt) KEYS_BYTES=$(part keys.bin)

echo "4b. compact" >&2
timed compact "$CIDB" --data "$DATA" --json compact
COMPACT_WALL=$WALL COMPACT_RSS_KB=$RSS_KB
COMPACT_BYTES=$(du -sb "$DATA" | cut -f1) COMPACT_SLED_BYTES=$(part sled)

echo "5. reopen (after the compaction)" >&2
timed query "$CIDB" --data "$DATA" --json query 'country = "NL"'
QUERY_WALL=$WALL QUERY_RSS_KB=$RSS_KB
timed stats "$CIDB" --data "$DATA" --json stats
STATS_WALL=$WALL STATS_RSS_KB=$RSS_KB
PROFILES=$(json_field "$TIMES/stats.out" profiles)

echo "6. export" >&2
timed export_hashes "$CIDB" --data "$DATA" --json export ALL --format hashes --policy ALL --out "$SCRATCH/export.hashes"
HASHES_WALL=$WALL
timed export_meta "$CIDB" --data "$DATA" --json export ALL --format meta-api --policy ALL --out "$SCRATCH/export.meta.jsonl"
META_WALL=$WALL

echo "7. events-only stream ($EVENTS events)" >&2
"$CIDB" --json generate --events-only --persons "$PERSONS" --seed "$SEED" --events "$EVENTS" --out "$LIVE" > "$TIMES/live.json"
LIVE_RECORDS=$(json_field "$TIMES/live.json" records)
LIVE_EVENTS=$(json_field "$TIMES/live.json" events)
timed live "$CIDB" --data "$DATA" --json import "$LIVE"
LIVE_WALL=$WALL LIVE_RSS_KB=$RSS_KB
DATA_BYTES_AFTER=$(du -sb "$DATA" | cut -f1)

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
RAM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
MB() { calc "$1 / 1e6" ',.1f'; }
met() { if "$VENV/bin/python" -c "import sys; sys.exit(0 if ($1) else 1)"; then echo yes; else echo "**no**"; fi; }
EXPORT_H=$(calc "max($HASHES_WALL - $QUERY_WALL, 0.001)" '.3f')
EXPORT_M=$(calc "max($META_WALL - $QUERY_WALL, 0.001)" '.3f')

{
  echo "Write path, cidb ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')) vs DuckDB $DUCKDB_VERSION (threads=2), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "machine: $(nproc) cores ($CPU), $RAM RAM"
  echo "data: \`cidb generate --persons $PERSONS --seed $SEED\`: $(calc "$N_RECORDS" ',') records, $(calc "$N_EVENTS" ',') events, $(MB "$FILE_BYTES") MB of JSON Lines; $(calc "$PROFILES" ',') live profiles after import; live stream: $(calc "$LIVE_RECORDS" ',') records, $(calc "$LIVE_EVENTS" ',') events"
  echo
  echo "| measure | cidb | DuckDB (same file, same run) | ratio | target (issue 17) | met |"
  echo "|---|---|---|---|---|---|"
  echo "| \`cidb import\` of records.jsonl, wall | $(calc "$IMPORT_WALL" '.2f') s, **$(calc "$N_RECORDS / $IMPORT_WALL" ',.0f') records/s** | — | — | ≥ 50,000 records/s | $(met "$N_RECORDS / $IMPORT_WALL >= 50000") |"
  echo "| the same vs DuckDB's \`read_json_auto\` load + CHECKPOINT (in process; the whole process: $(calc "$DUCK_WALL" '.2f') s) | $(calc "$IMPORT_WALL" '.2f') s | $(calc "$DUCK_LOAD" '.2f') s | $(calc "$IMPORT_WALL / $DUCK_LOAD" '.1f')× | ≤ 2.5× DuckDB | $(met "$IMPORT_WALL <= 2.5 * $DUCK_LOAD") |"
  echo "| peak RSS of that import / load | $(MB "$IMPORT_RSS_KB * 1024") MB | $(MB "$DUCK_RSS_KB * 1024") MB | $(calc "$IMPORT_RSS_KB / $DUCK_RSS_KB" '.1f')× | ≤ 2 GB | $(met "$IMPORT_RSS_KB * 1024 <= 2e9") |"
  echo "| data on disk after import | $(MB "$DATA_BYTES") MB (sled $(MB "$SLED_BYTES"), index.ckpt $(MB "$CKPT_BYTES"), keys.bin $(MB "$KEYS_BYTES")) | $(MB "$DUCK_BYTES") MB | $(calc "$DATA_BYTES / $DUCK_BYTES" '.1f')× | ≤ 5× DuckDB | $(met "$DATA_BYTES <= 5 * $DUCK_BYTES") |"
  echo "| data on disk after \`cidb compact\` ($(calc "$COMPACT_WALL" '.1f') s, RSS $(MB "$COMPACT_RSS_KB * 1024") MB) | $(MB "$COMPACT_BYTES") MB (sled $(MB "$COMPACT_SLED_BYTES")) | $(MB "$DUCK_BYTES") MB | $(calc "$COMPACT_BYTES / $DUCK_BYTES" '.1f')× | ≤ 5× DuckDB | $(met "$COMPACT_BYTES <= 5 * $DUCK_BYTES") |"
  echo "| reopen: \`cidb query 'country = \"NL\"'\` (open + first count) | $(calc "$QUERY_WALL" '.2f') s, RSS $(MB "$QUERY_RSS_KB * 1024") MB | — | — | ≤ 1 s | $(met "$QUERY_WALL <= 1.0") |"
  echo "| reopen: \`cidb stats\` | $(calc "$STATS_WALL" '.2f') s, RSS $(MB "$STATS_RSS_KB * 1024") MB | — | — | — | |"
  echo "| export ALL \`hashes\` --policy ALL, minus the reopen | $(calc "$HASHES_WALL" '.2f') s − $(calc "$QUERY_WALL" '.2f') s: $(calc "$PROFILES / $EXPORT_H" ',.0f') profiles/s | — | — | ≥ 500,000 profiles/s | $(met "$PROFILES / $EXPORT_H >= 500000") |"
  echo "| export ALL \`meta-api\` --policy ALL, minus the reopen | $(calc "$META_WALL" '.2f') s − $(calc "$QUERY_WALL" '.2f') s: $(calc "$PROFILES / $EXPORT_M" ',.0f') profiles/s | — | — | ≥ 500,000 profiles/s | $(met "$PROFILES / $EXPORT_M >= 500000") |"
  echo "| events-only stream onto the database ($(calc "$LIVE_EVENTS" ',') events) | $(calc "$LIVE_WALL" '.2f') s, $(calc "$LIVE_EVENTS / $LIVE_WALL" ',.0f') events/s, RSS $(MB "$LIVE_RSS_KB * 1024") MB | — | — | ≥ 200,000 events/s | $(met "$LIVE_EVENTS / $LIVE_WALL >= 200000") |"
  echo "| data on disk after the stream | $(MB "$DATA_BYTES_AFTER") MB | — | — | — | |"
} | tee "$SCRATCH/write_path.md"
echo "results: $SCRATCH/write_path.md" >&2
