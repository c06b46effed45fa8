"""The command line: a thin adapter over :class:`synoptic.Engine`.

Exit codes: 0 ok; 1 some inputs were rejected (the good ones still landed); 2 usage errors
(bad option, unknown id, a database that cannot be opened). Errors are one line on stderr that
says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from synoptic import engine as engine_module
from synoptic.brief import check_faithfulness
from synoptic.engine import Engine
from synoptic.errors import InputRejected, NotFound, SettingsError, StoreError, SynopticError
from synoptic.ingest import Reader
from synoptic.model import Article, IngestReport, Rejection, StorySelection
from synoptic.render import (
    STATUS_LABEL,
    article_json,
    brief_html,
    brief_json,
    brief_markdown,
    extract_json,
    print_brief,
    status_json,
    stored_article_json,
    story_json,
    why_json,
)
from synoptic.settings import DEFAULT_DB_URL, Settings
from synoptic.store import sqlite_file, store_failure

app = typer.Typer(
    name="synoptic",
    help="Group news articles into stories, spot wire copies, and write cited briefs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
out = Console(highlight=False, soft_wrap=False)


def _version(value: bool) -> None:
    if value:
        from synoptic import __version__

        print(f"synoptic {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Group news articles into stories, spot wire copies, and write cited briefs."""


err = Console(stderr=True, highlight=False)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_STORE = 0, 1, 2, 3

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="SYNOPTIC_DB",
        help="Database: sqlite:///FILE (default), postgresql+psycopg://USER@HOST/DB, or the"
        " path of an SQLite file ending .db, .sqlite or .sqlite3.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of the view.")
]
PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Files (.txt .html .json .jsonl .warc .warc.gz, saved feeds .rss .atom .xml), URLs, folders (searched recursively) or - for standard input.",
        show_default=False,
    ),
]
AllowPrivate = Annotated[
    bool,
    typer.Option(
        "--allow-private",
        help="Let URLs reach loopback, private and link-local addresses (off: public hosts only).",
    ),
]
MaxBytes = Annotated[
    int, typer.Option("--max-bytes", help="Largest document accepted, in bytes.", min=1024)
]


