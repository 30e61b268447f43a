"""Model sizes by name: `tiny` trains on a CPU in a test, `ViT-B/32` is the paper's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    context_length: int
    vocab_size: int
    text_width: int
    text_layers: int
    text_heads: int
    embed_dim: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{f.name: int(d[f.name]) for f in dataclasses.fields(cls)})

    def replace(self, **changes: int) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


CONFIGS: dict[str, ModelConfig] = {
    # CPU tests and the laptop demo. vocab_size is replaced by the tokenizer's at train time.
    "tiny": ModelConfig(
        image_size=32, patch_size=8, vision_width=96, vision_layers=3, vision_heads=4,
        context_length=16, vocab_size=1024, text_width=96, text_layers=3, text_heads=4, embed_dim=64,
    ),
    "small": ModelConfig(
        image_size=128, patch_size=16, vision_width=384, vision_layers=6, vision_heads=6,
        context_length=32, vocab_size=8192, text_width=256, text_layers=6, text_heads=4, embed_dim=256,
    ),
    # The CLIP paper's ViT-B/32 (Radford et al. 2021, Table 20), CLIP BPE vocabulary size.
    "ViT-B/32": ModelConfig(
        image_size=224, patch_size=32, vision_width=768, vision_layers=12, vision_heads=12,
        context_length=77, vocab_size=49408, text_width=512, text_layers=12, text_heads=8, embed_dim=512,
    ),
}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; known: {', '.join(CONFIGS)}") from None
