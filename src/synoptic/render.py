"""Views of the model: JSON-ready dicts, Markdown and the rich terminal view.

One function builds each view's data; the CLI (and later the web app) only choose a format.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from synoptic.errors import NotFound
from synoptic.model import Article, Brief, Citation, Claim, Story, SummarySentence, SyndicationGroup

if TYPE_CHECKING:
    from synoptic.engine import Engine

MAX_SINGLE_SHOWN = 8
# the terminal names at most this many sources per line ("[1], [2], ... +40 more"); --json,
# --markdown and --html list them all
SOURCES_SHOWN = 6
STATUS_LABEL = {"agreed": "agreed", "single": "single source", "conflict": "conflicting"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def article_json(a: Article) -> dict[str, Any]:
    return {
        "id": a.id,
        "source_id": a.source_id,
        "title": a.title,
        "outlet": a.outlet,
        "outlet_inferred": a.outlet_inferred,
        "url": a.url,
        "published": _iso(a.published),
        "published_inferred": a.published_inferred,
        "wire": a.wire,
    }


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def readable_date(value: str) -> str:
    """A timeline's ISO date for reading: '2024-09-03' -> '3 September 2024', '2024-09' ->
    'September 2024', '--09-03' (a day whose year the text does not give) -> '3 September';
    anything else as it is."""
    match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?|--(\d{2})-(\d{2})", value)
    if match is None:
        return value
    year, month, day, yearless_month, yearless_day = match.groups()
    month, day = month or yearless_month, day or yearless_day
    if not 1 <= int(month) <= 12:
        return value
    return " ".join(w for w in (day and str(int(day)), _MONTHS[int(month) - 1], year) if w)


def status_json(summary: dict[str, Any]) -> dict[str, Any]:
    """:meth:`Store.summary` as `synoptic status --json` and GET /api/status give it."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in summary.items()}


def stored_article_json(a: Article, story_id: str) -> dict[str, Any]:
    """A stored article, as `synoptic article ID --json` and GET /api/articles/{id} give it."""
    return article_json(a) | {
        "text": a.text,
        "authors": list(a.authors),
        "origin": a.origin,
        "removed": [{"text": r.text, "reason": r.reason} for r in a.removed],
        "story": story_id,
    }


def extract_json(a: Article) -> dict[str, Any]:
    return {
        "path": a.origin,
        "id": a.id,
        "source_id": a.source_id,
        "title": a.title,
        "text": a.text,
        "outlet": a.outlet,
        "outlet_inferred": a.outlet_inferred,
        "published": _iso(a.published),
        "published_inferred": a.published_inferred,
        "url": a.url,
        "authors": list(a.authors),
        "wire": a.wire,
        "extra": a.extra,
        "removed": [{"text": r.text, "reason": r.reason} for r in a.removed],
    }


def story_json(story: Story) -> dict[str, Any]:
    return {
        "id": story.id,
        "headline": story.headline,
        "updated": _iso(story.updated),
        "independent_reports": story.independent_reports,
        "articles": [article_json(a) for a in story.articles],
    }


def why_json(engine: Engine, story_id: str) -> dict[str, Any]:
    """Why each article is in the story (its stored score and parts) and the runner-up story
    as it is now: ``{"id", "headline", "articles": [{"article", "score", "parts", "runner_up":
    {"id", "headline", "recorded"} | None, "reason"}]}`` (``recorded``: the runner-up's id at
    the time, which a merge may since have taken into another story)."""
    story = engine.story(story_id)
    memberships = {m.article_id: m for m in engine.memberships(story.id)}
    runners: dict[str, dict[str, str | None]] = {}  # each runner-up story read once

    def runner_up(recorded: str) -> dict[str, str | None]:
        if recorded not in runners:
            try:
                now = engine.story(recorded)
                runners[recorded] = {"id": now.id, "headline": now.headline}
            except NotFound:
                runners[recorded] = {"id": recorded, "headline": None}
        return runners[recorded] | {"recorded": recorded}

    rows: list[dict[str, Any]] = []
    for a in story.articles:
        m = memberships[a.id]
        runner = runner_up(m.runner_up) if m.runner_up else None
        row = {"article": article_json(a), "score": m.score, "parts": m.parts, "runner_up": runner}
        rows.append(row | {"reason": why_reason(row, story.id)})
    return {"id": story.id, "headline": story.headline, "articles": rows}


