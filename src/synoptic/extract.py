"""Document -> Article: main text and metadata from HTML (trafilatura) or plain text (own rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from synoptic.clean import Cleaned, TextCleaner
from synoptic.errors import InputRejected
from synoptic.model import Article, Document, Removed, article_id, storable
from synoptic.outlets import OutletRegistry
from synoptic.text import MONTHS, ends_like_sentence, normalise, words

KNOWN_FIELDS = frozenset(
    {"id", "title", "text", "html", "url", "outlet", "published", "authors", "language"}
)
STRING_FIELDS = ("title", "text", "html", "url", "outlet", "language")
# a BCP 47 language tag as stored (at most 16 characters): "en", "pt-BR", "zh-Hant-TW"
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}")


_WALLS = {
    "a cookie-consent wall": re.compile(
        r"\b(?:we use cookies|cookie (?:policy|settings|preferences)|accept all(?: cookies)?|reject all"
        r"|manage (?:your )?(?:privacy|cookie|consent) (?:settings|preferences|choices)|your privacy choices)\b",
        re.IGNORECASE,
    ),
    "a paywall stub": re.compile(
        r"\b(?:subscribe (?:now )?to (?:continue|keep) reading|for subscribers only|subscribers only"
        r"|already a subscriber|to continue reading,? (?:please )?(?:subscribe|log in|sign in)"
        r"|this (?:article|story|content) is (?:only )?(?:available|reserved) (?:to|for) (?:paying )?subscribers)\b",
        re.IGNORECASE,
    ),
    # fixed texts a platform shows instead of the content (seen in Multi-News dev documents)
    "a platform's notice (a tweet page without its tweet, a web archive's crawl description)": re.compile(
        r"\b(?:you can add location information to your tweets|this crawl was run at a level"
        r"|when you tweet with a location, twitter stores that location"
        r"|these crawls are part of an effort to archive pages|the seed for wide\d+ was"
        r"|has been donating their crawl data to the internet archive"
        r"|using the archive-it service of the internet archive)",
        re.IGNORECASE,
    ),
    "an error page": re.compile(
        r"\b(?:page not found|404 not found|error 404|this page (?:does not|doesn't|no longer) exists?"
        r"|access denied|something went wrong|temporarily unavailable)\b",
        re.IGNORECASE,
    ),
}
WALL_MAX_WORDS = 250


def wall_kind(title: str, text: str) -> str | None:
    """A consent wall, paywall stub, platform notice or error page posing as an article (short,
    and saying so)."""
    if len(text.split()) > WALL_MAX_WORDS:
        return None
    for kind, pattern in _WALLS.items():
        if pattern.search(title) or pattern.search(text):
            return kind
    return None


# An HTML page whose text is mostly its links' texts is an index (a section front, a site map),
# not an article: trafilatura without its fallbacks keeps a page of links as main text. Real
# article pages of the ScrapingHub set have at most 49% of their paragraphs equal to a link's
# text (one long, noisy page; the next 38%), a menu page 100%.
INDEX_MIN_PARAGRAPHS = 8
INDEX_LINK_SHARE = 0.8
# Links are short: a page is parsed for its links (~14 ms for the set's average 150 KB page)
# only when this share of its paragraphs have at most this many whitespace-separated words.
INDEX_SHORT_WORDS = 25


class _AnchorTexts(HTMLParser):
    """The texts of an HTML page's links (whitespace collapsed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: set[str] = set()
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            self.texts.add(normalise(" ".join(self._open.pop())))

    def handle_data(self, data: str) -> None:
        for parts in self._open:
            parts.append(data)


def link_share(html: str, paragraphs: list[str]) -> float:
    """The share of ``paragraphs`` that are exactly the text of one of the page's links; 0
    without parsing the page when there are too few paragraphs, or too few short ones, for an
    index page."""
    short = sum(len(p.split()) <= INDEX_SHORT_WORDS for p in paragraphs)
    if len(paragraphs) < INDEX_MIN_PARAGRAPHS or short < INDEX_LINK_SHARE * len(paragraphs):
        return 0.0
    parser = _AnchorTexts()
    parser.feed(html)
    parser.close()
    return sum(normalise(p) in parser.texts for p in paragraphs) / len(paragraphs)


