"""Text-level boilerplate removal for articles pasted or extracted from sites.

The cleaner recognises boilerplate by what it is (a short interface label, a newsletter prompt,
a photo credit or caption, a wire credit, an author bio, a repeated paragraph, the run of other
stories' teasers a site appends after the article), not by matching one site's strings. Every
removal is kept with its reason so ``synoptic extract --explain`` can show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from synoptic.model import Removed
from synoptic.outlets import OutletRegistry
from synoptic.text import MONTHS, content_terms, ends_like_sentence, normalise

# Short interface labels: navigation, share buttons, "N min read", "Read more", "Follow topic:".
_UI_LABEL = re.compile(
    r"""^(?:
        \d+\s*(?:min|mins|minute|minutes)\s+read
      | (?:read|show|see|load|view)\s+(?:more|less|all)\b.*
      | follow(?:\s+(?:topic|topics|us|this\s+topic|this\s+story))?
      | share(?:\s+this)?(?:\s+(?:article|story|page|on\s+\w+))?
      | (?:click|tap)\s+(?:here|to\s+\w+).*
      | advertisement|advert|sponsored(?:\s+content)?|promoted
      | (?:article\s+)?(?:image|photo|picture|video|gallery)s?
      | avatar
      | news\s*feed|live\s+updates?|breaking(?:\s+news)?
      | (?:related|recommended|more|latest|top|popular|trending|most\s+read)
        (?:\s+(?:stories|story|articles|news|reads?|posts|videos|from\s+.+|on\s+.+|in\s+.+))?
      | listen(?:\s+to\s+(?:this\s+)?article)?|print|comments?|save|bookmark|copy\s+link
      | skip\s+to\s+(?:main\s+)?content|back\s+to\s+top|menu|home|search
      | (?:updated|published|posted)\b.{0,40}
    )\s*:?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# A teaser-like line (a headline over a cut-off lead, a "More" label) ends the article only
