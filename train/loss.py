"""CLIP's symmetric contrastive loss, with negatives from the whole global batch under DDP."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' rows concatenated in rank order; gradients flow back to each rank's own rows.

    `all_gather_single` is torch's current autograd-aware gather (its backward is a summing
    reduce-scatter); `torch.distributed.nn.functional.all_gather` warns as deprecated.
    """
    from torch.distributed._functional_collectives import all_gather_single

    return all_gather_single(x.contiguous(), 0, dist.group.WORLD)  # waited for on first use


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    *,
    gather: bool = True,
) -> torch.Tensor:
    """Mean of image->text and text->image cross-entropy; pair i is the positive for row i.

    Under DDP (and gather=True) each rank scores its local rows against every rank's
    features, labels offset by rank * local batch. DDP averages gradients over ranks, so the
    gradient equals that of the single-process loss on the concatenated global batch.
    """
    distributed = gather and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    n = image_features.shape[0]
    if distributed:
        all_image, all_text = _gather(image_features), _gather(text_features)
        offset = dist.get_rank() * n
    else:
        all_image, all_text, offset = image_features, text_features, 0
    labels = torch.arange(offset, offset + n, device=image_features.device)
    logits_per_image = logit_scale * image_features @ all_text.T  # [n, N]
    logits_per_text = logit_scale * text_features @ all_image.T
    return (F.cross_entropy(logits_per_image.float(), labels) + F.cross_entropy(logits_per_text.float(), labels)) / 2
