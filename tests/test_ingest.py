"""Ingest: idempotence, new stories, and bad input that is rejected without losing anything."""

from __future__ import annotations

import codecs
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from synoptic import Engine
from synoptic.extract import Extractor, date_from_url
from synoptic.ingest import decode_text, json_document
from synoptic.model import Document, Rejection, StorySelection
from synoptic.store import Store

from .conftest import QUAKE_A, QUAKE_B


def test_reingest_adds_nothing(engine: Engine, parade_dir: Path) -> None:
    first = engine.ingest([parade_dir])
    again = engine.ingest([parade_dir])
    assert len(first.new) == 3
    assert again.new == [] and len(again.duplicates) == 3
    assert engine.store.count_articles() == 3


def test_restart_continues_with_same_ids(db_url: str, parade_dir: Path, tmp_path: Path) -> None:
    with Engine(db_url) as eng:
        eng.ingest([parade_dir / "000_3a8454ce8e2e82c1.txt"])
        first_story = eng.stories()[0].id
    with Engine(db_url) as eng:  # a new process: state comes back from the store
        report = eng.ingest([parade_dir])
        assert len(report.new) == 2 and len(report.duplicates) == 1
        stories = eng.stories()
        assert [s.id for s in stories] == [first_story]
        assert stories[0].independent_reports == 2


def test_unrelated_articles_open_new_stories(
    engine: Engine, parade_dir: Path, tmp_path: Path
) -> None:
    engine.ingest([parade_dir])
    (tmp_path / "quake_chile.txt").write_text(QUAKE_A)
    (tmp_path / "quake_japan.txt").write_text(QUAKE_B)
    report = engine.ingest([tmp_path / "quake_chile.txt", tmp_path / "quake_japan.txt"])
    assert len(report.new) == 2
    sizes = sorted(len(s.articles) for s in engine.stories())
    assert sizes == [1, 1, 3]


def _bad_inputs(folder: Path) -> dict[str, str]:
    """file name -> a word its rejection reason must contain."""
    (folder / "empty.txt").write_text("")
    (folder / "blob.txt").write_bytes(bytes(range(256)) * 64)
    (folder / "latin1.txt").write_bytes(
        "Caf\xe9 owners protest new rules\n\n".encode("latin-1") * 20
    )
    with (folder / "huge.txt").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # a 50 MB file (sparse, cheap to make)
    (folder / "slides.pdf").write_bytes(b"%PDF-1.4 ...")
    (folder / "short.txt").write_text("Just a headline\n\nAnd one line.")
    (folder / "stub.html").write_text("<html><body><div id='app'></div></body></html>")
    links = "".join(f"<li><a href='/s/{i}'>Section {i} of the site</a></li>" for i in range(40))
    (folder / "menu.html").write_text(f"<html><body><ul>{links}</ul></body></html>")
    (folder / "archived.txt").write_text(
        "Archived page\n\nThese crawls are part of an effort to archive pages as they are "
        "created and archive the pages that they refer to. That way, as the pages that are "
        "referenced are changed or taken from the web, a link to the version that was live "
        "when the page was written will be preserved."
    )
    (folder / "tweet.txt").write_text(
        "Add a location to your Tweets\n\nWhen you tweet with a location, Twitter stores that "
        "location. You can switch location on/off before each Tweet and always have the option "
        "to delete your location history."
    )
    return {
        "archived.txt": "platform's notice",
        "tweet.txt": "platform's notice",
        "menu.html": "index page",
        "stub.html": "only 0 words of text",
        "empty.txt": "empty",
        "blob.txt": "binary",
        "latin1.txt": "UTF-8",
        "huge.txt": "limit",
        "slides.pdf": "unsupported",
        "short.txt": "words",
    }


