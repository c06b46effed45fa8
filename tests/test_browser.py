"""One real-browser test: headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from synoptic import Engine
from synoptic.web import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def _serving(db_url: str, parade_dir: Path, token: str | None = None) -> Iterator[str]:
    """A real server (uvicorn on a free port) over a store holding the parade example."""
    import uvicorn

    with Engine(db_url) as engine:
        engine.ingest([parade_dir])
    engine = Engine(db_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port
    port = sock.getsockname()[1]
    app = create_app(engine, token=token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.close()


@pytest.fixture
def live_server(db_url: str, parade_dir: Path) -> Iterator[str]:
    with _serving(db_url, parade_dir) as url:
        yield url


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (make test installs Debian's chromium as root)",
)
def test_parade_story_in_a_real_browser(live_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(live_server + "/")
            page.click("a.headline")
            page.wait_for_selector("table.synopsis-table")
            assert page.locator("th.report-column").count() == 2
            assert page.locator("li.report-article").count() == 3
            assert "independent report" in page.inner_text("p.meta")
            # a narrow window: the columns keep a readable width
            # and the side-by-side table scrolls sideways (they were squeezed to a few letters)
            page.set_viewport_size({"width": 480, "height": 900})
            widths = [
                page.locator("th.report-column").nth(i).bounding_box()["width"] for i in range(2)
            ]
            assert min(widths) >= 200, widths
            assert page.evaluate(
                "(() => { const s = document.querySelector('section.reports');"
                " return s.scrollWidth > s.clientWidth; })()"
            )
            page.set_viewport_size({"width": 1280, "height": 900})
            assert not page.locator("section.why .reason").first.is_visible()  # folded
            page.click("section.why summary")
            reasons = page.locator("section.why .reason")
            assert reasons.count() == 3 and reasons.first.is_visible()
            assert "opened the story" in page.inner_text("section.why")
            page.screenshot(path=str(tmp_path / "why.png"), full_page=True)
            cited = page.locator("section.summary a.cite").first
            cited.click()
            page.wait_for_selector("mark#hl")
            marked = page.inner_text("mark#hl")
            assert len(marked) > 20
            assert page.locator("mark#hl.flash").count() == 1  # app.js ran under the CSP
            shot = tmp_path / "cited-sentence.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshots: {tmp_path / 'why.png'}, {shot}")
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_an_article_is_split_off_from_the_story_page(
    db_url: str, parade_dir: Path, tmp_path: Path
) -> None:
    """Correcting the clustering took the terminal or a hand-written POST; the page's "why"
    section now has the buttons, and a server with a write token asks for it once."""
    from playwright.sync_api import sync_playwright

    token = "a-long-random-test-token"
    answers: list[str] = []

    def answer(dialog) -> None:  # the confirmation, then the token prompt
        answers.append(dialog.type)
        dialog.accept(token if dialog.type == "prompt" else None)

    with _serving(db_url, parade_dir, token=token) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", answer)
            page.goto(url + "/")
            page.click("a.headline")
            page.wait_for_selector("table.synopsis-table")
            story_url = page.url
            page.click("section.why summary")
            kyiv = page.locator("section.why li", has_text="Kyiv Independent")
            with page.expect_navigation():
                kyiv.locator("button.correct[data-action=split]").click()
            assert answers == ["confirm", "prompt"] and page.url == story_url
            assert page.locator("th.report-column").count() == 1  # the Reuters pair is left
            assert "Kyiv Independent" not in page.inner_text("table.synopsis-table")
            page.goto(url + "/")
            assert page.locator("a.headline").count() == 2
            # the token was kept for the tab: a second correction asks no more
            page.goto(story_url)
            page.click("section.why summary")
            with page.expect_navigation():
                page.locator("section.why button.correct[data-action=split]").first.click()
            assert answers == ["confirm", "prompt", "confirm"]
            page.screenshot(path=str(tmp_path / "split.png"), full_page=True)
        finally:
            browser.close()
