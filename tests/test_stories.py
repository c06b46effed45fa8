"""Story clustering on small fixtures: events kept apart, reports of one event joined,
corrections persisted, restarts continue, and --why explains."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import synoptic.cluster as cluster_module
import synoptic.engine as engine_module
from synoptic import Engine
from synoptic.cli import app
from synoptic.cluster import (
    CHANNELS,
    FEATURES,
    ClusterModel,
    MemberMatrix,
    StoryClusterer,
    StoryState,
    article_features,
)
from synoptic.errors import SettingsError
from synoptic.model import Article, Document, StorySelection, article_id
from synoptic.settings import Settings

from .conftest import QUAKE_A, QUAKE_B

# A second, independent report of the Chile quake: same event, different words.
QUAKE_A2 = """Chile earthquake kills a dozen in Puerto Montt

At least 12 people died when a powerful 7.1-magnitude quake hit southern Chile on Tuesday,
Chilean authorities said, with homes in Puerto Montt reduced to rubble.

Firefighters battled blazes in the old town of Puerto Montt overnight while soldiers helped
search for survivors, according to local media.

President Gabriel Boric, who declared an emergency for Los Lagos, said the government would
rebuild every destroyed home.
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_two_earthquakes_apart_two_reports_of_one_together(engine: Engine, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    engine.ingest(
        [
            write(docs, "a.txt", QUAKE_A),
            write(docs, "b.txt", QUAKE_B),
            write(docs, "c.txt", QUAKE_A2),
        ]
    )
    stories = sorted(engine.stories(), key=lambda s: len(s.articles))
    assert [len(s.articles) for s in stories] == [1, 2]
    chile = stories[1]
    assert {a.title for a in chile.articles} == {
        "Strong earthquake strikes southern Chile",
        "Chile earthquake kills a dozen in Puerto Montt",
    }
    assert chile.independent_reports == 2  # paraphrased, not copied


def test_merge_and_split_persist_and_are_respected(
    db_url: str, tmp_path: Path, parade_dir: Path
) -> None:
    docs = tmp_path / "docs"
    with Engine(db_url) as eng:
        eng.ingest([parade_dir, write(docs, "a.txt", QUAKE_A)])
        parade = next(s for s in eng.stories() if len(s.articles) == 3)
        quake = next(s for s in eng.stories() if len(s.articles) == 1)
        kept = eng.merge(parade.id, quake.id)
        assert kept == parade.id
    with Engine(db_url) as eng:  # persisted; the old id resolves to the merged story
        assert len(eng.stories()) == 1
        assert eng.story(quake.id).id == parade.id
        quake_article = quake.articles[0].id
        new_id = eng.split(parade.id, [quake_article])
        assert {len(s.articles) for s in eng.stories()} == {3, 1}
        assert eng.story(new_id).articles[0].id == quake_article
    with Engine(db_url) as eng:  # after a restart, a new report of the quake joins the split story
        report = eng.ingest([write(docs, "c.txt", QUAKE_A2)])
        assert eng.story_of(report.new[0]) == new_id
        assert len(eng.story(parade.id).articles) == 3
        assert frozenset((new_id, parade.id)) in eng.store.separated()


def test_splitting_the_same_articles_again_gets_a_fresh_id(
    engine: Engine, tmp_path: Path, parade_dir: Path
) -> None:
    """A split's id comes from its articles; when an earlier split of the same articles was
    merged away, its id resolves to the merged story, so the second split needs another."""
    engine.ingest([parade_dir])
    story = engine.stories()[0]
    leaving = [story.articles[0].id]
    first = engine.split(story.id, leaving)
    assert engine.merge(story.id, first) == story.id  # ``first`` now resolves to ``story``
    second = engine.split(story.id, leaving)
    assert second != first
    assert [a.id for a in engine.story(second).articles] == leaving
    assert engine.story(first).id == story.id
    assert engine.merge(story.id, second) == story.id  # merging it away again works too
    assert len(engine.story(story.id).articles) == 3


def test_split_errors_name_the_fix(engine: Engine, parade_dir: Path) -> None:
    import pytest

    from synoptic.errors import NotFound

    engine.ingest([parade_dir])
    story = engine.stories()[0]
    with pytest.raises(NotFound, match="synoptic story"):
        engine.split(story.id, ["a_0000000000000000"])
    with pytest.raises(SettingsError, match="not all"):
        engine.split(story.id, [a.id for a in story.articles])


def test_why_explains_membership(db_url: str, parade_dir: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["ingest", str(parade_dir), "--db", db_url])
    story_id = json.loads(runner.invoke(app, ["stories", "--db", db_url, "--json"]).output)[0]["id"]
    result = runner.invoke(app, ["story", story_id, "--why", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "opened the story" in result.output and "a copy of an article" in result.output
    data = json.loads(
        runner.invoke(app, ["story", story_id, "--why", "--json", "--db", db_url]).output
    )
    parts = [row["parts"] for row in data["articles"]]
    assert any("entities" in p and "body" in p for p in parts)
    merged = runner.invoke(app, ["merge", story_id, "s_nope", "--db", db_url])
    assert merged.exit_code == 2


def test_why_names_the_runner_up_as_it_is_now(
    db_url: str, parade_dir: Path, tmp_path: Path
) -> None:
    """A runner-up story that a merge took into another is named by the story it is in now
    (and the id recorded at the time); one merged into the article's own story says so."""
    runner = CliRunner()

    def why(story_id: str, *options: str) -> Any:
        result = runner.invoke(app, ["story", story_id, "--why", *options, "--db", db_url])
        assert result.exit_code == 0, result.output
        return json.loads(result.output) if options else " ".join(result.output.split())

    docs = tmp_path / "docs"
    with Engine(db_url) as eng:
        parade = eng.story_of(eng.ingest([parade_dir]).new[0])
        chile = eng.story_of(eng.ingest([write(docs, "a.txt", QUAKE_A)]).new[0])
        japan = eng.story_of(eng.ingest([write(docs, "b.txt", QUAKE_B)]).new[0])
        eng.merge(parade, chile)  # an odd merge, to move the runner-up elsewhere
    (row,) = why(japan, "--json")["articles"]
    assert row["runner_up"] == {
        "id": parade,
        "headline": why(parade, "--json")["headline"],
        "recorded": chile,
    }
    assert f"runner-up {parade} (was {chile})" in why(japan)
    with Engine(db_url) as eng:
        eng.merge(japan, parade)
    assert f"runner-up {chile}, since merged into this story" in why(japan)


def test_why_gives_the_runner_up_probability_of_a_join(db_url: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    with Engine(db_url) as eng:
        for name, text in (("a", QUAKE_A), ("b", QUAKE_B), ("c", QUAKE_A2)):
            eng.ingest([write(docs, f"{name}.txt", text)])
        chile = next(s for s in eng.stories() if len(s.articles) == 2)
        joined = next(m for m in eng.memberships(chile.id) if "body" in m.parts)
    assert joined.runner_up is not None
    assert 0.0 < joined.parts["runner_up_score"] < 0.5 < joined.score
    result = CliRunner().invoke(app, ["story", chile.id, "--why", "--db", db_url])
    text = " ".join(result.output.split())
    assert f"(probability {joined.parts['runner_up_score']})" in text
    assert "runner_up_score" not in text  # shown by the runner-up, not among the features


def test_why_reads_each_runner_up_story_once(db_url: str, tmp_path: Path) -> None:
    """It read the whole runner-up story again for every article naming it: 2.9 s for a
    story of 336 articles with 12 runner-ups on a 20,000-article store."""
    from synoptic.render import why_json

    docs = tmp_path / "docs"
    with Engine(db_url) as eng:
        for name, text in (("b", QUAKE_B), ("a", QUAKE_A), ("c", QUAKE_A2)):
            eng.ingest([write(docs, f"{name}.txt", text)])
        chile = next(s for s in eng.stories() if len(s.articles) == 2)
        runners = [m.runner_up for m in eng.memberships(chile.id)]
        assert len(runners) == 2 and runners[0] == runners[1] is not None
        read: list[str] = []
        story = eng.story
        eng.story = lambda story_id: read.append(story_id) or story(story_id)  # type: ignore[method-assign]
        rows = why_json(eng, chile.id)["articles"]
    assert [r["runner_up"]["recorded"] for r in rows] == runners
    assert read == [chile.id, runners[0]]


def test_clusterer_estimator_shape() -> None:
    import pytest

    with pytest.raises(SettingsError):
        StoryClusterer(merge_eagerness=1.5)
    clusterer = StoryClusterer()
    assert clusterer.n_docs_ == 0 and not clusterer.stories_
    texts = [QUAKE_A, QUAKE_A2, QUAKE_B]
    items = []
    for text in texts:
        title, body = text.split("\n\n", 1)
        items.append(
            (
                article_id(title, body, None),
                article_features(Article(id="x", title=title, text=body)),
            )
        )
    clusterer.partial_fit(items)
    assert clusterer.n_docs_ == 3 and len(clusterer.stories_) == 2


def test_memory_holds_the_active_window_only(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    # the document frequencies also count the last IDF_FLOOR articles (see the idf test below)
    monkeypatch.setattr(engine_module, "IDF_FLOOR", 0)

    from synoptic import Settings
    from synoptic.model import Document

    start = datetime(2025, 1, 1, tzinfo=UTC)

    def doc(text: str, day: int, n: int) -> Document:
        title, body = text.split("\n\n", 1)
        meta = {
            "title": title,
            "published": (start + timedelta(days=day)).isoformat(),
            "url": f"https://x.example/{n}",
        }
        return Document(f"doc{n}", "text", body, meta)

    settings = Settings(db_url=db_url, window_days=30)
    with Engine(settings=settings) as eng:
        eng.ingest_items([doc(QUAKE_A, 0, 1), doc(QUAKE_A2, 1, 2)])
        first = next(iter(eng._story_of))
        chile = eng.story_of(first)
        assert len(eng.story(chile).articles) == 2
        eng.ingest_items([doc(QUAKE_B, 60, 3)])  # two months later: the Chile story leaves memory
        assert chile not in eng._clusterer.stories_ and len(eng._index) == 1
        # with its articles, their ids and their share of the document frequencies
        assert first not in eng._story_of and eng._clusterer.n_docs_ == 1
        assert not any(k.startswith("chile") for k in eng._clusterer.df_["entities"])
        assert eng.story_of(first) == chile  # still answered, from the store
        late = eng.ingest_items([doc(QUAKE_A2.replace("dozen", "dozen people"), 61, 4)])
        assert eng.story_of(late.new[0]) != chile  # an idle story is not joined again
        assert len(eng.story(chile).articles) == 2  # and the store still has it whole
    with Engine(settings=settings) as eng:  # a restart loads the window only
        eng.ingest_items([doc(QUAKE_B, 61, 3)])  # a duplicate: known though outside the window
        assert chile not in eng._clusterer.stories_
        assert eng.store.count_articles() == 4


def test_a_long_story_keeps_only_its_recent_articles_in_memory(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    monkeypatch.setattr(engine_module, "IDF_FLOOR", 0)  # the window alone in the frequencies

    from synoptic import Settings
    from synoptic.model import Document

    start = datetime(2025, 1, 1, tzinfo=UTC)

    def doc(text: str, day: int) -> Document:
        title, body = text.split("\n\n", 1)
        meta = {"title": title, "published": (start + timedelta(days=day)).isoformat()}
        return Document(f"day{day}", "text", body, meta)

    settings = Settings(db_url=db_url, window_days=30)
    reports = _variants(QUAKE_A)
    with Engine(settings=settings) as eng:
        first = eng.ingest_items([doc(reports[0], 0)]).new[0]
        story = eng.story_of(first)
        eng.ingest_items([doc(reports[1], 20)])
        third = eng.ingest_items([doc(reports[2], 40)]).new[0]
        assert eng.story_of(third) == story  # the story goes on ...
        assert first not in eng._story_of and len(eng._index) == 2  # ... its day-0 article left
        assert eng._clusterer.n_docs_ == 2
        assert len(eng.story(story).articles) == 3  # the store has the story whole
    with Engine(settings=settings) as eng:  # a restart holds the same articles
        eng._load()
        assert first not in eng._story_of and len(eng._index) == 2
        assert eng._clusterer.n_docs_ == 2


def test_a_restart_continues_exactly_where_the_run_stopped(
    tmp_path: Path, parade_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One engine, or a new engine for each article: the same stored memberships (scores
    included), stories and syndication, also across the window's edge (an article 30 days and
    a few hours older than the newest is still held by a running engine that has not evicted
    since; a restarted engine loads the same window)."""
    from sqlalchemy import select

    from synoptic.store import memberships, stories, syndication

    monkeypatch.setattr(engine_module, "IDF_FLOOR", 0)  # the window alone in the frequencies
    start = datetime(2025, 1, 1, tzinfo=UTC)
    parade = sorted(parade_dir.iterdir())
    texts = [*_variants(QUAKE_A), QUAKE_B, QUAKE_A2, *(p.read_text() for p in parade)]
    hours = [3, 30, 60, 24 * 29 + 20, 24 * 30 + 12, 24 * 30 + 13, 24 * 30 + 14, 24 * 30 + 15]
    docs = []
    for n, (text, hour) in enumerate(zip(texts, hours, strict=True)):
        title, body = text.strip().split("\n\n", 1)
        published = (start + timedelta(hours=hour)).isoformat()
        docs.append(Document(f"d{n}", "text", body, {"title": title, "published": published}))

    def stored(url: str) -> tuple[Any, ...]:
        story = (stories.c.id, stories.c.centroid, stories.c.size, stories.c.active_day)
        with Engine(url) as eng, eng.store.transaction() as conn:
            return tuple(
                sorted(map(tuple, conn.execute(select(*columns)).all()), key=str)
                for columns in (memberships.c, story, syndication.c)  # (not the write times)
            )

    def held(eng: Engine) -> set[str]:
        eng._load()
        return set(eng._story_of)

    once, each = f"sqlite:///{tmp_path / 'once.db'}", f"sqlite:///{tmp_path / 'each.db'}"
    with Engine(settings=Settings(db_url=once, window_days=30)) as eng:
        for n, doc in enumerate(docs):
            eng.ingest_items([doc])
            if n == 4:  # the clock is past day 30, the day-0 article is 30.4 days old ...
                running = held(eng)
                with Engine(settings=Settings(db_url=once, window_days=30)) as again:
                    assert held(again) == running  # ... and a restarted engine holds it too
                assert len(running) == 5
    for doc in docs:
        with Engine(settings=Settings(db_url=each, window_days=30)) as eng:
            eng.ingest_items([doc])
    assert stored(once) == stored(each)


@pytest.mark.parametrize("late_cap", [engine_module.LATE_CAP, 2])
def test_a_restart_holds_the_late_articles_a_running_engine_holds(
    tmp_path: Path, parade_dir: Path, late_cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Articles published long before the window ("late": a backfill, an archive) stay in a
    running engine's memory with their stories until its next eviction, so the next late
    report of the same event joins them even when it is dated weeks apart (too far for the
    read-back of its own weeks); a restarted engine holds them again (it used to load the
    window only, and the later reports below opened stories of their own). Also when late
    articles pile up to ``LATE_CAP`` and leave together (an eviction the clock did not cause)."""
    monkeypatch.setattr(engine_module, "LATE_CAP", late_cap)
    from sqlalchemy import select

    from synoptic.store import memberships, stories, syndication

    now, then = datetime(2025, 6, 1, tzinfo=UTC), datetime(2012, 3, 1, tzinfo=UTC)
    texts = [p.read_text() for p in sorted(parade_dir.iterdir())]
    moments = [now, now, now]
    for n, text in enumerate([*_variants(QUAKE_A), QUAKE_B, QUAKE_A2]):
        texts.append(text)
        moments.append(then + timedelta(days=45 * n))  # weeks apart: no read-back finds it
    docs = []
    for n, (text, moment) in enumerate(zip(texts, moments, strict=True)):
        title, body = text.strip().split("\n\n", 1)
        meta = {"title": title, "published": moment.isoformat()}
        docs.append(Document(f"d{n}", "text", body, meta))

    def stored(url: str) -> tuple[Any, ...]:
        story = (stories.c.id, stories.c.centroid, stories.c.size, stories.c.active_day)
        with Engine(url) as eng, eng.store.transaction() as conn:
            return tuple(
                sorted(map(tuple, conn.execute(select(*columns)).all()), key=str)
                for columns in (memberships.c, story, syndication.c)
            )

    once, each = f"sqlite:///{tmp_path / 'once.db'}", f"sqlite:///{tmp_path / 'each.db'}"
    with Engine(settings=Settings(db_url=once)) as eng:
        reports = [eng.ingest_items([doc]) for doc in docs]
    assert [len(r.late) for r in reports] == [0, 0, 0, 1, 1, 1, 1, 1]
    # (with a cap of 2, every second late article empties memory: the third report comes alone)
    joined = 3 if late_cap > 2 else 2
    quake = {eng.story_of(r.new[0]) for r in reports[3 : 3 + joined]}
    for doc in docs:
        with Engine(settings=Settings(db_url=each)) as eng:
            eng.ingest_items([doc])
    assert stored(once) == stored(each)
    with Engine(each) as eng:
        assert len(quake) == 1 and len(eng.story(quake.pop()).articles) >= joined


def test_the_split_checks_go_on_after_a_restart_with_the_same_matrices(tmp_path: Path) -> None:
    """A story's member matrix (its members' join probabilities, some rows scored with the
    document frequencies of when they came) is saved when the engine closes and is what the
    next engine's split checks go on from, not one rebuilt with today's frequencies; a store
    written to since (another engine, or a crash) does not use it."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    texts = [*_variants(QUAKE_A), QUAKE_A2, *_variants(QUAKE_B)]
    docs = [_document(text, f"d{n}") for n, text in enumerate(texts)]

    def matrices(eng: Engine) -> dict[str, tuple[list[str], Any, int]]:
        eng._load()
        return {k: (m.ids, m.p, m._refreshed_at) for k, m in eng._matrices.items()}

    with Engine(url) as eng:
        eng.ingest_items(docs[:-1])
        before = matrices(eng)
    assert any(len(ids) >= 3 for ids, _, _ in before.values())
    with Engine(url) as eng:
        after = matrices(eng)
        assert after.keys() == before.keys()
        for story_id, (ids, p, refreshed) in before.items():
            assert after[story_id][0] == ids and after[story_id][2] == refreshed
            assert np.array_equal(after[story_id][1], p)
    reader = Engine(url)  # another process, open since before the next article came
    reader._load()
    with Engine(url) as eng:
        eng.ingest_items(docs[-1:])
        saved = matrices(eng)
    reader.close()  # its matrices are older than the store: they do not replace those
    with Engine(url) as eng:
        assert matrices(eng).keys() == saved.keys()
    bundled = ClusterModel.bundled()
    retrained = ClusterModel({**bundled.weights, "body": bundled.weights["body"] + 1}, bundled.bias)
    with Engine(url, cluster_model=retrained) as eng:
        assert matrices(eng) == {}  # scored by another model: rebuilt as needed
    with Engine(url) as eng:
        assert matrices(eng).keys() == saved.keys()
    with Engine(url) as eng:
        late_comer = QUAKE_B + "\n\nRescue teams were still searching the rubble on Sunday."
        assert eng.ingest_items([_document(late_comer, "late-comer")]).new
        eng.store.save_matrix_snapshot = lambda *args: None  # as if it crashed before closing
    with Engine(url) as eng:
        assert matrices(eng) == {}  # the saved ones are older than the store: rebuilt as needed


def test_a_running_engine_goes_on_from_what_another_process_wrote(tmp_path: Path) -> None:
    """A long-running engine (a feed watcher, a server) sees the corrections and articles that
    another process (the command line) stored meanwhile: a copy of a split-off article joins
    it where it is now, a merged story's old id is never written again, and an article the
    other process stored is a duplicate, not a second row."""
    url = f"sqlite:///{tmp_path / 'w.db'}"

    def doc(text: str, name: str) -> Document:
        title, body = text.strip().split("\n\n", 1)
        return Document(name, "text", body, {"title": title, "url": f"https://news.example/{name}"})

    a_docs = [doc(text, f"a{n}") for n, text in enumerate(_variants(QUAKE_A))]
    b_docs = [doc(text, f"b{n}") for n, text in enumerate(_variants(QUAKE_B))]
    watcher = Engine(url)
    try:
        a0, _, a2, b0, _ = watcher.ingest_items(a_docs + b_docs[:2]).new
        story_a, story_b = watcher.story_of(a0), watcher.story_of(b0)
        assert story_a != story_b and watcher.story_of(a2) == story_a
        with Engine(url) as command_line:
            split_off = command_line.split(story_a, [a2])
            assert command_line.merge(story_a, story_b) == story_a
            (b2,) = command_line.ingest_items([b_docs[2]]).new
        report = watcher.ingest_items([doc(_variants(QUAKE_A)[2], "a2-copy"), b_docs[2]])
        assert report.duplicates == [b2] and len(report.new) == 1
        a2_copy = report.new[0]
        b0_copy = watcher.ingest_items([doc(QUAKE_B, "b0-copy")]).new[0]
    finally:
        watcher.close()
    with Engine(url) as eng:
        assert eng.store.story_of(a2_copy) == split_off  # where a2 is now
        assert eng.store.story_of(b0_copy) == story_a  # not the merged-away id
        assert {s.id for s in eng.stories()} == {story_a, split_off}


def _document(text: str, doc_id: str) -> Document:
    title, body = text.strip().split("\n\n", 1)
    return Document(doc_id, "text", body, {"title": title})


def _variants(text: str) -> list[str]:
    """Three reports of one event: the text, its paragraphs reversed, and without its last."""
    title, body = text.strip().split("\n\n", 1)
    paragraphs = body.split("\n\n")
    return [
        text,
        "\n\n".join([title, *reversed(paragraphs)]),
        "\n\n".join([title, *paragraphs[:-1]]),
    ]


def _article(text: str, n: int) -> Article:
    title, body = text.strip().split("\n\n", 1)
    return Article(id=article_id(title, body, f"f{n}"), title=title, text=body)


def test_a_story_of_two_events_splits_in_two() -> None:
    chile = [article_features(_article(t, i)) for i, t in enumerate(_variants(QUAKE_A))]
    japan = [article_features(_article(t, i)) for i, t in enumerate(_variants(QUAKE_B))]
    clusterer = StoryClusterer()
    for feats in chile + japan:
        clusterer.commit(feats, clusterer.assign("x", feats))

    def matrix(members: list[dict]) -> MemberMatrix:
        grown = MemberMatrix()
        for i, feats in enumerate(members):
            grown.add(clusterer, f"a{i}", feats)
        return grown

    mixed = matrix([chile[0], japan[0], chile[1], japan[1], chile[2], japan[2]])
    found = clusterer.split_of(mixed.p)
    assert found is not None and found.stay == [0, 2, 4] and found.leave == [1, 3, 5]
    assert found.probability < clusterer.split_threshold
    assert clusterer.split_of(matrix(chile + chile).p) is None  # one event: no split
    # a refreshed matrix scores each pair as the model scores two one-article stories
    fresh = matrix([chile[0], japan[0], chile[1]])
    fresh.refresh(clusterer)
    units = [clusterer.vectors(f)[0] for f in (chile[0], japan[0], chile[1])]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        cosines = {
            c: sum(v * units[j][c].get(t, 0.0) for t, v in units[i][c].items())
            for c in clusterer.channels
        }
        expected = clusterer.model.probability({**cosines, "log_days_apart": 0.0})
        assert abs(fresh.p[i, j] - expected) < 1e-9 and fresh.p[j, i] == fresh.p[i, j]
    # a subset is the matrix grown from those members alone
    part = mixed.subset(["a1", "a2", "a5"])
    assert np.array_equal(part.p, matrix([japan[0], chile[1], japan[2]]).p)


def test_engine_splits_an_early_merge_and_keeps_the_halves_apart(db_url: str) -> None:
    """An eager setting lets the first Japan report join the Chile story; once the story holds
    enough of both, it splits, the Japan reports move out and --why says so."""
    eager = ClusterModel({**dict.fromkeys(FEATURES, 0.0), "body": 10.0}, -3.0)
    order = [t for pair in zip(_variants(QUAKE_A), _variants(QUAKE_B), strict=True) for t in pair]
    settings = Settings(db_url=db_url, merge_eagerness=0.9)
    with Engine(settings=settings, cluster_model=eager) as engine:
        engine.ingest_items([Document(f"doc{i}", "text", text, {}) for i, text in enumerate(order)])
        stories = sorted(engine.stories(), key=lambda s: s.articles[0].title)
        titles = [sorted({a.title for a in s.articles}) for s in stories]
        assert titles == [
            ["Deadly quake hits Japan's Noto peninsula"],
            ["Strong earthquake strikes southern Chile"],
        ]
        moved = [m for m in engine.memberships(stories[0].id) if "split_automatically" in m.parts]
        assert moved and moved[0].parts["from"] == stories[1].id
    why = CliRunner().invoke(app, ["story", stories[0].id, "--why", "--db", db_url])
    assert why.exit_code == 0 and "split off from" in why.output


EAGER_BODY = ClusterModel({**dict.fromkeys(FEATURES, 0.0), "body": 10.0}, -3.0)
TWO_QUAKES = [
    ["Deadly quake hits Japan's Noto peninsula"],
    ["Strong earthquake strikes southern Chile"],
]


def _stories_after_two_processes(db_url: str, first: ClusterModel, second: ClusterModel) -> list:
    """The two quakes' variants interleaved, the first 4 ingested by one process with model
    ``first`` (their story then holds both events), the rest by a new one with ``second``;
    each story's sorted titles."""
    order = [t for pair in zip(_variants(QUAKE_A), _variants(QUAKE_B), strict=True) for t in pair]
    docs = [Document(f"doc{i}", "text", text, {}) for i, text in enumerate(order)]
    settings = Settings(db_url=db_url, merge_eagerness=0.9)
    for model, part in ((first, docs[:4]), (second, docs[4:])):
        with Engine(settings=settings, cluster_model=model) as engine:
            engine.ingest_items(part)
    with Engine(settings=settings) as engine:
        return sorted(sorted({a.title for a in s.articles}) for s in engine.stories())


def test_a_restart_mid_story_still_splits_it(db_url: str) -> None:
    """The split check's member matrix is not stored: a new process rebuilds it from the stored
    features and reaches the same stories as one uninterrupted run."""
    assert _stories_after_two_processes(db_url, EAGER_BODY, EAGER_BODY) == TWO_QUAKES


def test_a_model_that_weighs_more_channels_continues_a_store(db_url: str) -> None:
    """Stored features hold only the channels of the model that wrote them; a later model that
    weighs more channels (a new bundled model) continues the same store, split checks on the
    stored features included, and still tells the two events apart."""
    every = ClusterModel({**dict.fromkeys(FEATURES, 1.0), "body": 10.0}, -3.5)
    assert _stories_after_two_processes(db_url, EAGER_BODY, every) == TWO_QUAKES


def test_an_article_older_than_the_window_is_reported_late(db_url: str, tmp_path: Path) -> None:
    """Out-of-date-order input costs store reads: the report and the CLI say which articles
    arrived too late for the window and how to avoid it."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    reports = [(40, QUAKE_A), (0, QUAKE_B), (41, _variants(QUAKE_B)[1])]  # day 0 comes late
    path = tmp_path / "archive.jsonl"
    with path.open("w") as handle:
        for day, text in reports:
            title, body = text.strip().split("\n\n", 1)
            published = (start + timedelta(days=day)).isoformat()
            record = {"id": f"d{day}", "title": title, "text": body, "published": published}
            handle.write(json.dumps(record) + "\n")
    first = CliRunner().invoke(app, ["ingest", str(path), "--db", db_url])
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())  # the console wraps long lines
    assert "1 article(s) were published more than 30 days before" in said
    assert "read back from the store" in said and "ingest oldest first" in said
    again = CliRunner().invoke(app, ["ingest", str(path), "--db", db_url, "--json"])
    assert json.loads(again.stdout)["late"] == []  # nothing new, so nothing late
    with Engine(db_url) as engine:  # a later process: the report names the late article
        late = engine.ingest_items(
            [Document("x", "text", QUAKE_B + "\n\nMore.", {"published": start.isoformat()})]
        )
        assert late.late == late.new and len(late.new) == 1
        assert late.new[0] in engine._story_of  # held, until the clock moves or LATE_CAP


def test_late_articles_cannot_grow_memory_past_a_cap(db_url: str, monkeypatch) -> None:
    """Late articles do not move the clock, so they leave memory when LATE_CAP of them (and of
    the stories they read back from the store) have piled up: an archive in any order keeps
    memory bounded."""
    import synoptic.engine

    monkeypatch.setattr(synoptic.engine, "LATE_CAP", 2)
    start = datetime(2025, 1, 1, tzinfo=UTC)

    def doc(text: str, day: int) -> Document:
        published = (start + timedelta(days=day)).isoformat()
        return Document(f"day{day}", "text", text, {"published": published})

    texts = _variants(QUAKE_A) + _variants(QUAKE_B)
    docs = [doc(texts[0], 100)] + [doc(t, i) for i, t in enumerate(texts[1:])]
    with Engine(settings=Settings(db_url=db_url)) as engine:
        report = engine.ingest_items(docs)
        assert len(report.late) == 5 and len(report.new) == 6
        # late articles left memory each time two had piled up (days 0-1, then 2-3); the fifth
        # (day 4) is held, with the four before it read back from the store for it: two of
        # its own story, and two of the day-100 story (still in memory) from its days
        assert engine._late_held == 1 and engine._recalled_held == 4
        held = [a for a in report.late if a in engine._story_of]
        assert held == report.late
        assert engine.store.count_articles() == 6  # the store keeps every one


def test_an_archive_out_of_date_order_keeps_its_stories(db_url: str) -> None:
    """An article older than the window joins its own story, read back from the store after it
    left memory, and a late wire copy is recognised as one; the window is measured from the
    article's own date, whatever the order."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    a, b = _variants(QUAKE_A), _variants(QUAKE_B)
    order = [(b[0], 60), (a[0], 0), (b[1], 61), (a[1], 1), (b[2], 62), (a[2], 2)]
    with Engine(settings=Settings(db_url=db_url)) as engine:
        ids = []
        for n, (text, day) in enumerate(order):
            published = (start + timedelta(days=day)).isoformat()
            report = engine.ingest_items(
                [Document(f"d{n}", "text", text, {"published": published})]
            )
            ids += report.new
        assert len(ids) == 6
        stories = [engine.story_of(i) for i in ids]
        # the variants are copies of one text: each late one is recognised as a copy of the
        # first, whose fingerprint came back from the store with its story
        groups = engine.story(stories[1]).groups
        assert [set(g.article_ids) for g in groups] == [{ids[1], ids[3], ids[5]}]
    assert stories[1] == stories[3] == stories[5]  # quake A, days 0-2, each late
    assert stories[0] == stories[2] == stories[4]  # quake B, days 60-62
    assert stories[0] != stories[1]


def test_no_story_joins_an_article_further_than_the_window() -> None:
    clusterer = StoryClusterer(window_days=30)
    day0 = {**article_features(_article(QUAKE_A, 0)), "day": 0.0}
    clusterer.partial_fit([("a0", day0)])
    for day, joins in ((20.0, True), (-25.0, True), (45.0, False), (-31.0, False)):
        feats = {**article_features(_article(QUAKE_A, 1)), "day": day}
        assert clusterer.assign("a1", feats).new_story is not joins, day


def test_a_copy_goes_to_its_originals_story_scored_against_it_alone() -> None:
    """A copy (``forced``) is not searched for a story: it joins its original's, with the
    probability and parts of that story, names no runner-up (so it starts no late merge),
    and learns as any joined article does."""
    clusterer = StoryClusterer()
    clusterer.partial_fit(
        [
            ("chile", article_features(_article(QUAKE_A, 0))),
            ("japan", article_features(_article(QUAKE_B, 1))),
        ]
    )
    chile, japan = sorted(clusterer.stories_)
    feats = article_features(_article(QUAKE_A2, 2))
    free = clusterer.assign("a2", feats)
    assert free.story_id == chile and free.runner_up == japan
    copy = clusterer.assign("a2", feats, forced=japan)  # (an odd copy: Chile's text in Japan)
    assert copy.story_id == japan and not copy.new_story and copy.runner_up is None
    assert copy.runner_up_score == 0.0 and copy.parts["syndicated_copy"] == 1.0
    own = clusterer.features(clusterer.vectors(feats)[1], feats["day"], japan)
    assert copy.parts["body"] == round(own["body"], 4)
    assert copy.score == round(clusterer.model.probability(own), 4) < clusterer.threshold
    assert copy.units == free.units and copy.state.size == 2
    clusterer.commit(feats, copy)
    assert clusterer.stories_[japan].size == 2 and clusterer.n_docs_ == 3


def test_dates_never_make_a_join_likelier() -> None:
    """Undated scores as published together; a gap can only lower the join probability (with
    the bundled model, whose gap weight may not be positive, and with one that uses the gap)."""
    bundled = ClusterModel.bundled()
    assert bundled.weights["log_days_apart"] <= 0
    wary = ClusterModel({**bundled.weights, "log_days_apart": -1.0}, bundled.bias)
    for model, strictly in ((bundled, False), (wary, True)):
        clusterer = StoryClusterer(model=model)
        clusterer.partial_fit([("a0", {**article_features(_article(QUAKE_A, 0)), "day": 100.0})])
        scores = []
        for day in (None, 100.0, 103.0, 120.0):
            feats = {**article_features(_article(QUAKE_A2, 1)), "day": day}
            [(p, _, parts)] = clusterer.score(feats)[0]
            scores.append(p)
            assert parts["log_days_apart"] == (0.0 if day is None else np.log1p(day - 100.0))
        assert scores[0] == scores[1] >= scores[2] >= scores[3]
        assert not strictly or scores[1] > scores[2] > scores[3]


def test_a_late_copy_of_an_article_that_left_a_running_story_is_a_copy(db_url: str) -> None:
    """A story still in memory whose first article left it (older than the window): a late
    copy of that article is recognised as a copy (the article is read back for it)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)

    def doc(name: str, text: str, day: int) -> Document:
        return Document(
            name, "text", text, {"published": (start + timedelta(days=day)).isoformat()}
        )

    with Engine(settings=Settings(db_url=db_url)) as engine:
        first = engine.ingest_items([doc("a", QUAKE_A, 0)]).new[0]
        engine.ingest_items([doc("b", QUAKE_A2, 25), doc("c", _variants(QUAKE_A2)[1], 45)])
        assert first not in engine._story_of  # left memory; its story goes on
        late = engine.ingest_items([doc("d", _variants(QUAKE_A)[1], 1)])
        assert late.late == late.new and len(late.new) == 1
        story = engine.story(engine.story_of(first))
        assert engine.story_of(late.new[0]) == story.id and len(story.articles) == 4
        assert {first, late.new[0]} in [set(g.article_ids) for g in story.groups]


TOPICS = [
    "harbour bridge",
    "city budget",
    "school strike",
    "river flood",
    "airport runway",
    "museum fire",
]


def _monthly(n: int) -> list[Document]:
    """Unrelated articles a month apart: the 30-day window holds one at a time."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        Document(
            f"month{i}",
            "text",
            f"Council report on the {topic}\n\nOfficials in district {i} said the {topic} plan "
            f"would cost {i + 2} million and take {i + 3} years, according to report number {i}.",
            {"published": (start + timedelta(days=40 * i)).isoformat()},
        )
        for i, topic in enumerate(TOPICS[:n])
    ]


def test_the_idf_counts_the_last_articles_however_sparse_the_window(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small archive spread over months still gets document frequencies from its last
    IDF_FLOOR articles, not only the one or two in its window; a restart counts the same."""
    monkeypatch.setattr(engine_module, "IDF_FLOOR", 4)
    with Engine(db_url) as engine:
        engine.ingest_items(_monthly(6))
        clusterer = engine._clusterer
        assert clusterer is not None and len(engine._story_of) == 1  # the window: the last one
        assert clusterer.n_docs_ == 4  # the last 4 stored (the held one among them)
        df = {c: dict(v) for c, v in clusterer.df_.items()}
    with Engine(db_url) as restarted:
        restarted._load()
        again = restarted._clusterer
        assert again is not None and again.n_docs_ == 4
        assert {c: dict(v) for c, v in again.df_.items()} == df


def test_channels_the_model_gives_no_weight_are_skipped_and_change_no_score() -> None:
    """The bundled model weighs some channels 0: they are neither computed nor counted, and
    every score is the one the model gives the full set of features."""
    model = ClusterModel.bundled()
    skipped = set(CHANNELS) - set(model.channels)
    assert skipped and "body" in model.channels
    texts = [QUAKE_A, QUAKE_B, QUAKE_A2]
    lean = StoryClusterer(model=model)
    full = StoryClusterer(model=ClusterModel(dict.fromkeys(FEATURES, 1.0), 0.0))
    for n, text in enumerate(texts * 2):
        feats = article_features(_article(text, n), model.channels)
        assert skipped.isdisjoint(feats)
        every = article_features(_article(text, n))
        scored, _ = lean.score(feats)
        _, vectors = full.vectors(every)
        for p, story_id, parts in scored:
            assert skipped.isdisjoint(parts)
            assert p == pytest.approx(model.probability(full.features(vectors, None, story_id)))
        assignment = lean.assign(f"a{n}", feats)
        lean.commit(feats, assignment)
        joined = full.stories_.get(assignment.story_id, StoryState()).joined(every)
        full.commit(every, dataclasses.replace(assignment, state=joined))
        assert full.stories_.keys() == lean.stories_.keys()


def test_a_capitalised_ordinary_word_is_a_name_only_inside_a_sentence() -> None:
    """The entity channel's names: "Rain" starting a sentence (the text's start, after ! ? ;
    and white space, at a line's start) is the ordinary word "rain" of the same text; inside a
    sentence it is a name (a band); multi-word names also give their last word."""
    from synoptic.text import name_phrases

    text = (
        "Rain hit Valparaiso on Monday!  Rain fell again, and the rain stopped?\n"
        "Rain returned, and the band Rain played; Rain is expected, said Michelle Bachelet"
    )
    assert name_phrases(text) == ["valparaiso", "monday", "rain", "michelle bachelet", "bachelet"]


def _reference_cosines(
    clusterer: StoryClusterer, feats: dict[str, Any], story_id: str
) -> dict[str, float]:
    """The join cosines by their definition, in plain Python: idf-weighted sublinear article
    terms against the idf-weighted story weights, with the current document frequencies."""
    df = clusterer.df_
    out = {}
    for channel in clusterer.channels:

        def idf(term: str, channel: str = channel) -> float:
            return math.log((clusterer.n_docs_ + 2) / (df[channel].get(term, 0) + 1)) + 1

        article = {t: (1 + math.log(c)) * idf(t) for t, c in feats[channel].items()}
        story = {t: v * idf(t) for t, v in clusterer.stories_[story_id].channels[channel].items()}
        dot = sum(w * story.get(t, 0.0) for t, w in article.items())
        norms = math.sqrt(sum(w * w for w in article.values())) * math.sqrt(
            sum(w * w for w in story.values())
        )
        out[channel] = dot / (norms or 1.0)
    return out


def test_candidates_scored_together_score_as_their_definition() -> None:
    """``features_of`` sums all candidates' terms in one array: each story's cosines are still
    their definition, also next to a story with no names (an empty segment of that array)."""
    clusterer = StoryClusterer()
    named = {"body": {"quake": 2.0, "chile": 1.0, "kill": 1.0}, "entities": {"chile": 1.0}}
    nameless = {"body": {"quake": 1.0, "flood": 3.0}, "entities": {}}
    other = {"body": {"storm": 2.0, "wind": 1.0}, "entities": {"texas": 1.0}}
    for n, f in enumerate([named, nameless, other]):
        f = f | {"day": None}
        clusterer.commit(f, clusterer.assign(f"a{n}", f, forced=None))
    query_feats = {
        "body": {"quake": 1.0, "chile": 2.0, "storm": 1.0},
        "entities": {"chile": 1.0, "texas": 1.0},  # (what a story after the nameless one has)
        "day": None,
    }
    _, query = clusterer.vectors(query_feats)
    story_ids = sorted(clusterer.stories_)
    assert len(story_ids) == 3
    together = clusterer.features_of(query, None, story_ids)
    for story_id, got in zip(story_ids, together, strict=True):
        expected = _reference_cosines(clusterer, query_feats, story_id)
        assert {c: got[c] for c in expected} == pytest.approx(expected)
    assert min(f["entities"] for f in together) == 0.0  # the nameless story


def test_term_ids_grow_and_renumber_without_changing_a_score(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clusterer keeps each channel's terms as integer ids over arrays that grow as terms
    arrive and are renumbered once terms no counted article has pile up: neither changes a
    document frequency or a score, and the scores are the cosines of their definition."""
    rng = random.Random(7)
    vocabulary = [f"term{i}" for i in range(6000)]  # past the arrays' first size (1,024)

    def feats(n: int) -> dict[str, Any]:
        terms = rng.sample(vocabulary, 200)
        return {
            "body": {t: float(rng.randint(1, 4)) for t in terms},
            "entities": {t: 1.0 for t in terms[:30]},
            "day": None,
        }

    articles = [feats(n) for n in range(60)]
    queries = [feats(n) for n in range(5)]
    model = ClusterModel.bundled()
    renumbering, steady = StoryClusterer(model=model), StoryClusterer(model=model)
    monkeypatch.setattr(cluster_module, "TERMS_SLACK", 50)  # renumbers often (100,000 bundled)
    placed = []
    for n, f in enumerate(articles):
        assignment = renumbering.assign(f"a{n}", f)
        placed.append((assignment.story_id, assignment.score, assignment.runner_up))
        renumbering.commit(f, assignment)
        if n >= 5:  # an older article leaves the window
            renumbering.count(articles[n - 5], -1)
    monkeypatch.setattr(cluster_module, "TERMS_SLACK", 10**9)  # never renumbers
    for n, f in enumerate(articles):
        assignment = steady.assign(f"a{n}", f)
        assert (assignment.story_id, assignment.score, assignment.runner_up) == placed[n]
        steady.commit(f, assignment)
        if n >= 5:
            steady.count(articles[n - 5], -1)
    body = renumbering._terms["body"]
    assert len(body.id_of) < len(steady._terms["body"].id_of)  # renumbered: fewer ids
    assert renumbering.df_ == steady.df_
    assert renumbering.stories_.keys() == steady.stories_.keys()
    for f in queries:
        _, query = renumbering.vectors(f)
        _, again = steady.vectors(f)
        for story_id in renumbering.stories_:
            got = renumbering.features(query, None, story_id)
            assert got == pytest.approx(steady.features(again, None, story_id))
            expected = _reference_cosines(renumbering, f, story_id)
            assert {c: got[c] for c in expected} == pytest.approx(expected)


def test_a_name_runs_on_after_an_abbreviation_but_not_past_a_sentence_end() -> None:
    """Names for the clustering's name channel: a run of capitalised words goes on after a
    title's or an initial's period, never after another word's (the next sentence's first
    word is not part of the name), and a stopword never ends a name or stands as one."""
    from synoptic.text import name_phrases

    text = (
        "George W. Bush met Gov. Jerry Brown in St. Louis and flew on to Nepal. The climbers "
        "thanked the U.S. Navy, and then the U.S. They left with Police Capt. Tom Tennant."
    )
    assert name_phrases(text) == [
        "george w bush",
        "bush",
        "gov jerry brown",
        "brown",
        "st louis",
        "louis",
        "nepal",
        "u.s navy",
        "navy",
        "u.s",
        "police capt tom tennant",
        "tennant",
    ]


def test_the_story_list_is_the_stories_without_texts_in_two_queries(
    engine: Engine, parade_dir: Path, tmp_path: Path
) -> None:
    """Lists (`synoptic stories`, the web page, the API, the Atom feed) read every story in two
    queries, not story by story with every article's text (8 s for a store of 20,000
    articles); they show the same stories, headlines, reports and article metadata."""
    from sqlalchemy import event

    from synoptic.render import story_json

    engine.ingest([parade_dir])
    for n, text in enumerate([QUAKE_A, QUAKE_B, *_variants(QUAKE_A)]):
        (tmp_path / f"q{n}.txt").write_text(text)
    engine.ingest([tmp_path])
    statements: list[str] = []
    event.listen(engine.store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    listed = engine.story_list()
    assert len(statements) == 2
    full = engine.stories()
    assert len(full) >= 3 and [story_json(s) for s in listed] == [story_json(s) for s in full]
    assert [s.independent_reports for s in listed] == [s.independent_reports for s in full]
    assert all(a.text == "" for s in listed for a in s.articles)
    # a page: the count, its stories, and only their articles
    statements.clear()
    assert engine.story_page(StorySelection(limit=1)) == (len(full), listed[:1])
    assert len(statements) == 3