def test_bad_input_is_rejected_with_reasons_and_good_input_lands(
    engine: Engine, tmp_path: Path, parade_dir: Path
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    expected = _bad_inputs(batch)
    (batch / "good.txt").write_text(QUAKE_A)
    lines = [
        json.dumps(
            {
                "id": "ext-1",
                "title": "Quake in Japan",
                "text": QUAKE_B,
                "outlet": "Wire X",
                "topic": "quakes",
            }
        ),
        '{"id": "ext-2", "title": "broken", "text": "a string cut\tshort',
        json.dumps({"id": "ext-3", "title": "no text"}),
        json.dumps({"id": "ext-4", "text": QUAKE_A, "published": "last Tuesday"}),
    ]
    (batch / "dump.jsonl").write_text("\n".join(lines) + "\n")
    report = engine.ingest([batch])

    reasons = {r.origin: r.reason for r in report.rejected}
    for name, word in expected.items():
        assert word in reasons[str(batch / name)], (name, reasons.get(str(batch / name)))
    # (the parser's "Invalid control character at" read "... at at column 57")
    assert reasons[f"{batch / 'dump.jsonl'}:2"] == (
        "invalid JSON: Invalid control character at column 57"
    )
    assert "no 'text' or 'html'" in reasons[f"{batch / 'dump.jsonl'}:3"]
    assert "ISO 8601" in reasons[f"{batch / 'dump.jsonl'}:4"]
    assert len(report.new) == 2  # good.txt and dump.jsonl line 1

    stored = {a.source_id: a for s in engine.stories() for a in s.articles}
    assert stored["ext-1"].outlet == "Wire X"
    assert stored["ext-1"].extra == {"topic": "quakes"}  # unknown fields are kept
    recorded = {(r["origin"], r["reason"]) for r in engine.rejections()}
    assert {(r.origin, r.reason) for r in report.rejected} <= recorded

    # the same batch again: nothing new, rejections counted, not duplicated
    again = engine.ingest([batch])
    assert again.new == [] and len(again.duplicates) == 2
    assert len(engine.rejections()) == len(recorded)
    assert all(r["count"] == 2 for r in engine.rejections())


def test_missing_path_and_stdin(engine: Engine, tmp_path: Path) -> None:
    import io

    report = engine.ingest([tmp_path / "nope.txt"])
    assert "no such file" in report.rejected[0].reason
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    (empty / ".git" / "HEAD").write_text("ref: refs/heads/main")
    report = engine.ingest([empty])  # (it said "0 new, 0 duplicates, 0 rejected", nothing else)
    assert [r.origin for r in report.rejected] == [str(empty)]
    assert "holds no files to read" in report.rejected[0].reason
    stream = io.BytesIO((json.dumps({"title": "Quake", "text": QUAKE_B}) + "\nnot json\n").encode())
    report = engine.ingest(["-"], stdin=stream)
    assert len(report.new) == 1
    assert report.rejected[0].origin == "<stdin>:2"


def test_sidecar_metadata(engine: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "docs"
    tmp_path.mkdir()
    (tmp_path / "a.txt").write_text(QUAKE_A)
    (tmp_path / "a.meta.json").write_text(
        json.dumps(
            {
                "url": "https://example.org/quake",
                "outlet": "Example Times",
                "published": "2024-05-01T08:00:00+02:00",
            }
        )
    )
    report = engine.ingest([tmp_path])
    assert len(report.new) == 1 and not report.rejected
    article = engine.article(report.new[0])
    assert article.outlet == "Example Times" and not article.outlet_inferred
    assert article.url == "https://example.org/quake"
    assert article.published is not None and article.published.utcoffset() is not None
    assert article.published == datetime(2024, 5, 1, 6, 0, tzinfo=UTC)  # same instant, kept in UTC


def test_a_date_in_the_url_is_the_publication_date_when_none_is_given() -> None:
    extractor = Extractor()

    def published(url: str, **meta: str) -> tuple[datetime | None, bool]:
        article = extractor.extract(Document("t", "text", QUAKE_A, {"url": url, **meta}))
        return article.published, article.published_inferred

    may_3 = datetime(2013, 5, 3, tzinfo=UTC)
    assert published("http://articles.example.com/2013/may/03/local/quake") == (may_3, True)
    assert published("https://example.com/2013-05-03/world/quake.html") == (may_3, True)
    assert published("https://example.org/us-quake-idUSBRE9710UQ20130503") == (may_3, True)
    assert published("https://example.net/2013/05/quake-month-only/") == (None, False)
    assert published("https://example.net/news/20131341/quake") == (None, False)  # no such day
    assert published("https://example.net/2099/01/02/quake") == (None, False)  # in the future
    given = published("https://example.com/2013/05/03/quake", published="2014-01-02")
    assert given == (datetime(2014, 1, 2, tzinfo=UTC), False)  # a given date wins


@given(st.text(alphabet="0123456789/-_.:?=abcmayjunsept", max_size=80))
def test_a_url_date_is_a_real_past_day_or_none(path: str) -> None:
    found = date_from_url("https://example.org/" + path)
    assert found is None or (found.year >= 1990 and found <= datetime.now(UTC))


def test_html_is_extracted_with_trafilatura(engine: Engine, tmp_path: Path) -> None:
    paragraphs = "".join(f"<p>{p}</p>" for p in QUAKE_B.split("\n\n")[1:])
    html = (
        "<html><head><title>Deadly quake hits Japan</title>"
        '<meta property="og:site_name" content="Example News">'
        '<meta property="article:published_time" content="2024-01-06T09:00:00Z"></head>'
        "<body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>Deadly quake hits Japan</h1>{paragraphs}</article>"
        "<footer>Copyright Example News. All rights reserved.</footer></body></html>"
    )
    (tmp_path / "page.html").write_text(html)
    report = engine.ingest([tmp_path / "page.html"])
    assert not report.rejected
    article = engine.article(report.new[0])
    assert article.title == "Deadly quake hits Japan"
    assert article.outlet == "Example News"
    assert "Noto peninsula" in article.text and "Copyright" not in article.text
    assert article.published is not None and article.published.year == 2024


def test_crash_mid_write_leaves_nothing_half_written(db_url: str, tmp_path: Path) -> None:
    tmp_path = tmp_path / "docs"
    tmp_path.mkdir()
    (tmp_path / "a.txt").write_text(QUAKE_A)
    (tmp_path / "b.txt").write_text(QUAKE_B)
    calls = {"n": 0}

    def crash_after_memberships(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MEMBERSHIPS"):
            calls["n"] += 1
            if calls["n"] == 2:  # the second write dies after its rows were inserted
                raise RuntimeError("simulated crash")

    with Engine(db_url) as eng:
        event.listen(eng.store.engine, "after_cursor_execute", crash_after_memberships)
        eng.ingest([tmp_path / "a.txt"])  # its own batch: lands
        with pytest.raises(RuntimeError):
            eng.ingest([tmp_path / "b.txt"])  # dies inside the write
        assert eng.store.count_articles() == 1
    with Engine(db_url) as eng:
        assert eng.store.count_articles() == 1
        assert sum(len(s.articles) for s in eng.stories()) == 1
        report = eng.ingest([tmp_path])
        assert len(report.new) == 1 and len(report.duplicates) == 1
        assert eng.store.count_articles() == 2
        with eng.store.engine.connect() as conn:
            from sqlalchemy import func, select

            from synoptic.store import fingerprints, memberships, syndication

            for table in (fingerprints, memberships, syndication):
                assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 2


def test_worker_processes_give_the_same_stories(tmp_path: Path, parade_dir: Path) -> None:
    from synoptic import Settings

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "blob.bin").write_bytes(b"\x00\x01\x02" * 2000)
    results = []
    for workers in (1, 2):
        url = f"sqlite:///{tmp_path / f'w{workers}.db'}"
        with Engine(settings=Settings(db_url=url, workers=workers)) as eng:
            report = eng.ingest([parade_dir, bad])
            stories = sorted(sorted(a.id for a in s.articles) for s in eng.stories())
            results.append((report.new, [r.reason for r in report.rejected], stories))
    assert results[0] == results[1]
    new, rejected, stories = results[1]
    assert len(new) == 3 and len(rejected) == 1 and len(stories) == 1
    url = f"sqlite:///{tmp_path / 'w2.db'}"
    eng = Engine(settings=Settings(db_url=url, workers=2))
    again = eng.ingest([parade_dir])  # the engine's workers serve every ingest until close()
    assert len(again.duplicates) == 3
    assert eng._workers is not None and eng._workers._pool is not None
    eng.close()
    assert eng._workers._pool is None


def test_large_inputs_get_workers_unless_told(
    tmp_path: Path, parade_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`synoptic ingest` of many articles ran in one process unless --workers was given,
    though one worker process already keeps up with the ingesting one (1.5-1.7x on 5,000
    articles here). It now starts 2 for inputs of AUTO_WORKERS_AT or more counted articles,
    on 2 cores or more; --workers says otherwise; and where worker processes cannot start,
    ingest goes on in one process."""
    from typer.testing import CliRunner

    import synoptic.cli as cli
    import synoptic.prepare as prepare

    started: list[int] = []
    real_workers = prepare.Workers

    class Counted(real_workers):  # type: ignore[misc,valid-type]
        def __init__(self, n: int) -> None:
            started.append(n)
            super().__init__(n)

    monkeypatch.setattr("synoptic.engine.Workers", Counted)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cli, "AUTO_WORKERS_AT", 3)  # the example's three articles
    runner = CliRunner()

    def ingest(*options: str) -> None:
        db = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
        result = runner.invoke(cli.app, ["ingest", str(parade_dir), "--db", db, *options])
        assert result.exit_code == 0 and "3 new" in result.output, result.output

    ingest()
    assert started == [2]
    ingest("--workers", "1")
    assert started == [2]  # (one process: no Workers)
    monkeypatch.setattr(cli, "AUTO_WORKERS_AT", 4)
    ingest()
    assert started == [2]
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(cli, "AUTO_WORKERS_AT", 3)
    ingest()
    assert started == [2]
    ingest("--workers", "3")
    assert started == [2, 3]

    def no_processes(method: str) -> None:
        raise OSError("no /dev/shm here")

    monkeypatch.setattr(prepare.multiprocessing, "get_context", no_processes)
    ingest("--workers", "2")  # (prepared in this process, with a warning)
    assert started == [2, 3, 2]


def test_restart_reads_only_ids_stored_since_the_saved_filter(
    db_url: str, parade_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closing engine saves its filter of article ids with the sequence number it loaded at;
    the next one streams only newer ids and still knows the old ones, also when another
    engine stored articles in between."""
    with Engine(db_url) as eng:
        eng.ingest([parade_dir])
    with Engine(db_url) as eng:  # loads (streams all 3 ids: the saved filter covers seq <= 0)
        eng.ingest([parade_dir])
    streamed: list[str] = []
    original = Store.article_ids

    def recording(self: Store, after_seq: int = 0) -> Iterator[str]:
        for article_id in original(self, after_seq):
            streamed.append(article_id)
            yield article_id

    monkeypatch.setattr(Store, "article_ids", recording)
    first = Engine(db_url)
    first._load()
    assert streamed == []  # all three came from the saved filter
    (tmp_path / "quake.txt").write_text(QUAKE_A)
    with Engine(db_url) as other:  # another engine stores an article meanwhile
        assert len(other.ingest([tmp_path / "quake.txt"]).new) == 1
    first.close()  # saves a filter without that article, marked with the older sequence number
    with Engine(db_url) as eng:
        report = eng.ingest([parade_dir, tmp_path / "quake.txt"])
        assert report.new == [] and len(report.duplicates) == 4
        assert len(streamed) == 1  # the quake article, stored after the saved filter's mark


def test_utf16_with_a_byte_order_mark_is_text_and_binary_is_not() -> None:
    text = "Café owners protest new rules\n\nThe council met on Monday."
    for encoding in ("utf-16", "utf-16-be", "utf-16-le"):
        data = text.encode(encoding)
        if encoding != "utf-16":  # the explicit-endian codecs write no mark
            data = (codecs.BOM_UTF16_BE if encoding.endswith("be") else codecs.BOM_UTF16_LE) + data
        assert decode_text(data, "x.txt") == text, encoding
    rejected = decode_text(codecs.BOM_UTF16_LE + b"\x01\x00\x02\x00" * 100, "x.txt")
    assert isinstance(rejected, Rejection) and "binary" in rejected.reason
    rejected = decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.png")
    assert isinstance(rejected, Rejection) and "binary" in rejected.reason


FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Quake desk</title>
<item><title>Strong quake hits Japan</title><link>https://quake.example/2025/03/03/japan</link>
<pubDate>Mon, 03 Mar 2025 10:00:00 GMT</pubDate><description><![CDATA[{body}]]></description></item>
<item><title>Teaser</title><link>https://quake.example/teaser</link><description>More soon.</description></item>
</channel></rss>"""


def test_a_saved_feed_is_read_offline_from_its_entries_own_text(
    engine: Engine, tmp_path: Path
) -> None:
    body = "".join(f"<p>{p}</p>" for p in QUAKE_A.split("\n\n")[1:])
    (tmp_path / "desk.rss").write_text(FEED.format(body=body))
    (tmp_path / "broken.xml").write_text("<rss><channel><item><title>Cut off")
    (tmp_path / "feed.json").write_text(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "items": [
                    {"url": "https://quake.example/b", "title": "Quake", "content_text": QUAKE_B}
                ],
            }
        )
    )
    report = engine.ingest([tmp_path])
    assert len(report.new) == 2  # the RSS item with a text, the JSON Feed item
    stored = {a.url: a for s in engine.stories() for a in s.articles}
    japan = stored["https://quake.example/2025/03/03/japan"]
    assert japan.title == "Strong quake hits Japan"
    assert japan.published == datetime(2025, 3, 3, 10, tzinfo=UTC)
    assert japan.extra["text_from"] == "feed entry"
    assert "https://quake.example/b" in stored
    reasons = {r.origin: r.reason for r in report.rejected}
    assert "words of its own" in reasons["https://quake.example/teaser"]
    assert "sources add" in reasons["https://quake.example/teaser"]  # says how to get the page
    assert "malformed feed" in reasons[str(tmp_path / "broken.xml")]


def test_ingest_runs_with_one_blas_thread_and_gives_the_others_back(tmp_path, monkeypatch) -> None:
    """Idle OpenBLAS threads spin on the cores worker processes need: while an ingest runs the
    process has one BLAS thread, and afterwards as many as before."""
    from threadpoolctl import threadpool_info

    import synoptic.engine as engine_module

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    if not before or max(before) < 2:
        pytest.skip("no multi-threaded BLAS here: nothing to limit")
    during: list[list[int]] = []
    add = engine_module.Engine._add

    def spy(self: Engine, item: object, **kw: bool) -> object:
        during.append(blas_threads())
        return add(self, item, **kw)

    monkeypatch.setattr(engine_module.Engine, "_add", spy)
    with Engine(f"sqlite:///{tmp_path / 'b.db'}") as engine:
        engine.ingest_items([Document("quake.txt", "text", QUAKE_A)])
    assert during and all(threads == [1] * len(before) for threads in during)
    assert blas_threads() == before


def test_nul_characters_are_dropped_and_the_batch_lands(engine: Engine) -> None:
    """A JSON ``\\u0000`` (or a NUL from a mis-decoded file) is never text, and PostgreSQL
    refuses it (the whole batch would fail): dropped from the text and every metadata string;
    a lone surrogate (JSON ``\\ud800``), which no store can encode, becomes U+FFFD. The same
    test runs on a real PostgreSQL server in test_postgres.py."""
    nul_article_lands(engine)


def test_a_file_name_that_is_not_utf8_is_shown_and_stored(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(folder)
    with open(raw + b"/caf\xe9-good.txt", "wb") as f:
        f.write(QUAKE_A.encode())
    with open(raw + b"/caf\xe9-binary.txt", "wb") as f:
        f.write(bytes(range(256)) * 8)
    report = engine.ingest([folder])
    assert len(report.new) == 1 and len(report.rejected) == 1
    assert "caf\ufffd-binary.txt" in report.rejected[0].origin
    assert "caf\ufffd-good.txt" in engine.article(report.new[0]).origin
    assert "caf\ufffd-binary.txt" in engine.rejections()[0]["origin"]


def nul_article_lands(engine: Engine) -> None:
    title, body = QUAKE_A.strip().split("\n\n", 1)
    body += f"\n\nRef {uuid.uuid4()}."  # (new to a store that other tests wrote to)
    dirty = {
        "title": "Storm\u0000 hits the coast",
        "text": "A storm hit the coast on Monday,\u0000 killing two \ud800people. " * 8,
        "outlet": "Coast\u0000 Times",
        "authors": ["A. Writer\u0000"],
        "section": "we\u0000ather",
    }
    report = engine.ingest_items(
        [json_document(dirty, "dirty.json"), json_document({"title": title, "text": body}, "ok")]
    )
    assert len(report.new) == 2 and not report.rejected
    stored = engine.article(report.new[0])
    fields = [
        stored.title,
        stored.text,
        stored.outlet,
        *stored.authors,
        *map(str, stored.extra.values()),
    ]
    assert not any("\x00" in f for f in fields)
    assert stored.title == "Storm hits the coast" and stored.extra["section"] == "weather"
    assert "two \ufffdpeople" in stored.text  # a lone surrogate (no store can encode it)


def test_fields_of_the_wrong_type_are_rejected_by_name(engine: Engine, tmp_path: Path) -> None:
    """A JSON article whose documented field has another type (a number for a title, a list
    for an outlet, a language that is not a language tag) is rejected naming the field; it
    crashed the whole ingest before (or, on PostgreSQL, failed the batch); the rest lands.
    Also run on a real PostgreSQL server (test_postgres.py)."""
    wrong_types_are_rejected(engine, tmp_path)


def wrong_types_are_rejected(engine: Engine, tmp_path: Path) -> None:
    body = (
        f"Floods cut off three villages in the valley on Sunday after heavy rain ({uuid.uuid4()})."
    )
    rows = [
        {"title": 123, "text": body + " 1"},
        {"title": "t", "text": body + " 2", "outlet": ["a", "b"]},
        {"title": "t", "text": body + " 3", "language": "English as spoken in the United States"},
        {"title": "t", "text": body + " 4", "authors": [1, 2]},
        {"title": "t", "text": ["not", "a", "string"]},
        {"title": "t", "text": body + " 5", "id": {"a": 1}},
        {"title": "Floods", "text": body, "language": "pt-BR", "id": 7, "authors": "A. B"},
    ]
    path = tmp_path / "types.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = engine.ingest([path])
    assert len(report.new) == 1 and engine.article(report.new[0]).language == "pt-BR"
    reasons = [r.reason for r in report.rejected]
    for name in ("'title'", "'outlet'", "'language'", "'authors'", "'text'", "'id'"):
        assert sum(name in reason for reason in reasons) == 1, (name, reasons)


def test_a_document_that_trips_a_bug_is_rejected_and_the_others_land(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Extractor.extract

    def buggy(self: Extractor, doc: Document):
        if doc.origin == "trips":
            raise IndexError("list index out of range")
        return real(self, doc)

    monkeypatch.setattr(Extractor, "extract", buggy)
    title, body = QUAKE_B.strip().split("\n\n", 1)
    report = engine.ingest_items(
        [
            json_document({"title": "x", "text": body}, "trips"),
            json_document({"title": title, "text": body}, "ok"),
        ]
    )
    assert len(report.new) == 1
    assert report.rejected[0].origin == "trips" and "IndexError" in report.rejected[0].reason
    assert "please report" in engine.rejections()[0]["reason"]


def test_a_json_feed_with_fields_of_other_types_is_read(engine: Engine, tmp_path: Path) -> None:
    """A saved JSON Feed whose items have numbers, lists or NULs where strings belong: the
    item with usable text lands, the others are skipped or rejected; nothing crashes (a
    number for a URL crashed the watcher's whole poll before)."""
    title, body = QUAKE_B.strip().split("\n\n", 1)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "odd",
        "items": [
            {"id": "1", "url": 5, "title": ["x"], "content_text": 7, "date_published": 3},
            {
                "id": "2",
                "url": "https://example.org/a\u0000",
                "title": title,
                "content_text": body,
                "authors": [{"name": 1}, {"name": "A. Writer"}],
                "date_published": "2024-01-01",
            },
            "not an item",
        ],
    }
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(feed))
    report = engine.ingest([path])
    assert len(report.new) == 1
    article = engine.article(report.new[0])
    assert article.url == "https://example.org/a" and article.authors == ("A. Writer",)


def _stream(path: Path, n: int) -> None:
    """``n`` distinct JSONL articles in stories of ten (each story its own words and names)."""
    rng = random.Random(5)
    common = sorted(set(re.findall(r"[a-z]{4,}", (QUAKE_A + QUAKE_B).lower())))
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            story = i // 10
            own = [f"{w}{story}" for w in ("Karsk", "Velmor", "Ostrand", "Penwick")]
            vocab = random.Random(story).sample(common, 40) + own
            sentences = [
                " ".join(rng.choice(vocab) for _ in range(12)).capitalize() + "." for _ in range(12)
            ]
            record = {
                "title": f"{own[0]} and {own[1]}: " + " ".join(rng.choice(vocab) for _ in range(5)),
                "text": "\n\n".join(" ".join(sentences[k : k + 3]) for k in range(0, 12, 3)),
                "url": f"https://news.example/{story}/{i}",
            }
            out.write(json.dumps(record) + "\n")


def test_ctrl_c_mid_ingest_says_what_stays_and_the_rerun_goes_on(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) ended `synoptic ingest --workers 2`
    with exit code 130, not a word from it and a traceback from each worker; it now says
    that what was stored stays and that running the command again goes on, and nothing
    else."""
    stream = tmp_path / "stream.jsonl"
    _stream(stream, 2000)
    db = tmp_path / "int.db"
    # (Ctrl-C's own handler: a process started in the background, as CI may run this suite,
    # inherits SIGINT ignored, and a terminal's user never has it so)
    start = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    command = [sys.executable, "-c", f"{start}; from synoptic.cli import main; main()", "ingest"]
    command += ["--db", f"sqlite:///{db}", str(stream)]
    ingest = subprocess.Popen(
        [*command, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's command has
    )

    def stored() -> int:
        try:
            conn = sqlite3.connect(db, timeout=30)
            try:
                return int(conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.OperationalError:  # (not created yet)
            return 0

    deadline = time.monotonic() + 120
    while stored() == 0 and time.monotonic() < deadline:
        assert ingest.poll() is None
        time.sleep(0.02)
    os.killpg(ingest.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 130, (out, err)
    assert "interrupted: the batches stored before stay" in " ".join(err.split())
    assert "Traceback" not in err, err
    kept = stored()
    assert 0 < kept < 2000
    again = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
    report = json.loads(again.stdout)
    assert len(report["duplicates"]) == kept and len(report["new"]) == 2000 - kept


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_worker_processes_end_when_the_ingest_is_killed(tmp_path: Path) -> None:
    """A killed `synoptic ingest --workers 2` left its worker processes (~165 MB each), their
    forkserver and the resource tracker waiting for work forever."""
    stream = tmp_path / "stream.jsonl"
    _stream(stream, 2000)
    command = [sys.executable, "-c", "from synoptic.cli import main; main()", "ingest"]
    ingest = subprocess.Popen(
        [*command, "--db", f"sqlite:///{tmp_path / 'w.db'}", str(stream), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    helpers: set[int] = set()
    while len(helpers) < 4 and time.monotonic() < deadline:  # tracker, forkserver, 2 workers
        assert ingest.poll() is None
        helpers = _descendants(ingest.pid)
        time.sleep(0.05)
    assert len(helpers) >= 4, helpers
    ingest.send_signal(signal.SIGKILL)
    ingest.wait()
    deadline = time.monotonic() + 20

    def running(pid: int) -> bool:  # (an ended process not yet reaped is a zombie, "Z")
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    while (alive := {p for p in helpers if running(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in alive]


KILL_TABLES = ("articles", "memberships", "fingerprints", "syndication")


def killed_ingests_lose_nothing(
    url: str, tmp_path: Path, intact: Callable[[], None] = lambda: None
) -> None:
    """A real ``synoptic ingest`` process killed (SIGKILL, no chance to clean up) three times
    at different points: whatever a killed run wrote is whole (every stored article has its
    story, fingerprint and syndication rows), and the run that finishes stores every article
    exactly once; ``intact`` checks the store after each kill. ``url`` names an empty store
    (shared with the PostgreSQL tests)."""
    from sqlalchemy import create_engine, inspect, text

    n = 2000
    stream = tmp_path / "stream.jsonl"
    _stream(stream, n)
    command = [
        sys.executable,
        "-c",
        "from synoptic.cli import main; main()",
        "ingest",
        "--db",
        url,
        str(stream),
    ]
    reader = create_engine(url)

    def counts() -> dict[str, int]:
        with reader.connect() as conn:
            names = set(inspect(conn).get_table_names())
            return {
                t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in KILL_TABLES
                if t in names
            }

    try:
        stored = 0
        for _ in range(3):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 120
            while counts().get("articles", 0) <= stored and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            process.wait()
            intact()
            after = counts()
            assert stored < after["articles"] < n  # it had written more; killed before the end
            assert set(after.values()) == {after["articles"]}, after  # every batch whole
            stored = after["articles"]

        finished = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
        report = json.loads(finished.stdout)
        assert len(report["duplicates"]) >= stored and not report["rejected"]
        assert len(report["new"]) + len(report["duplicates"]) == n
        assert counts() == dict.fromkeys(KILL_TABLES, n)
        with reader.connect() as conn:
            for query in (
                "SELECT COUNT(DISTINCT article_id) FROM memberships",
                "SELECT COUNT(DISTINCT url) FROM articles",
            ):
                assert conn.execute(text(query)).scalar_one() == n
    finally:
        reader.dispose()


def a_waiting_writer_goes_between_batches(url: str, tmp_path: Path) -> None:
    """A long ``synoptic ingest`` (another process) held the writer lock until its end, so a
    feed watcher, a merge or the web server's ingest waited for all of it; now a writer that
    waits goes in between two of its batches, and the long ingest goes on from the store as
    that writer left it. ``url`` names an empty store."""
    from sqlalchemy import create_engine, text

    n = 2000
    stream = tmp_path / "stream.jsonl"
    _stream(stream, n)
    command = [sys.executable, "-c", "from synoptic.cli import main; main()", "ingest"]
    long_ingest = subprocess.Popen(  # (one process: the hand-over's timing as measured)
        [*command, "--db", url, str(stream), "--json", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = create_engine(url)

    def stored() -> int:
        with reader.connect() as conn:
            try:
                return int(conn.execute(text("SELECT COUNT(*) FROM articles")).scalar_one())
            except Exception:  # (the table is not there yet)
                return 0

    try:
        deadline = time.monotonic() + 120
        while stored() == 0 and time.monotonic() < deadline:
            assert long_ingest.poll() is None
            time.sleep(0.02)
        with Engine(url) as eng:  # waits for the lock, as a watcher's ingest does
            report = eng.ingest_items([json_document({"text": QUAKE_A}, "quake")])
            assert len(report.new) == 1
            assert long_ingest.poll() is None and stored() < n  # in before the long one ended
        out, err = long_ingest.communicate(timeout=300)
        assert long_ingest.returncode == 0, err
        assert len(json.loads(out)["new"]) == n
        with reader.connect() as conn:
            for query in (
                "SELECT COUNT(*) FROM articles",
                "SELECT COUNT(DISTINCT article_id) FROM memberships",
                "SELECT COUNT(*) FROM memberships",
            ):
                assert conn.execute(text(query)).scalar_one() == n + 1
    finally:
        if long_ingest.poll() is None:
            long_ingest.kill()
            long_ingest.communicate()
        reader.dispose()


def test_a_turn_lasts_a_second_and_five_reloads_before_it_is_handed_over(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing over after every batch made two long imports reload each other's writes every
    200 articles (seconds each on a large store)."""
    asked: list[bool] = []
    monkeypatch.setattr(engine.store, "let_waiting_writers_in", lambda: asked.append(True))
    engine._load_seconds = 0.5  # a turn then lasts at least 2.5 s
    engine._turn_started = time.monotonic() - 2.0
    engine._let_waiting_writers_in()
    assert asked == []
    engine._turn_started -= 1.0
    engine._let_waiting_writers_in()
    assert asked == [True]


def test_a_waiting_writer_goes_between_the_batches_of_a_long_ingest(tmp_path: Path) -> None:
    a_waiting_writer_goes_between_batches(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)


def test_an_ingest_killed_mid_run_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """On SQLite the file also passes SQLite's own integrity check after every kill."""
    db = tmp_path / "killed.db"

    def intact() -> None:
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()

    killed_ingests_lose_nothing(f"sqlite:///{db}", tmp_path, intact)


def test_the_progress_total_is_what_the_reader_will_yield(tmp_path: Path, parade_dir: Path) -> None:
    """A 100,000-line import showed a count with no total (no share done, no time left): the
    total is now known ahead for files, folders and JSONL, and exactly what read() yields."""
    from synoptic.ingest import Reader

    reader = Reader(max_bytes=10_000)
    dump = tmp_path / "dump.jsonl"
    lines = [json.dumps({"title": f"t{n}", "text": QUAKE_A}) for n in range(5)]
    dump.write_text("\n".join([*lines[:2], "", "   ", "{broken", *lines[2:]]) + "\n")
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"title": "t", "text": "x " * 10_000}) + "\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    cases = [
        [parade_dir],
        [dump, big],
        [tmp_path / "empty", tmp_path / "missing.txt", tmp_path / "notes.pdf"],
        [parade_dir, dump],
    ]
    for sources in cases:
        assert reader.expected(sources) == len(list(reader.read(sources))), sources
    feed = tmp_path / "saved.rss"
    feed.write_text("<rss/>")
    for unknown in (["-"], ["https://example.org/a"], [dump, feed], [tmp_path / "a.json"]):
        assert reader.expected(unknown) is None


