"""Store: schema versions and migrations, newer schemas refused, Atom export."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from synoptic import Engine
from synoptic.cli import app
from synoptic.dedup import Fingerprinter
from synoptic.errors import StoreError
from synoptic.model import Document, StorySelection
from synoptic.store import SCHEMA_VERSION, Store

from .conftest import QUAKE_A


def test_version_1_store_is_migrated(db_url: str, parade_dir: Path) -> None:
    with Engine(db_url) as eng:
        eng.ingest([parade_dir])
    raw = create_engine(db_url)
    with raw.begin() as conn:  # make it look like a version-1 store: no full-text table
        conn.execute(text("DROP TABLE articles_fts"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    raw.dispose()
    with Engine(db_url) as eng:
        assert (
            eng.story_page(StorySelection(search=("Fico",)))[0] == 1
        )  # the migration filled the index
    raw = create_engine(db_url)
    with raw.connect() as conn:
        assert conn.execute(
            text("SELECT value FROM meta WHERE key='schema_version'")
        ).scalar() == str(SCHEMA_VERSION)
    raw.dispose()


def test_newer_schema_is_refused(db_url: str) -> None:
    Engine(db_url).close()
    raw = create_engine(db_url)
    with raw.begin() as conn:
        conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    raw.dispose()
    with pytest.raises(StoreError, match="upgrade synoptic"):
        Engine(db_url)


def test_a_database_that_is_not_a_synoptic_store_is_refused_with_what_to_do(
    tmp_path: Path, parade_dir: Path
) -> None:
    """A --db that names another application's database, a file that is not a database, or a
    damaged store: each gets a message saying what it is and what to do (exit 2), and nothing
    is written into another application's database (it got synoptic's tables added)."""
    runner = CliRunner()

    def said(result: Any) -> str:  # (the terminal's width wraps the message anywhere)
        return " ".join(result.output.split())

    def stories(path: Path) -> Any:
        return runner.invoke(app, ["stories", "--db", f"sqlite:///{path}"])

    other = tmp_path / "notes.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.close()
    for command in (["stories"], ["ingest", str(parade_dir)]):
        result = runner.invoke(app, [*command, "--db", f"sqlite:///{other}"])
        assert result.exit_code == 2, result.output
        assert "not a synoptic store" in said(result) and "(notes)" in said(result)
    with sqlite3.connect(other) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == {"notes"}

    meta = tmp_path / "meta.db"  # another application's table called meta
    with sqlite3.connect(meta) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.close()
    result = stories(meta)
    assert result.exit_code == 2 and "not a synoptic store" in said(result), result.output

    blob = tmp_path / "photo.db"
    blob.write_bytes(bytes(range(256)) * 400)
    result = stories(blob)
    assert result.exit_code == 2 and "not an SQLite database" in said(result), result.output

    store = tmp_path / "store.db"
    assert (
        runner.invoke(app, ["ingest", str(parade_dir), "--db", f"sqlite:///{store}"]).exit_code == 0
    )
    with open(store, "r+b") as f:  # a copy cut short: the schema's pages are gone
        f.truncate(8192)
    result = stories(store)
    assert result.exit_code == 2 and f"{store} is damaged" in said(result), result.output
    assert "backup" in said(result) and "ingest the sources again" in said(result)


def test_processes_that_open_a_new_store_together_all_get_it(tmp_path: Path) -> None:
    """A server and a watcher started at once on a new store: each used to create the tables
    and all but one failed ("table meta already exists", or a crash reading a version that
    was not written yet): 38 of 60 opens failed in a scratch run of 4 processes at a time."""
    opened_together([f"sqlite:///{tmp_path / f'new{n}.db'}" for n in range(3)], tmp_path)


def test_a_store_this_user_may_only_read_is_read(
    db_url: str, parade_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's store, a read-only copy or mount: every command failed with "attempt
    to write a readonly database" (opening wrote the schema version; reading a WAL store
    makes its shared-memory file in the folder; a brief is kept in the store). The commands
    that read work; those that write say why they cannot. (The tests run as root, whom
    permissions do not stop: the folder and file are made "not writable" through
    ``os.access``, as a user without the permission would find them.)"""
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(parade_dir), "--db", db_url]).exit_code == 0
    store_file = tmp_path / "test.db"
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: not mode & os.W_OK and real_access(path, mode)
    )
    listed = runner.invoke(app, ["stories", "--db", db_url, "--json"])
    assert listed.exit_code == 0, listed.output
    (story,) = json.loads(listed.output)
    shown = runner.invoke(app, ["story", story["id"], "--db", db_url])
    assert shown.exit_code == 0 and "2 independent reports" in shown.output, shown.output
    assert not (tmp_path / "test.db-shm").exists()  # (read as immutable: nothing made)
    held = json.loads(runner.invoke(app, ["status", "--db", db_url, "--json"]).output)
    assert held["read_only"] is True and held["articles"] == 3
    (tmp_path / "quake.txt").write_text(QUAKE_A)
    refused = runner.invoke(app, ["ingest", str(tmp_path / "quake.txt"), "--db", db_url])
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and f"{store_file} is read-only for this user" in said, said
    monkeypatch.undo()
    with sqlite3.connect(store_file) as conn:  # nothing was written: no brief kept
        assert conn.execute("SELECT count(*) FROM brief_shelf").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (3,)


