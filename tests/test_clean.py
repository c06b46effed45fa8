"""The cleaner recognises boilerplate by kind, on text written for these tests."""

from __future__ import annotations

from synoptic.clean import TextCleaner, split_paragraphs
from synoptic.outlets import OutletRegistry

cleaner = TextCleaner(registry=OutletRegistry.bundled())

BODY = [
    "City officials approved the new harbour bridge on Monday after a decade of debate over its cost.",
    "The bridge will carry four lanes of traffic and a cycle path, and is due to open in 2028.",
    "Opponents said the money would be better spent on ferries, and promised to challenge the vote.",
]


def test_kinds_of_boilerplate_are_removed_with_reasons() -> None:
    text = "\n\n".join(
        [
            "Live updates",
            "Harbour bridge approved after decade of debate",
            "Subscribe to The Daily Planet's morning newsletter",
            "By Jane Doe and John Roe",
            "5 min read",
            "Share this article",
            "The site of the planned bridge seen from the old pier. (Jane Doe/Daily Planet via Getty Images)",
            "Photo: AP",
            BODY[0],
            BODY[0],
            BODY[1],
            "Read more: Ferry strike enters third week",
            BODY[2] + " AFP",
        ]
    )
    result = cleaner.clean(text)
    assert result.title == "Harbour bridge approved after decade of debate"
    assert result.paragraphs == BODY
    reasons = [r.reason for r in result.removed]
    for reason in (
        "interface label",
        "newsletter prompt",
        "author byline",
        "photo caption",
        "photo credit",
        "repeated paragraph",
        "wire credit",
    ):
        assert reason in reasons
    assert result.hints.outlets == ["The Daily Planet"]
    assert result.hints.authors == ["Jane Doe", "John Roe"]
    assert result.hints.wire == "AFP"


def test_teasers_and_bio_after_the_article_are_cut() -> None:
    text = "\n".join(
        [
            "Harbour bridge approved after decade of debate",
            *BODY,
            "Storm closes schools across the north coast",
            "Schools in six towns were closed on Tuesday as a storm brought winds of up to 120 km/h and the weather service warned of",
            "Mary Major",
            "Senior Reporter",
            "Mary Major is a senior reporter at the Coastal Herald covering transport and city politics for the paper.",
            "Load more",
            "Police arrest two after jewellery shop raid in the city centre on Saturday night, officers said.",
        ]
    )
    result = cleaner.clean(text)
    assert result.paragraphs == BODY
    removed = {r.text: r.reason for r in result.removed}
    assert removed["Storm closes schools across the north coast"].startswith("teaser")
    assert removed["Mary Major"] == "author byline"
    assert "Coastal Herald" in result.hints.outlets


def test_a_subheading_inside_the_article_is_not_a_teaser() -> None:
    text = "\n\n".join(["Harbour bridge approved", BODY[0], BODY[1], "What happens next", BODY[2]])
    result = cleaner.clean(text)
    assert result.paragraphs == [BODY[0], BODY[1], "What happens next", BODY[2]]


MORE_BODY = [
    "Engineers said the foundations would be laid in the spring, once the river is at its lowest.",
    "The council will publish the final design next month and hold two public meetings about it.",
    "A ferry service will run in the meantime, with extra crossings at the busiest hours of the day.",
]


def test_a_subheading_over_an_embedded_post_does_not_end_the_article() -> None:
    # A subheading followed by a line that does not end like a sentence (an embedded post, a
    # list item) looks like a teaser; the whole paragraphs after it say the article goes on.
    text = "\n\n".join(
        [
            "Harbour bridge approved",
            *BODY,
            "Why the vote took ten years",
            "We have waited a decade for this bridge and now the work begins for everyone in the city pic.twitter.com/x",
            *MORE_BODY,
        ]
    )
    assert cleaner.clean(text).paragraphs[-3:] == MORE_BODY


def test_a_more_label_inside_the_article_does_not_end_it() -> None:
    # Related links inside an article leave their "More:" label behind; the article goes on.
    text = "\n\n".join(["Harbour bridge approved", *BODY, "More:", *MORE_BODY])
    assert cleaner.clean(text).paragraphs == BODY + MORE_BODY


def test_dateline_names_the_wire_and_date() -> None:
    text = "Bridge approved\n\nWELLINGTON, March 3, 2025 (Reuters) - " + BODY[0] + "\n\n" + BODY[1]
    result = cleaner.clean(text)
    assert result.paragraphs[0] == BODY[0]
    assert result.hints.wire == "Reuters"
    assert result.hints.published is not None and result.hints.published.day == 3


