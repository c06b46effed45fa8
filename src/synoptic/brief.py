"""Briefs: align sentences across a story's articles into claims, then write a cited summary.

A claim is a set of sentences, from different articles, that state the same thing (idf-weighted
content-word overlap). Its status counts *independent reports* (syndication groups), never
articles: a wire text republished ten times is one report. Two reports that align on a statement
but give a different figure for the same thing ("10,000 troops" / "20,000 troops") conflict.
The summary is extractive: every sentence is copied verbatim from an article and cites where.
Which claims it carries is decided by a sentence scorer whose weights were learned on the
Multi-News dev half (``benchmarks/train_briefs.py`` writes ``data/brief_model.json``), over
features a reader would name: how many independent reports state it, how central it is to the
story, how early it comes, how long it is, how much it shares with the headlines.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import sparse

from synoptic.analyze import (
    Mention,
    Recognizer,
    dates_in,
    default_recognizer,
    merge_entities,
    speaker_of,
)
from synoptic.embed import SentenceEncoder, load_sentence_encoder
from synoptic.model import (
    Article,
    Brief,
    Citation,
    Claim,
    ClaimStatus,
    SummarySentence,
    SyndicationGroup,
)
from synoptic.render import brief_from_json, brief_json
from synoptic.settings import Settings
from synoptic.text import Sentence, SentenceSplitter, content_terms, number_value, words

MIN_SENTENCE_WORDS = 6
# A brief reads at most this many of a story's articles (see BriefWriter._to_read): a brief
# of 60 long articles takes seconds on one core, and its matrices grow with the square
MAX_ARTICLES = 60
# The briefs kept for re-use hold at most this many articles (their texts: ~100 MB)
CACHED_ARTICLES = 20_000
ALIGN_THRESHOLD = 0.42
EMBED_ALIGN_THRESHOLD = 0.8  # cosine of two sentences' embeddings that says they state one thing
# share of a sentence's content words already in the summary that makes it redundant
REDUNDANCY = 0.5
LONG_SENTENCE_WORDS = 40
SENTENCE_FEATURES = (
    "reports_share",  # independent reports stating the claim / reports in the story
    "reports",  # the same, capped at 4
    "agreed",  # two or more independent reports
    "centrality",  # summed similarity to every sentence, scaled to the story's most central
    "other_reports",  # mean best similarity to each other article's sentences
    "log_index",  # log(1 + sentence index in its article)
    "lead",  # the article's first sentence
    "log_words",
    "long",  # more than LONG_SENTENCE_WORDS words
    "quote",  # contains a quotation mark
    "title_overlap",  # share of its content words found in the story's titles
    "topicality",  # mean share of articles using each of its content words
    "articles",  # articles in the story / 10
)
_QUANTITY_SKIP = {"to", "and", "or", "-", "–", "about", "some", "nearly", "over", "than", "more"}


@dataclass(frozen=True)
class _Unit:
    article: Article
    group: str
    sentence: Sentence
    position: float  # 0 = lead, 1 = last sentence
    terms: frozenset[str]
    clauses: tuple[frozenset[str], ...]
    index: int  # sentence number in its article
    speaker: str | None = None


@dataclass(frozen=True)
class _Distinct:
    """A story's sentences by text: ``first`` the first unit of each distinct text, ``key``
    each unit's distinct text, ``counts`` how many units have it, ``articles`` the articles
    that have it."""

    first: list[int]
    key: np.ndarray
    counts: np.ndarray
    articles: list[set[str]]

    @classmethod
    def of(cls, units: list[_Unit]) -> _Distinct:
        index: dict[str, int] = {}
        first: list[int] = []
        articles: list[set[str]] = []
        key = np.empty(len(units), dtype=np.intp)
        for i, u in enumerate(units):
            d = index.setdefault(u.sentence.text, len(first))
            if d == len(first):
                first.append(i)
                articles.append(set())
            articles[d].add(u.article.id)
            key[i] = d
        return cls(first, key, np.bincount(key, minlength=len(first)).astype(float), articles)


_CLAUSE_BREAK = re.compile(r",\s+|\s+[–—-]\s+|;\s+|:\s+")
MIN_CLAUSE_TERMS = 5


def clauses(text: str) -> tuple[frozenset[str], ...]:
    """Content-term sets of a sentence's clauses; fragments too short to state anything are
    folded into the clause before them."""
    out: list[set[str]] = []
    for piece in _CLAUSE_BREAK.split(text):
        terms = set(content_terms(piece))
        if out and len(terms) < MIN_CLAUSE_TERMS:
            out[-1] |= terms
        elif terms:
            out.append(terms)
    return tuple(frozenset(c) for c in out if len(c) >= MIN_CLAUSE_TERMS)


def quantities(text: str) -> dict[str, set[str]]:
    """Numbers and the noun they count: {"troops": {"20000", "30000"}}."""
    tokens = words(text)
    found: dict[str, set[str]] = {}
    for i, token in enumerate(tokens):
        value = number_value(token)
        if value is None or (len(value) == 4 and value.startswith(("19", "20"))):
            continue  # years are dates, not quantities
        for nxt in tokens[i + 1 : i + 5]:
            if nxt in _QUANTITY_SKIP or number_value(nxt) is not None:
                continue
            terms = content_terms(nxt)
            if terms:
                found.setdefault(terms[0], set()).add(value)
            break
    return found


def _conflict(qa: dict[str, set[str]], qb: dict[str, set[str]]) -> dict[str, set[str]] | None:
    """The first noun (in sorted order) that two sentences' :func:`quantities` count with no
    value in common, with both sides' values."""
    for unit in sorted(qa.keys() & qb.keys()):
        if qa[unit].isdisjoint(qb[unit]):
            return {unit: qa[unit] | qb[unit]}
    return None


