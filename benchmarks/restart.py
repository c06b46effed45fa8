"""Does a restart continue exactly where the run stopped? The same inputs ingested by one
engine into one store, and by a new engine every so often (as successive processes would)
into another; then the two stores compared row by row: what speed.py's digest reads (each
article's story and join score, its syndication group, kind and score, each story's size,
active day and state). Prints the counts of rows that differ and exits 1 when any does
(docs/benchmarks.md, "Restart").

Two kinds of input:

- the first N articles of a stream (make_stream.py), in batches, split into K+1 runs:

      python benchmarks/restart.py /tmp/synoptic-stream-100k.jsonl --n 30000 --restarts 4

- a dataset's documents in a shuffled order, one ingest call each as `synoptic eval` streams
  them, with a new engine every E documents: undated documents, documents dated years back
  ("late") and small stories, which exercise what the stream barely does (late articles held
  until the next eviction, the split checks' member matrices). Undated articles' active days
  are their ingestion times, which differ between the two runs by the seconds between them:
  active days are compared by whole day here (the engine compares them with whole days only).

      python benchmarks/restart.py --ecbplus ../shared/datasets/ecbplus/ECB+ --every 40
      python benchmarks/restart.py --multinews ../shared/datasets/multinews/sample_validation.csv --every 25
      python benchmarks/restart.py --ecbplus ../shared/datasets/ecbplus/ECB+ --every 40 --dated
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import sys
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from dates import START, synthetic_days  # benchmarks/dates.py: the same synthetic dates
from speed import stored_rows  # benchmarks/speed.py (this script's folder): what it digests

from synoptic import Engine, Settings
from synoptic.evaluate import clustering_scores, load_ecbplus, load_multinews
from synoptic.ingest import Reader


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stream", nargs="?", help="a JSONL stream (make_stream.py)")
    parser.add_argument("--n", type=int, default=30000, help="articles to ingest")
    parser.add_argument("--restarts", type=int, default=4, help="new engines after the first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ecbplus", type=Path, help="ECB+ folder: its documents instead")
    parser.add_argument("--multinews", type=Path, help="Multi-News CSV: its documents instead")
    parser.add_argument("--every", type=int, default=40, help="documents per engine")
    parser.add_argument("--seed", type=int, default=0, help="the documents' shuffle")
    parser.add_argument(
        "--dated",
        action="store_true",
        help="give the documents dates as dates.py does (each event within 3 days of a random "
        "day of one year), still shuffled: most arrive late, before the window",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        once, each = f"sqlite:///{Path(tmp) / 'once.db'}", f"sqlite:///{Path(tmp) / 'each.db'}"
        if args.ecbplus or args.multinews:
            docs = load_ecbplus(args.ecbplus) if args.ecbplus else load_multinews(args.multinews)
            random.Random(args.seed).shuffle(docs)
            items: list[Any] = [doc.document() for doc in docs]
            if args.dated:
                items = _dated(docs, items, args.seed)
            f1 = [_one_by_one(items, once, None, docs), _one_by_one(items, each, args.every, docs)]
            print(f"B-cubed F1 against the gold stories: {f1[0]:.4f} in one run, {f1[1]:.4f}")
            parts, whole_days = -(-len(items) // args.every), True
        else:
            if not args.stream:
                parser.error("give a stream, or --ecbplus / --multinews")
            reader = Reader(max_bytes=10 * 2**20)
            items = list(itertools.islice(reader.read([args.stream]), args.n))
            parts, whole_days = args.restarts + 1, False
            size = -(-len(items) // parts)
            with Engine(settings=Settings(db_url=once, workers=args.workers)) as eng:
                eng.ingest_items(items)
            for start in range(0, len(items), size):
                with Engine(settings=Settings(db_url=each, workers=args.workers)) as eng:
                    eng.ingest_items(items[start : start + size])
        a, b = stored_rows(once), stored_rows(each)
    if whole_days:
        for rows in (a, b):
            rows["stories"] = {
                k: (v[0], math.floor(v[1]), *v[2:]) for k, v in rows["stories"].items()
            }
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


def _dated(docs: list[Any], items: list[Any], seed: int) -> list[Any]:
    """The documents with dates.py's synthetic publication dates."""
    day = synthetic_days(docs, seed)
    return [
        replace(
            item, meta={**item.meta, "published": (START + timedelta(days=day[d.id])).isoformat()}
        )
        for d, item in zip(docs, items, strict=True)
    ]


def _one_by_one(items: list[Any], url: str, every: int | None, docs: list[Any]) -> float:
    """Ingest one document per call (a new engine every ``every``); B-cubed F1 of the stories
    at the end against the documents' gold labels (a rejected document stands alone)."""
    ids: list[str | None] = []
    eng = Engine(settings=Settings(db_url=url))
    try:
        for i, item in enumerate(items):
            if every and i and i % every == 0:
                eng.close()
                eng = Engine(settings=Settings(db_url=url))
            report = eng.ingest_items([item])
            ids.append((report.new or report.duplicates or [None])[0])
        pred = [eng.story_of(a) if a else f"rejected:{n}" for n, a in enumerate(ids)]
    finally:
        eng.close()
    return float(clustering_scores([d.label for d in docs], pred)["bcubed_f1"])


if __name__ == "__main__":
    main()
