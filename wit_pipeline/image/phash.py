"""Perceptual hashes (pHash) of untrusted image bytes, decoded once and safely.

The hash is imagehash's `phash` (32x32 LANCZOS grey image, 2-D DCT-II, the 8x8 lowest
frequencies thresholded at their median), as a 64-bit unsigned int with the same bit order
as `int(str(imagehash.phash(img)), 16)`. The DCT is a precomputed 8x32 matrix product
instead of scipy's full FFT-based transform, and the coefficients are rounded to 1e-3 so
float summation order (BLAS kernels differ between CPUs) cannot flip a bit: the same bytes
give the same hash on every machine. One consequence: a flat image hashes to
0x8000000000000000 (only the DC term is above the median; black: 0) where imagehash's answer
depends on rounding noise.

`phash64_bytes` is the fast path for pipelines: bytes are opened by the one safe decoder
(`wit_pipeline.image.decode`, its pixel cap and reasons), JPEGs at 1/2..1/8 scale in the DCT
domain (`Image.draft`; 1/8 for 1024x768), which is several times faster on large photos and
moves the hash by a bit or two at most (see bench/phash.py). Other formats take the exact path.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from wit_pipeline.image.decode import MAX_PIXELS, classify, open_image

HASH_SIZE = 8
_IMG_SIZE = HASH_SIZE * 4  # imagehash's highfreq_factor=4
_DRAFT_SIZE = (2 * _IMG_SIZE, 2 * _IMG_SIZE)  # keep >= 2x the resize target so LANCZOS still averages

# The first 8 rows of scipy.fftpack.dct's unnormalised DCT-II for N=32:
# y[k] = 2 * sum_n x[n] * cos(pi * k * (2n + 1) / (2N)).
_N = np.arange(_IMG_SIZE)
_DCT = 2.0 * np.cos(np.pi * np.arange(HASH_SIZE)[:, None] * (2 * _N[None, :] + 1) / (2 * _IMG_SIZE))
_BIT_WEIGHTS = np.array([1 << (63 - i) for i in range(64)], dtype=np.uint64)

def _hash_grey32(pixels: np.ndarray) -> int:
    low = _DCT @ pixels.astype(np.float64) @ _DCT.T
    low = np.round(low, 3)
    bits = (low > np.median(low)).ravel()
    return int(_BIT_WEIGHTS[bits].sum(dtype=np.uint64))


def phash64(img: Image.Image) -> int:
    """64-bit pHash of a decoded image, bit-for-bit imagehash.phash's (up to float rounding)."""
    grey = img.convert("L").resize((_IMG_SIZE, _IMG_SIZE), Image.Resampling.LANCZOS)
    return _hash_grey32(np.asarray(grey))


def phash64_bytes(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int | None, int, int, str | None]:
    """(hash, width, height, None) or (None, width, height, reason) from one decode.

    width/height are the stored size from the header (0, 0 if unreadable), before any EXIF
    rotation, like img2dataset's original_width/height; JPEGs are decoded at reduced scale.
    When PIL itself refuses the header (over twice its own limit) the size is unknown: 0, 0.
    """
    img, width, height, reason = open_image(data, max_pixels, _DRAFT_SIZE)
    if img is None:
        return None, width, height, reason
    try:
        return phash64(img), width, height, None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a mode PIL cannot convert to L
        return None, width, height, classify(exc)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()


def to_hex(h: int) -> str:
    """16 lower-case hex chars, imagehash's str() format."""
    if not 0 <= h < 1 << 64:
        raise ValueError(f"not a 64-bit unsigned hash: {h}")
    return f"{h:016x}"


def from_hex(s: str) -> int:
    """Inverse of to_hex; rejects anything but exactly 16 hex chars."""
    if len(s) != 16 or s.strip("0123456789abcdefABCDEF"):
        raise ValueError(f"a 64-bit hash is 16 hex chars, got {s!r}")
    return int(s, 16)
