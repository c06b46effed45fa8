"""The per-article work that needs no learned state: extraction and cleaning, MinHash
fingerprints and clustering features. It runs in the ingesting process, or, with
``Settings(workers=N)``, in N worker processes while the ingesting process dedups, clusters and
writes (results come back in input order, so both ways give the same stories)."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from synoptic.cluster import CHANNELS, article_features
from synoptic.dedup import Fingerprint, Fingerprinter
from synoptic.errors import InputRejected
from synoptic.extract import Extractor
from synoptic.model import Article, Document, Rejection
from synoptic.text import words

log = logging.getLogger(__name__)

CHUNK = 32  # documents per task sent to a worker
WATCH_EVERY = 1.0  # seconds between a worker's checks that the ingesting process is there
AHEAD = 4  # tasks queued per worker (bounds memory however long the input is)


@dataclass(frozen=True)
class Prepared:
    """An input made ready for the engine: a rejection, or an article with its fingerprint and
    clustering features."""

    outcome: Article | Rejection
    fingerprint: Fingerprint | None = None
    terms: dict[str, Any] | None = None


class Preparer:
    """Extract, fingerprint and featurise one input at a time (no learned state); clustering
    features of ``channels`` only (the clustering model's)."""

    def __init__(self, channels: tuple[str, ...] = CHANNELS) -> None:
        self.extractor = Extractor()
        self.fingerprinter = Fingerprinter()
        self.channels = channels

    def __call__(self, item: Document | Rejection) -> Prepared:
        if isinstance(item, Rejection):
            return Prepared(item)
        try:
            article = self.extractor.extract(item)
            paragraphs = [words(paragraph) for paragraph in article.paragraphs]  # cut once
            fingerprint = self.fingerprinter.of_words(article.content_hash, paragraphs)
            text_words = list(itertools.chain.from_iterable(paragraphs))  # no word spans two
            features = article_features(article, self.channels, text_words)
        except InputRejected as exc:
            return Prepared(Rejection(exc.origin, exc.reason))
        except Exception as exc:  # one document that trips a bug must not stop the others
            return Prepared(
                Rejection(
                    item.origin,
                    f"could not be read: {type(exc).__name__}: {exc} (a bug in synoptic or a "
                    "library it uses: please report it with this document)",
                )
            )
        return Prepared(article, fingerprint, features)


def _prepare_chunk(channels: tuple[str, ...], chunk: list[Document | Rejection]) -> list[Prepared]:
    preparer = Preparer(channels)
    return [preparer(item) for item in chunk]


def _worker_start(pid: int) -> None:
    """A worker's initializer. Ctrl-C is the ingesting process's to handle (a terminal sends
    it to every process of the group, and each worker printed a traceback); and the worker
    ends once process ``pid`` (the one that started it) is gone: killed, that process closes
    nothing, and its workers (each holding the other end of its own task queue) and their
    forkserver waited for work forever, ~165 MB each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(WATCH_EVERY)
            try:
                os.kill(pid, 0)  # (signal 0: is it there?)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass  # there, under another user: its pid was reused, which this cannot tell

    threading.Thread(target=watch, name="synoptic-parent-watch", daemon=True).start()


class Workers:
    """Worker processes for :func:`prepared`, started on first use and kept for later ingests
    until :meth:`close` (the engine owns one when ``workers`` > 1). They end by themselves
    when the process that started them is killed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver, not fork: the caller may run threads (web server, feed watcher)
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(
                max_workers=self.n,
                mp_context=context,
                initializer=_worker_start,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def prepared(
    items: Iterable[Document | Rejection],
    workers: Workers | None = None,
    channels: tuple[str, ...] = CHANNELS,
) -> Iterator[Prepared]:
    """``items`` prepared, in order, with clustering features of ``channels``; by ``workers``
    when given."""
    if workers is None:
        yield from map(Preparer(channels), items)
        return
    task = partial(_prepare_chunk, channels)
    try:
        pool = workers.pool()
    except (OSError, ValueError, NotImplementedError, ImportError) as exc:  # (a sandbox)
        log.warning("worker processes cannot start here (%s): preparing in this process", exc)
        yield from map(Preparer(channels), items)
        return
    queued: deque[Future[list[Prepared]]] = deque()
    source = iter(items)
    while chunk := list(itertools.islice(source, CHUNK)):
        queued.append(pool.submit(task, chunk))
        if len(queued) >= AHEAD * workers.n:
            yield from queued.popleft().result()
    while queued:
        yield from queued.popleft().result()
