"""The synopsis view: one FastAPI app serving a JSON API and server-rendered pages.

Each view builds one context (plain, JSON-ready data) and renders it either as JSON (``/api/…``)
or through a Jinja2 template (autoescaped; no inline scripts, a strict Content-Security-Policy).
Every byte of article text, title, URL and outlet is untrusted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from synoptic.engine import Engine
from synoptic.errors import NotFound, SettingsError, StoreError, SynopticError
from synoptic.export import atom_feed
from synoptic.ingest import json_document
from synoptic.model import Brief, Story, StorySelection
from synoptic.render import (
    SOURCES_SHOWN,
    STATUS_LABEL,
    brief_json,
    read_line,
    readable_date,
    status_json,
    stored_article_json,
    story_json,
    why_json,
)
from synoptic.store import store_failure

MAX_BODY_BYTES = 20 * 1024 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
TOKEN_ENV = "SYNOPTIC_TOKEN"


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


STORIES_PER_PAGE = 50  # on the list pages, stories and names (the API has its per_page)
Sort = Literal["updated", "reports"]  # story lists: newest update first, or most reported
COLUMNS_SHOWN = 8  # report columns on a story page; the other reports are listed below
COPIES_SHOWN = 3  # articles named at the head of a report's column; the rest folded under it


def safe_url(url: str | None) -> str | None:
    """Only http(s) URLs become links; anything else (javascript:, data:) is shown as text."""
    if not url:
        return None
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


def synopsis_context(brief: Brief, story: Story) -> dict[str, Any]:
    """The story page: one column per independent report (the :data:`COLUMNS_SHOWN` that
    carry most claims, in the story's order; the others listed below), claims in rows."""
    data = brief_json(brief) | {"updated": story.updated.isoformat()}
    by_id = {a.id: a for a in brief.articles}
    numbers = {a.id: i + 1 for i, a in enumerate(brief.articles)}
    group_of: dict[str, str] = {aid: g.id for g in brief.groups for aid in g.article_ids}
    carried = Counter(
        g for claim in brief.claims for g in {group_of.get(a) for a in claim.article_ids} if g
    )
    columns = []
    unread = set(brief.unread)
    for group in brief.groups:
        members = [by_id[i] for i in group.article_ids if i in by_id]
        if all(a.id in unread for a in members):
            continue  # a report the brief did not read (a large story): no column of claims
        columns.append(
            {
                "group": group.id,
                "wire": group.wire,
                "title": members[0].title,
                "claims": carried[group.id],
                "articles": [
                    {
                        "id": a.id,
                        "n": numbers[a.id],
                        "title": a.title,
                        "outlet": a.outlet or "unknown outlet",
                        "url": safe_url(a.url),
                    }
                    for a in members
                ],
            }
        )
    # many reports (a story told by a hundred outlets): a table as wide as the page can show
    by_claims = sorted(columns, key=lambda c: -carried[str(c["group"])])  # (stable)
    shown = {c["group"] for c in by_claims[:COLUMNS_SHOWN]}
    other_reports = [c for c in columns if c["group"] not in shown]
    columns = [c for c in columns if c["group"] in shown]
    rows = []
    claims_elsewhere = 0
    for claim in brief.claims:
        cells: dict[str, dict[str, Any]] = {}
        for c in claim.citations:
            g = group_of.get(c.article_id)
            if g and g not in cells:
                text = by_id[c.article_id].text[c.start : c.end]
                cells[g] = {
                    "article_id": c.article_id,
                    "start": c.start,
                    "end": c.end,
                    "text": text,
                }
        row_cells = [cells.get(str(col["group"])) for col in columns]
        if not any(row_cells):
            claims_elsewhere += 1  # stated only in reports without a column
            continue
        rows.append(
            {
                "status": claim.status,
                "label": STATUS_LABEL[claim.status],
                "text": claim.text,
                "reports": claim.independent_reports,
                "conflict_values": claim.values,
                "cells": row_cells,
                "elsewhere": len(set(cells) - shown),
            }
        )
    summary = []
    for s in data["summary"]:
        first_per_article = {
            c["article_id"]: c for c in reversed(s["citations"])
        }  # keeps each article's first
        ordered = [
            first_per_article[a] for a in dict.fromkeys(c["article_id"] for c in s["citations"])
        ]
        sources = [{"n": numbers[c["article_id"]], **c} for c in ordered]
        summary.append(
            s
            | {
                "label": STATUS_LABEL[s["status"]],
                "sources": sources[:SOURCES_SHOWN],
                "more_sources": len(sources[SOURCES_SHOWN:]),
            }
        )
    return {
        "story": data,
        "read_line": read_line(brief),
        "columns": columns,
        "copies_shown": COPIES_SHOWN,
        "rows": rows,
        "other_reports": other_reports,
        "claims_elsewhere": claims_elsewhere,
        "summary": summary,
        "entities": [
            {"name": e["name"], "type": e["type"], "articles": e["article_ids"]}
            for e in brief.entities[:15]
        ],
        "timeline": [
            {"date": readable_date(t["date"]), "text": t["text"], "id": t["article_ids"][0]}
            for t in brief.timeline
        ],
    }


def _highlight(text: str, spec: str | None) -> list[list[dict[str, Any]]]:
    """Split an article's text into paragraphs of segments, marking the cited span."""
    start = end = -1
    if spec and re.fullmatch(r"\d+-\d+", spec):
        start, end = (int(x) for x in spec.split("-"))
    paragraphs: list[list[dict[str, Any]]] = []
    offset = 0
    for para in text.split("\n\n"):
        p_start, p_end = offset, offset + len(para)
        segments: list[dict[str, Any]]
        if start < p_end and end > p_start and start < end:
            a, b = max(start, p_start) - p_start, min(end, p_end) - p_start
            segments = [{"text": para[:a]}, {"text": para[a:b], "mark": True}, {"text": para[b:]}]
        else:
            segments = [{"text": para}]
        paragraphs.append([s for s in segments if s["text"]])
        offset = p_end + 2
    return paragraphs


def create_app(engine: Engine, *, token: str | None = None) -> FastAPI:
    """The app over one engine. ``token``: when set, write endpoints require it."""
    app = FastAPI(
        title="synoptic", version="0.1.0", description="Stories, wire copies and cited briefs."
    )
    package = resources.files("synoptic")
    templates = Jinja2Templates(directory=str(Path(str(package.joinpath("templates")))))
    templates.env.autoescape = True
    app.mount(
        "/static", StaticFiles(directory=str(Path(str(package.joinpath("static"))))), name="static"
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(
                {"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413
            )
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return templates.TemplateResponse(
            request, "error.html", {"message": str(exc)}, status_code=404
        )

    @app.exception_handler(SQLAlchemyError)
    async def store_failed(request: Request, exc: SQLAlchemyError) -> Response:
        return JSONResponse({"detail": store_failure(exc)}, status_code=503)

    @app.exception_handler(StoreError)
    async def store_refused(request: Request, exc: StoreError) -> Response:
        # (a write to a store this server may only read, or a store it cannot use)
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(SettingsError)
    async def bad_request(request: Request, exc: SettingsError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def write_body(request: Request) -> Any:
        """A write's JSON body, once its token (when the server has one), content type and
        size are checked. Only JSON is taken: a page on another site can make a browser post a
        form or plain text to this server, but not JSON without asking it first (CORS), and
        it never agrees."""
        if token is not None:
            supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(supplied.encode(), token.encode()):
                raise HTTPException(
                    401, f"this server needs a token: send 'Authorization: Bearer ${TOKEN_ENV}'"
                )
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(415, "send the body as JSON, with 'Content-Type: application/json'")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"body is not JSON: {exc}") from None

    # Writes run in a worker thread, not on the event loop (the engine makes them take
    # turns): pages and reads (which only read what is committed) are answered meanwhile.
    async def write(call: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(call, *args)

    def page(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context)

    # -- contexts -----------------------------------------------------------------------------

    def list_context(
        q: str | None,
        outlet: str | None,
        entity: str | None,
        since: datetime | None,
        page_no: int,
        per_page: int,
        sort: Sort = "updated",
    ) -> dict[str, Any]:
        total, chosen = engine.story_page(
            StorySelection(
                search=tuple(query for query in (q, entity) if query),
                outlet=outlet or None,
                since=since,
                offset=(page_no - 1) * per_page,
                limit=per_page,
                by_reports=sort == "reports",
            )
        )
        items = []
        for s in chosen:
            item = story_json(s)
            item["outlets"] = sorted({a.outlet for a in s.articles if a.outlet})
            # its newest article's publication date: an archive's stories were all "updated"
            # when it was ingested, so the list told them apart by nothing else
            dates = [a.published for a in s.articles if a.published is not None]
            item["published"] = max(dates).isoformat() if dates else None
            items.append(item)
        return {
            "stories": items,
            "total": total,
            "page": page_no,
            "per_page": per_page,
            "q": q or "",
            "outlet": outlet,
            "entity": entity,
            "sort": sort,
        }

    def article_context(article_id: str) -> dict[str, Any]:
        a = engine.article(article_id)
        # the stored story, not the engine's memory (which a write may be changing)
        return stored_article_json(a, engine.store.story_of(a.id))

    # -- JSON API -----------------------------------------------------------------------------

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        engine.store.count_articles()
        return "ok"

    @app.get("/api/status")
    def api_status() -> dict[str, Any]:
        return status_json(engine.store.summary())

    @app.get("/api/stories")
    def api_stories(
        q: str | None = Query(None, description="full-text search"),
        outlet: str | None = None,
        entity: str | None = None,
        since: datetime | None = Query(None, description="updated at or after (ISO 8601)"),
        page: int = Query(1, ge=1),
        per_page: int = Query(20, ge=1, le=200),
        sort: Sort = Query("updated", description="updated: newest first; reports: most reported"),
    ) -> dict[str, Any]:
        return list_context(q, outlet, entity, since, page, per_page, sort)

    @app.get("/api/stories/{story_id}")
    def api_story(story_id: str) -> dict[str, Any]:
        story = engine.story(story_id)
        return brief_json(engine.brief(story.id)) | {"updated": story.updated.isoformat()}

    @app.get("/api/articles/{article_id}")
    def api_article(article_id: str) -> dict[str, Any]:
        return article_context(article_id)

    @app.get("/api/sources")
    def api_sources() -> list[dict[str, Any]]:
        return [
            r | {"last_article": r["last_article"].isoformat() if r["last_article"] else None}
            for r in engine.store.outlets()
        ]

    @app.get("/api/stories/{story_id}/why")
    def api_why(story_id: str) -> dict[str, Any]:
        return why_json(engine, story_id)

    @app.post("/api/stories/{story_id}/merge")
    async def api_merge(story_id: str, request: Request) -> dict[str, Any]:
        payload = await write_body(request)
        other = payload.get("other") if isinstance(payload, dict) else None
        if not isinstance(other, str):
            raise HTTPException(400, 'send {"other": STORY_ID}: the story merged into this one')
        return {"story": await write(engine.merge, story_id, other), "merged": other}

    @app.post("/api/stories/{story_id}/split")
    async def api_split(story_id: str, request: Request) -> dict[str, Any]:
        payload = await write_body(request)
        moved = payload.get("articles") if isinstance(payload, dict) else None
        if not isinstance(moved, list) or not all(isinstance(a, str) for a in moved):
            raise HTTPException(400, 'send {"articles": [ARTICLE_ID, ...]}: the articles to move')
        new_id = await write(engine.split, story_id, moved)
        left = engine.story(story_id).id  # (an old id of a merged story resolves)
        return {"story": left, "new_story": new_id, "moved": sorted(set(moved))}

    @app.post("/api/articles")
    async def api_ingest(request: Request) -> dict[str, Any]:
        payload = await write_body(request)
        objects = payload if isinstance(payload, list) else [payload]
        items = [json_document(obj, f"request#{i}") for i, obj in enumerate(objects)]
        report = await write(engine.ingest_items, items)
        return {
            "new": report.new,
            "duplicates": report.duplicates,
            "rejected": [{"origin": r.origin, "reason": r.reason} for r in report.rejected],
            "stories": sorted(report.stories_touched),
            "late": report.late,
        }

    @app.get("/stories.atom")
    def stories_atom(
        request: Request, q: str | None = None, outlet: str | None = None, sort: Sort = "updated"
    ) -> Response:
        base = str(request.base_url).rstrip("/")
        chosen = StorySelection(
            search=(q,) if q else (), outlet=outlet or None, limit=100, by_reports=sort == "reports"
        )
        feed = atom_feed(engine, base_url=base, chosen=chosen)
        return Response(feed, media_type="application/atom+xml")

    # -- pages --------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def index(
        request: Request,
        q: str | None = None,
        outlet: str | None = None,
        page_no: int = Query(1, alias="page", ge=1),
        sort: Sort = "updated",
    ) -> HTMLResponse:
        context = list_context(q, outlet, None, None, page_no, STORIES_PER_PAGE, sort)
        kept = {k: v for k, v in (("q", q), ("outlet", outlet)) if v}
        return page(request, "stories.html", context | pager("/", kept, page_no, sort, context))

    def pager(
        path: str, kept: dict[str, str], page_no: int, sort: Sort, context: dict[str, Any]
    ) -> dict[str, Any]:
        """A list page's links: the previous and next pages and the two orders, keeping the
        filters in ``kept``."""
        pages = max(1, -(-context["total"] // STORIES_PER_PAGE))

        def link(to: int, order: Sort = sort) -> str | None:
            if not 1 <= to <= pages:
                return None
            return f"{path}?" + urlencode(
                kept | ({"sort": order} if order != "updated" else {}) | {"page": to}
            )

        return {
            "pages": pages,
            "prev_url": link(min(page_no, pages + 1) - 1),
            "next_url": link(page_no + 1),
            "sort_urls": {order: link(1, order) for order in ("updated", "reports")},
        }

    @app.get("/stories/{story_id}", response_class=HTMLResponse)
    def story_page(request: Request, story_id: str) -> HTMLResponse:
        story = engine.story(story_id)
        context = synopsis_context(engine.brief(story.id), story)
        why = why_json(engine, story.id)
        # (no correction buttons where the server may not write: they could only fail)
        return page(
            request, "story.html", context | {"why": why, "writable": engine.store.writable()}
        )

    @app.get("/articles/{article_id}", response_class=HTMLResponse)
    def article_page(request: Request, article_id: str, hl: str | None = None) -> HTMLResponse:
        context = article_context(article_id)
        context["paragraphs"] = _highlight(context["text"], hl)
        context["url"] = safe_url(context["url"])
        return page(request, "article.html", context)

    @app.get("/entities/{name}", response_class=HTMLResponse)
    def entity_page(
        request: Request,
        name: str,
        page_no: int = Query(1, alias="page", ge=1),
        sort: Sort = "updated",
    ) -> HTMLResponse:
        context = list_context(None, None, name, None, page_no, STORIES_PER_PAGE, sort)
        links = pager(f"/entities/{quote(name, safe='')}", {}, page_no, sort, context)
        return page(request, "entity.html", context | links | {"name": name})

    return app


def server_token(host: str) -> str | None:
    """The write token for a server on ``host``; refuse a public address without one."""
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise SynopticError(
            f"refusing to serve on {host} without a write token: set {TOKEN_ENV}=<a long random string> "
            "(clients send it as 'Authorization: Bearer …'), or bind to 127.0.0.1"
        )
    return token