# when what follows is not this many whole paragraphs, most of those after it (a subheading
# over an embedded tweet or a list is inside the article).
READS_ON = 3
# Labels after which a site lists other content; only a boundary when what follows is unrelated.
_MORE_CONTENT = re.compile(
    r"^(?:read|show|see|load|view)\s+(?:more|all)|^news\s*feed$|^(?:related|recommended|more|latest"
    r"|top|popular|trending|most\s+read)\b",
    re.IGNORECASE,
)
_NEWSLETTER_VERB = re.compile(
    r"\b(?:sign\s*up|subscribe|subscription|delivered\s+to\s+your\s+inbox|get\s+\S+\s+newsletters?)\b",
    re.IGNORECASE,
)
_NEWSLETTER_NOUN = re.compile(r"\b(?:newsletters?|inbox|briefing)\b", re.IGNORECASE)
_PHOTO_CREDIT = re.compile(
    r"^(?:file\s+)?(?:photos?|images?|pictures?|video|illustration|credit|graphic)s?"
    r"(?:\s+credit)?\s*:\s*[^.]{0,80}$",
    re.IGNORECASE,
)
_CAPTION_CREDIT = re.compile(r"\(([^()]{2,100})\)\s*$")
_CREDIT_WORDS = re.compile(
    r"/|getty|afp|reuters|associated press|ap photo|epa|shutterstock|pool|photo|image|via\s",
    re.IGNORECASE,
)
# Credits that say the text is a wire service's (the wire names come from the outlet registry:
# see TextCleaner.__init__). "Reporting by ...; Editing by ..." is Reuters' house style.
_WIRE_TAGLINE = re.compile(
    r"^\(?\s*(?:reporting|writing|editing|additional reporting)\s+by\b.{0,300}\)?$", re.IGNORECASE
)
# Dateline places: "KYIV", "ST. JOSEPH", "Berlin", "New Delhi"; then maybe a region ("Ukraine",
# "Mich.", "Puerto Rico") and a date ("May 3", "March 3, 2025").
_PLACE = r"(?:[A-Z][A-Z.'’-]*(?:[ \t]+[A-Z][A-Z.'’-]*){0,3}|[A-Z][a-z.'’-]+(?:[ \t]+[A-Z][a-z.'’-]+){0,2})"
_REGION = r"[A-Z][\w.'’-]*(?:[ \t]+[A-Z][\w.'’-]*){0,2}"
_DAY = r"[A-Z][a-z]{2,8}\.?\s+\d{1,2}(?:,\s*\d{4})?"
_BYLINE = re.compile(r"^By\s+(?P<names>[A-Z][^\d.!?]{2,80})$")
_BIO = re.compile(
    r"^(?P<name>[A-Z][\w'’.-]+(?:\s+[A-Z][\w'’.-]+){1,3})\s+"
    r"(?:is|works|worked|has|joined|was|covers|writes|reports|previously)\b"
)
_ROLE = re.compile(
    r"\b(?:editor|reporter|correspondent|journalist|writer|columnist|producer|contributor"
    r"|bureau chief|news desk|covers)\b",
    re.IGNORECASE,
)
_BIO_OUTLET = re.compile(
    r"\b(?:at|for|with|joined)\s+(?:the\s+)?(?P<outlet>[A-Z][\w&'’-]*(?:\s+(?:[A-Z][\w&'’-]*|of|and))*)"
)
_IMPERATIVES = frozenset({"get", "sign", "join", "subscribe", "receive", "read", "follow", "try"})
_POSSESSIVE_NAME = re.compile(r"\b(?P<name>[A-Z][\w&.]*(?:\s+[A-Z][\w&.]*)*)['’]s\b")
_BULLET = re.compile(r"^(?:[-•*▪·]\s+)")
_DATE_TEXT = re.compile(
    r"(?P<month>[A-Z][a-z]{2,8})\.?\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"
    r"|(?P<day2>\d{1,2})\s+(?P<month2>[A-Z][a-z]{2,8})\.?\s+(?P<year2>\d{4})"
    r"|(?P<iso>\d{4}-\d{2}-\d{2})"
)


def parse_date_text(text: str) -> datetime | None:
    """A full calendar date written in text ("Aug 28, 2025", "28 August 2025", "2025-08-28")."""
    match = _DATE_TEXT.search(text)
    if not match:
        return None
    try:
        if match["iso"]:
            return datetime.fromisoformat(match["iso"]).replace(tzinfo=UTC)
        month_name = (match["month"] or match["month2"]).casefold()
        day = int(match["day"] or match["day2"])
        year = int(match["year"] or match["year2"])
        month = MONTHS.get(month_name)
        return datetime(year, month, day, tzinfo=UTC) if month else None
    except ValueError:
        return None


@dataclass
class Hints:
    """What the boilerplate itself says about the article: its outlet, wire, authors, date."""

    outlets: list[str] = field(default_factory=list)
    wire: str | None = None
    authors: list[str] = field(default_factory=list)
    published: datetime | None = None


@dataclass(frozen=True)
class Cleaned:
    title: str
    paragraphs: list[str]
    removed: list[Removed]
    hints: Hints


def split_paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines; lines inside a block are paragraphs unless hard-wrapped,
    or unless a line goes on in lower case after one that does not end like a sentence."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if _hard_wrapped(lines):
            out.append(" ".join(lines))
            continue
        first = len(out)
        for line in lines:
            # a line broken inside a sentence (a <br> in mid-text) goes on in lower case
            if len(out) > first and line[0].islower() and not ends_like_sentence(out[-1]):
                out[-1] += " " + line
            else:
                out.append(line)
    return out


def _hard_wrapped(lines: list[str]) -> bool:
    if len(lines) < 2:
        return False
    body = lines[:-1]
    lengths = [len(line) for line in body]
    open_ended = sum(not ends_like_sentence(line) for line in body)
    return min(lengths) >= 40 and max(lengths) <= 100 and open_ended * 2 >= len(body)


