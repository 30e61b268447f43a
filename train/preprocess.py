"""Image preprocessing for CLIP with PIL + torch (no torchvision): decode, crop, normalise.

Crops are computed in source coordinates and done by one `Image.resize(..., box=...)`, which
filters once from the original pixels (crop + resize in a single pass). JPEGs are decoded
with `Image.draft` at the smallest DCT scale that still covers the target size, which is most
of the loader's speed on large images. No horizontal flip: captions say "left" and "right".
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image

from wit_pipeline.image.decode import MAX_PIXELS, UNDECODABLE, classify, open_image

# CLIP's (OpenAI) normalisation constants, as open_clip uses them.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TRAIN_SCALE = (0.9, 1.0)
TRAIN_RATIO = (3 / 4, 4 / 3)


class BadImage(ValueError):
    """An image that cannot be used; `reason` is the counter name it is dropped under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode(data: bytes, image_size: int, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode to RGB through the one safe decoder (curate's cap and reason names), JPEG at
    the smallest DCT scale whose shorter side still covers image_size."""
    def draft(w: int, h: int) -> tuple[int, int]:  # draft() keeps both sides >= the request
        scale = image_size / min(w, h)
        return math.ceil(w * scale), math.ceil(h * scale)

    img, w, h, reason = open_image(data, max_pixels, draft)
    if img is None:
        raise BadImage(reason or UNDECODABLE, f"{reason} ({w}x{h}, cap {max_pixels} pixels)")
    try:
        return img.convert("RGB")
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise BadImage(classify(e), f"{type(e).__name__}: {e}") from e


def centre_box(w: int, h: int) -> tuple[float, float, float, float]:
    """The centred square: resize-shorter-side + centre-crop, as one box."""
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    return (left, top, left + side, top + side)


def random_resized_box(
    w: int, h: int, rng: random.Random, scale: tuple[float, float] = TRAIN_SCALE, ratio: tuple[float, float] = TRAIN_RATIO
) -> tuple[float, float, float, float]:
    """Inception-style random crop box (area fraction in `scale`, aspect in `ratio`)."""
    area = w * h
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if cw <= w and ch <= h:
            left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
            return (left, top, left + cw, top + ch)
    return centre_box(w, h)


def crop_resize(img: Image.Image, box: tuple[float, float, float, float], image_size: int) -> np.ndarray:
    """[S, S, 3] uint8 pixels of `box` resized (bicubic, antialiased) to image_size."""
    out = img.resize((image_size, image_size), Image.Resampling.BICUBIC, box=box)
    return np.asarray(out, dtype=np.uint8)


def train_pixels(img: Image.Image, image_size: int, rng: random.Random) -> np.ndarray:
    return crop_resize(img, random_resized_box(*img.size, rng), image_size)


def eval_pixels(img: Image.Image, image_size: int) -> np.ndarray:
    return crop_resize(img, centre_box(*img.size), image_size)


_MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1) * 255.0
_INV_STD = 1.0 / (torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255.0)


def to_batch(pixels: list[np.ndarray]) -> torch.Tensor:
    """Stack [S, S, 3] uint8 arrays into a normalised float32 [B, 3, S, S] batch.

    The layout change happens on uint8 (a quarter of the bytes), the arithmetic in place.
    """
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous().float()
    return x.sub_(_MEAN).mul_(_INV_STD)
