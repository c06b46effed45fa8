"""The Python API: ``Engine(db_url).ingest(paths)``, ``.stories()``, ``.brief(story_id)``.

The engine owns the stages and their learned state (syndication index, story clusterer), loads
that state from the store on first use and updates it only after the store has committed, so a
restart continues exactly where the last run stopped and a replay of the same input adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from synoptic.brief import BriefWriter, story_headline
from synoptic.cluster import StoryClusterer, article_terms
from synoptic.dedup import Fingerprint, SyndicationIndex
from synoptic.errors import InputRejected, NotFound
from synoptic.extract import Extractor
from synoptic.ingest import Reader
from synoptic.model import (
    Article,
    Brief,
    Document,
    IngestReport,
    Membership,
    Rejection,
    Story,
    SyndicationGroup,
)
from synoptic.settings import Settings
from synoptic.store import Store, StoredArticle

Progress = Callable[[Article | Rejection | None], None]


class Engine:
    """synoptic's library entry point; the CLI and the web app call only this."""

    def __init__(self, db_url: str | None = None, *, settings: Settings | None = None) -> None:
        if settings is None:
            settings = Settings(db_url=db_url) if db_url else Settings()
        elif db_url is not None:
            settings = Settings(**{**settings.__dict__, "db_url": db_url})
        self.settings = settings
        self.store = Store(settings.db_url)
        self.reader = Reader(max_bytes=settings.max_bytes)
        self.extractor = Extractor()
        self.writer = BriefWriter(words=settings.summary_words)
        self._index: SyndicationIndex | None = None
        self._clusterer: StoryClusterer | None = None
        self._group_of: dict[str, str] = {}
        self._story_of: dict[str, str] = {}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- learned state ------------------------------------------------------------------------

    def _load(self) -> tuple[SyndicationIndex, StoryClusterer]:
        if self._index is not None and self._clusterer is not None:
            return self._index, self._clusterer
        index = SyndicationIndex(threshold=self.settings.duplicate_threshold)
        clusterer = StoryClusterer(merge_eagerness=self.settings.merge_eagerness)
        state = self.store.load_state()
        clusterer.df_.update(state["df"])
        clusterer.n_docs_ = state["n_docs"]
        for story_id, centroid, size in state["stories"]:
            clusterer.restore_story(story_id, dict(centroid), size)
        for row in state["fingerprints"]:
            fp = Fingerprint.from_bytes(
                row.content_hash,
                row.doc_sig,
                row.para_sigs,
                list(row.para_words),
                seed=index.seed,
                scheme=index.scheme,
            )
            index.add(row.article_id, fp)
            self._group_of[row.article_id] = row.group_id
            self._story_of[row.article_id] = row.story_id
        self._index, self._clusterer = index, clusterer
        return index, clusterer

    # -- ingest -------------------------------------------------------------------------------

    def ingest(
        self,
        sources: Iterable[str | Path],
        *,
        stdin: IO[bytes] | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files, folders or ``-`` (standard input). Bad inputs are recorded, not raised."""
        return self.ingest_items(self.reader.read(sources, stdin=stdin), progress=progress)

    def ingest_items(
        self, items: Iterable[Document | Rejection], *, progress: Progress | None = None
    ) -> IngestReport:
        report = IngestReport()
        for item in items:
            outcome: Article | Rejection | None
            if isinstance(item, Rejection):
                outcome = item
            else:
                try:
                    outcome = self.extractor.extract(item)
                except InputRejected as exc:
                    outcome = Rejection(exc.origin, exc.reason)
            if isinstance(outcome, Rejection):
                self.store.reject(outcome)
                report.rejected.append(outcome)
            elif self.store.has_article(outcome.id):
                report.duplicates.append(outcome.id)
            else:
                report.stories_touched.add(self.add_article(outcome).story_id)
                report.new.append(outcome.id)
            if progress is not None:
                progress(outcome)
        return report

    def add_article(self, article: Article) -> Membership:
        """Dedup, cluster and store one new article; learned state changes only after commit."""
        index, clusterer = self._load()
        fp = index.fingerprint(article)
        copy = index.match(fp)
        terms = article_terms(article)
        if copy is not None:
            group_id = self._group_of.get(copy.article_id, copy.article_id)
            forced = self._story_of.get(copy.article_id)
            kind, score = copy.kind, copy.score
        else:
            group_id, forced, kind, score = article.id, None, "original", 1.0
        assignment = clusterer.assign(article.id, terms, forced=forced)
        membership = Membership(
            article.id,
            assignment.story_id,
            assignment.score,
            dict(assignment.parts),
            assignment.runner_up,
        )
        if copy is not None:
            membership.parts.update({"copy_of": 1.0, "copy_score": score})
        doc_sig, para_sigs = fp.to_bytes()
        self.store.add(
            StoredArticle(
                article=article,
                doc_sig=doc_sig,
                para_sigs=para_sigs,
                para_words=list(fp.paragraph_words),
                terms=terms,
                group_id=group_id,
                copy_kind=kind,
                copy_score=score,
                membership=membership,
                new_story=assignment.new_story,
                centroid=assignment.centroid,
                story_size=assignment.size,
            )
        )
        index.add(article.id, fp)
        clusterer.commit(terms, assignment)
        self._group_of[article.id] = group_id
        self._story_of[article.id] = assignment.story_id
        return membership

    # -- reading ------------------------------------------------------------------------------

    def story(self, story_id: str) -> Story:
        row = self.store.story_row(story_id)
        arts, groups, _ = self.store.story_articles(story_id)
        headline = story_headline(arts)
        return Story(
            row["id"], headline, row["created"], row["updated"], tuple(arts), tuple(groups)
        )

    def stories(self) -> list[Story]:
        """Every story, most recently updated first."""
        return [self.story(row["id"]) for row in self.store.story_rows()]

    def story_of(self, article_id: str) -> str:
        """The id of the story an article is in."""
        self._load()
        if article_id not in self._story_of:
            raise NotFound(f"no article {article_id!r}")
        return self._story_of[article_id]

    def memberships(self, story_id: str) -> list[Membership]:
        self.store.story_row(story_id)
        return self.store.story_articles(story_id)[2]

    def brief(self, story_id: str, *, words: int | None = None) -> Brief:
        story = self.story(story_id)
        return self.writer.write(
            list(story.articles), list(story.groups), story_id=story.id, words=words
        )

    def article(self, article_id: str) -> Article:
        return self.store.article(article_id)

    def rejections(self) -> list[dict[str, Any]]:
        return self.store.rejection_rows()


def extract(
    sources: Iterable[str | Path],
    *,
    settings: Settings | None = None,
    stdin: IO[bytes] | None = None,
) -> list[Article | Rejection]:
    """Documents to clean articles, with no store: what ``synoptic extract`` prints."""
    settings = settings or Settings()
    extractor = Extractor()
    out: list[Article | Rejection] = []
    for item in Reader(max_bytes=settings.max_bytes).read(sources, stdin=stdin):
        if isinstance(item, Rejection):
            out.append(item)
            continue
        try:
            out.append(extractor.extract(item))
        except InputRejected as exc:
            out.append(Rejection(exc.origin, exc.reason))
    return out


def brief_of(
    articles: list[Article], *, settings: Settings | None = None, words: int | None = None
) -> Brief:
    """A brief of exactly these articles as one story (no clustering, no store)."""
    settings = settings or Settings()
    index = SyndicationIndex(threshold=settings.duplicate_threshold)
    group_of: dict[str, str] = {}
    unique: list[Article] = []
    for article in articles:
        if article.id in group_of:
            continue
        fp = index.fingerprint(article)
        copy = index.match(fp)
        group_of[article.id] = group_of[copy.article_id] if copy else article.id
        index.add(article.id, fp)
        unique.append(article)
    members: dict[str, list[str]] = {}
    for article in unique:
        members.setdefault(group_of[article.id], []).append(article.id)
    wire = {a.id: a.wire for a in unique}
    groups = [
        SyndicationGroup(gid, tuple(ids), next((wire[i] for i in ids if wire[i]), None))
        for gid, ids in members.items()
    ]
    return BriefWriter(words=settings.summary_words).write(unique, groups, words=words)
