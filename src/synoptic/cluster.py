"""Online story clustering: each new article joins the most similar story or opens a new one.

First version: sparse TF-IDF over content terms (title terms count double), document
frequencies learned from the stream, cosine similarity to each candidate story's centroid.
Candidates come from an inverted index (term -> stories), never from a scan of every story.
One setting, ``merge_eagerness`` in [0, 1], sets the join threshold.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from synoptic.errors import SettingsError
from synoptic.model import Article
from synoptic.text import content_terms

MAX_CENTROID_TERMS = 300
CANDIDATE_TERMS = 25
MAX_CANDIDATES = 200


def article_terms(article: Article) -> dict[str, float]:
    """Raw term counts for an article: title terms count double, body capped at 600 terms."""
    counts: Counter[str] = Counter()
    for term in content_terms(article.title):
        counts[term] += 2
    for term in content_terms(article.text)[:600]:
        counts[term] += 1
    return {t: float(c) for t, c in counts.items() if not t.startswith("month:")}


@dataclass
class StoryState:
    centroid: dict[str, float] = field(default_factory=dict)  # summed sublinear tf
    size: int = 0


@dataclass(frozen=True)
class Assignment:
    story_id: str
    score: float
    new_story: bool
    parts: dict[str, float]
    runner_up: str | None
    centroid: dict[str, float]  # the story's centroid after this article joins
    size: int


class StoryClusterer:
    """Estimator-shaped: inert constructor, ``assign`` (pure) + ``commit`` / ``partial_fit``."""

    def __init__(self, *, merge_eagerness: float = 0.5) -> None:
        if not 0.0 <= merge_eagerness <= 1.0:
            raise SettingsError(f"merge_eagerness must be between 0 and 1, got {merge_eagerness}")
        self.merge_eagerness = merge_eagerness
        self.threshold = 0.45 - 0.3 * merge_eagerness
        self.n_docs_ = 0
        self.df_: Counter[str] = Counter()
        self.stories_: dict[str, StoryState] = {}
        self.postings_: dict[str, set[str]] = {}

    # -- weighting ----------------------------------------------------------------------------

    def idf(self, term: str) -> float:
        return math.log((self.n_docs_ + 2) / (self.df_.get(term, 0) + 1)) + 1.0

    def _weighted(self, tf: dict[str, float]) -> dict[str, float]:
        vec = {t: (1.0 + math.log(c)) * self.idf(t) for t, c in tf.items() if c > 0}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    # -- assignment ---------------------------------------------------------------------------

    def candidates(self, vec: dict[str, float]) -> set[str]:
        top = sorted(vec, key=vec.__getitem__, reverse=True)[:CANDIDATE_TERMS]
        found: Counter[str] = Counter()
        for term in top:
            for story in self.postings_.get(term, ()):
                found[story] += 1
        return {s for s, _ in found.most_common(MAX_CANDIDATES)}

    def similarity(self, vec: dict[str, float], story_id: str) -> float:
        story = self._weighted(self.stories_[story_id].centroid)
        return sum(w * story.get(t, 0.0) for t, w in vec.items())

    def assign(
        self, article_id: str, tf: dict[str, float], *, forced: str | None = None
    ) -> Assignment:
        """Where ``tf`` would go. Pure: nothing changes until :meth:`commit`."""
        vec = self._weighted(tf)
        scored = sorted(((self.similarity(vec, s), s) for s in self.candidates(vec)), reverse=True)
        runner_up: str | None = None
        if forced is not None and forced in self.stories_:
            story_id, score, new = forced, self.similarity(vec, forced), False
            parts = {"syndicated_copy": 1.0, "cosine": round(score, 4)}
            runner_up = next((s for _, s in scored if s != forced), None)
        elif scored and scored[0][0] >= self.threshold:
            score, story_id = scored[0]
            new = False
            parts = {"cosine": round(score, 4), "threshold": round(self.threshold, 4)}
            runner_up = scored[1][1] if len(scored) > 1 else None
        else:
            story_id, score, new = "s_" + article_id.removeprefix("a_"), 1.0, True
            best = scored[0][0] if scored else 0.0
            parts = {"best_existing": round(best, 4), "threshold": round(self.threshold, 4)}
            runner_up = scored[0][1] if scored else None
        state = self.stories_.get(story_id, StoryState())
        centroid = dict(state.centroid)
        for t, c in tf.items():
            centroid[t] = centroid.get(t, 0.0) + 1.0 + math.log(c)
        if len(centroid) > MAX_CENTROID_TERMS:
            keep = sorted(centroid, key=centroid.__getitem__, reverse=True)[:MAX_CENTROID_TERMS]
            centroid = {t: centroid[t] for t in keep}
        return Assignment(
            story_id, round(score, 4), new, parts, runner_up, centroid, state.size + 1
        )

    def commit(self, tf: dict[str, float], assignment: Assignment) -> None:
        """Learn from one article after its assignment was stored."""
        self.n_docs_ += 1
        self.df_.update(tf.keys())
        self.restore_story(assignment.story_id, assignment.centroid, assignment.size)

    def partial_fit(self, items: list[tuple[str, dict[str, float]]]) -> list[Assignment]:
        out = []
        for article_id, tf in items:
            assignment = self.assign(article_id, tf)
            self.commit(tf, assignment)
            out.append(assignment)
        return out

    def restore_story(self, story_id: str, centroid: dict[str, float], size: int) -> None:
        old = self.stories_.get(story_id)
        if old is not None:
            for term in old.centroid:
                self.postings_.get(term, set()).discard(story_id)
        self.stories_[story_id] = StoryState(centroid, size)
        for term in centroid:
            self.postings_.setdefault(term, set()).add(story_id)
