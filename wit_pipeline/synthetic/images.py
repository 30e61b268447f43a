"""Render a concept as an image: a coloured, textured shape at a jittered place and size."""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageDraw

from wit_pipeline.synthetic.concepts import COLOURS, Concept


def _background(rng: random.Random) -> tuple[int, int, int]:
    base = rng.randint(90, 170)  # mid grey, so black and white shapes both stand out
    return tuple(max(0, min(255, base + rng.randint(-25, 25))) for _ in range(3))  # type: ignore[return-value]


def _shape_mask(shape: str, size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    side = min(w, h)
    r = side * rng.uniform(0.28, 0.42)
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    cy = h / 2 + rng.uniform(-0.1, 0.1) * h
    rot = rng.uniform(0, 2 * math.pi)

    def poly(points: list[tuple[float, float]]) -> None:
        c, s = math.cos(rot), math.sin(rot)
        draw.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in points], fill=255)

    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        draw.ellipse([cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55], fill=0)
    elif shape == "square":
        poly([(-r, -r), (r, -r), (r, r), (-r, r)])
    elif shape == "triangle":
        poly([(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)])
    elif shape == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((rad * math.cos(a), rad * math.sin(a)))
        poly(pts)
    elif shape == "cross":
        t = r * 0.35
        poly([(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r), (-t, r), (-t, t), (-r, t), (-r, -t), (-t, -t)])
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def _texture_mask(texture: str, size: tuple[int, int], rng: random.Random) -> Image.Image | None:
    """Where the texture's second colour goes (None for plain)."""
    if texture == "plain":
        return None
    w, h = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    step = max(4, int(min(w, h) * rng.uniform(0.06, 0.09)))
    if texture == "striped":
        for x in range(-h, w, step * 2):
            draw.polygon([(x, 0), (x + step, 0), (x + step + h, h), (x + h, h)], fill=255)
    elif texture == "dotted":
        rad = step * 0.35
        for y in range(0, h, step):
            for x in range(0, w, step):
                draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=255)
    elif texture == "checkered":
        for y in range(0, h, step):
            for x in range(0, w, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=255)
    else:
        raise ValueError(f"unknown texture {texture!r}")
    return mask


def render(concept: Concept, size: tuple[int, int] = (256, 256), seed: int = 0) -> Image.Image:
    """An RGB image of `concept`; the same (concept, size, seed) gives the same pixels."""
    rng = random.Random(f"{concept.name}|{size}|{seed}")
    img = Image.new("RGB", size, _background(rng))
    colour = COLOURS[concept.colour]
    shape = _shape_mask(concept.shape, size, rng)
    img.paste(colour, mask=shape)
    texture = _texture_mask(concept.texture, size, rng)
    if texture is not None:
        # The pattern colour: the shape's colour pushed towards the opposite end of the range.
        second = tuple(int(c * 0.35) if sum(colour) > 380 else int(c + (255 - c) * 0.6) for c in colour)
        both = Image.fromarray(np.minimum(np.asarray(shape), np.asarray(texture)))
        img.paste(second, mask=both)
    return img


def encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt.upper() == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, fmt)
    return buf.getvalue()