@contextmanager
def errors_to_messages() -> Iterator[None]:
    """Typed errors -> one line on stderr and a meaningful exit code."""
    try:
        yield
    except (NotFound, SettingsError, StoreError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    except SynopticError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    except SQLAlchemyError as exc:  # the database failed mid-run: disk full, server gone
        err.print(f"[red]error:[/red] {escape(store_failure(exc))}")
        raise typer.Exit(EXIT_STORE) from None


def _settings(db: str, max_bytes: int | None = None, allow_private: bool = False) -> Settings:
    kwargs: dict[str, Any] = {"db_url": db, "allow_private": allow_private}
    if max_bytes is not None:
        kwargs["max_bytes"] = max_bytes
    return Settings(**kwargs)


def _stored(db: str) -> Settings:
    """The settings of a command that reads an existing store: an SQLite file that is not
    there is a mistyped ``--db`` (such commands created an empty store there and answered
    from it), not a new store."""
    settings = _settings(db)
    path = sqlite_file(settings.db_url)
    if path is not None and not Path(path).exists():
        raise SettingsError(
            f"no synoptic store at {path}: check --db (or SYNOPTIC_DB); "
            "`synoptic ingest PATH --db ...` creates one"
        )
    return settings


def _write(path: Path, text: str) -> None:
    """Write an output file whole or not at all (written beside it, then renamed over it: a
    feed that cron rewrites is never read half-written, nor left cut short by a full disk),
    or say why it cannot be written (a usage error)."""
    target = path.resolve()  # (through a link, to the file it names)
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        part.write_text(text, encoding="utf-8")
        if target.is_file():
            shutil.copymode(target, part)
        os.replace(part, target)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise SettingsError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _report_rejections(rejected: list[Rejection]) -> None:
    for r in rejected:
        err.print(f"[yellow]rejected[/yellow] {escape(r.origin)}: {escape(r.reason)}")


def _bar(
    *before: ProgressColumn, after: tuple[ProgressColumn, ...] = (), shown: bool = True
) -> Progress:
    """The progress bar of long commands: on stderr, gone when done, only on a terminal."""
    return Progress(
        SpinnerColumn(),
        *before,
        BarColumn(),
        MofNCompleteColumn(),
        *after,
        console=err,
        transient=True,
        disable=not (shown and err.is_terminal),
    )


class _Rate(ProgressColumn):
    """Items per second (articles, documents), once there is a rate to show."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


@contextmanager
def _progress(
    enabled: bool, total: int | None = None
) -> Iterator[Callable[[Article | Rejection | None], None] | None]:
    """The ingest's bar: items read, their rate, the time left when the total is known."""
    if not enabled:
        yield None
        return
    after = (
        _Rate(),
        *([TimeRemainingColumn()] if total else []),
        TextColumn("{task.fields[last]}"),
    )
    with _bar(TextColumn("ingesting"), after=after) as bar:
        task = bar.add_task("ingest", total=total, last="")

        def step(item: Article | Rejection | None) -> None:
            label = item.origin if item is not None else ""
            bar.update(task, advance=1, last=escape(Path(label).name[:40]))

        yield step


# Inputs counted ahead (files, folders, JSONL lines) from which `ingest` and `run` extract and
# fingerprint in worker processes unless told --workers: on this 2-core machine 2,000 JSONL
# articles took 5.6-6.3 s with 2 workers against 7.3-8.5 s without, 1,000 the same either way
# (3.4-3.8 s), 300 took longer (2.6 s against 2.0: starting the workers) (twentieth session).
AUTO_WORKERS_AT = 2000


def _auto_settings(
    settings: Settings, paths: list[str], workers: int | None
) -> tuple[Settings, int | None]:
    """``settings`` with ``workers`` as asked, or (None) 2 when the inputs hold at least
    :data:`AUTO_WORKERS_AT` items counted ahead and the machine has two cores or more (one
    worker process keeps up with the ingesting process; the second is a margin); and that
    count, when it was made."""
    expected = None
    if workers is None:
        expected = Reader.for_settings(settings).expected(paths)
        large = (expected or 0) >= AUTO_WORKERS_AT
        workers = 2 if large and (os.cpu_count() or 1) >= 2 else 1
    return replace(settings, workers=workers), expected


def _ingest(
    eng: Engine, paths: list[str], *, quiet: bool, total: int | None = None
) -> IngestReport:
    """Ingest with a progress bar (``total``: the inputs counted ahead, if they were)."""
    stdin = sys.stdin.buffer if "-" in paths else None
    try:
        shown = not quiet and err.is_terminal
        if shown and total is None:
            total = eng.reader.expected(paths)
        with _progress(shown, total) as step:
            report = eng.ingest(paths, stdin=stdin, progress=step)
    except KeyboardInterrupt:
        err.print(
            "interrupted: the batches stored before stay (the one in progress was not written); "
            "run the same command again to go on: what is stored is skipped as a duplicate"
        )
        raise typer.Exit(130) from None
    _report_rejections(report.rejected)
    if report.late:
        days = eng.settings.window_days
        err.print(
            f"[yellow]{len(report.late)} article(s) were published more than {days:g} days before "
            "the newest one already ingested[/yellow]: each was clustered with the stories of its "
            "own dates, read back from the store, which is slower than ingesting in date order. "
            "For big archives, ingest oldest first (for JSONL, sort the lines by their "
            "published field). An article with no date counts as published when it was ingested: "
            "mixed into an old archive, it makes the archive's later articles late."
        )
    return report


@app.command()
def run(
    paths: PathsArg,
    db: DbOption = DEFAULT_DB_URL,
    words: Annotated[int, typer.Option(help="Summary length in words.", min=10)] = 120,
) -> None:
    """Ingest PATHS, then print the brief of every story (the main job)."""
    with errors_to_messages():
        settings, total = _auto_settings(_settings(db), paths, None)
        with Engine(settings=settings) as eng:
            report = _ingest(eng, paths, quiet=False, total=total)
            for story in eng.story_list():
                print_brief(out, eng.brief(story.id, words=words))
            out.print(report.summary_line())
            raise typer.Exit(EXIT_REJECTED if report.rejected else EXIT_OK)


@app.command()
def ingest(
    paths: PathsArg,
    db: DbOption = DEFAULT_DB_URL,
    max_bytes: MaxBytes = Settings().max_bytes,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    allow_private: AllowPrivate = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes that extract and fingerprint articles while this one clusters and "
            "writes (the stories are the same). Default: 2 when the inputs hold 2,000 articles "
            "or more, counted ahead (files, folders, JSONL lines), on 2 cores or more; else 1.",
            min=1,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Add articles to the store: dedup, wire-copy detection and story assignment.

    Re-ingesting the same input adds nothing. Inputs that cannot become articles are rejected
    with a reason (kept in the store: see `synoptic rejections`) and the others still land.
    Exit code 1 when anything was rejected.
    """
    with errors_to_messages():
        settings, total = _auto_settings(_settings(db, max_bytes, allow_private), paths, workers)
        with Engine(settings=settings) as eng:
            report = _ingest(eng, paths, quiet=quiet or as_json, total=total)
            if as_json:
                _print_json(
                    {
                        "new": report.new,
                        "duplicates": report.duplicates,
                        "rejected": [
                            {"origin": r.origin, "reason": r.reason} for r in report.rejected
                        ],
                        "stories": sorted(report.stories_touched),
                        "late": report.late,
                    }
                )
            else:
                out.print(report.summary_line())
            raise typer.Exit(EXIT_REJECTED if report.rejected else EXIT_OK)


TABLE_ROWS = 50  # rows of the stories and rejections tables by default (--json lists all)


def _chosen(
    search: str | None, outlet: str | None, since: str | None, limit: int | None, by_reports: bool
) -> StorySelection:
    """The stories the filter options pick (``since`` as `--since` takes it)."""
    return StorySelection(
        search=(search,) if search else (),
        outlet=outlet,
        since=None if since is None else _moment(since),
        limit=limit,
        by_reports=by_reports,
    )


def _rows(limit: int | None, as_json: bool) -> int | None:
    """How many rows a listing shows: ``--limit`` (0: all), else all in JSON, else a table's."""
    if limit is None:
        return None if as_json else TABLE_ROWS
    return limit or None


SearchOption = Annotated[
    str | None,
    typer.Option(
        "--search",
        "-s",
        help="Only stories with an article containing all these words (title or text).",
    ),
]
OutletOption = Annotated[
    str | None, typer.Option(help="Only stories with an article from this outlet (any case).")
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        help="Only stories updated at or after this date or time (ISO 8601, UTC unless it "
        "says: 2026-11-24, 2026-11-24T09:00) or this long ago (30m, 12h, 2d).",
    ),
]
ByReportsOption = Annotated[
    bool,
    typer.Option(
        "--by-reports", help="Most independent reports first (copies of one wire text count once)."
    ),
]
LimitOption = Annotated[
    int | None,
    typer.Option(
        help=f"List at most this many (0: all). Default: {TABLE_ROWS} in the table, "
        "all with --json.",
        min=0,
    ),
]


def _moment(text: str) -> datetime:
    """An ISO 8601 date or time (UTC unless it says), or a duration ago ('2d', '12h')."""
    from synoptic.sources import parse_duration

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
        except SettingsError:
            raise SettingsError(
                f"cannot read {text!r} as a date or time: write e.g. 2026-11-24, "
                "2026-11-24T09:00 or a time ago such as 12h or 2d"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def stories(
    db: DbOption = DEFAULT_DB_URL,
    as_json: JsonOption = False,
    search: SearchOption = None,
    outlet: OutletOption = None,
    since: SinceOption = None,
    limit: LimitOption = None,
    by_reports: ByReportsOption = False,
) -> None:
    """List stories, most recently updated first (or most reported: --by-reports)."""
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        total, items = eng.story_page(
            _chosen(search, outlet, since, _rows(limit, as_json), by_reports)
        )
        if as_json:
            _print_json([story_json(s) for s in items])
            return
        if not items:
            if search or outlet or since:
                out.print("No story matches. `synoptic stories` without filters lists them all.")
            else:
                out.print("No stories yet. Add articles with `synoptic ingest PATH`.")
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        # the id is what `story`, `merge` and `split` take: never cut, whatever the width
        table.add_column("story", no_wrap=True, min_width=max(len(s.id) for s in items))
        table.add_column("headline", ratio=3)
        table.add_column("articles", justify="right", no_wrap=True, min_width=8)
        table.add_column("reports", justify="right", no_wrap=True, min_width=7)
        # (under 100 columns the outlets would leave the headline a word a line)
        with_outlets = out.width >= 100
        if with_outlets:
            table.add_column("outlets", ratio=1, min_width=10)
        # (narrow: the time goes under the date)
        table.add_column("updated", min_width=10, max_width=None if with_outlets else 10)
        for s in items:
            outlets = sorted({a.outlet for a in s.articles if a.outlet})
            if len(outlets) > 4:
                outlets = [*outlets[:3], f"{len(outlets) - 3} more"]
            table.add_row(
                s.id,
                escape(s.headline),
                str(len(s.articles)),
                str(s.independent_reports),
                *([escape(", ".join(outlets))] if with_outlets else []),
                s.updated.strftime("%Y-%m-%d %H:%M"),
            )
        out.print(table)
        if total > len(items):
            out.print(
                f"{len(items)} of {total} stories, "
                + ("most reported first" if by_reports else "most recently updated first")
                + ": --limit 0 lists them all; --search, --outlet and --since narrow them."
            )


@app.command()
def story(
    story_id: Annotated[str, typer.Argument(help="A story id from `synoptic stories`.")],
    db: DbOption = DEFAULT_DB_URL,
    as_json: JsonOption = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
    words: Annotated[int, typer.Option(help="Summary length in words.", min=10)] = 120,
    why: Annotated[
        bool,
        typer.Option("--why", help="Explain why each article is in the story, and the runner-up."),
    ] = False,
    changes: Annotated[
        bool,
        typer.Option(
            "--changes", help="Only the claims new since the previous version of the brief."
        ),
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the brief as one self-contained HTML file.")
    ] = None,
) -> None:
    """Print one story's brief: summary with citations, claims, names, timeline, framing."""
    if why:
        with errors_to_messages(), Engine(settings=_stored(db)) as eng:
            _print_why(eng, story_id, as_json)
        return
    if as_json and markdown:
        err.print("[red]error:[/red] choose one of --json and --markdown")
        raise typer.Exit(EXIT_USAGE)
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        brief = eng.brief(story_id, words=words)
        if html is not None:
            _write(html, brief_html(brief))
            out.print(f"wrote {html}")
            return
        if changes:
            fresh = [c for c in brief.claims if c.new]
            if as_json:
                claims = [c for c in brief_json(brief)["claims"] if c["new"]]
                _print_json({"id": brief.story_id, "version": brief.version, "new_claims": claims})
                return
            if brief.version == 1:
                out.print(
                    f"version 1 of {brief.story_id}: the first brief, so nothing is new since a previous one"
                )
            out.print(
                f"{len(fresh)} claim{'s' * (len(fresh) != 1)} new in version {brief.version}:"
            )
            for c in fresh:
                out.print(f"• [{STATUS_LABEL[c.status]}] {escape(c.text)}")
            return
        if as_json:
            _print_json(brief_json(brief) | {"updated": eng.story(story_id).updated.isoformat()})
        elif markdown:
            sys.stdout.write(brief_markdown(brief))
        else:
            print_brief(out, brief)


def _print_why(eng: Engine, story_id: str, as_json: bool) -> None:
    why = why_json(eng, story_id)
    if as_json:
        _print_json(why)
        return
    out.print(f"[bold]{escape(why['headline'])}[/bold]  ({why['id']})")
    for row in why["articles"]:
        out.print(
            f"• {escape(row['article']['title'])} [dim]{row['article']['id']}[/dim]\n"
            f"  {escape(row['reason'])}"
        )


@app.command()
def merge(
    keep: Annotated[str, typer.Argument(help="The story that stays.")],
    other: Annotated[str, typer.Argument(help="The story merged into it; its id keeps resolving.")],
    db: DbOption = DEFAULT_DB_URL,
    as_json: JsonOption = False,
) -> None:
    """Merge two stories that tell one event. Persisted; later articles see one story.

    With --json: {"story": the merged story's id, "merged": OTHER as given}.
    """
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        kept = eng.merge(keep, other)
    if as_json:
        _print_json({"story": kept, "merged": other})
    else:
        out.print(f"merged {escape(other)} into {kept}")


@app.command()
def split(
    story_id: Annotated[str, typer.Argument(help="The story to split.")],
    article_ids: Annotated[list[str], typer.Argument(help="Articles to move into a new story.")],
    db: DbOption = DEFAULT_DB_URL,
    as_json: JsonOption = False,
) -> None:
    """Move articles out of a story into a new one. The two are never merged again automatically.

    With --json: {"story": the story they left, "new_story", "moved": the article ids}.
    """
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        new_id = eng.split(story_id, article_ids)
        left = eng.story(story_id).id  # (an old id of a merged story resolves)
    moved = sorted(set(article_ids))
    if as_json:
        _print_json({"story": left, "new_story": new_id, "moved": moved})
    else:
        out.print(f"split {len(moved)} article(s) from {left} into {new_id}")


@app.command()
def forget(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="Forget the stories whose newest article was published (undated: ingested) "
            "before this: a date or time (2026-01-31) or a time ago (90d).",
        ),
    ],
    db: DbOption = DEFAULT_DB_URL,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be forgotten; delete nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete old stories with their articles, briefs and search index: a store that follows
    feeds for months keeps every article otherwise.

    Only stories that have left the active window go: those active within window_days (30)
    of the store's newest story stay, whatever --before says. An SQLite file keeps its size
    (later ingests reuse the space; `sqlite3 FILE 'VACUUM'` shrinks it). An article forgotten
    and ingested again is stored anew. With --json: {"stories": [ids], "articles", "before",
    "held_back", "dry_run"}.
    """
    with errors_to_messages():
        moment = _moment(before)
        with Engine(settings=_stored(db)) as eng:
            gone = eng.forget(moment, dry_run=dry_run)
            window = eng.settings.window_days
    if as_json:
        _print_json(
            {
                "stories": list(gone.stories),
                "articles": gone.articles,
                "before": gone.before.isoformat(),
                "held_back": gone.held_back,
                "dry_run": gone.dry_run,
            }
        )
        return
    verb = "would forget" if gone.dry_run else "forgot"
    stories = "story" if len(gone.stories) == 1 else "stories"
    out.print(
        f"{verb} {len(gone.stories)} {stories} ({gone.articles} articles) last active before "
        f"{gone.before:%Y-%m-%d %H:%M} UTC"
    )
    if gone.held_back:
        err.print(
            f"stories active in the store's last {window:g} days are kept: they are still in "
            "the active window"
        )


@app.command()
def extract(
    paths: PathsArg,
    as_json: JsonOption = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also show what was removed as boilerplate, and why.")
    ] = False,
    max_bytes: MaxBytes = Settings().max_bytes,
) -> None:
    """Turn documents into clean articles without storing them.

    With --json, one JSON object per line: path, title, text, outlet, published, url, removed.
    """
    with errors_to_messages():
        items = engine_module.extract(
            paths, settings=Settings(max_bytes=max_bytes), stdin=_stdin(paths)
        )
    rejected = [i for i in items if isinstance(i, Rejection)]
    for item in items:
        if isinstance(item, Rejection):
            continue
        if as_json:
            sys.stdout.write(json.dumps(extract_json(item), ensure_ascii=False) + "\n")
            continue
        _print_article(item, explain=explain)
    _report_rejections(rejected)
    raise typer.Exit(EXIT_REJECTED if rejected else EXIT_OK)


def _print_article(item: Article, *, explain: bool, story: str | None = None) -> None:
    """An article for reading: where it came from, title, metadata, clean text."""
    meta = article_json(item)
    out.rule(escape(item.origin))
    out.print(f"[bold]{escape(item.title)}[/bold]")
    details = [f"{k}: {v}" for k in ("outlet", "published", "url", "wire") if (v := meta[k])]
    if item.outlet_inferred or item.published_inferred:
        details.append("(inferred from the text or URL)")
    if story is not None:
        details.append(f"{item.id} in story {story}")
    out.print(escape(" · ".join(details)), style="dim")
    out.print(escape(item.text))
    if explain:
        out.print(f"\n[bold]removed[/bold] ({len(item.removed)}):")
        for r in item.removed:
            out.print(f"  [yellow]{escape(r.reason)}[/yellow]: {escape(r.text[:160])}")


@app.command("article")
def article_command(
    article_id: Annotated[
        str, typer.Argument(help="An article id, as a story's brief or --why lists it.")
    ],
    db: DbOption = DEFAULT_DB_URL,
    as_json: JsonOption = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also show what was removed as boilerplate, and why.")
    ] = False,
) -> None:
    """Print one stored article: its clean text, metadata and story."""
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        item = eng.article(article_id)
        story = eng.store.story_of(item.id)
    if as_json:
        _print_json(stored_article_json(item, story))
        return
    _print_article(item, explain=explain, story=story)


@app.command()
def brief(
    paths: PathsArg,
    words: Annotated[int, typer.Option(help="Summary length in words.", min=10)] = 120,
    as_json: JsonOption = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Verify every citation; exit 1 on a problem.")
    ] = False,
) -> None:
    """Brief exactly the given articles as one story (no clustering, no store)."""
    with errors_to_messages():
        items = engine_module.extract(paths, stdin=_stdin(paths))
        rejected = [i for i in items if isinstance(i, Rejection)]
        articles = [i for i in items if isinstance(i, Article)]
        _report_rejections(rejected)
        if not articles:
            err.print("[red]error:[/red] no article could be read from the given paths")
            raise typer.Exit(EXIT_REJECTED)
        result = engine_module.brief_of(articles, words=words)
    if as_json:
        _print_json(brief_json(result))
    elif markdown:
        sys.stdout.write(brief_markdown(result))
    else:
        print_brief(out, result)
    problems = check_faithfulness(result) if check else []
    for problem in problems:
        err.print(f"[red]citation problem:[/red] {escape(problem)}")
    raise typer.Exit(EXIT_REJECTED if (rejected or problems) else EXIT_OK)


@app.command()
def rejections(
    db: DbOption = DEFAULT_DB_URL,
    as_json: JsonOption = False,
    limit: LimitOption = None,
) -> None:
    """Inputs that were rejected, with the reason and how often, most recent first."""
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        rows = eng.rejections()
    total = len(rows)
    rows = rows[: _rows(limit, as_json)]
    if as_json:
        _print_json(
            [
                {
                    "origin": r["origin"],
                    "reason": r["reason"],
                    "count": r["count"],
                    "last_seen": r["last_seen"].isoformat(),
                }
                for r in rows
            ]
        )
        return
    if not rows:
        out.print("Nothing has been rejected.")
        return
    table = Table("input", "reason", "times")
    table.add_column("last seen", max_width=10)  # (the time under the date)
    table.columns[0].overflow = "fold"  # (a path cut short names no file)
    for r in rows:
        table.add_row(
            escape(r["origin"]),
            escape(r["reason"]),
            str(r["count"]),
            f"{r['last_seen']:%Y-%m-%d %H:%M}",
        )
    out.print(table)
    if total > len(rows):
        out.print(
            f"{len(rows)} of {total} rejected inputs, most recent first: --limit 0 lists all."
        )


@app.command()
def status(db: DbOption = DEFAULT_DB_URL, as_json: JsonOption = False) -> None:
    """What the store holds: articles, stories, feeds, rejected inputs, the last ingest."""
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        held = eng.store.summary()
    if as_json:
        _print_json(status_json(held))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    for label, value in (
        ("database", held["database"]),
        ("articles", f"{held['articles']:,}"),
        ("stories", f"{held['stories']:,}"),
        ("feeds followed", f"{held['sources']:,}"),
        ("rejected inputs", f"{held['rejected_inputs']:,} (`synoptic rejections`)"),
        ("last ingest", _when(held["last_ingest"])),
        ("newest published", _when(held["newest_published"])),
        ("schema version", str(held["schema_version"])),
        *([("access", "read only, for this user")] if held["read_only"] else []),
        *([("size", f"{held['bytes'] / 1e6:,.1f} MB")] if held["bytes"] is not None else []),
    ):
        table.add_row(label, escape(value))
    out.print(table)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


@app.command()
def serve(
    db: DbOption = DEFAULT_DB_URL,
    host: Annotated[
        str, typer.Option(help="Address to bind. Anything but loopback needs SYNOPTIC_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the web page and the JSON API (OpenAPI docs at /docs)."""
    try:
        import uvicorn

        from synoptic.web import create_app, server_token
    except ImportError:
        err.print(
            "[red]error:[/red] the web server needs the web extra: pip install 'synoptic[web]'"
        )
        raise typer.Exit(EXIT_USAGE) from None
    with errors_to_messages():
        token = server_token(host)
        _check_port(host, port)
        eng = Engine(settings=_settings(db))
    err.print(f"serving {escape(db)} on http://{host}:{port}/ (Ctrl-C stops)")
    try:
        uvicorn.run(create_app(eng, token=token), host=host, port=port, log_level="warning")
    finally:
        eng.close()


def _check_port(host: str, port: int) -> None:
    """Refuse, with a usage error, an address that cannot be listened on (in use, not this
    machine's), before anything starts."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (as the server does)
            probe.bind(address)
    except OSError as exc:
        raise SettingsError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
            "(or stop what listens there)"
        ) from None


@app.command()
def export(
    atom: Annotated[
        Path, typer.Option("--atom", help="Write an Atom feed of stories to this file.")
    ],
    db: DbOption = DEFAULT_DB_URL,
    base_url: Annotated[
        str, typer.Option(help="Where `synoptic serve` is reachable, for story links.")
    ] = "",
    search: SearchOption = None,
    outlet: OutletOption = None,
    since: SinceOption = None,
    by_reports: ByReportsOption = False,
    limit: Annotated[int, typer.Option(help="At most this many stories.", min=1)] = 100,
) -> None:
    """Write an Atom feed of stories (one entry per story, linking its source articles):
    the most recently updated, or those a search, an outlet or a time picks."""
    from synoptic.export import atom_feed

    with (
        errors_to_messages(),
        Engine(settings=_stored(db)) as eng,
        _bar(TextColumn("writing briefs")) as bar,
    ):
        task = bar.add_task("export", total=None)
        feed = atom_feed(
            eng,
            base_url=base_url.rstrip("/"),
            chosen=_chosen(search, outlet, since, limit, by_reports),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        _write(atom, feed)
    out.print(f"wrote {atom}")


sources_app = typer.Typer(
    help="Feeds to follow: add them (URLs or an OPML file), see their health, remove them.",
    no_args_is_help=True,
)
app.add_typer(sources_app, name="sources")


@sources_app.command("add")
def sources_add(
    items: Annotated[
        list[str], typer.Argument(help="Feed URLs (RSS, Atom, JSON Feed) or OPML files.")
    ],
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Add feeds to follow. `synoptic watch` polls them."""
    from synoptic.sources import read_opml

    added = known = 0
    skipped: list[str] = []
    with errors_to_messages(), Engine(settings=_settings(db)) as eng:
        for item in items:
            path = Path(item)
            if not item.startswith(("http://", "https://")) and path.exists():
                try:
                    feeds = read_opml(path)
                except InputRejected as exc:
                    raise SettingsError(str(exc)) from None
            elif item.startswith(("http://", "https://")):
                feeds = [(item, None)]
            else:
                raise SettingsError(f"{item!r} is neither an http(s) feed URL nor an OPML file")
            for url, title in feeds:
                if not url.lower().startswith(("http://", "https://")):
                    skipped.append(url)  # (an OPML outline: javascript:, ftp:, a bare name)
                elif eng.store.add_source(url, title):
                    added += 1
                else:
                    known += 1
    for url in skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(url)}: not an http(s) feed URL")
    out.print(
        f"added {added} source{'s' * (added != 1)}"
        + (f" ({known} already followed)" if known else "")
        + (f", skipped {len(skipped)}" if skipped else "")
    )
    if skipped:
        raise typer.Exit(EXIT_REJECTED)


