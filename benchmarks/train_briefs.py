"""Learn the brief's sentence scorer on the Multi-News dev half only; write data/brief_model.json.

For every row of the first half of the validation sample, every sentence a brief of that row's
documents can choose from gets its features (``BriefWriter.sentence_table``) and a target: its
share of words and of word pairs found in the human summary (stemmed, as ROUGE counts them),
plus 1 when a greedy ROUGE oracle picks it for the summary. A ridge regression over the
standardised features and their pairwise products learns the target. The second half is never
read here: it is the report split of `benchmarks/briefs.py`.

    python benchmarks/train_briefs.py --multinews ../shared/datasets/multinews/sample_validation.csv
    python benchmarks/train_briefs.py --multinews ... --cv   # dev cross-validation, writes nothing

The ridge strength, the target, the features and the summary's redundancy cut (``REDUNDANCY``)
were chosen by 5-fold cross-validation over the dev rows. Two features that scored the same in
cross-validation (relative position in the article, the word budget) were dropped because the
polynomial then ranked the last sentence of a four-sentence article above its lead.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from nltk.stem import porter
from rouge_score import tokenize
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from synoptic.brief import SENTENCE_FEATURES, BriefWriter, SentenceModel
from synoptic.engine import syndication_groups
from synoptic.evaluate import cluster_articles, load_multinews_clusters, rouge, truncate_words
from synoptic.model import Article, SyndicationGroup

ALPHA = 30.0
OUT = Path(__file__).resolve().parents[1] / "src/synoptic/data/brief_model.json"
_STEMMER = porter.PorterStemmer()


def tokens(text: str) -> list[str]:
    """Words as rouge-score counts them (lower-cased, stemmed when longer than 3 letters)."""
    return [_STEMMER.stem(w) if len(w) > 3 else w for w in tokenize.tokenize(text, None)]


def _f1(hits: int, produced: int, wanted: int) -> float:
    if not hits:
        return 0.0
    p, r = hits / produced, hits / wanted
    return 2 * p * r / (p + r)


def targets(sentences: list[str], reference: str) -> np.ndarray:
    ref = tokens(reference)
    ref1, ref2 = Counter(ref), Counter(pairwise(ref))
    toks = [tokens(s) for s in sentences]
    uni = [Counter(t) for t in toks]
    bi = [Counter(pairwise(t)) for t in toks]
    y = np.array(
        [
            sum((u & ref1).values()) / max(1, len(t))
            + sum((b & ref2).values()) / max(1, len(t) - 1)
            for t, u, b in zip(toks, uni, bi, strict=True)
        ]
    )
    # greedy oracle: add the sentence that most raises ROUGE-1 + ROUGE-2 F1 until the length
    chosen: list[int] = []
    got1, got2, best, used = Counter(), Counter(), 0.0, 0
    while used < len(ref):
        scores = []
        for i in range(len(toks)):
            if i in chosen:
                continue
            s1, s2 = got1 + uni[i], got2 + bi[i]
            score = _f1(sum((s1 & ref1).values()), s1.total(), len(ref)) + _f1(
                sum((s2 & ref2).values()), max(1, s2.total()), max(1, len(ref) - 1)
            )
            scores.append((score, i))
        if not scores or max(scores)[0] <= best:
            break
        best, pick = max(scores)
        chosen.append(pick)
        got1, got2, used = got1 + uni[pick], got2 + bi[pick], used + len(toks[pick])
    y[chosen] += 1.0
    return y


def fit(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The sentence model as ``data/brief_model.json`` stores it."""
    pipe = make_pipeline(
        StandardScaler(), PolynomialFeatures(2), StandardScaler(), Ridge(alpha=ALPHA)
    ).fit(x, y)
    first, poly, second, ridge = (step for _, step in pipe.steps)
    coef = ridge.coef_ / second.scale_  # fold the second standardisation into the weights
    return {
        "features": list(SENTENCE_FEATURES),
        "mean": first.mean_.round(6).tolist(),
        "scale": first.scale_.round(6).tolist(),
        "low": x.min(axis=0).round(6).tolist(),
        "high": x.max(axis=0).round(6).tolist(),
        "powers": poly.powers_.tolist(),
        "coef": coef.round(6).tolist(),
        "intercept": round(float(ridge.intercept_ - coef @ second.mean_), 6),
        "alpha": ALPHA,
    }


def cross_validate(rows: list[Row], folds: int = 5) -> dict[str, float | int]:
    """Mean ROUGE of briefs whose scorer never saw their row (``folds``-fold over the rows)."""
    pairs = []
    for k in range(folds):
        train = [r for i, r in enumerate(rows) if i % folds != k]
        model = SentenceModel.from_json(
            fit(np.vstack([r.x for r in train]), np.concatenate([r.y for r in train]))
        )
        writer = BriefWriter(model=model)
        for r in rows[k::folds]:
            n = len(r.reference.split())
            brief = writer.write(r.articles, r.groups, words=n)
            summary = " ".join(s.text for s in brief.summary)
            pairs.append((truncate_words(summary, n), r.reference))
    return rouge(pairs)


@dataclass
class Row:
    articles: list[Article]
    groups: list[SyndicationGroup]
    reference: str
    x: np.ndarray
    y: np.ndarray


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--multinews", required=True)
    parser.add_argument(
        "--cv",
        action="store_true",
        help="print 5-fold cross-validated ROUGE over the dev rows instead of writing the model",
    )
    args = parser.parse_args()
    writer = BriefWriter()
    rows = []
    clusters = load_multinews_clusters(args.multinews, "first")
    for cluster in clusters:
        unique, groups = syndication_groups(cluster_articles(cluster))
        sentences, features = writer.sentence_table(unique, groups)
        if sentences:
            y = targets(sentences, cluster.summary)
            rows.append(Row(unique, groups, cluster.summary, features, y))
    if args.cv:
        print(json.dumps(cross_validate(rows)))
        return
    x, y = np.vstack([r.x for r in rows]), np.concatenate([r.y for r in rows])
    model = {
        "trained": date.today().isoformat(),
        "data": f"Multi-News validation sample, first half ({len(clusters)} rows, {len(y)} sentences)",
        **fit(x, y),
    }
    OUT.write_text(json.dumps(model, indent=1) + "\n")
    print(f"wrote {OUT} ({len(y)} sentences from {len(rows)} rows)")


if __name__ == "__main__":
    main()
