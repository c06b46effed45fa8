"""Main-text extraction on the ScrapingHub article-extraction benchmark (181 news and blog
pages with a gold article body): synoptic's extraction (trafilatura, then synoptic's own
cleaning of boilerplate lines) against the extractors a user would otherwise reach for, scored
with the benchmark's own measure (word 4-gram shingles; see synoptic.evaluate.shingle_match).

    python benchmarks/extraction.py --pages ../shared/datasets/scrapinghub [--split report]

Splits: the pages sorted by id, first half "dev" (where synoptic's cleaning rules may be looked
at and mended; its pages whose F1 the cleaning moves are listed), second half "report" (never
looked at); "all" both. The "trafilatura, synoptic's settings" row is
synoptic's extraction without its cleaning step: the difference is what the cleaning does.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date

import justext
import trafilatura
from lxml import html as lxml_html
from readability import Document as ReadabilityDocument

from synoptic.evaluate import (
    Page,
    extraction_scores,
    load_extraction_pages,
    shingle_match,
    synoptic_body,
)
from synoptic.extract import page_fields


def trafilatura_default(page: Page) -> str:
    return trafilatura.extract(page.html, url=page.url or None) or ""


def trafilatura_synoptic_settings(page: Page) -> str:
    """The same trafilatura call as synoptic's extractor, without synoptic's cleaning."""
    data = page_fields(page.html, page.url or None)
    return (data or {}).get("text") or ""


def readability_lxml(page: Page) -> str:
    summary = ReadabilityDocument(page.html).summary(html_partial=True)
    return lxml_html.fromstring(summary).text_content() if summary.strip() else ""


def jus_text(page: Page) -> str:
    paragraphs = justext.justext(page.html.encode("utf-8"), justext.get_stoplist("English"))
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


SYSTEMS: dict[str, Callable[[Page], str]] = {
    "synoptic (trafilatura + synoptic's cleaning)": synoptic_body,
    "trafilatura, synoptic's settings (no cleaning)": trafilatura_synoptic_settings,
    "trafilatura, defaults (`extract`)": trafilatura_default,
    "readability-lxml": readability_lxml,
    "jusText (English stoplist)": jus_text,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", required=True, help="the benchmark's folder (html/, json)")
    parser.add_argument("--split", choices=["dev", "report", "all"], default="all")
    args = parser.parse_args()
    pages = load_extraction_pages(args.pages)  # sorted by id
    half = len(pages) // 2
    pages = {"dev": pages[:half], "report": pages[half:], "all": pages}[args.split]
    print(
        f"# main-text extraction, {args.split} split, {len(pages)} pages, "
        f"{date.today().isoformat()}\n"
    )
    print("| system | precision | recall | F1 | empty pages | pages/s |")
    print("|---|---|---|---|---|---|")
    per_page: dict[str, list[float]] = {}
    for name, extract in SYSTEMS.items():
        started = time.perf_counter()
        bodies, crashed = [], 0
        for page in pages:
            try:
                bodies.append(extract(page))
            except Exception:  # a peer that crashes on a page extracted nothing from it
                bodies.append("")
                crashed += 1
        rate = len(pages) / (time.perf_counter() - started)
        matches = [shingle_match(p.body, b) for p, b in zip(pages, bodies, strict=True)]
        scores = extraction_scores(matches)
        per_page[name] = [tp / (tp + (fp + fn) / 2) if tp else 0.0 for tp, fp, fn in matches]
        empty = sum(not b.strip() for b in bodies)
        print(
            f"| {name} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
            f"**{scores['f1']:.3f}** | {empty}{f' ({crashed} crashed)' if crashed else ''} | "
            f"{rate:.1f} |"
        )
    ours, raw = per_page[next(iter(SYSTEMS))], per_page[list(SYSTEMS)[1]]
    better = sum(a > b + 0.05 for a, b in zip(ours, raw, strict=True))
    worse = sum(a < b - 0.05 for a, b in zip(ours, raw, strict=True))
    print(
        f"\nsynoptic's cleaning against the same trafilatura call, per page (F1 moved by more "
        f"than 0.05): better on {better} pages, worse on {worse}."
    )
    if args.split == "dev":  # the half whose pages may be looked at: which ones, and how much
        for page, a, b in zip(pages, ours, raw, strict=True):
            if abs(a - b) > 0.01:
                print(f"  {page.id[:10]} F1 {b:.3f} -> {a:.3f} with cleaning  {page.url[:70]}")


if __name__ == "__main__":
    main()
