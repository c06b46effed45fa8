"""Typed exceptions. The CLI and HTTP edges map them to one-line messages that say how to fix things."""

from __future__ import annotations


class SynopticError(Exception):
    """Base class for every error synoptic raises on purpose."""


class SettingsError(SynopticError, ValueError):
    """A setting is out of range or of the wrong kind."""


class InputRejected(SynopticError):
    """One input cannot become an article. The batch goes on; the reason is recorded."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason


class NotFound(SynopticError, LookupError):
    """A story or article id that the store does not hold."""


class StoreError(SynopticError):
    """The store cannot be opened or is of a schema this version cannot read."""


class NotFittedError(SynopticError):
    """A learning stage was used before it learned anything."""