@sources_app.command("remove")
def sources_remove(
    urls: Annotated[list[str], typer.Argument(help="Feed URLs, as `synoptic sources list` shows.")],
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Stop following feeds. The articles they brought stay; adding a feed again does not
    fetch the entries already handled."""
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        eng.store.remove_sources(urls)
    removed = len(set(urls))
    out.print(f"removed {removed} source{'s' * (removed != 1)}")


@sources_app.command("list")
def sources_list(db: DbOption = DEFAULT_DB_URL, as_json: JsonOption = False) -> None:
    """Followed feeds with their health: last success, last error, articles seen, next poll."""
    with errors_to_messages(), Engine(settings=_stored(db)) as eng:
        rows = eng.store.source_rows()

    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    if as_json:
        _print_json(
            [
                {
                    "url": r["url"],
                    "title": r["title"],
                    "last_success": iso(r["last_success"]),
                    "last_error": r["last_error"],
                    "last_error_at": iso(r["last_error_at"]),
                    "articles_seen": r["articles_seen"],
                    "next_poll": iso(r["next_poll"]),
                }
                for r in rows
            ]
        )
        return
    if not rows:
        out.print("No sources yet: `synoptic sources add URL|FILE.opml`.")
        return
    table = Table("source", "last success", "last error", "articles", "next poll")
    table.columns[0].overflow = "fold"  # (a URL cut short names no feed)
    for r in rows:
        error = (
            f"{r['last_error']} ({r['last_error_at']:%Y-%m-%d %H:%M})" if r["last_error"] else ""
        )
        table.add_row(
            escape(r["title"] or r["url"])
            + ("" if not r["title"] else f"\n[dim]{escape(r['url'])}[/dim]"),
            f"{r['last_success']:%Y-%m-%d %H:%M}" if r["last_success"] else "never",
            escape(error),
            str(r["articles_seen"]),
            f"{r['next_poll']:%Y-%m-%d %H:%M}" if r["next_poll"] else "now",
        )
    out.print(table)


@app.command()
def watch(
    db: DbOption = DEFAULT_DB_URL,
    every: Annotated[
        str, typer.Option(help="How often to poll each source (30s, 10m, 1h).")
    ] = "10m",
    once: Annotated[
        bool, typer.Option("--once", help="Poll every source once, then stop.")
    ] = False,
    delay: Annotated[str, typer.Option(help="Pause between two requests to one host.")] = "1s",
    timeout: Annotated[str, typer.Option(help="Timeout of one request.")] = "15s",
    retries: Annotated[
        int, typer.Option(help="Retries of a failed request, with backoff.", min=0)
    ] = 2,
    max_bytes: MaxBytes = Settings().max_bytes,
    allow_private: AllowPrivate = False,
    ignore_robots: Annotated[
        bool, typer.Option("--ignore-robots", help="Do not read robots.txt.")
    ] = False,
) -> None:
    """Poll the followed feeds and ingest new articles until stopped.

    Ctrl-C / SIGTERM stop cleanly after the article in hand. Exit code 1 when a source failed
    or an article was rejected in the last cycle."""
    import signal

    from synoptic.fetch import FetchOptions
    from synoptic.sources import Watcher, WatchReport, parse_duration

    last: list[WatchReport] = []
    with errors_to_messages(), Engine(settings=_settings(db, max_bytes, allow_private)) as eng:
        options = FetchOptions(
            timeout=parse_duration(timeout),
            max_bytes=max_bytes,
            allow_private=allow_private,
            retries=retries,
            respect_robots=not ignore_robots,
        )
        watcher = Watcher(
            eng, options=options, delay=parse_duration(delay), every=parse_duration(every)
        )
        if not eng.store.source_rows():
            err.print(
                "[yellow]no sources to watch[/yellow]: add some with `synoptic sources add URL|FILE.opml`"
            )

        def stop(signum: int, _frame: Any) -> None:
            err.print("stopping after the article in hand…")
            watcher.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

        def cycle(report: WatchReport) -> None:
            last[:] = [report]
            for url, reason in report.failed.items():
                err.print(f"[yellow]source failed[/yellow] {escape(url)}: {escape(reason)}")
            _report_rejections(report.rejected)
            out.print(report.summary_line())

        try:
            watcher.run(once=once, on_cycle=cycle)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    bad = bool(last and (last[0].failed or last[0].rejected))
    raise typer.Exit(EXIT_REJECTED if bad else EXIT_OK)


eval_app = typer.Typer(
    help="Measure synoptic on public datasets (paths are arguments).", no_args_is_help=True
)
clustering_app = typer.Typer(
    help="Stream a dataset through the real engine (fresh temporary store) and score its stories.",
    no_args_is_help=True,
)
eval_app.add_typer(clustering_app, name="clustering")
app.add_typer(eval_app, name="eval")

Eagerness = Annotated[
    float,
    typer.Option(
        "--merge-eagerness", min=0.0, max=1.0, help="0..1: how readily articles join a story."
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the shuffled streaming order.")]


def _print_scores(scores: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(scores)
        return
    table = Table("metric", "value")
    for key, value in scores.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)


def _run_eval(docs: list[Any], eagerness: float, seed: int, as_json: bool) -> None:
    from synoptic.evaluate import evaluate_clustering

    _scored(
        len(docs),
        as_json,
        lambda advance: evaluate_clustering(
            docs, merge_eagerness=eagerness, seed=seed, progress=advance
        ),
    )


def _scored(
    total: int, as_json: bool, evaluate: Callable[[Callable[[], None]], dict[str, Any]]
) -> None:
    """Run an evaluation of ``total`` items with a progress bar on stderr (none with --json
    or off a terminal), then print its scores."""
    with _bar(shown=not as_json) as bar:
        task = bar.add_task("eval", total=total)
        scores = evaluate(lambda: bar.advance(task))
    _print_scores(scores, as_json)


briefs_app = typer.Typer(
    help="ROUGE of briefs against human multi-source summaries.", no_args_is_help=True
)
eval_app.add_typer(briefs_app, name="briefs")


@briefs_app.command("multinews")
def eval_briefs_multinews(
    path: Annotated[
        Path, typer.Argument(help="A Multi-News CSV with 'documents' and 'summary' columns.")
    ],
    half: Annotated[str, typer.Option("--half", help="first, second or all rows.")] = "all",
    as_json: JsonOption = False,
) -> None:
    """For each row, a brief of exactly its documents; ROUGE-1/2/L F1 (stemmed, percent) of the
    summary truncated to the reference's length, with that length as the word budget."""
    from synoptic.evaluate import evaluate_briefs, load_multinews_clusters

    with errors_to_messages():
        if half not in ("first", "second", "all"):
            raise SettingsError(f"--half must be first, second or all, got {half!r}")
        if not path.is_file():
            raise SettingsError(f"no such file: {path}")
        clusters = load_multinews_clusters(path, half)  # type: ignore[arg-type]
    _scored(len(clusters), as_json, lambda advance: evaluate_briefs(clusters, progress=advance))


@eval_app.command("extraction")
def eval_extraction(
    path: Annotated[
        Path,
        typer.Argument(
            help="The ScrapingHub article-extraction benchmark's folder: ground-truth.json and "
            "html/<id>.html.gz."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Extract each page as `synoptic ingest` would and score its text against the gold
    article body: word 4-gram shingle precision, recall and F1 (the benchmark's own measure).
    Pages synoptic rejects count as empty (n_empty)."""
    from synoptic.evaluate import evaluate_extraction, load_extraction_pages

    with errors_to_messages():
        if not path.is_dir():
            raise SettingsError(f"no such folder: {path}")
        pages = load_extraction_pages(path)
    _scored(len(pages), as_json, lambda advance: evaluate_extraction(pages, progress=advance))


@eval_app.command("faithfulness")
def eval_faithfulness(
    paths: PathsArg,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="SYNOPTIC_DB",
            help="Check the stories of this store instead of PATHS' own (temporary) one.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest PATHS into a fresh temporary store (or use --db) and check every story's brief:
    each summary sentence verbatim at its cited span, each agreed claim on two or more
    independent reports. Exit 1 on any problem."""
    import tempfile

    from synoptic.brief import check_faithfulness

    with tempfile.TemporaryDirectory() as tmp, errors_to_messages():
        url = db or f"sqlite:///{tmp}/faithfulness.db"
        with Engine(settings=_settings(url)) as eng:
            if paths and db is None:
                eng.ingest(paths, stdin=_stdin(paths))
            results: list[dict[str, Any]] = []
            for story in eng.story_list():
                brief = eng.brief(story.id)
                problems = check_faithfulness(brief)
                results.append(
                    {
                        "story": story.id,
                        "summary_sentences": len(brief.summary),
                        "agreed_claims": sum(c.status == "agreed" for c in brief.claims),
                        "problems": problems,
                    }
                )
    sentences = sum(r["summary_sentences"] for r in results)
    bad = sum(len(r["problems"]) for r in results)
    summary: dict[str, Any] = {
        "stories": len(results),
        "summary_sentences": sentences,
        "cited_verbatim": round(100.0 * (sentences - bad) / sentences, 2) if sentences else 100.0,
        "problems": [p for r in results for p in r["problems"]],
        "per_story": results,
    }
    if as_json:
        _print_json(summary)
    else:
        out.print(
            f"{summary['stories']} stories, {sentences} summary sentences: "
            f"{summary['cited_verbatim']}% cited verbatim; {bad} problem{'s' * (bad != 1)}"
        )
        for problem in summary["problems"]:
            err.print(f"[red]problem:[/red] {escape(problem)}")
    raise typer.Exit(EXIT_REJECTED if bad else EXIT_OK)


@clustering_app.command("ecbplus")
def eval_ecbplus(
    path: Annotated[Path, typer.Argument(help="The ECB+ folder holding the topic folders.")],
    topics: Annotated[
        str | None, typer.Option("--topics", help="Comma-separated topic numbers (default: all).")
    ] = None,
    merge_eagerness: Eagerness = 0.8,
    seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """B-cubed P/R/F1, ARI and V-measure on ECB+ (gold story = topic + ecb/ecbplus)."""
    from synoptic.evaluate import load_ecbplus

    with errors_to_messages():
        try:
            chosen = {int(t) for t in topics.split(",")} if topics else None
        except ValueError:
            raise SettingsError(f"--topics takes comma-separated numbers, got {topics!r}") from None
        try:
            docs = load_ecbplus(path, chosen)
        except InputRejected as exc:
            raise SettingsError(str(exc)) from None
        _run_eval(docs, merge_eagerness, seed, as_json)


@clustering_app.command("multinews")
def eval_multinews(
    path: Annotated[Path, typer.Argument(help="A Multi-News CSV with a 'documents' column.")],
    half: Annotated[str, typer.Option("--half", help="first, second or all rows.")] = "all",
    merge_eagerness: Eagerness = 0.8,
    seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """The same metrics on Multi-News, all clusters pooled into one stream."""
    from synoptic.evaluate import load_multinews

    with errors_to_messages():
        if half not in ("first", "second", "all"):
            raise SettingsError(f"--half must be first, second or all, got {half!r}")
        if not path.is_file():
            raise SettingsError(f"no such file: {path}")
        _run_eval(load_multinews(path, half), merge_eagerness, seed, as_json)  # type: ignore[arg-type]


def _stdin(paths: list[str]) -> Any:
    return sys.stdin.buffer if "-" in paths else None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
