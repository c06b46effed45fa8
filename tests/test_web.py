"""The HTTP API and pages, in-process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from synoptic import Engine
from synoptic.errors import SynopticError
from synoptic.ingest import json_document
from synoptic.web import create_app, server_token

from .conftest import QUAKE_A, QUAKE_B

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def request(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def parade_app(engine: Engine, parade_dir: Path):
    engine.ingest([parade_dir])
    return create_app(engine)


def test_story_list_and_brief_json(parade_app, engine: Engine) -> None:
    listing = request(parade_app, "GET", "/api/stories").json()
    assert listing["total"] == 1 and listing["page"] == 1
    story = listing["stories"][0]
    assert story["independent_reports"] == 2 and len(story["articles"]) == 3
    brief = request(parade_app, "GET", f"/api/stories/{story['id']}").json()
    assert brief["id"] == story["id"] and brief["independent_reports"] == 2
    assert any(c["status"] == "agreed" for c in brief["claims"])
    article = request(parade_app, "GET", f"/api/articles/{story['articles'][0]['id']}").json()
    assert (
        article["text"] and isinstance(article["removed"], list) and article["story"] == story["id"]
    )
    assert request(parade_app, "GET", "/api/stories/s_missing").status_code == 404
    assert request(parade_app, "GET", "/healthz").text == "ok"
    held = request(parade_app, "GET", "/api/status").json()
    assert (held["articles"], held["stories"]) == (3, 1) and held["last_ingest"]
    assert request(parade_app, "GET", "/openapi.json").json()["info"]["title"] == "synoptic"


def test_filters_and_full_text_search(parade_app) -> None:
    assert request(parade_app, "GET", "/api/stories", params={"q": "Fico"}).json()["total"] == 1
    assert (
        request(parade_app, "GET", "/api/stories", params={"q": "earthquake"}).json()["total"] == 0
    )
    assert (
        request(
            parade_app, "GET", "/api/stories", params={"outlet": "the kyiv independent"}
        ).json()["total"]
        == 1
    )
    assert (
        request(parade_app, "GET", "/api/stories", params={"outlet": "Nobody"}).json()["total"] == 0
    )
    assert (
        request(parade_app, "GET", "/api/stories", params={"entity": "Robert Fico"}).json()["total"]
        == 1
    )
    assert (
        request(parade_app, "GET", "/api/stories", params={"since": "2999-01-01T00:00:00Z"}).json()[
            "total"
        ]
        == 0
    )
    assert request(parade_app, "GET", "/api/stories", params={"q": " "}).json()["total"] == 1
    sources = request(parade_app, "GET", "/api/sources").json()
    assert {s["outlet"] for s in sources} >= {"The Straits Times", "The Kyiv Independent"}
    # a NUL in a query ended SQLite's full-text query early: a 503 "database failed"
    for url in ("/api/stories?q=Kim%00Putin", "/?q=%00", "/entities/%00"):
        assert request(parade_app, "GET", url).status_code == 200, url
    assert request(parade_app, "GET", "/api/stories?q=Kim%00").json()["total"] == 1


def test_story_page_shows_reports_side_by_side(parade_app) -> None:
    story_id = request(parade_app, "GET", "/api/stories").json()["stories"][0]["id"]
    page = request(parade_app, "GET", f"/stories/{story_id}")
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    html = page.text
    assert html.count('class="report-column"') == 2
    assert html.count('class="report-article"') == 3
    assert "Reuters wire, 2 articles" in html
    citation = (
        re.search(r'href="(/articles/[^"]+\?hl=\d+-\d+#hl)"', html).group(1).replace("&amp;", "&")
    )
    article = request(parade_app, "GET", citation).text
    marked = re.search(r'<mark id="hl">(.*?)</mark>', article, re.S).group(1)
    assert len(marked) > 20
    assert request(parade_app, "GET", "/").status_code == 200
    entity = request(parade_app, "GET", "/entities/robert%20fico")
    assert entity.status_code == 200 and f"/stories/{story_id}" in entity.text
    assert "3 articles, 2 independent reports" in entity.text
    # the timeline reads its dates: "--09-03" (September 3rd, no year given) was shown as such
    timeline = html[
        html.index('<ol class="timeline">') : html.index(
            "</ol>", html.index('<ol class="timeline">')
        )
    ]
    assert "<time>3 September</time>" in timeline and "--09-03" not in timeline
    assert "<time>2024</time>" in timeline


def test_a_large_storys_page_says_what_its_brief_read(parade_app, engine: Engine) -> None:
    """Past the writer's max_articles the brief reads one article per report (here: the
    latest of the two); the page shows a column for the reports it read and says so."""
    story_id = request(parade_app, "GET", "/api/stories").json()["stories"][0]["id"]
    engine.writer.max_articles = 1
    html = request(parade_app, "GET", f"/stories/{story_id}").text
    assert html.count('class="report-column"') == 1
    assert "briefed from 1 of its 3 articles" in html
    brief = request(parade_app, "GET", f"/api/stories/{story_id}").json()
    assert len(brief["unread_article_ids"]) == 2 and brief["n_articles"] == 3


def test_the_page_names_six_sources_of_a_summary_sentence_and_counts_the_rest(
    engine: Engine,
) -> None:
    """Nine outlets' reports of one flood: each summary sentence links six of them on the
    page, "+3 more" after, as in the terminal; the JSON cites all nine."""
    from .test_brief import FLOOD_A

    title, body = FLOOD_A.strip().split("\n\n", 1)
    engine.ingest_items(
        [
            json_document(
                {
                    "title": title,
                    "text": body.replace("Tuesday", f"day {n}"),
                    "url": f"https://outlet{n}.example/floods",
                },
                f"report {n}",
            )
            for n in range(9)
        ]
    )
    app = create_app(engine)
    stories = request(app, "GET", "/api/stories").json()["stories"]
    assert len(stories) == 1
    brief = request(app, "GET", f"/api/stories/{stories[0]['id']}").json()
    assert brief["n_articles"] == 9
    lead = brief["summary"][0]
    assert len({c["article_id"] for c in lead["citations"]}) == 9
    page = request(app, "GET", f"/stories/{stories[0]['id']}").text
    summary = page[page.index('class="summary"') :]
    first = summary[summary.index("<li") : summary.index("</li>")]
    assert first.count('class="cite"') == 6 and "+3 more" in first


def test_a_story_of_many_reports_shows_eight_columns_and_lists_the_others(
    engine: Engine, tmp_path: Path
) -> None:
    """A story told by a hundred outlets made a table of a hundred columns (sixty read):
    the page shows the eight reports that carry the most claims side by side, says how many
    other reports state each claim, and lists the others below."""
    from synoptic.web import COLUMNS_SHOWN

    from .test_ingest import _stream

    stream = tmp_path / "ten.jsonl"
    _stream(stream, 10)  # ten reports of one story, each its own text
    engine.ingest([stream])
    app = create_app(engine)
    stories = request(app, "GET", "/api/stories").json()["stories"]
    assert [s["independent_reports"] for s in stories] == [10]
    page = request(app, "GET", f"/stories/{stories[0]['id']}").text
    assert page.count('class="report-column"') == COLUMNS_SHOWN == 8
    assert "2 other reports (listed below)" in page
    listed = page[page.index('<ul class="other-reports">') :]
    listed = listed[: listed.index("</ul>")]
    assert listed.count("<li data-group=") == 2
    shown = set(re.findall(r'class="report-column" data-group="([^"]+)"', page))
    assert not shown & set(re.findall(r'<li data-group="([^"]+)"', listed))
    assert re.search(r'<td class="elsewhere">\+[12]</td>', page)


def test_a_wire_text_of_many_copies_names_three_and_folds_the_rest(engine: Engine) -> None:
    """A report republished by thirty outlets listed all thirty at the head of its column,
    so the claims began a screen further down: three are named, the rest folded below."""
    from synoptic.web import COPIES_SHOWN

    from .test_brief import FLOOD_A

    title, body = FLOOD_A.strip().split("\n\n", 1)
    engine.ingest_items(
        [
            json_document(
                {"title": title, "text": body, "url": f"https://outlet{n}.example/floods"},
                f"copy {n}",
            )
            for n in range(7)
        ]
    )
    app = create_app(engine)
    stories = request(app, "GET", "/api/stories").json()["stories"]
    assert [(len(s["articles"]), s["independent_reports"]) for s in stories] == [(7, 1)]
    page = request(app, "GET", f"/stories/{stories[0]['id']}").text
    head = page[
        page.index('class="report-column"') : page.index(
            "</th>", page.index('class="report-column"')
        )
    ]
    folded = head[head.index('<details class="more-copies">') :]
    assert head.count('class="report-article"') == 7 and COPIES_SHOWN == 3
    assert folded.count('class="report-article"') == 4 and "4 more copies" in folded


def test_the_story_list_pages_and_names_a_few_outlets(
    engine: Engine, parade_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past fifty stories the index page had no way to the next ones, and a story of a
    hundred outlets listed all hundred under its headline."""
    import synoptic.web

    engine.ingest([parade_dir])
    for n, text in enumerate([QUAKE_A, QUAKE_B]):
        (tmp_path / f"quake{n}.txt").write_text(text)
    engine.ingest([tmp_path])
    monkeypatch.setattr(synoptic.web, "STORIES_PER_PAGE", 1)
    app = create_app(engine)
    first = request(app, "GET", "/").text
    assert "page 1 of 3" in first and 'rel="prev"' not in first
    older = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = request(app, "GET", older).text
    assert "page 2 of 3" in second and 'href="/?page=1"' in second and 'href="/?page=3"' in second
    assert '<ol class="story-list" start="2">' in second  # numbered on from the first page
    headlines = set()
    for url in ("/?page=1", "/?page=2", "/?page=3"):
        headlines |= set(
            re.findall(r'class="headline" href="/stories/([^"]+)"', request(app, "GET", url).text)
        )
    assert len(headlines) == 3
    assert "No stories on this page: there are 3" in request(app, "GET", "/?page=9").text
    found = request(app, "GET", "/", params={"q": "Noto peninsula"}).text
    assert found.count('class="headline"') == 1 and 'class="pages"' not in found
    feed = request(app, "GET", "/stories.atom", params={"q": "Noto", "sort": "reports"}).text
    assert feed.count("<entry>") == 1 and "stories.atom?q=Noto&amp;sort=reports" in feed
    named = request(app, "GET", "/entities/the", params={"page": 2}).text  # (in all three)
    assert "page 2 of 3" in named and 'href="/entities/the?page=3"' in named
    assert 'href="/entities/the?sort=reports&amp;page=1">most reported first' in named
    # most reported first: the parade story (two reports) before the later quakes (one each)
    by_date = [
        s["independent_reports"] for s in request(app, "GET", "/api/stories").json()["stories"]
    ]
    by_reports = request(app, "GET", "/api/stories", params={"sort": "reports"}).json()
    assert by_date == [1, 1, 2] and [s["independent_reports"] for s in by_reports["stories"]] == [
        2,
        1,
        1,
    ]
    assert request(app, "GET", "/api/stories", params={"sort": "size"}).status_code == 422
    page = request(app, "GET", "/", params={"sort": "reports", "page": 2}).text
    assert (
        "<strong>most reported first</strong>" in page
        and 'href="/?sort=reports&amp;page=3"' in page
    )
    assert 'href="/?page=1">most recent first</a>' in page
    none = request(app, "GET", "/", params={"q": "zebra"}).text
    assert '<p class="empty">No story matches.</p>' in none and "story-list" not in none

    title, body = QUAKE_A.strip().split("\n", 1)
    engine.ingest_items(
        [
            json_document(
                {
                    "title": title,
                    "text": body,
                    "outlet": f"Paper {n}",
                    "url": f"https://paper{n}.example/quake",
                    "published": f"2025-03-0{n + 1}T10:00:00Z",
                },
                f"copy {n}",
            )
            for n in range(6)
        ]
    )
    page = request(app, "GET", "/", params={"outlet": "paper 5"}).text
    assert "Paper 0, Paper 1, Paper 2 and 3 more outlets" in page and "Paper 3" not in page
    # an archive's stories were all "updated" at its import: the newest publication tells them
    assert 'latest published <time datetime="2025-03-06T10:00:00+00:00">2025-03-06</time>' in page
    listed = request(app, "GET", "/api/stories", params={"outlet": "paper 5"}).json()
    assert listed["stories"][0]["published"] == "2025-03-06T10:00:00+00:00"


