"""What a brief needs beyond sentences: entities (with spelling variants merged), quotes and
their speakers, and dates (relative ones resolved against the article's publication date).

Entities come from spaCy's NER when ``spacy`` and a model (``en_core_web_sm`` by default) are
installed, and otherwise from a documented model-free fallback: runs of capitalised words,
typed by their context (a title before a person's name, "in"/"at" before a place, words such as
Ministry or Court inside an organisation), with spelling variants and short forms merged
("Pezashkian"/"Pezeshkian", "Vucic"/"Vučić", "Kim"/"Kim Jong Un").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any, ClassVar, Protocol

from synoptic.text import (
    ABBREVIATED_TITLES,
    MONTHS,
    NAME_CONNECTORS,
    STOPWORDS,
    is_abbreviation,
)

TITLES = frozenset(
    [
        "president",
        "prime",
        "minister",
        "mr",
        "mrs",
        "ms",
        "dr",
        "sir",
        "dame",
        "leader",
        "chancellor",
        "king",
        "queen",
        "prince",
        "princess",
        "pope",
        "secretary",
        "general",
        "spokesperson",
        "spokesman",
        "spokeswoman",
        "chief",
        "aide",
        "senator",
        "governor",
        "mayor",
        "judge",
        "justice",
        "ambassador",
        "general",
        "colonel",
        "commander",
        "assistant",
        "deputy",
        "vice",
        "speaker",
        "chairman",
        "chairwoman",
        "chair",
        "director",
        "ceo",
        "founder",
        "premier",
        "sheikh",
        "emir",
        "officer",
        "official",
        "lawmaker",
        "representative",
        "envoy",
        "under-secretary-general",
    ]
) | {title.casefold() for title in ABBREVIATED_TITLES}  # ("Gov.": a name runs on after it)
NATIONALITY = re.compile(r"^(?:[A-Z][a-z]+(?:an|ian|ese|ish|i|ic|ch))$")
ORG_WORDS = frozenset(
    [
        "ministry",
        "council",
        "court",
        "agency",
        "party",
        "company",
        "corporation",
        "inc",
        "ltd",
        "group",
        "bank",
        "university",
        "commission",
        "committee",
        "union",
        "organisation",
        "organization",
        "office",
        "department",
        "army",
        "navy",
        "force",
        "forces",
        "police",
        "parliament",
        "assembly",
        "post",
        "times",
        "news",
        "press",
        "journal",
        "institute",
        "association",
        "federation",
        "fund",
        "nations",
        "reuters",
        "bloomberg",
    ]
)
PLACE_PREPOSITIONS = frozenset(
    {"in", "at", "from", "to", "near", "across", "into", "outside", "inside"}
)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
NOT_NAMES = frozenset(WEEKDAYS) | frozenset(MONTHS) | {"covid-19", "covid", "tv", "ii", "i", "ok"}


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Accents off, lower case: 'Vučić' -> 'vucic' (cached: a brief folds each word of every
    name it meets, most of them many times)."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).casefold()


@dataclass
class Entity:
    name: str  # the most common full form
    kind: str  # person, organisation, place, or other
    variants: set[str] = field(default_factory=set)
    article_ids: set[str] = field(default_factory=set)
    mentions: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "variants": sorted(self.variants - {self.name}),
            "article_ids": sorted(self.article_ids),
            "mentions": self.mentions,
        }


@dataclass(frozen=True)
class Mention:
    text: str  # as written, titles removed
    kind: str
    start: int
    end: int


class Recognizer(Protocol):
    name: str

    def mentions(self, text: str) -> list[Mention]: ...


_TOKEN = re.compile(r"[A-Za-z\u00C0-\u024F][\w'’.-]*|[^\w\s]|\n")
_CONNECTORS = frozenset(NAME_CONNECTORS)
PLACE_WORDS = frozenset(
    {
        "oblast",
        "region",
        "province",
        "square",
        "city",
        "island",
        "peninsula",
        "county",
        "state",
        "republic",
    }
)


class RuleRecognizer:
    """The model-free fallback (see the module docstring)."""

    name = "rules"

    def mentions(self, text: str) -> list[Mention]:
        text = text.replace("’", "'")
        tokens = [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]
        mid_caps = Counter(
            tok
            for i, (tok, _) in enumerate(tokens)
            if i
            and tok[:1].isupper()
            and not tokens[i - 1][0].endswith((".", "!", "?", "\n", '"', "“"))
        )
        out: list[Mention] = []
        run: list[tuple[str, int]] = []

        def flush() -> None:
            if run:
                mention = self._mention(text, run, mid_caps)
                if mention:
                    out.append(mention)
            run.clear()

        for i, (tok, at) in enumerate(tokens):
            if tok[0].isupper() and tok[0].isalpha():
                word = tok.rstrip(".")
                if fold(word) in TITLES and run and fold(run[-1][0].rstrip(".")) not in TITLES:
                    flush()  # "Serbia President Vucic": a title starts a new name
                run.append((tok, at))
                if tok.endswith("'s") or (tok.endswith(".") and not is_abbreviation(tok)):
                    flush()  # possessive or sentence end closes the name
            elif (
                run
                and tok in _CONNECTORS
                and i + 1 < len(tokens)
                and tokens[i + 1][0][:1].isupper()
            ):
                run.append((tok, at))
            elif run:
                flush()
        flush()
        return out

    def _mention(
        self, text: str, run: list[tuple[str, int]], mid_caps: Counter[str]
    ) -> Mention | None:
        words = [(w.rstrip(".,").removesuffix("'s"), at) for w, at in run]
        words = [(w, at) for w, at in words if w]
        folded = [fold(w) for w, _ in words]
        kind = "other"
        if any(f in TITLES for f in folded):
            last_title = max(i for i, f in enumerate(folded) if f in TITLES)
            rest = words[last_title + 1 :]
            if not rest:
                return None  # a bare title ("the President")
            words, kind = rest, "person"
        elif any(f in ORG_WORDS for f in folded):
            kind = "organisation"
        while words and fold(words[0][0]) in STOPWORDS:
            words = words[1:]
        if not words:
            return None
        name = " ".join(w for w, _ in words)
        key = fold(name)
        if (
            key in NOT_NAMES
            or key in STOPWORDS
            or len(key) < 2
            or (len(words) == 1 and re.search(r"-[a-z]", name))
        ):
            return None
        start = words[0][1]
        before = text[max(0, start - 40) : start]
        previous = before.split()[-1].casefold() if before.split() else ""
        at_sentence_start = not before.strip() or before.rstrip()[-1:] in {
            ".",
            "!",
            "?",
            '"',
            "“",
            "\n",
        }
        if len(words) == 1 and at_sentence_start and mid_caps[words[0][0]] == 0:
            return None  # a capitalised first word of a sentence, never capitalised elsewhere
        if kind == "other":
            if fold(words[-1][0]) in PLACE_WORDS or previous in PLACE_PREPOSITIONS:
                kind = "place"
            elif NATIONALITY.match(name):
                kind = "other"
            elif 2 <= len(words) <= 4 and re.match(
                rf"\s*,?\s*(?:{_SPEECH})\b", text[start + len(name) :]
            ):
                kind = "person"
        return Mention(name, kind, start, start + len(name))


class SpacyRecognizer:
    """spaCy NER; used when spaCy and a model are installed (``pip install 'synoptic[nlp]'`` and a
    model package such as en_core_web_sm)."""

    KINDS: ClassVar[dict[str, str]] = {
        "PERSON": "person",
        "ORG": "organisation",
        "GPE": "place",
        "LOC": "place",
        "FAC": "place",
        "NORP": "other",
    }

    def __init__(self, model: str = "en_core_web_sm") -> None:
        import spacy

        self.nlp = spacy.load(model, disable=["lemmatizer"])
        self.name = f"spacy:{model}"

    def mentions(self, text: str) -> list[Mention]:
        return [
            Mention(e.text, self.KINDS[e.label_], e.start_char, e.end_char)
            for e in self.nlp(text).ents
            if e.label_ in self.KINDS
        ]


def default_recognizer(spacy_model: str = "en_core_web_sm") -> Recognizer:
    """spaCy when it and ``spacy_model`` are installed, else the rule-based fallback."""
    try:
        return SpacyRecognizer(spacy_model)
    except Exception:  # spaCy missing, or no model: the documented fallback
        return RuleRecognizer()


def _same_token(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) >= 6 and len(b) >= 6 and a[0] == b[0] and a[-1] == b[-1]:
        return SequenceMatcher(None, a, b).ratio() >= 0.85
    return False


def _covers(short: list[str], long: list[str]) -> bool:
    """Every token of the short form matches a token of the long one (in any order)."""
    return all(any(_same_token(s, t) for t in long) for s in short)


def merge_entities(found: list[tuple[str, Mention]]) -> list[Entity]:
    """(article id, mention) pairs -> entities. Spelling variants of the same length merge
    (Pezashkian/Pezeshkian, Vucic/Vučić); a short form merges into a person's full name when it
    is the name's first or last part ("Putin", "Kim"), and into the full name mentioned most."""
    forms: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = {}
    where: dict[str, set[str]] = {}
    for article_id, m in found:
        forms[m.text] += 1
        kinds.setdefault(m.text, Counter())[m.kind] += 1
        where.setdefault(m.text, set()).add(article_id)
    # longest forms first: short forms and variants attach to the most mentioned long form
    order = sorted(forms, key=lambda f: (-len(fold(f).split()), -forms[f], f))
    entities: list[Entity] = []
    tokens_of = {f: fold(f).replace("-", " ").split() for f in forms}
    # a multi-word form is a person when it was typed so, or its first or last word stands alone
    alone = {tokens_of[f][0] for f in forms if len(tokens_of[f]) == 1}
    for f in forms:
        t = tokens_of[f]
        surname = t[-1] in alone or (len(t) >= 3 and t[0] in alone)
        if len(t) >= 2 and kinds[f]["other"] and surname and not kinds[f]["organisation"]:
            kinds[f]["person"] += kinds[f].pop("other")

    def person(form: str) -> bool:
        return kinds[form].most_common(1)[0][0] == "person"

    def same(short: list[str], entity: Entity) -> bool:
        for variant in entity.variants:
            long = tokens_of[variant]
            if len(short) == len(long) and _covers(short, long):
                return True
            if (
                len(short) < len(long)
                and person(variant)
                and (_covers(short, long[: len(short)]) or _covers(short, long[-len(short) :]))
            ):
                return True
        return False

    for form in order:
        tokens = tokens_of[form]
        home = None
        candidates = [e for e in entities if same(tokens, e)]
        if candidates:
            home = max(candidates, key=lambda e: e.mentions)
        if home is None:
            home = Entity(form, "other")
            entities.append(home)
        home.variants.add(form)
        home.article_ids |= where[form]
        home.mentions += forms[form]
    for e in entities:
        votes: Counter[str] = Counter()
        for v in e.variants:
            votes.update(kinds[v])
        # a tie goes to the first type by name, not to the (hash-seeded) order of the variants
        typed = sorted((k for k in votes if k != "other"), key=lambda k: (-votes[k], k))
        e.kind = typed[0] if typed else "other"
        full = [
            v for v in e.variants if len(tokens_of[v]) == max(len(tokens_of[x]) for x in e.variants)
        ]
        e.name = max(full, key=lambda v: (forms[v], v))
    entities.sort(key=lambda e: (-len(e.article_ids), -e.mentions, e.name))
    return entities


