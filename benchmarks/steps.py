"""Where the ingesting process's time goes, step by step: the stream's first ``--warm``
articles are ingested into a new store untimed, then the next ``--timed`` ones with a
wall-clock timer around each step of the ingesting process (assignment of copies and of other
articles, wire-copy matching, learning, split checks, late merges, eviction, batch writes).
A profiler spreads its own cost over every Python call; these timers do not, so they are what
docs/benchmarks.md ("Where the time goes") compares before and after a change (run the old
code from a worktree with ``PYTHONPATH`` and alternate: this machine's speed drifts).

    python benchmarks/steps.py /tmp/synoptic-stream-100k.jsonl --warm 12000 --timed 4000 \
        --workers 2

Steps overlap: an eviction writes the open batch first, so part of ``evict`` is ``flush``, and
``add`` holds all of them but the batch writes at the end of the ingest.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import synoptic.cluster as cluster_module
import synoptic.dedup as dedup_module
import synoptic.engine as engine_module
from synoptic import Engine
from synoptic.settings import Settings

STEPS = ("add", "assign copy", "assign other", "match", "commit", "split", "late", "evict", "flush")


def timed(totals: dict[str, list[float]], cls: type, name: str, step: Callable[[Any], str]) -> None:
    """Wrap ``cls.name`` so that each call adds its wall time to ``totals[step(kwargs)]``."""
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            entry = totals[step(kwargs)]
            entry[0] += time.perf_counter() - start
            entry[1] += 1

    setattr(cls, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stream", help="pre-extracted JSONL (benchmarks/make_stream.py)")
    parser.add_argument("--warm", type=int, default=12_000, help="articles ingested untimed")
    parser.add_argument("--timed", type=int, default=4_000, help="articles then timed")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    totals: dict[str, list[float]] = {step: [0.0, 0] for step in STEPS}
    every = {
        (engine_module.Engine, "_add"): "add",
        (engine_module.Engine, "_maybe_split"): "split",
        (engine_module.Engine, "_late_merge"): "late",
        (engine_module.Engine, "_evict"): "evict",
        (engine_module.Engine, "_flush"): "flush",
        (cluster_module.StoryClusterer, "commit"): "commit",
        (dedup_module.SyndicationIndex, "match"): "match",
    }
    for (cls, name), step in every.items():
        timed(totals, cls, name, lambda _kwargs, step=step: step)
    timed(
        totals,
        cluster_module.StoryClusterer,
        "assign",
        lambda kwargs: "assign copy" if kwargs.get("forced") else "assign other",
    )
    with tempfile.TemporaryDirectory() as tmp:
        warm, later = Path(tmp) / "warm.jsonl", Path(tmp) / "timed.jsonl"
        with open(args.stream, "rb") as lines:
            warm.write_bytes(b"".join(itertools.islice(lines, args.warm)))
            later.write_bytes(b"".join(itertools.islice(lines, args.timed)))
        settings = Settings(db_url=f"sqlite:///{Path(tmp) / 'steps.db'}", workers=args.workers)
        with Engine(settings=settings) as engine:
            engine.ingest([warm])
            for entry in totals.values():
                entry[:] = [0.0, 0]
            start, cpu = time.perf_counter(), os.times()
            report = engine.ingest([later])
            wall, after = time.perf_counter() - start, os.times()
    busy = (after.user - cpu.user + after.system - cpu.system) / wall
    print(
        f"{len(report.new)} new articles after {args.warm}: {wall:.1f} s, "
        f"{len(report.new) / wall:.1f} articles/s, ingesting process busy {busy:.2f}"
    )
    print("| step | calls | seconds | ms per call | share of the time |")
    print("|---|---|---|---|---|")
    for step, (seconds, calls) in totals.items():
        per = 1000 * seconds / calls if calls else 0.0
        print(f"| {step} | {calls} | {seconds:.2f} | {per:.3f} | {seconds / wall:.1%} |")


if __name__ == "__main__":
    main()
