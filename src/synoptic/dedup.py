"""Exact copies, near-duplicates and syndicated wire copies (MinHash LSH).

Two indexes share one setting, ``threshold`` (word-shingle Jaccard for a near-duplicate):

* whole texts: near-duplicates at Jaccard >= ``threshold``;
* paragraphs: a wire copy that an outlet trimmed, extended with its own paragraphs or re-titled
  still shares whole paragraphs with the original. Paragraphs match at Jaccard >=
  ``threshold - 0.35`` (small edits inside a paragraph change many shingles), and two articles
  are one wire text when the matched paragraphs cover at least half of either article's words.

Signatures are datasketch MinHashes (``affine32`` scheme) computed as array operations; the
indexes band them as datasketch's ``MinHashLSH`` does, with its bands for the threshold.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from datasketch import MinHash, MinHashLSH

from synoptic.errors import SettingsError
from synoptic.model import Article
from synoptic.text import words

Item = TypeVar("Item", bound=Hashable)
MIN_PARAGRAPH_WORDS = 8


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """An article's MinHash signatures: ``doc`` of the whole text (``num_perm`` values),
    ``paragraphs`` one row per long-enough paragraph, with their word counts."""

    content_hash: str
    doc: np.ndarray  # uint32, (num_perm,)
    paragraphs: np.ndarray  # uint32, (paragraphs, num_perm)
    paragraph_words: tuple[int, ...]

    def to_bytes(self) -> tuple[bytes, bytes]:
        """The signatures as stored: little-endian uint64 values, as datasketch keeps them."""
        return self.doc.astype("<u8").tobytes(), self.paragraphs.astype("<u8").tobytes()

    @classmethod
    def from_bytes(
        cls, content_hash: str, doc: bytes, paras: bytes, paragraph_words: list[int]
    ) -> Fingerprint:
        doc_values = np.frombuffer(doc, dtype="<u8").astype(np.uint32)
        para_values = np.frombuffer(paras, dtype="<u8").astype(np.uint32)
        return cls(
            content_hash,
            doc_values,
            para_values.reshape(-1, len(doc_values)),
            tuple(paragraph_words),
        )


@dataclass(frozen=True)
class CopyMatch:
    """The new article copies ``article_id``: ``kind`` is exact, near-duplicate or syndicated."""

    article_id: str
    kind: str
    score: float


# Shingle hashes: each word's CRC-32, combined over the shingle's positions by a polynomial
# modulo 2**32 (vectorised; datasketch's default SHA-1 per shingle cost ~20% of ingest).
_POLY = np.uint32(0x01000193)


def word_hashes(tokens: list[str]) -> np.ndarray:
    """Each word's CRC-32."""
    return np.fromiter(map(zlib.crc32, map(str.encode, tokens)), dtype=np.uint32, count=len(tokens))


def shingle_hashes(hashes: np.ndarray, size: int) -> np.ndarray:
    """32-bit hashes of the word ``size``-grams of a text (its :func:`word_hashes`); a text
    shorter than ``size`` is one shingle."""
    size = min(size, len(hashes))
    n = len(hashes) - size + 1
    out = np.zeros(n if len(hashes) else 0, dtype=np.uint32)
    for j in range(size):
        out = out * _POLY + hashes[j : j + n]
    return out


class Fingerprinter:
    """MinHash signatures of an article's whole text (word 5-shingles) and of each paragraph
    (word 3-shingles), in datasketch's ``affine32`` scheme: the values are what
    ``datasketch.MinHash.update_batch`` makes of :func:`shingle_hashes` with an identity hash
    function, computed as one array operation per text. No index: cheap to make, so worker
    processes make their own."""

    def __init__(self, *, num_perm: int = 128, seed: int = 1) -> None:
        self.seed = seed
        template = MinHash(num_perm=num_perm, seed=seed)
        self.scheme = template.scheme
        if self.scheme != "affine32":
            raise SettingsError(
                f"datasketch's default MinHash scheme is {self.scheme!r}; synoptic's "
                "signatures need 'affine32' (datasketch 2.x)"
            )
        self._a, self._b = (p.astype(np.uint32) for p in template.permutations)
        self._empty = template.hashvalues.astype(np.uint32)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """The MinHash values of a set of 32-bit shingle hashes."""
        if len(hashes) == 0:
            return self._empty
        # MurmurHash3's finalizer (datasketch pre-mixes inputs with it), then the affine
        # permutations h -> a * h + b mod 2**32, and the minimum over shingles.
        hv = hashes ^ (hashes >> np.uint32(16))
        hv = hv * np.uint32(0x85EBCA6B)
        hv = hv ^ (hv >> np.uint32(13))
        hv = hv * np.uint32(0xC2B2AE35)
        hv = hv ^ (hv >> np.uint32(16))
        return np.asarray((hv[:, None] * self._a[None, :] + self._b[None, :]).min(axis=0))

    def fingerprint(self, article: Article) -> Fingerprint:
        return self.of_paragraphs(article.content_hash, article.paragraphs)

    def of_paragraphs(self, content_hash: str, paragraphs: list[str]) -> Fingerprint:
        """The whole text's signature, each long-enough paragraph's, and their word counts."""
        return self.of_words(content_hash, [words(paragraph) for paragraph in paragraphs])

    def of_words(self, content_hash: str, paragraphs: list[list[str]]) -> Fingerprint:
        """:meth:`of_paragraphs` of paragraphs already cut into :func:`~synoptic.text.words`."""
        paras: list[np.ndarray] = []
        counts: list[int] = []
        every: list[np.ndarray] = []  # the whole text's words (no word spans two paragraphs)
        for tokens in paragraphs:
            hashes = word_hashes(tokens)
            every.append(hashes)
            if len(hashes) >= MIN_PARAGRAPH_WORDS:
                paras.append(self.signature(shingle_hashes(hashes, 3)))
                counts.append(len(hashes))
        whole = np.concatenate(every) if every else np.zeros(0, dtype=np.uint32)
        doc = self.signature(shingle_hashes(whole, 5))
        matrix = np.array(paras, dtype=np.uint32).reshape(len(paras), len(self._empty))
        return Fingerprint(content_hash, doc, matrix, tuple(counts))