def test_a_store_in_a_folder_that_is_not_there_says_so(tmp_path: Path) -> None:
    """`--db some/dir/news.db` where some/dir does not exist said "cannot open the database:
    unable to open database file"."""
    missing = tmp_path / "not" / "here"
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path), "--db", f"sqlite:///{missing / 'news.db'}"]
    )
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"there is no folder {missing}" in said, said
    assert f"mkdir -p {missing}" in said


def test_a_store_opens_while_another_process_writes(db_url: str, parade_dir: Path) -> None:
    """Opening a store took SQLite's write lock (to create or upgrade it), so `synoptic
    stories` waited for any write under way, and failed after 10 s of it ("database is
    locked"); a store that needs neither is now opened without a lock."""
    with Engine(db_url) as eng:
        eng.ingest([parade_dir])
    writer = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # (another process in the middle of a write)
        writer.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        with Engine(db_url) as eng:
            assert len(eng.story_list()) == 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def opened_together(urls: list[str], tmp_path: Path) -> None:
    """Four processes open each new store at the same moment; all must succeed."""
    import subprocess
    import sys

    go = tmp_path / "go"
    script = (
        "import os, sys, time\n"
        "from synoptic.store import Store\n"
        "while not os.path.exists(sys.argv[1]): time.sleep(0.001)\n"
        "Store(sys.argv[2]).close()\n"
    )
    for url in urls:
        go.unlink(missing_ok=True)
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(go), url], stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        time.sleep(1.5)  # (all four started and waiting)
        go.touch()
        failures = [p.communicate(timeout=60)[1] for p in openers]
        assert [p.returncode for p in openers] == [0] * 4, failures
        with Engine(url) as eng:
            assert eng.store.count_articles() == 0


def test_new_articles_reach_the_database_file_before_the_store_closes(
    tmp_path: Path, parade_dir: Path
) -> None:
    """A batch's write-ahead log is copied into the database by a checkpoint thread (the
    ingest does not wait for that copy): the database file holds the articles while the
    engine is still open, and the thread ends with the store."""
    db = tmp_path / "c.db"
    with Engine(f"sqlite:///{db}") as eng:
        eng.ingest([parade_dir])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            copy = tmp_path / "copy.db"  # the database file alone, without its log
            copy.write_bytes(db.read_bytes())
            conn = sqlite3.connect(copy)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if "articles" in tables and conn.execute(
                    "SELECT count(*) FROM articles"
                ).fetchone() == (3,):
                    break
            except sqlite3.DatabaseError:
                pass  # (copied while the thread wrote it)
            finally:
                conn.close()
            time.sleep(0.1)
        else:
            pytest.fail("the database file never held the new articles while the store was open")
        assert any(t.name == "synoptic-checkpoint" for t in threading.enumerate())
    assert not any(t.name == "synoptic-checkpoint" for t in threading.enumerate())


def test_export_atom(db_url: str, parade_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["ingest", str(parade_dir), "--db", db_url])
    target = tmp_path / "stories.xml"
    result = runner.invoke(
        app, ["export", "--atom", str(target), "--db", db_url, "--base-url", "http://example.org/"]
    )
    assert result.exit_code == 0, result.output
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.parse(target).getroot()
    entries = feed.findall("a:entry", ns)
    assert len(entries) == 1
    entry = entries[0]
    assert entry.find("a:id", ns).text.startswith("urn:synoptic:story:")
    assert (
        entry.find("a:link[@rel='alternate']", ns)
        .get("href")
        .startswith("http://example.org/stories/")
    )
    assert "2 independent reports" in entry.find("a:summary", ns).text
    # writing the briefs can take minutes on a large store: the CLI shows a bar from this
    from synoptic.export import atom_feed

    steps: list[tuple[int, int]] = []
    with Engine(db_url) as eng:
        atom_feed(eng, progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 1)]
    # a feed of what a search, an outlet, a time or the reports pick: another feed, its own id
    (tmp_path / "quake.txt").write_text(QUAKE_A)
    assert (
        runner.invoke(app, ["ingest", str(tmp_path / "quake.txt"), "--db", db_url]).exit_code == 0
    )

    def exported(*options: str) -> ET.Element:
        result = runner.invoke(app, ["export", "--atom", str(target), "--db", db_url, *options])
        assert result.exit_code == 0, result.output
        return ET.parse(target).getroot()

    assert len(exported().findall("a:entry", ns)) == 2
    fico = exported("--search", "Fico", "--since", "1d")
    assert len(fico.findall("a:entry", ns)) == 1
    assert fico.find("a:id", ns).text == "urn:synoptic:feed:local?q=Fico"
    assert "matching “Fico”" in fico.find("a:title", ns).text
    top = exported("--by-reports", "--limit", "1").findall("a:entry", ns)
    assert len(top) == 1 and "2 independent reports" in top[0].find("a:summary", ns).text
    none = exported("--search", "zebra")
    assert none.findall("a:entry", ns) == [] and none.find("a:updated", ns).text.startswith("1970")
    # an output file that cannot be written is a one-line usage error, not a traceback
    for args in (
        ["export", "--atom", str(tmp_path / "no" / "such" / "dir.xml")],
        ["story", entry.find("a:id", ns).text.rsplit(":", 1)[-1], "--html", str(tmp_path)],
    ):
        failed = runner.invoke(app, [*args, "--db", db_url])
        assert failed.exit_code == 2 and "cannot write" in failed.output, failed.output


