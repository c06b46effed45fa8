"""Ingest speed on a generated stream of pre-extracted JSONL (see make_stream.py): articles per
second, time per article over successive chunks (is it flat? also "machine-adjusted": against a
fixed yardstick workload timed every 1,000 articles, since a shared machine's speed drifts
within a run), and peak memory; how busy the ingesting process is (its CPU time over the
chunk's time: with ``--workers``, whether it or the workers limit the rate); how long a new engine takes to load the finished store's state
(restart), with and without the id filter the last one saved; a digest of the stored stories
(to check that a speed-up changed none); then, on the first 2,000 texts of the same stream,
the single steps a user could time instead (datasketch's default MinHash, synoptic's
vectorised MinHash, scikit-learn's TF-IDF), as ratios to ingest.

    python benchmarks/make_stream.py ... --n 30000 --out /tmp/stream.jsonl
    python benchmarks/speed.py /tmp/stream.jsonl --chunk 5000
    python benchmarks/speed.py /tmp/stream.jsonl --sample 10 --shuffle 0 --chunk 2000

``--sample N`` keeps every Nth article (a sparser stream over the same days); ``--shuffle SEED``
ingests them out of date order, as an archive might arrive (most articles are then late: see
"Publication dates" in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import random
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from datasketch import MinHash
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import select

import synoptic.engine as engine_module
from synoptic import Engine, Settings
from synoptic.dedup import Fingerprinter, shingle_hashes, word_hashes
from synoptic.evaluate import clustering_scores
from synoptic.ingest import Reader, json_document
from synoptic.model import Document, Rejection
from synoptic.store import (
    Store,
    articles,
    memberships,
    seen_snapshots,
    stories,
    syndication,
)
from synoptic.text import content_terms, words


def _rate(n: int, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return n / (time.perf_counter() - started)


def _worker_peaks_mb(engine: Engine) -> list[float]:
    """Peak RSS of the engine's worker processes (Linux /proc; empty elsewhere)."""
    pool = engine._workers._pool if engine._workers is not None else None
    peaks = []
    for pid in getattr(pool, "_processes", None) or {}:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
        if hwm is not None:
            peaks.append(int(hwm.split()[1]) / 1024)
    return peaks


def _datasketch_minhash(tokens: list[str]) -> MinHash:
    """datasketch's default MinHash of a text's word 5-shingles (SHA-1 per shingle)."""
    m = MinHash(num_perm=128, seed=1)
    m.update_batch([" ".join(tokens[i : i + 5]).encode() for i in range(len(tokens) - 4)])
    return m


CALIBRATION_TEXTS = 100
CALIBRATE_EVERY = 1000  # articles per ingest call, each followed by one yardstick run


def calibration_workload(path: str) -> Callable[[], float]:
    """A fixed single-process workload on the stream's first texts (content terms, then
    datasketch's MinHash of their word 5-shingles): seconds per run (~0.1 s). Timed after every
    CALIBRATE_EVERY articles, so that each chunk's time per article can be read against how
    fast this (shared, drifting) machine ran meanwhile: the median of its runs in the chunk."""
    with open(path, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in itertools.islice(handle, CALIBRATION_TEXTS)]

    def once() -> float:
        started = time.perf_counter()
        for text in texts:
            _datasketch_minhash(content_terms(text))
        return time.perf_counter() - started

    def run() -> float:
        # with the garbage collector off: its pauses grow with the engine's heap, which would
        # make the yardstick depend on what it measures
        gc.disable()
        try:
            return once()
        finally:
            gc.enable()

    once()  # warm caches
    return run