def parse_published(value: Any, origin: str) -> datetime | None:
    """ISO 8601 string -> aware datetime (UTC when no offset is given)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputRejected(origin, f"field 'published' must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputRejected(
            origin,
            f"field 'published' is not an ISO 8601 date: {value!r} "
            "(write e.g. 2025-08-28 or 2025-08-28T10:00:00Z, or leave it out)",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_MONTH_WORDS = "|".join(sorted(MONTHS, key=len, reverse=True))
_URL_DATES = (
    # /2013/05/02/, /2013-06-06/, /2013/may/03/ (a path's year, month and day)
    re.compile(
        rf"(?<![0-9])(?P<y>(?:19|20)[0-9]{{2}})[/_-](?P<m>[01]?[0-9]|{_MONTH_WORDS})[/_-]"
        r"(?P<d>[0-3]?[0-9])(?![0-9])",
        re.IGNORECASE,
    ),
    # ...-20130504, ...idUSBRE9710UQ20130802: eight digits standing alone
    re.compile(r"(?<![0-9])(?P<y>(?:19|20)[0-9]{2})(?P<m>[01][0-9])(?P<d>[0-3][0-9])(?![0-9])"),
)


def date_from_url(url: str | None) -> datetime | None:
    """The publication date a news URL carries in its path (``/2013/05/02/``,
    ``/2013/may/03/``, ``-20130504``), or None: a year and month alone are not a date, nor is
    a day in the future."""
    if not url:
        return None
    path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0]
    latest = datetime.now(UTC)
    for pattern in _URL_DATES:
        for match in pattern.finditer(path):
            month_text = match["m"].casefold()
            month = int(month_text) if month_text.isdigit() else MONTHS.get(month_text, 0)
            try:
                found = datetime(int(match["y"]), month, int(match["d"]), tzinfo=UTC)
            except ValueError:
                continue
            if found.year >= 1990 and found <= latest:
                return found
    return None


def _authors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(a.strip() for a in value.replace(";", ",").split(",") if a.strip())
    if isinstance(value, list):
        return tuple(str(a).strip() for a in value if str(a).strip())
    return (str(value),)


def page_fields(html: str, url: str | None) -> dict[str, Any] | None:
    """trafilatura's main text ("text") and metadata of an HTML page, before synoptic's
    cleaning; None when it finds no main text."""
    import trafilatura

    result = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        deduplicate=False,
        fast=True,  # no fallback extractors: dev F1 the same, ~1.35x faster (benchmarks.md)
    )
    if result is None:
        return None
    data: dict[str, Any] = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    return data


@dataclass(frozen=True, kw_only=True)
class ExtractOptions:
    """``min_words``: an article with fewer words of clean text is rejected as not an article."""

    min_words: int = 12


class Extractor:
    """Turns a :class:`Document` into a clean :class:`Article`, or raises :class:`InputRejected`."""

    def __init__(
        self, *, registry: OutletRegistry | None = None, options: ExtractOptions | None = None
    ) -> None:
        self.registry = registry or OutletRegistry.bundled()
        self.options = options or ExtractOptions()
        self.cleaner = TextCleaner(registry=self.registry)

    def extract(self, doc: Document) -> Article:
        try:
            return self._extract(doc)
        except InputRejected as exc:
            if doc.meta.get("page_error"):  # a feed entry's own text, used because the page failed
                raise InputRejected(
                    exc.origin,
                    f"{exc.reason} (the page itself was not fetched: {doc.meta['page_error']})",
                ) from None
            raise

    def _extract(self, doc: Document) -> Article:
        doc = _storable_document(doc)
        _check_fields(doc.meta, doc.origin)
        meta = doc.meta
        page: dict[str, Any] = {}
        if doc.kind == "html":
            page = self._from_html(doc)
            cleaned = self.cleaner.clean(
                page["text"] or "", title=meta.get("title") or page["title"]
            )
        else:
            cleaned = self.cleaner.clean(doc.content, title=meta.get("title") or None)
        return self._article(doc, cleaned, page)

    def _from_html(self, doc: Document) -> dict[str, Any]:
        data = page_fields(doc.content, doc.meta.get("url"))
        if data is None:
            import trafilatura

            n_words = len(words(trafilatura.html2txt(doc.content) or ""))
            if n_words < self.options.min_words:
                raise InputRejected(
                    doc.origin,
                    f"the HTML holds only {n_words} words of text (an article needs at least "
                    f"{self.options.min_words}); is the page complete, or does it need a browser "
                    "to show its text?",
                )
            raise InputRejected(
                doc.origin,
                f"no article text found among the HTML's {n_words} words (an index page, an "
                "app shell or an error page?)",
            )
        return data

    def _article(self, doc: Document, cleaned: Cleaned, page: dict[str, Any]) -> Article:
        meta = doc.meta
        paragraphs = cleaned.paragraphs
        if not paragraphs and ends_like_sentence(cleaned.title):
            # A one-sentence item (a wire flash, a pasted lead): the sentence is also the body.
            paragraphs = [cleaned.title]
        text = "\n\n".join(paragraphs)
        n_words = len(words(text))
        if n_words < self.options.min_words:
            raise InputRejected(
                doc.origin,
                f"only {n_words} words of article text after removing boilerplate "
                f"(at least {self.options.min_words} needed); is this an article?",
            )
        title = cleaned.title or paragraphs[0][:120]
        wall = wall_kind(title, text)
        if wall:
            raise InputRejected(doc.origin, f"looks like {wall}, not an article ({n_words} words)")
        if (
            doc.kind == "html"
            and (share := link_share(doc.content, paragraphs)) >= INDEX_LINK_SHARE
        ):
            raise InputRejected(
                doc.origin,
                f"looks like an index page, not an article: {share:.0%} of its "
                f"{len(paragraphs)} paragraphs are links (give the article pages' URLs, or "
                "the site's feed)",
            )
        url = meta.get("url") or page.get("url") or None
        hints = cleaned.hints

        outlet, outlet_inferred = meta.get("outlet"), False
        if not outlet and page.get("sitename"):
            outlet = page["sitename"]
        if not outlet and hints.outlets:
            outlet, outlet_inferred = hints.outlets[0], True
        if not outlet and url:
            outlet, outlet_inferred = self.registry.from_url(url), True

        published = parse_published(meta.get("published"), doc.origin)
        published_inferred = False
        if published is None and page.get("date"):
            published = parse_published(page["date"], doc.origin)
        if published is None and (published := date_from_url(url)) is not None:
            published_inferred = True
        if published is None and hints.published is not None:
            published, published_inferred = hints.published, True

        authors = (
            _authors(meta.get("authors")) or _authors(page.get("author")) or tuple(hints.authors)
        )
        removed = tuple(cleaned.removed)
        if doc.kind == "html":
            removed = (
                Removed("(page navigation, comments and markup)", "not main text (trafilatura)"),
                *removed,
            )
        return Article(
            id=article_id(title, text, url),
            title=title,
            text=text,
            origin=doc.origin,
            source_id=str(meta["id"]) if meta.get("id") is not None else None,
            url=url,
            outlet=outlet,
            outlet_inferred=outlet_inferred,
            published=published,
            published_inferred=published_inferred,
            authors=authors,
            language=meta.get("language") or _language_tag(page.get("language")),
            wire=hints.wire,
            removed=removed,
            extra={k: v for k, v in meta.items() if k not in KNOWN_FIELDS},
        )


def _check_fields(meta: dict[str, Any], origin: str) -> None:
    """The documented fields have the documented types (JSON input, sidecars, the HTTP API):
    anything else is rejected with the field's name, not stored as something unreadable."""
    for name in STRING_FIELDS:
        value = meta.get(name)
        if value is not None and not isinstance(value, str):
            raise InputRejected(
                origin, f"field {name!r} must be a string, got {type(value).__name__} {value!r:.60}"
            )
    source_id = meta.get("id")
    if source_id is not None and not isinstance(source_id, str | int):
        raise InputRejected(
            origin, f"field 'id' must be a string or a number, got {source_id!r:.60}"
        )
    authors = meta.get("authors")
    if authors is not None and not (
        isinstance(authors, str)
        or (isinstance(authors, list) and all(isinstance(a, str) for a in authors))
    ):
        raise InputRejected(
            origin, f"field 'authors' must be a string or a list of strings, got {authors!r:.60}"
        )
    language = meta.get("language")
    if language and _language_tag(language) is None:
        raise InputRejected(
            origin,
            f"field 'language' must be a language tag such as 'en' or 'pt-BR', got {language!r:.60}",
        )


def _language_tag(value: Any) -> str | None:
    """``value`` if it is a language tag that fits the store's column, else None."""
    if isinstance(value, str) and len(value) <= 16 and LANGUAGE_TAG.fullmatch(value):
        return value
    return None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _storable_document(doc: Document) -> Document:
    """Characters no store can hold, which would fail the whole batch (a PostgreSQL store
    refuses NUL; neither store can encode a lone surrogate): NULs dropped, lone surrogates
    replaced by U+FFFD, in the content, the origin and every metadata string."""
    return Document(storable(doc.origin), doc.kind, storable(doc.content), _scrub(doc.meta))
