"""Feeds, pages, OPML, WARC and watch mode against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synoptic import Engine, Settings
from synoptic.cli import app
from synoptic.errors import InputRejected
from synoptic.fetch import Fetcher, FetchOptions, check_address

from .conftest import QUAKE_A, QUAKE_B

runner = CliRunner()


def page(title: str, text: str) -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n")[1:] if p.strip())
    return (
        f"<html><head><title>{title}</title><meta charset='utf-8'></head><body>"
        f"<nav>Home | World</nav><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    ).encode()


class Site:
    """Routes -> (status, headers, body); counts requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: Counter[str] = Counter()
        self.base = ""


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.hits[self.path] += 1
            if self.path == "/slow.xml":
                time.sleep(1.5)  # longer than the client's timeout
            if self.path == "/etag.xml" and self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.end_headers()
                return
            status, headers, body = state.routes.get(
                self.path, (404, {"Content-Type": "text/html"}, b"<h1>Not found</h1>")
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers and self.path != "/huge.html":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def rss(base: str, items: list[tuple[str, str]], encoding: str = "utf-8") -> str:
    entries = "".join(
        f"<item><title>{t}</title><link>{base}{link}</link><pubDate>Tue, 10 Jun 2025 08:00:00 GMT</pubDate>"
        f"<description>{t}: short teaser only.</description></item>"
        for t, link in items
    )
    return f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>Test</title><link>{base}</link>{entries}</channel></rss>'


def build(site: Site) -> None:
    b = site.base
    html = {"Content-Type": "text/html; charset=utf-8"}
    xml = {"Content-Type": "application/rss+xml"}
    site.routes.update(
        {
            "/robots.txt": (
                200,
                {"Content-Type": "text/plain"},
                b"User-agent: *\nDisallow: /private/\n",
            ),
            "/chile.html": (200, html, page("Strong earthquake strikes southern Chile", QUAKE_A)),
            "/japan.html": (200, html, page("Deadly quake hits Japan's Noto peninsula", QUAKE_B)),
            "/consent.html": (
                200,
                html,
                b"<html><body><h1>Before you continue</h1><p>We use cookies and data to deliver our services. Accept all or Reject all. Manage privacy settings.</p></body></html>",
            ),
            "/gone.html": (500, html, b"oops"),
            "/huge.html": (
                200,
                html,
                b"<html><body>" + b"<p>filler text here</p>" * 20000 + b"</body></html>",
            ),
            "/private/secret.html": (200, html, page("Secret", QUAKE_B)),
            "/rss.xml": (
                200,
                xml,
                rss(
                    b,
                    [
                        ("Chile quake", "/chile.html"),
                        ("Cookie wall", "/consent.html"),
                        ("Broken page", "/gone.html"),
                        ("Huge page", "/huge.html"),
                        ("Robots say no", "/private/secret.html"),
                    ],
                ).encode(),
            ),
            "/atom.xml": (
                200,
                {"Content-Type": "application/atom+xml"},
                (
                    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom test</title>'
                    f"<id>urn:x</id><updated>2025-06-10T08:00:00Z</updated><entry><title>Japan quake</title><id>urn:y</id>"
                    f'<link href="{b}/japan.html"/><updated>2025-06-10T08:00:00Z</updated></entry></feed>'
                ).encode(),
            ),
            "/feed.json": (
                200,
                {"Content-Type": "application/feed+json"},
                json.dumps(
                    {
                        "version": "https://jsonfeed.org/version/1.1",
                        "title": "JSON test",
                        "items": [
                            {
                                "id": "1",
                                "url": f"{b}/missing.html",
                                "title": "Only in the feed",
                                "content_text": "Only in the feed\n\n"
                                + QUAKE_B.split("\n\n", 1)[1],
                                "date_published": "2025-06-10T08:00:00Z",
                            }
                        ],
                    }
                ).encode(),
            ),
            "/etag.xml": (
                200,
                {"Content-Type": "application/rss+xml", "ETag": '"v1"'},
                rss(b, []).encode(),
            ),
            "/server-error.xml": (500, xml, b"boom"),
            "/loop.xml": (302, {"Location": "/loop2.xml"}, b""),
            "/loop2.xml": (302, {"Location": "/loop.xml"}, b""),
            "/cafe.html": (200, html, page("Café owners protest new rules", QUAKE_B)),
            "/broken.xml": (200, xml, b"<rss><channel><title>x</title><item><title>unclosed"),
            "/latin1.xml": (
                200,
                xml,
                rss(b, [("Caf\xe9 owners", "/cafe.html")], encoding="utf-8").encode("latin-1"),
            ),
        }
    )


def test_watch_once_ingests_good_and_records_every_failure(
    site: Site, db_url: str, tmp_path: Path
) -> None:
    build(site)
    feeds = [
        "/rss.xml",
        "/atom.xml",
        "/feed.json",
        "/etag.xml",
        "/server-error.xml",
        "/slow.xml",
        "/loop.xml",
        "/broken.xml",
        "/latin1.xml",
    ]
    opml = tmp_path / "feeds.opml"
    outlines = "".join(f'<outline text="{f}" xmlUrl="{site.base}{f}"/>' for f in feeds)
    opml.write_text(
        f'<?xml version="1.0"?><opml version="2.0"><head/><body>{outlines}</body></opml>'
    )
    added = runner.invoke(app, ["sources", "add", str(opml), "--db", db_url])
    assert added.exit_code == 0 and "added 9 sources" in added.output
    assert (
        "already followed"
        in runner.invoke(app, ["sources", "add", f"{site.base}/rss.xml", "--db", db_url]).output
    )

    args = [
        "watch",
        "--once",
        "--db",
        db_url,
        "--allow-private",
        "--delay",
        "0",
        "--timeout",
        "0.5",
        "--retries",
        "1",
        "--max-bytes",
        "65536",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 1, first.output  # some sources failed, some pages were rejected
    assert "9 sources polled" in first.output

    with Engine(db_url) as eng:
        titles = {a.title for s in eng.stories() for a in s.articles}
        assert "Strong earthquake strikes southern Chile" in titles  # page fetched and extracted
        assert "Deadly quake hits Japan's Noto peninsula" in titles  # via Atom and the latin-1 feed
        only_feed = [a for s in eng.stories() for a in s.articles if a.title == "Only in the feed"]
        assert (
            only_feed and only_feed[0].extra["text_from"] == "feed entry"
        )  # page 404: entry text used
        assert "404" in only_feed[0].extra["page_error"]
        reasons = " | ".join(r["origin"] + " " + r["reason"] for r in eng.rejections())
        assert "consent" in reasons and "consent.html" in reasons
        assert "robots.txt" in reasons
        assert "huge.html" in reasons and "cap" in reasons  # the page over the size cap
        cafe = [a for st in eng.stories() for a in st.articles if a.url == f"{site.base}/cafe.html"]
        assert (
            cafe and cafe[0].extra["feed_title"] == "Café owners"
        )  # the latin-1 feed, decoded right
        sources = {s["url"].rsplit("/", 1)[1]: s for s in eng.store.source_rows()}
    assert "HTTP 500" in sources["server-error.xml"]["last_error"]
    assert "timed out" in sources["slow.xml"]["last_error"]
    assert "redirect loop" in sources["loop.xml"]["last_error"]
    assert "malformed" in sources["broken.xml"]["last_error"]
    assert (
        sources["rss.xml"]["last_success"] is not None and sources["rss.xml"]["articles_seen"] >= 1
    )
    assert site.hits["/huge.html"] == 1 and site.hits["/private/secret.html"] == 0

    listed = json.loads(runner.invoke(app, ["sources", "list", "--db", db_url, "--json"]).output)
    assert {"url", "last_success", "last_error", "articles_seen", "next_poll"} <= set(listed[0])

    pages_before = {p: n for p, n in site.hits.items() if p.endswith(".html")}
    second = runner.invoke(app, args)
    assert "0 new" in second.output
    assert {
        p: n for p, n in site.hits.items() if p.endswith(".html")
    } == pages_before  # nothing refetched
    with Engine(db_url) as eng:
        etag_source = next(s for s in eng.store.source_rows() if s["url"].endswith("/etag.xml"))
        assert etag_source["etag"] == '"v1"'


def test_a_removed_feed_is_no_longer_polled(site: Site, db_url: str) -> None:
    """A feed added by mistake, or gone dead, could not be dropped but by hand in SQL."""
    build(site)
    feeds = [f"{site.base}/rss.xml", f"{site.base}/atom.xml"]
    assert runner.invoke(app, ["sources", "add", *feeds, "--db", db_url]).exit_code == 0
    wrong = runner.invoke(
        app, ["sources", "remove", feeds[1], f"{site.base}/nope.xml", "--db", db_url]
    )
    assert wrong.exit_code == 2 and "nope.xml" in wrong.output  # and nothing was removed
    listed = json.loads(runner.invoke(app, ["sources", "list", "--db", db_url, "--json"]).output)
    assert [s["url"] for s in listed] == feeds
    removed = runner.invoke(app, ["sources", "remove", feeds[1], "--db", db_url])
    assert removed.exit_code == 0 and "removed 1 source" in removed.output
    watch = ["watch", "--once", "--db", db_url, "--allow-private", "--delay", "0"]
    polled = runner.invoke(app, watch)
    assert "1 source polled" in polled.output, polled.output
    assert site.hits.get("/atom.xml", 0) == 0 and site.hits["/rss.xml"] == 1


def test_private_addresses_refused_unless_allowed(site: Site, db_url: str) -> None:
    build(site)
    with pytest.raises(InputRejected, match="--allow-private"):
        check_address(f"{site.base}/rss.xml", allow_private=False)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(InputRejected):
            check_address(url, allow_private=False)
    with pytest.raises(InputRejected, match="only http and https"):
        check_address("file:///etc/passwd", allow_private=True)
    runner.invoke(app, ["sources", "add", f"{site.base}/rss.xml", "--db", db_url])
    refused = runner.invoke(app, ["watch", "--once", "--db", db_url, "--delay", "0"])
    assert refused.exit_code == 1 and "allow-private" in refused.output
    assert site.hits["/rss.xml"] == 0  # nothing was requested
    allowed = runner.invoke(
        app, ["watch", "--once", "--db", db_url, "--delay", "0", "--allow-private"]
    )
    assert site.hits["/rss.xml"] == 1 and "1 new" in allowed.output
    # a redirect to a private address is checked too
    fetcher = Fetcher(FetchOptions(allow_private=False))
    with pytest.raises(InputRejected):
        fetcher.get(f"{site.base}/rss.xml", accept=("xml",))
    fetcher.close()


def test_ingest_a_url_and_a_warc(site: Site, engine: Engine, tmp_path: Path) -> None:
    build(site)
    report = engine.ingest([f"{site.base}/chile.html"])
    assert "allow-private" in report.rejected[0].reason
    with Engine(
        settings=Settings(db_url=f"sqlite:///{tmp_path / 'url.db'}", allow_private=True)
    ) as allowed:
        fetched = allowed.ingest([f"{site.base}/chile.html"])
        assert len(fetched.new) == 1
        assert allowed.article(fetched.new[0]).url == f"{site.base}/chile.html"

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "crawl.warc.gz"
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for url, status, body in (
            (
                "https://example.org/japan",
                "200 OK",
                page("Deadly quake hits Japan's Noto peninsula", QUAKE_B),
            ),
            ("https://example.org/missing", "404 Not Found", b"<html>gone</html>"),
        ):
            headers = StatusAndHeaders(
                status, [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            writer.write_record(
                writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=headers
                )
            )
    report = engine.ingest([path])
    assert len(report.new) == 1
    article = engine.article(report.new[0])
    assert article.url == "https://example.org/japan" and "Noto" in article.text
    assert any("404" in r.reason for r in report.rejected)

    # a damaged record after a good one (a response record without its target URI, which
    # made warcio raise AttributeError and the whole ingest crash): the good one still lands
    damaged = tmp_path / "damaged.warc"
    html = page("Strong earthquake strikes southern Chile", QUAKE_A)
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html
    with damaged.open("wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                "https://example.org/chile",
                "response",
                payload=io.BytesIO(html),
                http_headers=headers,
            )
        )
        handle.write(
            b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: %d\r\n\r\n" % len(http)
            + http
            + b"\r\n\r\n"
        )
    report = engine.ingest([damaged])
    assert len(report.new) == 1 and "Chile" in engine.article(report.new[0]).title
    assert [r.reason.split(":")[0] for r in report.rejected] == [
        "damaged WARC file after 1 HTML records (the records before were read)"
    ]


def test_a_warc_record_with_a_wrong_length_is_said_once_not_on_stderr(
    engine: Engine,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """warcio wrote "WARNING: Record not followed by newline ..." to stderr itself, through the
    progress bar, once per record; now the count is a warning naming the file."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=False)
    for url, title, text in (
        ("https://example.org/chile", "Strong earthquake strikes southern Chile", QUAKE_A),
        ("https://example.org/japan", "Deadly quake hits Japan's Noto peninsula", QUAKE_B),
    ):
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                url, "response", payload=io.BytesIO(page(title, text)), http_headers=headers
            )
        )
    data = buffer.getvalue()
    length = data.index(b"Content-Length: ") + len(b"Content-Length: ")
    end = data.index(b"\r\n", length)
    wrong = str(int(data[length:end]) - 7).encode()  # the first record's last 7 bytes left over
    path = tmp_path / "cut.warc"
    path.write_bytes(data[:length] + wrong + data[end:])
    capfd.readouterr()
    with caplog.at_level("WARNING"):
        report = engine.ingest([path])
    assert len(report.new) == 2, report.rejected
    assert "Record not followed" not in capfd.readouterr().err
    assert [r.getMessage() for r in caplog.records if "Content-Length" in r.getMessage()] == [
        f"{path}: 1 record(s) not followed by a blank line, so their Content-Length is likely "
        "wrong: their text may be cut short or run into the next record"
    ]


def test_stop_takes_effect_after_the_article_in_hand(site: Site, db_url: str) -> None:
    from synoptic.fetch import FetchOptions
    from synoptic.sources import Watcher

    build(site)
    site.routes["/two.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss(site.base, [("Chile", "/chile.html"), ("Japan", "/japan.html")]).encode(),
    )
    with Engine(db_url) as eng:
        eng.store.add_source(f"{site.base}/two.xml")
        watcher = Watcher(eng, options=FetchOptions(allow_private=True), delay=0)
        report = watcher.poll(
            progress=lambda _title: watcher.stop()
        )  # a stop request arrives during the first article
        assert report.new == 1 and eng.store.count_articles() == 1
        assert watcher.stopping
        resumed = Watcher(eng, options=FetchOptions(allow_private=True), delay=0).poll()
        assert resumed.new == 1 and eng.store.count_articles() == 2  # the rest, on the next poll


def test_a_watcher_outlives_a_database_failure(
    site: Site, db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A long-running watcher whose database fails for a while (a full disk, a server
    restarting) says so and polls again; it does not stop. ``--once`` still fails."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from synoptic.fetch import FetchOptions
    from synoptic.sources import Watcher

    build(site)
    site.routes["/one.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss(site.base, [("Chile", "/chile.html")]).encode(),
    )
    with Engine(db_url) as eng:
        eng.store.add_source(f"{site.base}/one.xml")
        watcher = Watcher(eng, options=FetchOptions(allow_private=True), delay=0, every=0.05)
        real, failures = eng.ingest_items, [2]

        def failing(*args, **kwargs):
            if failures[0]:
                failures[0] -= 1
                raise OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))
            return real(*args, **kwargs)

        monkeypatch.setattr(eng, "ingest_items", failing)
        with pytest.raises(OperationalError):
            watcher.run(once=True)
        cycles = []
        watcher.run(once=False, on_cycle=lambda report: (cycles.append(report), watcher.stop()))
        assert "disk I/O error" in caplog.text and "tries again" in caplog.text
        assert len(cycles) == 1 and cycles[0].new == 1 and eng.store.count_articles() == 1


def test_a_source_that_trips_a_bug_does_not_stop_the_others(
    site: Site, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import synoptic.sources as sources_module
    from synoptic.fetch import FetchOptions
    from synoptic.sources import Watcher

    build(site)
    for name, page_path in (("/one.xml", "/chile.html"), ("/bad.xml", "/japan.html")):
        site.routes[name] = (
            200,
            {"Content-Type": "application/rss+xml"},
            rss(site.base, [(name, page_path)]).encode(),
        )
    real = sources_module.parse_feed

    def buggy(fetched):
        if fetched.url.endswith("/bad.xml"):
            raise KeyError("channel")
        return real(fetched)

    monkeypatch.setattr(sources_module, "parse_feed", buggy)
    with Engine(db_url) as eng:
        for name in ("/one.xml", "/bad.xml"):
            eng.store.add_source(f"{site.base}{name}")
        report = Watcher(eng, options=FetchOptions(allow_private=True), delay=0).poll()
        assert report.new == 1
        assert "KeyError" in report.failed[f"{site.base}/bad.xml"]


def test_opml_outlines_that_are_not_http_feeds_are_skipped(db_url: str, tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline xmlUrl="https://example.org/rss.xml"/>'
        '<outline xmlUrl="javascript:alert(1)"/><outline xmlUrl="ftp://example.org/f"/></body></opml>'
    )
    result = runner.invoke(app, ["sources", "add", str(opml), "--db", db_url])
    assert result.exit_code == 1 and "added 1 source, skipped 2" in result.output
    assert "skipped javascript:alert(1): not an http(s) feed URL" in result.output
    listed = json.loads(runner.invoke(app, ["sources", "list", "--db", db_url, "--json"]).output)
    assert [s["url"] for s in listed] == ["https://example.org/rss.xml"]