def why_reason(row: dict[str, Any], story_id: str) -> str:
    """One membership of :func:`why_json` in words."""
    parts = row["parts"]
    if "copy_of" in parts:
        reason = f"a copy of an article already here (copy score {parts.get('copy_score')})"
    elif "moved_by_user" in parts:
        reason = "moved here by a merge or split"
    elif "split_automatically" in parts:
        reason = (
            f"split off from {parts.get('from')}: its two halves would have joined with "
            f"probability {parts.get('probability')} only"
        )
    elif "best_existing" in parts:
        reason = (
            f"opened the story (best existing story scored {parts['best_existing']}, "
            f"needed {parts['threshold']})"
        )
    else:
        shown = ", ".join(
            f"{k} {v}" for k, v in parts.items() if k not in ("threshold", "runner_up_score")
        )
        reason = f"joined with probability {row['score']} ≥ {parts.get('threshold')} ({shown})"
    runner = row["runner_up"]
    if runner and runner["id"] == story_id:
        reason += f"; runner-up {runner['recorded']}, since merged into this story"
    elif runner:
        was = f" (was {runner['recorded']})" if runner["recorded"] != runner["id"] else ""
        reason += f"; runner-up {runner['id']}{was} {runner['headline'] or ''}".rstrip()
    if runner and "runner_up_score" in parts:
        reason += f" (probability {parts['runner_up_score']})"
    return reason


def brief_json(brief: Brief) -> dict[str, Any]:
    group_of = {aid: g.id for g in brief.groups for aid in g.article_ids}
    return {
        "id": brief.story_id,
        "headline": brief.headline,
        "n_articles": len(brief.articles),
        "independent_reports": brief.independent_reports,
        "articles": [article_json(a) | {"group": group_of.get(a.id, a.id)} for a in brief.articles],
        "groups": [
            {"id": g.id, "article_ids": list(g.article_ids), "wire": g.wire} for g in brief.groups
        ],
        "summary": [
            {
                "text": s.text,
                "status": s.status,
                "citations": [
                    {"article_id": c.article_id, "start": c.start, "end": c.end, "exact": c.exact}
                    for c in s.citations
                ],
            }
            for s in brief.summary
        ],
        "claims": [
            {
                "text": c.text,
                "status": c.status,
                "article_ids": list(c.article_ids),
                "independent_reports": c.independent_reports,
                "citations": [
                    {"article_id": x.article_id, "start": x.start, "end": x.end, "exact": x.exact}
                    for x in c.citations
                ],
                "speaker": c.speaker,
                "dates": list(c.dates),
                "new": c.new,
                **({"values": c.values} if c.values else {}),
            }
            for c in brief.claims
        ],
        "entities": list(brief.entities),
        "entity_recognizer": brief.entity_recognizer,
        "timeline": list(brief.timeline),
        "framing": list(brief.framing),
        "version": brief.version,
        "unread_article_ids": list(brief.unread),
    }


def brief_from_json(
    data: dict[str, Any], articles: list[Article], groups: list[SyndicationGroup]
) -> Brief:
    """:func:`brief_json` read back (without its "articles" and "groups": the story's are
    given), as a brief kept in the store is."""

    def citations(raw: list[dict[str, Any]]) -> tuple[Citation, ...]:
        return tuple(Citation(c["article_id"], c["start"], c["end"], c["exact"]) for c in raw)

    return Brief(
        story_id=data["id"],
        headline=data["headline"],
        summary=tuple(
            SummarySentence(s["text"], citations(s["citations"]), s["status"])
            for s in data["summary"]
        ),
        claims=tuple(
            Claim(
                text=c["text"],
                status=c["status"],
                article_ids=tuple(c["article_ids"]),
                independent_reports=c["independent_reports"],
                citations=citations(c["citations"]),
                values=c.get("values", {}),
                speaker=c["speaker"],
                dates=tuple(c["dates"]),
                new=c["new"],
            )
            for c in data["claims"]
        ),
        articles=tuple(articles),
        groups=tuple(groups),
        entities=tuple(data["entities"]),
        timeline=tuple(data["timeline"]),
        framing=tuple(data["framing"]),
        version=data["version"],
        entity_recognizer=data["entity_recognizer"],
        unread=tuple(data["unread_article_ids"]),
    )


def _outlet(a: Article) -> str:
    name = a.outlet or "unknown outlet"
    return f"{name} (inferred)" if a.outlet and a.outlet_inferred else name


def _same_report(group: SyndicationGroup) -> str:
    """How a group's articles are one report: one wire's texts, or one text republished."""
    return f"same {group.wire} wire" if group.wire else "same wire text"


