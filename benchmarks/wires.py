"""Wire credits found in real article texts: which documents of the Multi-News validation sample
name a wire service (Reuters, AP, AFP...) after cleaning, and from what evidence (a dateline, a
copyright notice, a byline, Reuters' editing line, a trailing credit). There is no gold label
for this; the point is to count, and with ``--show`` to read every credit the cleaner used so a
person can check that none is a mention ("... told Reuters") or a photo credit.

    python benchmarks/wires.py --multinews ../shared/datasets/multinews/sample_validation.csv --show
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from synoptic.clean import TextCleaner
from synoptic.evaluate import load_multinews
from synoptic.outlets import OutletRegistry


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--multinews", required=True, help="the Multi-News sample_validation.csv")
    parser.add_argument("--show", action="store_true", help="print each document's evidence")
    args = parser.parse_args()
    cleaner = TextCleaner(registry=OutletRegistry.bundled())
    docs = load_multinews(Path(args.multinews), "all")
    wires: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    mentioned = 0
    for doc in docs:
        cleaned = cleaner.clean(doc.text, title=doc.title or None)
        kept = [
            r
            for r in cleaned.removed
            if r.reason in ("dateline with wire credit", "wire credit", "wire contribution")
            or (r.reason == "author byline" and cleaned.hints.wire)
        ]
        reasons.update(r.reason for r in kept)
        mentioned += any(w in doc.text for w in ("Reuters", "Associated Press", "(AP)", "AFP"))
        if cleaned.hints.wire:
            wires[cleaned.hints.wire] += 1
        if args.show and (cleaned.hints.wire or kept):
            evidence = "; ".join(f"{r.reason}: {r.text[:70]!r}" for r in kept)
            print(f"{cleaned.hints.wire or '-'}\t{evidence}")
    print(
        f"\n{len(docs)} documents; {mentioned} mention Reuters, the Associated Press, (AP) or AFP"
    )
    print("| wire named | documents |")
    print("|---|---|")
    for wire, n in wires.most_common():
        print(f"| {wire} | {n} |")
    print(f"| (none) | {len(docs) - sum(wires.values())} |")
    print("\n| removed as | pieces |")
    print("|---|---|")
    for reason, n in reasons.most_common():
        print(f"| {reason} | {n} |")


if __name__ == "__main__":
    main()
