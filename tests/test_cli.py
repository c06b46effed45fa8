"""The CLI through typer's runner: outputs, JSON shapes, exit codes, --help."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from synoptic.cli import app
from synoptic.store import Store

from .conftest import QUAKE_A, QUAKE_B

runner = CliRunner()
COMMANDS = [
    "run",
    "ingest",
    "stories",
    "story",
    "article",
    "extract",
    "brief",
    "rejections",
    "status",
    "forget",
]


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_starting_the_cli_does_not_import_scikit_learn() -> None:
    """scikit-learn was imported for its stop-word list alone, a second of every command's
    start (and of every worker process's); the list is bundled instead, and must stay
    scikit-learn's."""
    import subprocess
    import sys

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from synoptic.text import ENGLISH_STOP_WORDS as bundled

    assert bundled == ENGLISH_STOP_WORDS
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, synoptic.cli; print('sklearn' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded == "False\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_top_level_help_lists_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_run_prints_the_parade_brief(db_url: str, parade_dir: Path) -> None:
    result = invoke("run", parade_dir, "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "3 articles, 2 independent reports" in result.output
    assert "26 foreign heads of state" in result.output
    assert result.output.strip().endswith("3 new, 0 duplicates, 0 rejected")


def test_ingest_stories_story_json(db_url: str, parade_dir: Path) -> None:
    result = invoke("ingest", parade_dir, "--db", db_url)
    assert result.exit_code == 0
    assert "3 new, 0 duplicates, 0 rejected" in result.output
    again = invoke("ingest", parade_dir, "--db", db_url)
    assert "0 new, 3 duplicates, 0 rejected" in again.output

    stories = json.loads(invoke("stories", "--db", db_url, "--json").output)
    assert len(stories) == 1
    story = stories[0]
    assert set(story) == {"id", "headline", "updated", "independent_reports", "articles"}
    assert story["independent_reports"] == 2
    assert {"id", "source_id", "title", "outlet", "url", "published"} <= set(story["articles"][0])

    brief = json.loads(invoke("story", story["id"], "--db", db_url, "--json").output)
    assert brief["id"] == story["id"] and brief["independent_reports"] == 2
    for sentence in brief["summary"]:
        assert set(sentence) >= {"text", "citations"}
        assert {"article_id", "start", "end"} <= set(sentence["citations"][0])
    statuses = {c["status"] for c in brief["claims"]}
    assert statuses <= {"agreed", "single", "conflict"} and "agreed" in statuses
    assert {"text", "status", "article_ids", "independent_reports"} <= set(brief["claims"][0])

    markdown = invoke("story", story["id"], "--db", db_url, "--markdown").output
    assert markdown.startswith("# ") and "## Agreed" in markdown


def test_the_stories_table_never_cuts_an_id(db_url: str, parade_dir: Path) -> None:
    """The id is what `story`, `merge` and `split` take: whole even in 80 columns."""
    assert invoke("ingest", parade_dir, "--db", db_url).exit_code == 0
    story = json.loads(invoke("stories", "--db", db_url, "--json").output)[0]
    invoke("split", story["id"], story["articles"][0]["id"], "--db", db_url)
    table = runner.invoke(app, ["stories", "--db", db_url], env={"COLUMNS": "80"})
    ids = [s["id"] for s in json.loads(invoke("stories", "--db", db_url, "--json").output)]
    assert len(ids) == 2 and all(i in table.output for i in ids), table.output
    # the outlets only where there is room: at 80 columns they left the headline a word a line
    assert "Putin, Kim Jong Un to" in table.output and "Kyiv" not in table.output, table.output
    wide = runner.invoke(app, ["stories", "--db", db_url], env={"COLUMNS": "120"})
    assert "The Kyiv Independent" in wide.output, wide.output


def test_stories_can_be_searched_filtered_and_limited(
    db_url: str, parade_dir: Path, tmp_path: Path
) -> None:
    """A store of thousands of stories is not read in a terminal whole: `stories` takes the
    web list's filters (words, outlet, since) and a limit, and says how many it left out."""
    quakes = tmp_path / "quakes"
    quakes.mkdir()
    (quakes / "chile.txt").write_text(QUAKE_A)
    (quakes / "japan.txt").write_text(QUAKE_B)
    for folder in (parade_dir, quakes):
        assert invoke("ingest", folder, "--db", db_url).exit_code == 0
    everything = json.loads(invoke("stories", "--db", db_url, "--json").output)
    assert len(everything) == 3

    def listed(*options: str) -> list[str]:
        result = invoke("stories", "--db", db_url, "--json", *options)
        assert result.exit_code == 0, result.output
        return [s["headline"] for s in json.loads(result.output)]

    assert listed("--search", "Noto peninsula") == ["Deadly quake hits Japan's Noto peninsula"]
    assert listed("-s", "earthquake") != [] and len(listed("-s", "quake Chile")) == 1
    assert listed("--search", "parade Chile") == []  # every word, in one article
    assert len(listed("--outlet", "THE KYIV INDEPENDENT")) == 1
    assert len(listed("--since", "2d")) == 3 and listed("--since", "2999-01-01") == []
    newest = listed("--limit", "2")
    assert newest == [s["headline"] for s in everything[:2]]
    # the parade story (two independent reports) was updated first: last by date, first by
    # reports; the quakes (one each) keep their order
    parade = next(s["headline"] for s in everything if s["independent_reports"] == 2)
    assert everything[-1]["headline"] == parade
    assert listed("--by-reports") == [parade, *(s["headline"] for s in everything[:2])]
    assert listed("--by-reports", "--limit", "1") == [parade]
    by_reports = invoke("stories", "--db", db_url, "--by-reports", "--limit", "1").output
    assert "1 of 3 stories, most reported first" in by_reports
    table = invoke("stories", "--db", db_url, "--limit", "1")
    assert table.exit_code == 0 and "1 of 3 stories" in table.output
    assert "No story matches" in invoke("stories", "--db", db_url, "-s", "zebra").output
    assert len(listed("--search", "  ")) == 3  # (a blank search matched nothing)
    wrong = invoke("stories", "--db", db_url, "--since", "last tuesday")
    assert wrong.exit_code == 2 and "cannot read 'last tuesday'" in wrong.output


def test_old_stories_are_forgotten(db_url: str, tmp_path: Path) -> None:
    """A store that follows feeds for months kept every article: `forget --before` deletes
    the stories last active before a time, with their articles, search index and briefs,
    never one still in the active window; a forgotten article ingested again is new."""
    dump = tmp_path / "dump.jsonl"
    chile = {
        "title": "Strong earthquake strikes southern Chile",
        "text": QUAKE_A,
        "published": "2020-01-10T08:00:00Z",
        "url": "https://a.example/chile",
    }
    japan = {
        "title": "Deadly quake hits Japan's Noto peninsula",
        "text": QUAKE_B,
        "published": "2024-06-01T08:00:00Z",
        "url": "https://b.example/noto",
    }
    dump.write_text(json.dumps(chile) + "\n" + json.dumps(japan) + "\n")
    assert invoke("ingest", dump, "--db", db_url).exit_code == 0
    before = json.loads(invoke("stories", "--db", db_url, "--json").output)
    old = next(s for s in before if "Chile" in s["headline"])
    old_article = old["articles"][0]["id"]
    invoke("story", old["id"], "--db", db_url)  # (a brief kept on the shelf)

    def forget(*options: str) -> dict:
        result = invoke("forget", "--db", db_url, "--json", *options)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    would = forget("--before", "2023-01-01", "--dry-run")
    assert (would["stories"], would["articles"], would["dry_run"]) == ([old["id"]], 1, True)
    assert len(json.loads(invoke("stories", "--db", db_url, "--json").output)) == 2
    gone = forget("--before", "2023-01-01")
    assert (gone["stories"], gone["articles"], gone["held_back"]) == ([old["id"]], 1, False)
    left = json.loads(invoke("stories", "--db", db_url, "--json").output)
    assert [s["headline"] for s in left] == [japan["title"]]
    assert invoke("article", old_article, "--db", db_url).exit_code == 2
    assert invoke("story", old["id"], "--db", db_url).exit_code == 2
    assert json.loads(invoke("stories", "--db", db_url, "--json", "-s", "Montt").output) == []
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        counts = {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("articles", "articles_fts", "fingerprints", "syndication", "memberships")
        }
        assert set(counts.values()) == {1}, counts
        assert conn.execute(
            "SELECT COUNT(*) FROM brief_shelf WHERE story_id = ?", (old["id"],)
        ).fetchone() == (0,)
    # the newest story is in the active window, whatever --before says
    kept = forget("--before", "2999-01-01")
    assert kept["stories"] == [] and kept["held_back"] is True
    said = invoke("forget", "--db", db_url, "--before", "2999-01-01")
    assert "forgot 0 stories" in said.output and "are kept" in " ".join(said.output.split())
    again = json.loads(invoke("ingest", dump, "--db", db_url, "--json").stdout)  # (and "late")
    assert again["new"] == [old_article] and len(again["duplicates"]) == 1
    assert invoke("forget", "--db", db_url, "--before", "last year").exit_code == 2


def test_one_stored_article_is_read_by_its_id(db_url: str, parade_dir: Path) -> None:
    """A brief names its articles by id; the terminal had no way to read one (the web page
    and the API had)."""
    assert invoke("ingest", parade_dir, "--db", db_url).exit_code == 0
    story = json.loads(invoke("stories", "--db", db_url, "--json").output)[0]
    first = story["articles"][0]
    shown = invoke("article", first["id"], "--db", db_url)
    assert shown.exit_code == 0 and first["title"] in shown.output
    assert f"in story {story['id']}" in " ".join(shown.output.split())
    data = json.loads(invoke("article", first["id"], "--db", db_url, "--json").output)
    assert data["story"] == story["id"] and data["title"] == first["title"]
    assert len(data["text"]) > 500 and {"origin", "removed", "authors"} <= set(data)
    missing = invoke("article", "a_0000", "--db", db_url)
    assert missing.exit_code == 2 and "no article 'a_0000'" in missing.output


def test_rejections_list_the_most_recent_fifty_and_say_how_many_more(
    db_url: str, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(55):
        (inputs / f"empty{n:02}.txt").write_text("")
    assert invoke("ingest", inputs, "--db", db_url).exit_code == 1
    table = invoke("rejections", "--db", db_url)
    assert table.exit_code == 0 and table.output.count("empty file") == 50
    assert "50 of 55 rejected inputs" in table.output
    assert invoke("rejections", "--db", db_url, "--limit", "0").output.count("empty file") == 55
    assert len(json.loads(invoke("rejections", "--db", db_url, "--json").output)) == 55
    two = json.loads(invoke("rejections", "--db", db_url, "--json", "--limit", "2").output)
    assert len(two) == 2


def test_status_says_what_the_store_holds(db_url: str, parade_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    assert invoke("ingest", parade_dir, tmp_path / "empty.txt", "--db", db_url).exit_code == 1
    held = json.loads(invoke("status", "--db", db_url, "--json").output)
    assert {k: held[k] for k in ("articles", "stories", "sources", "rejected_inputs")} == {
        "articles": 3,
        "stories": 1,
        "sources": 0,
        "rejected_inputs": 1,
    }
    assert held["schema_version"] >= 11 and held["bytes"] > 0 and held["last_ingest"]
    assert held["read_only"] is False
    table = invoke("status", "--db", db_url)
    assert table.exit_code == 0 and "articles" in table.output and "last ingest" in table.output
    assert "read only" not in table.output
    assert invoke("status", "--db", str(tmp_path / "typo.db")).exit_code == 2


def test_merge_and_split_json(db_url: str, parade_dir: Path) -> None:
    assert invoke("ingest", parade_dir, "--db", db_url).exit_code == 0
    story = json.loads(invoke("stories", "--db", db_url, "--json").output)[0]
    leaving = story["articles"][0]["id"]
    split = invoke("split", story["id"], leaving, leaving, "--db", db_url, "--json")
    assert split.exit_code == 0, split.output
    moved = json.loads(split.output)
    assert moved["story"] == story["id"] and moved["moved"] == [leaving]
    assert moved["new_story"] != story["id"]
    merged = invoke("merge", story["id"], moved["new_story"], "--db", db_url, "--json")
    assert json.loads(merged.output) == {"story": story["id"], "merged": moved["new_story"]}
    # the split-off id now resolves to the merged story, for split too
    again = invoke("split", moved["new_story"], leaving, "--db", db_url, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["story"] == story["id"]
    twice = invoke("merge", story["id"], moved["new_story"], "--db", db_url)
    assert twice.exit_code == 2 and "already one story" in twice.output


def test_unknown_story_is_a_usage_error(db_url: str, parade_dir: Path) -> None:
    assert invoke("ingest", parade_dir, "--db", db_url).exit_code == 0
    result = invoke("story", "s_nope", "--db", db_url)
    assert result.exit_code == 2
    assert "synoptic stories" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["stories"],
        ["story", "s_nope"],
        ["rejections"],
        ["merge", "s_a", "s_b"],
        ["split", "s_a", "a_b"],
        ["export", "--atom", "feed.xml"],
        ["sources", "list"],
        ["forget", "--before", "90d"],
    ],
)
def test_a_command_that_reads_a_store_does_not_make_one(tmp_path: Path, args: list[str]) -> None:
    """A mistyped --db made these commands create an empty store there and answer from it
    ("No stories yet")."""
    typo = tmp_path / "synoptc.db"
    result = invoke(*[tmp_path / a if a == "feed.xml" else a for a in args], "--db", typo)
    assert result.exit_code == 2, result.output
    assert "no synoptic store at" in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_bad_db_url_is_a_usage_error() -> None:
    result = invoke("stories", "--db", "not-a-url")
    assert result.exit_code == 2
    assert "database URL" in result.output


def test_an_sqlite_file_path_is_a_database(parade_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    assert invoke("ingest", parade_dir, "--db", path, "--quiet").exit_code == 0
    stories = json.loads(invoke("stories", "--db", f"sqlite:///{path}", "--json").output)
    assert len(stories) == 1 and len(stories[0]["articles"]) == 3


def test_rejections_exit_1_and_are_listed(db_url: str, tmp_path: Path) -> None:
    docs = tmp_path / "in"
    docs.mkdir()
    (docs / "good.txt").write_text(QUAKE_A)
    (docs / "bad.txt").write_bytes(b"\xff\xfe\x00\x01binary")
    result = invoke("ingest", docs, "--db", db_url)
    assert result.exit_code == 1
    assert "1 new, 0 duplicates, 1 rejected" in result.output
    listed = json.loads(invoke("rejections", "--db", db_url, "--json").output)
    assert listed[0]["origin"].endswith("bad.txt") and listed[0]["count"] == 1
    assert listed[0]["last_seen"].endswith("+00:00")  # UTC, like every time the CLI prints


def test_a_database_failing_mid_ingest_is_one_line_and_exit_3(
    db_url: str, parade_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills (or a server that goes away) mid-ingest: one line that says what to
    do, exit code 3, no traceback; running the same command again lands everything."""
    real = Store.add_many

    def full_disk(self: Store, items: list) -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(Store, "add_many", full_disk)
    failed = invoke("ingest", parade_dir, "--db", db_url)
    assert failed.exit_code == 3, failed.output
    assert "database or disk is full" in failed.output and "run the" in failed.output
    assert "Traceback" not in failed.output
    monkeypatch.setattr(Store, "add_many", real)
    again = invoke("ingest", parade_dir, "--db", db_url)
    assert again.exit_code == 0 and "3 new, 0 duplicates" in again.output


def test_extract_json_and_explain(parade_dir: Path) -> None:
    paths = sorted(parade_dir.glob("*.txt"))
    result = invoke("extract", *paths, "--json")
    assert result.exit_code == 0
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert len(objects) == 3
    assert {"path", "title", "text", "outlet", "published", "url", "removed"} <= set(objects[0])
    assert any(r["reason"] == "newsletter prompt" for r in objects[0]["removed"])
    explained = invoke("extract", paths[2], "--explain")
    assert "author bio" in explained.output and "teaser of another story" in explained.output


def test_brief_of_given_articles(parade_dir: Path) -> None:
    result = invoke("brief", parade_dir, "--json", "--words", "60", "--check")
    assert result.exit_code == 0, result.output
    brief = json.loads(result.output)
    assert brief["id"] is None and brief["n_articles"] == 3 and brief["independent_reports"] == 2
    assert len(brief["summary"]) == 1 or sum(len(s["text"].split()) for s in brief["summary"]) <= 60


def test_ingest_from_stdin(db_url: str) -> None:
    line = json.dumps({"id": "x-1", "title": "Quake", "text": QUAKE_A})
    result = invoke("ingest", "-", "--db", db_url, "--json", input=line + "\n")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["new"]) == 1


def test_serve_on_a_port_in_use_is_a_usage_error(db_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--db", db_url, "--port", str(port))
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_an_output_file_is_replaced_whole_or_not_at_all(
    db_url: str, parade_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk in the middle of `export` cut the previous feed short (it was written in
    place); the new file is now written beside it and renamed over it."""
    import errno

    assert invoke("ingest", parade_dir, "--db", db_url).exit_code == 0
    target = tmp_path / "stories.xml"
    target.write_text("the previous feed")
    real = Path.write_text

    def full_disk(self: Path, data: str, *args: object, **kwargs: object) -> int:
        real(self, data[:10], *args, **kwargs)  # type: ignore[arg-type]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    result = invoke("export", "--atom", target, "--db", db_url)
    monkeypatch.undo()
    assert result.exit_code == 2, result.output
    assert "No space left on device" in " ".join(result.output.split())
    assert target.read_text() == "the previous feed"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    assert invoke("export", "--atom", target, "--db", db_url).exit_code == 0
    assert target.read_text().startswith("<?xml")
