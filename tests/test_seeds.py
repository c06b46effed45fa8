"""The example every change must keep working: three articles about one event."""

from __future__ import annotations

import re

import pytest

from synoptic import Engine
from synoptic.brief import check_faithfulness

BOILERPLATE = [
    "Sign up now",
    "newsletters",
    "PHOTO: REUTERS, AFP",
    "Follow topic",
    "See more on",
    "News Feed",
    "2 min read",
    "Getty Images",
    "works as a News Editor",
    "Read more",
    "Show More",
    "Article image",
    "Avatar",
]
TEASERS = ["Dnipropetrovsk", "598 drones", "growth forecast"]


@pytest.fixture
def parade(engine: Engine, parade_dir):
    report = engine.ingest([parade_dir])
    assert report.summary_line() == "3 new, 0 duplicates, 0 rejected"
    return engine


def test_one_story_three_articles_two_reports(parade: Engine) -> None:
    stories = parade.stories()
    assert len(stories) == 1
    story = stories[0]
    assert len(story.articles) == 3
    assert story.independent_reports == 2
    by_origin = {a.origin.rsplit("/", 1)[-1][:3]: a.id for a in story.articles}
    wire_group = next(g for g in story.groups if len(g.article_ids) == 2)
    assert set(wire_group.article_ids) == {by_origin["000"], by_origin["001"]}
    assert wire_group.wire == "Reuters"


def test_boilerplate_and_teasers_are_gone(parade: Engine) -> None:
    for article in parade.stories()[0].articles:
        for text in BOILERPLATE + TEASERS:
            assert text not in article.text, (text, article.origin)
        # the repeated standfirst stays once
        assert article.text.count("Their attendance marks the first public appearance") <= 1
    removed = {r.reason for a in parade.stories()[0].articles for r in a.removed}
    assert {"newsletter prompt", "photo credit", "photo caption", "author bio"} <= removed
    assert "repeated paragraph" in removed


def test_outlets_inferred_from_the_text(parade: Engine) -> None:
    outlets = {a.origin.rsplit("/", 1)[-1][:3]: a for a in parade.stories()[0].articles}
    assert outlets["000"].outlet == "The Straits Times" and outlets["000"].outlet_inferred
    assert outlets["000"].wire == "Reuters"
    assert outlets["004"].outlet == "The Kyiv Independent" and outlets["004"].outlet_inferred


def _claim(brief, pattern: str):
    found = [c for c in brief.claims if re.search(pattern, c.text)]
    assert found, f"no claim matches {pattern!r}"
    return found[0]


def test_agreed_and_single_source_claims(parade: Engine) -> None:
    brief = parade.brief(parade.stories()[0].id)
    heads = _claim(brief, r"26 foreign heads of state")
    assert heads.status == "agreed" and heads.independent_reports == 2
    assert "Fico" in heads.text
    vucic = _claim(brief, r"Vucic")
    assert vucic.status == "agreed"
    troops = _claim(brief, r"20,000 to 30,000 troops")
    assert troops.status == "single" and troops.independent_reports == 1
    assert _claim(brief, r"Ushakov").status == "single"
    assert _claim(brief, r"absolutely unprecedented").status == "single"
    # the two Reuters copies together are one report: nothing is agreed by them alone
    for claim in brief.claims:
        if claim.status == "agreed":
            assert claim.independent_reports >= 2


def test_summary_is_cited_verbatim(parade: Engine) -> None:
    brief = parade.brief(parade.stories()[0].id)
    assert brief.summary
    texts = {a.id: a.text for a in brief.articles}
    for sentence in brief.summary:
        primary = sentence.citations[0]
        assert texts[primary.article_id][primary.start : primary.end] == sentence.text
        for citation in sentence.citations:
            assert 0 <= citation.start < citation.end <= len(texts[citation.article_id])
    assert check_faithfulness(brief) == []
    assert len(brief.summary) == 1 or sum(len(s.text.split()) for s in brief.summary) <= 120
    assert brief.summary[0].status == "agreed"
