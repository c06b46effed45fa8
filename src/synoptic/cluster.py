"""Online story clustering: each new article joins the most likely story or opens a new one.

An article is compared with candidate stories found through an inverted index (term -> stories),
never with every story. For each candidate, four similarities are computed, each a cosine of
idf-weighted vectors learned from the stream, and the time gap:

* ``body``: content terms of title and text (title terms count double);
* ``title``: content terms of titles only;
* ``entities``: names (runs of capitalised words; model-free);
* ``numbers``: figures and calendar days;
* ``log_days_apart``: log(1 + days between the article's and the story's publication days),
  0 when either has none.

A logistic model combines them into the probability that the article belongs to the story. Its
weights are learned on dev data (``benchmarks/train_clusterer.py`` writes
``data/cluster_model.json``), not hand-picked: the mix of channels by the dev clustering's own
F1, the scale by the pairs' log-loss. The one user-facing setting, ``merge_eagerness`` in
[0, 1], sets the probability needed to join: ``1 - merge_eagerness``.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from synoptic.errors import SettingsError
from synoptic.model import Article
from synoptic.text import content_terms, name_phrases, numbers_and_dates, terms_of, words

MAX_TERMS = 300
# An article whose runner-up story would also take it with a probability this many logits
# above the join threshold joins the two stories (a late merge). Chosen on the dev data with
# the model (dev_clustering.py --late-margin); 0.95 fixed before the tenth session.
LATE_MARGIN = 1.5
CANDIDATE_TERMS = 25
# Stories scored per article, those sharing the most strong terms first. Dev F1 is the same,
# within 0.001, for 5, 10 and 20 (dev_clustering.py --max-candidates; 50 in an earlier
# session scored as 20); on a 20k-article stream the story an
# article joined was the first candidate 99.6% of the time and among the first five 99.99%
# (held-out cost, measured after the choice: docs/benchmarks.md).
MAX_CANDIDATES = 10
# A story is checked for two events in one each time it grows, from 2 * SPLIT_MIN articles up
# to SPLIT_MAX (its MemberMatrix grows by one row per article, so a check rarely costs every
# pair). It splits when its two most distinct halves would join each other with a
# probability below the join threshold moved up by SPLIT_MARGIN logits.
SPLIT_MIN = 3  # articles on each side of a split
SPLIT_MAX = 64
# Weighted linkage (WPGMA): average linkage's two-way cut tends to peel off one outlier, which
# SPLIT_MIN then refuses, so two merged events were never split (chosen on dev, with the margin).
SPLIT_LINKAGE = "weighted"
SPLIT_MARGIN = 0.4  # chosen on the dev data, with the operating point (train_clusterer.py)
# ``log_days_apart``: log(1 + days between the article's and the story's publication days),
# 0 when either has no date. Undated pairs thus score as if published together: dates can only
# count against a join, never for it, so dated input is never merged more eagerly than the
# same text undated (an earlier "closeness" and "is dated" pair of features, learned from the
# 7 dev texts that carried a date, did just that: docs/benchmarks.md, "Publication dates").
FEATURES = ("body", "title", "entities", "numbers", "log_days_apart")
CHANNELS = ("body", "title", "entities", "numbers")
# Keys of the inverted index (term -> stories): body terms as they are, names prefixed.
POSTED = {"body": "", "entities": "e:"}


def _moved(probability: float, logits: float) -> float:
    """``probability`` moved by ``logits`` on the logistic scale."""
    z = math.log(probability / (1.0 - probability)) + logits
    return 1.0 / (1.0 + math.exp(-z))


def _top(counts: dict[str, float], n: int) -> dict[str, float]:
    if len(counts) <= n:
        return counts
    keep = sorted(counts, key=counts.__getitem__, reverse=True)[:n]
    return {t: counts[t] for t in keep}


def article_features(
    article: Article, channels: Iterable[str] = CHANNELS, text_words: list[str] | None = None
) -> dict[str, Any]:
    """What the clusterer needs of an article: term counts per channel (of ``channels``: a
    model's :attr:`ClusterModel.channels` skips those it gives no weight) and the publication
    day. ``text_words``: the text's :func:`~synoptic.text.words`, when the caller has them."""
    wanted = set(channels)
    title = content_terms(article.title)
    out: dict[str, Any] = {}
    if "body" in wanted:
        body: Counter[str] = Counter()
        for term in title:
            body[term] += 2
        body.update(itertools.islice(terms_of(text_words or words(article.text)), 600))
        out["body"] = {t: float(c) for t, c in body.items() if not t.startswith("month:")}
    if "title" in wanted:
        out["title"] = {t: 1.0 for t in title if not t.startswith("month:")}
    head = article.title + "\n" + article.text[:3000]
    if "entities" in wanted:
        out["entities"] = {t: float(c) for t, c in Counter(name_phrases(head)).items()}
    if "numbers" in wanted:
        out["numbers"] = {t: float(c) for t, c in Counter(numbers_and_dates(head)).items()}
    out["day"] = article.published.timestamp() / 86400 if article.published else None
    return out


@dataclass
class StoryState:
    """A story as the clusterer sees it: summed sublinear term weights per channel."""

    channels: dict[str, dict[str, float]] = field(default_factory=lambda: {c: {} for c in CHANNELS})
    size: int = 0
    first_day: float | None = None
    last_day: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "size": self.size,
            "days": [self.first_day, self.last_day],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoryState:
        channels = {c: dict(data.get("channels", {}).get(c, {})) for c in CHANNELS}
        first, last = data.get("days", [None, None])
        return cls(channels, int(data.get("size", 0)), first, last)

    def gap(self, day: float | None) -> float | None:
        """Days between ``day`` and the story's publication days (0 inside them); None when
        either side has none."""
        if day is None or self.first_day is None or self.last_day is None:
            return None
        return max(0.0, self.first_day - day, day - self.last_day)

    def joined(self, feats: dict[str, Any]) -> StoryState:
        channels = {}
        for c in CHANNELS:
            if not feats.get(c):  # nothing to add (or a channel the model skips)
                channels[c] = self.channels[c]
                continue
            merged = dict(self.channels[c])
            for t, v in feats[c].items():
                merged[t] = merged.get(t, 0.0) + 1.0 + math.log(v)
            channels[c] = _top(merged, MAX_TERMS)
        day = feats["day"]
        days = [d for d in (self.first_day, self.last_day, day) if d is not None]
        return StoryState(channels, self.size + 1, min(days, default=None), max(days, default=None))


@dataclass(frozen=True)
class ClusterModel:
    """Logistic weights over :data:`FEATURES`. A file's weights for other inputs (an older
    model's channel products) are ignored."""

    weights: dict[str, float]
    bias: float

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this model weighs; the others are never computed."""
        return tuple(c for c in CHANNELS if self.weights.get(c, 0.0) != 0.0)

    @property
    def key(self) -> str:
        """Names these weights: what was scored with one model is not reused with another."""
        canonical = json.dumps([sorted(self.weights.items()), self.bias])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def bundled(cls) -> ClusterModel:
        raw = json.loads(
            resources.files("synoptic").joinpath("data/cluster_model.json").read_text()
        )
        return cls({f: float(raw["weights"][f]) for f in FEATURES}, float(raw["bias"]))

    def probabilities(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """:meth:`probability` over arrays of features (element-wise)."""
        z = np.full(next(iter(features.values())).shape, self.bias)
        for f in FEATURES:
            if f in features:  # (a channel the model skips is not computed)
                z += self.weights[f] * features[f]
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))))

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(self.weights[f] * features[f] for f in FEATURES if f in features)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class Split:
    """Two halves of a story (indices into its members) and how likely they were to join."""

    stay: list[int]
    leave: list[int]
    probability: float


@dataclass(frozen=True)
class Assignment:
    story_id: str
    score: float
    new_story: bool
    parts: dict[str, float]
    runner_up: str | None
    state: StoryState  # the story after this article joins
    runner_up_score: float = 0.0
    # the article's unit tf-idf vectors per channel (split checks compare it by them)
    units: dict[str, dict[str, float]] = field(default_factory=dict)


TERMS_SLACK = 100_000
# An article's query per channel: its term ids and weights (StoryClusterer.vectors).
Query = dict[str, tuple[np.ndarray, np.ndarray]]


class _Terms:
    """One channel's terms as integer ids, with their document frequencies and log(df + 1)
    in arrays indexed by id, so that idfs, story norms and dot products are array operations.
    Terms that no counted article has any more are dropped, and the rest renumbered, once
    they are as many as the counted ones plus ``TERMS_SLACK``: the ids follow the window."""

    def __init__(self) -> None:
        self.id_of: dict[str, int] = {}
        self.df = np.zeros(1024)
        self.log_df = np.zeros(1024)  # log(df + 1)
        self.dense = np.zeros(1024)  # a query's weights by term id while it is scored
        self.counted = 0  # terms with df > 0

    def ids(self, terms: Collection[str]) -> np.ndarray:
        """The ids of ``terms`` (new terms get one, with df 0)."""
        id_of = self.id_of
        try:
            return np.fromiter(map(id_of.__getitem__, terms), dtype=np.intp, count=len(terms))
        except KeyError:
            new = [t for t in dict.fromkeys(terms) if t not in id_of]
            id_of.update(zip(new, itertools.count(len(id_of))))
            if len(id_of) > len(self.df):
                size = max(2 * len(self.df), len(id_of))
                for name in ("df", "log_df", "dense"):
                    grown = np.zeros(size)
                    old = getattr(self, name)
                    grown[: len(old)] = old
                    setattr(self, name, grown)
            return np.fromiter(map(id_of.__getitem__, terms), dtype=np.intp, count=len(terms))

    def scratch(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The dense array with ``weights`` at ``ids`` (the caller zeroes them again)."""
        self.dense[ids] = weights
        return self.dense

    def count(self, terms: Collection[str], sign: int) -> bool:
        """Count (or with ``sign=-1`` uncount) one article's terms, each once. True when the
        ids were renumbered."""
        ids = self.ids(terms)
        before = self.df[ids]
        after = np.maximum(before + sign, 0.0)  # (as the Counter before: never below 0)
        self.df[ids] = after
        self.log_df[ids] = np.log(after + 1.0)
        self.counted += int(np.count_nonzero(after > 0)) - int(np.count_nonzero(before > 0))
        if len(self.id_of) <= 2 * self.counted + TERMS_SLACK:
            return False
        keep = [(t, i) for t, i in self.id_of.items() if self.df[i] > 0]
        old = np.fromiter((i for _, i in keep), dtype=np.intp, count=len(keep))
        size = max(1024, 2 * len(keep))
        for name in ("df", "log_df"):
            renumbered = np.zeros(size)
            renumbered[: len(keep)] = getattr(self, name)[old]
            setattr(self, name, renumbered)
        self.dense = np.zeros(size)
        self.id_of = {t: n for n, (t, _) in enumerate(keep)}
        return True

    def counts(self) -> Counter[str]:
        return Counter({t: int(self.df[i]) for t, i in self.id_of.items() if self.df[i] > 0})


class StoryClusterer:
    """Estimator-shaped: an inert constructor; ``assign`` (pure) then ``commit`` learns one
    article; ``partial_fit`` does both for a batch. Learned state ends in ``_``."""

    def __init__(
        self,
        *,
        merge_eagerness: float = 0.5,
        model: ClusterModel | None = None,
        window_days: float | None = None,
    ) -> None:
        """``window_days``: an article never joins a story whose publication days are further
        from its own (when both have them): the active window, measured from the article
        rather than from the newest day seen, so an archive's order does not matter."""
        if not isinstance(merge_eagerness, int | float) or not 0.0 <= merge_eagerness <= 1.0:
            raise SettingsError(f"merge_eagerness must be between 0 and 1, got {merge_eagerness!r}")
        self.merge_eagerness = merge_eagerness
        self.model = model or ClusterModel.bundled()
        self.channels = self.model.channels  # those with a weight: the rest are not computed
        self.window_days = window_days
        self.threshold = min(0.99, max(0.01, 1.0 - merge_eagerness))
        # An article that fits a second story this well joins the two stories (a late merge).
        self.late_merge_threshold = _moved(self.threshold, LATE_MARGIN)
        self.split_threshold = _moved(self.threshold, SPLIT_MARGIN)
        self.n_docs_ = 0  # articles counted in the document frequencies (the engine counts
        # its window and its last ones)
        self._terms = {c: _Terms() for c in CHANNELS}  # per channel: term ids, df, log(df + 1)
        # articles learned (ages the member matrices); an engine starts it at its store's count
        self.n_learned_ = 0
        self.stories_: dict[str, StoryState] = {}
        self.postings_: dict[str, set[str]] = {}
        self._posted: dict[str, set[str]] = {}  # each story's keys in ``postings_``
        # a story's terms as (term ids, weights) per channel, until the story changes
        self._arrays: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def df_(self) -> dict[str, Counter[str]]:
        """Document frequencies per channel (the terms counted at least once)."""
        return {c: self._terms[c].counts() for c in CHANNELS}

    # -- weighting ----------------------------------------------------------------------------

    def _idfs(self, channel: str, terms: Collection[str]) -> np.ndarray:
        """Smoothed idf, ``log((n + 2) / (df + 1)) + 1``, of terms of one channel."""
        return self._idf_of(channel, self._terms[channel].ids(terms))

    def _idf_of(self, channel: str, ids: np.ndarray) -> np.ndarray:
        return (math.log(self.n_docs_ + 2) + 1) - self._terms[channel].log_df[ids]

    def _story_arrays(self, story_id: str, channel: str) -> tuple[np.ndarray, np.ndarray]:
        cached = self._arrays.get((story_id, channel))
        if cached is None:
            values = self.stories_[story_id].channels[channel]
            ids = self._terms[channel].ids(values)
            weights = np.fromiter(values.values(), dtype=float, count=len(values))
            cached = self._arrays[(story_id, channel)] = (ids, weights)
        return cached

    def features(self, query: Query, day: float | None, story_id: str) -> dict[str, float]:
        """The join features of an article (its :meth:`vectors` query) and one story."""
        return self.features_of(query, day, [story_id])[0]

    def features_of(
        self, query: Query, day: float | None, story_ids: list[str]
    ) -> list[dict[str, float]]:
        """:meth:`features` for several stories: each channel's cosine is the dot product of
        the article's weights (spread over a dense array of term ids once) with the story's
        raw weights, over the story's norm under today's idf (never a cached one, so that the
        scores are a function of the stored state and a restart computes the same). All the
        stories' terms are one array, summed per story."""
        out: list[dict[str, float]] = [{} for _ in story_ids]
        if not story_ids:
            return out
        for channel in self.channels:
            ids, weights = query[channel]
            stories = [self._story_arrays(story_id, channel) for story_id in story_ids]
            sizes = np.fromiter((len(t) for t, _ in stories), dtype=np.intp, count=len(stories))
            terms = np.concatenate([t for t, _ in stories])
            values = np.concatenate([v for _, v in stories])
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            weighted = values * self._idf_of(channel, terms)
            dense = self._terms[channel].scratch(ids, weights)  # (no new ids from here on)
            try:
                products = dense[terms] * values
            finally:
                dense[ids] = 0.0
            cosines = np.zeros(len(stories))
            if len(terms):  # (reduceat over the stories with terms: an empty one has no segment)
                filled = sizes > 0
                norms = np.sqrt(np.add.reduceat(weighted * weighted, starts[filled]))
                norms[norms == 0.0] = 1.0
                cosines[filled] = np.add.reduceat(products, starts[filled]) / norms
            for parts, cosine in zip(out, cosines.tolist(), strict=True):
                parts[channel] = cosine
        for parts, story_id in zip(out, story_ids, strict=True):
            gap = self.stories_[story_id].gap(day)
            parts["log_days_apart"] = 0.0 if gap is None else math.log1p(gap)
        return out

    def vectors(self, feats: dict[str, Any]) -> tuple[dict[str, dict[str, float]], Query]:
        """The article's unit tf-idf vector per channel, and as the query for
        :meth:`features`: its term ids and each unit weight times its term's idf once more, so
        that a dot product with a story's raw weights is the idf-weighted cosine's
        numerator."""
        units: dict[str, dict[str, float]] = {}
        query: Query = {}
        for channel in self.channels:
            counts = feats.get(channel, {})  # (stored before the model weighed it: none)
            ids = self._terms[channel].ids(counts)
            idfs = self._idf_of(channel, ids)
            raw = 1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))
            raw *= idfs
            norm = math.sqrt(float(raw @ raw)) or 1.0
            unit = raw / norm
            units[channel] = dict(zip(counts, unit.tolist(), strict=True))
            query[channel] = (ids, unit * idfs)
        return units, query

    def candidates(self, units: dict[str, dict[str, float]], day: float | None = None) -> list[str]:
        """Stories sharing the article's strongest terms and names (by tf-idf weight), within
        ``window_days`` of the article's publication ``day``."""

        def strongest(channel: str, n: int) -> list[str]:
            prefix, weight = POSTED[channel], units.get(channel, {})
            return [prefix + t for t in sorted(weight, key=weight.__getitem__, reverse=True)[:n]]

        keys = strongest("body", CANDIDATE_TERMS) + strongest("entities", 10)
        postings = self.postings_
        found = Counter(itertools.chain.from_iterable(postings.get(key, ()) for key in keys))
        # ties broken by id, not by the (hash-seeded) order of the posting sets: reproducible
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
        if day is None or self.window_days is None:
            return [s for s, _ in ranked[:MAX_CANDIDATES]]
        out: list[str] = []
        for story_id, _ in ranked:  # the best stories within the window
            gap = self.stories_[story_id].gap(day)
            if gap is None or gap <= self.window_days:
                out.append(story_id)
                if len(out) == MAX_CANDIDATES:
                    break
        return out

    def score(
        self, feats: dict[str, Any]
    ) -> tuple[list[tuple[float, str, dict[str, float]]], dict[str, dict[str, float]]]:
        """(probability, story id, features) for each candidate story, best first; and the
        article's unit vectors."""
        units, query = self.vectors(feats)
        found = self.candidates(units, feats["day"])
        scored = [
            (self.model.probability(f), story_id, f)
            for story_id, f in zip(found, self.features_of(query, feats["day"], found), strict=True)
        ]
        scored.sort(key=lambda x: (-x[0], x[1]))
        return scored, units

    # -- assignment ---------------------------------------------------------------------------

    def assign(
        self, article_id: str, feats: dict[str, Any], *, forced: str | None = None
    ) -> Assignment:
        """Where an article goes. Pure: nothing is learned until :meth:`commit`. ``forced``: the
        story of the article's original when it is a copy: it goes there, scored against that
        story alone (no other story is searched, so a copy names no runner-up)."""
        runner_up: str | None = None
        runner_score = 0.0
        if forced is not None and forced in self.stories_:
            units, query = self.vectors(feats)
            own = self.features(query, feats["day"], forced)
            story_id, new, score = forced, False, self.model.probability(own)
            parts = {"syndicated_copy": 1.0, **own}
        else:
            scored, units = self.score(feats)
            if scored and scored[0][0] >= self.threshold:
                score, story_id, parts = scored[0]
                parts = dict(parts)
                new = False
                if len(scored) > 1:
                    runner_score, runner_up = scored[1][0], scored[1][1]
            else:
                story_id, score, new = "s_" + article_id.removeprefix("a_"), 1.0, True
                parts = {"best_existing": round(scored[0][0], 4) if scored else 0.0}
                if scored:
                    runner_score, runner_up = scored[0][0], scored[0][1]
        parts = {k: round(v, 4) for k, v in parts.items()} | {"threshold": round(self.threshold, 4)}
        state = self.stories_.get(story_id, StoryState()).joined(feats)
        return Assignment(
            story_id,
            round(score, 4),
            new,
            parts,
            runner_up,
            state,
            round(runner_score, 4),
            units,
        )

    def commit(self, feats: dict[str, Any], assignment: Assignment) -> None:
        """Learn from one article after its assignment was stored."""
        self.count(feats)
        self.n_learned_ += 1
        self.restore_story(assignment.story_id, assignment.state)

    def count(self, feats: dict[str, Any], sign: int = 1) -> None:
        """Count an article's terms into the document frequencies (``sign=-1``: take an article
        that left the active window out again)."""
        self.n_docs_ += sign
        for channel in self.channels:
            if self._terms[channel].count(feats.get(channel, {}).keys(), sign):
                self._arrays.clear()  # the term ids were renumbered

    def partial_fit(self, items: list[tuple[str, dict[str, Any]]]) -> StoryClusterer:
        for article_id, feats in items:
            self.commit(feats, self.assign(article_id, feats))
        return self

    def split_of(self, p: np.ndarray) -> Split | None:
        """Whether a story whose members join each other with probabilities ``p`` (a
        :class:`MemberMatrix`'s, oldest first) is two events: the two groups that clustering
        ``p`` (SPLIT_LINKAGE) finds, when each has at least SPLIT_MIN articles and they would
        join each other with a mean probability below ``split_threshold``. Pure."""
        n = len(p)
        if n < 2 * SPLIT_MIN or p.min() >= self.split_threshold:
            return None  # (the halves' mean cannot be below the threshold if no pair is)
        distance = 1.0 - p
        np.fill_diagonal(distance, 0.0)
        tree = linkage(squareform(distance, checks=False), SPLIT_LINKAGE)
        labels = fcluster(tree, 2, "maxclust")
        a = [i for i in range(n) if labels[i] == labels[0]]  # the oldest member's side stays
        b = [i for i in range(n) if labels[i] != labels[0]]
        if len(a) < SPLIT_MIN or len(b) < SPLIT_MIN:
            return None
        cross = float(p[np.ix_(a, b)].mean())
        return Split(a, b, cross) if cross < self.split_threshold else None

    def restore_story(self, story_id: str, state: StoryState) -> None:
        before = self._posted.get(story_id, set())
        after = self._posted[story_id] = self._posting_keys(state)
        self._unpost(story_id, before - after)  # only the keys that changed
        for key in after - before:
            self.postings_.setdefault(key, set()).add(story_id)
        self.stories_[story_id] = state
        for channel in CHANNELS:
            self._arrays.pop((story_id, channel), None)

    def drop_story(self, story_id: str) -> None:
        self.stories_.pop(story_id, None)
        self._unpost(story_id, self._posted.pop(story_id, set()))
        for channel in CHANNELS:
            self._arrays.pop((story_id, channel), None)

    def _unpost(self, story_id: str, keys: set[str]) -> None:
        for key in keys:
            posted = self.postings_.get(key)
            if posted is not None:
                posted.discard(story_id)
                if not posted:
                    del self.postings_[key]

    @staticmethod
    def _posting_keys(state: StoryState) -> set[str]:
        return {prefix + t for channel, prefix in POSTED.items() for t in state.channels[channel]}