def test_an_oversized_jsonl_line_is_skipped_without_being_held_whole() -> None:
    """A JSONL line over the limit was read whole before it was rejected: a 300 MB line took
    700 MB of memory (and a dump with no line breaks, all of it). It is now skipped a
    megabyte at a time; its size is still told, and the lines after it still land."""
    import io

    from synoptic.ingest import Reader

    class Reads(io.BytesIO):
        largest = 0

        def readline(self, size: int | None = -1) -> bytes:
            line = super().readline(size)
            Reads.largest = max(Reads.largest, len(line))
            return line

        def __next__(self) -> bytes:  # (iterating reads whole lines)
            line = self.readline()
            if not line:
                raise StopIteration
            return line

    good = json.dumps({"title": "Quake", "text": QUAKE_A}).encode()
    huge = b'{"title": "big", "text": "' + b"x" * 5_000_000 + b'"}'
    stream = Reads(b"\n".join([good, huge, good.replace(b"Quake", b"Again")]) + b"\n")
    items = list(Reader(max_bytes=100_000)._jsonl_lines(stream, "dump.jsonl"))
    assert [type(i).__name__ for i in items] == ["Document", "Rejection", "Document"]
    assert items[1].origin == "dump.jsonl:2" and "line is 4.8 MB" in items[1].reason
    assert Reads.largest <= 1 << 20  # never the whole line
    # the same from standard input (its first byte read ahead to tell JSONL from text)
    Reads.largest = 0
    stream.seek(0)
    items = list(Reader(max_bytes=100_000).read_stream(stream, "<stdin>"))
    assert [type(i).__name__ for i in items] == ["Document", "Rejection", "Document"]
    assert Reads.largest <= 1 << 20


