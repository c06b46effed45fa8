"""Brief quality benchmark: synoptic's summary against LexRank, TextRank (sumy) and a round-robin
lead baseline on the Multi-News validation sample, all truncated to the reference's length.

    python benchmarks/briefs.py --multinews ../shared/datasets/multinews/sample_validation.csv

Reports both halves: synoptic's summary rules were developed on the first half; the second half
is the held-out report.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import date

from synoptic.evaluate import Cluster, evaluate_briefs, load_multinews_clusters, synoptic_summary
from synoptic.text import SentenceSplitter

SPLITTER = SentenceSplitter()
_WORD = re.compile(r"\w+(?:['’-]\w+)*")


class Tokenizer:
    """sumy's tokenizer interface without NLTK data: pysbd sentences, regex words."""

    language = "english"

    def to_sentences(self, paragraph: str) -> list[str]:
        return [s.text for s in SPLITTER.split(paragraph)]

    def to_words(self, sentence: str) -> list[str]:
        return _WORD.findall(sentence)


def _plain(cluster: Cluster) -> list[str]:
    return [" ".join(doc.split()) for doc in cluster.documents]


def _sumy(summarizer_name: str) -> object:
    from sumy.nlp.stemmers import Stemmer
    from sumy.parsers.plaintext import PlaintextParser
    from sumy.summarizers.lex_rank import LexRankSummarizer
    from sumy.summarizers.text_rank import TextRankSummarizer
    from sumy.utils import get_stop_words

    cls = {"lexrank": LexRankSummarizer, "textrank": TextRankSummarizer}[summarizer_name]
    summarizer = cls(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    tokenizer = Tokenizer()

    def summarize(cluster: Cluster, words: int) -> str:
        text = "\n\n".join(_plain(cluster))
        parser = PlaintextParser.from_string(text, tokenizer)

        def budget(infos: list) -> list:
            """sumy's best-rated sentences, best first, until the word budget is met."""
            out, used = [], 0
            for info in infos:
                if used >= words:
                    break
                out.append(info)
                used += len(str(info.sentence).split())
            return out

        chosen = [str(s) for s in summarizer(parser.document, budget)]  # back in document order
        return " ".join(chosen)

    return summarize


def round_robin_lead(cluster: Cluster, words: int) -> str:
    """The first sentence of each document in turn, then the second of each, and so on."""
    per_doc = [[s.text for s in SPLITTER.split(doc)] for doc in _plain(cluster)]
    out, used, i = [], 0, 0
    while used < words and any(i < len(d) for d in per_doc):
        for sentences in per_doc:
            if i < len(sentences) and used < words:
                out.append(sentences[i])
                used += len(sentences[i].split())
        i += 1
    return " ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--multinews", required=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    systems = {
        "synoptic brief": synoptic_summary,
        "LexRank (sumy)": _sumy("lexrank"),
        "TextRank (sumy)": _sumy("textrank"),
        "round-robin lead": round_robin_lead,
    }
    rows = []
    for half in ("first", "second"):
        clusters = load_multinews_clusters(args.multinews, half)  # type: ignore[arg-type]
        for name, fn in systems.items():
            start = time.perf_counter()
            scores = evaluate_briefs(clusters, fn)  # type: ignore[arg-type]
            rows.append(
                {
                    "half": half,
                    "system": name,
                    **scores,
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"Brief benchmark (Multi-News validation sample), {date.today().isoformat()}")
    print("| half | system | ROUGE-1 | ROUGE-2 | ROUGE-L | clusters | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        label = "first (dev)" if r["half"] == "first" else "**second (held out)**"
        print(
            f"| {label} | {r['system']} | {r['rouge1']:.2f} | {r['rouge2']:.2f} | {r['rougeL']:.2f} | {r['n_clusters']} | {r['seconds']} |"
        )


if __name__ == "__main__":
    main()