def steps(path: str, ingest_rate: float, n: int = 2000) -> None:
    """Docs/s of single steps on the stream's first ``n`` texts, one process."""
    with open(path, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in itertools.islice(handle, n)]
    tokens = [words(t) for t in texts]
    fingerprinter = Fingerprinter()

    def datasketch_minhash() -> None:
        for tok in tokens:
            _datasketch_minhash(tok)

    def synoptic_minhash() -> None:
        for tok in tokens:
            fingerprinter.signature(shingle_hashes(word_hashes(tok), 5))

    rates = {
        "datasketch MinHash, word 5-shingles (SHA-1 per shingle)": _rate(
            len(texts), datasketch_minhash
        ),
        "synoptic MinHash, same shingles (vectorised)": _rate(len(texts), synoptic_minhash),
        "scikit-learn TfidfVectorizer.fit_transform": _rate(
            len(texts), lambda: TfidfVectorizer().fit_transform(texts)
        ),
    }
    print(
        f"\nsingle steps on the first {len(texts)} texts (one process; the MinHash rows exclude tokenising, TF-IDF includes it):"
    )
    print("| step | docs/s | synoptic's whole ingest / step |")
    print("|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {ingest_rate / rate:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stream")
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument(
        "--limit", type=int, default=0, help="stop after this many articles (0: all)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="extraction/fingerprint processes (Settings)"
    )
    parser.add_argument("--sample", type=int, default=1, help="keep every Nth article")
    parser.add_argument(
        "--score",
        action="store_true",
        help="B-cubed of the final stories against the source text each article copies "
        "(the stream's 'source' field)",
    )
    parser.add_argument(
        "--shuffle", type=int, metavar="SEED", help="ingest in a shuffled order (this seed)"
    )
    parser.add_argument(
        "--recall-cap",
        type=int,
        help="articles a late article's read-backs may hold between evictions "
        f"(engine.RECALL_CAP, {engine_module.RECALL_CAP}: what the cap trades, with --score)",
    )
    args = parser.parse_args()
    if args.recall_cap is not None:
        engine_module.RECALL_CAP = args.recall_cap
    rows: list[dict[str, float]] = []
    worker_peak: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'speed.db'}"
        total, overall = ingest(url, args, rows, worker_peak)
        quality = score(url, args.stream) if args.score else None
        kept = stored_rows(url)
        stored = digest(kept)
        restarts = restart(url)
    kinds = Counter(kind for _, kind, _ in kept["syndication"].values())
    print(
        "| articles | articles/s (chunk) | ms/article | machine-adjusted | busy | peak RSS MB "
        "| stories in memory | late |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['articles']} | {r['chunk_per_s']} | {r['ms_per_article']} | {r['adjusted']} "
            f"| {r['busy']} | {r['peak_rss_mb']} | {r['stories']} | {r['late']} |"
        )
    print(
        "machine-adjusted: the chunk's ms/article divided by the median time of the yardstick "
        f"workload run after every {CALIBRATE_EVERY} of its articles, as a multiple of the first "
        "chunk's (1.0: the same cost per article on a machine running at the same speed); "
        "busy: the ingesting process's CPU time over the chunk's time (near 1: it is what "
        "limits the rate, with --workers too; well under 1: it waits for the workers)"
    )
    print(f"overall: {total} articles at {overall:.1f} articles/s")
    if worker_peak:
        print(f"largest worker process peak RSS: {max(worker_peak):.0f} MB")
    if quality is not None:
        print(
            "stories against source texts: "
            + ", ".join(f"{k} {v}" for k, v in quality.items() if k != "n_gold")
        )
    copies = sum(kinds.values()) - kinds["original"]
    print(
        f"copies among the stored articles: {copies} of {sum(kinds.values())} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()) if k != "original")
        + "; a copy is not scored against other stories)"
    )
    print(f"stored output digest (memberships, syndication, stories): {stored}")
    for line in restarts:
        print(line)
    steps(args.stream, overall)


def shuffled(path: str, sample: int, limit: int, seed: int) -> Iterator[Document]:
    """The stream's every ``sample``-th line (the first ``limit``, 0: all) in a shuffled
    order, read one at a time from their byte offsets (holding the articles themselves would
    add their size to the peak memory measured)."""
    offsets = []
    with open(path, "rb") as handle:
        position = 0
        for number, raw in enumerate(handle, start=1):
            if (number - 1) % sample == 0:
                offsets.append((number, position))
            position += len(raw)
    if limit:
        offsets = offsets[:limit]
    random.Random(seed).shuffle(offsets)
    with open(path, "rb") as handle:
        for number, position in offsets:
            handle.seek(position)
            item = json_document(json.loads(handle.readline()), f"{path}:{number}")
            assert isinstance(item, Document), item
            yield item