def test_ingesting_the_folder_that_holds_the_store_skips_the_stores_files(
    tmp_path: Path, parade_dir: Path
) -> None:
    """`synoptic ingest .` where synoptic.db lies (its default place) rejected the database,
    its journal and its lock, and so exited 1, at every run."""
    import shutil

    from typer.testing import CliRunner

    from synoptic.cli import app

    for f in parade_dir.iterdir():
        shutil.copy(f, tmp_path)
    db = f"sqlite:///{tmp_path / 'synoptic.db'}"
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", str(tmp_path), "--db", db])
    again = runner.invoke(app, ["ingest", str(tmp_path), "--db", db])
    assert first.exit_code == 0 and "3 new, 0 duplicates, 0 rejected" in first.output
    assert again.exit_code == 0 and "0 new, 3 duplicates, 0 rejected" in again.output
    assert (tmp_path / "synoptic.db.lock").exists()  # (there to be skipped)


def test_a_thread_waiting_to_write_goes_between_the_batches_of_another_threads_ingest(
    tmp_path: Path, db_url: str
) -> None:
    """The web server's writes run in threads of one engine: a post or a correction waited
    for the whole of another thread's long ingest; now it goes in between two batches, and
    the ingest goes on from the state it leaves (a merge: reloaded)."""
    import threading

    n = 2000
    stream = tmp_path / "stream.jsonl"
    _stream(stream, n)
    (tmp_path / "quake.txt").write_text(QUAKE_A)
    finished: dict[str, float] = {}
    with Engine(db_url) as engine:
        engine.ingest([tmp_path / "quake.txt"])
        quake = engine.story_list()[0].id

        def long_ingest() -> None:
            finished["report"] = len(engine.ingest([stream]).new)
            finished["long"] = time.monotonic()

        thread = threading.Thread(target=long_ingest)
        thread.start()
        deadline = time.monotonic() + 120
        while engine.store.count_articles() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # (its first batch is stored)
        other = next(s.id for s in engine.story_page(StorySelection(limit=5))[1] if s.id != quake)
        engine.merge(quake, other)  # waits for the turn, as a web correction does
        finished["merge"] = time.monotonic()
        assert engine.store.count_articles() < n + 1  # in before the long ingest ended
        thread.join(timeout=300)
        assert finished["report"] == n and finished["merge"] < finished["long"]
        assert engine.store.count_articles() == n + 1
        assert engine.story(other).id == quake  # the merge stands
        stories = engine.story_list()
        assert sum(len(s.articles) for s in stories) == n + 1
