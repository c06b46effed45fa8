"""The store: SQLAlchemy 2 Core over SQLite (WAL) by default, PostgreSQL by URL.

The schema carries a version in ``meta``; :data:`MIGRATIONS` upgrades older stores in order.
Every article is written in one transaction with its fingerprint and clustering features,
syndication link, membership and story, so a crash mid-ingest leaves either all of it or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    column,
    create_engine,
    event,
    false,
    func,
    inspect,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from synoptic.errors import NotFound, StoreError
from synoptic.model import (
    Article,
    Membership,
    Rejection,
    Removed,
    StorySelection,
    SyndicationGroup,
    split_paragraphs,
    storable,
    story_groups,
)

try:
    import fcntl
except ImportError:  # (Windows: no writer lock between SQLite processes)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
# PostgreSQL advisory lock key of the writer lock (advisory locks are per database)
WRITER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"synoptic writer").digest()[:8], "big", signed=True
)
SCHEMA_LOCK_KEY = WRITER_LOCK_KEY ^ 1  # (held while a store's tables are created or upgraded)

SCHEMA_VERSION = 11


def sqlite_file(url: str | URL) -> str | None:
    """The file of an SQLite database URL; None for an in-memory one or another database."""
    url = make_url(url)
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or "mode=memory" in str(url):
        return None
    return database


def damaged(where: str) -> str:
    """What to tell a user whose SQLite file is damaged."""
    return (
        f"the SQLite file {where} is damaged (database disk image is malformed: a disk or "
        "file-system fault, or a copy taken while it was being written). Restore it from a "
        "backup, or ingest the sources again into a new store (--db new.db); `sqlite3 FILE "
        ".recover` may save what is still readable"
    )


def read_only(where: str) -> str:
    """What to tell a user whose command would write to a store they may only read."""
    return (
        f"{where} is read-only for this user: this command writes to the store. Run it as a "
        "user who may write the store and its folder, or copy the store somewhere you may "
        "write and use the copy (reading it works as it is)"
    )


def store_failure(exc: SQLAlchemyError) -> str:
    """What to tell a user whose database failed in the middle of a command."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "malformed" in detail:
        return damaged("of this store")
    if "readonly database" in detail:
        return read_only("the store")
    return (
        f"the database failed: {detail}. Whatever had been stored stays, and nothing "
        "half-written: fix the cause (disk space, permissions, the database server) and run the "
        "same command again; it skips what is already there"
    )


