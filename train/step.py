"""The gradients of one optimizer step, with accumulation that really enlarges the batch.

CLIP's negatives are the rest of the batch, so accumulating k micro-batches of b must give
the gradient of one batch of k*b, not k small losses. As open_clip does: a first pass
without gradients caches every micro-batch's features; then each micro-batch is recomputed
with gradients and scored against the cached features of the others, so every backward is
the loss of the whole batch (under DDP, of the whole global batch: the loss all-gathers).
Summed over the micro-batches, each tower's gradient is exactly the full batch's: micro-batch
j's features depend on the weights only through its own forward. The temperature appears in
all k losses, so its gradient is scaled by 1/k in each (open_clip counts it k times).
The price: one extra forward pass per micro-batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from train.loss import clip_loss

Batch = tuple[torch.Tensor, torch.Tensor]


def _no_sync(model: Any, last: bool) -> contextlib.AbstractContextManager:
    """DDP reduces gradients only after the last micro-batch's backward."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile wraps DDP
    if last or not hasattr(inner, "no_sync"):
        return contextlib.nullcontext()
    return inner.no_sync()


def backward(model: Any, micro_batches: Sequence[Batch], autocast: Any = None) -> torch.Tensor:
    """Accumulate into `.grad` the gradient of the CLIP loss over the concatenated micro-batches;
    returns that loss (detached, this rank's rows against the global batch)."""
    autocast = autocast or contextlib.nullcontext
    k = len(micro_batches)
    if k == 1:
        images, tokens = micro_batches[0]
        with autocast():
            loss = clip_loss(*model(images, tokens))
        loss.backward()
        return loss.detach()
    with torch.no_grad(), autocast():
        cached = [model(images, tokens)[:2] for images, tokens in micro_batches]
    image_cache = [c[0] for c in cached]
    text_cache = [c[1] for c in cached]
    total = None
    for j, (images, tokens) in enumerate(micro_batches):
        with _no_sync(model, last=j == k - 1):
            with autocast():
                image_features, text_features, scale = model(images, tokens)
                if scale.requires_grad:
                    scale.register_hook(lambda g: g / k)
                loss = clip_loss(
                    torch.cat([*image_cache[:j], image_features, *image_cache[j + 1:]]),
                    torch.cat([*text_cache[:j], text_features, *text_cache[j + 1:]]),
                    scale,
                )
            loss.backward()
        if total is None:
            total = loss.detach()
    return total
