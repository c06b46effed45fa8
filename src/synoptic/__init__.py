"""synoptic: a news-story engine. Articles in; stories with cited briefs out."""

from synoptic.engine import Engine, brief_of, extract
from synoptic.errors import InputRejected, NotFound, SettingsError, StoreError, SynopticError
from synoptic.model import Article, Brief, Claim, IngestReport, Rejection, Story
from synoptic.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Article",
    "Brief",
    "Claim",
    "Engine",
    "IngestReport",
    "InputRejected",
    "NotFound",
    "Rejection",
    "Settings",
    "SettingsError",
    "StoreError",
    "Story",
    "SynopticError",
    "__version__",
    "brief_of",
    "extract",
]