@lru_cache(maxsize=256)  # each line is measured by several of the rules below
def _wordcount(text: str) -> int:
    return len(text.split())


def is_ui_label(line: str) -> bool:
    return _wordcount(line) <= 7 and not line.rstrip().endswith(".") and bool(_UI_LABEL.match(line))


def _is_newsletter(line: str) -> bool:
    return (
        _wordcount(line) <= 30
        and bool(_NEWSLETTER_VERB.search(line))
        and bool(_NEWSLETTER_NOUN.search(line) or line.lower().startswith(("sign up", "subscribe")))
    )


def _is_caption(line: str) -> bool:
    match = _CAPTION_CREDIT.search(line)
    return bool(match and _CREDIT_WORDS.search(match.group(1)) and _wordcount(line) <= 70)


def _headline_like(line: str) -> bool:
    n = _wordcount(line)
    return (
        3 <= n <= 25
        and line[:1].isupper()
        and not ends_like_sentence(line)
        and not is_ui_label(line)
    )


def _truncated(line: str) -> bool:
    return _wordcount(line) >= 15 and not ends_like_sentence(line)


def _rest(items: list[tuple[str, str | None]], i: int) -> list[str]:
    """The content paragraphs (8 words or more) after ``items[i]``."""
    return [t for t, why in items[i + 1 :] if why is None and _wordcount(t) >= 8]


def _reads_on(rest: list[str]) -> bool:
    """Whether paragraphs after a teaser-like line are the article going on: several whole
    sentences, most of them (teaser blocks are headlines and cut-off leads)."""
    whole = sum(ends_like_sentence(line) for line in rest)
    return whole >= READS_ON and 2 * whole >= len(rest)


def _is_bio(line: str) -> bool:
    return _wordcount(line) >= 10 and bool(_BIO.match(line)) and bool(_ROLE.search(line))


def _is_name_line(line: str) -> bool:
    tokens = line.split()
    return (
        1 <= len(tokens) <= 4
        and all(t[:1].isupper() for t in tokens)
        and not ends_like_sentence(line)
    )