# -- quotes and speakers -------------------------------------------------------------------------

_SPEECH = r"(?:said|says|told|added|stated|announced|warned|described|noted|wrote|argued|insisted|claimed|reported)"
_NAME = r"(?P<speaker>(?:[A-Z][\w'’.-]*\s+(?:(?:de|da|van|von|der|al|bin|la|le)\s+)?){0,6}[A-Z][\w'’.-]*|he|she|they|it)"
_AFTER = re.compile(rf"[,”\"]\s*{_NAME}\s+{_SPEECH}\b")
_INVERTED = re.compile(rf"[,”\"]\s*{_SPEECH}\s+{_NAME}\b")
_BEFORE = re.compile(
    rf"^(?:[^,]*,\s*)?(?:[\w’'.-]+\s+){{0,6}}?{_NAME}\s+(?:{_SPEECH}|has said|had said)\b"
)
_ACCORDING = re.compile(
    r"\baccording to (?:the )?(?P<speaker>(?:[A-Z][\w'’.-]*\s+){0,6}[A-Z][\w'’.-]*)"
)


def speaker_of(sentence: str, previous_people: list[str]) -> str | None:
    """Who a sentence attributes its content to: 'X said', '..., X said', 'according to X'.
    'he'/'she' resolve to the last person named before (the caller puts the last speaker last)."""
    for pattern in (_AFTER, _INVERTED, _BEFORE, _ACCORDING):
        match = pattern.search(sentence)
        if match and match.group("speaker"):
            speaker = match.group("speaker").strip()
            if speaker.casefold() in {"he", "she"}:
                return previous_people[-1] if previous_people else None
            if speaker.casefold() in {"they", "it"}:
                return None
            words = [w.replace("’", "'") for w in speaker.split()]
            titled = [i for i, w in enumerate(words) if fold(w.rstrip(".")) in TITLES]
            if titled and titled[-1] + 1 < len(words):
                words = words[titled[-1] + 1 :]  # "Foreign Minister Cho Hyun" -> "Cho Hyun"
            if words and words[0].endswith("'s") and len(words) > 1:
                words = words[1:]
            return (" ".join(words) or speaker).rstrip(".,;:")
    return None


