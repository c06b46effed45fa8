"""Story clustering benchmark: synoptic against the baselines a user would reach for.

Every system's one parameter is tuned on the dev split (ECB+ dev topics; the first half of the
Multi-News file) and reported on the other split. synoptic streams documents one at a time in a
shuffled order through the real engine; its eagerness is tuned on the mean over 5 dev orders,
and its report numbers are the mean over 5 orders, with their spread.

    python benchmarks/clustering.py --ecbplus ../shared/datasets/ecbplus/ECB+ \
        --multinews ../shared/datasets/multinews/sample_validation.csv
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date

import numpy as np
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_distances

from synoptic.evaluate import (
    ECB_DEV_TOPICS,
    LabeledDoc,
    clustering_scores,
    evaluate_clustering,
    load_ecbplus,
    load_multinews,
)

Labels = list[str]


def _texts(docs: Sequence[LabeledDoc]) -> list[str]:
    return [d.title + "\n" + d.text for d in docs]


def _tfidf(docs: Sequence[LabeledDoc]):
    return TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=1).fit_transform(
        _texts(docs)
    )


def agglomerative(docs: Sequence[LabeledDoc], threshold: float, seed: int = 0) -> Labels:
    if len(docs) < 2:
        return ["0"] * len(docs)
    x = _tfidf(docs).toarray()
    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold
    )
    return [str(v) for v in model.fit_predict(x)]


def hdbscan(docs: Sequence[LabeledDoc], min_cluster_size: float, seed: int = 0) -> Labels:
    dist = cosine_distances(_tfidf(docs)).astype(np.float64)
    labels = HDBSCAN(
        min_cluster_size=int(min_cluster_size), min_samples=1, metric="precomputed", copy=True
    ).fit_predict(dist)
    return [f"c{v}" if v >= 0 else f"noise{i}" for i, v in enumerate(labels)]


def single_pass(docs: Sequence[LabeledDoc], threshold: float, seed: int = 0) -> Labels:
    """The classic stream clusterer: each document joins the most similar centroid above the
    threshold or opens a cluster; documents arrive in the same shuffled order synoptic sees."""
    x = _tfidf(docs)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    centroids: list[np.ndarray] = []
    labels = [""] * len(docs)
    for i in order:
        v = x[i].toarray().ravel()
        best, best_sim = -1, -1.0
        for c, centroid in enumerate(centroids):
            norm = np.linalg.norm(centroid) or 1.0
            sim = float(v @ centroid) / norm
            if sim > best_sim:
                best, best_sim = c, sim
        if best >= 0 and best_sim >= threshold:
            centroids[best] = centroids[best] + v
            labels[i] = str(best)
        else:
            centroids.append(v.copy())
            labels[i] = str(len(centroids) - 1)
    return labels


def synoptic(docs: Sequence[LabeledDoc], eagerness: float, seed: int = 0) -> dict[str, float | int]:
    return evaluate_clustering(docs, merge_eagerness=eagerness, seed=seed)


PEERS: dict[str, tuple[Callable[..., Labels], list[float]]] = {
    "TF-IDF + agglomerative (average, cosine)": (
        agglomerative,
        [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
    ),
    "TF-IDF + HDBSCAN": (hdbscan, [2, 3, 4, 5, 8]),
    "single-pass TF-IDF": (single_pass, [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]),
}
EAGERNESS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def _f1(job: tuple[list[LabeledDoc], float, int]) -> float:
    docs, eagerness, seed = job
    return float(synoptic(docs, eagerness, seed)["bcubed_f1"])


def tune_eagerness(
    dev: list[LabeledDoc], seeds: int, mapper: Callable[..., Iterable[float]] = map
) -> float:
    """The EAGERNESS with the best mean dev F1 over ``seeds`` shuffled orders (one order's F1
    moves by up to its spread, enough to flip the choice); the first on a tie. dates.py uses
    it too. ``mapper``: a process pool's ``map``, or the builtin."""
    f1 = list(mapper(_f1, [(dev, e, seed) for e in EAGERNESS for seed in range(seeds)]))
    means = [statistics.mean(f1[i * seeds : (i + 1) * seeds]) for i in range(len(EAGERNESS))]
    return EAGERNESS[means.index(max(means))]


