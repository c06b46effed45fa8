"""The one data model shared by every stage.

Document -> Article -> (fingerprints) -> Story -> Brief. Everything here is plain, typed data:
no I/O, no state that learns. Dates are timezone-aware ``datetime`` objects, never strings.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, Literal

ClaimStatus = Literal["agreed", "single", "conflict"]

# NUL (never text; PostgreSQL refuses it) and lone UTF-16 surrogates (a JSON "\\ud800", a file
# name that is not UTF-8, decoded with surrogateescape): no store can hold them, no terminal print
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` without NULs, its lone surrogates replaced by U+FFFD."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


@dataclass(frozen=True)
class Document:
    """Raw input before extraction: text or HTML plus where it came from."""

    origin: str  # path, "path:line", URL or "<stdin>"
    kind: Literal["text", "html"]
    content: str
    meta: dict[str, Any] = field(default_factory=dict)  # caller-supplied metadata (JSON, sidecar)


@dataclass(frozen=True)
class Removed:
    """A piece of text the cleaner took out, and why."""

    text: str
    reason: str


@dataclass(frozen=True)
class Article:
    """A clean article. ``text`` is the paragraphs joined by blank lines; citations index into it."""

    id: str
    title: str
    text: str
    origin: str = ""
    source_id: str | None = None
    url: str | None = None
    outlet: str | None = None
    outlet_inferred: bool = False
    published: datetime | None = None
    published_inferred: bool = False
    authors: tuple[str, ...] = ()
    language: str | None = None
    wire: str | None = None  # wire service credited in the text (Reuters, AP, AFP...)
    removed: tuple[Removed, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # unknown input fields, kept verbatim

    @property
    def paragraphs(self) -> list[str]:
        return split_paragraphs(self.text)

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.title, self.text)


def split_paragraphs(text: str) -> list[str]:
    """An article text's paragraphs (they are joined by blank lines)."""
    return [p for p in text.split("\n\n") if p]


def normalise_for_hash(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


@lru_cache(maxsize=4)  # an article's id and its content hash both need it, one after the other
def content_hash(title: str, text: str) -> str:
    digest = hashlib.sha256()
    digest.update(normalise_for_hash(title).encode())
    digest.update(b"\x00")
    digest.update(normalise_for_hash(text).encode())
    return digest.hexdigest()


def article_id(title: str, text: str, url: str | None) -> str:
    """Stable id from content and url: the same article ingested twice gets the same id."""
    digest = hashlib.sha256()
    digest.update(content_hash(title, text).encode())
    digest.update(b"\x00")
    digest.update((url or "").strip().encode())
    return "a_" + digest.hexdigest()[:16]


@dataclass(frozen=True)
class Rejection:
    """An input that could not become an article, with a reason a user can act on."""

    origin: str
    reason: str

    def __post_init__(self) -> None:  # (a file name that is not UTF-8 is still shown and stored)
        object.__setattr__(self, "origin", storable(self.origin))
        object.__setattr__(self, "reason", storable(self.reason))


@dataclass(frozen=True)
class Membership:
    """Why an article is in a story."""

    article_id: str
    story_id: str
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    runner_up: str | None = None


@dataclass(frozen=True)
class SyndicationGroup:
    """Articles that are one report: one text republished, or (see :func:`story_groups`)
    the texts of a story that credit one wire service. Together they count as one independent
    report."""

    id: str
    article_ids: tuple[str, ...]
    wire: str | None = None


def story_groups(grouped: dict[str, list[Article]]) -> list[SyndicationGroup]:
    """A story's reports from its articles by syndication group id (each group named for the
    wire one of its articles credits), the groups crediting the same wire folded into the first
    of them: two texts of one wire (its first version and a rewrite, its main story and a
    sidebar) are one source, not two confirmations, though their words differ too much for a
    copy. Groups with no wire stay as they are."""
    first: dict[str, int] = {}
    out: list[SyndicationGroup] = []
    for gid, members in grouped.items():
        ids = tuple(a.id for a in members)
        wire = next((a.wire for a in members if a.wire), None)
        at = first.get(wire) if wire else None
        if at is None:
            if wire:
                first[wire] = len(out)
            out.append(SyndicationGroup(gid, ids, wire))
        else:
            kept = out[at]
            out[at] = SyndicationGroup(kept.id, kept.article_ids + ids, kept.wire)
    return out


@dataclass(frozen=True)
class Story:
    id: str
    headline: str
    created: datetime
    updated: datetime
    articles: tuple[Article, ...]
    groups: tuple[SyndicationGroup, ...]

    @property
    def independent_reports(self) -> int:
        return len(self.groups)


@dataclass(frozen=True)
class StorySelection:
    """Which stories a list shows, and in what order: those with an article matching each
    full-text query of ``search`` (all its words), an article from ``outlet`` (any case) and
    an update at or after ``since``; ``limit`` of them from the ``offset``-th on, most
    recently updated first, or with ``by_reports`` most independent reports first."""

    search: tuple[str, ...] = ()
    outlet: str | None = None
    since: datetime | None = None
    offset: int = 0
    limit: int | None = None
    by_reports: bool = False

    def __post_init__(self) -> None:
        # a blank query (a space typed in the search box) is no query, as an empty one is
        object.__setattr__(self, "search", tuple(q for q in self.search if q.strip()))


@dataclass(frozen=True)
class Forgotten:
    """What :meth:`synoptic.Engine.forget` deleted (or, ``dry_run``, would delete): the
    stories last active before ``before`` (the time asked for, or the active window's start
    when that is earlier: ``held_back``), and how many articles they held."""

    stories: tuple[str, ...]
    articles: int
    before: datetime
    held_back: bool
    dry_run: bool


@dataclass(frozen=True)
class Citation:
    article_id: str
    start: int
    end: int
    exact: bool  # True when article.text[start:end] is the cited text itself


@dataclass(frozen=True)
class SummarySentence:
    text: str
    citations: tuple[Citation, ...]
    status: ClaimStatus


@dataclass(frozen=True)
class Claim:
    text: str
    status: ClaimStatus
    article_ids: tuple[str, ...]
    independent_reports: int
    citations: tuple[Citation, ...]
    values: dict[str, list[str]] = field(default_factory=dict)  # conflicts: value -> article ids
    speaker: str | None = None  # who the claim is attributed to ("X said")
    dates: tuple[str, ...] = ()  # dates it mentions, resolved against publication dates
    new: bool = False  # not in the previous version of the brief


@dataclass(frozen=True)
class Brief:
    story_id: str | None
    headline: str
    summary: tuple[SummarySentence, ...]
    claims: tuple[Claim, ...]
    articles: tuple[Article, ...]
    groups: tuple[SyndicationGroup, ...]
    entities: tuple[dict[str, Any], ...] = ()
    timeline: tuple[dict[str, Any], ...] = ()
    framing: tuple[dict[str, Any], ...] = ()
    version: int | None = None
    entity_recognizer: str = ""
    # articles of a large story the brief did not read (BriefWriter._to_read): its claims,
    # names and framing come from the others
    unread: tuple[str, ...] = ()

    @property
    def independent_reports(self) -> int:
        return len(self.groups)


@dataclass
class IngestReport:
    """What one ingest call did."""

    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    stories_touched: set[str] = field(default_factory=set)
    # new articles published longer than the active window before the newest one already seen
    # (an archive ingested out of date order): clustered with the stories of their own weeks,
    # read back from the store
    late: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.duplicates)} duplicates, {len(self.rejected)} rejected"
        )