def _log_days_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The ``log_days_apart`` feature of article pairs, element-wise over broadcast arrays of
    days (NaN: no publication date, which counts as 0)."""
    return np.nan_to_num(np.log1p(np.abs(a - b)))


class MemberMatrix:
    """The join probabilities between a story's members (those in memory, oldest first), for
    split checks at every size. Computing them all again after each new member would cost
    every pair; instead the matrix grows by one row: the new article's unit vectors (today's
    idf) against the members' unit vectors as of the last refresh. Those are refreshed, and
    every pair scored again, once the stream has grown by 5% since (often
    while the stream is young and the idf still moves, rarely later). Per channel the members'
    terms are flat arrays of story-local ids, so a row is one ``bincount`` per channel."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.p = np.zeros((0, 0))
        self._days: list[float] = []  # NaN: no publication date
        self._refreshed_at = -1  # clusterer.n_learned_ at the last refresh
        self._terms: dict[str, list[str]] = {c: [] for c in CHANNELS}  # local id -> term
        self._vocab: dict[str, dict[str, int]] = {c: {} for c in CHANNELS}  # term -> local id
        self._cols = {c: np.zeros(0, dtype=np.intp) for c in CHANNELS}
        self._raw = {c: np.zeros(0) for c in CHANNELS}  # sublinear term frequency
        self._unit = {c: np.zeros(0) for c in CHANNELS}  # unit tf-idf as of the last refresh
        self._seg = {c: np.zeros(0, dtype=np.intp) for c in CHANNELS}  # member of each entry

    def __len__(self) -> int:
        return len(self.ids)

    def add(
        self,
        clusterer: StoryClusterer,
        article_id: str,
        feats: dict[str, Any],
        units: dict[str, dict[str, float]] | None = None,
    ) -> None:
        """A new member: its features, and its unit vectors if the caller has them."""
        n = len(self.ids)
        if units is None:
            units = clusterer.vectors(feats)[0]
        features: dict[str, np.ndarray] = {}
        for c in clusterer.channels:
            vocab, terms, counts = self._vocab[c], self._terms[c], feats.get(c, {})
            unseen = [t for t in counts if t not in vocab]
            vocab.update(zip(unseen, itertools.count(len(terms))))
            terms.extend(unseen)
            cols = np.fromiter(map(vocab.__getitem__, counts), dtype=np.intp, count=len(counts))
            unit = np.fromiter(units[c].values(), dtype=float, count=len(counts))
            query = np.zeros(len(terms))
            query[cols] = unit
            products = self._unit[c] * query[self._cols[c]]
            features[c] = np.bincount(self._seg[c], weights=products, minlength=n)[:n]
            raw = 1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))
            self._cols[c] = np.concatenate((self._cols[c], cols))
            self._raw[c] = np.concatenate((self._raw[c], raw))
            self._unit[c] = np.concatenate((self._unit[c], unit))
            self._seg[c] = np.concatenate((self._seg[c], np.full(len(cols), n, dtype=np.intp)))
        day = np.nan if feats["day"] is None else feats["day"]
        features["log_days_apart"] = _log_days_apart(np.array(self._days), np.array(day))
        row = clusterer.model.probabilities(features) if n else np.zeros(0)
        p = np.ones((n + 1, n + 1))
        p[:n, :n] = self.p
        p[n, :n] = p[:n, n] = row
        self.p = p
        self.ids.append(article_id)
        self._days.append(day)
        if clusterer.n_learned_ > self._refreshed_at * 1.05 + 1:
            self.refresh(clusterer)

    def refresh(self, clusterer: StoryClusterer) -> None:
        """Every member's unit vectors from today's idf, and every pair scored again."""
        n = len(self.ids)
        features: dict[str, np.ndarray] = {}
        for c in clusterer.channels:
            idf = np.array(clusterer._idfs(c, self._terms[c]), dtype=float)
            weight = self._raw[c] * idf[self._cols[c]]
            norms = np.sqrt(np.bincount(self._seg[c], weights=weight * weight, minlength=n))
            self._unit[c] = weight / np.where(norms > 0, norms, 1.0)[self._seg[c]]
            x = np.zeros((n, len(self._terms[c])))  # dense: a story has a few thousand terms
            x[self._seg[c], self._cols[c]] = self._unit[c]
            features[c] = x @ x.T
        days = np.array(self._days)
        features["log_days_apart"] = _log_days_apart(days[:, None], days[None, :])
        self.p = clusterer.model.probabilities(features)
        np.fill_diagonal(self.p, 1.0)
        self._refreshed_at = clusterer.n_learned_

    def to_bytes(self, model: ClusterModel) -> bytes:
        """Everything, so that :meth:`from_bytes` gives the same matrix back (the split checks
        of a restarted engine go on as the closing one's would have), and the key of the
        ``model`` its probabilities came from."""
        arrays: dict[str, np.ndarray] = {
            "model": np.array(model.key, dtype=str),
            "ids": np.array(self.ids, dtype=str),
            "p": self.p,
            "days": np.array(self._days, dtype=float),
            "refreshed_at": np.array(self._refreshed_at),
        }
        for c in CHANNELS:
            arrays[f"terms.{c}"] = np.array(self._terms[c], dtype=str)
            for name in ("_cols", "_raw", "_unit", "_seg"):
                arrays[f"{name}.{c}"] = getattr(self, name)[c]
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, model: ClusterModel) -> MemberMatrix | None:
        """The saved matrix, or None when ``model`` is not the one it was scored with (a
        retrained or swapped model: the engine rebuilds it)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if "model" not in arrays or str(arrays["model"]) != model.key:
                return None
            out = cls()
            out.ids = [str(a) for a in arrays["ids"]]
            out.p = arrays["p"]
            out._days = [float(d) for d in arrays["days"]]
            out._refreshed_at = int(arrays["refreshed_at"])
            for c in CHANNELS:
                out._terms[c] = [str(t) for t in arrays[f"terms.{c}"]]
                out._vocab[c] = {t: i for i, t in enumerate(out._terms[c])}
                for name in ("_cols", "_raw", "_unit", "_seg"):
                    getattr(out, name)[c] = arrays[f"{name}.{c}"]
        return out

    def subset(self, article_ids: list[str]) -> MemberMatrix:
        """The matrix of some members (in this matrix's order)."""
        where = {a: i for i, a in enumerate(self.ids)}
        keep = np.array([where[a] for a in article_ids], dtype=np.intp)
        renumber = np.full(len(self.ids), -1, dtype=np.intp)
        renumber[keep] = np.arange(len(keep))
        out = MemberMatrix()
        out.ids = [self.ids[i] for i in keep]
        out.p = self.p[np.ix_(keep, keep)]
        out._days = [self._days[i] for i in keep]
        out._refreshed_at = self._refreshed_at
        for c in CHANNELS:
            mask = renumber[self._seg[c]] >= 0
            # terms no member has any more stay in the vocabulary: harmless, dropped on rebuild
            out._terms[c], out._vocab[c] = list(self._terms[c]), dict(self._vocab[c])
            for name in ("_cols", "_raw", "_unit"):
                getattr(out, name)[c] = getattr(self, name)[c][mask]
            out._seg[c] = renumber[self._seg[c][mask]]
        return out
