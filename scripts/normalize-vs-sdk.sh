#!/usr/bin/env bash
# Compares `cidb normalize` (Meta's normalized values) with the official Python SDK's
# `Normalize` (facebook_business, from pip) on scripts/normalize-sample.jsonl, and prints
# each value where they differ. The SDK goes into a private venv:
#   scripts/normalize-vs-sdk.sh target/release/cidb [SAMPLE]
set -euo pipefail
BIN=$(realpath "$1")
SAMPLE=${2:-$(dirname "$0")/normalize-sample.jsonl}
VENV=${CIDB_SDK_VENV:-${TMPDIR:-/tmp}/cidb-fb-sdk}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "facebook_business==22.0.0"
"$BIN" normalize "$SAMPLE" | "$VENV/bin/python" -c '
import json, sys
from facebook_business.adobjects.serverside.normalize import Normalize
FIELDS = {"email": "em", "phone": "ph", "first_name": "fn", "last_name": "ln",
          "gender": "ge", "city": "ct", "state": "st", "zip": "zp", "country": "country"}
same = differ = 0
for line in sys.stdin:
    row = json.loads(line)
    ours = row["meta"]["normalized"] if row.get("valid") else None
    try:
        theirs = Normalize.normalize_field_skip_hashing(FIELDS[row["field"]], row["raw"])
    except Exception:
        theirs = None
    if ours == theirs:
        same += 1
    else:
        differ += 1
        show = lambda v: json.dumps(v, ensure_ascii=False)
        print("%-10s %-36s cidb %-24s sdk %s" % (row["field"], show(row["raw"]), show(ours), show(theirs)))
print(f"agree on {same} of {same + differ} values")
'
