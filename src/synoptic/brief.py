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

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

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
from synoptic.settings import Settings
from synoptic.text import Sentence, SentenceSplitter, content_terms, number_value, words

MIN_SENTENCE_WORDS = 6
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


def _conflict(a: str, b: str) -> dict[str, set[str]] | None:
    qa, qb = quantities(a), quantities(b)
    for unit in qa.keys() & qb.keys():
        if qa[unit].isdisjoint(qb[unit]):
            return {unit: qa[unit] | qb[unit]}
    return None


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
    ) -> None:
        self.words = words
        self._model = model
        self.sentence_model = sentence_model
        self._encoder = encoder
        self.spacy_model = spacy_model
        self.splitter = splitter or SentenceSplitter()
        self._recognizer = recognizer

    @classmethod
    def from_settings(cls, settings: Settings) -> BriefWriter:
        return cls(
            words=settings.summary_words,
            spacy_model=settings.spacy_model,
            sentence_model=settings.sentence_model,
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
        budget = words or self.words
        group_of = {aid: g.id for g in groups for aid in g.article_ids}
        mentions = self._mentions(articles)
        units = self._units(articles, group_of, mentions)
        claims = self._claims(units)
        summary = self._summary(claims, budget)
        headline = story_headline(articles)
        ordered = [c for _, _, c in sorted(claims, key=lambda c: (-c[2].independent_reports, c[0]))]
        return Brief(
            story_id=story_id,
            headline=headline,
            summary=tuple(summary),
            claims=tuple(ordered),
            articles=tuple(articles),
            groups=tuple(groups),
            entities=tuple(self._entities(mentions)),
            timeline=tuple(_timeline(ordered)),
            framing=tuple(self._framing(articles, groups, ordered, units)),
            entity_recognizer=self.recognizer.name,
        )

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
        for article in articles:
            sentences = [
                s
                for s in self.splitter.split(article.text)
                if len(s.text.split()) >= MIN_SENTENCE_WORDS
            ]
            persons = [m for m in mentions[article.id] if m.kind == "person" and m.start >= 0]
            people: list[str] = []
            for i, sentence in enumerate(sentences):
                speaker = speaker_of(sentence.text, people)
                people.extend(m.text for m in persons if sentence.start <= m.start < sentence.end)
                if speaker:
                    people.append(speaker)  # "..., he said" in the next sentence means this speaker
                units.append(
                    _Unit(
                        article,
                        group_of.get(article.id, article.id),
                        sentence,
                        i / max(1, len(sentences) - 1),
                        frozenset(content_terms(sentence.text)),
                        clauses(sentence.text),
                        i,
                        speaker,
                    )
                )
        return units

    @staticmethod
    def _cosine(term_sets: list[frozenset[str]], df: Counter[str], n: int) -> np.ndarray:
        vocab = {t: i for i, t in enumerate(df)}
        rows, cols, vals = [], [], []
        for r, terms in enumerate(term_sets):
            for term in terms:
                rows.append(r)
                cols.append(vocab[term])
                vals.append(math.log((n + 1) / df[term]) + 1.0)
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(term_sets), max(1, len(vocab))))
        norms = np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1
        norms[norms == 0] = 1.0
        matrix = sparse.diags(1.0 / norms) @ matrix
        return np.asarray((matrix @ matrix.T).toarray())

    def _similarity(self, units: list[_Unit]) -> np.ndarray:
        """Sentence x sentence: the larger of whole-sentence cosine and best clause-pair cosine
        (a long sentence often restates another's main clause and adds its own)."""
        df: Counter[str] = Counter(t for u in units for t in u.terms)
        n = len(units)
        sim = self._cosine([u.terms for u in units], df, n)
        flat = [c for u in units for c in u.clauses]
        if flat:
            owners = np.array([i for i, u in enumerate(units) for _ in u.clauses])
            clause_sim = self._cosine(flat, df, n)
            best = np.zeros_like(sim)
            np.maximum.at(best, (owners[:, None], owners[None, :]), clause_sim)
            sim = np.maximum(sim, best)
        return sim

    def _align(self, units: list[_Unit]) -> tuple[np.ndarray, list[list[int]]]:
        """Sentence similarities, and the sentences grouped into claims: sentences of different
        articles at least :data:`ALIGN_THRESHOLD` alike in words, or (with a sentence model
        installed) whose embeddings are at least :data:`EMBED_ALIGN_THRESHOLD` alike, state the
        same claim (transitively)."""
        sim = self._similarity(units)
        same = sim >= ALIGN_THRESHOLD
        if self.encoder is not None:
            vectors = self.encoder.encode([u.sentence.text for u in units])
            same |= (vectors @ vectors.T) >= EMBED_ALIGN_THRESHOLD
        parent = list(range(len(units)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, j in zip(*np.nonzero(np.triu(same, k=1)), strict=True):
            if units[i].article.id != units[j].article.id:
                parent[find(int(i))] = find(int(j))
        members: dict[int, list[int]] = {}
        for i in range(len(units)):
            members.setdefault(find(i), []).append(i)
        return sim, list(members.values())

    @staticmethod
    def _features(units: list[_Unit], sim: np.ndarray, claims: list[list[int]]) -> np.ndarray:
        """One row of :data:`SENTENCE_FEATURES` per sentence."""
        n = len(units)
        reports = np.zeros(n)
        for idx in claims:
            reports[idx] = len({units[i].group for i in idx})
        n_reports = len({u.group for u in units})
        degree = sim.sum(axis=1)
        centrality = degree / (degree.max() or 1.0)
        article_ids = list(dict.fromkeys(u.article.id for u in units))
        column = {a: k for k, a in enumerate(article_ids)}
        owner = np.array([column[u.article.id] for u in units])
        best = np.stack([sim[:, owner == k].max(axis=1) for k in range(len(article_ids))], axis=1)
        own = best[np.arange(n), owner]
        other = (best.sum(axis=1) - own) / max(1, len(article_ids) - 1)
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
        sim, claims = self._align(units)
        return [u.sentence.text for u in units], self._features(units, sim, claims)

    def _claims(self, units: list[_Unit]) -> list[tuple[float, float, Claim]]:
        """Claims with their position (0 = lead) and importance (the learned score of their
        best sentence, which also represents them)."""
        if not units:
            return []
        sim, members = self._align(units)
        score = self.model.score(self._features(units, sim, members))
        claims: list[tuple[float, float, Claim]] = []
        for idx in members:
            group_units = [units[i] for i in idx]
            reports = {u.group for u in group_units}
            rep = max(idx, key=lambda i: (score[i], -units[i].position))
            status: ClaimStatus = "agreed" if len(reports) >= 2 else "single"
            values: dict[str, list[str]] = {}
            for a in group_units:
                for b in group_units:
                    if a.article.id < b.article.id and (
                        found := _conflict(a.sentence.text, b.sentence.text)
                    ):
                        status = "conflict"
                        for value in sorted(set().union(*found.values())):
                            ids = [
                                u.article.id
                                for u in group_units
                                if value in set().union(*quantities(u.sentence.text).values())
                            ]
                            values[value] = sorted(set(ids))
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
    return re.sub(r"\s+", " ", articles[best].title).strip()


HEADLINE_EXACT = 64  # stories up to this many articles: every pair of titles in Python


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
