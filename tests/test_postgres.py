"""The store on a real PostgreSQL server, started by the test (skipped only where PostgreSQL's
server programs are not installed)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from synoptic import Engine
from synoptic.model import StorySelection

from .conftest import QUAKE_A
from .test_cli import invoke
from .test_ingest import (
    a_waiting_writer_goes_between_batches,
    killed_ingests_lose_nothing,
    nul_article_lands,
    wrong_types_are_rejected,
)
from .test_store import one_writer_at_a_time, opened_together

INITDB = shutil.which("initdb") or next(
    iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None
)


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:  # the server refuses to run as root
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if INITDB is None:
        pytest.skip("PostgreSQL server programs (initdb, pg_ctl) are not installed")
    bindir = Path(INITDB).resolve().parent  # /usr/local/bin may hold only links to some programs
    base = Path(tempfile.mkdtemp(prefix="synoptic-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:  # a free port, for the socket file's name
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-k {sockets} -p {port} -c listen_addresses=''"
    # the server must not inherit our pipes (it would hold them open): it logs to a file
    start = [
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(base / "server.log"),
        "-o",
        options,
        "-w",
        "start",
    ]
    subprocess.run(
        _as_postgres(start), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "createdb"),
                    "-h",
                    str(sockets),
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "synoptic",
                ]
            ),
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@/synoptic?host={sockets}&port={port}"
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_postgres(stop), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


def test_seeds_end_to_end_on_postgresql(pg_url: str, parade_dir: Path, tmp_path: Path) -> None:
    with Engine(pg_url) as eng:
        report = eng.ingest([parade_dir])
        assert report.summary_line() == "3 new, 0 duplicates, 0 rejected"
        stories = eng.stories()
        assert len(stories) == 1 and stories[0].independent_reports == 2
        brief = eng.brief(stories[0].id)
        assert any(c.status == "agreed" and "26 foreign heads" in c.text for c in brief.claims)
        # PostgreSQL's full-text search, the outlet filter (any case) and the page
        assert eng.story_page(StorySelection(search=("Fico",))) == (1, eng.story_list())
        assert (
            eng.story_page(
                StorySelection(search=("Fico", "parade"), outlet="THE KYIV INDEPENDENT")
            )[0]
            == 1
        )
        assert eng.story_page(StorySelection(search=("Fico earthquake",)))[0] == 0
        assert eng.story_page(StorySelection(since=datetime(2999, 1, 1, tzinfo=UTC), limit=5)) == (
            0,
            [],
        )
        assert eng.story_page(StorySelection(offset=1)) == (1, [])
        held = eng.store.summary()
        assert (held["articles"], held["stories"], held["bytes"]) == (3, 1, None)
        assert "postgresql" in held["database"] and held["last_ingest"] is not None
        # the search is answered from the full-text index, not by reading every article
        query = eng.store._matching("Fico parade").compile(eng.store.engine)
        with eng.store.engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # (three rows: the plan would scan)
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {query}", query.params))
        assert "ix_articles_fulltext" in plan, plan
        (tmp_path / "bad.txt").write_bytes(b"\x00\x01")
        eng.ingest([tmp_path / "bad.txt"])
        eng.ingest([tmp_path / "bad.txt"])
        assert eng.rejections()[0]["count"] == 2  # the upsert works on PostgreSQL too
    with Engine(pg_url) as eng:  # a restart continues from the server's state
        (tmp_path / "quake.txt").write_text(QUAKE_A)
        again = eng.ingest([parade_dir, tmp_path / "quake.txt"])
        assert len(again.new) == 1 and len(again.duplicates) == 3
        quake = eng.story_of(again.new[0])
        parade = next(s.id for s in eng.stories() if s.id != quake)
        eng.merge(parade, quake)
        assert eng.story(quake).id == parade
        eng.split(parade, [again.new[0]])
        assert len(eng.stories()) == 2


def test_one_writer_at_a_time_on_postgresql(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The writer lock is a session advisory lock there: held by one connection, refused to
    another, released with it."""
    one_writer_at_a_time(pg_url, caplog)


def test_nul_characters_do_not_fail_a_postgresql_batch(pg_url: str) -> None:
    with Engine(pg_url) as eng:
        nul_article_lands(eng)


def test_fields_of_the_wrong_type_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with Engine(pg_url) as eng:
        wrong_types_are_rejected(eng, tmp_path)


def test_nul_in_a_request_is_not_a_database_failure_on_postgresql(
    pg_url: str, parade_dir: Path
) -> None:
    """PostgreSQL refuses a NUL in any query parameter: a NUL in an id is no such story or
    article (404), in a search it is dropped; both were 503 "database failed" before."""
    from synoptic.web import create_app

    from .test_web import request

    with Engine(pg_url) as eng:
        eng.ingest([parade_dir])
        app = create_app(eng)
        assert request(app, "GET", "/api/stories/s_1%00").status_code == 404
        assert request(app, "GET", "/api/articles/a_1%00").status_code == 404
        assert request(app, "GET", "/articles/a_1%00").status_code == 404
        merge = request(
            app, "POST", f"/api/stories/{eng.stories()[0].id}/merge", json={"other": "s\u0000"}
        )
        assert merge.status_code == 404
        assert request(app, "GET", "/api/stories?q=Kim%00").json()["total"] == 1


