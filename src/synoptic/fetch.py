"""A careful HTTP client for feeds and article pages (httpx).

Only http and https. Every URL, and every redirect target, is resolved first and refused when
it points at a loopback, private, link-local (cloud metadata) or otherwise non-public address,
unless ``allow_private``. At most 5 redirects; a timeout on every request; bodies streamed and cut
at a size cap; content types checked; conditional GET (ETag / Last-Modified); robots.txt
respected; a User-Agent that names synoptic.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from urllib.parse import urljoin, urlsplit

import httpx

from synoptic.errors import InputRejected

try:
    VERSION = metadata.version("synoptic")
except metadata.PackageNotFoundError:  # running from a source tree
    VERSION = "0"
USER_AGENT = f"synoptic/{VERSION} (news-story engine; +https://pypi.org/project/synoptic/)"
ROBOTS_AGENT = "synoptic"
MAX_REDIRECTS = 5
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    timeout: float = 15.0
    max_bytes: int = 10 * 1024 * 1024
    allow_private: bool = False
    retries: int = 2
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    respect_robots: bool = True


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int
    content: bytes
    content_type: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def check_address(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts that resolve to non-public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InputRejected(
            url, f"only http and https URLs are fetched, not {parts.scheme or 'a bare path'!r}"
        )
    host = parts.hostname
    if not host:
        raise InputRejected(url, "the URL has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise InputRejected(url, f"cannot resolve {host}: {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InputRejected(
                url,
                f"{host} resolves to {address}, a loopback, private, link-local or reserved address; "
                "pass --allow-private to fetch from your own network",
            )


@dataclass
class Fetcher:
    """One client, shared by all requests of a poll; robots.txt answers cached per host."""

    options: FetchOptions = field(default_factory=FetchOptions)
    sleep: Callable[[float], None] = time.sleep
    _robots: dict[str, urllib.robotparser.RobotFileParser | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            follow_redirects=False,
            timeout=self.options.timeout,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )

    def close(self) -> None:
        self.client.close()

    def get(
        self,
        url: str,
        *,
        accept: tuple[str, ...],
        etag: str | None = None,
        last_modified: str | None = None,
        check_robots: bool = True,
    ) -> Fetched:
        """GET with retries and backoff on timeouts and 429/5xx. Raises InputRejected."""
        if check_robots and self.options.respect_robots and not self.allowed_by_robots(url):
            raise InputRejected(url, "robots.txt disallows fetching this URL for synoptic")
        delay = self.options.backoff
        for attempt in range(self.options.retries + 1):
            try:
                return self._get_once(url, accept=accept, etag=etag, last_modified=last_modified)
            except _Retryable as exc:
                if attempt == self.options.retries:
                    raise InputRejected(url, f"{exc.reason} (after {attempt + 1} tries)") from None
                self.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _get_once(
        self, url: str, *, accept: tuple[str, ...], etag: str | None, last_modified: str | None
    ) -> Fetched:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: list[str] = []
        current = url
        while True:
            check_address(current, allow_private=self.options.allow_private)
            try:
                with self.client.stream("GET", current, headers=headers) as response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("location", ""))
                        seen.append(current)
                        if target in seen:
                            raise InputRejected(
                                url, f"redirect loop ({' -> '.join([*seen, target])})"
                            )
                        if len(seen) > MAX_REDIRECTS:
                            raise InputRejected(url, f"more than {MAX_REDIRECTS} redirects")
                        current = target
                        continue
                    if response.status_code == 304:
                        return Fetched(current, 304, b"", "", etag, last_modified)
                    if response.status_code in RETRY_STATUSES:
                        raise _Retryable(f"the server answered HTTP {response.status_code}")
                    if response.status_code >= 400:
                        raise InputRejected(
                            url,
                            f"the server answered HTTP {response.status_code} {response.reason_phrase}",
                        )
                    content_type = (
                        response.headers.get("content-type", "").split(";")[0].strip().lower()
                    )
                    if content_type and not any(kind in content_type for kind in accept):
                        raise InputRejected(
                            url, f"content type {content_type!r} is not one of {', '.join(accept)}"
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self.options.max_bytes:
                        raise InputRejected(
                            url,
                            f"{int(declared)} bytes, over the {self.options.max_bytes}-byte cap",
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > self.options.max_bytes:
                            raise InputRejected(
                                url, f"over the {self.options.max_bytes}-byte cap; stopped reading"
                            )
                    return Fetched(
                        current,
                        response.status_code,
                        bytes(body),
                        content_type,
                        response.headers.get("etag"),
                        response.headers.get("last-modified"),
                    )
            except httpx.TimeoutException:
                raise _Retryable(f"timed out after {self.options.timeout:g} s") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"connection failed: {exc}") from None

    def allowed_by_robots(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            parser: urllib.robotparser.RobotFileParser | None = None
            try:
                fetched = self._get_once(
                    origin + "/robots.txt",
                    accept=("text/plain", "text/"),
                    etag=None,
                    last_modified=None,
                )
                parser = urllib.robotparser.RobotFileParser()
                parser.parse(fetched.content.decode("utf-8", "replace").splitlines())
            except (InputRejected, _Retryable):
                parser = None  # no readable robots.txt: nothing is disallowed
            self._robots[origin] = parser
        parser = self._robots[origin]
        return parser is None or parser.can_fetch(ROBOTS_AGENT, url)


class _Retryable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
