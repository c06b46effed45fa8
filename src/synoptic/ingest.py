"""Sources -> Documents: files, folders (recursive) and standard input.

Every input either becomes a :class:`Document` or a :class:`Rejection` with a reason a user can
act on; one bad input never stops the others.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from synoptic.errors import InputRejected
from synoptic.extract import ExtractOptions
from synoptic.feeds import Entry, entry_text, is_json_feed, json_feed_entries, parse_feed
from synoptic.fetch import Fetched
from synoptic.model import Document, Rejection
from synoptic.store import sqlite_file
from synoptic.text import words

if TYPE_CHECKING:
    from synoptic.settings import Settings

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".html": "html", ".htm": "html"}
JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
FEED_SUFFIXES = {".rss", ".atom", ".rdf", ".xml"}  # a saved feed (a JSON Feed is read as .json)


def file_kind(path: Path) -> str:
    """How a file is read: "warc", "jsonl" (a document per line), "json", "feed", "text" or
    "html" (one document), or "unsupported". What :meth:`Reader.read_file` reads and what
    :meth:`Reader.expected` counts ahead both follow it."""
    suffix = path.suffix.lower()
    if path.name.lower().endswith((".warc", ".warc.gz")):
        return "warc"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in FEED_SUFFIXES:
        return "feed"
    return TEXT_SUFFIXES.get(suffix, "unsupported")


# A saved feed's entries are read offline, from their own text; the watch mode fetches pages.
_NO_PAGE = "a saved feed's entry pages are not fetched (`synoptic sources add FEED_URL` and `synoptic watch` fetch them)"
SIDECAR = ".meta.json"
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)

Item = Document | Rejection
log = logging.getLogger(__name__)
_TAG = re.compile(r"<[^>]*>")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


_CONTROL = bytes(b for b in range(32) if b < 9 or b > 13)  # control bytes text never has


def _looks_binary(data: bytes) -> bool:
    """Single-byte text (UTF-8, or a charset an HTML page declares) has no NUL bytes and few
    other control bytes."""
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    control = len(sample) - len(sample.translate(None, _CONTROL))
    return bool(sample) and control / len(sample) > 0.05


def decode_text(data: bytes, origin: str, *, html: bool = False) -> str | Rejection:
    """Bytes -> str: UTF-8 (with or without BOM), UTF-16 with BOM, or an HTML page's declared
    charset. Anything else is rejected rather than guessed."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            return Rejection(origin, f"invalid UTF-16 text ({exc.reason} at byte {exc.start})")
        # (its bytes are half NULs: the binary check applies to the decoded text)
        if _looks_binary(text[:8192].encode("utf-8", "replace")):
            return Rejection(origin, "binary data after a UTF-16 byte order mark, not text")
        return text
    if _looks_binary(data):
        return Rejection(origin, "binary data, not text (is this an image, PDF or archive?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if html:
            declared = _CHARSET.search(data[:4096])
            if declared:
                try:
                    return data.decode(declared.group(1).decode("ascii"))
                except (LookupError, UnicodeDecodeError):
                    pass
        return Rejection(
            origin,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8 FILE`",
        )


def json_document(obj: Any, origin: str) -> Item:
    """One JSON object -> Document. Unknown fields ride along in ``meta``."""
    if not isinstance(obj, dict):
        return Rejection(origin, f"expected a JSON object, got {type(obj).__name__}")
    html, text = obj.get("html"), obj.get("text")
    if isinstance(html, str) and html.strip():
        return Document(origin, "html", html, dict(obj))
    if isinstance(text, str) and text.strip():
        return Document(origin, "text", text, dict(obj))
    for name, value in (("html", html), ("text", text)):
        if value is not None and not isinstance(value, str):
            return Rejection(origin, f"field {name!r} must be a string, got {type(value).__name__}")
    return Rejection(origin, "object has no 'text' or 'html' field with content")


def _json_problem(exc: json.JSONDecodeError) -> str:
    """The parser's message without its own dangling "at" ("Invalid control character at")."""
    return exc.msg.removesuffix(" at")


class Reader:
    """Walks paths and yields Documents and Rejections. ``max_bytes`` caps one document."""

    def __init__(
        self, *, max_bytes: int, allow_private: bool = False, store_file: str | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        # the SQLite store's own files, which a folder's walk skips (`synoptic ingest .` where
        # synoptic.db lies rejected the database, its journal and its lock at every run)
        self.skipped: set[Path] = set()
        if store_file is not None:
            base = Path(store_file).resolve()
            self.skipped = {
                base.with_name(base.name + end)
                for end in ("", "-wal", "-shm", "-journal", ".lock", ".lock.wait")
            }

    @classmethod
    def for_settings(cls, settings: Settings) -> Reader:
        """The reader an engine of these settings ingests with."""
        return cls(
            max_bytes=settings.max_bytes,
            allow_private=settings.allow_private,
            store_file=sqlite_file(settings.db_url),
        )

    def read(
        self, sources: Iterable[str | Path], *, stdin: IO[bytes] | None = None
    ) -> Iterator[Item]:
        for source in sources:
            if str(source) == "-":
                if stdin is None:
                    yield Rejection("<stdin>", "standard input is not available")
                else:
                    yield from self.read_stream(stdin, "<stdin>")
                continue
            if str(source).startswith(("http://", "https://")):
                yield self._url(str(source))
                continue
            path = Path(source)
            if path.is_dir():
                yield from self._read_dir(path)
            elif path.exists():
                yield from self.read_file(path)
            else:
                yield Rejection(str(path), "no such file or folder")

    def expected(self, sources: Iterable[str | Path]) -> int | None:
        """How many items :meth:`read` will yield (for a progress bar's total), when that is
        cheap to know: text and HTML files one each, JSONL files their lines (read once more);
        None when anything is a URL, standard input, a JSON file, a feed or a WARC archive."""
        total = 0
        for source in sources:
            path = Path(source)
            if str(source) == "-" or str(source).startswith(("http://", "https://")):
                return None
            # (an empty folder, like a missing path, is one rejection)
            for file in (self._files_of(path) or [path]) if path.is_dir() else [path]:
                kind = file_kind(file)
                if kind == "jsonl":
                    try:
                        with file.open("rb") as handle:
                            total += sum(1 for line in handle if line.strip())
                    except OSError:
                        total += 1  # (read() rejects it: one item)
                elif kind in ("json", "feed", "warc"):
                    return None
                else:
                    total += 1  # a document, or one rejection
        return total

    def _files_of(self, folder: Path) -> list[Path]:
        """The files a folder's ingest reads, in order (hidden ones, sidecars and the store's
        own files skipped)."""
        return sorted(
            p
            for p in folder.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
            and not p.name.endswith(SIDECAR)
            and not (self.skipped and p.resolve() in self.skipped)
        )

    def _read_dir(self, folder: Path) -> Iterator[Item]:
        files = self._files_of(folder)
        if not files:
            yield Rejection(
                str(folder),
                "the folder holds no files to read (hidden files and *.meta.json sidecars are "
                "skipped); is it the right folder?",
            )
        for path in files:
            yield from self.read_file(path)

    def read_file(self, path: Path) -> Iterator[Item]:
        origin = str(path)
        suffix = path.suffix.lower()
        kind = file_kind(path)
        if kind == "warc":
            yield from self._warc(path)
            return
        if kind == "unsupported":
            supported = ", ".join(
                sorted({*TEXT_SUFFIXES, *JSON_SUFFIXES, *FEED_SUFFIXES, ".warc", ".warc.gz"})
            )
            yield Rejection(
                origin, f"unsupported file type '{suffix or path.name}' (supported: {supported})"
            )
            return
        try:
            if kind == "jsonl":
                with path.open("rb") as handle:
                    yield from self._jsonl_lines(handle, origin)
                return
            size = path.stat().st_size
            if size > self.max_bytes:
                yield Rejection(
                    origin,
                    f"file is {_mb(size)}, over the {_mb(self.max_bytes)} limit for one document "
                    "(raise --max-bytes, or split a JSON dump into JSONL lines)",
                )
                return
            data = path.read_bytes()
        except OSError as exc:
            yield Rejection(origin, f"cannot read: {exc.strerror or exc}")
            return
        if not data.strip():
            yield Rejection(origin, "empty file")
            return
        if kind == "json":
            yield from self._json_file(data, origin)
            return
        if kind == "feed":
            yield from self._feed(data, origin)
            return
        decoded = decode_text(data, origin, html=kind == "html")
        if isinstance(decoded, Rejection):
            yield decoded
            return
        meta = self._sidecar(path)
        if isinstance(meta, Rejection):
            yield meta
            return
        yield Document(origin, "html" if kind == "html" else "text", decoded, meta)

    def _url(self, url: str) -> Item:
        """An article page fetched over HTTP (safely: see synoptic.fetch)."""
        from synoptic.errors import InputRejected
        from synoptic.fetch import Fetcher, FetchOptions

        fetcher = Fetcher(FetchOptions(max_bytes=self.max_bytes, allow_private=self.allow_private))
        try:
            fetched = fetcher.get(url, accept=("text/html", "application/xhtml+xml"))
        except InputRejected as exc:
            return Rejection(url, exc.reason)
        finally:
            fetcher.close()
        decoded = decode_text(fetched.content, url, html=True)
        return (
            decoded
            if isinstance(decoded, Rejection)
            else Document(url, "html", decoded, {"url": fetched.url})
        )

    def _warc(self, path: Path) -> Iterator[Item]:
        """Every HTML response record of a WARC file becomes a document (warcio)."""
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        origin = str(path)
        found = 0
        records = None
        try:
            with path.open("rb") as handle:
                records = ArchiveIterator(handle)
                # warcio writes its own warning about such records to stderr, one per record,
                # in the middle of a progress bar: counted and said once below instead
                records.INC_RECORD = ""
                for number, record in enumerate(records, start=1):
                    if record.rec_type != "response" or record.http_headers is None:
                        continue
                    uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                    where = f"{origin}#{number}"
                    ctype = (record.http_headers.get_header("Content-Type") or "").lower()
                    status = record.http_headers.get_statuscode() or ""
                    if "html" not in ctype:
                        continue
                    found += 1
                    if not status.startswith("2"):
                        yield Rejection(where, f"{uri}: HTTP {status} response, not an article")
                        continue
                    data = record.content_stream().read(self.max_bytes + 1)
                    if len(data) > self.max_bytes:
                        yield Rejection(
                            where, f"{uri}: record over the {_mb(self.max_bytes)} limit"
                        )
                        continue
                    decoded = decode_text(data, where, html=True)
                    if isinstance(decoded, Rejection):
                        yield decoded
                        continue
                    yield Document(where, "html", decoded, {"url": uri} if uri else {})
        except (ArchiveLoadFailed, OSError, ValueError) as exc:
            yield Rejection(origin, f"not a readable WARC file: {exc}")
            return
        except (
            Exception
        ) as exc:  # warcio on a damaged file: AttributeError, EOFError, zlib.error...
            yield Rejection(
                origin,
                f"damaged WARC file after {found} HTML records (the records before were read): "
                f"{type(exc).__name__}: {exc}",
            )
            return
        finally:
            if records is not None and records.err_count:
                log.warning(
                    "%s: %d record(s) not followed by a blank line, so their Content-Length "
                    "is likely wrong: their text may be cut short or run into the next record",
                    origin,
                    records.err_count,
                )
        if not found:
            yield Rejection(origin, "the WARC file holds no HTML response records")

    def read_stream(self, stream: IO[bytes], origin: str) -> Iterator[Item]:
        """Standard input: JSONL when it starts with ``{``, a JSON list with ``[``, else one text."""
        head = stream.read(1)
        while head and head.isspace():
            head = stream.read(1)
        if head == b"{":
            yield from self._jsonl_lines(_Prefixed(head, stream), origin)
            return
        data = head + stream.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            yield Rejection(
                origin, f"input is over the {_mb(self.max_bytes)} limit; send JSONL instead"
            )
            return
        if not data.strip():
            yield Rejection(origin, "empty input")
        elif head == b"[":
            yield from self._json_file(data, origin)
        else:
            decoded = decode_text(data, origin)
            yield (
                decoded if isinstance(decoded, Rejection) else Document(origin, "text", decoded, {})
            )

    def _jsonl_lines(self, handle: Any, origin: str) -> Iterator[Item]:
        for number, (raw, size) in enumerate(_capped_lines(handle, self.max_bytes), start=1):
            where = f"{origin}:{number}"
            if raw is None:
                yield Rejection(where, f"line is {_mb(size)}, over the {_mb(self.max_bytes)} limit")
                continue
            if not raw.strip():
                continue
            decoded = decode_text(raw, where)
            if isinstance(decoded, Rejection):
                yield decoded
                continue
            try:
                obj = json.loads(decoded)
            except json.JSONDecodeError as exc:
                yield Rejection(where, f"invalid JSON: {_json_problem(exc)} at column {exc.colno}")
                continue
            yield json_document(obj, where)

    def _json_file(self, data: bytes, origin: str) -> Iterator[Item]:
        decoded = decode_text(data, origin)
        if isinstance(decoded, Rejection):
            yield decoded
            return
        try:
            obj = json.loads(decoded)
        except json.JSONDecodeError as exc:
            yield Rejection(
                origin,
                f"invalid JSON: {_json_problem(exc)} at line {exc.lineno} column {exc.colno}",
            )
            return
        if is_json_feed(obj):
            yield from self._entries(origin, json_feed_entries(obj), None)
        elif isinstance(obj, list):
            for index, item in enumerate(obj):
                yield json_document(item, f"{origin}#{index}")
        else:
            yield json_document(obj, origin)

    def _feed(self, data: bytes, origin: str) -> Iterator[Item]:
        """A saved RSS, Atom or JSON Feed document: each entry's own text or HTML. A feed
        whose XML is broken is rejected with the parser's complaint even when some entries
        could be recovered (those still land)."""
        try:
            entries, warning = parse_feed(Fetched(origin, 200, data, "application/xml"))
        except InputRejected as exc:
            yield Rejection(origin, exc.reason)
            return
        yield from self._entries(origin, entries, warning)

    def _entries(self, origin: str, entries: list[Entry], warning: str | None) -> Iterator[Item]:
        if warning is not None:
            yield Rejection(origin, warning)
        elif not entries:
            yield Rejection(origin, "the feed has no entries")
        for entry in entries:
            item = entry_text(entry, origin, _NO_PAGE)
            own = words(_TAG.sub(" ", entry.content or ""))
            if isinstance(item, Document) and len(own) < ExtractOptions().min_words:
                item = Rejection(
                    item.origin, f"the feed entry has {len(own)} words of its own; {_NO_PAGE}"
                )
            yield item

    def _sidecar(self, path: Path) -> dict[str, Any] | Rejection:
        for candidate in (path.with_suffix(SIDECAR), path.with_name(path.name + SIDECAR)):
            if candidate.is_file():
                try:
                    meta = json.loads(candidate.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    return Rejection(
                        str(path), f"metadata file {candidate.name} is unreadable: {exc}"
                    )
                if not isinstance(meta, dict):
                    return Rejection(
                        str(path), f"metadata file {candidate.name} must hold a JSON object"
                    )
                return meta
        return {}


def _capped_lines(handle: Any, cap: int) -> Iterator[tuple[bytes | None, int]]:
    """(line, its size) for each line of a byte stream; a line over ``cap`` bytes is skipped
    as it is read, a megabyte at a time, and comes as (None, its size): a line of gigabytes
    (a dump with no line breaks) is never held in memory whole."""
    while line := handle.readline(cap + 1):
        if len(line) <= cap:
            yield line, len(line)
            continue
        size = len(line)
        while not line.endswith(b"\n") and (line := handle.readline(1 << 20)):
            size += len(line)
        yield None, size


class _Prefixed:
    """A byte stream with bytes already read put back in front, read by lines."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self.prefix = prefix
        self.stream = stream

    def readline(self, size: int = -1) -> bytes:
        head, self.prefix = self.prefix, b""
        if head.endswith(b"\n"):
            return head
        return head + self.stream.readline(size - len(head) if size >= 0 else -1)
