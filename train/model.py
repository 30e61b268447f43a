"""CLIP: a ViT image encoder and a causal text transformer meeting in a shared embedding.

Follows the CLIP paper's architecture (pre-LN transformer blocks, class-token image
features, end-of-text text features, learnable temperature) at any size from `configs`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from train.configs import ModelConfig

MAX_LOGIT_SCALE = 100.0  # the paper clips the temperature so logits are scaled by at most 100
INIT_LOGIT_SCALE = math.log(1 / 0.07)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(y.transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    """Pre-LN residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
        w = cfg.vision_width
        self.image_size = cfg.image_size
        self.patch = nn.Conv2d(3, w, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        n = (cfg.image_size // cfg.patch_size) ** 2
        self.class_embedding = nn.Parameter(torch.randn(w) * w**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(n + 1, w) * w**-0.5)
        self.ln_pre = nn.LayerNorm(w)
        self.blocks = nn.ModuleList(Block(w, cfg.vision_heads) for _ in range(cfg.vision_layers))
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Linear(w, cfg.embed_dim, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}px images, got {tuple(images.shape[-2:])}")
        x = self.patch(images).flatten(2).transpose(1, 2)  # [B, N, W]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))
        for block in self.blocks:
            x = block(x)
        return self.proj(self.ln_post(x[:, 0]))


class TextTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig, eot_id: int | None = None) -> None:
        super().__init__()
        w = cfg.text_width
        self.context_length = cfg.context_length
        self.eot_id = eot_id
        self.token_embedding = nn.Embedding(cfg.vocab_size, w)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.context_length, w) * 0.01)
        self.blocks = nn.ModuleList(Block(w, cfg.text_heads) for _ in range(cfg.text_layers))
        self.ln_final = nn.LayerNorm(w)
        self.proj = nn.Linear(w, cfg.embed_dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        if n > self.context_length:
            raise ValueError(f"{n} tokens exceed the context length {self.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        for block in self.blocks:
            x = block(x, causal=True)
        x = self.ln_final(x)
        # Features at the end-of-text token: with causal attention it is the only position that
        # has seen the whole caption. Without a known EOT id, CLIP's trick: EOT has the largest id.
        if self.eot_id is None:
            eot = tokens.argmax(dim=-1)
        else:
            eot = (tokens == self.eot_id).int().argmax(dim=-1)
        return self.proj(x[torch.arange(x.shape[0], device=x.device), eot])


class CLIP(nn.Module):
    def __init__(self, cfg: ModelConfig, eot_id: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTransformer(cfg)
        self.text = TextTransformer(cfg, eot_id)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))
        self._init_weights()

    def _init_weights(self) -> None:
        """CLIP's scheme for the text tower (1/sqrt(width) for attention, residual projections
        shrunk by depth); the ViT blocks keep PyTorch's defaults, as CLIP and open_clip leave
        them (their nn.MultiheadAttention: Xavier-uniform in-projection, zero biases)."""
        nn.init.normal_(self.text.token_embedding.weight, std=0.02)
        width, layers = self.cfg.text_width, self.cfg.text_layers
        proj_std = width**-0.5 * (2 * layers) ** -0.5
        for block in self.text.blocks:
            nn.init.normal_(block.attn.qkv.weight, std=width**-0.5)
            nn.init.normal_(block.attn.proj.weight, std=proj_std)
            nn.init.normal_(block.mlp[0].weight, std=(2 * width) ** -0.5)
            nn.init.normal_(block.mlp[2].weight, std=proj_std)
            for lin in (block.attn.qkv, block.attn.proj, block.mlp[0], block.mlp[2]):
                nn.init.zeros_(lin.bias)
        for block in self.visual.blocks:
            nn.init.xavier_uniform_(block.attn.qkv.weight)
            nn.init.zeros_(block.attn.qkv.bias)
            nn.init.zeros_(block.attn.proj.bias)
        for tower, w in ((self.visual, self.cfg.vision_width), (self.text, width)):
            nn.init.normal_(tower.proj.weight, std=w**-0.5)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """The paper's cap, applied to the parameter after each optimizer step (as open_clip
        does): the forward pass stays exp(param), so the gradient never vanishes at the cap."""
        self.logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings [B, embed_dim]."""
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """L2-normalised text embeddings [B, embed_dim]."""
        return F.normalize(self.text(tokens), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image_features, text_features, logit_scale = exp(param)); the trainer keeps param <= ln 100."""
        return self.encode_image(images), self.encode_text(tokens), self.logit_scale.exp()
