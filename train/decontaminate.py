"""Leave out of an evaluation the images the model has (nearly) trained on.

An eval image within `max_distance` pHash bits of a training image measures memory, not
generalisation. This applies curate's own rule (the same 64-bit pHash, the same distance,
the same index) in the other direction: curate drops training samples near a given eval
set; here the eval set is checked against the training shards a model actually saw. The
training side reads each sample's `phash` from its json (curate writes it), hashing the
image only when it is missing. Captions that occur word for word in training are counted
too (not removed: zero-shot scores images against class prompts, not captions).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from train.data import expand_shards, read_samples
from wit_pipeline.image import neardup, phash
from wit_pipeline.shards import image_of
from wit_pipeline.text import textnorm

DEFAULT_MAX_DISTANCE = neardup.DEFAULT_MAX_DISTANCE


def _hash_of(sample: dict[str, Any]) -> int | None:
    try:
        return phash.from_hex(json.loads(sample["json"])["phash"])
    except (KeyError, ValueError, TypeError):
        pass
    img = image_of(sample)
    return None if img is None else phash.phash64_bytes(img[1])[0]


def _caption(sample: dict[str, Any]) -> str | None:
    raw = sample.get("txt")
    return textnorm.normalize(raw.decode("utf-8", "replace")) if isinstance(raw, bytes) else None


def _hashes_and_captions(shards: str | list[str], counts: Counter) -> Iterator[tuple[str, int | None, str | None]]:
    for s in read_samples(expand_shards(shards), counts):
        yield s["__key__"], _hash_of(s), _caption(s)


def decontaminate(eval_shards: str | list[str], train_shards: str | list[str],
                  max_distance: int = DEFAULT_MAX_DISTANCE) -> tuple[frozenset[str], dict[str, Any]]:
    """(keys of eval samples to leave out, a report of how many and why)."""
    train_hashes, train_captions = [], set()
    counts: Counter = Counter()
    for _, h, caption in _hashes_and_captions(train_shards, counts):
        if h is not None:
            train_hashes.append(h)
        if caption:
            train_captions.add(caption)
    index = neardup.EvalIndex(np.array(train_hashes, dtype=np.uint64), max_distance)
    exact = set(train_hashes)
    removed: set[str] = set()
    n = same = unhashable = seen_caption = 0
    for key, h, caption in _hashes_and_captions(eval_shards, counts):
        n += 1
        seen_caption += bool(caption) and caption in train_captions
        if h is None:
            unhashable += 1
        elif index.contains_near(h):
            removed.add(key)
            same += h in exact
    report = {
        "train_shards": train_shards if isinstance(train_shards, str) else ",".join(train_shards),
        "train_images": len(train_hashes), "max_distance": max_distance, "eval_samples": n,
        "removed": len(removed), "removed_at_distance_0": same, "unhashable": unhashable,
        "captions_seen_in_training": seen_caption,
    }
    return frozenset(removed), report
