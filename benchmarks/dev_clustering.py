"""Dev-split clustering scores over several shuffled orders: how the split settings and the
operating point were chosen (docs/benchmarks.md). Only the dev splits are read: ECB+ topics
{2, 5, 12, 18, 21, 23, 34, 35} and the first half of the Multi-News file.

    python benchmarks/dev_clustering.py --ecbplus ../shared/datasets/ecbplus/ECB+ \\
        --multinews ../shared/datasets/multinews/sample_validation.csv \\
        [--split-linkage weighted] [--split-margin 0.4] [--eagerness 0.5] [--orders 5] \\
        [--max-candidates 20] [--late-margin 1.5]
"""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import synoptic.cluster as cluster
from synoptic.evaluate import (
    ECB_DEV_TOPICS,
    LabeledDoc,
    evaluate_clustering,
    load_ecbplus,
    load_multinews,
)


def _configure(
    linkage: str | None, margin: float | None, candidates: int | None, late: float | None
) -> None:
    if late is not None:
        cluster.LATE_MARGIN = late
    if candidates is not None:
        cluster.MAX_CANDIDATES = candidates
    if linkage is not None:
        cluster.SPLIT_LINKAGE = linkage
    if margin is not None:
        cluster.SPLIT_MARGIN = margin


def _run(job: tuple[list[LabeledDoc], float, int]) -> dict[str, Any]:
    docs, eagerness, seed = job
    return evaluate_clustering(docs, merge_eagerness=eagerness, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ecbplus", required=True)
    parser.add_argument("--multinews", required=True)
    parser.add_argument("--split-linkage", choices=["average", "weighted", "complete", "ward"])
    parser.add_argument("--split-margin", type=float, help="logits (cluster.SPLIT_MARGIN)")
    parser.add_argument("--eagerness", type=float, default=0.5)
    parser.add_argument("--max-candidates", type=int, help="stories scored per article")
    parser.add_argument("--late-margin", type=float, help="logits (cluster.LATE_MARGIN)")
    parser.add_argument("--orders", type=int, default=5)
    args = parser.parse_args()
    dev = {
        "ECB+ dev": [
            d for d in load_ecbplus(args.ecbplus) if int(d.label.split("/")[0]) in ECB_DEV_TOPICS
        ],
        "Multi-News dev": load_multinews(args.multinews, "first"),
    }
    with ProcessPoolExecutor(
        2,
        initializer=_configure,
        initargs=(args.split_linkage, args.split_margin, args.max_candidates, args.late_margin),
    ) as pool:
        for name, docs in dev.items():
            runs = list(
                pool.map(_run, [(docs, args.eagerness, seed) for seed in range(args.orders)])
            )
            f1 = [float(r["bcubed_f1"]) for r in runs]
            p = statistics.mean(float(r["bcubed_precision"]) for r in runs)
            r = statistics.mean(float(r["bcubed_recall"]) for r in runs)
            print(
                f"{name}: B3 F1 {statistics.mean(f1):.4f} (P {p:.3f} R {r:.3f}), "
                f"spread over {args.orders} orders {max(f1) - min(f1):.3f}"
            )


if __name__ == "__main__":
    main()
