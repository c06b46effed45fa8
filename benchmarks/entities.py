"""Name recognition quality on ECB+'s annotated mentions (a proxy for NER gold).

ECB+ marks the participants and locations of its events (HUMAN_PART_PER, HUMAN_PART_ORG,
LOC_*), including pronouns and common nouns. The named ones are taken as gold: markables whose
tokens, minus a leading "the", are all capitalised. Each document is compared as a set of names
(case- and accent-folded): precision, recall and F1 of the recogniser's names, and the share of
found names given the right type. Only the annotated sentences of each document are used.

    python benchmarks/entities.py --ecbplus ../shared/datasets/ecbplus/ECB+
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

from synoptic.analyze import Recognizer, RuleRecognizer, SpacyRecognizer, fold
from synoptic.evaluate import detokenize

GOLD_TYPES = {"HUMAN_PART_PER": "person", "HUMAN_PART_ORG": "organisation"}


def gold_names(path: Path) -> tuple[str, dict[str, str]]:
    root = ET.parse(path).getroot()
    tokens = {t.get("t_id"): t for t in root.iter("token")}
    sentences: dict[int, list[str]] = {}
    for t in root.iter("token"):
        sentences.setdefault(int(t.get("sentence", "0")), []).append(t.text or "")
    names: dict[str, str] = {}
    annotated: set[int] = set()
    markables = root.find("Markables")
    for m in markables if markables is not None else []:
        kind = GOLD_TYPES.get(m.tag) or ("place" if m.tag.startswith("LOC") else None)
        words = [tokens[a.get("t_id")] for a in m.iter("token_anchor") if a.get("t_id") in tokens]
        if not kind or not words:
            continue
        annotated.add(int(words[0].get("sentence", "0")))
        text = [w.text or "" for w in words]
        if text and text[0].casefold() == "the":
            text = text[1:]
        if (
            text
            and all(w[:1].isupper() for w in text if w.isalpha())
            and any(w.isalpha() for w in text)
        ):
            names[fold(detokenize(text))] = kind
    body = "\n".join(detokenize(sentences[k]) for k in sorted(annotated) if k in sentences)
    return body, names


def score(
    recognizer: Recognizer, docs: list[tuple[str, dict[str, str]]]
) -> dict[str, float | int | str]:
    tp = fp = fn = typed = 0
    for text, gold in docs:
        found = {fold(m.text): m.kind for m in recognizer.mentions(text)}
        hits = found.keys() & gold.keys()
        tp += len(hits)
        fp += len(found.keys() - gold.keys())
        fn += len(gold.keys() - found.keys())
        typed += sum(found[h] == gold[h] for h in hits)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "recognizer": recognizer.name,
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(f, 3),
        "type_accuracy": round(typed / tp, 3) if tp else 0.0,
        "gold_names": tp + fn,
        "documents": len(docs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ecbplus", required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--spacy-model", default="en_core_web_sm", help="spaCy model package to measure too"
    )
    args = parser.parse_args()
    docs = [gold_names(p) for p in sorted(Path(args.ecbplus).glob("*/*.xml"))]
    docs = [d for d in docs if d[1]]
    recognizers: list[Recognizer] = [RuleRecognizer()]
    note = ""
    try:
        recognizers.append(SpacyRecognizer(args.spacy_model))
    except Exception as exc:  # no spaCy or no model here
        note = f"spaCy not measured: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    rows = [score(r, docs) for r in recognizers]
    if args.json:
        print(json.dumps({"rows": rows, "note": note}, indent=2))
        return
    print(f"Name recognition on ECB+ named markables, {date.today().isoformat()}")
    print("| recogniser | precision | recall | F1 | right type | gold names | documents |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['recognizer']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['type_accuracy']:.3f} | {r['gold_names']} | {r['documents']} |"
        )
    if note:
        print(note)


if __name__ == "__main__":
    main()
