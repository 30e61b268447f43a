"""Downscaled thumbnails as data: URIs, so the page is one file that opens anywhere."""

from __future__ import annotations

import base64
import io

from PIL import Image

from wit_pipeline.image.decode import decode_image

THUMB = 128
QUALITY = 80


def thumbnail(data: bytes, size: int = THUMB, max_pixels: int | None = None) -> str | None:
    """A JPEG data: URI of the image fitted in size x size, or None when it does not decode.
    Deterministic: the same bytes give the same URI."""
    img, _ = decode_image(data) if max_pixels is None else decode_image(data, max_pixels)
    if img is None:
        return None
    img = img.convert("RGB")
    img.thumbnail((size, size), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