class Bands(Generic[Item]):
    """A MinHash LSH index: signatures cut into ``b`` bands of ``r`` values, and items whose
    signatures agree on a whole band are candidates. ``b`` and ``r`` are those datasketch's
    ``MinHashLSH`` picks for the threshold, and a bucket is keyed by the band's bytes as there, so
    both find the same candidates; here all bands of many signatures are cut in one array
    operation, and an item's buckets are found again from its signature, not stored. Most
    buckets hold one item, kept as it is; a bucket becomes a set at its second item (a set per
    bucket made the paragraph index most of the engine's memory)."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        reference = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.b, self.r = reference.b, reference.r
        self.tables: list[dict[bytes, Item | set[Item]]] = [{} for _ in range(self.b)]

    def keys(self, signatures: np.ndarray) -> list[list[bytes]]:
        """The bucket key in each band of each signature (the rows of a uint32 matrix)."""
        banded = np.ascontiguousarray(signatures[:, : self.b * self.r], dtype=np.uint32)
        keys: list[list[bytes]] = banded.view(np.dtype((np.void, 4 * self.r))).tolist()
        return keys

    def insert(self, items: list[Item], signatures: np.ndarray) -> None:
        for item, row in zip(items, self.keys(signatures), strict=True):
            for table, key in zip(self.tables, row, strict=True):
                bucket = table.setdefault(key, item)
                if bucket is item:
                    continue
                if isinstance(bucket, set):
                    bucket.add(item)
                elif bucket != item:
                    table[key] = {bucket, item}

    def remove(self, items: list[Item], signatures: np.ndarray) -> None:
        for item, row in zip(items, self.keys(signatures), strict=True):
            for table, key in zip(self.tables, row, strict=True):
                bucket = table.get(key)
                if isinstance(bucket, set):
                    bucket.discard(item)
                    if len(bucket) == 1:
                        table[key] = bucket.pop()
                elif bucket is not None and bucket == item:
                    del table[key]

    def query(self, signatures: np.ndarray) -> list[set[Item]]:
        """Each signature's candidates."""
        out = []
        for row in self.keys(signatures):
            found: set[Item] = set()
            for table, key in zip(self.tables, row, strict=True):
                bucket = table.get(key)
                if bucket is None:
                    continue
                if isinstance(bucket, set):
                    found |= bucket
                else:
                    found.add(bucket)
            out.append(found)
        return out