def _sources(
    brief: Brief, article_ids: list[str] | tuple[str, ...], limit: int | None = None
) -> str:
    """The articles' numbers in the brief ("[1], [3]"); past ``limit`` of them, "+N more"."""
    numbers = {a.id: i + 1 for i, a in enumerate(brief.articles)}
    shown = [f"[{numbers[i]}]" for i in dict.fromkeys(article_ids) if i in numbers]
    if limit is not None and len(shown) > limit:
        shown = [*shown[:limit], f"+{len(shown) - limit} more"]
    return ", ".join(shown)


def _reports_line(brief: Brief) -> str:
    n, k = len(brief.articles), brief.independent_reports
    line = f"{n} article{'s' * (n != 1)}, {k} independent report{'s' * (k != 1)}"
    return line + (f"; {read}" if (read := read_line(brief)) else "")


def read_line(brief: Brief) -> str:
    """What a large story's brief was written from (empty when it read every article)."""
    if not brief.unread:
        return ""
    return (
        f"briefed from {len(brief.articles) - len(brief.unread)} of its {len(brief.articles)} "
        "articles: each independent report once (the earliest and the latest when they are "
        "more), then further copies"
    )


def brief_markdown(brief: Brief) -> str:
    lines = [f"# {brief.headline}", "", f"*{_reports_line(brief)}*", "", "## Summary", ""]
    for s in brief.summary:
        label = "" if s.status == "agreed" else f" *({STATUS_LABEL[s.status]})*"
        lines.append(f"- {s.text}{label} {_sources(brief, [c.article_id for c in s.citations])}")
    for title, status in (
        ("Agreed", "agreed"),
        ("Conflicting", "conflict"),
        ("Single source", "single"),
    ):
        claims = [c for c in brief.claims if c.status == status]
        if not claims:
            continue
        lines += ["", f"## {title}", ""]
        for c in claims:
            extra = ""
            if c.values:
                extra = " — " + "; ".join(
                    f"{v}: {_sources(brief, ids)}" for v, ids in c.values.items()
                )
            lines.append(
                f"- {c.text} {_sources(brief, c.article_ids)} "
                f"({c.independent_reports} report{'s' * (c.independent_reports != 1)}){extra}"
            )
    if brief.timeline:
        lines += ["", "## Timeline", ""]
        lines += [
            f"- **{readable_date(t['date'])}** {t['text']} {_sources(brief, t['article_ids'])}"
            for t in brief.timeline
        ]
    if brief.entities:
        lines += ["", "## Names", ""]
        lines += [
            f"- {e['name']} ({e['type']}{'; also ' + ', '.join(e['variants']) if e['variants'] else ''}) {_sources(brief, e['article_ids'])}"
            for e in brief.entities[:20]
        ]
    if brief.framing:
        lines += ["", "## How each report frames it", ""]
        for f in brief.framing:
            lines.append(
                f"- **{', '.join(f['outlets'])}** — “{f['headline']}”. Leads with: {f['lead']}"
            )
            if f["quotes"]:
                lines.append(f"  Quotes: {', '.join(f['quotes'])}.")
            lines.append(f"  Claims only this report carries: {len(f['only_here'])}.")
    lines += ["", "## Sources", ""]
    group_of = {aid: g for g in brief.groups for aid in g.article_ids}
    for i, a in enumerate(brief.articles, start=1):
        group = group_of.get(a.id)
        copy = ""
        if group and len(group.article_ids) > 1:
            copy = f" — {_same_report(group)} as " + _sources(
                brief, [x for x in group.article_ids if x != a.id]
            )
        lines.append(f"{i}. {a.title} — {_outlet(a)}{' ' + a.url if a.url else ''} `{a.id}`{copy}")
    return "\n".join(lines) + "\n"


