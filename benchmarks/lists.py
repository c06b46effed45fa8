"""How long the lists of stories take on a store: the web pages and API requests that list,
search and filter stories, answered in-process (FastAPI's test client, no network), best of
``--repeat`` after one warm-up request each.

    python benchmarks/lists.py --db sqlite:////tmp/s20k.db [--outlet "Outlet 1"]

Build a store to measure with `benchmarks/make_stream.py` and `synoptic ingest` (the
architecture notes used the stream's first 20,000 articles). The requests that a version
without them does not know (`sort=reports`) are answered there as plain lists: compare those
rows only between versions that have them.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from urllib.parse import urlencode

from synoptic import Engine
from synoptic.store import sqlite_file
from synoptic.web import create_app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="the store's URL")
    parser.add_argument("--search", default="earthquake", help="a full-text search to time")
    parser.add_argument("--outlet", default="Outlet 1", help="an outlet to filter by")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = sqlite_file(args.db)
    if path is not None and not Path(path).exists():  # (an Engine would create an empty one)
        parser.error(f"no store at {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (starlette's notice about its test client)
        from fastapi.testclient import TestClient

    requests = [
        "/",
        "/api/stories",
        "/?" + urlencode({"q": args.search}),
        "/?" + urlencode({"outlet": args.outlet}),
        "/api/stories?page=4&per_page=50",
        "/?sort=reports",
    ]
    with Engine(args.db) as engine:
        client = TestClient(create_app(engine))
        print(f"| request | status | best of {args.repeat} (s) |")
        print("|---|---|---|")
        for url in requests:
            client.get(url)  # (warm-up: the first request also loads templates)
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
            print(f"| `{url}` | {response.status_code} | {min(times):.3f} |")


if __name__ == "__main__":
    main()
