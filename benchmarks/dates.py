"""What publication dates are worth to story clustering, and what out-of-order arrival costs.

ECB+ and Multi-News carry no publication dates (but for the dates in some ECB+ URLs, which
synoptic reads), so this gives them synthetic ones: every gold event (an ECB+ topic's seminal
event; a Multi-News row) starts on a random day of one year and each of its documents is
published within 3 days of that start. The real engine then streams the documents four ways,
5 orders each: without dates or URLs, shuffled (the clustering benchmark's protocol) and in the
order of those dates (what time order alone does); and with the dates, in time order (a live
stream) and shuffled (an archive ingested out of time order, where the 30-day active window
evicts stories that later documents should have joined). Nothing else is tuned here: each
dataset's merge eagerness is chosen on its dev split by clustering.py's own tuning
(``tune_eagerness``: best mean F1 over the same number of shuffled undated orders), whichever
split is reported.

    python benchmarks/dates.py --ecbplus ../shared/datasets/ecbplus/ECB+ \
        --multinews ../shared/datasets/multinews/sample_validation.csv [--split dev|report]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from clustering import tune_eagerness  # benchmarks/clustering.py (this script's folder)

from synoptic.engine import Engine
from synoptic.evaluate import (
    ECB_DEV_TOPICS,
    LabeledDoc,
    clustering_scores,
    load_ecbplus,
    load_multinews,
)
from synoptic.settings import Settings

MODES = ("no dates", "no dates, in time order", "dates, in time order", "dates, shuffled")
START = datetime(2025, 1, 1, tzinfo=UTC)


def synthetic_days(docs: list[LabeledDoc], seed: int) -> dict[str, float]:
    """Each document's publication day after START: each gold event starts on a random day of
    one year, and its documents are published within 3 days of that."""
    rng = random.Random(seed)
    first = {label: rng.uniform(0, 365) for label in sorted({d.label for d in docs})}
    return {d.id: first[d.label] + rng.uniform(0, 3) for d in docs}


def run(job: tuple[list[LabeledDoc], str, int, float]) -> float:
    docs, mode, seed, eagerness = job
    day = synthetic_days(docs, seed)
    order = list(docs)
    random.Random(seed).shuffle(order)
    if mode.endswith("in time order"):
        order.sort(key=lambda d: day[d.id])
    article_of: list[str | None] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db_url=f"sqlite:///{tmp}/dates.db", merge_eagerness=eagerness)
        with Engine(settings=settings) as engine:
            for d in order:
                doc = d.document()
                if mode.startswith("no dates"):  # no URL either: synoptic reads dates in news URLs
                    doc = replace(doc, meta={k: v for k, v in doc.meta.items() if k != "url"})
                else:
                    published = (START + timedelta(days=day[d.id])).isoformat()
                    doc = replace(doc, meta={**doc.meta, "published": published})
                report = engine.ingest_items([doc])
                ids = report.new or report.duplicates
                article_of.append(ids[0] if ids else None)
            pred = [engine.story_of(a) if a else f"rejected:{i}" for i, a in enumerate(article_of)]
    return float(clustering_scores([d.label for d in order], pred)["bcubed_f1"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ecbplus", required=True)
    parser.add_argument("--multinews", required=True)
    parser.add_argument("--split", choices=["dev", "report"], default="dev")
    parser.add_argument("--orders", type=int, default=5)
    args = parser.parse_args()
    ecb_all = load_ecbplus(args.ecbplus)
    splits = {
        "ECB+": {
            split: [d for d in ecb_all if (int(d.label.split("/")[0]) in ECB_DEV_TOPICS) == dev]
            for split, dev in (("dev", True), ("report", False))
        },
        "Multi-News": {
            "dev": load_multinews(args.multinews, "first"),
            "report": load_multinews(args.multinews, "second"),
        },
    }
    with ProcessPoolExecutor(2) as pool:
        tuned = {
            name: tune_eagerness(halves["dev"], args.orders, pool.map)
            for name, halves in splits.items()
        }
        print(f"merge eagerness tuned on dev: {tuned}\n", flush=True)
        print(
            f"| dataset ({args.split} split) | arrival | B³ F1 (mean of {args.orders}) | spread |"
        )
        print("|---|---|---|---|")
        for name, halves in splits.items():
            docs, eagerness = halves[args.split], tuned[name]
            for mode in MODES:
                jobs = [(docs, mode, seed, eagerness) for seed in range(args.orders)]
                f1 = list(pool.map(run, jobs))
                print(
                    f"| {name} ({len(docs)} docs) | {mode} | {statistics.mean(f1):.3f} "
                    f"| {max(f1) - min(f1):.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
