"""Counter-based randomness: every draw is a pure function of (seed, ids, counter).

Nothing depends on batch composition, order, process or node, so any actor can render any
(label, instance) and get the same bytes. Python-side draws (a category's parameters) use a
NumPy generator seeded from the id tuple; numba kernels draw per point with splitmix64 of
(key + counter), a stateless hash that needs no shared generator state.
"""

from __future__ import annotations

import zlib

import numba
import numpy as np

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def tag(text: str) -> int:
    """A stable integer for a stream name, so streams for different purposes never collide."""
    return zlib.crc32(text.encode())


def rng_for(*words: int) -> np.random.Generator:
    """A NumPy generator determined by the given non-negative integers alone."""
    return np.random.default_rng(np.random.SeedSequence([int(w) & _MASK64 for w in words]))


def _splitmix64_py(x: int) -> int:
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def key_for(*words: int) -> int:
    """Fold integers into one 64-bit key for the numba kernels (as a Python int)."""
    key = 0
    for word in words:
        key = _splitmix64_py(key ^ (int(word) & _MASK64))
    return key


def keys_for(seed: int, stream: int, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """One uint64 key per image of a batch: key_for(seed, stream, label, instance), the
    (seed, stream) prefix folded once and the rest in numba (in Python, 4 hashes an image
    were half of the Python around the renderer in a batch of 8)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    instances = np.asarray(instances, dtype=np.int64).reshape(-1)
    if labels.size != instances.size:
        raise ValueError(f"{labels.size} labels and {instances.size} instances must pair up")
    keys = np.empty(labels.size, dtype=np.uint64)
    _fold_pairs(np.uint64(key_for(seed, stream)), labels, instances, keys)
    return keys


@numba.njit(inline="always", cache=True)
def splitmix64(x: np.uint64) -> np.uint64:
    x = x + np.uint64(_GOLDEN)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True)
def _fold_pairs(prefix, labels, instances, keys):
    """keys[i] = key_for(..., labels[i], instances[i]) from the key of the words before."""
    for i in range(keys.size):
        keys[i] = splitmix64(splitmix64(prefix ^ np.uint64(labels[i])) ^ np.uint64(instances[i]))


@numba.njit(inline="always", cache=True)
def draw_bits(key: np.uint64, counter: np.uint64) -> np.uint64:
    """64 random bits for the counter-th draw of a key."""
    return splitmix64(key ^ splitmix64(counter))


@numba.njit(inline="always", cache=True)
def draw_uniform(key: np.uint64, counter: np.uint64) -> float:
    """A float in [0, 1) for the counter-th draw of a key."""
    return float(draw_bits(key, counter) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
