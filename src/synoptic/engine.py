"""The Python API: ``Engine(db_url).ingest(paths)``, ``.stories()``, ``.brief(story_id)``.

The engine owns the stages and their learned state (syndication index, story clusterer), loads
that state from the store on first use and updates it only after the store has committed, so a
restart continues exactly where the last run stopped and a replay of the same input adds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError
from threadpoolctl import ThreadpoolController

from synoptic.brief import BriefWriter, story_headline
from synoptic.cluster import (
    SPLIT_MAX,
    SPLIT_MIN,
    Assignment,
    ClusterModel,
    MemberMatrix,
    StoryClusterer,
    StoryState,
)
from synoptic.dedup import Fingerprint, SeenIds, SyndicationIndex
from synoptic.errors import InputRejected, NotFound, SettingsError, StoreError
from synoptic.extract import Extractor
from synoptic.ingest import Reader
from synoptic.model import (
    Article,
    Brief,
    Claim,
    Document,
    Forgotten,
    IngestReport,
    Membership,
    Rejection,
    Story,
    StorySelection,
    SyndicationGroup,
    normalise_for_hash,
    story_groups,
)
from synoptic.prepare import Prepared, Workers, prepared
from synoptic.settings import Settings
from synoptic.store import Store, StoredArticle, as_utc


def _day(moment: datetime | None) -> float:
    """A time as days since the epoch (now when None)."""
    return (moment or datetime.now(UTC)).timestamp() / 86400


BATCH_SIZE = 200  # new articles written per transaction
# A long ingest lets processes waiting to write in between two batches once it has written
# for MIN_TURN seconds and TURN_PER_LOAD times its last reload of the learned state (which it
# redoes after them if they wrote): at most ~1/6 of two alternating ingests' time is reloading
MIN_TURN = 1.0
TURN_PER_LOAD = 5
# The document frequencies (idf) count the active window's articles and, however few those are,
# the IDF_FLOOR articles stored last: a small archive spread over months has a handful of
# articles in any 30 days, mostly of one event, whose own words would then get a low idf (ECB+
# dev, synthetic dates in time order: B-cubed 0.855 with the window alone, docs/benchmarks.md).
# A stream of thousands of articles a day never notices. Not tuned: the dev sets are smaller.
IDF_FLOOR = 1_000
# Articles older than the window ("late": an archive ingested out of date order) stay in memory,
# with the stories and articles of their weeks read back from the store, where later articles
# of their time can still join them, until the clock moves a day or this many late articles
# have piled up; then they leave together, so memory stays bounded.
LATE_CAP = 2_000
# No more weeks are read back once this many articles were, until the next eviction: a shuffled
# archive would otherwise read its whole history back again and again (for each late article).
RECALL_CAP = 10_000
LATE_MARK = "late_held_after_seq"  # meta key: the last article added before the last eviction
RECALL_DAYS = 7  # a late article reads back the stories of its week (and the window around it)
Progress = Callable[[Article | Rejection | None], None]


class Engine:
    """synoptic's library entry point; the CLI and the web app call only this."""

    def __init__(
        self,
        db_url: str | None = None,
        *,
        settings: Settings | None = None,
        cluster_model: ClusterModel | None = None,
    ) -> None:
        """``cluster_model`` is the expert override of the bundled clustering weights."""
        if settings is None:
            settings = Settings(db_url=db_url) if db_url else Settings()
        elif db_url is not None:
            settings = Settings(**{**settings.__dict__, "db_url": db_url})
        self.settings = settings
        self.store = Store(settings.db_url)
        self.reader = Reader.for_settings(settings)
        self.writer = BriefWriter.from_settings(settings, shelf=self.store)
        self._workers = Workers(settings.workers) if settings.workers > 1 else None
        self._threadpools = ThreadpoolController()  # (found once: 0.3 ms; limiting: 7 µs)
        self.cluster_model = cluster_model or ClusterModel.bundled()
        self._index: SyndicationIndex | None = None
        self._clusterer: StoryClusterer | None = None
        self._separations: set[frozenset[str]] | None = None
        self._corrected: set[str] | None = None
        self._pending: list[StoredArticle] = []
        self._active: dict[str, float] = {}  # story -> day of its newest article (active window)
        self._members: dict[str, list[str]] = {}  # story -> its articles held in memory
        # story -> its members' join probabilities, for split checks (stories up to SPLIT_MAX)
        self._matrices: dict[str, MemberMatrix] = {}
        self._clock = 0.0  # newest day seen
        self._evicted_at = 0.0
        self._late_held = 0  # articles older than the window added since the last eviction
        self._recalled_held = 0  # articles read back for them (see _recall)
        self._recalled: set[int] = set()  # weeks whose stories were read back (see _recall)
        # the active window's articles: story, syndication group, day; oldest first in _expiry
        self._group_of: dict[str, str] = {}
        self._story_of: dict[str, str] = {}
        self._day_of: dict[str, float] = {}
        self._seq_of: dict[str, int] = {}  # arrival order (the store's seq): members are in it
        self._next_seq = 0  # the seq the store gives the newest article added
        self._expiry: list[tuple[float, str]] = []
        # the last IDF_FLOOR articles stored (arrival order; a set beside it for lookups): the
        # document frequencies count exactly these and the articles held in memory
        self._recent: deque[str] = deque()
        self._recent_set: set[str] = set()
        self._seen = SeenIds()  # every stored article id, in fixed memory
        self._seen_mark: int | None = None  # every article with seq <= this is in _seen
        # the store's write stamp when this engine last knew all of it: another process's
        # ingest or correction since then makes the learned state stale (reloaded)
        self._stamp: tuple[int, int] | None = None
        self._writer_held = False  # this engine holds the store's writer lock
        self._turn_started = 0.0  # when it last took the lock (time.monotonic)
        self._load_seconds = 0.0  # how long its last full load of the learned state took
        self._write_turn = threading.RLock()  # one thread of this process writes at a time
        # threads waiting for the turn (a web server's writes while another one ingests): a
        # long ingest lets them in between its batches, as it does other processes
        self._turn_waits = threading.Condition()
        self._threads_waiting = 0
        self._turn_depth = 0  # how deep the thread whose turn it is holds it

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()
        # (saved only when no other process is writing: they are shortcuts for the next load)
        with (
            contextlib.suppress(OSError, SQLAlchemyError, StoreError),  # (a read-only store)
            self.store.writing(wait=False) as free,
        ):
            if free:
                self._save_snapshots()
        self.store.close()

    def _save_snapshots(self) -> None:
        if self._index is not None and self._seen_mark is not None:
            # the next process streams only the ids stored after this one loaded; extra bits
            # (articles of a failed batch) only cost a store lookup
            with contextlib.suppress(StoreError):
                self.store.save_seen_snapshot(self._seen_mark, self._seen.to_bytes())
        # the split checks' matrices, for the next engine to go on from: saved if this engine
        # added articles (nothing else changes them) and knows every stored article (should
        # another process have stored more since, its matrices, or none, stay)
        if self._clusterer is not None and self._next_seq != self._seen_mark:
            matrices = {
                story_id: matrix.to_bytes(self.cluster_model)
                for story_id, matrix in self._matrices.items()
                if story_id in self._clusterer.stories_
            }
            with contextlib.suppress(StoreError, SQLAlchemyError):
                if self._next_seq == self.store.max_seq():
                    self.store.save_matrix_snapshot(self._next_seq, matrices)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write at a time: this engine's threads take turns (a web server's writes), and
        so do processes, through the store's writer lock (taken once however deep the calls
        go)."""
        with self._turn_waits:
            self._threads_waiting += 1
        try:
            self._write_turn.acquire()
            self._turn_depth += 1
        finally:
            with self._turn_waits:
                self._threads_waiting -= 1
                self._turn_waits.notify_all()
        try:
            if self._writer_held:
                yield
                return
            with self.store.writing():
                self._writer_held = True
                self._turn_started = time.monotonic()
                try:
                    yield
                finally:
                    self._writer_held = False
        finally:
            self._turn_depth -= 1
            self._write_turn.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- learned state ------------------------------------------------------------------------

    def _load(self) -> tuple[SyndicationIndex, StoryClusterer]:
        """Learned state from the store: every article id, and the fingerprints and stories of
        the active window only (memory is bounded by the window, not the archive)."""
        if self._index is not None and self._clusterer is not None:
            return self._index, self._clusterer
        started = time.monotonic()
        self._stamp = self.store.write_stamp()  # (before reading: a later write shows)
        index = SyndicationIndex(threshold=self.settings.duplicate_threshold)
        clusterer = StoryClusterer(
            merge_eagerness=self.settings.merge_eagerness,
            model=self.cluster_model,
            window_days=self.settings.window_days,
        )
        self._active, self._members, self._matrices = {}, {}, {}
        self._clock = max(self._clock, self.store.latest_day() or self._clock)
        horizon = self._horizon()
        for story_id, centroid, day in self.store.story_states(since=horizon):
            clusterer.restore_story(story_id, StoryState.from_json(centroid))
            self._members[story_id] = []
            self._active[story_id] = day
        # every stored id: the snapshot saved at the last close, then the ids stored after it
        # (``mark`` is read first, so every id up to it is committed and streamed below)
        mark = self.store.max_seq()
        after, bits = self.store.seen_snapshot() or (0, b"")
        saved = SeenIds.from_bytes(bits)
        self._seen = saved or SeenIds()
        for article_id in self.store.article_ids(after_seq=after if saved else 0):
            self._seen.add(article_id)
        self._seen_mark = mark
        self._next_seq = mark
        self._hold_stored(index, clusterer, list(self._members), since=horizon)
        self._recent = deque(reversed(self.store.latest_article_ids(IDF_FLOOR)))
        self._recent_set = set(self._recent)
        self._count_in(clusterer, [a for a in self._recent if a not in self._story_of])
        self._evicted_at = self._clock
        self._index, self._clusterer = index, clusterer
        self._hold_late(clusterer)
        for members in self._members.values():
            members.sort(key=self._seq_of.__getitem__)
        # the split checks as the last engine to close left them, when nothing was stored since
        # (their age is counted in articles learned: as many as a run from the start learned)
        clusterer.n_learned_ = mark
        for story_id, data in self.store.matrix_snapshot(mark).items():
            matrix = MemberMatrix.from_bytes(data, self.cluster_model)
            if matrix is not None and matrix.ids == self._members.get(story_id):
                self._matrices[story_id] = matrix
        self._load_seconds = time.monotonic() - started
        return index, clusterer

    def _hold_late(self, clusterer: StoryClusterer) -> None:
        """What a running engine still holds of the late articles stored since its last
        eviction (see :meth:`_recall`): each of them, its story, and the weeks read back for
        it, in the order they came, so that a restart continues exactly."""
        mark = self.store.meta_value(LATE_MARK)
        if mark is None:  # (a store written before the mark was kept)
            return
        horizon = self._horizon()
        for seq, article_id, day in self.store.dated_after(int(mark)):
            if day >= horizon:
                continue
            self._late_held += 1
            self._recall(day, before_seq=seq)  # what was stored when it came
            if article_id in self._story_of:
                continue  # read back with its week
            story_id = self.store.story_of(article_id)
            if story_id not in clusterer.stories_:
                for sid, state, active in self.store.story_states(-math.inf, ids=[story_id]):
                    clusterer.restore_story(sid, StoryState.from_json(state))
                    self._active[sid] = active
            assert self._index is not None
            self._hold_stored(self._index, clusterer, [article_id], -math.inf, articles_only=True)

    def _hold_stored(
        self,
        index: SyndicationIndex,
        clusterer: StoryClusterer,
        ids: list[str],
        since: float,
        *,
        articles_only: bool = False,
        before_seq: int | None = None,
    ) -> list[str]:
        """Hold the stored articles of these stories (``articles_only``: these articles)
        published on or after day ``since`` that are not held yet: their fingerprints (wire
        copies of them are recognised), their place in memory, and their terms in the document
        frequencies. Their ids."""
        held = []
        rows = self.store.fingerprint_rows(ids, articles_only=articles_only, before_seq=before_seq)
        for row in rows:
            day = _day(as_utc(row.published) or as_utc(row.ingested_at))
            if day < since or row.article_id in self._story_of:
                continue  # in the store, but not compared with any more
            self._hold(row.article_id, row.story_id, row.group_id, day, row.seq)
            fp = Fingerprint.from_bytes(
                row.content_hash, row.doc_sig, row.para_sigs, list(row.para_words)
            )
            index.add(row.article_id, fp)
            held.append(row.article_id)
        # (a recent article is counted whether held or not)
        self._count_in(clusterer, [a for a in held if a not in self._recent_set])
        return held

    def _count_in(self, clusterer: StoryClusterer, article_ids: list[str], sign: int = 1) -> None:
        """Count stored articles' terms into the document frequencies (``sign=-1``: out). Their
        features are read back from the store: every article that left memory was written when
        it left (:meth:`_evict` flushes first)."""
        for feats in self.store.features_of(article_ids).values():
            clusterer.count(feats, sign)

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
        """Extract, dedup, cluster and store. New articles are written in batches of
        ``BATCH_SIZE``, each batch in one transaction; if anything fails mid-batch, that batch is
        not written, the learned state is reloaded from the store, and the error propagates.
        Holds the store's writer lock, but lets another process that waits for it write
        between two batches (then goes on from the store as that process left it)."""
        with self._writing():
            return self._ingest_items(items, progress)

    def _ingest_items(
        self, items: Iterable[Document | Rejection], progress: Progress | None
    ) -> IngestReport:
        report = IngestReport()
        if self._index is not None and self.store.write_stamp() != self._stamp:
            # another process stored articles or corrected stories since: go on from the
            # store as it is now (as a restart would), not from this engine's older memory
            self._forget_state()
        ready = prepared(items, self._workers, self.cluster_model.channels)
        # One BLAS thread: the split checks' matrix products are small, and OpenBLAS's idle
        # threads spin on the cores that worker processes need (measured: docs/benchmarks.md).
        # (A feed watcher ingests one article per call, so the controller is the engine's.)
        blas = self._threadpools.limit(limits=1, user_api="blas")
        try:
            for item in ready:
                outcome = item.outcome
                if isinstance(outcome, Rejection):
                    self.store.reject(outcome)
                    report.rejected.append(outcome)
                elif self._known(outcome.id):
                    report.duplicates.append(outcome.id)
                else:
                    day = item.terms["day"] if item.terms is not None else None
                    late = day is not None and day < self._horizon()
                    if late:
                        report.late.append(outcome.id)
                        self._late_held += 1
                    report.stories_touched.add(self._add(item, late=late).story_id)
                    report.new.append(outcome.id)
                    if len(self._pending) >= BATCH_SIZE:
                        self._flush()
                        self._let_waiting_writers_in()
                if progress is not None:
                    progress(outcome)
            self._flush()
            if self._index is not None:
                self._stamp = self.store.write_stamp()  # this engine's own writes
        except BaseException:
            self._pending.clear()
            self._forget_state()
            raise
        finally:
            blas.restore_original_limits()
        return report

    def _let_waiting_writers_in(self) -> None:
        """Between two batches of a long ingest: processes waiting to write (a feed watcher,
        a merge, the web server's ingest) write first, and the ingest goes on from the store
        as they left it, instead of holding them up until it ends. Not before this turn has
        lasted :data:`MIN_TURN` seconds and :data:`TURN_PER_LOAD` times the last reload of
        the learned state: two long ingests then take turns without spending most of their
        time reloading what the other wrote."""
        held = time.monotonic() - self._turn_started
        if held < max(MIN_TURN, TURN_PER_LOAD * self._load_seconds):
            return
        if self._threads_waiting and self._workers is None:
            self._let_waiting_threads_in()
        stamp = self.store.write_stamp()
        if self.store.let_waiting_writers_in():
            self._turn_started = time.monotonic()
            if self.store.write_stamp() != stamp:
                self._forget_state()

    def _let_waiting_threads_in(self) -> None:
        """Other threads of this process waiting to write (the web server's posts and
        corrections) write now, on the store's lock this thread holds, and this one goes on
        from the state they leave (a correction makes it reload; an ingest's batches are
        already in memory). Not with worker processes: an ingest's tasks in flight in the
        shared pool must not meet another's."""
        depth, self._turn_depth = self._turn_depth, 0
        for _ in range(depth):  # (all the way: the turn may be held in nested calls)
            self._write_turn.release()
        try:
            with self._turn_waits:  # until every waiting thread has had the turn
                self._turn_waits.wait_for(lambda: self._threads_waiting == 0, timeout=60)
        finally:
            for _ in range(depth):
                self._write_turn.acquire()
            self._turn_depth = depth
        self._turn_started = time.monotonic()

    def _known(self, article_id: str) -> bool:
        self._load()  # the active window's articles and the batch's are in memory
        if article_id in self._story_of:
            return True
        return article_id in self._seen and self.store.has_article(article_id)

    def _flush(self) -> None:
        if self._pending:
            self.store.add_many(self._pending)
            self._pending.clear()

    def _add(self, item: Prepared, *, late: bool = False) -> Membership:
        """Dedup and cluster one new article and queue it for the store (``late``: published
        before the window, see :meth:`_recall`). The in-memory state already counts it, so the
        next article of the batch sees it."""
        index, clusterer = self._load()
        article = item.outcome
        assert isinstance(article, Article) and item.fingerprint and item.terms is not None
        fp, terms = item.fingerprint, item.terms
        ingested = datetime.now(UTC)
        day = terms["day"] if terms["day"] is not None else _day(ingested)
        if late:
            self._recall(day)
        copy = index.match(fp)
        if copy is not None:
            group_id = self._group_of.get(copy.article_id, copy.article_id)
            forced = self._story_of.get(copy.article_id)
            kind, score = copy.kind, copy.score
        else:
            group_id, forced, kind, score = article.id, None, "original", 1.0
        assignment = clusterer.assign(article.id, terms, forced=forced)
        parts = dict(assignment.parts)
        if assignment.runner_up is not None and not assignment.new_story:
            parts["runner_up_score"] = assignment.runner_up_score  # (opening: best_existing)
        if copy is not None:
            parts.update({"copy_of": 1.0, "copy_score": score})
        membership = Membership(
            article.id, assignment.story_id, assignment.score, parts, assignment.runner_up
        )
        doc_sig, para_sigs = fp.to_bytes()
        self._pending.append(
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
                centroid=assignment.state.to_json(),
                ingested=ingested,
                day=day,
            )
        )
        index.add(article.id, fp)
        clusterer.commit(terms, assignment)
        self._next_seq += 1
        self._hold(article.id, assignment.story_id, group_id, day, self._next_seq)
        self._recent.append(article.id)
        self._recent_set.add(article.id)
        if len(self._recent) > IDF_FLOOR:
            old = self._recent.popleft()
            self._recent_set.discard(old)
            if old not in self._story_of:  # left memory already: no longer counted
                self._count_in(clusterer, [old], -1)
        self._active[assignment.story_id] = max(self._active.get(assignment.story_id, day), day)
        self._clock = max(self._clock, day)
        self._late_merge(assignment)
        self._maybe_split(self._story_of[article.id], article.id, terms, assignment.units)
        # late articles do not move the clock: without the cap they could pile up in memory
        if math.floor(self._clock) > math.floor(self._evicted_at) or self._late_held >= LATE_CAP:
            self._evict()
        return membership

    def _recall(self, day: float, *, before_seq: int | None = None) -> None:
        """A late article's own time: the stories active within the window around ``day``
        (ending from ``window_days`` before it, starting up to ``window_days`` after it) and
        their articles of that time read back from the store, so that the article can join its
        own story, which has left memory, and a wire copy is recognised as one. They stay like
        the window's until the next eviction (they are older than the window). Read once per
        week of days, and up to ``RECALL_CAP`` articles, between evictions."""
        index, clusterer = self._index, self._clusterer
        assert index is not None and clusterer is not None
        week = int(day // RECALL_DAYS)
        if week in self._recalled or self._recalled_held >= RECALL_CAP:
            return  # read already, or enough read until the next eviction
        self._recalled.add(week)
        window = self.settings.window_days
        start, end = week * RECALL_DAYS - window, (week + 1) * RECALL_DAYS + window
        horizon = self._horizon()
        recalled = []
        for story_id, centroid, active in self.store.story_states(
            since=start, until=min(end + window, horizon)
        ):
            if story_id in clusterer.stories_:
                continue
            state = StoryState.from_json(centroid)
            if state.first_day is not None and state.first_day >= end:
                continue
            clusterer.restore_story(story_id, state)
            self._members.setdefault(story_id, [])
            self._active[story_id] = active
            recalled.append(story_id)
        # stories still in memory that began before the window: their articles of this time
        # have left memory (a late copy of one of them would not be recognised)
        reaching = [
            story_id
            for story_id, state in clusterer.stories_.items()
            if story_id not in recalled
            and state.first_day is not None
            and state.first_day < min(end, horizon)
            and (state.last_day is None or state.last_day >= start)
        ]
        held = self._hold_stored(
            index, clusterer, recalled + reaching, since=start, before_seq=before_seq
        )
        self._recalled_held += len(held)
        for story_id in reaching:  # members stay in arrival order
            self._members.get(story_id, []).sort(key=self._seq_of.__getitem__)

    def _hold(self, article_id: str, story_id: str, group_id: str, day: float, seq: int) -> None:
        """Keep an article of the active window in memory (``seq``: its place in arrival
        order)."""
        self._seen.add(article_id)
        self._seq_of[article_id] = seq
        self._group_of[article_id] = group_id
        self._story_of[article_id] = story_id
        self._day_of[article_id] = day
        heapq.heappush(self._expiry, (day, article_id))
        self._members.setdefault(story_id, []).append(article_id)

    def _horizon(self, clock: float | None = None) -> float:
        """The active window's first day: ``window_days`` before the start of the newest day
        seen (or of day ``clock``). Whole days, so that it moves once a day and a restarted engine loads what the
        running one held (the window measured from the clock itself would hold up to a day more
        in a running engine, which evicts once a day, than in one that just loaded it)."""
        return math.floor(self._clock if clock is None else clock) - self.settings.window_days

    def _evict(self) -> None:
        """Articles older than the window leave memory (fingerprints, ids, their share of the
        document frequencies), even when their story goes on; stories idle for longer than
        the window leave with them. The store keeps everything."""
        index, clusterer = self._load()
        horizon = self._horizon()
        idle = [story_id for story_id, day in self._active.items() if day < horizon]
        leaving = [a for story_id in idle for a in self._members.get(story_id, [])]
        while self._expiry and self._expiry[0][0] < horizon:
            day, article_id = heapq.heappop(self._expiry)
            if self._day_of.get(article_id) == day:
                leaving.append(article_id)
        leaving = list(dict.fromkeys(a for a in leaving if a in self._story_of))
        if leaving:
            self._flush()  # what leaves memory is read back from the store
        self._count_in(clusterer, [a for a in leaving if a not in self._recent_set], -1)
        by_story: dict[str, set[str]] = {}
        for article_id in leaving:
            index.remove(article_id)
            by_story.setdefault(self._story_of.pop(article_id), set()).add(article_id)
            self._group_of.pop(article_id, None)
            self._day_of.pop(article_id, None)
            self._seq_of.pop(article_id, None)
        for story_id, gone in by_story.items():
            self._members[story_id] = [a for a in self._members[story_id] if a not in gone]
            matrix = self._matrices.get(story_id)
            if matrix is not None:
                self._matrices[story_id] = matrix.subset([a for a in matrix.ids if a not in gone])
        for story_id in idle:
            clusterer.drop_story(story_id)
            self._members.pop(story_id, None)
            self._matrices.pop(story_id, None)
            del self._active[story_id]
        self._evicted_at = self._clock
        self._late_held = self._recalled_held = 0
        self._recalled.clear()
        # late articles stored after this point stay held until the next eviction: a restart
        # holds them again (_hold_late)
        self.store.set_meta_value(LATE_MARK, str(self._next_seq))

    def _late_merge(self, assignment: Assignment) -> None:
        """When an article fits two stories about equally well, they are one event: merge them
        (the older id stays; the other resolves to it). Never undoes a user's split."""
        clusterer = self._clusterer
        other = assignment.runner_up
        if (
            clusterer is None
            or assignment.new_story
            or other is None
            or other not in clusterer.stories_
            or assignment.runner_up_score < clusterer.late_merge_threshold
            or frozenset((assignment.story_id, other)) in self._separated()
        ):
            return
        self._flush()  # the merge moves stored rows
        keep, gone = sorted((assignment.story_id, other))
        moved = self.store.member_ids(gone)  # also those that already left memory
        states: dict[str, dict[str, Any]] = {}

        def recompute(conn: Any, story_ids: list[str]) -> dict[str, dict[str, Any]]:
            states.update(self._states(conn, story_ids))
            return states

        self.store.move_articles(
            moved,
            keep,
            states=recompute,
            alias_from=gone,
            correction={"kind": "merge", "into": keep, "from": gone, "automatic": True},
        )
        clusterer.drop_story(gone)
        clusterer.restore_story(keep, StoryState.from_json(states[keep]))
        for story_id in (keep, gone):  # rebuilt from the stored features at the next check
            self._matrices.pop(story_id, None)
        held = self._members.pop(gone, [])
        for article_id in held:
            self._story_of[article_id] = keep
        self._members.setdefault(keep, []).extend(held)
        self._members[keep].sort(key=self._seq_of.__getitem__)  # arrival order
        self._active[keep] = max(
            self._active.get(keep, self._clock), self._active.pop(gone, self._clock)
        )

    def _maybe_split(
        self,
        story_id: str,
        article_id: str,
        feats: dict[str, Any],
        units: dict[str, dict[str, float]],
    ) -> None:
        """Each time a story of 2 * SPLIT_MIN to SPLIT_MAX articles (counting those that left
        memory) grows, split it if it has become two events (an early article of the second
        event joined the first, and its followers came after it). The newer event moves to a
        new story, kept apart from the old one like a user's split; syndication groups move
        whole. Stories a user merged or split are left alone."""
        clusterer = self._clusterer
        state = clusterer.stories_.get(story_id) if clusterer is not None else None
        if clusterer is None or state is None or state.size > SPLIT_MAX:
            self._matrices.pop(story_id, None)
            return
        if self._corrected is None:
            self._corrected = self.store.corrected_stories()
        if story_id in self._corrected:
            return
        members = self._members.get(story_id, [])
        matrix = self._matrices.get(story_id)
        if members == [article_id]:  # a new story
            matrix = MemberMatrix()
        if matrix is not None and matrix.ids == members[:-1] and members[-1:] == [article_id]:
            matrix.add(clusterer, article_id, feats, units)
        else:  # a restart or a merge since the last check
            matrix = self._member_matrix(members)
            if matrix is None:
                return
        self._matrices[story_id] = matrix
        if state.size < 2 * SPLIT_MIN:
            return
        found = clusterer.split_of(matrix.p)
        if found is None:
            return
        self._flush()  # the split moves stored rows
        votes: dict[str, int] = {}
        for i, member in enumerate(members):
            group = self._group_of.get(member, member)
            votes[group] = votes.get(group, 0) + (1 if i in found.leave else -1)
        leaving = [a for a in members if votes[self._group_of.get(a, a)] > 0]
        if not leaving or len(leaving) == len(members):
            return
        new_id = _split_id(self.store, leaving)
        states: dict[str, dict[str, Any]] = {}

        def recompute(conn: Any, story_ids: list[str]) -> dict[str, dict[str, Any]]:
            states.update(self._states(conn, story_ids))
            return states

        probability = round(found.probability, 4)
        self.store.move_articles(
            leaving,
            new_id,
            states=recompute,
            separate_from=story_id,
            correction={
                "kind": "split",
                "automatic": True,
                "from": story_id,
                "into": new_id,
                "articles": sorted(leaving),
                "probability": probability,
            },
            parts={"split_automatically": 1.0, "from": story_id, "probability": probability},
        )
        for sid in (story_id, new_id):
            clusterer.restore_story(sid, StoryState.from_json(states[sid]))
        gone = set(leaving)
        self._members[story_id] = [a for a in members if a not in gone]
        self._members[new_id] = leaving
        for sid in (story_id, new_id):
            self._matrices[sid] = matrix.subset(self._members[sid])
        for member in leaving:
            self._story_of[member] = new_id
        self._active.update(self.store.active_days([story_id, new_id]))  # their members' newest
        self._separated().add(frozenset((story_id, new_id)))

    def _member_matrix(self, members: list[str]) -> MemberMatrix | None:
        """A story's MemberMatrix built from its members' stored features, oldest first (None
        when some are missing)."""
        clusterer = self._clusterer
        assert clusterer is not None
        wanted = set(members)
        feats = {p.article.id: p.terms for p in self._pending if p.article.id in wanted}
        feats.update(self.store.features_of([a for a in members if a not in feats]))
        if len(feats.keys() & wanted) < len(wanted):
            return None
        matrix = MemberMatrix()  # its first add refreshes it: every row is today's idf
        for member in members:
            matrix.add(clusterer, member, feats[member])
        return matrix

    def _separated(self) -> set[frozenset[str]]:
        if self._separations is None:
            self._separations = self.store.separated()
        return self._separations

    # -- corrections --------------------------------------------------------------------------

    def _states(self, conn: Any, story_ids: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for story_id in story_ids:
            state = StoryState()
            for feats in self.store.member_features(conn, story_id):
                state = state.joined(feats)
            out[story_id] = state.to_json()
        return out

    def _forget_state(self) -> None:
        """Learned state is reloaded from the store on next use (after a correction)."""
        self._index = self._clusterer = None
        self._matrices.clear()
        self._separations = None
        self._corrected = None
        self._group_of.clear()
        self._story_of.clear()
        self._day_of.clear()
        self._seq_of.clear()
        self._expiry.clear()
        self._recalled.clear()
        self._recent.clear()
        self._recent_set.clear()
        self._late_held = self._recalled_held = 0

    def forget(self, before: datetime, *, dry_run: bool = False) -> Forgotten:
        """Delete the stories whose newest article was published (undated: taken in) before
        ``before``, with their articles, briefs and search index: a long-running store's
        disk held the whole archive. Only stories that left the active window: those active
        within ``window_days`` of the store's newest story stay, whatever ``before`` says (an
        engine still holds them). A later ingest of a forgotten article stores it anew."""
        with self._writing():
            latest = self.store.latest_day()
            cutoff = _day(before)
            horizon = cutoff if latest is None else self._horizon(max(self._clock, latest))
            held_back = horizon < cutoff
            day = min(cutoff, horizon)
            ids, n_articles = self.store.forget_stories(day, dry_run=dry_run)
            if ids and not dry_run:
                self._forget_state()  # (the seen-ids filter may still say "maybe" for them)
        return Forgotten(
            tuple(ids), n_articles, datetime.fromtimestamp(day * 86400, UTC), held_back, dry_run
        )

    def merge(self, keep: str, other: str, *, automatic: bool = False) -> str:
        """Merge story ``other`` into ``keep``; ``other`` stays resolvable as an alias."""
        with self._writing():
            asked = (keep, other)
            keep, other = self.store.resolve(keep), self.store.resolve(other)
            self.store.story_row(keep)
            self.store.story_row(other)
            if keep == other:
                raise SettingsError(f"{asked[0]} and {asked[1]} are already one story ({keep})")
            moved = self.store.member_ids(other)
            self.store.move_articles(
                moved,
                keep,
                states=self._states,
                alias_from=other,
                correction={"kind": "merge", "into": keep, "from": other, "automatic": automatic},
            )
            self._forget_state()
            return keep

    def split(self, story_id: str, article_ids: list[str]) -> str:
        """Move ``article_ids`` out of a story into a new one; the two are never merged again
        automatically, so a split article never drifts back."""
        with self._writing():
            story_id = self.store.resolve(story_id)
            members = {m.article_id for m in self.store.story_articles(story_id)[2]}
            self.store.story_row(story_id)
            strangers = [a for a in article_ids if a not in members]
            if strangers:
                raise NotFound(
                    f"{', '.join(strangers)} not in story {story_id}; `synoptic story {story_id}` lists its articles"
                )
            if not article_ids or set(article_ids) >= members:
                raise SettingsError("name some, but not all, of the story's articles to split off")
            new_id = _split_id(self.store, article_ids)
            self.store.move_articles(
                list(dict.fromkeys(article_ids)),
                new_id,
                states=self._states,
                separate_from=story_id,
                correction={
                    "kind": "split",
                    "from": story_id,
                    "into": new_id,
                    "articles": sorted(article_ids),
                },
            )
            self._forget_state()
            return new_id

        # -- reading ------------------------------------------------------------------------------

    def story(self, story_id: str) -> Story:
        row = self.store.story_row(story_id)
        arts, groups, _ = self.store.story_articles(row["id"])
        headline = story_headline(arts)
        return Story(
            row["id"], headline, row["created"], row["updated"], tuple(arts), tuple(groups)
        )

    def stories(self) -> list[Story]:
        """Every story, most recently updated first."""
        return [self.story(row["id"]) for row in self.store.story_rows()]

    def story_list(self) -> list[Story]:
        """:meth:`stories` without the articles' texts (each ``Article.text`` is empty, and
        authors, removed parts and extra fields are left out): what a list of stories shows,
        read at once instead of story by story (docs/architecture.md, "Known limits");
        :meth:`story_page` filters and pages it."""
        return self.story_page()[1]

    def story_page(self, chosen: StorySelection = StorySelection()) -> tuple[int, list[Story]]:
        """How many stories the selection keeps, and its page of them as :meth:`story_list`
        gives them. Only the page's articles are read (by reports, every matching story's)."""
        if chosen.since is not None:  # (SQLite keeps times as UTC text: compare in UTC)
            since = chosen.since
            chosen = replace(
                chosen, since=since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
            )
        total, rows = self.store.story_listing(chosen)
        return total, [
            Story(
                row["id"],
                story_headline(arts),
                row["created"],
                row["updated"],
                tuple(arts),
                tuple(groups),
            )
            for row, arts, groups in rows
        ]

    def story_of(self, article_id: str) -> str:
        """The id of the story an article is in."""
        self._load()
        if article_id in self._story_of:
            return self._story_of[article_id]
        return self.store.story_of(article_id)  # outside the active window

    def memberships(self, story_id: str) -> list[Membership]:
        self.store.story_row(story_id)
        return self.store.story_articles(story_id)[2]

    def brief(self, story_id: str, *, words: int | None = None) -> Brief:
        """The story's brief. Briefs are versioned: a new version is recorded whenever the
        story's articles changed since the last one, and claims that were not in the previous
        version are marked ``new``."""
        story = self.story(story_id)
        brief = self.writer.write(
            list(story.articles), list(story.groups), story_id=story.id, words=words
        )
        article_ids = sorted(a.id for a in story.articles)
        versions = self.store.brief_versions(story.id)
        if not versions or versions[-1]["article_ids"] != article_ids:
            version = len(versions) + 1
            self.store.add_brief_version(story.id, version, article_ids, sorted(_claim_keys(brief)))
            previous = versions[-1] if versions else None
        else:
            version = versions[-1]["version"]
            previous = versions[-2] if len(versions) > 1 else None
        known = set(previous["claim_keys"]) if previous else None
        claims = tuple(
            replace(c, new=known is not None and not (_keys_of(brief, c) & known))
            for c in brief.claims
        )
        return replace(brief, claims=claims, version=version)

    def article(self, article_id: str) -> Article:
        return self.store.article(article_id)

    def rejections(self) -> list[dict[str, Any]]:
        return self.store.rejection_rows()


def _keys_of(brief: Brief, claim: Claim) -> set[str]:
    texts = {a.id: a.text for a in brief.articles}
    return {normalise_for_hash(texts[c.article_id][c.start : c.end]) for c in claim.citations}


def _claim_keys(brief: Brief) -> set[str]:
    return {key for claim in brief.claims for key in _keys_of(brief, claim)}


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


def _split_id(store: Store, article_ids: list[str]) -> str:
    """The id of a story split off from another: the same articles in the same store history
    give the same id, never one a story has or had (an id merged away resolves to the story
    it went into, so reusing it would hide the new story)."""
    key = "split\0" + "\0".join(sorted(article_ids))
    story_id, attempt = "s_" + hashlib.sha256(key.encode()).hexdigest()[:16], 0
    while store.story_id_taken(story_id):
        attempt += 1
        story_id = "s_" + hashlib.sha256(f"{key}\0{attempt}".encode()).hexdigest()[:16]
    return story_id


def syndication_groups(
    articles: list[Article], settings: Settings | None = None
) -> tuple[list[Article], list[SyndicationGroup]]:
    """These articles without repeats, grouped into syndication groups (copies of one text;
    texts crediting one wire: :func:`~synoptic.model.story_groups`)."""
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
    grouped: dict[str, list[Article]] = {}
    for article in unique:
        grouped.setdefault(group_of[article.id], []).append(article)
    return unique, story_groups(grouped)


def brief_of(
    articles: list[Article], *, settings: Settings | None = None, words: int | None = None
) -> Brief:
    """A brief of exactly these articles as one story (no clustering, no store)."""
    settings = settings or Settings()
    unique, groups = syndication_groups(articles, settings)
    return BriefWriter.from_settings(settings).write(unique, groups, words=words)