def test_post_articles_ingests_and_reports_rejections(engine: Engine) -> None:
    app = create_app(engine)
    body = [
        {"id": "x1", "title": "Quake", "text": QUAKE_A},
        {"id": "x2", "title": "no text"},
        "nonsense",
    ]
    result = request(app, "POST", "/api/articles", json=body).json()
    assert len(result["new"]) == 1
    assert [r["origin"] for r in result["rejected"]] == ["request#1", "request#2"]
    again = request(app, "POST", "/api/articles", json=body[0]).json()
    assert again["duplicates"] == result["new"]
    json_type = {"Content-Type": "application/json"}
    bad = request(app, "POST", "/api/articles", content=b"{not json", headers=json_type)
    assert bad.status_code == 400
    # a cross-site form or text/plain post (which a browser sends without asking) is refused
    form = request(app, "POST", "/api/articles", content=json.dumps(body[0]).encode())
    assert form.status_code == 415 and "application/json" in form.json()["detail"]


def test_a_server_of_a_store_it_may_only_read(
    db_url: str, parade_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serving another user's store, or a read-only copy: pages and the API read it; a
    write is answered 503 with why (it was a 500 with no reason)."""
    with Engine(db_url) as eng:
        eng.ingest([parade_dir])
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: not mode & os.W_OK and real_access(path, mode)
    )
    with Engine(db_url) as eng:
        app = create_app(eng)
        story_id = request(app, "GET", "/api/stories").json()["stories"][0]["id"]
        shown = request(app, "GET", f"/stories/{story_id}")
        assert shown.status_code == 200 and "may only read the store" in shown.text
        assert 'class="correct"' not in shown.text  # (buttons that could only fail)
        refused = request(app, "POST", "/api/articles", json={"title": "Quake", "text": QUAKE_A})
        assert refused.status_code == 503 and "read-only" in refused.json()["detail"]


def test_pages_are_answered_while_a_write_runs(
    parade_app, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long ingest runs in a worker thread, not on the server's event loop: reads and pages
    are answered meanwhile (they see what is committed), and writes take turns."""
    started, release = threading.Event(), threading.Event()
    real = engine.ingest_items

    def slow_ingest(items: Any) -> Any:
        started.set()
        release.wait(10)  # (a guard: the test releases it as soon as the reads are answered)
        return real(items)

    monkeypatch.setattr(engine, "ingest_items", slow_ingest)
    story = engine.stories()[0]

    async def go() -> tuple[list[httpx.Response], bool, httpx.Response]:
        transport = httpx.ASGITransport(app=parade_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"id": "q1", "title": "Quake", "text": QUAKE_A}
            posting = asyncio.create_task(client.post("/api/articles", json=body))
            assert await asyncio.to_thread(started.wait, 10)
            reads = [
                await client.get(url)
                for url in (
                    "/healthz",
                    "/api/stories",
                    f"/stories/{story.id}",
                    f"/api/articles/{story.articles[0].id}",
                )
            ]
            still_writing = not posting.done()
            release.set()
            return reads, still_writing, await posting

    reads, still_writing, posted = asyncio.run(go())
    assert [r.status_code for r in reads] == [200, 200, 200, 200]
    assert reads[3].json()["story"] == story.id
    assert still_writing  # the reads were answered while the ingest was under way
    assert posted.status_code == 200 and len(posted.json()["new"]) == 1


def test_a_database_failure_is_503_with_what_to_do(
    parade_app, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(engine.store, "story_listing", gone)
    failed = request(parade_app, "GET", "/api/stories")
    assert failed.status_code == 503
    assert "server closed the connection" in failed.json()["detail"]


def test_why_each_article_is_in_the_story(parade_app) -> None:
    story_id = request(parade_app, "GET", "/api/stories").json()["stories"][0]["id"]
    why = request(parade_app, "GET", f"/api/stories/{story_id}/why").json()
    assert why["id"] == story_id and len(why["articles"]) == 3
    reasons = [row["reason"] for row in why["articles"]]
    assert sum(r.startswith("opened the story") for r in reasons) == 1
    assert all(
        {"article", "score", "parts", "runner_up", "reason"} <= set(r) for r in why["articles"]
    )
    page = request(parade_app, "GET", f"/stories/{story_id}").text
    assert "Why these 3 articles are in this story" in page
    for reason in reasons:
        assert html.escape(reason, quote=False) in page
    assert request(parade_app, "GET", "/api/stories/s_nope/why").status_code == 404


def test_corrections_over_http(engine: Engine, parade_dir: Path) -> None:
    engine.ingest([parade_dir])
    app = create_app(engine, token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    story = request(app, "GET", "/api/stories").json()["stories"][0]
    leaving = story["articles"][0]["id"]
    url = f"/api/stories/{story['id']}"
    assert request(app, "POST", f"{url}/split", json={"articles": [leaving]}).status_code == 401
    split = request(app, "POST", f"{url}/split", json={"articles": [leaving]}, headers=auth)
    assert split.status_code == 200, split.text
    moved = split.json()
    assert moved["story"] == story["id"] and moved["moved"] == [leaving]
    assert request(app, "GET", f"/api/articles/{leaving}").json()["story"] == moved["new_story"]
    for body, status in (
        ({"articles": "a_1"}, 400),  # not a list
        ({"articles": ["a_nope"]}, 404),  # not in the story
        ({"articles": [a["id"] for a in story["articles"][1:]]}, 400),  # all that is left
    ):
        answer = request(app, "POST", f"{url}/split", json=body, headers=auth)
        assert answer.status_code == status and answer.json()["detail"], (body, answer.text)
    merge = request(app, "POST", f"{url}/merge", json={"other": moved["new_story"]}, headers=auth)
    assert merge.json() == {"story": story["id"], "merged": moved["new_story"]}
    assert request(app, "GET", f"/api/articles/{leaving}").json()["story"] == story["id"]
    again = request(app, "POST", f"{url}/merge", json={"other": moved["new_story"]}, headers=auth)
    assert again.status_code == 400 and "already one story" in again.json()["detail"]
    assert request(app, "POST", f"{url}/merge", json={}, headers=auth).status_code == 400
    unknown = request(
        app, "POST", "/api/stories/s_nope/merge", json={"other": story["id"]}, headers=auth
    )
    assert unknown.status_code == 404


def test_write_token_and_body_cap(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(engine, token="s3cret")
    body = {"title": "Quake", "text": QUAKE_A}
    assert request(app, "POST", "/api/articles", json=body).status_code == 401
    ok = request(
        app, "POST", "/api/articles", json=body, headers={"Authorization": "Bearer s3cret"}
    )
    assert ok.status_code == 200
    too_big = request(
        app,
        "POST",
        "/api/articles",
        content=b"[" + b" " * (21 * 1024 * 1024) + b"]",
        headers={"Authorization": "Bearer s3cret"},
    )
    assert too_big.status_code == 413
    monkeypatch.delenv("SYNOPTIC_TOKEN", raising=False)
    assert server_token("127.0.0.1") is None
    with pytest.raises(SynopticError, match="SYNOPTIC_TOKEN"):
        server_token("0.0.0.0")
    monkeypatch.setenv("SYNOPTIC_TOKEN", "abc")
    assert server_token("0.0.0.0") == "abc"


def test_untrusted_text_renders_inert_everywhere(engine: Engine) -> None:
    evil = {
        "id": XSS,
        "title": "Quake " + XSS,
        "text": QUAKE_A + "\n\n" + XSS + " is what the attacker wrote in the body of the article.",
        "url": "javascript:alert(1)",
        "outlet": XSS,
    }
    report = engine.ingest_items([json_document(evil, "evil")])
    app = create_app(engine)
    story_id = engine.story_of(report.new[0])
    pages = [
        "/",
        f"/stories/{story_id}",
        f"/articles/{report.new[0]}",
        f"/articles/{report.new[0]}?hl=0-50",
        "/entities/quake",
        "/?q=Quake",
    ]
    for url in pages:
        html = request(app, "GET", url).text
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert 'href="javascript:' not in html, url
        assert "&lt;script&gt;" in html, url  # the payload is shown, escaped
    for url in (f"/api/stories/{story_id}", f"/api/articles/{report.new[0]}"):
        assert request(app, "GET", url).headers["content-type"].startswith("application/json")
    feed = request(app, "GET", "/stories.atom").text
    assert "<script>" not in feed and json.dumps(XSS) not in feed


def test_claims_that_only_unshown_reports_state_are_counted_under_the_table() -> None:
    """Reports past the eighth are the ones carrying fewest claims; a claim only they state
    gets no row (it would be a row of empty cells) and is counted under the table."""
    from synoptic.brief import BriefWriter
    from synoptic.model import Story, SyndicationGroup
    from synoptic.web import synopsis_context

    from .test_brief import FLOOD_A, art

    full = [art(FLOOD_A, f"https://outlet{n}.example/floods") for n in range(8)]
    title = FLOOD_A.split("\n\n")[0]
    short = [
        art(
            f"{title}\n\nHeavy rain flooded towns across the Emilia-Romagna region on Tuesday, "
            f"forcing 10,000 people from their homes, the civil protection agency said.\n\n{extra}",
            f"https://brief{n}.example/floods",
        )
        for n, extra in enumerate(
            [
                "A volunteer fire brigade from Bologna pumped water out of a hospital basement.",
                "Farmers near Lugo counted hundreds of drowned cattle in their fields overnight.",
            ]
        )
    ]
    articles = full + short
    groups = [SyndicationGroup(f"g{n}", (a.id,)) for n, a in enumerate(articles)]
    brief = BriefWriter().write(articles, groups)
    now = datetime.now(UTC)
    context = synopsis_context(brief, Story("s", title, now, now, tuple(articles), tuple(groups)))
    assert [c["group"] for c in context["columns"]] == [f"g{n}" for n in range(8)]
    assert [c["group"] for c in context["other_reports"]] == ["g8", "g9"]
    assert context["claims_elsewhere"] == 2
    assert all(any(row["cells"]) for row in context["rows"])
    lead = next(r for r in context["rows"] if r["text"].startswith("Heavy rain"))
    assert lead["elsewhere"] == 2
