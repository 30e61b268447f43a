"""The trainer's WebDataset loader: shards -> shuffled, preprocessed, tokenised fixed-size batches.

Pipeline per DataLoader worker (like open_clip's `get_wds_dataset`, written out flat):

    shard URLs --(resampled: seeded draws with replacement | else: seeded shuffle, split by
    rank then worker)--> tar samples --(seeded shuffle buffer of raw bytes)--> decode (PIL,
    pixel cap; undecodable samples skipped and counted) --> crop + normalise --> batches of
    `batch_size` (a partial last batch is dropped) --> tokens.

Epochs and determinism. With `epoch_samples`, an epoch is exactly
`steps_per_epoch = epoch_samples // (batch_size * world_size)` steps on every rank; worker
`w` of `W` yields the batches of steps w, w+W, w+2W, ... (torch's DataLoader takes batches
from workers round-robin, starting at worker 0), so the interleaving is fixed. Without
`epoch_samples`, resampled mode is one endless epoch (what `wit train` uses) and one-pass
mode takes the epoch length from the manifest. Every random choice is derived from
(seed, epoch, rank, worker) -- for a sample's crop, also from its key and position in the
worker's stream -- never from process state.

Resume: `start_step=k` puts the loader at step k % steps_per_epoch of epoch
k // steps_per_epoch (the endless mode is cut into segments of `ENDLESS_SEGMENT_STEPS`
steps, each reseeded, so a resume never replays more than one segment). Each worker fast-forwards
past the samples of its batches before k (decoded, to know which are undecodable, but not
cropped or tokenised), and worker i plays the part of worker (i + k) % W so the round-robin
still starts at step k; the batch at step k of a resumed run equals the batch at step k of
an uninterrupted one. Every worker fills its share of the epoch: the resampled mode never
runs dry, and in one-pass mode a worker whose shards do reads them again (counted as
`wrapped_shards`), so every rank takes the same number of steps; only a worker with no shard
at all ends early (`short_epochs`). Fast-forwarding costs decoding the skipped samples of the
current epoch (or segment).
`Loader.step` is the data position to store in a checkpoint.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from train import preprocess
from wit_pipeline.core import fsio, keys
from wit_pipeline.core.stats import TallyBase
from wit_pipeline.shards import MANIFEST, image_of, iter_tar_samples

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_LENGTH = 77
SHUFFLE_BUFFER = 2000  # raw (still encoded) samples per worker
SHUFFLE_INITIAL = 500
MAX_FAILED_SHARDS_IN_A_ROW = 100
MAX_UNUSABLE_IN_A_ROW = 10_000
ENDLESS_SEGMENT_STEPS = 1000  # resampled without epoch_samples: reseed (and restart workers) this often


def expand_shards(shards: str | Iterable[str]) -> list[str]:
    """Shard URLs from a folder of shards (its manifest.json, else its *.tar), a brace pattern
    (`wit-{000000..000009}.tar`), a glob, a `::`- or comma-joined list, or a list."""
    if isinstance(shards, str):
        urls: list[str] = []
        for part in (p for chunk in shards.split(",") for p in wds.shardlists.expand_urls(chunk.strip()) if p):
            fs, path = fsio.filesystem(part)
            if fs.isdir(path):
                manifest = fsio.join(part, MANIFEST)
                if fs.exists(fsio.filesystem(manifest)[1]):
                    urls.extend(fsio.join(part, s["name"]) for s in fsio.read_json(manifest)["shards"])
                else:
                    urls.extend(fsio.expand(fsio.join(part, "*.tar")))
            else:
                urls.extend(fsio.expand(part) if any(c in part for c in "*?[") else [part])
    else:
        urls = [str(u) for u in shards]
    if not urls:
        raise ValueError(f"no shards match {shards!r}")
    return urls


def check_shards(shards: str | Iterable[str], sample: int = 64) -> list[str]:
    """expand_shards, and the first `sample` of them must exist: a typo should stop the run
    with its name, not after every worker has logged it as unreadable."""
    urls = expand_shards(shards)
    missing = [u for u in urls[:sample] if not fsio.exists(u)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} shard(s) not found, e.g. {missing[0]!r} (from {shards!r})")
    return urls


def manifest_samples(urls: list[str]) -> int | None:
    """Total samples of `urls` per the `manifest.json` beside them (None if absent or incomplete)."""
    manifests: dict[str, dict[str, int]] = {}
    total = 0
    for url in urls:
        parent, _, name = url.rpartition("/")
        parent = parent or "."
        if parent not in manifests:
            try:
                doc = fsio.read_json(fsio.join(parent, MANIFEST))
                manifests[parent] = {s["name"]: int(s["samples"]) for s in doc["shards"]}
            except (OSError, ValueError, KeyError, TypeError):
                return None
        if name not in manifests[parent]:
            return None
        total += manifests[parent][name]
    return total


class BadData(RuntimeError):
    """The shards cannot feed the run (too many unreadable shards or unusable samples in a row):
    a failed run, told in one line, not a bug."""


def _caption(sample: dict[str, Any]) -> str | None:
    raw = sample.get("txt")
    if not isinstance(raw, bytes):
        return None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text or None


class _MemberTally(TallyBase):
    """Counts the tar members `iter_tar_samples` refuses (links, `..`, absolute names) as `bad_members`."""

    def __init__(self, counts: Counter) -> None:
        self.counts = counts

    def inc(self, stage: str, field: str, n: int = 1) -> None:
        if field.startswith("dropped."):
            self.counts["bad_members"] += n


def read_samples(urls: Iterable[str], counts: Counter) -> Iterator[dict[str, Any]]:
    """Raw samples of each shard; a shard that fails to open or parse is counted and left."""
    tally = _MemberTally(counts)
    failed_in_a_row = 0
    for url in urls:
        try:
            for sample in iter_tar_samples(url, tally):
                failed_in_a_row = 0
                yield sample
        except Exception as e:  # a missing or truncated shard must not end the run
            counts["shard_errors"] += 1
            failed_in_a_row += 1
            log.warning("skipping the rest of shard %s: %s: %s", url, type(e).__name__, e)
            if failed_in_a_row >= MAX_FAILED_SHARDS_IN_A_ROW:  # resampling would spin for ever
                raise BadData(f"{failed_in_a_row} shards in a row failed; last: {url}: {e}") from e


def _decoded(samples: Iterable[dict[str, Any]], image_size: int, counts: Counter) -> Iterator[tuple[str, Any, str, dict]]:
    """(key, RGB image, caption, sample) for usable samples; each unusable one is counted by reason."""
    unusable_in_a_row = 0
    for s in samples:
        counts["read"] += 1
        img = image_of(s)
        caption = _caption(s)
        reason = "no_image" if img is None else "no_text" if caption is None else None
        if reason is None:
            try:
                image = preprocess.decode(img[1], image_size)
            except preprocess.BadImage as e:
                reason = e.reason
        if reason is not None:
            counts[f"skipped.{reason}"] += 1
            unusable_in_a_row += 1
            if unusable_in_a_row >= MAX_UNUSABLE_IN_A_ROW:  # resampling would spin for ever
                raise BadData(f"{unusable_in_a_row} unusable samples in a row (last: {reason}, {s.get('__url__')})")
            continue
        unusable_in_a_row = 0
        yield s["__key__"], image, caption, s


class _Stream(IterableDataset):
    """One rank's stream of batches for one epoch; the Loader sets `epoch` and `offset` per epoch."""

    def __init__(self, urls: list[str], *, tokenizer: Any, context_length: int, image_size: int, batch_size: int,
                 train: bool, resampled: bool, seed: int, steps_per_epoch: int | None, rank: int, world_size: int) -> None:
        self.urls, self.tokenizer, self.context_length = urls, tokenizer, context_length
        self.image_size, self.batch_size, self.train, self.resampled = image_size, batch_size, train, resampled
        self.seed, self.steps_per_epoch, self.rank, self.world_size = seed, steps_per_epoch, rank, world_size
        self.epoch = 0
        self.offset = 0  # steps of this epoch already taken (resume)

    def _passes(self, worker: int, workers: int, counts: Counter) -> Iterator[Iterable[str]]:
        """This worker's shard URLs, as passes: one endless draw (resampled), or its share of
        the shards, then (when the epoch has a set length) that share again, reshuffled, for
        as long as the consumer wants more. Shards hold unequal counts, so one rank's share
        can run dry before the epoch's steps are taken; under DDP the other ranks would then
        wait for ever. Each pass is shuffled and drained on its own, so a pass that suffices
        is read exactly once."""
        tag = f"{self.seed}|{self.epoch}|{self.rank}|{worker}"
        if self.resampled:
            rng = random.Random(f"resample|{tag}")
            yield (rng.choice(self.urls) for _ in itertools.count())
            return
        urls = list(self.urls)
        if self.train:  # same order on every rank, so the rank split stays disjoint
            random.Random(f"shards|{self.seed}|{self.epoch}").shuffle(urls)
        mine = urls[self.rank :: self.world_size][worker::workers]
        yield mine
        if not mine or self.steps_per_epoch is None:
            return
        for again in itertools.count(1):
            counts["wrapped_shards"] += len(mine)
            more = list(mine)
            random.Random(f"wrap|{tag}|{again}").shuffle(more)
            yield more

    def _samples(self, worker: int, workers: int, counts: Counter) -> Iterator[dict[str, Any]]:
        for n, urls in enumerate(self._passes(worker, workers, counts)):
            samples: Iterator[dict[str, Any]] = read_samples(iter(urls), counts)
            if self.train:
                salt = f"|{n}" if n else ""
                rng = random.Random(f"buffer|{self.seed}|{self.epoch}|{self.rank}|{worker}{salt}")
                samples = wds.filters.shuffle(SHUFFLE_BUFFER, SHUFFLE_INITIAL, rng=rng)(samples)
            got = 0
            for sample in samples:
                got += 1
                yield sample
            if not got:  # shards that hold nothing readable: another pass would spin for ever
                return

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers = info.num_workers if info else 1
        # DataLoader always starts its round-robin at worker 0, so after resuming at `offset`
        # worker i plays the part of worker (i + offset) % W of an uninterrupted run.
        worker = ((info.id if info else 0) + self.offset) % workers
        counts: Counter = Counter()
        spe = self.steps_per_epoch
        ff = len(range(worker, self.offset, workers))  # this worker's batches before `offset`
        todo = None if spe is None else len(range(worker, spe, workers)) - ff
        samples = self._samples(worker, workers, counts)
        skip = ff * self.batch_size
        pixels, captions = [], []
        made = 0
        decoded = _decoded(samples, self.image_size, counts) if todo != 0 else iter(())
        for position, (key, image, caption, _) in enumerate(decoded):
            if skip:
                skip -= 1
                counts["fast_forwarded"] += 1
                continue
            if self.train:
                # Position in this worker's stream too: a resampled sample seen twice gets two crops.
                salt = f"crop|{self.epoch}|{self.rank}|{worker}|{position}"
                crop_rng = random.Random(keys.salted_hash(key, salt, self.seed))
                pixels.append(preprocess.train_pixels(image, self.image_size, crop_rng))
            else:
                pixels.append(preprocess.eval_pixels(image, self.image_size))
            captions.append(caption)
            if len(pixels) == self.batch_size:
                counts["batched"] += len(pixels)
                batch = {
                    "images": preprocess.to_batch(pixels),
                    "tokens": self.tokenizer.encode(captions, self.context_length),
                    "stats": dict(counts),
                }
                counts.clear()
                pixels, captions = [], []
                made += 1
                yield batch
                if made == todo:
                    break
        counts["unbatched"] += len(pixels)
        if todo is not None and made < todo:
            counts["short_epochs"] += 1
        yield {"stats": dict(counts)}  # no images: the Loader only adds these counts