# -- dates ---------------------------------------------------------------------------------------

_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_DATE_PATTERNS = [
    (
        "md",
        re.compile(
            rf"\b(?P<month>{_MONTH_NAMES})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{{4}}))?\b",
            re.I,
        ),
    ),
    (
        "dm",
        re.compile(
            rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month>{_MONTH_NAMES})(?:\s+(?P<year>\d{{4}}))?\b",
            re.I,
        ),
    ),
    (
        "my",
        re.compile(
            rf"\b(?:in|since|until|by|from|of)\s+(?P<month>{_MONTH_NAMES})(?:\s+(?P<year>\d{{4}}))?\b",
            re.I,
        ),
    ),
    (
        "rel",
        re.compile(
            r"\b(?P<rel>yesterday|today|tomorrow|tonight|(?:next|last|this) (?:week|month|year))\b",
            re.I,
        ),
    ),
    (
        "wd",
        re.compile(
            r"\b(?:on |last |next |this )?(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
            re.I,
        ),
    ),
    ("y", re.compile(r"\b(?:in|since|until|by|from|of|during)\s+(?P<year>(?:19|20)\d{2})\b", re.I)),
]


@dataclass(frozen=True)
class DateMention:
    text: str
    value: str  # ISO date, "YYYY-MM", "YYYY", or "--MM-DD" when the year is unknown
    resolved: bool  # True when it needed the publication date and had it


