"""The one safe way to open untrusted image bytes (curate's pHash, inspect, training).

The declared size is checked from the header before a pixel is decoded, against one cap for
every stage: an image curate keeps is never refused later in training. A failure is a
reason, never an exception: `too_many_pixels` (over the cap, or PIL's own bomb check),
`truncated` (the data ends early) or `undecodable` (anything else PIL rejects).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

from PIL import Image

# 8192 x 8192: far beyond what CLIP trains on (224-336 px), and under PIL's own warning
# threshold (Image.MAX_IMAGE_PIXELS, ~89 MP), so PIL never warns before this check runs.
MAX_PIXELS = 8192 * 8192

TOO_MANY_PIXELS, TRUNCATED, UNDECODABLE = "too_many_pixels", "truncated", "undecodable"
_TRUNCATED_MARKERS = ("truncated", "broken data stream", "end of file", "premature end")

Draft = tuple[int, int] | Callable[[int, int], tuple[int, int]]


def classify(exc: BaseException) -> str:
    """The reason name of a decoder exception: `truncated` or `undecodable`."""
    msg = str(exc).lower()
    if isinstance(exc, EOFError) or any(m in msg for m in _TRUNCATED_MARKERS):
        return TRUNCATED
    return UNDECODABLE


def open_image(
    data: bytes, max_pixels: int = MAX_PIXELS, draft: Draft | None = None
) -> tuple[Image.Image | None, int, int, str | None]:
    """(loaded image, width, height, None) or (None, width, height, reason).

    width/height are the stored size from the header (0, 0 when unreadable, or when PIL
    itself refuses a header over twice its own limit), before any EXIF rotation. With
    `draft`, a JPEG is decoded at the smallest DCT scale (1/2..1/8) that still covers that
    size, given as (w, h) or as a function of the stored size: most of the cost of a large
    photo is its full-size decode.
    """
    try:
        with warnings.catch_warnings():
            # Our own cap decides below; PIL's warning for sizes past its limit is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        return None, 0, 0, TOO_MANY_PIXELS
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes is a drop
        return None, 0, 0, classify(exc)
    width, height = img.size
    if width <= 0 or height <= 0:
        return None, width, height, UNDECODABLE
    if width * height > max_pixels:
        return None, width, height, TOO_MANY_PIXELS  # refused from the header, nothing decoded
    try:
        if draft is not None and img.format == "JPEG":
            # Mode RGB, not L: the decoder's grey output (Y) is not PIL's convert("L") luma.
            img.draft("RGB", draft(width, height) if callable(draft) else draft)
        img.load()
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        return None, width, height, classify(exc)
    return img, width, height, None


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image | None, str | None]:
    """(fully decoded, full-size image, None) or (None, reason)."""
    img, _, _, reason = open_image(data, max_pixels)
    return img, reason