metadata = MetaData()

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
articles = Table(
    "articles",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("seq", Integer, nullable=False, index=True),
    Column("source_id", Text),
    Column("origin", Text, nullable=False),
    Column("url", Text),
    Column("outlet", Text),
    Column("outlet_inferred", Boolean, nullable=False, default=False),
    Column("published", DateTime(timezone=True)),
    Column("published_inferred", Boolean, nullable=False, default=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("language", String(16)),
    Column("wire", Text),
    Column("removed", JSON, nullable=False),
    Column("extra", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False, index=True),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
)
fingerprints = Table(
    "fingerprints",
    metadata,
    Column("article_id", String(32), ForeignKey("articles.id"), primary_key=True),
    Column("doc_sig", LargeBinary, nullable=False),
    Column("para_sigs", LargeBinary, nullable=False),
    Column("para_words", JSON, nullable=False),
    Column("terms", JSON, nullable=False),
)
syndication = Table(
    "syndication",
    metadata,
    Column("article_id", String(32), ForeignKey("articles.id"), primary_key=True),
    Column("group_id", String(32), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("score", Float, nullable=False),
)
stories = Table(
    "stories",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False, index=True),
    Column("centroid", JSON, nullable=False),
    Column("size", Integer, nullable=False),
    # the day of its newest article (days since the epoch; the write's time when undated): a
    # restart loads only the stories active in the window, not the archive's
    Column("active_day", Float, index=True),
)
memberships = Table(
    "memberships",
    metadata,
    Column("article_id", String(32), ForeignKey("articles.id"), primary_key=True),
    Column("story_id", String(32), ForeignKey("stories.id"), nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("parts", JSON, nullable=False),
    Column("runner_up", String(32)),
)
rejections = Table(
    "rejections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    UniqueConstraint("origin", "reason", name="uq_rejection"),
)

story_aliases = Table(
    "story_aliases",
    metadata,
    Column("old_id", String(32), primary_key=True),
    Column("new_id", String(32), nullable=False),
)
separations = Table(  # stories a user split apart: never merged again automatically
    "separations",
    metadata,
    Column("story_a", String(32), primary_key=True),
    Column("story_b", String(32), primary_key=True),
)
corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

_fts = table("articles_fts", column("article_id"))  # (SQLite only; created below)
# PostgreSQL's full-text search: the query's document is the index's expression, word for word
# (the planner uses an expression index only for the same expression)
_PG_DOCUMENT = "to_tsvector('simple', title || ' ' || text)"
FULLTEXT_PG = (
    f"CREATE INDEX IF NOT EXISTS ix_articles_fulltext ON articles USING gin ({_PG_DOCUMENT})"
)

FTS_SQLITE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(article_id UNINDEXED, title, text)"
)


def _migrate_2(conn: Connection) -> None:
    """Version 2 adds full-text search: an FTS5 table on SQLite, filled from the articles."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(FTS_SQLITE)
        conn.exec_driver_sql(
            "INSERT INTO articles_fts (article_id, title, text) SELECT id, title, text FROM articles"
        )


sources = Table(
    "sources",
    metadata,
    Column("url", Text, primary_key=True),
    Column("title", Text),
    Column("added", DateTime(timezone=True), nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_success", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    Column("articles_seen", Integer, nullable=False, default=0),
    Column("next_poll", DateTime(timezone=True)),
)
feed_entries = Table(  # entries already handled, so a poll never fetches the same page twice
    "feed_entries",
    metadata,
    Column("url", Text, primary_key=True),
    Column("source_url", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("seen", DateTime(timezone=True), nullable=False),
)


seen_snapshots = Table(  # the engine's filter of stored article ids, saved when it closes
    "seen_snapshots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),  # every article with seq <= this is in ``bits``
    Column("bits", LargeBinary, nullable=False),
)
matrix_snapshots = Table(  # the split checks' member matrices, saved when an engine closes
    "matrix_snapshots",
    metadata,
    Column("story_id", String(32), primary_key=True),
    Column("seq", Integer, nullable=False),  # the newest article's seq when they were saved
    Column("data", LargeBinary, nullable=False),
)
briefs = Table(  # one row per brief version: which articles it covered and what it claimed
    "briefs",
    metadata,
    Column("story_id", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("article_ids", JSON, nullable=False),
    Column("claim_keys", JSON, nullable=False),
)


brief_shelf = Table(  # the latest brief written of each story at each length, to read back
    "brief_shelf",
    metadata,
    Column("story_id", String(32), primary_key=True),
    Column("words", Integer, primary_key=True),
    Column("key", String(64), nullable=False),  # what it was written from (BriefWriter)
    Column("written", DateTime(timezone=True), nullable=False),
    Column("body", JSON, nullable=False),
)


def _migrate_3(conn: Connection) -> None:
    """Version 3 adds the ``sources`` and ``feed_entries`` tables (created by create_all)."""


# version -> function that upgrades a store from version-1 to version.
def _migrate_4(conn: Connection) -> None:
    """Version 4 adds ``briefs`` (versioned briefs; created by create_all)."""


def _migrate_5(conn: Connection) -> None:
    """Version 5 drops ``term_df``: document frequencies are counted over the active window's
    articles when the engine loads, not kept for the whole archive."""
    conn.exec_driver_sql("DROP TABLE IF EXISTS term_df")


def _migrate_6(conn: Connection) -> None:
    """Version 6 recomputes every MinHash signature: shingles are hashed by
    :func:`synoptic.dedup.shingle_hashes` (vectorised) instead of SHA-1 each, so signatures made
    before would never match new ones. Reads the stored texts in slices (measured: 6,000
    articles in 3.9 s on the 2-core development machine)."""
    from synoptic.dedup import Fingerprinter  # dedup does not import the store: no cycle

    fingerprinter = Fingerprinter()
    ids = list(conn.execute(select(fingerprints.c.article_id)).scalars())
    for some in _chunks(ids):
        rows = conn.execute(
            select(articles.c.id, articles.c.content_hash, articles.c.text).where(
                articles.c.id.in_(some)
            )
        )
        for article_id, content_hash, body in rows.all():
            fp = fingerprinter.of_paragraphs(content_hash, split_paragraphs(body))
            doc_sig, para_sigs = fp.to_bytes()
            conn.execute(
                update(fingerprints)
                .where(fingerprints.c.article_id == article_id)
                .values(doc_sig=doc_sig, para_sigs=para_sigs, para_words=list(fp.paragraph_words))
            )


def state_values(centroid: dict[str, Any], stamp: datetime) -> dict[str, Any]:
    """The :data:`stories` columns that follow from a story's clusterer state, written at
    ``stamp`` (``active_day`` is the caller's: see :meth:`Store.add_many`)."""
    return {"updated": stamp, "centroid": centroid, "size": int(centroid.get("size", 0))}


def active_day(centroid: dict[str, Any], stamp: datetime) -> float:
    """A story's ``active_day`` as schema 7 first filled it: its state's newest publication
    day, or the day it was written when its articles are undated (since schema 9 the newest
    day of its articles, each's publication day or else its ingestion day)."""
    last = (centroid.get("days") or [None, None])[1]
    return float(last) if last is not None else stamp.timestamp() / 86400


def _newest_days(conn: Connection, story_ids: list[str] | None = None) -> dict[str, float]:
    """Stories' ``active_day`` from their members (these stories, or all): the newest of their
    articles' days (of publication, else of ingestion), streamed."""
    stmt = select(memberships.c.story_id, articles.c.published, articles.c.ingested_at).join(
        articles, articles.c.id == memberships.c.article_id
    )
    if story_ids is not None:
        stmt = stmt.where(memberships.c.story_id.in_(story_ids))
    newest: dict[str, float] = {}
    for story_id, published, ingested in conn.execute(stmt.execution_options(yield_per=5000)):
        day = (as_utc(published) or as_utc(ingested) or now()).timestamp() / 86400
        newest[story_id] = max(newest.get(story_id, day), day)
    return newest


def _migrate_7(conn: Connection) -> None:
    """Version 7 adds ``stories.active_day`` (indexed), filled from each story's state."""
    if "active_day" not in {c["name"] for c in inspect(conn).get_columns("stories")}:
        conn.exec_driver_sql("ALTER TABLE stories ADD COLUMN active_day FLOAT")
        next(i for i in stories.indexes if i.name == "ix_stories_active_day").create(conn)
    ids = list(conn.execute(select(stories.c.id)).scalars())
    for some in _chunks(ids):  # a slice of states in memory at a time, not the archive's
        rows = conn.execute(
            select(stories.c.id, stories.c.centroid, stories.c.updated).where(
                stories.c.id.in_(some)
            )
        ).all()
        for story_id, centroid, updated in rows:
            conn.execute(
                update(stories)
                .where(stories.c.id == story_id)
                .values(active_day=active_day(centroid, as_utc(updated) or now()))
            )


def _migrate_8(conn: Connection) -> None:
    """Version 8 adds ``seen_snapshots`` (created by create_all): a restart streams only the
    article ids stored since the snapshot, not the archive's."""


def _migrate_9(conn: Connection) -> None:
    """Version 9 adds ``matrix_snapshots`` (created by create_all): a restart continues the
    split checks with the member matrices the closing engine had, not rebuilt ones; and sets
    each story's ``active_day`` to the newest of its articles' days (of publication, else of
    ingestion), the rule the engine holds stories by (schema 7 took an undated story's last
    write instead, and a dated story's newest publication day even when an undated article
    had joined it since)."""
    updates = [{"story_id": k, "day": v} for k, v in _newest_days(conn).items()]
    for start in range(0, len(updates), 5000):
        conn.execute(
            update(stories)
            .where(stories.c.id == bindparam("story_id"))
            .values(active_day=bindparam("day")),
            updates[start : start + 5000],
        )


def _migrate_10(conn: Connection) -> None:
    """Version 10 adds ``brief_shelf`` (created by create_all): briefs kept across processes."""


def _migrate_11(conn: Connection) -> None:
    """Version 11 indexes PostgreSQL's full-text search (a search read every article's text)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(FULLTEXT_PG)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _migrate_2,
    3: _migrate_3,
    4: _migrate_4,
    5: _migrate_5,
    6: _migrate_6,
    7: _migrate_7,
    8: _migrate_8,
    9: _migrate_9,
    10: _migrate_10,
    11: _migrate_11,
}


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    """``ids`` in slices small enough for one ``IN (...)`` (databases bound a statement's
    parameters)."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes are stored in UTC; SQLite hands them back naive."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoredArticle:
    """What one ingest writes for a new article, in one transaction."""

    article: Article
    doc_sig: bytes
    para_sigs: bytes
    para_words: list[int]
    terms: dict[str, Any]
    group_id: str
    copy_kind: str
    copy_score: float
    membership: Membership
    new_story: bool
    centroid: dict[str, Any]  # the story's state after this article (its size included)
    ingested: datetime  # when the engine took it in (an undated article's day)
    day: float  # its day: of publication, else of ingestion


class Store:
    """All reads and writes of synoptic's state."""

    def __init__(self, url: str) -> None:
        file = sqlite_file(url) if url.startswith("sqlite") else None
        folder = os.path.dirname(os.path.abspath(file)) if file else ""
        self._read_only = bool(
            file
            and os.path.isfile(file)
            and not (os.access(file, os.W_OK) and os.access(folder, os.W_OK))
        )
        extra: dict[str, Any] = {}
        if file and self._read_only and not os.access(folder, os.W_OK):
            # Reading a WAL store makes its shared-memory file (-shm) beside it, which this
            # user cannot in this folder: while there is none (a writer at work would have
            # made it), the store is read as immutable. Decided for each connection and none
            # kept, since a writer may start meanwhile.
            quoted = urllib.parse.quote(os.path.abspath(file))

            def connect() -> sqlite3.Connection:
                flags = "mode=ro" if os.path.exists(f"{file}-shm") else "mode=ro&immutable=1"
                conn = sqlite3.connect(f"file:{quoted}?{flags}", uri=True, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=10000")
                return conn

            extra = {"creator": connect, "poolclass": NullPool}
        try:
            self.engine: Engine = create_engine(
                url,
                future=True,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
                **extra,
            )
        except (ArgumentError, ImportError, ModuleNotFoundError) as exc:
            hint = (
                " (install the postgres extra: pip install 'synoptic[postgres]')"
                if "postgres" in url
                else ""
            )
            raise StoreError(f"cannot open database {url!r}: {exc}{hint}") from exc
        if self.engine.dialect.name == "sqlite" and not self._read_only:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # the writer lock while this store holds it: the lock file's descriptor (SQLite) or
        # the connection whose session holds the advisory lock (PostgreSQL)
        self._held: int | Connection | None = None
        self._ensure_schema()
        self._checkpoints = _Checkpointer(file) if file and not self._read_only else None

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        try:
            if self._current():
                return  # (nothing to create or upgrade: opening writes nothing)
            with self.engine.connect() as conn, conn.begin():
                # One process at a time creates or upgrades a store (a server and a watcher
                # started together on a new store failed with "table meta already exists"):
                # SQLite takes its write lock first (its DDL is otherwise not transactional
                # under the driver), PostgreSQL a transaction's advisory lock.
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
                existing = set(inspect(conn).get_table_names())
                if "meta" not in existing:
                    self._refuse_foreign(conn.dialect.name, existing)
                    metadata.create_all(conn)
                    if conn.dialect.name == "sqlite":
                        conn.exec_driver_sql(FTS_SQLITE)
                    elif conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(FULLTEXT_PG)
                    conn.execute(
                        meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                    return
                found = conn.execute(
                    select(meta_table.c.value).where(meta_table.c.key == "schema_version")
                ).scalar()
                if found is None or not str(found).isdigit():
                    raise StoreError(
                        f"{self._where()} has a table named meta but no synoptic schema version: "
                        "it is not a synoptic store; choose another --db"
                    )
                version = int(found)
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the database has schema version {version}, newer than this synoptic "
                        f"understands ({SCHEMA_VERSION}); upgrade synoptic"
                    )
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[target](conn)
                metadata.create_all(conn)
                conn.execute(
                    update(meta_table)
                    .where(meta_table.c.key == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )
        except DatabaseError as exc:  # (OperationalError among them)
            detail = str(exc.orig).strip()
            if "file is not a database" in detail:
                raise StoreError(
                    f"{self._where()} is not an SQLite database (another kind of file, or an "
                    "encrypted one): check --db"
                ) from exc
            if "malformed" in detail:
                raise StoreError(damaged(self._where())) from exc
            file = sqlite_file(self.engine.url)
            if "unable to open database file" in detail and file is not None:
                folder = os.path.dirname(os.path.abspath(file))
                why = (
                    f"there is no folder {folder} (create it: mkdir -p {folder})"
                    if not os.path.isdir(folder)
                    else f"this user may not create files in {folder}"
                )
                raise StoreError(
                    f"cannot open or create the SQLite store {file}: {why}; or choose another --db"
                ) from exc
            if "readonly" in detail or "read-only" in detail:
                raise StoreError(
                    f"{self._where()} cannot be written by this user, and opening it needs to "
                    "write: it is new, or was made by an older synoptic and must be upgraded "
                    "once. Open it once as a user who may write it, or copy it somewhere you "
                    "may write and use the copy"
                ) from exc
            raise StoreError(f"cannot open the database: {exc.orig}") from exc

    def _current(self) -> bool:
        """Whether the store exists, whole, with this synoptic's schema: read without a lock
        or a write, so that a store a user may read but not write (another user's, a read-only
        copy or mount, a PostgreSQL role with SELECT only) opens for the commands that read."""
        with self.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            found = None
            if "meta" in present:
                found = conn.execute(
                    select(meta_table.c.value).where(meta_table.c.key == "schema_version")
                ).scalar()
            conn.rollback()
        return found == str(SCHEMA_VERSION) and set(metadata.tables) <= present

    def _where(self) -> str:
        """The database, as a message names it: the SQLite file, or the URL without password."""
        return sqlite_file(self.engine.url) or self.engine.url.render_as_string(hide_password=True)

    def _refuse_foreign(self, dialect: str, existing: set[str]) -> None:
        """Refuse to add synoptic's tables to another application's database: an SQLite file
        that holds any table (synoptic keeps a file of its own), or a PostgreSQL database with
        tables of synoptic's names (sharing a server's database is otherwise normal)."""
        clash = existing if dialect == "sqlite" else existing & {*metadata.tables, _fts.name}
        if clash:
            named = ", ".join(sorted(clash)[:5]) + (", …" if len(clash) > 5 else "")
            raise StoreError(
                f"{self._where()} is not a synoptic store: it holds another application's "
                f"tables ({named}); choose another --db (synoptic creates a store of its own)"
            )

    @contextmanager
    def writing(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the store's writer lock: one process at a time ingests or corrects stories, so
        that each sees the other's writes (an engine reloads what another process wrote:
        ``write_stamp``). Another process's hold makes this wait (saying so in the log), or
        with ``wait=False`` yields False at once; a long ingest lets waiting writers go first
        between its batches (:meth:`let_waiting_writers_in`). SQLite: an exclusive ``flock``
        on ``FILE.lock`` beside the database (and a shared one on ``FILE.lock.wait`` while
        waiting for it); PostgreSQL: a session advisory lock. All are released when the
        holder ends, however it ends."""
        url = self.engine.url
        if not self.writable():
            raise StoreError(read_only(self._where()))
        if url.get_backend_name() == "postgresql":
            with self.engine.connect() as conn:
                try_lock = text("SELECT pg_try_advisory_lock(:k)")
                got = bool(conn.execute(try_lock, {"k": WRITER_LOCK_KEY}).scalar())
                if not got and wait:
                    log.warning(
                        "another synoptic process is writing to %s; waiting for it to finish",
                        url.render_as_string(hide_password=True),
                    )
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": WRITER_LOCK_KEY})
                    got = True
                conn.commit()  # (the lock is the session's, not the transaction's)
                try:
                    self._held = conn if got else None
                    yield got
                finally:
                    self._held = None
                    if got:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WRITER_LOCK_KEY})
                        conn.commit()
            return
        path = self._lock_path()
        if path is None:
            yield True  # (nothing else can open this store)
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # (the lock file another user made)
            raise StoreError(read_only(f"{url.database} ({exc.strerror}: {path})")) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                log.warning(
                    "another synoptic process%s is writing to %s; waiting for it to finish",
                    f" (pid {holder})" if holder.isdigit() else "",
                    url.database,
                )
                self._queue_for(fd, path)
            else:
                self._say_holder(fd)
            self._held = fd
            yield True
        finally:
            self._held = None
            os.close(fd)  # (releases the lock)

    def writable(self) -> bool:
        """Whether this user may write the store: an SQLite file and folder with write
        permission; on PostgreSQL, a role that may insert articles (one may be granted SELECT
        only)."""
        if self.engine.dialect.name != "postgresql":
            return not self._read_only
        with self.engine.connect() as conn:
            may = conn.execute(select(func.has_table_privilege("articles", "INSERT"))).scalar()
            conn.rollback()
        return bool(may)

    def _lock_path(self) -> str | None:
        """The SQLite writer lock's file; None where there is no lock to take."""
        database = sqlite_file(self.engine.url)
        return f"{database}.lock" if fcntl is not None and database is not None else None

    @staticmethod
    def _queue_for(fd: int, path: str) -> None:
        """Wait for the SQLite writer lock, holding a shared lock on its ``.wait`` file
        meanwhile: the sign by which the holder knows that someone waits."""
        waiting = os.open(f"{path}.wait", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(waiting, fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            os.close(waiting)  # (releases the shared lock)
        Store._say_holder(fd)

    @staticmethod
    def _say_holder(fd: int) -> None:
        """This process's pid in the lock file, for a waiter's message."""
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)

    def let_waiting_writers_in(self) -> bool:
        """Called by the writer lock's holder between two of its writes: when other
        processes wait for the lock (a feed watcher, a correction, the web server's ingest),
        let them write first and take the lock back after them. True when it did (what this
        process holds in memory may then be out of date)."""
        if self._held is None:
            return False
        if isinstance(self._held, Connection):
            conn = self._held
            hi, lo = (WRITER_LOCK_KEY >> 32) & 0xFFFFFFFF, WRITER_LOCK_KEY & 0xFFFFFFFF
            waiting = conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                    "AND NOT granted AND objsubid = 1 AND classid::bigint = :hi "
                    "AND objid::bigint = :lo AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()))"
                ),
                {"hi": hi, "lo": lo},
            ).scalar()
            if waiting:
                # the server grants a released lock to the sessions already waiting for it,
                # in turn, before this session's new request
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WRITER_LOCK_KEY})
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": WRITER_LOCK_KEY})
            conn.commit()
            return bool(waiting)
        fd, path = self._held, self._lock_path()
        assert path is not None
        waiting = os.open(f"{path}.wait", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # someone holds it shared: waits for the writer lock
                fcntl.flock(fd, fcntl.LOCK_UN)
                fcntl.flock(waiting, fcntl.LOCK_EX)  # until each waiter has taken the lock
                fcntl.flock(waiting, fcntl.LOCK_UN)
            else:
                fcntl.flock(waiting, fcntl.LOCK_UN)
                return False
        finally:
            os.close(waiting)
        self._queue_for(fd, path)
        return True

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _keep(self, write: Callable[[Connection], object]) -> None:
        """Run ``write`` in a transaction: what reading a story keeps for later (its brief),
        skipped in a store that this user may only read (:meth:`writable`)."""
        if self.writable():
            with self.transaction() as conn:
                write(conn)

    # -- writes -------------------------------------------------------------------------------

    def _upsert(
        self,
        conn: Connection,
        table: Table,
        values: list[dict[str, Any]],
        keys: list[str],
        set_: dict[str, Any],
    ) -> None:
        if not values:
            return
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)  # type: ignore[assignment]
        resolved = {k: (v(stmt.excluded) if callable(v) else v) for k, v in set_.items()}
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=resolved), values)

    def add_many(self, items: list[StoredArticle]) -> None:
        """Write new articles and everything derived from them in one transaction: all of the
        batch lands, or none of it."""
        if not items:
            return
        stamp = now()
        with self.transaction() as conn:
            seq = (conn.execute(select(func.max(articles.c.seq))).scalar() or 0) + 1
            conn.execute(
                articles.insert(),
                [
                    {"seq": seq + i, "ingested_at": it.ingested, **article_row(it.article)}
                    for i, it in enumerate(items)
                ],
            )
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(
                    "INSERT INTO articles_fts (article_id, title, text) VALUES (?, ?, ?)",
                    [(it.article.id, it.article.title, it.article.text) for it in items],
                )
            conn.execute(
                fingerprints.insert(),
                [
                    {
                        "article_id": it.article.id,
                        "doc_sig": it.doc_sig,
                        "para_sigs": it.para_sigs,
                        "para_words": it.para_words,
                        "terms": it.terms,
                    }
                    for it in items
                ],
            )
            conn.execute(
                syndication.insert(),
                [
                    {
                        "article_id": it.article.id,
                        "group_id": it.group_id,
                        "kind": it.copy_kind,
                        "score": it.copy_score,
                    }
                    for it in items
                ],
            )
            # each story once, in its state after the batch's last article; its active day
            # the newest of its articles' days (the engine's rule: stored and held agree)
            final: dict[str, StoredArticle] = {}
            newest: dict[str, float] = {}
            created: set[str] = set()
            for it in items:
                sid = it.membership.story_id
                final[sid] = it
                newest[sid] = max(newest.get(sid, it.day), it.day)
                if it.new_story:
                    created.add(sid)
            if created:
                conn.execute(
                    stories.insert(),
                    [
                        {
                            "id": sid,
                            "created": stamp,
                            "active_day": newest[sid],
                            **state_values(final[sid].centroid, stamp),
                        }
                        for sid in sorted(created)
                    ],
                )
            grown = [
                {"story_id": sid, "day": newest[sid], **state_values(it.centroid, stamp)}
                for sid, it in final.items()
                if sid not in created
            ]
            if grown:  # one statement for all (executemany)
                later: Any = bindparam("day")
                conn.execute(
                    update(stories)
                    .where(stories.c.id == bindparam("story_id"))
                    .values(
                        active_day=case(
                            (stories.c.active_day >= later, stories.c.active_day), else_=later
                        )
                    ),
                    grown,
                )
            conn.execute(
                memberships.insert(),
                [
                    {
                        "article_id": it.article.id,
                        "story_id": it.membership.story_id,
                        "score": it.membership.score,
                        "parts": it.membership.parts,
                        "runner_up": it.membership.runner_up,
                    }
                    for it in items
                ],
            )
        if self._checkpoints is not None:
            self._checkpoints.request()

    def reject(self, rejection: Rejection) -> None:
        stamp = now()
        with self.transaction() as conn:
            self._upsert(
                conn,
                rejections,
                [
                    {
                        "origin": rejection.origin,
                        "reason": rejection.reason,
                        "first_seen": stamp,
                        "last_seen": stamp,
                        "count": 1,
                    }
                ],
                ["origin", "reason"],
                {"last_seen": stamp, "count": lambda excluded: rejections.c.count + 1},
            )

    # -- reads --------------------------------------------------------------------------------

    def article(self, article_id: str) -> Article:
        if "\x00" in article_id:  # (no id has one, and PostgreSQL refuses to look it up)
            raise NotFound(f"no article {article_id!r}; `synoptic stories` lists what is stored")
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(articles).where(articles.c.id == article_id)).mappings().first()
            )
        if row is None:
            raise NotFound(f"no article {article_id!r}; `synoptic stories` lists what is stored")
        return row_article(row)

    def has_article(self, article_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(articles.c.id).where(articles.c.id == article_id))
            return found.first() is not None

    def story_of(self, article_id: str) -> str:
        """The story an article is in."""
        with self.engine.connect() as conn:
            story = conn.execute(
                select(memberships.c.story_id).where(memberships.c.article_id == article_id)
            ).scalar()
        if story is None:
            raise NotFound(f"no article {article_id!r}; `synoptic stories` lists what is stored")
        return str(story)

    def count_articles(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(articles)).scalar_one())

    def summary(self) -> dict[str, Any]:
        """What the store holds, in one read: counts, the newest article's ingest and
        publication times, the schema version, an SQLite file's size, and whether this user
        may only read it."""
        counted = {
            "articles": select(func.count()).select_from(articles),
            "stories": select(func.count()).select_from(stories),
            "sources": select(func.count()).select_from(sources),
            "rejections": select(func.coalesce(func.sum(rejections.c.count), 0)),
            "ingested": select(func.max(articles.c.ingested_at)),
            "published": select(func.max(articles.c.published)),
            "schema": select(meta_table.c.value).where(meta_table.c.key == "schema_version"),
        }
        with self.engine.connect() as conn:
            one_row = select(*(q.scalar_subquery().label(k) for k, q in counted.items()))
            row = conn.execute(one_row).mappings().one()
        path = sqlite_file(self.engine.url)
        files = (path, f"{path}-wal") if path else ()
        size = sum(os.path.getsize(f) for f in files if os.path.exists(f))
        return {
            "database": self._where(),
            "schema_version": int(row["schema"]),
            "articles": int(row["articles"]),
            "stories": int(row["stories"]),
            "sources": int(row["sources"]),
            "rejected_inputs": int(row["rejections"]),
            "last_ingest": as_utc(row["ingested"]),
            "newest_published": as_utc(row["published"]),
            "bytes": size if path else None,
            "read_only": not self.writable(),
        }

    def story_listing(
        self, chosen: StorySelection
    ) -> tuple[int, list[tuple[dict[str, Any], list[Article], list[SyndicationGroup]]]]:
        """The ``chosen`` stories with their articles' metadata but not their texts
        (``Article.text`` is empty), and their syndication groups: what a list of stories
        shows, read in two queries of one transaction however many stories there are (three
        for a page that may leave some out: their count). Only the page's stories' articles
        are read, but by reports every matching story's, to count them (:meth:`_matching`
        answers the full-text queries). Returns how many stories match, and the page."""
        search, outlet, since = chosen.search, chosen.outlet, chosen.since
        offset, limit, by_reports = chosen.offset, chosen.limit, chosen.by_reports
        heads = select(stories.c.id, stories.c.created, stories.c.updated)
        for query in search:
            heads = heads.where(
                stories.c.id.in_(
                    select(memberships.c.story_id).where(
                        memberships.c.article_id.in_(self._matching(query))
                    )
                )
            )
        if outlet is not None:
            heads = heads.where(
                stories.c.id.in_(
                    select(memberships.c.story_id)
                    .join(articles, articles.c.id == memberships.c.article_id)
                    .where(func.lower(articles.c.outlet) == outlet.lower())
                )
            )
        if since is not None:
            heads = heads.where(stories.c.updated >= since)
        listed = [c for c in articles.c if c.name not in ("text", "removed", "extra", "authors")]
        with self.engine.connect() as conn:
            page = heads.order_by(stories.c.updated.desc(), stories.c.id)
            if not by_reports:  # (by reports, every matching story is read and counted)
                page = page.offset(offset).limit(limit)
            head_rows = [dict(h) for h in conn.execute(page).mappings()]
            total = len(head_rows)
            paged = (offset or limit is not None) and not by_reports
            if paged and (offset or total == limit):  # (a page: count them all)
                total = conn.execute(
                    select(func.count()).select_from(heads.subquery())
                ).scalar_one()
            members: dict[str, list[Article]] = {}
            grouped: dict[str, dict[str, list[Article]]] = {}
            shown = select(memberships.c.story_id, syndication.c.group_id, *listed)
            if len(head_rows) <= 10_000 and (search or outlet or since or paged):
                # (a longer list of ids could pass SQLite's 32,766 parameters: then read every
                # story's articles and keep the page's, as for the whole list)
                shown = shown.where(memberships.c.story_id.in_([h["id"] for h in head_rows]))
            rows = conn.execute(
                shown.join(articles, articles.c.id == memberships.c.article_id)
                .join(syndication, syndication.c.article_id == memberships.c.article_id)
                .order_by(articles.c.seq)
            ).mappings()
            for r in rows:
                article = row_article({**r, "text": "", "authors": (), "removed": (), "extra": {}})
                members.setdefault(r["story_id"], []).append(article)
                grouped.setdefault(r["story_id"], {}).setdefault(r["group_id"], []).append(article)
        listing = [
            (
                h | {"created": as_utc(h["created"]), "updated": as_utc(h["updated"])},
                members.get(h["id"], []),
                story_groups(grouped.get(h["id"], {})),
            )
            for h in head_rows
        ]
        if by_reports:  # (a stable sort: the most recently updated first among equals)
            listing.sort(key=lambda story: -len(story[2]))
            listing = listing[offset : None if limit is None else offset + limit]
        return int(total), listing

    def story_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(stories.c.id, stories.c.created, stories.c.updated, stories.c.size).order_by(
                    stories.c.updated.desc(), stories.c.id
                )
            ).mappings()
            return [
                dict(r) | {"created": as_utc(r["created"]), "updated": as_utc(r["updated"])}
                for r in rows
            ]

    def resolve(self, story_id: str) -> str:
        """A story id after merges: old ids stay resolvable."""
        if "\x00" in story_id:  # (no id has one, and PostgreSQL refuses to look it up)
            raise NotFound(f"no story {story_id!r}; `synoptic stories` lists the stories")
        with self.engine.connect() as conn:
            for _ in range(100):
                new = conn.execute(
                    select(story_aliases.c.new_id).where(story_aliases.c.old_id == story_id)
                ).scalar()
                if new is None:
                    return story_id
                story_id = new
        return story_id

    def story_id_taken(self, story_id: str) -> bool:
        """Whether a story has this id, or had it before a merge (it is an alias)."""
        with self.engine.connect() as conn:
            return any(
                conn.execute(select(table.c[column]).where(table.c[column] == story_id)).first()
                for table, column in ((stories, "id"), (story_aliases, "old_id"))
            )

    def story_row(self, story_id: str) -> dict[str, Any]:
        story_id = self.resolve(story_id)
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(stories.c.id, stories.c.created, stories.c.updated).where(
                        stories.c.id == story_id
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no story {story_id!r}; `synoptic stories` lists the stories")
        return dict(row) | {"created": as_utc(row["created"]), "updated": as_utc(row["updated"])}

    def story_articles(
        self, story_id: str
    ) -> tuple[list[Article], list[SyndicationGroup], list[Membership]]:
        story_id = self.resolve(story_id)
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(
                        articles,
                        syndication.c.group_id,
                        memberships.c.score,
                        memberships.c.parts,
                        memberships.c.runner_up,
                    )
                    .join(memberships, memberships.c.article_id == articles.c.id)
                    .join(syndication, syndication.c.article_id == articles.c.id)
                    .where(memberships.c.story_id == story_id)
                    .order_by(articles.c.seq)
                )
                .mappings()
                .all()
            )
        arts = [row_article(r) for r in rows]
        grouped: dict[str, list[Article]] = {}
        for row, art in zip(rows, arts, strict=True):
            grouped.setdefault(row["group_id"], []).append(art)
        groups = story_groups(grouped)
        mships = [
            Membership(r["id"], story_id, r["score"], dict(r["parts"]), r["runner_up"])
            for r in rows
        ]
        return arts, groups, mships

    def member_features(self, conn: Connection, story_id: str) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(fingerprints.c.terms)
            .join(memberships, memberships.c.article_id == fingerprints.c.article_id)
            .join(articles, articles.c.id == fingerprints.c.article_id)
            .where(memberships.c.story_id == story_id)
            .order_by(articles.c.seq)
        )
        return [r.terms for r in rows]

    def member_ids(self, story_id: str) -> list[str]:
        """A story's article ids, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(memberships.c.article_id)
                .join(articles, articles.c.id == memberships.c.article_id)
                .where(memberships.c.story_id == story_id)
                .order_by(articles.c.seq)
            )
            return [str(r) for r in rows.scalars()]

    def move_articles(
        self,
        article_ids: list[str],
        target: str,
        *,
        states: Callable[[Connection, list[str]], dict[str, dict[str, Any]]],
        alias_from: str | None = None,
        separate_from: str | None = None,
        correction: dict[str, Any] | None = None,
        parts: dict[str, Any] | None = None,
    ) -> None:
        """Move articles to ``target`` (created when new) in one transaction; ``states``
        recomputes the clusterer state of every story touched from its members. ``parts`` is
        what ``story --why`` shows for the moved articles (default: moved by a user)."""
        stamp = now()
        with self.transaction() as conn:
            sources: set[str] = set()
            for some in _chunks(article_ids):
                sources.update(
                    conn.execute(
                        select(memberships.c.story_id).where(memberships.c.article_id.in_(some))
                    ).scalars()
                )
            if conn.execute(select(stories.c.id).where(stories.c.id == target)).first() is None:
                conn.execute(
                    stories.insert().values(
                        id=target, created=stamp, active_day=0.0, **state_values({}, stamp)
                    )
                )
            for some in _chunks(article_ids):
                conn.execute(
                    update(memberships)
                    .where(memberships.c.article_id.in_(some))
                    .values(
                        story_id=target,
                        score=1.0,
                        parts=parts or {"moved_by_user": 1.0},
                        runner_up=None,
                    )
                )
            touched = sorted(sources | {target})
            newest = _newest_days(conn, touched)  # (a move is rare; a story a few thousand)
            for story_id, state in states(conn, touched).items():
                if state["size"] == 0:
                    conn.execute(stories.delete().where(stories.c.id == story_id))
                    conn.execute(brief_shelf.delete().where(brief_shelf.c.story_id == story_id))
                else:
                    conn.execute(
                        update(stories)
                        .where(stories.c.id == story_id)
                        .values(active_day=newest[story_id], **state_values(state, stamp))
                    )
            if alias_from:
                conn.execute(story_aliases.insert().values(old_id=alias_from, new_id=target))
                conn.execute(
                    update(story_aliases)
                    .where(story_aliases.c.new_id == alias_from)
                    .values(new_id=target)
                )
            if separate_from:
                a, b = sorted((target, separate_from))
                conn.execute(separations.insert().values(story_a=a, story_b=b))
            if correction:
                conn.execute(
                    corrections.insert().values(
                        kind=correction["kind"], payload=correction, created=stamp
                    )
                )

    def _matching(self, query: str) -> Any:
        """The ids of the articles that match a full-text query, as a subquery (SQLite FTS5:
        every word, in any order; PostgreSQL's full-text search likewise). No words: none."""
        # (a NUL ended SQLite's FTS5 query string early, and PostgreSQL refuses it)
        terms = [t for t in storable(query).replace('"', " ").split() if t]
        if not terms:
            return select(articles.c.id).where(false())
        if self.engine.dialect.name == "sqlite":
            match = " ".join(f'"{t}"' for t in terms)
            return select(_fts.c.article_id).where(
                text("articles_fts MATCH :match").bindparams(match=match)
            )
        document: Any = literal_column(_PG_DOCUMENT)  # (articles' columns: the inner FROM)
        return select(articles.c.id).where(
            document.op("@@")(func.plainto_tsquery("simple", " ".join(terms)))
        )

    def outlets(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    articles.c.outlet,
                    func.count().label("articles"),
                    func.max(articles.c.ingested_at).label("last"),
                )
                .group_by(articles.c.outlet)
                .order_by(func.count().desc())
            ).mappings()
            return [
                {
                    "outlet": r["outlet"],
                    "articles": r["articles"],
                    "last_article": as_utc(r["last"]),
                }
                for r in rows
            ]

    # -- sources ------------------------------------------------------------------------------

    def add_source(self, url: str, title: str | None = None) -> bool:
        """Add a feed; False when it is already known."""
        with self.transaction() as conn:
            if conn.execute(select(sources.c.url).where(sources.c.url == url)).first() is not None:
                return False
            conn.execute(
                sources.insert().values(url=url, title=title, added=now(), articles_seen=0)
            )
            return True

    def remove_sources(self, urls: list[str]) -> None:
        """Stop following these feeds (all of them, or none when one is not followed). Their
        articles stay, and so does the record of the entries already handled: following a
        feed again does not fetch them again."""
        with self.transaction() as conn:
            known = set(
                conn.execute(select(sources.c.url).where(sources.c.url.in_(urls))).scalars()
            )
            unknown = [u for u in dict.fromkeys(urls) if u not in known]
            if unknown:
                raise NotFound(
                    f"not a followed feed: {', '.join(unknown)}; `synoptic sources list` shows "
                    "them (the URL as it was added)"
                )
            conn.execute(sources.delete().where(sources.c.url.in_(urls)))

    def source_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.added, sources.c.url)).mappings()
            out = []
            for r in rows:
                row = dict(r)
                for key in ("added", "last_success", "last_error_at", "next_poll"):
                    row[key] = as_utc(row[key])
                out.append(row)
            return out

    def update_source(self, url: str, **values: Any) -> None:
        with self.transaction() as conn:
            if "articles_new" in values:
                values["articles_seen"] = sources.c.articles_seen + values.pop("articles_new")
            conn.execute(update(sources).where(sources.c.url == url).values(**values))

    def entry_seen(self, url: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(feed_entries.c.url).where(feed_entries.c.url == url)).first()
                is not None
            )

    def mark_entry(self, url: str, source_url: str, outcome: str) -> None:
        with self.transaction() as conn:
            self._upsert(
                conn,
                feed_entries,
                [{"url": url, "source_url": source_url, "outcome": outcome, "seen": now()}],
                ["url"],
                {"outcome": outcome, "seen": now()},
            )

    def stored_brief(self, story_id: str, words: int, key: str) -> dict[str, Any] | None:
        """The kept brief of a story at this length, if it was written from ``key``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(brief_shelf.c.body).where(
                    brief_shelf.c.story_id == story_id,
                    brief_shelf.c.words == words,
                    brief_shelf.c.key == key,
                )
            ).first()
        return dict(row.body) if row is not None else None

    def store_brief(self, story_id: str, words: int, key: str, body: dict[str, Any]) -> None:
        """Keep a story's brief at this length (replacing the one kept before); not in a
        store this user may only read."""
        row = {"story_id": story_id, "words": words, "key": key, "written": now(), "body": body}
        update = {"key": key, "written": row["written"], "body": body}
        self._keep(
            lambda conn: self._upsert(conn, brief_shelf, [row], ["story_id", "words"], update)
        )

    def brief_versions(self, story_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(briefs).where(briefs.c.story_id == story_id).order_by(briefs.c.version)
            ).mappings()
            return [dict(r) for r in rows]

    def add_brief_version(
        self, story_id: str, version: int, article_ids: list[str], claim_keys: list[str]
    ) -> None:
        """Record a brief's version (its articles and claims); not in a store this user may
        only read (the brief is then numbered as if it were)."""

        def write(conn: Connection) -> None:
            exists = conn.execute(
                select(briefs.c.version).where(
                    briefs.c.story_id == story_id, briefs.c.version == version
                )
            ).first()
            if exists is None:
                conn.execute(
                    briefs.insert().values(
                        story_id=story_id,
                        version=version,
                        created=now(),
                        article_ids=article_ids,
                        claim_keys=claim_keys,
                    )
                )

        self._keep(write)

    def features_of(self, article_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The clustering features stored for these articles."""
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for some in _chunks(article_ids):
                rows = conn.execute(
                    select(fingerprints.c.article_id, fingerprints.c.terms).where(
                        fingerprints.c.article_id.in_(some)
                    )
                )
                out.update({r.article_id: r.terms for r in rows})
        return out

    def corrected_stories(self) -> set[str]:
        """Stories a user merged or split: automatic splits leave them as the user made them."""
        with self.engine.connect() as conn:
            payloads = conn.execute(select(corrections.c.payload)).scalars()
            return {
                story
                for payload in payloads
                if not payload.get("automatic")
                for story in (payload.get("into"), payload.get("from"))
                if story
            }

    def separated(self) -> set[frozenset[str]]:
        with self.engine.connect() as conn:
            return {frozenset((r.story_a, r.story_b)) for r in conn.execute(select(separations))}

    def rejection_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(rejections).order_by(rejections.c.last_seen.desc(), rejections.c.id)
            ).mappings()
            return [dict(r) | {"last_seen": as_utc(r["last_seen"])} for r in rows]

    # -- learned state ------------------------------------------------------------------------

    def forget_stories(self, before_day: float, *, dry_run: bool = False) -> tuple[list[str], int]:
        """Delete the stories last active before day ``before_day`` with everything kept of
        them: their articles (text, search index, fingerprints, syndication, memberships),
        briefs, aliases to them and splits from them; rejections, followed feeds' handled
        entries and the corrections log stay. One transaction; logged as a correction (so
        that another process's engine reloads). With ``dry_run`` nothing is deleted. The
        forgotten stories' ids, and how many articles they held."""
        with self.transaction() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(stories.c.id)
                    .where(stories.c.active_day < before_day)
                    .order_by(stories.c.id)
                )
            ]
            article_ids = [
                r[0]
                for chunk in _chunks(ids)
                for r in conn.execute(
                    select(memberships.c.article_id).where(memberships.c.story_id.in_(chunk))
                )
            ]
            if dry_run or not ids:
                return ids, len(article_ids)
            for chunk in _chunks(article_ids):
                if conn.dialect.name == "sqlite":
                    conn.execute(_fts.delete().where(_fts.c.article_id.in_(chunk)))
                for owned in (fingerprints, syndication, memberships):
                    conn.execute(owned.delete().where(owned.c.article_id.in_(chunk)))
                conn.execute(articles.delete().where(articles.c.id.in_(chunk)))
            for chunk in _chunks(ids):
                for owned in (briefs, brief_shelf, matrix_snapshots):
                    conn.execute(owned.delete().where(owned.c.story_id.in_(chunk)))
                conn.execute(story_aliases.delete().where(story_aliases.c.new_id.in_(chunk)))
                conn.execute(
                    separations.delete().where(
                        separations.c.story_a.in_(chunk) | separations.c.story_b.in_(chunk)
                    )
                )
                conn.execute(stories.delete().where(stories.c.id.in_(chunk)))
            conn.execute(
                corrections.insert().values(
                    kind="forget",
                    payload={"before_day": before_day, "stories": len(ids)},
                    created=now(),
                )
            )
        return ids, len(article_ids)

    def latest_day(self) -> float | None:
        """The newest story's ``active_day`` (None for an empty store)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(stories.c.active_day))).scalar()
            return None if value is None else float(value)

    def story_states(
        self, since: float, until: float | None = None, *, ids: list[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any], float]]:
        """(id, clusterer state, active day) of the stories last active on or after day
        ``since`` (and before ``until``; and among ``ids``), streamed (an index on the day: the
        archive's idle stories are not read)."""
        stmt = select(stories.c.id, stories.c.centroid, stories.c.active_day).where(
            stories.c.active_day >= since
        )
        if until is not None:
            stmt = stmt.where(stories.c.active_day < until)
        if ids is not None:
            stmt = stmt.where(stories.c.id.in_(ids))
        with self.engine.connect() as conn:
            for r in conn.execute(stmt.execution_options(yield_per=1000)):
                yield r.id, r.centroid, float(r.active_day)

    def active_days(self, story_ids: list[str]) -> dict[str, float]:
        """The ``active_day`` of these stories (those that exist)."""
        stmt = select(stories.c.id, stories.c.active_day).where(stories.c.id.in_(story_ids))
        with self.engine.connect() as conn:
            return {r.id: float(r.active_day) for r in conn.execute(stmt)}

    def dated_after(self, after_seq: int) -> list[tuple[int, str, float]]:
        """(seq, id, publication day) of the articles stored after ``after_seq`` that have a
        publication date, in the order they were stored."""
        stmt = (
            select(articles.c.seq, articles.c.id, articles.c.published)
            .where(articles.c.seq > after_seq, articles.c.published.is_not(None))
            .order_by(articles.c.seq)
        )
        with self.engine.connect() as conn:
            return [
                (int(r.seq), r.id, published.timestamp() / 86400)
                for r in conn.execute(stmt)
                if (published := as_utc(r.published)) is not None
            ]

    def meta_value(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar()

    def set_meta_value(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            if (
                conn.execute(
                    update(meta_table).where(meta_table.c.key == key).values(value=value)
                ).rowcount
                == 0
            ):
                conn.execute(meta_table.insert().values(key=key, value=value))

    def article_ids(self, after_seq: int = 0) -> Iterator[str]:
        """The ids of the articles stored after ``after_seq`` (all by default), streamed."""
        stmt = select(articles.c.id).where(articles.c.seq > after_seq)
        with self.engine.connect() as conn:
            yield from conn.execute(stmt.execution_options(yield_per=5000)).scalars()

    def latest_article_ids(self, n: int) -> list[str]:
        """The ids of the ``n`` articles stored last, newest first."""
        stmt = select(articles.c.id).order_by(articles.c.seq.desc()).limit(n)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def max_seq(self) -> int:
        """The newest article's sequence number (0 for an empty store)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(articles.c.seq))).scalar() or 0)

    def write_stamp(self) -> tuple[int, int]:
        """(newest article's seq, newest correction's id): it changes with every write that
        an engine's learned state depends on, so an engine can tell that another process
        wrote since it last looked."""
        stmt = select(
            select(func.max(articles.c.seq)).scalar_subquery(),
            select(func.max(corrections.c.id)).scalar_subquery(),
        )
        with self.engine.connect() as conn:
            seq, correction = conn.execute(stmt).one()
        return int(seq or 0), int(correction or 0)

    def seen_snapshot(self) -> tuple[int, bytes] | None:
        """The saved filter of article ids: (the seq it covers up to, its bytes), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(seen_snapshots.c.seq, seen_snapshots.c.bits)).first()
            return None if row is None else (int(row.seq), bytes(row.bits))

    def save_seen_snapshot(self, seq: int, bits: bytes) -> None:
        try:
            with self.transaction() as conn:
                conn.execute(seen_snapshots.delete())
                conn.execute(seen_snapshots.insert().values(id=1, seq=seq, bits=bits))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save the filter of article ids: {exc}") from exc

    def matrix_snapshot(self, seq: int) -> dict[str, bytes]:
        """The member matrices saved by the last engine to close, by story, if no article
        was stored since (``seq``: the newest article's now); else none."""
        stmt = select(matrix_snapshots.c.story_id, matrix_snapshots.c.data).where(
            matrix_snapshots.c.seq == seq
        )
        with self.engine.connect() as conn:
            return {r.story_id: bytes(r.data) for r in conn.execute(stmt)}

    def save_matrix_snapshot(self, seq: int, matrices: dict[str, bytes]) -> None:
        try:
            with self.transaction() as conn:
                conn.execute(matrix_snapshots.delete())
                if matrices:
                    conn.execute(
                        matrix_snapshots.insert(),
                        [{"story_id": k, "seq": seq, "data": v} for k, v in matrices.items()],
                    )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot save the split checks' matrices: {exc}") from exc

    def fingerprint_rows(
        self,
        story_ids: list[str],
        *,
        articles_only: bool = False,
        before_seq: int | None = None,
    ) -> Iterator[Any]:
        """The fingerprints of these stories' articles (each story's oldest first), with what
        the syndication index and the clusterer need to hold them, streamed
        (``articles_only``: the ids are article ids, and those articles' rows are read;
        ``before_seq``: only the articles stored before that one)."""
        key = fingerprints.c.article_id if articles_only else memberships.c.story_id
        with self.engine.connect() as conn:
            for some in _chunks(story_ids):
                stmt = (
                    select(
                        fingerprints.c.article_id,
                        fingerprints.c.doc_sig,
                        fingerprints.c.para_sigs,
                        fingerprints.c.para_words,
                        articles.c.content_hash,
                        syndication.c.group_id,
                        memberships.c.story_id,
                        articles.c.published,
                        articles.c.ingested_at,
                        articles.c.seq,
                    )
                    .join(articles, articles.c.id == fingerprints.c.article_id)
                    .join(syndication, syndication.c.article_id == fingerprints.c.article_id)
                    .join(memberships, memberships.c.article_id == fingerprints.c.article_id)
                    .where(key.in_(some))
                    .order_by(articles.c.seq)
                )
                if before_seq is not None:
                    stmt = stmt.where(articles.c.seq < before_seq)
                yield from conn.execute(stmt.execution_options(yield_per=1000))


def _json_dumps(value: Any) -> str:
    """JSON columns through orjson: story states and features are most of what a batch writes
    (the standard library's encoder took ~a third of the write time)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# Pages of write-ahead log after which a committing connection copies the log into the
# database itself (SQLite's default is 1,000: a batch of new articles is about that much, so
# every batch paid a checkpoint and its fsync: ~25 ms of its commit). Past an ingest's batches
# a checkpoint thread does that work (:class:`_Checkpointer`); this bound is for the others.
AUTOCHECKPOINT_PAGES = 10_000


class _Checkpointer:
    """Copies an SQLite store's write-ahead log into the database on its own thread and
    connection after each batch of new articles, so the ingesting thread does not wait for it
    (the copy and its fsync run outside the GIL). A passive checkpoint: it never blocks a
    reader or writer, and a store is consistent whenever it stops (a kill included)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._wanted = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="synoptic-checkpoint", daemon=True
            )
            self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.file, check_same_thread=False)
        except sqlite3.Error as exc:  # (commits checkpoint by themselves past the bound)
            log.debug("no checkpoint thread for %s: %s", self.file, exc)
            return
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # (the next commit's own checkpoint does it)
                    log.debug("background checkpoint of %s failed: %s", self.file, exc)
        finally:
            conn.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # the timeout first: turning a new file to WAL needs it alone, and a process opening the
    # same new store at that moment got "database is locked" at once
    cursor.execute("PRAGMA busy_timeout=10000")
    for attempt in range(100):  # (the switch may still be refused while another makes it)
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def article_row(a: Article) -> dict[str, Any]:
    return {
        "id": a.id,
        "source_id": a.source_id,
        "origin": a.origin,
        "url": a.url,
        "outlet": a.outlet,
        "outlet_inferred": a.outlet_inferred,
        "published": a.published.astimezone(UTC) if a.published else None,
        "published_inferred": a.published_inferred,
        "title": a.title,
        "text": a.text,
        "authors": list(a.authors),
        "language": a.language,
        "wire": a.wire,
        "removed": [{"text": r.text, "reason": r.reason} for r in a.removed],
        "extra": json.loads(json.dumps(a.extra, default=str)),
        "content_hash": a.content_hash,
    }


def row_article(row: Any) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        origin=row["origin"],
        source_id=row["source_id"],
        url=row["url"],
        outlet=row["outlet"],
        outlet_inferred=bool(row["outlet_inferred"]),
        published=as_utc(row["published"]),
        published_inferred=bool(row["published_inferred"]),
        authors=tuple(row["authors"]),
        language=row["language"],
        wire=row["wire"],
        removed=tuple(Removed(r["text"], r["reason"]) for r in row["removed"]),
        extra=dict(row["extra"]),
    )
