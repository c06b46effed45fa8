"""Does a restart continue exactly where the run stopped? The first N articles of a stream
(make_stream.py) ingested by one engine into one store, and by K engines one after another
(each a new ``Engine`` on the same store, as K processes would be) into another; then the two
stores compared row by row: what speed.py's digest reads (each article's story and join
score, its syndication group, kind and score, each story's size, active day and state).
Prints the counts of rows that differ and exits 1 when any does (docs/benchmarks.md,
"Restart").

    python benchmarks/restart.py /tmp/synoptic-stream-100k.jsonl --n 30000 --restarts 4
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

from speed import stored_rows  # benchmarks/speed.py (this script's folder): what it digests

from synoptic import Engine, Settings
from synoptic.ingest import Reader


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stream", help="a JSONL stream (make_stream.py)")
    parser.add_argument("--n", type=int, default=30000, help="articles to ingest")
    parser.add_argument("--restarts", type=int, default=4, help="new engines after the first")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    items = list(itertools.islice(Reader(max_bytes=10 * 2**20).read([args.stream]), args.n))
    parts = args.restarts + 1
    size = -(-len(items) // parts)
    with tempfile.TemporaryDirectory() as tmp:
        once, each = f"sqlite:///{Path(tmp) / 'once.db'}", f"sqlite:///{Path(tmp) / 'each.db'}"
        with Engine(settings=Settings(db_url=once, workers=args.workers)) as eng:
            eng.ingest_items(items)
        for start in range(0, len(items), size):
            with Engine(settings=Settings(db_url=each, workers=args.workers)) as eng:
                eng.ingest_items(items[start : start + size])
        a, b = stored_rows(once), stored_rows(each)
    differ = 0
    for table in a:
        rows = [k for k in a[table].keys() | b[table].keys() if a[table].get(k) != b[table].get(k)]
        differ += len(rows)
        line = f"{table}: {len(a[table])} / {len(b[table])} rows, {len(rows)} differ"
        if table == "memberships":
            moved = [k for k in rows if a[table].get(k, (None,))[0] != b[table].get(k, (None,))[0]]
            gaps = [abs(a[table][k][1] - b[table][k][1]) for k in rows if k in a[table]]
            line += f" ({len(moved)} in another story"
            if gaps:
                line += f"; score gaps median {statistics.median(gaps):.4f}, max {max(gaps):.4f}"
            line += ")"
        print(line)
    print(f"{len(items)} inputs, {parts} runs against 1: {differ} rows differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