def run(name: str, dev: list[LabeledDoc], test: list[LabeledDoc], seeds: int) -> list[dict]:
    rows = []
    # synoptic: eagerness tuned on dev, reported on test over `seeds` orders.
    tuned = tune_eagerness(dev, seeds)
    runs, elapsed = [], 0.0
    for seed in range(seeds):
        start = time.perf_counter()
        runs.append(synoptic(test, tuned, seed))
        elapsed += time.perf_counter() - start
    f1s = [float(r["bcubed_f1"]) for r in runs]
    best = dict(runs[0])
    for key in ("bcubed_precision", "bcubed_recall", "bcubed_f1", "ari", "v_measure"):
        best[key] = round(statistics.mean(float(r[key]) for r in runs), 4)
    rows.append(
        {
            "dataset": name,
            "system": "synoptic (online, one doc at a time)",
            "param": f"merge_eagerness={tuned}",
            **best,
            "f1_spread": round(max(f1s) - min(f1s), 4),
            "f1_orders": [round(f, 4) for f in f1s],  # printed under the table
            "docs_per_s": round(len(test) * seeds / elapsed, 1),
        }
    )
    for system, (fn, grid) in PEERS.items():
        param = max(
            grid, key=lambda p: clustering_scores([d.label for d in dev], fn(dev, p))["bcubed_f1"]
        )
        start = time.perf_counter()
        labels = fn(test, param)
        elapsed = time.perf_counter() - start
        scores = clustering_scores([d.label for d in test], labels)
        rows.append(
            {
                "dataset": name,
                "system": system,
                "param": f"{param}",
                **scores,
                "f1_spread": None,
                "docs_per_s": round(len(test) / elapsed, 1),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    head = "| dataset (report split) | system | tuned on dev | B³ P | B³ R | B³ F1 | ARI | V | F1 spread (5 orders) | docs/s |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        spread = "" if r["f1_spread"] is None else f"{r['f1_spread']:.3f}"
        lines.append(
            f"| {r['dataset']} | {r['system']} | {r['param']} | {r['bcubed_precision']:.3f} | {r['bcubed_recall']:.3f} "
            f"| **{r['bcubed_f1']:.3f}** | {r['ari']:.3f} | {r['v_measure']:.3f} | {spread} | {r['docs_per_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ecbplus", help="the ECB+ folder holding topic folders")
    parser.add_argument("--multinews", help="the Multi-News sample_validation.csv")
    parser.add_argument(
        "--seeds", type=int, default=5, help="shuffled orders for synoptic on the report split"
    )
    parser.add_argument("--json", action="store_true", help="print rows as JSON instead of a table")
    args = parser.parse_args()
    rows: list[dict] = []
    if args.ecbplus:
        every = load_ecbplus(args.ecbplus)
        dev = [d for d in every if int(d.label.split("/")[0]) in ECB_DEV_TOPICS]
        test = [d for d in every if int(d.label.split("/")[0]) not in ECB_DEV_TOPICS]
        rows += run(f"ECB+ held-out topics ({len(test)} docs)", dev, test, args.seeds)
    if args.multinews:
        dev, test = (
            load_multinews(args.multinews, "first"),
            load_multinews(args.multinews, "second"),
        )
        rows += run(f"Multi-News 2nd half, pooled ({len(test)} docs)", dev, test, args.seeds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"Clustering benchmark, {date.today().isoformat()}, Python {platform.python_version()}, {platform.machine()}"
    )
    print(table(rows))
    for r in rows:
        if r.get("f1_orders"):
            print(f"{r['dataset']}: synoptic's F1 per order {r['f1_orders']}")


if __name__ == "__main__":
    main()
