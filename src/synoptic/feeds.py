"""Feed documents: RSS 0.9x/1.0/2.0 and Atom (feedparser) and JSON Feed, parsed into entries.
Shared by the watch mode (``sources``), which fetches each entry's page, and by file ingest
(``ingest``), which reads a saved feed offline and takes each entry's own text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from synoptic.errors import InputRejected
from synoptic.fetch import Fetched
from synoptic.model import Document, Rejection, storable


@dataclass(frozen=True)
class Entry:
    url: str | None
    title: str | None
    published: datetime | None
    content: str | None  # the entry's own text or HTML
    content_is_html: bool
    authors: tuple[str, ...] = ()

    @property
    def key(self) -> str | None:
        return self.url


def _datetime(struct: Any) -> datetime | None:
    if not struct:
        return None
    try:
        year, month, day, hour, minute, second = struct[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_feed(fetched: Fetched) -> tuple[list[Entry], str | None]:
    """Entries of an RSS, Atom or JSON Feed document, and a warning when the XML was malformed
    but entries could be recovered. Raises InputRejected when nothing is readable."""
    body = fetched.content.lstrip()
    if "json" in fetched.content_type or body.startswith(b"{"):
        return _json_feed(fetched), None
    import feedparser

    parsed = feedparser.parse(
        fetched.content,
        response_headers={"content-type": fetched.content_type or "application/xml"},
    )
    problem = parsed.get("bozo_exception")
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    warning = None
    if parsed.bozo and not isinstance(problem, benign):
        if not parsed.entries:
            raise InputRejected(fetched.url, f"malformed feed: {problem}")
        warning = f"malformed feed ({problem}); {len(parsed.entries)} entries recovered"
    if not parsed.entries and not parsed.feed:
        raise InputRejected(fetched.url, "not a feed (no channel, no entries)")
    entries = []
    for e in parsed.entries:
        content, is_html = None, False
        if e.get("content"):
            content = e.content[0].get("value")
            is_html = "html" in (e.content[0].get("type") or "")
        elif e.get("summary"):
            content = e.summary
            is_html = "html" in (e.get("summary_detail", {}).get("type") or "")
        authors = tuple(a.get("name", "") for a in e.get("authors", []) if a.get("name"))
        published = _datetime(e.get("published_parsed")) or _datetime(e.get("updated_parsed"))
        entries.append(Entry(e.get("link"), e.get("title"), published, content, is_html, authors))
    return entries, warning


def is_json_feed(data: object) -> bool:
    """Whether parsed JSON is a JSON Feed (its 'version' names jsonfeed.org)."""
    return isinstance(data, dict) and "jsonfeed" in str(data.get("version", ""))


def _json_feed(fetched: Fetched) -> list[Entry]:
    try:
        data = json.loads(fetched.content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputRejected(fetched.url, f"malformed JSON Feed: {exc}") from None
    if not is_json_feed(data):
        raise InputRejected(
            fetched.url, "JSON but not a JSON Feed (no 'version' naming jsonfeed.org)"
        )
    return json_feed_entries(data)


def json_feed_entries(data: dict[str, Any]) -> list[Entry]:
    """The entries of a parsed JSON Feed (a field of another type than the spec's counts as
    missing)."""
    entries = []
    items = data.get("items")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        published = None
        if date := _string(item.get("date_published")):
            try:
                published = datetime.fromisoformat(date.replace("Z", "+00:00"))
            except ValueError:
                published = None
        html = _string(item.get("content_html"))
        text = _string(item.get("content_text")) or _string(item.get("summary"))
        authors_field = item.get("authors")
        authors = tuple(
            name
            for a in (authors_field if isinstance(authors_field, list) else [])
            if isinstance(a, dict) and (name := _string(a.get("name")))
        )
        entries.append(
            Entry(
                _string(item.get("url")) or _string(item.get("external_url")),
                _string(item.get("title")),
                published,
                html or text,
                bool(html),
                authors,
            )
        )
    return entries


def _string(value: Any) -> str | None:
    """A JSON Feed field that should be a string: the string (storable), else None."""
    return storable(value) or None if isinstance(value, str) else None


def entry_meta(entry: Entry, source_url: str) -> dict[str, Any]:
    """A feed entry's metadata, as a Document's (its page's own title wins when fetched)."""
    meta: dict[str, Any] = {"url": entry.url, "feed": source_url}
    if entry.title:
        meta["feed_title"] = entry.title
    if entry.published:
        meta["published"] = entry.published.isoformat()
    if entry.authors:
        meta["authors"] = list(entry.authors)
    return meta


def entry_text(
    entry: Entry, source_url: str, why: str, *, page_error: str | None = None
) -> Document | Rejection:
    """A feed entry's own text (or HTML) as a document; ``why`` says, in a rejection, why no
    page stands in for an entry without text."""
    origin = entry.url or f"{source_url}#{entry.title or 'entry'}"
    if not (entry.content and entry.content.strip()):
        return Rejection(origin, f"{why} and the feed entry has no text")
    meta = entry_meta(entry, source_url) | {"text_from": "feed entry"}
    if entry.title:
        meta["title"] = entry.title
    if page_error is not None:
        meta["page_error"] = page_error
    return Document(origin, "html" if entry.content_is_html else "text", entry.content, meta)