def _conflicting_values(group: list[_Unit]) -> dict[str, list[str]]:
    """The figures that a claim's sentences give differently, each with the articles that give
    it. Each distinct sentence's quantities are read once, and sentences are compared as
    distinct texts (a wire sentence repeated by 300 articles is one text): a big story's claims
    were quadratic in their sentences, each pair re-reading both."""
    articles_of: dict[str, set[str]] = {}
    for u in group:
        articles_of.setdefault(u.sentence.text, set()).add(u.article.id)
    found_in = {text: quantities(text) for text in articles_of}
    figures = {text: set().union(*q.values()) for text, q in found_in.items()}
    values: dict[str, list[str]] = {}
    texts = sorted(articles_of)
    for n, a in enumerate(texts):
        for b in texts[n + 1 :]:
            if len(articles_of[a] | articles_of[b]) < 2:
                continue  # two sentences of one article
            found = _conflict(found_in[a], found_in[b])
            for value in sorted(set().union(*found.values())) if found else ():
                values[value] = sorted(
                    set().union(*(ids for t, ids in articles_of.items() if value in figures[t]))
                )
    return values


@dataclass(frozen=True)
class SentenceModel:
    """Ridge regression over standardised :data:`SENTENCE_FEATURES` and their pairwise products
    (the products' own standardisation folded into the weights): a sentence's expected share of
    a human summary's words and word pairs."""

    mean: np.ndarray
    scale: np.ndarray
    low: np.ndarray  # the range each feature had in training: values outside it are clipped,
    high: np.ndarray  # since a polynomial extrapolates wildly
    powers: np.ndarray  # one row per model input: the power of each standardised feature
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SentenceModel:
        if list(raw["features"]) != list(SENTENCE_FEATURES):
            raise ValueError("brief model was trained on other features; retrain it")
        return cls(
            np.array(raw["mean"], float),
            np.array(raw["scale"], float),
            np.array(raw["low"], float),
            np.array(raw["high"], float),
            np.array(raw["powers"], int),
            np.array(raw["coef"], float),
            float(raw["intercept"]),
        )

    @staticmethod
    @cache
    def bundled() -> SentenceModel:
        path = resources.files("synoptic").joinpath("data/brief_model.json")
        return SentenceModel.from_json(json.loads(path.read_text()))

    def score(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0)
        z = (np.clip(features, self.low, self.high) - self.mean) / self.scale
        inputs = np.prod(z[:, None, :] ** self.powers[None, :, :], axis=2)
        return np.asarray(inputs @ self.coef + self.intercept)


