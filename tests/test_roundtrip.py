"""Property tests: Article -> store -> Article; fingerprint -> bytes -> fingerprint."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synoptic.dedup import Fingerprint, SyndicationIndex
from synoptic.model import Article, Removed, article_id
from synoptic.store import Store, article_row, articles, now

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=200,
)
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
dates = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


@st.composite
def stored_articles(draw: st.DrawFn) -> Article:
    title, body = draw(text), draw(text)
    url = draw(st.none() | text)
    return Article(
        id=article_id(title, body, url),
        title=title,
        text=body,
        origin=draw(text),
        source_id=draw(st.none() | text),
        url=url,
        outlet=draw(st.none() | text),
        outlet_inferred=draw(st.booleans()),
        published=draw(st.none() | dates),
        published_inferred=draw(st.booleans()),
        authors=tuple(draw(st.lists(text, max_size=3))),
        language=draw(st.none() | st.sampled_from(["en", "de", "uk"])),
        wire=draw(st.none() | st.sampled_from(["Reuters", "AFP"])),
        removed=tuple(Removed(draw(text), draw(text)) for _ in range(draw(st.integers(0, 3)))),
        extra=draw(st.dictionaries(text, json_values, max_size=3)),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(article=stored_articles())
def test_article_store_round_trip(tmp_path_factory, article: Article) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('rt') / 'rt.db'}")
    try:
        with store.transaction() as conn:
            conn.execute(articles.insert().values(seq=1, ingested_at=now(), **article_row(article)))
        back = store.article(article.id)
    finally:
        store.close()
    expected_published = article.published.astimezone(UTC) if article.published else None
    assert back.published == expected_published  # the same instant
    assert back == dataclasses.replace(article, published=expected_published)


@settings(max_examples=30, deadline=None)
@given(
    paragraphs=st.lists(
        st.lists(
            st.sampled_from(
                ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
            ),
            min_size=8,
            max_size=30,
        ).map(" ".join),
        min_size=1,
        max_size=5,
    )
)
def test_fingerprint_bytes_round_trip(paragraphs: list[str]) -> None:
    index = SyndicationIndex()
    body = "\n\n".join(paragraphs)
    fp = index.fingerprint(Article(id="a_x", title="t", text=body))
    doc, paras = fp.to_bytes()
    back = Fingerprint.from_bytes(fp.content_hash, doc, paras, list(fp.paragraph_words))
    assert back.doc.dtype == fp.doc.dtype and (back.doc == fp.doc).all()
    assert back.paragraphs.shape == fp.paragraphs.shape == (len(fp.paragraph_words), len(fp.doc))
    assert (back.paragraphs == fp.paragraphs).all()
    assert back.paragraph_words == fp.paragraph_words
