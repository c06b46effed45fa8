"""Exports: an Atom feed of stories, so any feed reader can follow synoptic's stories."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from synoptic.engine import Engine
from synoptic.model import Story, StorySelection

ATOM = "http://www.w3.org/2005/Atom"


def _entry(feed: ET.Element, story: Story, summary: str, base_url: str) -> None:
    entry = ET.SubElement(feed, "entry")
    ET.SubElement(entry, "id").text = f"urn:synoptic:story:{story.id}"
    ET.SubElement(entry, "title").text = story.headline
    ET.SubElement(entry, "updated").text = story.updated.isoformat()
    ET.SubElement(entry, "published").text = story.created.isoformat()
    if base_url:
        ET.SubElement(
            entry, "link", rel="alternate", type="text/html", href=f"{base_url}/stories/{story.id}"
        )
    for article in story.articles:
        if article.url:
            ET.SubElement(entry, "link", rel="related", href=article.url, title=article.title)
    n, k = len(story.articles), story.independent_reports
    ET.SubElement(
        entry, "summary", type="text"
    ).text = (
        f"{n} article{'s' * (n != 1)}, {k} independent report{'s' * (k != 1)}. {summary}".strip()
    )


def atom_feed(
    engine: Engine,
    *,
    base_url: str = "",
    chosen: StorySelection = StorySelection(limit=100),
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Atom 1.0: one entry per ``chosen`` story (by default the 100 most recently updated),
    updated when the story changes, linking each source article. ``progress(done, total)``
    after each story's brief (writing a hundred briefs takes a while on a large store)."""
    ET.register_namespace("", ATOM)
    feed = ET.Element("feed", xmlns=ATOM)
    _, stories = engine.story_page(chosen)
    search, outlet = " ".join(chosen.search), chosen.outlet
    sort = "reports" if chosen.by_reports else None
    # a feed of other stories is another feed: its id and self link say which
    query = urlencode({k: v for k, v in (("q", search), ("outlet", outlet), ("sort", sort)) if v})
    ET.SubElement(feed, "id").text = f"urn:synoptic:feed:{base_url or 'local'}" + (
        f"?{query}" if query else ""
    )
    title = "synoptic stories" + (f" matching “{search}”" if search else "")
    ET.SubElement(feed, "title").text = title + (f" from {outlet}" if outlet else "")
    newest = max((s.updated for s in stories), default=None)
    ET.SubElement(feed, "updated").text = (
        newest.isoformat() if newest else "1970-01-01T00:00:00+00:00"
    )
    ET.SubElement(feed, "generator").text = "synoptic"
    if base_url:
        self_link = f"{base_url}/stories.atom" + (f"?{query}" if query else "")
        ET.SubElement(feed, "link", rel="self", href=self_link)
    for done, story in enumerate(stories, start=1):
        brief = engine.brief(story.id, words=60)
        _entry(feed, story, " ".join(s.text for s in brief.summary), base_url)
        if progress is not None:
            progress(done, len(stories))
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="unicode")