class Loader:
    """Iterate for one epoch of `(images [B,3,S,S] float32, tokens [B,L] int64)`; iterate again for the next."""

    def __init__(self, stream: _Stream, workers: int, start_step: int, endless: bool = False) -> None:
        self._stream, self.workers, self.step, self.endless = stream, workers, start_step, endless
        self._counts: Counter = Counter()
        self._passes = 0

    @property
    def steps_per_epoch(self) -> int | None:
        return None if self.endless else self._stream.steps_per_epoch

    @property
    def epoch(self) -> int:
        spe = self._stream.steps_per_epoch
        return self.step // spe if spe else self._passes

    def __len__(self) -> int:
        if self.steps_per_epoch is None:
            raise TypeError("epoch length unknown: pass epoch_samples or keep a manifest.json beside the shards")
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.endless:
            yield from self._epoch()
            return
        while True:  # segments of ENDLESS_SEGMENT_STEPS, back to back
            yield from self._epoch()

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        spe = self._stream.steps_per_epoch
        epoch = self.epoch
        self._stream.epoch = epoch
        self._stream.offset = self.step - epoch * spe if spe else 0
        loader = DataLoader(self._stream, batch_size=None, num_workers=self.workers,
                            persistent_workers=False, prefetch_factor=2 if self.workers else None,
                            pin_memory=torch.cuda.is_available())
        for item in loader:
            self._counts.update(item["stats"])
            if "images" in item:
                self.step += 1
                yield item["images"], item["tokens"]
        self._passes += 1
        if spe:
            self.step = (epoch + 1) * spe  # a short epoch still ends at its boundary

    def stats(self) -> dict[str, Any]:
        """Samples read by the decoder, batched, fast-forwarded, unbatched, and skipped by reason."""
        c = self._counts
        skipped = {k.split(".", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("skipped.")}
        out = {k: c.get(k, 0) for k in ("read", "batched", "fast_forwarded", "unbatched", "shard_errors", "bad_members",
                                          "short_epochs", "wrapped_shards")}
        return {**out, "skipped": skipped, "step": self.step, "epoch": self.epoch}


def make_loader(
    shards: str | list[str],
    *,
    tokenizer: Any,
    image_size: int,
    batch_size: int,
    train: bool,
    workers: int = 0,
    resampled: bool = False,
    seed: int = 0,
    epoch_samples: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    start_step: int = 0,
    context_length: int | None = None,
) -> Loader:
    """A Loader over `shards` for rank `rank` of `world_size` (see the module docstring).

    `epoch_samples` defaults to the manifest's count of the shards in one-pass training;
    `context_length` to `tokenizer.context_length` if it has one, else 77 (pass the model's).
    """
    if batch_size < 1 or image_size < 1 or workers < 0:
        raise ValueError("batch_size and image_size must be positive, workers >= 0")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world_size {world_size}")
    urls = expand_shards(shards)
    if not resampled:
        mine = len(urls[rank::world_size])
        if mine == 0:
            raise ValueError(f"{len(urls)} shards cannot be split over {world_size} ranks; use resampled=True")
        if workers > mine:
            log.warning("rank %d has %d shards: using %d workers instead of %d", rank, mine, mine, workers)
            workers = mine
    if epoch_samples is None and train and not resampled:
        epoch_samples = manifest_samples(urls)
    endless = resampled and epoch_samples is None
    spe = None if epoch_samples is None else epoch_samples // (batch_size * world_size)
    if spe == 0:
        raise ValueError(f"epoch_samples={epoch_samples} is less than one global batch ({batch_size} x {world_size})")
    if endless:
        spe = ENDLESS_SEGMENT_STEPS
    if start_step and spe is None:
        raise ValueError("resuming mid-data needs a known epoch length: pass epoch_samples or keep manifest.json")
    if context_length is None:
        context_length = getattr(tokenizer, "context_length", None) or DEFAULT_CONTEXT_LENGTH
    if workers:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # HF tokenizers + fork would warn
    stream = _Stream(urls, tokenizer=tokenizer, context_length=context_length, image_size=image_size,
                     batch_size=batch_size, train=train, resampled=resampled, seed=seed,
                     steps_per_epoch=spe, rank=rank, world_size=world_size)
    return Loader(stream, workers, start_step, endless)


def _without(samples: Iterable[dict[str, Any]], exclude: frozenset[str], counts: Counter) -> Iterator[dict[str, Any]]:
    for s in samples:
        if s["__key__"] in exclude:
            counts["skipped.excluded"] += 1
        else:
            yield s


def iter_eval(shards: str | list[str], image_size: int, batch_size: int, counts: Counter | None = None,
              exclude: frozenset[str] = frozenset()) -> Iterator[tuple[torch.Tensor, list[str], list[dict[str, Any]]]]:
    """Every usable sample once, in shard order, centre-cropped: (images, captions, sample jsons).

    The last batch may be partial; unusable samples are counted into `counts` like the Loader's;
    samples whose key is in `exclude` (decontamination) are left out, counted as `skipped.excluded`.
    """
    counts = Counter() if counts is None else counts
    pixels, captions, metas = [], [], []
    samples = read_samples(expand_shards(shards), counts)
    if exclude:
        samples = _without(samples, exclude, counts)
    for _, image, caption, s in _decoded(samples, image_size, counts):
        try:
            meta = json.loads(s["json"]) if "json" in s else {}
        except ValueError:
            meta = {}
        pixels.append(preprocess.eval_pixels(image, image_size))
        captions.append(caption)
        metas.append(meta if isinstance(meta, dict) else {})
        if len(pixels) == batch_size:
            counts["batched"] += len(pixels)
            yield preprocess.to_batch(pixels), captions, metas
            pixels, captions, metas = [], [], []
    if pixels:
        counts["batched"] += len(pixels)
        yield preprocess.to_batch(pixels), captions, metas


def iter_captions(shards: str | list[str], limit: int) -> Iterator[str]:
    """Up to `limit` captions in shard order, without decoding images (BPE training)."""
    n = 0
    for s in read_samples(expand_shards(shards), Counter()):
        if n >= limit:
            return
        caption = _caption(s)
        if caption is not None:
            n += 1
            yield caption
