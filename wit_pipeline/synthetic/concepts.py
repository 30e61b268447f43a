"""Visual concepts the demo allowlist names: colour x shape x texture.

Distinct, nameable concepts let the trainer learn something checkable (zero-shot accuracy
above chance) from a crawl that fits in a test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 30),
    "orange": (245, 140, 20),
    "purple": (140, 40, 180),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
TEXTURES = ("plain", "striped", "dotted", "checkered")

TEMPLATES = (
    "a {colour} {shape}",
    "a {texture} {colour} {shape}",
    "photo of a {colour} {shape}",
    "a {shape} painted {colour} with a {texture} pattern",
    "{colour} {shape} on a plain background",
    "close up of a {texture} {shape} in {colour}",
)


@dataclass(frozen=True, order=True)
class Concept:
    colour: str
    shape: str
    texture: str

    @property
    def name(self) -> str:
        return f"{self.texture} {self.colour} {self.shape}"


def all_concepts() -> list[Concept]:
    return [Concept(c, s, t) for c in COLOURS for s in SHAPES for t in TEXTURES]


def caption_for(concept: Concept, rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    return template.format(colour=concept.colour, shape=concept.shape, texture=concept.texture)