class BriefShelf(Protocol):
    """Keeps written briefs across processes (:class:`synoptic.store.Store` is one)."""

    def stored_brief(self, story_id: str, words: int, key: str) -> dict[str, Any] | None: ...

    def store_brief(self, story_id: str, words: int, key: str, body: dict[str, Any]) -> None: ...


@cache
def _code_digest() -> str:
    """The code a kept brief was written by: the modules that write briefs and their JSON, and
    the bundled sentence scorer. A brief kept by other code (an upgrade, a change in
    development) is written anew."""
    digest = hashlib.sha256(b"brief body 1")
    here = Path(__file__).parent
    digest.update((here / "data" / "brief_model.json").read_bytes())
    for name in ("brief.py", "analyze.py", "text.py", "model.py", "render.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


class BriefWriter:
    """Writes the :class:`Brief` of a set of articles grouped into syndication groups."""

    def __init__(
        self,
        *,
        words: int = 120,
        splitter: SentenceSplitter | None = None,
        recognizer: Recognizer | None = None,
        spacy_model: str = "en_core_web_sm",
        sentence_model: str = "",
        encoder: SentenceEncoder | None = None,
        model: SentenceModel | None = None,
        max_articles: int = MAX_ARTICLES,
        shelf: BriefShelf | None = None,
    ) -> None:
        self.words = words
        self.max_articles = max_articles
        # where briefs of stories are kept across processes (the store), for the same articles,
        # length and code: a restarted server or the next `synoptic export` reads them back
        self.shelf = shelf
        self._given_in_code = model is not None or encoder is not None  # (nothing names them)
        self._cache: OrderedDict[tuple[Any, ...], Brief] = OrderedDict()
        self._cached_articles = 0
        self._cache_lock = threading.Lock()  # (the web app writes briefs from worker threads)
        self._model = model
        self.sentence_model = sentence_model
        self._encoder = encoder
        self.spacy_model = spacy_model
        self.splitter = splitter or SentenceSplitter()
        self._recognizer = recognizer

    @classmethod
    def from_settings(cls, settings: Settings, shelf: BriefShelf | None = None) -> BriefWriter:
        return cls(
            words=settings.summary_words,
            spacy_model=settings.spacy_model,
            sentence_model=settings.sentence_model,
            shelf=shelf,
        )

    @property
    def encoder(self) -> SentenceEncoder | None:
        return self._encoder or load_sentence_encoder(self.sentence_model)

    @property
    def model(self) -> SentenceModel:
        if self._model is None:
            self._model = SentenceModel.bundled()
        return self._model

    @property
    def recognizer(self) -> Recognizer:
        if self._recognizer is None:
            self._recognizer = default_recognizer(self.spacy_model)
        return self._recognizer

    def write(
        self,
        articles: list[Article],
        groups: list[SyndicationGroup],
        *,
        story_id: str | None = None,
        words: int | None = None,
    ) -> Brief:
        """The brief of these articles. The briefs written last are kept (up to
        :data:`CACHED_ARTICLES` articles among them) and given again for the same articles,
        groups and length: a feed reader's poll or a page reload costs nothing, a story that
        gained or lost an article is written anew."""
        budget = words or self.words
        key = (
            story_id,
            budget,
            self.max_articles,
            tuple(a.id for a in articles),
            tuple((g.id, g.article_ids, g.wire) for g in groups),
        )
        with self._cache_lock:
            if (kept := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                return kept
        shelf, shelved = self.shelf, self._shelf_key(key)
        if shelf is None or shelved is None or story_id is None:
            brief = self._write(articles, groups, story_id, budget)
        elif (body := shelf.stored_brief(story_id, budget, shelved)) is not None:
            brief = brief_from_json(body, articles, groups)
        else:
            brief = self._write(articles, groups, story_id, budget)
            body = {k: v for k, v in brief_json(brief).items() if k not in ("articles", "groups")}
            shelf.store_brief(story_id, budget, shelved, body)
        with self._cache_lock:
            if key not in self._cache:
                self._cache[key] = brief
                self._cached_articles += len(articles)
            while self._cached_articles > CACHED_ARTICLES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached_articles -= len(old.articles)
        return brief

    def _shelf_key(self, key: tuple[Any, ...]) -> str | None:
        """The digest under which the shelf keeps a brief: the articles, groups, length and
        reading limit (``key``), the names and sentence model used, and the code that writes
        briefs. None without a shelf, or with a sentence scorer or encoder given in code
        (nothing names them)."""
        if self.shelf is None or self._given_in_code:
            return None
        parts = [_code_digest(), self.recognizer.name, self.sentence_model, repr(key)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def _write(
        self,
        articles: list[Article],
        groups: list[SyndicationGroup],
        story_id: str | None,
        budget: int,
    ) -> Brief:
        group_of = {aid: g.id for g in groups for aid in g.article_ids}
        read = self._to_read(articles, groups)
        read_ids = {a.id for a in read}
        mentions = self._mentions(read)
        units = self._units(read, group_of, mentions)
        claims = self._claims(units)
        summary = self._summary(claims, budget)
        headline = story_headline(articles)
        ordered = [c for _, _, c in sorted(claims, key=lambda c: (-c[2].independent_reports, c[0]))]
        framed = [g for g in groups if read_ids.intersection(g.article_ids)]
        return Brief(
            story_id=story_id,
            headline=headline,
            summary=tuple(summary),
            claims=tuple(ordered),
            articles=tuple(articles),
            groups=tuple(groups),
            entities=tuple(self._entities(mentions)),
            timeline=tuple(_timeline(ordered)),
            framing=tuple(self._framing(read, framed, ordered, units)),
            entity_recognizer=self.recognizer.name,
            unread=tuple(a.id for a in articles if a.id not in read_ids),
        )

    def _to_read(self, articles: list[Article], groups: list[SyndicationGroup]) -> list[Article]:
        """The articles a brief reads: all of them up to :attr:`max_articles`; past that, one
        article per independent report (the first and the last reports of the story, half
        each, when they are more), then further copies, in the story's order. Reading is what
        a brief costs (sentence splitting, names, every sentence against every other), so a
        story of five hundred reports is briefed from a bounded sample of them."""
        if len(articles) <= self.max_articles:
            return articles
        by_id = {a.id: a for a in articles}
        firsts = [
            next(by_id[i] for i in g.article_ids if i in by_id)
            for g in groups
            if any(i in by_id for i in g.article_ids)
        ]
        grouped = {i for g in groups for i in g.article_ids}
        firsts += [a for a in articles if a.id not in grouped]  # (each is a report of its own)
        if len(firsts) > self.max_articles:
            order = {a.id: n for n, a in enumerate(articles)}
            firsts.sort(key=lambda a: order[a.id])
            early = self.max_articles // 2
            firsts = firsts[:early] + firsts[len(firsts) - (self.max_articles - early) :]
        chosen = {a.id for a in firsts}
        chosen.update(
            itertools.islice(
                (a.id for a in articles if a.id not in chosen), self.max_articles - len(chosen)
            )
        )
        return [a for a in articles if a.id in chosen]

    def _mentions(self, articles: list[Article]) -> dict[str, list[Mention]]:
        """Names in each article, recognised once; offsets are into ``article.text`` (the
        title's mentions get negative offsets)."""
        out = {}
        for a in articles:
            shift = len(a.title) + 1
            out[a.id] = [
                replace(m, start=m.start - shift, end=m.end - shift)
                for m in self.recognizer.mentions(a.title + "\n" + a.text)
            ]
        return out

    @staticmethod
    def _entities(mentions: dict[str, list[Mention]], limit: int = 40) -> list[dict[str, Any]]:
        found = [(article_id, m) for article_id, ms in mentions.items() for m in ms]
        return [e.to_json() for e in merge_entities(found)[:limit]]

    @staticmethod
    def _framing(
        articles: list[Article],
        groups: list[SyndicationGroup],
        claims: list[Claim],
        units: list[_Unit],
    ) -> list[dict[str, Any]]:
        """Per independent report: headline, what it leads with, what only it carries, whom it quotes."""
        by_id = {a.id: a for a in articles}
        out = []
        for group in groups:
            members = [by_id[i] for i in group.article_ids if i in by_id]
            ids = set(group.article_ids)
            lead = next((u.sentence.text for u in units if u.article.id == members[0].id), "")
            speakers = Counter(u.speaker for u in units if u.article.id in ids and u.speaker)
            out.append(
                {
                    "group": group.id,
                    "outlets": sorted({a.outlet or "unknown outlet" for a in members}),
                    "wire": group.wire,
                    "headline": members[0].title,
                    "lead": lead,
                    "only_here": [c.text for c in claims if set(c.article_ids) <= ids],
                    "quotes": [name for name, _ in speakers.most_common()],
                }
            )
        return out

    def _units(
        self,
        articles: list[Article],
        group_of: dict[str, str],
        mentions: dict[str, list[Mention]],
    ) -> list[_Unit]:
        units: list[_Unit] = []
        # a sentence's terms and clauses, read once for all its copies
        parsed: dict[str, tuple[frozenset[str], tuple[frozenset[str], ...]]] = {}
        split = self.splitter.split_many(a.text for a in articles)
        for article, every in zip(articles, split, strict=True):
            sentences = [s for s in every if len(s.text.split()) >= MIN_SENTENCE_WORDS]
            persons = [m for m in mentions[article.id] if m.kind == "person" and m.start >= 0]
            people: list[str] = []
            for i, sentence in enumerate(sentences):
                speaker = speaker_of(sentence.text, people)
                people.extend(m.text for m in persons if sentence.start <= m.start < sentence.end)
                if speaker:
                    people.append(speaker)  # "..., he said" in the next sentence means this speaker
                if sentence.text not in parsed:
                    parsed[sentence.text] = (
                        frozenset(content_terms(sentence.text)),
                        clauses(sentence.text),
                    )
                terms, parts = parsed[sentence.text]
                units.append(
                    _Unit(
                        article,
                        group_of.get(article.id, article.id),
                        sentence,
                        i / max(1, len(sentences) - 1),
                        terms,
                        parts,
                        i,
                        speaker,
                    )
                )
        return units

    @staticmethod
    def _cosine(term_sets: list[frozenset[str]], df: Counter[str], n: int) -> np.ndarray:
        # columns in sorted term order and each row's entries sorted: the sums below then add
        # in the same order in every process (a set's order changes with the hash seed, and so
        # did near-tied cosines, and with them which sentences formed a claim)
        vocab = {t: i for i, t in enumerate(sorted(df))}
        rows, cols, vals = [], [], []
        for r, terms in enumerate(term_sets):
            for term in terms:
                rows.append(r)
                cols.append(vocab[term])
                vals.append(math.log((n + 1) / df[term]) + 1.0)
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(term_sets), max(1, len(vocab))))
        matrix.sort_indices()
        norms = np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1
        norms[norms == 0] = 1.0
        matrix = sparse.diags(1.0 / norms) @ matrix
        return np.asarray((matrix @ matrix.T).toarray())

    def _similarity(self, units: list[_Unit], distinct: _Distinct) -> np.ndarray:
        """Distinct sentence x distinct sentence: the larger of whole-sentence cosine and best
        clause-pair cosine (a long sentence often restates another's main clause and adds its
        own). The idf counts every sentence of every article, copies included, so each entry
        is what the two sentences' own cosine would be among all of them."""
        reps = [units[i] for i in distinct.first]
        df: Counter[str] = Counter()
        for u, copies in zip(reps, distinct.counts.tolist(), strict=True):
            for t in u.terms:
                df[t] += copies
        n = len(units)
        sim = self._cosine([u.terms for u in reps], df, n)
        flat = [c for u in reps for c in u.clauses]
        if flat:
            owners = np.array([i for i, u in enumerate(reps) for _ in u.clauses])
            clause_sim = self._cosine(flat, df, n)
            best = np.zeros_like(sim)
            np.maximum.at(best, (owners[:, None], owners[None, :]), clause_sim)
            sim = np.maximum(sim, best)
        return sim

    def _align(self, units: list[_Unit]) -> tuple[_Distinct, np.ndarray, list[list[int]]]:
        """The story's distinct sentences, their similarities, and every sentence grouped into
        claims: sentences of different articles at least :data:`ALIGN_THRESHOLD` alike in
        words, or (with a sentence model installed) whose embeddings are at least
        :data:`EMBED_ALIGN_THRESHOLD` alike, state the same claim (transitively, most alike
        first, while no article states the claim twice); so do the copies of one sentence.
        Similarities are computed once per distinct sentence: a wire text republished by a
        hundred outlets is compared once, not a hundred times over (the matrix was every
        sentence of every copy squared)."""
        distinct = _Distinct.of(units)
        sim = self._similarity(units, distinct)
        alike = np.where(sim >= ALIGN_THRESHOLD, sim, 0.0)
        if self.encoder is not None:
            vectors = self.encoder.encode([units[i].sentence.text for i in distinct.first])
            cosines = vectors @ vectors.T
            alike = np.maximum(alike, np.where(cosines >= EMBED_ALIGN_THRESHOLD, cosines, 0.0))
        parent = list(range(len(distinct.first)))
        articles = [set(a) for a in distinct.articles]  # per claim (at its root)

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        # most alike first; two claims join only when no article states both, so a claim is
        # one statement with at most one sentence per article: without that rule, chains of
        # alike sentences (A ~ B ~ C ...) ran through a big story's articles and one "claim"
        # took hundreds of different sentences
        rows, cols = np.nonzero(np.triu(alike, k=1))
        for n in np.lexsort((cols, rows, -alike[rows, cols])).tolist():
            i, j = find(int(rows[n])), find(int(cols[n]))
            if i != j and articles[i].isdisjoint(articles[j]):
                parent[j] = i
                articles[i] |= articles[j]
        members: dict[int, list[int]] = {}
        for i, d in enumerate(distinct.key.tolist()):
            members.setdefault(find(d), []).append(i)
        return distinct, sim, list(members.values())

    @staticmethod
    def _features(
        units: list[_Unit], distinct: _Distinct, sim: np.ndarray, claims: list[list[int]]
    ) -> np.ndarray:
        """One row of :data:`SENTENCE_FEATURES` per sentence (copies included: each as if
        compared with every other sentence of every article)."""
        n = len(units)
        key = distinct.key
        reports = np.zeros(n)
        for idx in claims:
            reports[idx] = len({units[i].group for i in idx})
        n_reports = len({u.group for u in units})
        degree = (sim @ distinct.counts)[key]
        centrality = degree / (degree.max() or 1.0)
        article_ids = list(dict.fromkeys(u.article.id for u in units))
        column = {a: k for k, a in enumerate(article_ids)}
        owner = np.array([column[u.article.id] for u in units])
        # the best match in each article of each distinct sentence, then per sentence
        in_article = [np.unique(key[owner == k]) for k in range(len(article_ids))]
        best = np.stack([sim[:, keys].max(axis=1) for keys in in_article], axis=1)
        own = best[key, owner]
        other = (best.sum(axis=1)[key] - own) / max(1, len(article_ids) - 1)
        vocabulary: dict[str, set[str]] = {a: set() for a in article_ids}
        for u in units:
            vocabulary[u.article.id] |= u.terms
        used_by = Counter(t for terms in vocabulary.values() for t in terms)  # articles using t
        titles = {a.id: a.title for a in (u.article for u in units)}
        title_terms = {t for title in titles.values() for t in content_terms(title)}
        rows = []
        for i, u in enumerate(units):
            n_words = len(u.sentence.text.split())
            terms = u.terms
            rows.append(
                [
                    reports[i] / max(1, n_reports),
                    min(reports[i], 4.0),
                    float(reports[i] >= 2),
                    centrality[i],
                    other[i],
                    math.log1p(u.index),
                    float(u.index == 0),
                    math.log(max(1, n_words)),
                    float(n_words > LONG_SENTENCE_WORDS),
                    float(any(q in u.sentence.text for q in '"“”')),
                    len(terms & title_terms) / (len(terms) or 1),
                    sum(used_by[t] for t in terms) / (len(terms) or 1) / len(article_ids),
                    len(article_ids) / 10,
                ]
            )
        return np.array(rows, float).reshape(n, len(SENTENCE_FEATURES))

    def sentence_table(
        self, articles: list[Article], groups: list[SyndicationGroup]
    ) -> tuple[list[str], np.ndarray]:
        """Every sentence a brief of these articles can choose from, and its features (for
        training the sentence scorer)."""
        group_of = {aid: g.id for g in groups for aid in g.article_ids}
        units = self._units(articles, group_of, {a.id: [] for a in articles})
        if not units:
            return [], np.zeros((0, len(SENTENCE_FEATURES)))
        distinct, sim, claims = self._align(units)
        return [u.sentence.text for u in units], self._features(units, distinct, sim, claims)

    def _claims(self, units: list[_Unit]) -> list[tuple[float, float, Claim]]:
        """Claims with their position (0 = lead) and importance (the learned score of their
        best sentence, which also represents them)."""
        if not units:
            return []
        distinct, sim, members = self._align(units)
        score = self.model.score(self._features(units, distinct, sim, members))
        claims: list[tuple[float, float, Claim]] = []
        for idx in members:
            group_units = [units[i] for i in idx]
            reports = {u.group for u in group_units}
            rep = max(idx, key=lambda i: (score[i], -units[i].position))
            status: ClaimStatus = "agreed" if len(reports) >= 2 else "single"
            values = _conflicting_values(group_units)
            if values:
                status = "conflict"
            text = units[rep].sentence.text
            citations = tuple(
                Citation(u.article.id, u.sentence.start, u.sentence.end, u.sentence.text == text)
                for u in sorted(group_units, key=lambda u: u is not units[rep])
            )
            speakers = Counter(u.speaker for u in group_units if u.speaker)
            rep_unit = units[rep]
            claim = Claim(
                text=text,
                status=status,
                article_ids=tuple(dict.fromkeys(u.article.id for u in group_units)),
                independent_reports=len(reports),
                citations=citations,
                values=values,
                speaker=rep_unit.speaker or (speakers.most_common(1)[0][0] if speakers else None),
                dates=tuple(d.value for d in dates_in(text, rep_unit.article.published)),
            )
            claims.append((min(u.position for u in group_units), float(score[rep]), claim))
        return claims

    def _summary(
        self, claims: list[tuple[float, float, Claim]], budget: int
    ) -> list[SummarySentence]:
        """Agreed claims first, then single-source ones, each tier by importance; no sentence
        that restates a chosen one; within the word budget; in reading order."""

        def rank(item: tuple[float, float, Claim]) -> tuple[bool, float]:
            _, importance, claim = item
            return (claim.status == "single", -importance)

        chosen: list[tuple[float, Claim]] = []
        used = 0
        seen_terms: list[set[str]] = []
        for position, _, claim in sorted(claims, key=rank):
            n = len(claim.text.split())
            if chosen and used + n > budget:
                continue
            terms = set(content_terms(claim.text))
            if any(len(terms & s) > REDUNDANCY * min(len(terms), len(s)) for s in seen_terms):
                continue  # says again what a chosen sentence says
            chosen.append((position, claim))
            seen_terms.append(terms)
            used += n
        chosen.sort(key=lambda item: (item[0], item[1].status == "single"))
        return [SummarySentence(c.text, c.citations, c.status) for _, c in chosen]


def _timeline(claims: list[Claim]) -> list[dict[str, Any]]:
    """Dated statements of the story, in date order (partial dates sort by what they give)."""
    rows = [
        {"date": value, "text": c.text, "status": c.status, "article_ids": list(c.article_ids)}
        for c in claims
        for value in c.dates[:1]
    ]
    # full or year-only dates first, in order; dates whose year is unknown ("--09-03") after
    return sorted(rows, key=lambda r: (r["date"].startswith("--"), r["date"].lstrip("-")))


def story_headline(articles: list[Article]) -> str:
    """The title that shares most with the other titles (the highest sum of its title terms'
    Jaccard similarities with theirs; the earliest of those within 1e-9 of it, so that equal
    titles tie however the sums were rounded)."""
    if not articles:
        return ""
    titles = [set(content_terms(a.title)) for a in articles]
    if len(titles) > HEADLINE_EXACT:  # every pair in Python: 3.6 million for 20,000 articles
        centrality = _title_centralities(titles)
    else:
        centrality = np.array(
            [
                sum(len(a & b) / (len(a | b) or 1) for j, b in enumerate(titles) if j != i)
                for i, a in enumerate(titles)
            ]
        )
    best = int(np.flatnonzero(centrality >= centrality.max() - 1e-9)[0])
    headline = re.sub(r"\s+", " ", articles[best].title).strip()
    if len(headline) > HEADLINE_MAX:  # a paragraph taken for a title (a pasted text's first line)
        headline = headline[: headline.rfind(" ", 0, HEADLINE_MAX) + 1 or HEADLINE_MAX]
        headline = headline.rstrip(" ,;:-–—") + "…"
    return headline


HEADLINE_EXACT = 64  # stories up to this many articles: every pair of titles in Python
HEADLINE_MAX = 200  # characters of a headline; a longer title is cut at a word, with "…"


def _title_centralities(titles: list[set[str]], block: int = 1024) -> np.ndarray:
    """Each title's sum of Jaccard similarities with the others, as sparse products (in blocks
    of rows, so that a story of many thousand articles stays small in memory)."""
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, terms in enumerate(titles):
        for term in terms:
            rows.append(i)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
    n = len(titles)
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, max(1, len(vocabulary))))
    sizes = np.asarray(x.sum(axis=1)).ravel()
    out = np.zeros(n)
    for start in range(0, n, block):
        shared = (x[start : start + block] @ x.T).tocoo()
        r, c, both = shared.row + start, shared.col, shared.data
        other = r != c
        r, c, both = r[other], c[other], both[other]
        out += np.bincount(r, weights=both / (sizes[r] + sizes[c] - both), minlength=n)
    return out


def check_faithfulness(brief: Brief) -> list[str]:
    """Problems with a brief's citations; empty when every summary sentence is found verbatim at a
    cited span and every agreed claim stands on two or more independent reports."""
    texts = {a.id: a.text for a in brief.articles}
    problems: list[str] = []
    for sentence in brief.summary:
        if not any(
            texts.get(c.article_id, "")[c.start : c.end] == sentence.text
            for c in sentence.citations
        ):
            problems.append(f"summary sentence not found at its citation: {sentence.text[:80]!r}")
    for claim in brief.claims:
        if claim.status == "agreed" and claim.independent_reports < 2:
            problems.append(
                f"agreed claim with {claim.independent_reports} report: {claim.text[:80]!r}"
            )
    return problems
