"""Build a large JSONL stream of pre-extracted articles from the real texts in ../shared/datasets,
for the ingest speed benchmark. Each output article is a real ECB+ or Multi-News text with light
random edits (a dropped sentence, a swapped word, a changed figure) and a publication time spread
over ``--days`` days, in time order; each source text (event) is reported during ``--life`` days. Nothing from the datasets is written into the repository:
the output goes where ``--out`` says.

    python benchmarks/make_stream.py --ecbplus ../shared/datasets/ecbplus/ECB+ \
        --multinews ../shared/datasets/multinews/sample_validation.csv --n 100000 --out /tmp/stream.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
from datetime import UTC, datetime, timedelta

from synoptic.evaluate import load_ecbplus, load_multinews


def edit(text: str, rng: random.Random) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text)
    if len(sentences) > 3 and rng.random() < 0.5:
        sentences.pop(rng.randrange(1, len(sentences)))
    out = " ".join(sentences)
    words = out.split(" ")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(words))
        if words[i].isdigit():
            words[i] = str(int(words[i]) + rng.randint(1, 9))
        elif len(words) > 1:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ecbplus", required=True)
    parser.add_argument("--multinews", required=True)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--life", type=float, default=10.0, help="days an event keeps being reported"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    texts = [
        (d.title, d.text)
        for d in load_ecbplus(args.ecbplus) + load_multinews(args.multinews)
        if len(d.text.split()) >= 20
    ]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(days=args.days) / args.n
    # Like real news, each event is reported for a while and then fades: every source text gets a
    # start day, and an article at day d is drawn from the texts whose life covers d.
    starts = sorted((rng.uniform(-args.life, args.days), k) for k in range(len(texts)))
    with open(args.out, "w", encoding="utf-8") as handle:
        for i in range(args.n):
            day = args.days * i / args.n
            live = [k for first, k in starts if first <= day < first + args.life] or [
                rng.randrange(len(texts))
            ]
            source = rng.choice(live)
            title, text = texts[source]
            published = start + step * i + timedelta(seconds=rng.randint(0, 600))
            record = {
                "id": f"gen-{i}",
                "title": title,
                "text": edit(text, rng),
                "url": f"https://example.org/{i}",
                "outlet": f"Outlet {rng.randrange(200)}",
                "published": published.isoformat(),
                "source": source,  # which text it copies: speed.py --score's gold story
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {args.n} articles from {len(texts)} source texts to {args.out}")


if __name__ == "__main__":
    main()