def test_older_store_is_migrated_on_postgresql(pg_url: str, parade_dir: Path) -> None:
    """The upgrades to schema 6 (signatures recomputed), 7 (stories.active_day) and 11 (the
    full-text index) on a PostgreSQL store that lacks them."""
    with Engine(pg_url) as eng:
        eng.ingest([parade_dir])  # (already there when the end-to-end test ran first)
        eng._load()
        before = dict(eng._active)
        fingerprints = eng.store.fingerprint_rows(list(before))
        signatures = {row.article_id: bytes(row.doc_sig) for row in fingerprints}
    raw = create_engine(pg_url)
    with raw.begin() as conn:
        conn.execute(text("ALTER TABLE stories DROP COLUMN active_day"))  # drops its index
        conn.execute(text("UPDATE fingerprints SET doc_sig = '\\x00'::bytea"))
        conn.execute(text("DROP INDEX ix_articles_fulltext"))
        conn.execute(text("UPDATE meta SET value = '5' WHERE key = 'schema_version'"))
    raw.dispose()
    with Engine(pg_url) as eng:
        eng._load()
        assert before and eng._active == pytest.approx(before)
        again = {
            row.article_id: bytes(row.doc_sig) for row in eng.store.fingerprint_rows(list(before))
        }
        assert again == signatures
        indexes = {i["name"] for i in inspect(eng.store.engine).get_indexes("articles")}
        assert "ix_articles_fulltext" in indexes


def _fresh_database(pg_url: str, name: str) -> str:
    server = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    server.dispose()
    return pg_url.replace("/synoptic?", f"/{name}?")


def test_an_ingest_killed_mid_run_loses_nothing_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The kill test of test_ingest.py against the server, in a database of its own."""
    killed_ingests_lose_nothing(_fresh_database(pg_url, "killed"), tmp_path)


def test_a_waiting_writer_goes_between_batches_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The advisory lock handed to the session waiting for it between two batches."""
    a_waiting_writer_goes_between_batches(_fresh_database(pg_url, "interleaved"), tmp_path)


def test_a_postgresql_database_is_shared_but_never_clashed_with(
    pg_url: str, tmp_path: Path
) -> None:
    """A PostgreSQL database may hold other applications' tables beside synoptic's; one that
    already has a table of synoptic's names (and is not a synoptic store) is refused."""
    from synoptic.errors import StoreError

    shared, clashing = _fresh_database(pg_url, "shared"), _fresh_database(pg_url, "clashing")
    for url, table in ((shared, "customers"), (clashing, "stories")):
        raw = create_engine(url)
        with raw.begin() as conn:
            conn.execute(text(f"CREATE TABLE {table} (id integer PRIMARY KEY)"))
        raw.dispose()
    (tmp_path / "quake.txt").write_text(QUAKE_A)
    with Engine(shared) as eng:
        assert eng.ingest([tmp_path / "quake.txt"]).summary_line() == (
            "1 new, 0 duplicates, 0 rejected"
        )
    with pytest.raises(StoreError, match=r"not a synoptic store: .*\(stories\)"):
        Engine(clashing)


def test_processes_that_open_a_new_store_together_on_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    opened_together([_fresh_database(pg_url, f"together{n}") for n in range(2)], tmp_path)


def test_a_role_that_may_only_read_reads_on_postgresql(
    pg_url: str, parade_dir: Path, tmp_path: Path
) -> None:
    """A PostgreSQL role granted SELECT only could not open a store at all (every open
    rewrote the schema version); it lists and briefs stories now, and a write says why not."""
    url = _fresh_database(pg_url, "readonly")
    with Engine(url) as eng:
        eng.ingest([parade_dir])
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text("CREATE ROLE reader LOGIN"))
        conn.execute(text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader"))
    owner.dispose()
    reader = url.replace("postgres@", "reader@")
    with Engine(url) as eng:
        assert eng.store.summary()["read_only"] is False
    with Engine(reader) as eng:
        assert eng.store.summary()["read_only"] is True
        (story,) = eng.stories()
        brief = eng.brief(story.id)  # (not kept: the role may not write the shelf)
        assert brief.version == 1 and any("26 foreign heads" in c.text for c in brief.claims)
    (tmp_path / "quake.txt").write_text(QUAKE_A)
    result = invoke("ingest", str(tmp_path / "quake.txt"), "--db", reader)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "is read-only for this user" in said, said


def test_old_stories_are_forgotten_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """`forget`'s deletes in one transaction on the server, search included."""
    from .conftest import QUAKE_B

    url = _fresh_database(pg_url, "forgetting")
    dump = tmp_path / "dump.jsonl"
    rows = [
        {"title": "Chile quake", "text": QUAKE_A, "published": "2020-01-10T08:00:00Z"},
        {"title": "Noto quake", "text": QUAKE_B, "published": "2024-06-01T08:00:00Z"},
    ]
    dump.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with Engine(url) as eng:
        assert len(eng.ingest([dump]).new) == 2
        gone = eng.forget(datetime(2023, 1, 1, tzinfo=UTC))
        assert len(gone.stories) == 1 and gone.articles == 1 and not gone.held_back
        assert [s.headline for s in eng.stories()] == ["Noto quake"]
        assert eng.story_page(StorySelection(search=("Montt",)))[0] == 0
        with eng.store.engine.connect() as conn:
            for table in ("articles", "fingerprints", "syndication", "memberships"):
                assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() == 1
        assert len(eng.ingest([dump]).new) == 1  # (ingested again: stored anew)
