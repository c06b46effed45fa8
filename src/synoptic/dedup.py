"""Exact copies, near-duplicates and syndicated wire copies (datasketch MinHash LSH).

Two indexes share one setting, ``threshold`` (word-shingle Jaccard for a near-duplicate):

* whole texts: near-duplicates at Jaccard >= ``threshold``;
* paragraphs: a wire copy that an outlet trimmed, extended with its own paragraphs or re-titled
  still shares whole paragraphs with the original. Paragraphs match at Jaccard >=
  ``threshold - 0.35`` (small edits inside a paragraph change many shingles), and two articles
  are one wire text when the matched paragraphs cover at least half of either article's words.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from synoptic.errors import SettingsError
from synoptic.model import Article
from synoptic.text import words

MIN_PARAGRAPH_WORDS = 8


@dataclass(frozen=True)
class Fingerprint:
    content_hash: str
    doc: LeanMinHash
    paragraphs: tuple[LeanMinHash, ...]
    paragraph_words: tuple[int, ...]

    def to_bytes(self) -> tuple[bytes, bytes]:
        doc = self.doc.hashvalues.astype(np.uint64).tobytes()
        paras = b"".join(p.hashvalues.astype(np.uint64).tobytes() for p in self.paragraphs)
        return doc, paras

    @classmethod
    def from_bytes(
        cls,
        content_hash: str,
        doc: bytes,
        paras: bytes,
        paragraph_words: list[int],
        *,
        seed: int,
        scheme: str,
    ) -> Fingerprint:
        doc_values = np.frombuffer(doc, dtype=np.uint64)
        num_perm = len(doc_values)
        para_values: list[Any] = (
            list(np.frombuffer(paras, dtype=np.uint64).reshape(-1, num_perm)) if paras else []
        )
        return cls(
            content_hash,
            LeanMinHash(seed=seed, hashvalues=doc_values, scheme=scheme),
            tuple(LeanMinHash(seed=seed, hashvalues=v, scheme=scheme) for v in para_values),
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

    def signature(self, hashes: np.ndarray) -> LeanMinHash:
        """The MinHash of a set of 32-bit shingle hashes."""
        if len(hashes) == 0:
            values = self._empty
        else:
            # MurmurHash3's finalizer (datasketch pre-mixes inputs with it), then the affine
            # permutations h -> a * h + b mod 2**32, and the minimum over shingles.
            hv = hashes ^ (hashes >> np.uint32(16))
            hv = hv * np.uint32(0x85EBCA6B)
            hv = hv ^ (hv >> np.uint32(13))
            hv = hv * np.uint32(0xC2B2AE35)
            hv = hv ^ (hv >> np.uint32(16))
            values = (hv[:, None] * self._a[None, :] + self._b[None, :]).min(axis=0)
        return LeanMinHash(seed=self.seed, hashvalues=values, scheme=self.scheme)

    def fingerprint(self, article: Article) -> Fingerprint:
        return self.of_paragraphs(article.content_hash, article.paragraphs)

    def of_paragraphs(self, content_hash: str, paragraphs: list[str]) -> Fingerprint:
        """The whole text's signature, each long-enough paragraph's, and their word counts."""
        paras: list[LeanMinHash] = []
        counts: list[int] = []
        every: list[np.ndarray] = []  # the whole text's words (no word spans two paragraphs)
        for paragraph in paragraphs:
            hashes = word_hashes(words(paragraph))
            every.append(hashes)
            if len(hashes) >= MIN_PARAGRAPH_WORDS:
                paras.append(self.signature(shingle_hashes(hashes, 3)))
                counts.append(len(hashes))
        whole = np.concatenate(every) if every else np.zeros(0, dtype=np.uint32)
        doc = self.signature(shingle_hashes(whole, 5))
        return Fingerprint(content_hash, doc, tuple(paras), tuple(counts))


class SyndicationIndex:
    """Finds which stored article a new one copies. State lives in the LSH indexes (``*_``)."""

    def __init__(self, *, threshold: float = 0.8, num_perm: int = 128, seed: int = 1) -> None:
        if not 0.5 <= threshold <= 1.0:
            raise SettingsError(f"duplicate threshold must be between 0.5 and 1, got {threshold}")
        self.threshold = threshold
        self.fingerprinter = Fingerprinter(num_perm=num_perm, seed=seed)
        self.paragraph_threshold = max(0.2, threshold - 0.35)
        self.coverage = 0.5
        self.docs_ = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.paragraphs_ = MinHashLSH(threshold=self.paragraph_threshold, num_perm=num_perm)
        self.hashes_: dict[str, str] = {}
        self.fingerprints_: dict[str, Fingerprint] = {}

    def __len__(self) -> int:
        return len(self.fingerprints_)

    def fingerprint(self, article: Article) -> Fingerprint:
        return self.fingerprinter.fingerprint(article)

    def match(self, fp: Fingerprint) -> CopyMatch | None:
        """The best stored article that ``fp`` copies, or None."""
        if fp.content_hash in self.hashes_:
            return CopyMatch(self.hashes_[fp.content_hash], "exact", 1.0)
        best: CopyMatch | None = None
        for other in sorted(self.docs_.query(fp.doc)):  # sorted: ties go the same way every run
            score = fp.doc.jaccard(self.fingerprints_[other].doc)
            if score >= self.threshold and (best is None or score > best.score):
                best = CopyMatch(other, "near-duplicate", score)
        if best is not None:
            return best
        # Paragraph overlap: which of our paragraphs appear in which stored article.
        matched: dict[str, dict[int, set[int]]] = {}
        for i, para in enumerate(fp.paragraphs):
            for key in self.paragraphs_.query(para):
                other, j = key.rsplit("\t", 1)
                if (
                    para.jaccard(self.fingerprints_[other].paragraphs[int(j)])
                    >= self.paragraph_threshold
                ):
                    matched.setdefault(other, {}).setdefault(i, set()).add(int(j))
        total = sum(fp.paragraph_words) or 1
        for other, pairs in sorted(matched.items()):
            theirs = self.fingerprints_[other].paragraph_words
            ours_covered = sum(fp.paragraph_words[i] for i in pairs) / total
            their_idx = set().union(*pairs.values())
            theirs_covered = sum(theirs[j] for j in their_idx) / (sum(theirs) or 1)
            score = max(ours_covered, theirs_covered)
            enough = len(pairs) >= 2 or min(len(fp.paragraphs), len(theirs)) == 1
            if score >= self.coverage and enough and (best is None or score > best.score):
                best = CopyMatch(other, "syndicated", round(score, 4))
        return best

    def remove(self, article_id: str) -> None:
        """Forget an article (it left the active window); the store keeps it."""
        fp = self.fingerprints_.pop(article_id, None)
        if fp is None:
            return
        self.docs_.remove(article_id)
        for j in range(len(fp.paragraphs)):
            self.paragraphs_.remove(f"{article_id}\t{j}")
        if self.hashes_.get(fp.content_hash) == article_id:
            del self.hashes_[fp.content_hash]

    def add(self, article_id: str, fp: Fingerprint) -> None:
        if article_id in self.fingerprints_:
            return
        self.fingerprints_[article_id] = fp
        self.hashes_.setdefault(fp.content_hash, article_id)
        self.docs_.insert(article_id, fp.doc)
        for j, para in enumerate(fp.paragraphs):
            self.paragraphs_.insert(f"{article_id}\t{j}", para)


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
