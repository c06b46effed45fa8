"""Sentence embeddings for aligning claims, used only when sentence-transformers and a model are
installed (``pip install 'synoptic[embeddings]'`` plus a model); without them briefs align
sentences by words, names and figures alone.

The model is never downloaded: ``sentence_model`` is a directory holding a sentence-transformers
model, or the name of one already in the local Hugging Face cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class SentenceEncoder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text."""
        ...


class TransformerEncoder:
    def __init__(self, name: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
        from sentence_transformers import SentenceTransformer

        self.name = name
        local = Path(name).expanduser()
        self._model = (
            SentenceTransformer(str(local), device="cpu")
            if local.is_dir()
            else SentenceTransformer(name, device="cpu", local_files_only=True)
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


@cache
def load_sentence_encoder(name: str) -> SentenceEncoder | None:
    """The encoder named by the ``sentence_model`` setting, or None when sentence-transformers or
    the model is not installed (an empty name turns embeddings off)."""
    if not name or importlib.util.find_spec("sentence_transformers") is None:
        return None
    try:
        return TransformerEncoder(name)
    except Exception as exc:  # no such model here: the documented word-based alignment
        log.info("sentence model %r not loaded (%s); aligning claims by words only", name, exc)
        return None
