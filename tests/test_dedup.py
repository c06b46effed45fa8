"""Wire copies, near-duplicates and unrelated texts."""

from __future__ import annotations

import numpy as np

from synoptic.dedup import SyndicationIndex
from synoptic.model import Article, article_id

from .conftest import QUAKE_A, QUAKE_B

WIRE = [p.replace("\n", " ") for p in QUAKE_A.split("\n\n")[1:] if p.strip()]


def art(title: str, paragraphs: list[str], url: str = "") -> Article:
    text = "\n\n".join(paragraphs)
    return Article(id=article_id(title, text, url), title=title, text=text, url=url)


def test_wire_copy_with_own_paragraphs_and_new_headline_is_syndicated() -> None:
    index = SyndicationIndex()
    original = art("Strong earthquake strikes southern Chile", WIRE)
    index.add(original.id, index.fingerprint(original))
    republished = art(
        "Chile quake: dozens feared trapped",
        [
            "Our correspondent in Santiago said phone lines to the south were down for most of the day.",
            *WIRE[:3],  # trims the end
            "Local radio said volunteers from neighbouring towns had arrived with heavy machinery.",
        ],
        url="https://example.org/chile",
    )
    match = index.match(index.fingerprint(republished))
    assert match is not None and match.article_id == original.id and match.kind == "syndicated"


def test_exact_and_near_duplicates() -> None:
    index = SyndicationIndex()
    original = art("Quake", WIRE, url="https://a.example/1")
    index.add(original.id, index.fingerprint(original))
    same_text_other_url = art("Quake", WIRE, url="https://b.example/2")
    assert index.match(index.fingerprint(same_text_other_url)).kind == "exact"
    edited = art("Quake", [WIRE[0].replace("Tuesday", "Tuesday morning"), *WIRE[1:]])
    assert index.match(index.fingerprint(edited)).kind in {"near-duplicate", "syndicated"}


def test_unrelated_and_same_topic_texts_are_not_copies() -> None:
    index = SyndicationIndex()
    original = art("Quake in Chile", WIRE)
    index.add(original.id, index.fingerprint(original))
    other = art("Quake in Japan", [p.replace("\n", " ") for p in QUAKE_B.split("\n\n")[1:]])
    assert index.match(index.fingerprint(other)) is None


def test_seen_ids_never_forget_and_rarely_guess() -> None:
    from synoptic.dedup import SeenIds

    seen = SeenIds(bits=16)
    stored = [f"a_{i:016x}" for i in range(2000)]
    for key in stored:
        seen.add(key)
    assert all(key in seen for key in stored)  # no false negatives, ever
    strangers = [f"b_{i:016x}" for i in range(2000)]
    assert sum(key in seen for key in strangers) < 200  # "maybe" only now and then


def test_signatures_are_datasketch_minhashes_of_the_shingle_hashes() -> None:
    """The vectorised signature is exactly datasketch's MinHash of the same shingle hashes."""
    from datasketch import MinHash

    from synoptic.dedup import Fingerprinter, shingle_hashes, word_hashes
    from synoptic.text import words

    fingerprinter = Fingerprinter()
    tokens = words(" ".join(WIRE))
    for size in (3, 5):
        hashes = shingle_hashes(word_hashes(tokens), size)
        assert len(set(hashes.tolist())) == len(
            {tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}
        )
        reference = MinHash(num_perm=128, seed=1, hashfunc=lambda h: h)
        reference.update_batch(hashes.tolist())
        assert (fingerprinter.signature(hashes) == reference.hashvalues).all()
    assert len(shingle_hashes(word_hashes(["too", "short"]), 5)) == 1  # one shingle
    assert len(shingle_hashes(word_hashes([]), 5)) == 0


def test_bands_find_what_datasketch_lsh_finds() -> None:
    """The banded index finds, for each query, exactly the candidates datasketch's MinHashLSH
    finds at the same threshold, and forgets removed items as it does."""
    from datasketch import LeanMinHash, MinHashLSH

    from synoptic.dedup import Bands

    rng = np.random.default_rng(7)
    stored = rng.integers(0, 2**32, size=(300, 128), dtype=np.uint32)
    # queries: copies of stored signatures with a share of their values redrawn, and strangers
    queries = stored[rng.integers(0, 300, size=200)].copy()
    for row, share in zip(queries, rng.uniform(0.0, 0.9, size=200), strict=True):
        redrawn = rng.random(128) < share
        row[redrawn] = rng.integers(0, 2**32, size=int(redrawn.sum()), dtype=np.uint32)
    queries = np.vstack((queries, rng.integers(0, 2**32, size=(20, 128), dtype=np.uint32)))
    for threshold in (0.45, 0.8):
        ours: Bands[int] = Bands(threshold, 128)
        theirs = MinHashLSH(threshold=threshold, num_perm=128)
        ours.insert(list(range(300)), stored)
        for i, values in enumerate(stored):
            theirs.insert(
                i, LeanMinHash(seed=1, hashvalues=values.astype(np.uint64), scheme="affine32")
            )
        gone = list(range(0, 300, 3))
        ours.remove(gone, stored[gone])
        for i in gone:
            theirs.remove(i)
        found = ours.query(queries)
        expected = [
            set(
                theirs.query(LeanMinHash(seed=1, hashvalues=q.astype(np.uint64), scheme="affine32"))
            )
            for q in queries
        ]
        assert found == expected
        assert sum(map(len, found)) > 20 and set() in found  # copies found, strangers not
        buckets = [bucket for table in ours.tables for bucket in table.values()]
        assert all(len(b) >= 2 for b in buckets if isinstance(b, set))  # else one item, bare
        assert not {b for b in buckets if not isinstance(b, set)} & set(gone)
        assert all(b.isdisjoint(gone) for b in buckets if isinstance(b, set))


def test_the_best_covering_copy_wins_even_when_scores_round_alike() -> None:
    """Two stored articles carry the same two paragraphs of a new one; the one they cover more
    of is the better copy, even when both coverages round to the same four decimals."""
    from synoptic.dedup import Fingerprint

    rng = np.random.default_rng(7)

    def signatures(n: int) -> np.ndarray:
        return rng.integers(0, 2**32, size=(n, 128), dtype=np.uint64).astype(np.uint32)

    shared = signatures(2)
    index = SyndicationIndex()
    # ids in the order the index compares them: the better copy first
    for stored, words in (("a_1", (50000, 47324, 2676)), ("a_2", (50000, 47321, 2679))):
        paragraphs = np.vstack([shared, signatures(1)])
        index.add(stored, Fingerprint(stored, signatures(1)[0], paragraphs, words))
    new = Fingerprint("new", signatures(1)[0], np.vstack([shared, signatures(1)]), (10, 10, 80))
    match = index.match(new)
    assert match is not None and match.kind == "syndicated"
    assert (match.article_id, match.score) == ("a_1", 0.9732)  # 0.97324 against 0.97321