class TextCleaner:
    """Turns plain article text into a title, clean paragraphs and a record of what was removed."""

    def __init__(self, *, registry: OutletRegistry) -> None:
        self.registry = registry
        wire = rf"(?:(?i:the)\s+)?(?:{registry.wire_pattern()})"
        # "WASHINGTON (Reuters) - ", "KYIV, Ukraine (AP) — ", "Berlin, May 3 (dpa) - "
        self._dateline = re.compile(
            rf"^(?:(?P<place>{_PLACE})(?:\s*,\s*(?P<region>{_REGION}))?"
            rf"(?:\s*,?\s*(?P<date>{_DAY}))?\s*)?\((?P<wire>{wire})\)\s*[-–—]+\s*"
        )
        # "... the minister said. (AFP)" or "... said. - Reuters" at the end of a paragraph
        self._trailing_wire = re.compile(rf"(?<=[.!?\"”’])\s*(?:[-–—]\s*)?\(?({wire})\)?\s*$")
        # "Copyright 2024 The Associated Press. All rights reserved.", "© Reuters 2024"
        self._wire_notice = re.compile(
            rf"^(?:(?i:copyright)|©|\([cC]\))[\s\d,©]*(?:(?i:copyright)[\s\d,]*)?"
            rf"(?:(?i:thomson)\s+)?(?P<wire>{wire})\b"
        )
        # "By The Associated Press", "By ZEKE MILLER Associated Press", "By Jane Doe, Reuters"
        self._byline_wire = re.compile(rf"(?:^|\s*[,|/]\s*|\s+)(?P<wire>{wire})\s*$")
        # A wire's contribution to the outlet's own text: "The Associated Press contributed to
        # this report.", "Contributing: Reuters". A credit, not content; but not wire text either
        # (so it does not name the article's wire).
        self._wire_contribution = re.compile(
            rf"^(?:(?i:contributing|additional reporting)(?:\s+(?i:by))?\s*:?\s*{wire}\.?"
            rf"|{wire}\b[^.]{{0,150}}\bcontributed\b[^.]{{0,40}}\.?)$"
        )

    def clean(self, text: str, *, title: str | None = None) -> Cleaned:
        lines = split_paragraphs(text)
        removed: list[Removed] = []
        hints = Hints()

        def drop(line: str, reason: str) -> None:
            removed.append(Removed(line, reason))

        # 1. Title: the given one, else the first line that is not boilerplate. Every other line
        #    keeps the boilerplate reason it has on its own (None for content).
        items: list[tuple[str, str | None]] = []
        for line in lines:
            reason = self._line_boilerplate(line, hints)
            if reason is None and title is None:
                title = line
            elif reason is None or items or title is not None:
                items.append((line, reason))
            else:
                drop(line, reason)
        title = (title or "").strip()

        # 2. Where the article ends: teasers of other stories, author bio, "more" sections.
        cut = self._tail_start(title, items)
        if cut is not None:
            for line, reason in items[cut:]:
                if reason is None and _is_name_line(line):
                    reason = "author byline"
                drop(line, reason or "teaser of another story, after the end of the article")
            items = items[:cut]

        # 3. Repeats, wire credits and datelines inside the body.
        #    A repeat is dropped when it follows its first copy directly (a page rendering a
        #    paragraph twice); repeats further apart are kept, since they are the article's own
        #    structure (a recipe's or a schedule's recurring lines, an interview's labels).
        title_key = normalise(title).casefold()
        previous = title_key
        paragraphs: list[str] = []
        last = max((i for i, (_, reason) in enumerate(items) if reason is None), default=-1)
        for i, (line, reason) in enumerate(items):
            if reason:
                drop(line, reason)
                continue
            key = normalise(line).casefold()
            if key in (title_key, previous):
                drop(line, "repeats the headline" if key == title_key else "repeated paragraph")
                continue
            previous = key
            line = self._strip_credits(line, removed, hints, last=i == last)
            if line:
                paragraphs.append(line)
        return Cleaned(title, paragraphs, removed, hints)

    # -- single lines -------------------------------------------------------------------------

    def _line_boilerplate(self, line: str, hints: Hints) -> str | None:
        if is_ui_label(line):
            if hints.published is None and re.match(r"(?i)^(?:published|posted|updated)", line):
                hints.published = parse_date_text(line)
            return "interface label"
        if _is_newsletter(line):
            hints.outlets.extend(self._newsletter_outlets(line))
            return "newsletter prompt"
        if _PHOTO_CREDIT.match(line):
            return "photo credit"
        if _is_caption(line) and not self._trailing_wire.search(line):
            return "photo caption"  # (a bare wire credit is judged by its place: _strip_credits)
        if _wordcount(line) <= 40:
            if self._wire_contribution.match(line):
                return "wire contribution"
            notice = self._wire_notice.match(line)
            if notice:
                hints.wire = hints.wire or self._wire_name(notice["wire"])
                return "wire credit"
        if _WIRE_TAGLINE.match(line):
            hints.wire = hints.wire or "Reuters"
            return "wire credit"
        byline = _BYLINE.match(line)
        if byline and _wordcount(line) <= 12:
            credited = self._byline_wire.search(byline["names"])
            names = byline["names"][: credited.start()] if credited else byline["names"]
            if credited:
                hints.wire = hints.wire or self._wire_name(credited["wire"])
            authors = re.split(r"\s*(?:,|\band\b|&)\s*", names)
            hints.authors.extend(n.strip() for n in authors if n.strip())
            return "author byline"
        if _is_bio(line):
            hints.outlets.extend(self._bio_outlets(line))
            return "author bio"
        return None

    def _strip_credits(
        self, line: str, removed: list[Removed], hints: Hints, *, last: bool = False
    ) -> str:
        """The line without its dateline and trailing wire credit, which name the wire; "" when
        the credit shows a photo caption instead. A bare credit in brackets ("... on Monday.
        (AP)") credits the text at the end of the article or after a dateline, and a wire's
        photo anywhere else; so does one after a caption cut short ("... treated...
        (Associated Press)")."""
        line = _BULLET.sub("", line)
        dateline = self._dateline.match(line)
        if dateline:
            hints.wire = hints.wire or self._wire_name(dateline["wire"])
            if dateline["date"] and hints.published is None:
                hints.published = parse_date_text(dateline["date"])
            removed.append(Removed(dateline.group(0).strip(), "dateline with wire credit"))
            line = line[dateline.end() :]
        credit = self._trailing_wire.search(line)
        if credit:
            before = line[: credit.start()].rstrip()
            bracketed = "(" in credit.group(0) and not (last or dateline)
            if bracketed or before.endswith(("...", "…")):
                if _wordcount(before) <= 70:
                    removed.append(Removed(line, "photo caption"))
                    return ""
            else:
                hints.wire = hints.wire or self._wire_name(credit.group(1))
                removed.append(Removed(credit.group(0).strip(), "wire credit"))
                line = before
        return line

    def _wire_name(self, raw: str) -> str:
        bare = re.sub(r"^(?i:the)\s+", "", raw)
        return self.registry.canonical(raw) or self.registry.canonical(bare) or bare.title()

    # -- outlets named by the boilerplate ------------------------------------------------------

    def _newsletter_outlets(self, line: str) -> list[str]:
        found = []
        for match in _POSSESSIVE_NAME.finditer(line):
            tokens = match["name"].split()
            known = [self.registry.canonical(" ".join(tokens[k:])) for k in range(len(tokens))]
            while tokens and tokens[0].casefold() in _IMPERATIVES:
                tokens = tokens[1:]
            name = next((k for k in known if k), None) or " ".join(tokens)
            if name:
                found.append(name)
        return found

    def _bio_outlets(self, line: str) -> list[str]:
        role = _ROLE.search(line)
        if not role:
            return []
        match = _BIO_OUTLET.search(line, role.start())
        if not match:
            return []
        raw = match["outlet"].rstrip(".")
        return [self.registry.canonical(raw) or raw]

    # -- the end of the article ---------------------------------------------------------------

    def _tail_start(self, title: str, items: list[tuple[str, str | None]]) -> int | None:
        """Index in ``items`` where the article ends and other content begins, if it does."""
        head = [title]  # the title and first content lines (terms computed only if needed)
        seen_content = 0
        for i, (line, reason) in enumerate(items):
            if seen_content >= 2:
                if reason == "author bio":
                    return self._byline_start(items, i)
                if reason is None and _headline_like(line):
                    after = next((text for text, why in items[i + 1 :] if why is None), None)
                    if after is not None and _truncated(after) and not _reads_on(_rest(items, i)):
                        return i
                bare_label = _wordcount(line) <= 3 and ":" not in line.rstrip(": ")
                if reason == "interface label" and bare_label and _MORE_CONTENT.match(line):
                    rest = _rest(items, i)
                    if not rest or (self._unrelated(head, rest) and not _reads_on(rest)):
                        return i
            if reason is None and _wordcount(line) >= 8:
                seen_content += 1
                if seen_content <= 3:
                    head.append(line)
        return None

    @staticmethod
    def _byline_start(items: list[tuple[str, str | None]], bio_index: int) -> int:
        start = bio_index
        while start > 0 and (items[start - 1][1] is not None or _is_name_line(items[start - 1][0])):
            start -= 1
        return start

    @staticmethod
    def _unrelated(head_lines: list[str], rest: list[str]) -> bool:
        head = {t for line in head_lines for t in content_terms(line)}
        terms = [t for line in rest for t in set(content_terms(line))]
        if not terms:
            return True
        shared = sum(t in head for t in terms)
        return shared / len(terms) < 0.35