def test_version_5_signatures_are_recomputed(db_url: str, parade_dir: Path) -> None:
    """Version 6 changed how shingles are hashed: older signatures are rebuilt from the texts,
    so copies of stored articles are still recognised."""
    with Engine(db_url) as eng:
        eng.ingest([parade_dir])
        articles = {a: eng.store.article(a) for a in eng.store.article_ids()}
    raw = create_engine(db_url)
    with raw.begin() as conn:  # signatures of another hash, as a version-5 store has them
        conn.execute(text("UPDATE fingerprints SET doc_sig = zeroblob(1024), para_sigs = x''"))
        conn.execute(text("UPDATE meta SET value = '5' WHERE key = 'schema_version'"))
    raw.dispose()
    fingerprinter = Fingerprinter()
    with Engine(db_url) as eng, eng.store.transaction() as conn:
        rows = conn.execute(text("SELECT article_id, doc_sig, para_sigs FROM fingerprints"))
        for article_id, doc_sig, para_sigs in rows:
            expected = fingerprinter.fingerprint(articles[article_id]).to_bytes()
            assert (doc_sig, para_sigs) == expected


def test_version_6_store_gains_story_days_and_restarts_the_same(
    db_url: str, parade_dir: Path
) -> None:
    """Version 7 adds each story's active day (a restart reads only the window's stories);
    a version-6 store is filled from the stories' states and loads the same stories."""
    with Engine(db_url) as eng:
        eng.ingest([parade_dir])
        eng._load()
        before = dict(eng._active)
    raw = create_engine(db_url)
    with raw.begin() as conn:  # a version-6 store: no active_day column
        conn.execute(text("DROP INDEX ix_stories_active_day"))
        conn.execute(text("ALTER TABLE stories DROP COLUMN active_day"))
        conn.execute(text("UPDATE meta SET value = '6' WHERE key = 'schema_version'"))
    raw.dispose()
    with Engine(db_url) as eng:
        eng._load()
        assert eng._active == pytest.approx(before) and before


def one_writer_at_a_time(url: str, caplog: pytest.LogCaptureFixture) -> None:
    """While one process holds the store's writer lock, another's ingest waits (and says so)
    and then lands; a closing engine does not wait (its snapshots are only shortcuts)."""
    title, body = QUAKE_A.strip().split("\n\n", 1)
    document = Document(
        f"q-{uuid.uuid4()}", "text", f"{body}\n\nRef {uuid.uuid4()}.", {"title": title}
    )
    holder, waiting = Store(url), Engine(url)
    finished = threading.Event()
    reports = []

    def ingest() -> None:
        reports.append(waiting.ingest_items([document]))
        finished.set()

    thread = threading.Thread(target=ingest)
    try:
        with holder.writing() as held:
            assert held
            other = Store(url)
            with other.writing(wait=False) as free:
                assert not free
            other.close()
            thread.start()
            for _ in range(600):  # (a guard, not a timing: the message comes at once)
                if "waiting for it to finish" in caplog.text:
                    break
                time.sleep(0.05)
            assert "another synoptic process" in caplog.text
            assert not finished.is_set()
            reader = Engine(url)
            reader._load()
            reader.close()  # returns although the lock is held
        thread.join(60)
        assert finished.is_set() and len(reports[0].new) == 1
    finally:
        waiting.close()
        holder.close()


def test_one_writer_at_a_time(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    one_writer_at_a_time(db_url, caplog)
    assert f"(pid {os.getpid()})" in caplog.text  # who holds it