def test_hard_wrapped_text_is_joined() -> None:
    wrapped = "The council met on Monday to discuss the harbour bridge and its\ncost, which has risen by a third since the plan was first drawn up\nin 2015."
    assert split_paragraphs(wrapped) == [" ".join(wrapped.split("\n"))]


def test_a_repeat_is_dropped_only_right_after_its_first_copy() -> None:
    # A page that renders a paragraph twice repeats it at once; a recipe's or a schedule's
    # recurring lines come back further on and are the article's own structure.
    label = "Eat every two to three hours and drink water with each meal."
    text = "\n\n".join(["Meal plan for the week", BODY[0], label, BODY[1], label, BODY[2], BODY[2]])
    result = cleaner.clean(text)
    assert result.paragraphs == [BODY[0], label, BODY[1], label, BODY[2]]
    assert [r.reason for r in result.removed] == ["repeated paragraph"]


def test_a_line_broken_inside_a_sentence_is_joined_again() -> None:
    # <br> line breaks in the middle of sentences: the next line goes on in lower case.
    text = "\n".join(
        [
            "Harbour bridge approved",
            "City officials approved the new harbour bridge on Monday after a decade of",
            "debate over its cost. The bridge will carry four lanes of traffic.",
            "Opponents said the money would be better spent on ferries",
            "Ferry Users Group",  # a new line in capitals is not a continuation
        ]
    )
    assert cleaner.clean(text).paragraphs == [
        "City officials approved the new harbour bridge on Monday after a decade of debate over "
        "its cost. The bridge will carry four lanes of traffic.",
        "Opponents said the money would be better spent on ferries",
        "Ferry Users Group",
    ]


def test_datelines_of_every_common_form_name_the_wire() -> None:
    cases = {
        "KYIV, Ukraine (AP) — ": "Associated Press",
        "ST. JOSEPH, Mich. (AP) — ": "Associated Press",
        "Berlin (dpa) - ": "dpa",
        "LONDON, May 3 (Reuters) - ": "Reuters",
        "(Reuters) - ": "Reuters",
        "NEW DELHI (PTI) -- ": "Press Trust of India",
    }
    for dateline, wire in cases.items():
        result = cleaner.clean("Bridge approved\n\n" + dateline + BODY[0] + "\n\n" + BODY[1])
        assert result.paragraphs == BODY[:2], dateline
        assert result.hints.wire == wire, dateline


def test_wire_notices_bylines_and_contributions() -> None:
    notice = cleaner.clean(
        "\n\n".join(
            ["Bridge approved", *BODY, "Copyright 2024 The Associated Press. All rights reserved."]
        )
    )
    assert notice.paragraphs == BODY
    assert notice.hints.wire == "Associated Press"

    byline = cleaner.clean(
        "\n\n".join(["Bridge approved", "By ZEKE MILLER Associated Press", *BODY])
    )
    assert byline.paragraphs == BODY
    assert (byline.hints.authors, byline.hints.wire) == (["ZEKE MILLER"], "Associated Press")
    assert (
        cleaner.clean("Bridge approved\n\nBy The Associated Press\n\n" + BODY[0]).hints.authors
        == []
    )

    # a wire's contribution is a credit, not content, but the text is the outlet's own
    contribution = "Associated Press writer Jane Doe in London contributed to this report."
    result = cleaner.clean("\n\n".join(["Bridge approved", *BODY, contribution]))
    assert result.paragraphs == BODY
    assert result.hints.wire is None
    assert ("wire contribution", contribution) in [(r.reason, r.text) for r in result.removed]


def test_a_bare_wire_credit_credits_the_text_at_its_end_and_a_photo_elsewhere() -> None:
    caption = "Protesters gather outside the council on Monday as the vote on the harbour bridge goes ahead after a decade of debate. (AP)"
    result = cleaner.clean("\n\n".join(["Bridge approved", BODY[0], caption, BODY[1], BODY[2]]))
    assert result.paragraphs == BODY
    assert result.hints.wire is None
    assert ("photo caption", caption) in [(r.reason, r.text) for r in result.removed]

    credited = cleaner.clean("\n\n".join(["Bridge approved", *BODY[:2], BODY[2] + " (AFP)"]))
    assert credited.paragraphs == BODY
    assert credited.hints.wire == "AFP"
