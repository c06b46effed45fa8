"""Text helpers shared by the stages: words, content terms, numbers, dates, sentences."""

from __future__ import annotations

import itertools
import json
import re
import threading
import unicodedata
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_WORD = re.compile(r"[^\W_]+(?:[’'.,-][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")
# scikit-learn's English list, bundled (importing scikit-learn took a second of every start)
ENGLISH_STOP_WORDS = frozenset(
    json.loads(resources.files("synoptic").joinpath("data/english_stopwords.json").read_text())[
        "words"
    ]
)
STOPWORDS = ENGLISH_STOP_WORDS | {
    "said",
    "says",
    "say",
    "told",
    "mr",
    "mrs",
    "ms",
    "dr",
    "also",
    "will",
    "would",
    "could",
    "according",
    "year",
    "years",
}

MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
TERMINAL = (".", "!", "?", "…", '"', "”", "’", "'", ")", ":")


def normalise(text: str) -> str:
    """NFKC, unify quotes and dashes, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens; numbers keep their inner separators ("20,000")."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold().replace("’", "'"))


def _stem(token: str) -> str:
    if token.endswith("'s"):
        token = token[:-2]
    if len(token) > 5 and token.endswith("ing"):
        return token[:-3]
    if len(token) > 4 and token.endswith("ed"):
        return token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def number_value(token: str) -> str | None:
    """'20,000' -> '20000', '1.5' -> '1.5'; None when the token is not a number."""
    if not _NUMBER.match(token):
        return None
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):
        return token.replace(",", "")
    return token.replace(",", ".") if token.count(",") == 1 and "." not in token else token


def content_terms(text: str) -> list[str]:
    """Terms that carry meaning: no stopwords, light stemming, numbers and month names normalised.

    "Sept. 3", "September 3" and "Sept 3" all yield the term "3" and "month:9".
    """
    return list(terms_of(words(text)))


def terms_of(tokens: Iterable[str]) -> Iterator[str]:
    """:func:`content_terms` of :func:`words` tokens, lazily."""
    return filter(None, map(_term, tokens))


@lru_cache(maxsize=1 << 18)
def _term(token: str) -> str:
    """The content term of one word token, "" for none (cached: news reuses its words)."""
    token = token.strip(".,'-")
    if not token:
        return ""
    value = number_value(token)
    if value is not None:
        return value
    month = MONTHS.get(token)
    if month is not None and token != "may":
        return f"month:{month}"
    if token in STOPWORDS or len(token) < 2:
        return ""
    return _stem(token)


def ends_like_sentence(text: str) -> bool:
    return text.rstrip().endswith(TERMINAL)


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # character offsets into the article text
    end: int
    paragraph: int


class SentenceSplitter:
    """Rule-based sentence splitting (pysbd) with exact character offsets into the source text.

    pysbd's own offsets are unreliable around repeated whitespace, so each sentence is located in
    its paragraph with ``str.find`` from a moving cursor. Where the sentences of the last
    ``cached`` texts lie is kept (three 4-byte integers per sentence, keyed by the text's hash
    and length): when a story that gained an article is briefed again, its other articles are
    not segmented again (pysbd takes ~10 ms for a long paragraph, most of a brief's time).
    """

    def __init__(self, language: str = "en", cached: int = 20_000) -> None:
        import pysbd

        self._segmenter = pysbd.Segmenter(language=language, clean=False)
        self._cached = cached
        self._bounds: OrderedDict[tuple[int, int], array[int]] = OrderedDict()
        self._lock = threading.Lock()

    def split(self, text: str) -> list[Sentence]:
        return self.split_many([text])[0]

    def split_many(self, texts: Iterable[str]) -> list[list[Sentence]]:
        """:meth:`split` of each text, segmenting a paragraph that recurs among them (wire
        copies of one text) once."""
        segmented: dict[str, list[str]] = {}
        out = []
        for text in texts:
            key = (hash(text), len(text))
            with self._lock:
                bounds = self._bounds.get(key)
                if bounds is not None:
                    self._bounds.move_to_end(key)
            if bounds is None:
                bounds = self._locate(text, segmented)
                with self._lock:
                    self._bounds[key] = bounds
                    while len(self._bounds) > self._cached:
                        self._bounds.popitem(last=False)
            out.append(
                [
                    Sentence(
                        text[bounds[i + 1] : bounds[i + 2]], bounds[i + 1], bounds[i + 2], bounds[i]
                    )
                    for i in range(0, len(bounds), 3)
                ]
            )
        return out

    def _locate(self, text: str, segmented: dict[str, list[str]]) -> array[int]:
        """Paragraph, start and end of each sentence of ``text``, one after the other."""
        bounds = array("I")
        offset = 0
        for index, paragraph in enumerate(text.split("\n\n")):
            cursor = 0
            if paragraph.strip() and paragraph not in segmented:
                segmented[paragraph] = self._segmenter.segment(paragraph)
            for piece in segmented.get(paragraph, ()):
                piece = piece.strip()
                if not piece:
                    continue
                at = paragraph.find(piece, cursor)
                if at < 0:
                    continue
                cursor = at + len(piece)
                bounds.extend((index, offset + at, offset + cursor))
            offset += len(paragraph) + 2
        return bounds


# Words that join the parts of a name: "Bank of America", "Oscar de la Renta".
NAME_CONNECTORS = ("of", "de", "da", "al", "bin", "van", "von", "der", "la", "le")
_NAME_WORD = r"[A-Z](?:\.(?:[A-Z]\.)*|[\w'’-]*\.?)"  # "U.S.", "W.", "Nepal.", "Obama"
_NAME = re.compile(
    rf"\b{_NAME_WORD}(?:[ \t]+(?:(?:{'|'.join(NAME_CONNECTORS)})[ \t]+)?{_NAME_WORD})*"
)
# A name runs on past a period only after an abbreviation ("Gov. Jerry Brown", "St. Louis",
# "Capt. Tom Tennant"), an initial ("George W. Bush") or a dotted abbreviation ("U.S. Navy");
# any other word's period ends it: "... in Nepal. The climbers" is "Nepal", then "The".
_TITLES = (
    "Mr Mrs Ms Mx Dr Prof Rev Fr Hon Gov Sen Rep Pres Gen Lt Col Maj Capt Cpt Cmdr Adm Sgt Cpl "
    "Pvt Det Insp Supt Const Dist Atty Amb Sec Treas Rt"
)
_OTHER_ABBREVIATIONS = (
    "Sr Jr St Ste Mt Ft Pt Ave Blvd Rd No Co Corp Inc Ltd Bros Dept Univ Assn Intl Natl"
)
ABBREVIATED_TITLES = frozenset(_TITLES.split())  # a person's, before the name: "Gov."
_ABBREVIATIONS = ABBREVIATED_TITLES | frozenset(_OTHER_ABBREVIATIONS.split())
_INITIALS = re.compile(r"(?:[A-Z]\.)+[A-Z]?\.?")


def is_abbreviation(word: str) -> bool:
    """Whether a word's final period does not end a sentence: "Gov.", "W.", "U.S."."""
    return word[:-1] in _ABBREVIATIONS or _INITIALS.fullmatch(word) is not None


_SENTENCE_END = frozenset('.!?:;"“”')


def _starts_sentence(text: str, at: int) -> bool:
    """Whether ``text[at:]`` begins a sentence: at the start of the text or of a line, or
    after sentence punctuation and white space (within 200 characters)."""
    if at == 0 or text[at - 1] == "\n":
        return True
    before = text[max(0, at - 200) : at]
    kept = before.rstrip()
    return len(kept) < len(before) and kept[-1:] in _SENTENCE_END


def name_phrases(text: str) -> list[str]:
    """Model-free named entities: runs of capitalised words, lower-cased, plus each multi-word
    name's last word (so "Vladimir Putin" and "Putin" meet). A lone capitalised word at the start
    of a sentence counts only if it is not a stopword or an ordinary word of the same text."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    lower_words = set(_LOWER_WORD.findall(text))
    out: list[str] = []
    for match in _NAME.finditer(text):
        for name, last, lone, first in _names_of(match.group(0)):
            # (a piece after the first follows a sentence's end)
            if lone in lower_words and (not first or _starts_sentence(text, match.start())):
                continue
            out.append(name)
            if last:
                out.append(last)
    return out


_LOWER_WORD = re.compile(r"\b[a-z][\w'-]*")


@lru_cache(maxsize=1 << 16)
def _names_of(run: str) -> tuple[tuple[str, str, str, bool], ...]:
    """A run of capitalised words cut after each period that does not end an abbreviation or
    an initial: the names of its pieces as :func:`_name_of` reads them, each with whether it
    is the run's first piece (cached: names recur)."""
    pieces: list[list[str]] = [[]]
    for word in run.split():
        pieces[-1].append(word)
        if word.endswith(".") and not is_abbreviation(word):
            pieces.append([])
    out = []
    for i, piece in enumerate(pieces):
        # (a piece after a cut starts at its first capitalised word, not at a connector: "de")
        name, last, lone = _name_of(list(itertools.dropwhile(str.islower, piece)))
        if name:
            out.append((name, last, lone, i == 0))
    return tuple(out)


def _name_of(words: list[str]) -> tuple[str, str, str]:
    """A name's words as (name, its last word if it has several, the casefolded word if it
    has one); ("", "", "") when they name nothing."""
    tokens = [t.rstrip(".").removesuffix("'s") for t in words]
    tokens = [t for t in tokens if t]
    while tokens and (tokens[0].casefold() in STOPWORDS or tokens[0].casefold() in MONTHS):
        tokens = tokens[1:]
    while tokens and tokens[-1].casefold() in STOPWORDS:  # a name never ends in one ("U.S. The")
        tokens.pop()
    name = " ".join(t.casefold() for t in tokens)
    if not tokens or len(name) < 2 or name in STOPWORDS:
        return "", "", ""
    if len(tokens) > 1:
        return name, tokens[-1].casefold(), ""
    return name, "", tokens[0].casefold()


def numbers_and_dates(text: str) -> list[str]:
    """Figures (two or more digits) and calendar days ("Sept 3" -> "d:9-3") in a text."""
    terms = content_terms(text)
    out: list[str] = []
    for i, term in enumerate(terms):
        if term.startswith("month:"):
            month = term[6:]
            for near in (terms[i + 1] if i + 1 < len(terms) else "", terms[i - 1] if i else ""):
                if near.isdigit() and 1 <= int(near) <= 31:
                    out.append(f"d:{month}-{int(near)}")
                    break
        elif term[:1].isdigit() and len(term.replace(".", "")) >= 2:
            out.append(term)
    return out
