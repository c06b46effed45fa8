"""Live sources: feeds (RSS 0.9x/1.0/2.0, Atom via feedparser; JSON Feed), OPML lists, article
pages, and the watch loop that polls them.

Fetching happens in worker threads, one per host at a time (so a host sees at most one request
at once, spaced by ``delay``); extraction and storage happen in the calling thread, one article
at a time, so a stop request (Ctrl-C, SIGTERM) takes effect after the article in hand and
nothing half-written stays in the store.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from sqlalchemy.exc import SQLAlchemyError

from synoptic.engine import Engine
from synoptic.errors import InputRejected, SettingsError
from synoptic.feeds import Entry, entry_meta, entry_text, parse_feed
from synoptic.fetch import Fetcher, FetchOptions
from synoptic.ingest import decode_text
from synoptic.model import Document, Rejection
from synoptic.store import store_failure

log = logging.getLogger(__name__)
FEED_TYPES = ("xml", "rss", "atom", "json", "text/plain", "text/html", "rdf")
PAGE_TYPES = ("text/html", "application/xhtml+xml")


def parse_duration(text: str) -> float:
    """'10m' -> 600.0; accepts s, m, h, d suffixes or plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise SettingsError(f"cannot read the duration {text!r}: write e.g. 30s, 10m, 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def read_opml(path: Path) -> list[tuple[str, str | None]]:
    """(feed URL, title) for every outline with an xmlUrl."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputRejected(str(path), f"not a readable OPML file: {exc}") from None
    found = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl") or outline.get("xmlurl")
        if url:
            found.append((url.strip(), outline.get("title") or outline.get("text")))
    if not found:
        raise InputRejected(str(path), "the OPML file lists no feeds (no outline has an xmlUrl)")
    return found


def entry_document(fetcher: Fetcher, entry: Entry, source_url: str) -> Document | Rejection:
    """The article page of a feed entry, or the entry's own text when the page cannot be had."""
    meta = entry_meta(entry, source_url)
    page_error = "the entry has no link"
    if entry.url:
        try:
            fetched = fetcher.get(entry.url, accept=PAGE_TYPES)
            decoded = decode_text(fetched.content, entry.url, html=True)
            if isinstance(decoded, Rejection):
                raise InputRejected(entry.url, decoded.reason)
            return Document(
                entry.url,
                "html",
                decoded,
                meta | {"url": fetched.url if fetched.url else entry.url},
            )
        except InputRejected as exc:
            page_error = exc.reason
    return entry_text(entry, source_url, f"page not fetched ({page_error})", page_error=page_error)


@dataclass
class SourceResult:
    url: str
    error: str | None = None
    warning: str | None = None
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    documents: list[tuple[Entry, Document | Rejection]] = field(default_factory=list)


@dataclass
class WatchReport:
    polled: int = 0
    new: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_modified: int = 0

    def summary_line(self) -> str:
        return (
            f"{self.polled} source{'s' * (self.polled != 1)} polled ({self.not_modified} unchanged, {len(self.failed)} failed): "
            f"{self.new} new, {self.duplicates} duplicates, {len(self.rejected)} rejected"
        )


class Watcher:
    """Polls the store's sources and ingests what is new. ``stop()`` is safe from a signal."""

    def __init__(
        self,
        engine: Engine,
        *,
        options: FetchOptions | None = None,
        delay: float = 1.0,
        workers: int = 4,
        every: float = 600.0,
    ) -> None:
        self.engine = engine
        self.options = options or FetchOptions()
        self.delay = delay
        self.workers = workers
        self.every = every
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def due(self, *, all_sources: bool) -> list[dict[str, Any]]:
        moment = datetime.now(UTC)
        return [
            s
            for s in self.engine.store.source_rows()
            if all_sources or s["next_poll"] is None or s["next_poll"] <= moment
        ]

    def poll(
        self, *, all_sources: bool = True, progress: Callable[[str], None] | None = None
    ) -> WatchReport:
        """One cycle over the due sources."""
        report = WatchReport()
        chosen = self.due(all_sources=all_sources)
        by_host: dict[str, list[dict[str, Any]]] = {}
        for source in chosen:
            by_host.setdefault(urlsplit(source["url"]).netloc, []).append(source)
        fetcher = Fetcher(self.options)
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
                futures = [
                    pool.submit(self._fetch_host, fetcher, group) for group in by_host.values()
                ]
                for future in as_completed(futures):
                    for result in future.result():
                        self._ingest(result, report, progress)
                    if self.stopping:
                        break
        finally:
            fetcher.close()
        return report

    def _fetch_host(self, fetcher: Fetcher, group: list[dict[str, Any]]) -> list[SourceResult]:
        """All the requests to one host, one at a time, ``delay`` apart."""
        results = []
        first = True

        def pause() -> None:
            nonlocal first
            if not first and self.delay:
                time.sleep(self.delay)
            first = False

        for source in group:
            if self.stopping:
                break
            result = SourceResult(source["url"])
            results.append(result)
            try:
                pause()
                fetched = fetcher.get(
                    source["url"],
                    accept=FEED_TYPES,
                    etag=source["etag"],
                    last_modified=source["last_modified"],
                )
                result.etag, result.last_modified = fetched.etag, fetched.last_modified
                if fetched.not_modified:
                    result.not_modified = True
                    continue
                entries, result.warning = parse_feed(fetched)
                for entry in entries:
                    if self.stopping:
                        break
                    if entry.key and self.engine.store.entry_seen(entry.key):
                        continue
                    if entry.url and urlsplit(entry.url).netloc == urlsplit(source["url"]).netloc:
                        pause()
                    result.documents.append((entry, entry_document(fetcher, entry, source["url"])))
            except InputRejected as exc:
                result.error = exc.reason
            except SQLAlchemyError:
                raise  # (the database failed: the whole poll says so and is tried again)
            except Exception as exc:  # one source that trips a bug must not stop the others
                result.error = (
                    f"could not be read: {type(exc).__name__}: {exc} (a bug in synoptic or a "
                    "library it uses: please report it with this feed)"
                )
        return results

    def _ingest(
        self, result: SourceResult, report: WatchReport, progress: Callable[[str], None] | None
    ) -> None:
        store = self.engine.store
        report.polled += 1
        moment = datetime.now(UTC)
        next_poll = moment + timedelta(seconds=self.every)
        if result.error:
            report.failed[result.url] = result.error
            store.update_source(
                result.url, last_error=result.error, last_error_at=moment, next_poll=next_poll
            )
            return
        if result.not_modified:
            report.not_modified += 1
            store.update_source(result.url, last_success=moment, next_poll=next_poll)
            return
        new = 0
        for entry, item in result.documents:
            if self.stopping:
                break  # the article in hand was finished; the rest waits for the next poll
            outcome = self.engine.ingest_items([item])
            new += len(outcome.new)
            report.new += len(outcome.new)
            report.duplicates += len(outcome.duplicates)
            report.rejected.extend(outcome.rejected)
            if entry.key:
                store.mark_entry(
                    entry.key, result.url, "rejected" if outcome.rejected else "stored"
                )
            if progress is not None:
                progress(entry.title or entry.url or "")
        values: dict[str, Any] = {
            "last_success": moment,
            "next_poll": next_poll,
            "articles_new": new,
        }
        if result.warning:
            report.failed[result.url] = result.warning
            values.update(last_error=result.warning, last_error_at=moment)
        if result.etag or result.last_modified:
            values.update(etag=result.etag, last_modified=result.last_modified)
        store.update_source(result.url, **values)

    def run(
        self,
        *,
        once: bool,
        progress: Callable[[str], None] | None = None,
        on_cycle: Callable[[WatchReport], None] | None = None,
    ) -> None:
        """Poll until stopped (or once). Sleeps in short steps so a stop is prompt. When the
        database fails (a full disk, a server restarting), a long-running watcher says so and
        tries again after ``every`` (at most a minute) instead of stopping; ``once`` raises."""
        first = True
        while not self.stopping:
            try:
                report = self.poll(all_sources=first, progress=progress)
            except SQLAlchemyError as exc:
                if once:
                    raise
                log.warning("%s; the watcher tries again shortly", store_failure(exc))
                self._stop.wait(min(self.every, 60.0))
                continue
            first = False
            if on_cycle is not None:
                on_cycle(report)
            if once:
                return
            while not self.stopping and not self._due_or_failing():
                self._stop.wait(1.0)

    def _due_or_failing(self) -> bool:
        """Whether a source is due to be polled (or the database fails: the poll says so)."""
        try:
            return bool(self.due(all_sources=False))
        except SQLAlchemyError:
            return True
