#!/usr/bin/env python3
"""cidb and DuckDB side by side over the same resolved profiles.

Loads the CSV tables of `cidb dump-tables` into a persistent DuckDB file, checks that
DuckDB's count of every query's `sql` equals cidb's count of its `expr` (both evaluated at
the same pinned time), then times both and prints a markdown table.

Run through `benches/peers/segments.sh`, which creates the venv and the tables.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import duckdb

# Column types of the fixed tables (see `cidb dump-tables`).
TABLES = {
    "list_values": {"pid": "UINTEGER", "field": "VARCHAR", "value": "VARCHAR"},
    "identifier_types": {"pid": "UINTEGER", "type": "VARCHAR"},
    "consent": {"pid": "UINTEGER", "purpose": "VARCHAR", "granted": "BOOLEAN", "at_ms": "BIGINT"},
    "sources": {"pid": "UINTEGER", "source": "VARCHAR"},
    "suppressed": {"pid": "UINTEGER", "list": "VARCHAR"},
    "scores": {"pid": "UINTEGER", "model": "VARCHAR", "percentile": "INTEGER"},
    "events": {
        "pid": "UINTEGER",
        "type": "VARCHAR",
        "category": "VARCHAR",
        "at_ms": "BIGINT",
        "value": "DECIMAL(18,3)",
    },
}
# Numbers (at most 1e12, three decimals) fit DECIMAL(18,3), held as 64-bit integers: exact
# sums and comparisons at the index's precision. (DECIMAL(38,3) is a 128-bit integer and
# made DuckDB's scans of `events` about 40x slower.)
# `profiles` columns: the dump's profiles.schema.json kinds.
KIND_TYPES = {"text": "VARCHAR", "number": "DECIMAL(18,3)", "bool": "BOOLEAN", "date": "DATE"}

# Whole years completed since `bd` on date `d` (segments.md: a 29 February birthday
# completes a year on 1 March in other years).
AGE_MACRO = """
CREATE OR REPLACE MACRO cidb_age(bd, d) AS
  year(d) - year(bd)
  - CASE WHEN month(d) * 100 + day(d) < month(bd) * 100 + day(bd) THEN 1 ELSE 0 END
"""


def load(con, tables_dir):
    """(Re)creates every table from the CSV files; returns the row counts."""
    with open(os.path.join(tables_dir, "profiles.schema.json")) as f:
        schema = json.load(f)
    # read_csv's `columns` are positional: follow the file's header.
    with open(os.path.join(tables_dir, "profiles.csv"), newline="") as f:
        header = next(csv.reader(f))
    tables = dict(TABLES)
    tables["profiles"] = {
        col: "UINTEGER" if col == "pid" else KIND_TYPES[schema[col]] for col in header
    }
    counts = {}
    for name, columns in tables.items():
        path = os.path.join(tables_dir, f"{name}.csv").replace("'", "''")
        cols = ", ".join(f"'{c}': '{t}'" for c, t in columns.items())
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', header = true, "
            f"columns = {{{cols}}}, quote = '\"', escape = '\"', nullstr = '')"
        )
        counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    con.execute(AGE_MACRO)
    con.execute("CHECKPOINT")
    return counts


def parse_at(at):
    t = datetime.strptime(at.replace("Z", "+00:00"), "%Y-%m-%dT%H:%M:%S%z")
    return t.astimezone(timezone.utc)


def bind(sql, at):
    """The SQL with the evaluation time substituted: `$AT_MS` (ms since the epoch) and
    `$AT_DATE` (its UTC date, YYYY-MM-DD)."""
    at_ms = int(at.timestamp() * 1000)
    return sql.replace("$AT_MS", str(at_ms)).replace("$AT_DATE", at.strftime("%Y-%m-%d"))


def cidb_bench(args):
    cmd = [
        args.cidb, "--data", args.data, "--json", "bench",
        "--queries", args.queries, "--at", args.at, "--runs", str(args.runs),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return {r["name"]: r for r in json.loads(out.stdout)["results"]}


def fmt_us(us):
    if us < 1000:
        return f"{us:.1f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1e6:.2f} s"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({model}), {mem} RAM, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", required=True, help="directory of `cidb dump-tables`")
    ap.add_argument("--duckdb", required=True, help="DuckDB database file (created)")
    ap.add_argument("--queries", required=True, help="benches/queries.json")
    ap.add_argument("--cidb", required=True, help="the cidb binary")
    ap.add_argument("--data", required=True, help="the cidb data directory")
    ap.add_argument("--at", required=True, help="evaluation time, RFC 3339 (UTC, seconds)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the markdown results here too")
    ap.add_argument("--only", help="comma-separated query names")
    ap.add_argument("--keep-going", action="store_true",
                    help="time the queries even when counts differ (still exits 1)")
    args = ap.parse_args()
    at = parse_at(args.at)

    with open(args.queries) as f:
        queries = json.load(f)["queries"]
    if args.only:
        wanted = set(args.only.split(","))
        queries = [q for q in queries if q["name"] in wanted]
    missing = [q["name"] for q in queries if not q.get("sql")]
    if missing:
        sys.exit(f"queries without `sql`: {', '.join(missing)}")

    con = duckdb.connect(args.duckdb)
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    rows = load(con, args.tables)
    load_s = time.perf_counter() - started
    print(f"DuckDB {duckdb.__version__}: loaded {rows} in {load_s:.1f} s", file=sys.stderr)

    print(f"cidb bench: {len(queries)} queries x {args.runs} runs at {args.at}", file=sys.stderr)
    cidb = cidb_bench(args)

    # Counts first: a timing of a wrong answer means nothing.
    mismatches = []
    for q in queries:
        ours = cidb[q["name"]]["count"]
        theirs = con.execute(bind(q["sql"], at)).fetchone()[0]
        q["duckdb_count"] = theirs
        if ours != theirs:
            mismatches.append((q["name"], ours, theirs))
    for name, ours, theirs in mismatches:
        print(f"COUNT MISMATCH {name}: cidb {ours}, DuckDB {theirs}", file=sys.stderr)
    if mismatches and not args.keep_going:
        sys.exit(f"{len(mismatches)} of {len(queries)} queries give different counts")

    lines = [
        f"cidb vs DuckDB {duckdb.__version__} (threads={args.threads}), "
        f"{rows['profiles']:,} live profiles, {rows['events']:,} events, "
        f"evaluated at {args.at}, {args.runs} runs each",
        f"machine: {machine()}",
        "",
        "| query | count | cidb p50 | cidb p99 | DuckDB median | DuckDB / cidb p50 |",
        "|---|---|---|---|---|---|",
    ]
    for q in queries:
        sql = bind(q["sql"], at)
        con.execute(sql).fetchone()  # warm-up
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            con.execute(sql).fetchone()
            times.append((time.perf_counter() - t) * 1e6)
        median = statistics.median(times)
        r = cidb[q["name"]]
        ratio = median / r["p50_us"] if r["p50_us"] > 0 else float("inf")
        flag = "" if r["count"] == q["duckdb_count"] else f" (DuckDB: {q['duckdb_count']:,})"
        lines.append(
            f"| `{q['name']}` | {r['count']:,}{flag} | {fmt_us(r['p50_us'])} | "
            f"{fmt_us(r['p99_us'])} | {fmt_us(median)} | {ratio:,.1f}× |"
        )
        print(lines[-1], file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    con.close()
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
