"""Evaluation on public datasets: loaders, clustering metrics, and the real engine run on them.

Dataset paths are always arguments (see ``../shared/datasets/README.md`` in a checkout that has
them); nothing here knows where they live.
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import random
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synoptic.errors import InputRejected
from synoptic.model import Article, Document

ECB_DEV_TOPICS = frozenset({2, 5, 12, 18, 21, 23, 34, 35})
Half = Literal["first", "second", "all"]


@dataclass(frozen=True)
class LabeledDoc:
    id: str
    label: str
    title: str
    text: str
    url: str | None = None

    def document(self) -> Document:
        meta: dict[str, Any] = {"id": self.id, "title": self.title}
        if self.url:
            meta["url"] = self.url
        return Document(self.id, "text", self.text, meta)


_SPACE_BEFORE = re.compile(r"\s+([,.;:!?%)\]}'’”])")
_SPACE_AFTER = re.compile(r"([(\[{$“])\s+")


def detokenize(tokens: Sequence[str]) -> str:
    text = " ".join(tokens)
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    return text.replace(" n't", "n't").replace(" 's", "'s")


def load_ecbplus(root: Path, topics: set[int] | None = None) -> list[LabeledDoc]:
    """ECB+ documents; gold label = (topic, ecb|ecbplus). The first sentence, when it is a URL,
    is the article's URL, not text."""
    root = Path(root)
    if not root.is_dir():
        raise InputRejected(
            str(root), "not a folder: pass the ECB+ folder holding the topic folders"
        )
    docs: list[LabeledDoc] = []
    for folder in sorted(root.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not folder.is_dir() or not folder.name.isdigit():
            continue
        topic = int(folder.name)
        if topics is not None and topic not in topics:
            continue
        for path in sorted(folder.glob("*.xml")):
            sentences: dict[int, list[str]] = defaultdict(list)
            try:
                tokens = list(ET.parse(path).getroot().iter("token"))
                for token in tokens:
                    sentences[int(token.get("sentence", "0"))].append(token.text or "")
            except (ET.ParseError, ValueError) as exc:
                raise InputRejected(str(path), f"not an ECB+ document: {exc}") from None
            lines = [detokenize(sentences[k]) for k in sorted(sentences)]
            url = None
            if lines and re.match(r"^https?\s*:", lines[0].replace(" ", "")):
                url = lines.pop(0).replace(" ", "")
            if not lines:
                continue
            kind = "ecbplus" if path.stem.endswith("ecbplus") else "ecb"
            docs.append(
                LabeledDoc(path.stem, f"{topic}/{kind}", lines[0], "\n\n".join(lines[1:]), url)
            )
    if not docs:
        raise InputRejected(
            str(root), "no ECB+ documents found (expected <topic>/<topic>_<n>ecb.xml)"
        )
    return docs


def _multinews_rows(path: Path, half: Half) -> list[tuple[int, dict[str, str]]]:
    """(row number, row) of a Multi-News CSV; ``half`` picks the first or second half."""
    csv.field_size_limit(sys.maxsize)
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise InputRejected(str(path), f"not a Multi-News CSV: not UTF-8 text ({exc})") from None
    except csv.Error as exc:
        raise InputRejected(str(path), f"not a Multi-News CSV: {exc}") from None
    if not {"documents", "summary"} <= set(columns):
        raise InputRejected(
            str(path),
            "not a Multi-News CSV: it needs the columns 'documents' and 'summary' "
            f"(its first line has {_columns_said(columns)})",
        )
    middle = len(rows) // 2
    bounds = {"first": (0, middle), "second": (middle, len(rows)), "all": (0, len(rows))}[half]
    return [(r, rows[r]) for r in range(*bounds)]


def _documents(row: dict[str, str], r: int, path: Path) -> list[str]:
    """A Multi-News row's documents: a Python list of strings, written as text."""
    try:
        value = ast.literal_eval(row["documents"] or "")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise InputRejected(
            f"{path}: row {r + 2}", "its 'documents' is not a list of texts like ['...', '...']"
        )
    return value


def load_multinews(path: Path, half: Half = "all") -> list[LabeledDoc]:
    """Multi-News documents; gold label = row number."""
    docs: list[LabeledDoc] = []
    for r, row in _multinews_rows(path, half):
        for d, raw in enumerate(_documents(row, r, path)):
            paragraphs = [p.strip() for p in re.split(r"\n\s*\n", raw) if p.strip()]
            if len(paragraphs) < 2:
                paragraphs = [p.strip() for p in raw.split("\n") if p.strip()]
            if not paragraphs:
                continue
            docs.append(
                LabeledDoc(f"mn{r}_{d}", str(r), paragraphs[0], "\n\n".join(paragraphs[1:]))
            )
    return docs


def bcubed(gold: Sequence[str], pred: Sequence[str]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1, averaged over items."""
    pairs = Counter(zip(gold, pred, strict=True))
    gold_sizes, pred_sizes = Counter(gold), Counter(pred)
    n = len(gold)
    precision = sum(c * c / pred_sizes[p] for (_, p), c in pairs.items()) / n
    recall = sum(c * c / gold_sizes[g] for (g, _), c in pairs.items()) / n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def clustering_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float | int]:
    from sklearn.metrics import adjusted_rand_score, v_measure_score

    p, r, f = bcubed(gold, pred)
    return {
        "bcubed_precision": round(p, 4),
        "bcubed_recall": round(r, 4),
        "bcubed_f1": round(f, 4),
        "ari": round(float(adjusted_rand_score(gold, pred)), 4),
        "v_measure": round(float(v_measure_score(gold, pred)), 4),
        "n_docs": len(gold),
        "n_gold": len(set(gold)),
        "n_pred": len(set(pred)),
    }


def evaluate_clustering(
    docs: Sequence[LabeledDoc],
    *,
    merge_eagerness: float = 0.5,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
    model: Any = None,
) -> dict[str, float | int]:
    """Stream ``docs`` one at a time, in a shuffled order, through a real Engine on a fresh
    temporary SQLite store; score the stories it forms. A document the engine rejects stands
    alone as its own predicted story (so rejections cost recall; they are counted), and so are
    the accepted documents that carried a publication date (given, or inferred from the text or
    the URL: the dataset loaders give none)."""
    from synoptic.engine import Engine
    from synoptic.settings import Settings

    order = list(docs)
    random.Random(seed).shuffle(order)
    gold: list[str] = []
    article_of: list[str | None] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db_url=f"sqlite:///{tmp}/eval.db", merge_eagerness=merge_eagerness)
        with Engine(settings=settings, cluster_model=model) as engine:
            for doc in order:
                report = engine.ingest_items([doc.document()])
                ids = report.new or report.duplicates
                gold.append(doc.label)
                article_of.append(ids[0] if ids else None)
                if progress is not None:
                    progress()
            # the stories as they stand at the end (after late merges and splits)
            pred = [
                engine.story_of(a) if a else f"rejected:{doc.id}"
                for a, doc in zip(article_of, order, strict=True)
            ]
            dated = sum(1 for a in article_of if a and engine.article(a).published is not None)
    scores = clustering_scores(gold, pred)
    scores["n_rejected"] = article_of.count(None)
    scores["n_dated"] = dated
    return scores


# -- briefs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """One Multi-News row: its documents and the human summary (leading "– " removed)."""

    index: int
    documents: tuple[str, ...]
    summary: str


def load_multinews_clusters(path: Path, half: Half = "all") -> list[Cluster]:
    return [
        Cluster(
            r,
            tuple(d for d in _documents(row, r, path) if d.strip()),
            row["summary"].strip().removeprefix("–").strip(),
        )
        for r, row in _multinews_rows(path, half)
    ]


def truncate_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def rouge(pairs: Sequence[tuple[str, str]]) -> dict[str, float | int]:
    """Mean ROUGE-1/2/L F1 (rouge-score, stemming on) in percent over (summary, reference)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for summary, reference in pairs:
        scores = scorer.score(reference, summary)
        for key in totals:
            totals[key] += scores[key].fmeasure
    n = max(1, len(pairs))
    return {**{k: round(100 * v / n, 2) for k, v in totals.items()}, "n_clusters": len(pairs)}


def cluster_documents(cluster: Cluster) -> list[Document]:
    """Multi-News documents as plain-text documents (the first line is the title)."""
    docs = []
    for i, raw in enumerate(cluster.documents):
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", raw) if p.strip()]
        docs.append(Document(f"multinews:{cluster.index}:{i}", "text", "\n\n".join(paragraphs), {}))
    return docs


def cluster_articles(cluster: Cluster) -> list[Article]:
    """The cluster's documents extracted as articles (those the extractor rejects left out)."""
    from synoptic.extract import Extractor

    extractor = Extractor()
    articles = []
    for doc in cluster_documents(cluster):
        try:
            articles.append(extractor.extract(doc))
        except InputRejected:
            continue
    return articles


def synoptic_summary(cluster: Cluster, words: int) -> str:
    """The summary of a brief of exactly this cluster's documents, ``words`` long."""
    from synoptic.engine import brief_of

    articles = cluster_articles(cluster)
    if not articles:
        return ""
    brief = brief_of(articles, words=words)
    return " ".join(s.text for s in brief.summary)


def evaluate_briefs(
    clusters: Sequence[Cluster],
    summarize: Callable[[Cluster, int], str] = synoptic_summary,
    progress: Callable[[], None] | None = None,
) -> dict[str, float | int]:
    """ROUGE of each cluster's summary, with the reference's length as the word budget and the
    summary truncated to it."""
    pairs = []
    for cluster in clusters:
        n = len(cluster.summary.split())
        pairs.append((truncate_words(summarize(cluster, n), n), cluster.summary))
        if progress is not None:
            progress()
    return rouge(pairs)


# -- extraction ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of the ScrapingHub article-extraction benchmark: its HTML and gold body."""

    id: str
    url: str
    html: str
    body: str


def load_extraction_pages(root: Path) -> list[Page]:
    """``root/ground-truth.json`` (id -> {"url", "articleBody"}) and ``root/html/<id>.html.gz``
    (UTF-8, as the benchmark ships them)."""
    root = Path(root)
    truth_path = root / "ground-truth.json"
    if not truth_path.is_file():
        raise InputRejected(
            str(root), "no ground-truth.json here: give the benchmark's folder (with html/)"
        )
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputRejected(str(truth_path), f"not a JSON object of pages: {exc}") from None
    if not isinstance(truth, dict):
        raise InputRejected(str(truth_path), "not a JSON object of pages (id -> articleBody)")
    pages = []
    for page_id, gold in sorted(truth.items()):
        path = root / "html" / f"{page_id}.html.gz"
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                html = handle.read()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise InputRejected(
                str(path), f"cannot read this page of the ground truth ({exc})"
            ) from None
        pages.append(Page(page_id, gold.get("url", ""), html, gold.get("articleBody", "")))
    return pages


_WORD = re.compile(r"\w+")


def _shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _WORD.findall(text)
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens)


def shingle_match(gold: str, predicted: str) -> tuple[float, float, float]:
    """(tp, fp, fn) over word 4-gram shingles (``\\w+`` words, counted with multiplicity), as
    fractions of their sum, so every page weighs the same: the benchmark's own measure."""
    want, got = _shingles(gold), _shingles(predicted)
    tp = sum((want & got).values())
    fp = sum((got - want).values())
    fn = sum((want - got).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def extraction_scores(matches: Sequence[tuple[float, float, float]]) -> dict[str, float | int]:
    """Mean precision over the pages where something was extracted, mean recall over the pages
    with a gold body, and the F1 of those means (as the benchmark's evaluate.py)."""
    precisions = [tp / (tp + fp) for tp, fp, _ in matches if tp + fp > 0]
    recalls = [tp / (tp + fn) for tp, _, fn in matches if tp + fn > 0]
    p = sum(precisions) / len(precisions) if precisions else 0.0
    r = sum(recalls) / len(recalls) if recalls else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
        "n_pages": len(matches),
    }


def synoptic_body(page: Page) -> str:
    """synoptic's article text of a page ("" when it rejects the page)."""
    from synoptic.extract import Extractor

    try:
        article = Extractor().extract(Document(page.id, "html", page.html, {"url": page.url}))
    except InputRejected:
        return ""
    return article.text


def evaluate_extraction(
    pages: Sequence[Page],
    extract: Callable[[Page], str] = synoptic_body,
    progress: Callable[[], None] | None = None,
) -> dict[str, float | int]:
    """Shingle precision/recall/F1 of each page's extracted body against the gold body; pages
    the extractor rejects count as empty (and are counted)."""
    matches, empty = [], 0
    for page in pages:
        body = extract(page)
        empty += not body.strip()
        matches.append(shingle_match(page.body, body))
        if progress is not None:
            progress()
    return {**extraction_scores(matches), "n_empty": empty}


def _columns_said(columns: Sequence[str]) -> str:
    """A CSV's column names for a message: the first five, each cut at 30 characters (a file
    that is not a CSV makes one long "column" of its first line)."""
    if not columns:
        return "no columns"
    shown = [repr(c if len(c) <= 30 else c[:29] + "…") for c in columns[:5]]
    more = f" and {len(columns) - 5} more" if len(columns) > 5 else ""
    return f"the columns {', '.join(shown)}{more}"