def _future(sentence: str) -> bool:
    return bool(
        re.search(
            r"\b(will|to be|is set to|are set to|plans? to|expected to|next|upcoming|scheduled)\b",
            sentence,
            re.I,
        )
    )


def dates_in(sentence: str, published: datetime | None) -> list[DateMention]:
    """Dates a sentence mentions, resolved against ``published`` where they are relative or
    partial ("Sept 3" gets the year that puts it nearest the article, in the sentence's tense)."""
    base = published.date() if published else None
    future = _future(sentence)
    out: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(sentence):
            if any(m.start() < e and m.end() > s for s, e in taken):
                continue
            value = _resolve(kind, m.groupdict(), base, future, m.group(0))
            if value is None:
                continue
            taken.append((m.start(), m.end()))
            out.append(DateMention(m.group(0).strip(), value[0], value[1]))
    return out


def _resolve(
    kind: str, g: dict[str, str | None], base: date | None, future: bool, text: str
) -> tuple[str, bool] | None:
    if kind in ("md", "dm", "my"):
        month = MONTHS.get((g["month"] or "").casefold().rstrip("."))
        if month is None or (
            (g["month"] or "").casefold() == "may" and kind == "my" and not g.get("year")
        ):
            return None
        year = int(g["year"] or 0) or None
        day = int(g.get("day") or 0) or None
        if day is not None and not 1 <= day <= 31:
            return None
        if year is None:
            if base is None:
                return (f"--{month:02d}-{day:02d}" if day else f"--{month:02d}", False)
            year = base.year
            candidate = (month, day or 1)
            if future and candidate < (base.month, base.day) and (base.month - month) % 12 > 0:
                year += 1
            elif (not future and candidate > (base.month, base.day) and kind != "my") or (
                not future and kind == "my" and month > base.month
            ):
                year -= 1
            try:
                return (date(year, month, day).isoformat() if day else f"{year}-{month:02d}", True)
            except ValueError:
                return None
        try:
            return (date(year, month, day).isoformat() if day else f"{year}-{month:02d}", False)
        except ValueError:
            return None
    if kind == "y":
        return (str(g["year"]), False)
    if base is None:
        return None
    if kind == "rel":
        rel = (g["rel"] or "").casefold()
        shift = {"yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1}.get(rel)
        if shift is not None:
            return ((base + timedelta(days=shift)).isoformat(), True)
        unit = rel.split()[1]
        sign = {"next": 1, "last": -1, "this": 0}[rel.split()[0]]
        if unit == "week":
            monday = base - timedelta(days=base.weekday()) + timedelta(weeks=sign)
            return (f"{monday.isocalendar().year}-W{monday.isocalendar().week:02d}", True)
        if unit == "month":
            month_index = base.year * 12 + base.month - 1 + sign
            return (f"{month_index // 12}-{month_index % 12 + 1:02d}", True)
        return (str(base.year + sign), True)
    if kind == "wd":
        target = WEEKDAYS.index((g["weekday"] or "").casefold())
        lowered = text.casefold()
        if lowered.startswith("next") or (future and not lowered.startswith("last")):
            delta = (target - base.weekday()) % 7 or 7
        else:
            delta = -((base.weekday() - target) % 7)
        return ((base + timedelta(days=delta)).isoformat(), True)
    return None