def ingest(
    url: str, args: argparse.Namespace, rows: list[dict[str, float]], worker_peak: list[float]
) -> tuple[int, float]:
    """Ingest the stream in chunks, one table row per chunk; (articles, overall articles/s)."""
    reader = Reader(max_bytes=10 * 1024 * 1024)
    with Engine(settings=Settings(db_url=url, workers=args.workers)) as engine:
        items: Iterable[Document | Rejection]
        if args.shuffle is not None:
            items = shuffled(args.stream, args.sample, args.limit, args.shuffle)
        else:
            items = itertools.islice(reader.read([args.stream]), 0, None, args.sample)
            if args.limit:
                items = itertools.islice(items, args.limit)
        calibrate = calibration_workload(args.stream)
        total, first, started = 0, 0.0, time.perf_counter()
        while True:
            chunk = list(itertools.islice(items, args.chunk))
            if not chunk:
                break
            elapsed, cpu, yardsticks, new, late = 0.0, 0.0, [], 0, 0
            for i in range(0, len(chunk), CALIBRATE_EVERY):
                t0, c0 = time.perf_counter(), time.process_time()
                report = engine.ingest_items(chunk[i : i + CALIBRATE_EVERY])
                t1 = time.perf_counter()
                elapsed, cpu = elapsed + t1 - t0, cpu + time.process_time() - c0
                new, late = new + len(report.new), late + len(report.late)
                yardsticks.append(calibrate())
                started += time.perf_counter() - t1  # the yardstick is not ingest time
            worker_peak += _worker_peaks_mb(engine)
            relative = (elapsed / len(chunk)) / statistics.median(yardsticks)
            first = first or relative
            total += len(chunk)
            rows.append(
                {
                    "articles": total,
                    "chunk_per_s": round(len(chunk) / elapsed, 1),
                    "ms_per_article": round(1000 * elapsed / len(chunk), 2),
                    "adjusted": round(relative / first, 2),
                    "busy": round(cpu / elapsed, 2),
                    "new": new,
                    "late": late,
                    "peak_rss_mb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                    ),
                    "stories": len(engine._clusterer.stories_) if engine._clusterer else 0,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        return total, total / (time.perf_counter() - started)


def score(url: str, stream: str) -> dict[str, float | int]:
    """B-cubed and co. of the stored articles' stories (after late merges and splits) against
    the source text each copies. Every copy of one text is one story here, so this measures
    splits (recall) faithfully and understates precision (two texts about one event may
    rightly share a story); compare orders of the same stream, not against other datasets."""
    source = {}
    with open(stream, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            source[record["id"]] = record["source"]
    store = Store(url)
    try:
        with store.transaction() as conn:
            rows = conn.execute(
                select(articles.c.source_id, memberships.c.story_id).join(
                    memberships, memberships.c.article_id == articles.c.id
                )
            ).all()
    finally:
        store.close()
    return clustering_scores([str(source[r[0]]) for r in rows], [r[1] for r in rows])


def stored_rows(url: str) -> dict[str, dict[str, tuple[Any, ...]]]:
    """What the ingest stored, per table by article or story id: every membership (story,
    score), syndication row (group, kind, score) and story (size, active day, clusterer
    state)."""
    store = Store(url)
    try:
        with store.transaction() as conn:
            tables = {
                "memberships": select(
                    memberships.c.article_id, memberships.c.story_id, memberships.c.score
                ),
                "syndication": select(
                    syndication.c.article_id,
                    syndication.c.group_id,
                    syndication.c.kind,
                    syndication.c.score,
                ),
                "stories": select(
                    stories.c.id, stories.c.size, stories.c.active_day, stories.c.centroid
                ),
            }
            return {
                name: {row[0]: tuple(row[1:]) for row in conn.execute(query)}
                for name, query in tables.items()
            }
    finally:
        store.close()


def digest(stored: dict[str, dict[str, tuple[Any, ...]]]) -> str:
    """A digest of :func:`stored_rows`. The same stream and command give the same digest with
    any ``--workers``; a change that should not move any story (a speed-up) must leave it as
    it was."""
    rows = [
        sorted(repr((key, *values)) for key, values in table.items()) for table in stored.values()
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def restart(url: str) -> list[str]:
    """A new engine loading the finished store's learned state: with the id filter the last
    engine saved at close, then with it deleted (every stored id streamed again)."""
    lines = []
    for saved in (True, False):
        if not saved:
            store = Store(url)
            with store.transaction() as conn:
                conn.execute(seen_snapshots.delete())
            store.close()
        started = time.perf_counter()
        with Engine(url) as engine:
            engine._load()
            elapsed = time.perf_counter() - started
            lines.append(
                f"restart, {'with' if saved else 'without'} the saved id filter: {elapsed:.1f} s "
                f"({len(engine._clusterer.stories_) if engine._clusterer else 0} stories, "
                f"{len(engine._story_of)} articles in memory)"
            )
    return lines


if __name__ == "__main__":
    main()