def jaccards(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarities of row-aligned signatures (datasketch's ``jaccard``)."""
    return np.count_nonzero(a == b, axis=-1) / a.shape[-1]


@dataclass(frozen=True)
class _Held:
    """What the index keeps of an article: its paragraphs' signatures are rows of the index's
    paragraph matrix."""

    content_hash: str
    doc: np.ndarray
    rows: list[int]
    paragraph_words: tuple[int, ...]


class SyndicationIndex:
    """Finds which stored article a new one copies. State lives in the LSH indexes (``*_``)."""

    def __init__(self, *, threshold: float = 0.8, num_perm: int = 128, seed: int = 1) -> None:
        if not 0.5 <= threshold <= 1.0:
            raise SettingsError(f"duplicate threshold must be between 0.5 and 1, got {threshold}")
        self.threshold = threshold
        self.fingerprinter = Fingerprinter(num_perm=num_perm, seed=seed)
        self.paragraph_threshold = max(0.2, threshold - 0.35)
        self.coverage = 0.5
        self.docs_: Bands[str] = Bands(threshold, num_perm)
        self.paragraphs_: Bands[int] = Bands(self.paragraph_threshold, num_perm)  # of rows
        self.hashes_: dict[str, str] = {}
        self.held_: dict[str, _Held] = {}
        # Every held paragraph's signature is a row here, so that a new article's paragraphs
        # are compared with all their candidates in one array operation; freed rows are reused.
        self.rows_ = np.zeros((1024, num_perm), dtype=np.uint32)
        self.row_owner_: list[tuple[str, int]] = []  # row -> (article id, paragraph)
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self.held_)

    def fingerprint(self, article: Article) -> Fingerprint:
        return self.fingerprinter.fingerprint(article)

    def match(self, fp: Fingerprint) -> CopyMatch | None:
        """The best stored article that ``fp`` copies, or None."""
        if fp.content_hash in self.hashes_:
            return CopyMatch(self.hashes_[fp.content_hash], "exact", 1.0)
        best: CopyMatch | None = None
        found = sorted(self.docs_.query(fp.doc[None, :])[0])  # ties: the same way every run
        if found:
            others = np.array([self.held_[other].doc for other in found])
            for other, score in zip(found, jaccards(fp.doc, others).tolist(), strict=True):
                if score >= self.threshold and (best is None or score > best.score):
                    best = CopyMatch(other, "near-duplicate", score)
        if best is not None:
            return best
        # Paragraph overlap: which of our paragraphs appear in which stored article.
        candidates = self.paragraphs_.query(fp.paragraphs)
        sizes = list(map(len, candidates))
        rows = np.fromiter(itertools.chain.from_iterable(candidates), np.intp, sum(sizes))
        ours = np.repeat(np.arange(len(candidates)), sizes)
        similar = jaccards(fp.paragraphs[ours], self.rows_[rows]) >= self.paragraph_threshold
        matched: dict[str, dict[int, set[int]]] = {}
        for i, row in zip(ours[similar].tolist(), rows[similar].tolist(), strict=True):
            other, j = self.row_owner_[row]
            matched.setdefault(other, {}).setdefault(i, set()).add(j)
        total = sum(fp.paragraph_words) or 1
        copied, best_score = None, 0.0
        for other, pairs in sorted(matched.items()):
            theirs = self.held_[other].paragraph_words
            ours_covered = sum(fp.paragraph_words[i] for i in pairs) / total
            their_idx = set().union(*pairs.values())
            theirs_covered = sum(theirs[j] for j in their_idx) / (sum(theirs) or 1)
            score = max(ours_covered, theirs_covered)
            enough = len(pairs) >= 2 or min(len(fp.paragraphs), len(theirs)) == 1
            # (compared unrounded: a rounded best let a lower score that rounds alike win)
            if score >= self.coverage and enough and (copied is None or score > best_score):
                copied, best_score = other, score
        return None if copied is None else CopyMatch(copied, "syndicated", round(best_score, 4))

    def remove(self, article_id: str) -> None:
        """Forget an article (it left the active window); the store keeps it."""
        held = self.held_.pop(article_id, None)
        if held is None:
            return
        self.docs_.remove([article_id], held.doc[None, :])
        self.paragraphs_.remove(held.rows, self.rows_[held.rows])
        self._free.extend(held.rows)
        if self.hashes_.get(held.content_hash) == article_id:
            del self.hashes_[held.content_hash]

    def add(self, article_id: str, fp: Fingerprint) -> None:
        if article_id in self.held_:
            return
        rows = [self._row(article_id, j) for j in range(len(fp.paragraphs))]
        self.rows_[rows] = fp.paragraphs
        self.held_[article_id] = _Held(fp.content_hash, fp.doc, rows, fp.paragraph_words)
        self.hashes_.setdefault(fp.content_hash, article_id)
        self.docs_.insert([article_id], fp.doc[None, :])
        self.paragraphs_.insert(rows, fp.paragraphs)

    def _row(self, article_id: str, paragraph: int) -> int:
        """A free row of ``rows_`` for this paragraph (the matrix doubles when full)."""
        if self._free:
            row = self._free.pop()
            self.row_owner_[row] = (article_id, paragraph)
            return row
        row = len(self.row_owner_)
        if row == len(self.rows_):
            self.rows_ = np.concatenate((self.rows_, np.zeros_like(self.rows_)))
        self.row_owner_.append((article_id, paragraph))
        return row


class SeenIds:
    """Which article ids were ever stored, in fixed memory: a Bloom filter of ``2**bits`` bits
    (2 MiB by default). ``id in seen`` is False only for an id never added; True means "maybe"
    (false positives: about 0.2% at a million ids), and the caller asks the store."""

    _MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)

    def __init__(self, bits: int = 24) -> None:
        self._shift = 64 - bits
        self._bits = bytearray(1 << (bits - 3))

    def _positions(self, key: str) -> list[int]:
        x = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        mask = 0xFFFF_FFFF_FFFF_FFFF
        return [((x * m) & mask) >> self._shift for m in self._MULTIPLIERS]

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    @classmethod
    def from_bytes(cls, data: bytes) -> SeenIds | None:
        """A filter saved by :meth:`to_bytes`; None when ``data`` is not one."""
        bits = (len(data) * 8).bit_length() - 1
        if len(data) < 8 or 1 << bits != len(data) * 8:
            return None
        seen = cls(bits)
        seen._bits[:] = data
        return seen

    def add(self, key: str) -> None:
        for p in self._positions(key):
            self._bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return all(self._bits[p >> 3] >> (p & 7) & 1 for p in self._positions(key))