def brief_html(brief: Brief) -> str:
    """One self-contained HTML file (inline CSS, no scripts, every text escaped)."""
    from html import escape as h

    numbers = {a.id: i + 1 for i, a in enumerate(brief.articles)}

    def cites(ids: list[str] | tuple[str, ...]) -> str:
        return " ".join(
            f'<a href="#a{numbers[i]}">[{numbers[i]}]</a>'
            for i in dict.fromkeys(ids)
            if i in numbers
        )

    def link(url: str | None, text: str) -> str:
        ok = url and url.split(":", 1)[0].lower() in ("http", "https")
        return (
            f'<a href="{h(url or "")}" rel="noopener noreferrer">{h(text)}</a>' if ok else h(text)
        )

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{h(brief.headline)}</title><style>",
        "body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}",
        ".agreed{color:#1b7f3b}.single{color:#9a6700}.conflict{color:#b42318}",
        "li{margin:.3rem 0}.meta{color:#57606a}.badge{font-size:.8rem;border:1px solid;border-radius:1rem;padding:0 .4rem}",
        "</style></head><body>",
        f"<h1>{h(brief.headline)}</h1><p class='meta'>{h(_reports_line(brief))}"
        + (f" · version {brief.version}" if brief.version else "")
        + "</p>",
        "<h2>Summary</h2><ul>",
    ]
    for sentence in brief.summary:
        label = (
            ""
            if sentence.status == "agreed"
            else f" <span class='badge {sentence.status}'>{STATUS_LABEL[sentence.status]}</span>"
        )
        parts.append(
            f"<li>{h(sentence.text)}{label} {cites([c.article_id for c in sentence.citations])}</li>"
        )
    parts.append("</ul><h2>Claims</h2><ul>")
    for c in brief.claims:
        values = "; ".join(f"{h(v)}: {cites(ids)}" for v, ids in c.values.items())
        extra = f" — {values}" if values else ""
        who = f" <span class='meta'>({h(c.speaker)})</span>" if c.speaker else ""
        new = " <span class='badge'>new</span>" if c.new else ""
        parts.append(
            f"<li><span class='badge {c.status}'>{STATUS_LABEL[c.status]} ×{c.independent_reports}</span> "
            f"{h(c.text)}{who}{new} {cites(c.article_ids)}{extra}</li>"
        )
    parts.append("</ul>")
    if brief.timeline:
        parts.append("<h2>Timeline</h2><ul>")
        parts += [
            f"<li><b>{h(readable_date(t['date']))}</b> {h(t['text'])} {cites(t['article_ids'])}</li>"
            for t in brief.timeline
        ]
        parts.append("</ul>")
    if brief.entities:
        parts.append("<h2>Names</h2><ul>")
        parts += [
            f"<li>{h(e['name'])} <span class='meta'>{h(e['type'])}</span> {cites(e['article_ids'])}</li>"
            for e in brief.entities[:20]
        ]
        parts.append("</ul>")
    parts.append("<h2>Sources</h2><ol>")
    for a in brief.articles:
        parts.append(
            f"<li id='a{numbers[a.id]}'>{link(a.url, a.title)} — {h(_outlet(a))} <code>{h(a.id)}</code></li>"
        )
    parts.append("</ol></body></html>")
    return "\n".join(parts) + "\n"


def print_brief(console: Console, brief: Brief) -> None:
    body: list[Any] = [Text(_reports_line(brief), style="dim")]
    summary = Text()
    for s in brief.summary:
        summary.append("• ")
        summary.append(s.text)
        if s.status != "agreed":
            summary.append(f" ({STATUS_LABEL[s.status]})", style="yellow")
        summary.append(
            " " + _sources(brief, [c.article_id for c in s.citations], SOURCES_SHOWN) + "\n",
            style="cyan",
        )
    body.append(summary)
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    table.add_column("status", no_wrap=True)
    table.add_column("claim", ratio=1)
    # (a claim of many reports names six and "+N more": unwrapped, that left its claim a
    # dozen characters of an 80-column terminal)
    table.add_column("sources", max_width=max(22, console.width // 3))
    style = {"agreed": "green", "conflict": "red", "single": "yellow"}
    shown_single = hidden = 0
    for c in brief.claims:
        if c.status == "single":
            if shown_single >= MAX_SINGLE_SHOWN:
                hidden += 1
                continue
            shown_single += 1
        text = c.text if not c.values else c.text + "  [" + ", ".join(c.values) + "]"
        table.add_row(
            Text(STATUS_LABEL[c.status], style=style[c.status]),
            escape(text),
            f"{_sources(brief, c.article_ids, SOURCES_SHOWN)} ×{c.independent_reports}",
        )
    body.append(table)
    if hidden:
        body.append(
            Text(
                f"… {hidden} more single-source claims (--markdown or --json lists all)",
                style="dim",
            )
        )
    sources = Table(show_header=False, box=None, expand=True)
    sources.add_column("n", no_wrap=True)
    sources.add_column("article", ratio=1)
    group_of = {aid: g for g in brief.groups for aid in g.article_ids}
    for i, a in enumerate(brief.articles, start=1):
        group = group_of.get(a.id)
        note = ""
        if group and len(group.article_ids) > 1:
            note = (
                f"  ({_same_report(group)} as "
                + _sources(brief, [x for x in group.article_ids if x != a.id], SOURCES_SHOWN)
                + ")"
            )
        sources.add_row(f"[{i}]", escape(f"{a.title} — {_outlet(a)} · {a.id}{note}"))
    body.append(sources)
    title = escape(brief.headline)
    subtitle = escape(brief.story_id) if brief.story_id else None
    console.print(
        Panel(Group(*body), title=f"[bold]{title}[/bold]", subtitle=subtitle, expand=True)
    )
