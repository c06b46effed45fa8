"""Every user-facing setting, validated in one place."""

from __future__ import annotations

from dataclasses import dataclass

from synoptic.errors import SettingsError

DEFAULT_DB_URL = "sqlite:///synoptic.db"
MB = 1024 * 1024
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")  # a db_url ending so may be a plain path


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Settings for an :class:`~synoptic.Engine`.

    ``db_url`` is an SQLAlchemy URL, or the path of an SQLite file (.db, .sqlite, .sqlite3).

    ``merge_eagerness`` (0..1) is the one knob for story clustering: higher joins more readily.
    ``duplicate_threshold`` (0..1) is the word-shingle Jaccard similarity above which two texts
    are near-duplicates; the wire-copy rule derives from it. ``max_bytes`` caps one document.
    ``window_days``: articles older than this (by publication date, else ingest time) leave
    memory, even while their story goes on; stories with no article newer than this leave too,
    and a later article cannot join them and opens a new story.
    ``spacy_model`` names the spaCy pipeline used for names when spaCy and it are installed
    (otherwise a rule-based fallback is used). ``sentence_model`` is a sentence-transformers model
    (a directory, or a name in the local Hugging Face cache) that briefs use, besides words, to
    align sentences into claims when sentence-transformers is installed; "" turns it off. ``allow_private`` lets URLs reach loopback and private addresses (off: only public hosts).
    ``workers``: processes that extract, fingerprint and featurise articles while the ingesting
    process dedups, clusters and writes (1: all in the ingesting process; the stories are the
    same either way).
    """

    db_url: str = DEFAULT_DB_URL
    max_bytes: int = 10 * MB
    merge_eagerness: float = 0.5
    duplicate_threshold: float = 0.8
    summary_words: int = 120
    allow_private: bool = False
    spacy_model: str = "en_core_web_sm"
    sentence_model: str = "all-MiniLM-L6-v2"
    window_days: float = 30.0
    workers: int = 1

    def __post_init__(self) -> None:
        url = self.db_url
        if isinstance(url, str) and url.endswith(SQLITE_SUFFIXES) and "://" not in url:
            object.__setattr__(self, "db_url", f"sqlite:///{url}")  # a plain SQLite file path
        if not isinstance(self.db_url, str) or "://" not in self.db_url:
            raise SettingsError(
                f"db_url {self.db_url!r} is neither a database URL nor an SQLite file "
                f"({', '.join(SQLITE_SUFFIXES)}); use e.g. sqlite:///synoptic.db, "
                "postgresql+psycopg://user@host/db or news.db"
            )
        if not isinstance(self.max_bytes, int) or self.max_bytes < 1024:
            raise SettingsError(f"max_bytes must be an integer >= 1024, got {self.max_bytes!r}")
        for name in ("merge_eagerness", "duplicate_threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise SettingsError(f"{name} must be a number between 0 and 1, got {value!r}")
        if not isinstance(self.window_days, int | float) or self.window_days <= 0:
            raise SettingsError(
                f"window_days must be a positive number of days, got {self.window_days!r}"
            )
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise SettingsError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not isinstance(self.summary_words, int) or self.summary_words < 10:
            raise SettingsError(
                f"summary_words must be an integer >= 10, got {self.summary_words!r}"
            )
