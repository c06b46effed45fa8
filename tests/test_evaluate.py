"""Evaluation: metrics on hand-checked cases, loaders on tiny files in the datasets' formats."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synoptic.cli import app
from synoptic.evaluate import (
    bcubed,
    clustering_scores,
    evaluate_briefs,
    evaluate_clustering,
    extraction_scores,
    load_ecbplus,
    load_multinews,
    load_multinews_clusters,
    shingle_match,
)

from .conftest import QUAKE_A, QUAKE_B


def test_bcubed_by_hand() -> None:
    assert bcubed(["a", "a", "b"], ["x", "x", "y"]) == (1.0, 1.0, 1.0)
    p, r, f = bcubed(["a", "a", "b", "b"], ["x", "x", "x", "x"])
    assert (p, r) == (0.5, 1.0) and f == pytest.approx(2 / 3)
    p, r, _ = bcubed(["a", "a"], ["x", "y"])
    assert (p, r) == (1.0, 0.5)
    scores = clustering_scores(["a", "a", "b"], ["x", "x", "y"])
    assert scores["ari"] == 1.0 and scores["n_gold"] == 2 and scores["n_pred"] == 2


def _ecb_doc(path: Path, sentences: list[str]) -> None:
    tokens, t = [], 1
    for s, sentence in enumerate(sentences):
        for n, token in enumerate(sentence.split()):
            tokens.append(f'<token t_id="{t}" sentence="{s}" number="{n}">{token}</token>')
            t += 1
    path.write_text(f'<Document doc_name="{path.name}">\n' + "\n".join(tokens) + "\n</Document>\n")


def _quake_sentences(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


@pytest.fixture
def ecb_root(tmp_path: Path) -> Path:
    root = tmp_path / "ECB+"
    for topic, (a, b) in {1: (QUAKE_A, QUAKE_B)}.items():
        folder = root / str(topic)
        folder.mkdir(parents=True)
        for n in (1, 2):
            _ecb_doc(
                folder / f"{topic}_{n}ecb.xml",
                ["http : //example.org/2013/05/02/a", *_quake_sentences(a)],
            )
            _ecb_doc(folder / f"{topic}_{n}ecbplus.xml", _quake_sentences(b))
    return root


def test_ecbplus_loader_and_engine_run(ecb_root: Path) -> None:
    docs = load_ecbplus(ecb_root)
    assert sorted(d.label for d in docs) == ["1/ecb", "1/ecb", "1/ecbplus", "1/ecbplus"]
    with_url = [d for d in docs if d.url]
    assert with_url and with_url[0].url == "http://example.org/2013/05/02/a"
    assert "http" not in with_url[0].text
    scores = evaluate_clustering(docs, seed=3)
    assert scores["n_docs"] == 4 and scores["n_rejected"] == 0
    assert scores["n_dated"] == len(with_url)  # the date in their URL
    assert scores["bcubed_f1"] == 1.0  # identical copies pair up; the two events stay apart


def test_multinews_loader_halves(tmp_path: Path) -> None:
    path = tmp_path / "mn.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["documents", "num_documents", "summary"])
        writer.writeheader()
        for text in (QUAKE_A, QUAKE_B, QUAKE_A, QUAKE_B):
            writer.writerow({"documents": repr([text, text]), "num_documents": 2, "summary": "– x"})
    assert len(load_multinews(path, "all")) == 8
    first, second = load_multinews(path, "first"), load_multinews(path, "second")
    assert {d.label for d in first} == {"0", "1"} and {d.label for d in second} == {"2", "3"}


def test_eval_cli_json(ecb_root: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "clustering", "ecbplus", str(ecb_root), "--json"])
    assert result.exit_code == 0, result.output
    assert {
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "ari",
        "v_measure",
        "n_docs",
        "n_gold",
        "n_pred",
    } <= set(json.loads(result.output))
    missing = CliRunner().invoke(app, ["eval", "clustering", "multinews", "/no/such.csv"])
    assert missing.exit_code == 2


def test_a_dataset_file_that_is_not_one_is_a_usage_error(tmp_path: Path, ecb_root: Path) -> None:
    """Files that are not the datasets they are given as: one line naming the file (and row)
    and what is wrong, exit code 2; each was a traceback before."""
    bad_columns, bad_row, not_text = (tmp_path / n for n in ("a.csv", "b.csv", "c.csv"))
    bad_columns.write_text("a,b\n1,2\n")
    bad_row.write_text('documents,summary\n"[1, 2",s\n')
    not_text.write_bytes(b"\xb1\xff" * 100)
    (ecb_root / "1" / "1_9ecb.xml").write_text("<Document><token")
    cases = {
        ("clustering", "multinews", bad_columns): "needs the columns 'documents' and 'summary'",
        ("briefs", "multinews", bad_columns): "first line has the columns 'a', 'b')",
        ("clustering", "multinews", bad_row): "row 2: its 'documents' is not a list of texts",
        ("clustering", "multinews", not_text): "not UTF-8 text",
        ("clustering", "ecbplus", ecb_root): "1_9ecb.xml: not an ECB+ document",
    }
    jsonl = tmp_path / "d.csv"  # (a dump given as the CSV: its header was all of a line)
    jsonl.write_text(json.dumps({"title": "t" * 40, "text": "x, " * 3000}) + "\n")
    said = CliRunner().invoke(app, ["eval", "clustering", "multinews", str(jsonl)]).output
    assert "and 2997 more)" in " ".join(said.split()) and len(said) < 600, said
    for (kind, dataset, path), message in cases.items():
        result = CliRunner().invoke(app, ["eval", kind, dataset, str(path)])
        flat = "".join(result.output.split())  # (the console wraps long paths)
        assert result.exit_code == 2 and "".join(message.split()) in flat, result.output


def test_eval_briefs_and_faithfulness(tmp_path: Path, parade_dir: Path) -> None:
    path = tmp_path / "mn.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["documents", "num_documents", "summary"])
        writer.writeheader()
        writer.writerow(
            {
                "documents": repr([QUAKE_A, QUAKE_B]),
                "num_documents": 2,
                "summary": "– A magnitude 7.1 earthquake struck southern Chile on Tuesday, killing at least 12 people.",
            }
        )
    clusters = load_multinews_clusters(path)
    assert clusters[0].summary.startswith("A magnitude")  # the leading dash is removed
    scores = evaluate_briefs(clusters)
    assert scores["n_clusters"] == 1 and 0 < scores["rouge1"] <= 100
    result = CliRunner().invoke(app, ["eval", "briefs", "multinews", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) == {"rouge1", "rouge2", "rougeL", "n_clusters"}

    faithful = CliRunner().invoke(app, ["eval", "faithfulness", str(parade_dir), "--json"])
    assert faithful.exit_code == 0, faithful.output
    report = json.loads(faithful.output)
    assert report["stories"] == 1 and report["cited_verbatim"] == 100.0 and report["problems"] == []


def test_shingle_match_by_hand() -> None:
    # gold shingles: (a b c d), (b c d e); predicted: (x a b c), (a b c d)
    assert shingle_match("a b c d e", "x a b c d") == (1 / 3, 1 / 3, 1 / 3)
    assert shingle_match("A, b. c d", "A b c d") == (1.0, 0.0, 0.0)  # words, not punctuation
    assert shingle_match("one two", "") == (0.0, 0.0, 1.0)  # short texts are one shingle
    assert shingle_match("", "") == (0.0, 0.0, 0.0)
    # precision over pages with output, recall over pages with gold text
    scores = extraction_scores([(0.5, 0.5, 0.0), (0.0, 0.0, 1.0)])
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["f1"] == 0.5


def test_eval_extraction_cli(tmp_path: Path) -> None:
    article = " ".join(["The harbour bridge was approved by the council on Monday night."] * 3)
    page = (
        "<html><head><title>Bridge approved</title></head><body><nav>Home | World | Sport</nav>"
        f"<article><h1>Bridge approved</h1><p>{article}</p><p>It opens in 2028, officials "
        "said, after a decade of debate about its cost and its route.</p></article>"
        "<footer>Copyright 2025 The Daily Planet</footer></body></html>"
    )
    (tmp_path / "html").mkdir()
    with gzip.open(tmp_path / "html" / "p1.html.gz", "wt", encoding="utf-8") as handle:
        handle.write(page)
    truth = {"p1": {"url": "https://example.com/a", "articleBody": article}}
    (tmp_path / "ground-truth.json").write_text(json.dumps(truth))
    result = CliRunner().invoke(app, ["eval", "extraction", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["n_pages"] == 1 and scores["n_empty"] == 0
    assert scores["recall"] == 1.0 and 0.5 < scores["precision"] < 1.0  # the extra paragraph
    missing = CliRunner().invoke(app, ["eval", "extraction", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such folder" in missing.output
    (tmp_path / "html" / "p1.html.gz").unlink()  # a page the ground truth names is missing
    broken = CliRunner().invoke(app, ["eval", "extraction", str(tmp_path)])
    assert broken.exit_code == 2 and "p1.html.gz" in " ".join(broken.output.split())
