"""The trainer's loader on real WebDataset tars of rendered concept images."""

from __future__ import annotations

import io
import itertools
import json
import random
import tarfile

import pytest
import torch
import webdataset as wds

from train import data, preprocess
from train.data import iter_captions, iter_eval, make_loader, manifest_samples
from train.tokenizer import byte_tokenizer
from wit_pipeline.core import keys
from wit_pipeline.shards import write_manifest
from wit_pipeline.synthetic.concepts import all_concepts, caption_for
from wit_pipeline.synthetic.images import encode, render

CTX = 40  # captions are < 38 bytes, so byte tokens decode back to the whole caption
SHARDS, PER_SHARD = 4, 24


def write_shard(path, samples) -> None:
    with wds.TarWriter(str(path)) as sink:
        for s in samples:
            sink.write(s)


def concept_samples(start: int, n: int, size=(48, 40)) -> list[dict]:
    concepts = all_concepts()
    out = []
    for i in range(start, start + n):
        c = concepts[(i * 7) % len(concepts)]
        text = f"{caption_for(c, random.Random(i))} #{i}"
        url = f"http://img.test/{i}.jpg"
        key = keys.sample_key(url, text)
        meta = {"key": key, "url": url, "text": text, "queries": [c.colour, c.shape]}
        out.append({"__key__": key, "jpg": encode(render(c, size, seed=i)), "txt": text, "json": json.dumps(meta)})
    return out


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    entries = []
    for k in range(SHARDS):
        name = f"wit-{k:06d}.tar"
        write_shard(d / name, concept_samples(k * PER_SHARD, PER_SHARD))
        entries.append({"name": name, "samples": PER_SHARD, "bytes": (d / name).stat().st_size, "sha256": "0" * 64})
    write_manifest(str(d), entries, {}, {}, 0)
    return d


@pytest.fixture(scope="module")
def pattern(shard_dir):
    return str(shard_dir / f"wit-{{000000..{SHARDS - 1:06d}}}.tar")


def loader(pattern, **kw):
    args = dict(tokenizer=byte_tokenizer(), image_size=32, batch_size=8, train=True, context_length=CTX)
    args.update(kw)
    return make_loader(pattern, **args)


def captions_of(tokens: torch.Tensor) -> list[str]:
    tok = byte_tokenizer()
    return [tok.decode(row.tolist()) for row in tokens]


def take(ld, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """n batches, continuing over epoch boundaries."""
    out = []
    while len(out) < n:
        for batch in ld:
            out.append(batch)
            if len(out) == n:
                break
    return out


def test_batches_shapes_dtypes_ranges_and_epoch_from_manifest(pattern):
    ld = loader(pattern)
    assert manifest_samples(ld._stream.urls) == SHARDS * PER_SHARD
    assert len(ld) == 12
    batches = list(ld)
    assert len(batches) == 12
    for images, tokens in batches:
        assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
        assert tokens.shape == (8, CTX) and tokens.dtype == torch.long
        lo = (0 - torch.tensor(preprocess.CLIP_MEAN)) / torch.tensor(preprocess.CLIP_STD)
        hi = (1 - torch.tensor(preprocess.CLIP_MEAN)) / torch.tensor(preprocess.CLIP_STD)
        assert (images >= lo.view(1, 3, 1, 1) - 1e-5).all() and (images <= hi.view(1, 3, 1, 1) + 1e-5).all()
        assert images.std() > 0.1  # real pixels, not a constant
    seen = [c for _, t in batches for c in captions_of(t)]
    assert len(seen) == len(set(seen)) == 96  # one pass: every sample exactly once
    assert ld.stats() == {"read": 96, "batched": 96, "fast_forwarded": 0, "unbatched": 0, "shard_errors": 0,
                          "bad_members": 0, "short_epochs": 0, "wrapped_shards": 0, "skipped": {}, "step": 12,
                          "epoch": 1}


def test_eval_transform_is_deterministic_centre_crop(pattern):
    a = [b[0] for b in loader(pattern, train=False)]
    b = [b[0] for b in loader(pattern, train=False, seed=5)]
    assert len(a) == 12 and all(torch.equal(x, y) for x, y in zip(a, b))


def test_corrupt_and_incomplete_samples_are_skipped_and_counted(tmp_path):
    good = concept_samples(0, 10)
    good[2]["jpg"] = b"\xff\xd8\xff\xe0 this is not a jpeg"
    good[5]["jpg"] = good[5]["jpg"][: len(good[5]["jpg"]) // 2]  # truncated JPEG
    del good[7]["txt"]
    bomb = io.BytesIO()
    from PIL import Image

    Image.new("L", (9000, 8000)).save(bomb, "PNG")  # 72 Mpx, a few kB compressed
    good.append({"__key__": "bomb", "png": bomb.getvalue(), "txt": "a bomb"})
    write_shard(tmp_path / "wit-000000.tar", good)
    with tarfile.open(tmp_path / "wit-000000.tar", "a") as tar:  # a member that would escape its folder
        info = tarfile.TarInfo("../escape.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    (tmp_path / "wit-000001.tar").write_bytes(b"not a tar at all" * 100)
    ld = loader([str(tmp_path / "wit-000000.tar"), str(tmp_path / "wit-000001.tar")], batch_size=3, train=False)
    batches = list(ld)
    assert len(batches) == 2
    stats = ld.stats()
    assert stats["skipped"] == {"truncated": 2, "no_text": 1, "too_many_pixels": 1}
    assert stats["read"] == 11 and stats["batched"] == 6 and stats["unbatched"] == 1
    assert stats["shard_errors"] == 1 and stats["bad_members"] == 1
    assert stats["read"] == stats["batched"] + stats["unbatched"] + sum(stats["skipped"].values())


def test_split_by_rank_is_disjoint_and_complete(pattern):
    per_rank = []
    for rank in (0, 1):
        ld = loader(pattern, rank=rank, world_size=2, seed=3)
        assert len(ld) == 6  # 96 // (8 * 2)
        per_rank.append({c for _, t in ld for c in captions_of(t)})
    assert len(per_rank[0]) == len(per_rank[1]) == 48
    assert not per_rank[0] & per_rank[1]
    assert len(per_rank[0] | per_rank[1]) == 96


def test_epoch_length_with_two_workers(pattern):
    ld = loader(pattern, workers=2, resampled=True, epoch_samples=100, seed=1)
    assert len(ld) == 12
    assert len(list(ld)) == 12 and ld.epoch == 1
    assert len(list(ld)) == 12 and ld.epoch == 2 and ld.step == 24
    assert ld.stats()["batched"] == 24 * 8
    # One pass over the manifest's samples, two workers with two shards each: 6 + 6 batches.
    one_pass = loader(pattern, workers=2)
    assert len(list(one_pass)) == 12
    assert one_pass.stats()["batched"] == 96 and one_pass.stats()["short_epochs"] == 0
    # Two ranks x two workers: every rank takes exactly its steps.
    for rank in (0, 1):
        ld = loader(pattern, workers=2, resampled=True, epoch_samples=100, rank=rank, world_size=2)
        assert len(ld) == 6 and len(list(ld)) == 6


def test_same_seed_same_batches_other_seed_other_batches(pattern):
    kw = dict(workers=2, resampled=True, epoch_samples=48)
    a, b = take(loader(pattern, seed=7, **kw), 8), take(loader(pattern, seed=7, **kw), 8)
    c = take(loader(pattern, seed=8, **kw), 8)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(torch.equal(x[1], y[1]) for x, y in zip(a, c))
    # Random crops differ between epochs of the same sample stream.
    assert not torch.equal(a[0][0], a[6][0])


@pytest.mark.parametrize("start", [3, 6, 7])
def test_resume_gives_the_uninterrupted_batches(pattern, start):
    kw = dict(workers=2, resampled=True, epoch_samples=48, seed=11)  # 6 steps per epoch
    full = take(loader(pattern, **kw), 10)
    resumed_loader = loader(pattern, start_step=start, **kw)
    resumed = take(resumed_loader, 10 - start)
    for k, (x, y) in enumerate(zip(full[start:], resumed)):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]), f"step {start + k}"
    assert resumed_loader.step == 10
    assert resumed_loader.stats()["fast_forwarded"] == (start % 6) * 8


def test_resume_in_the_trainers_endless_resampled_mode(pattern, monkeypatch):
    monkeypatch.setattr(data, "ENDLESS_SEGMENT_STEPS", 3)  # reseeded every 3 steps
    kw = dict(workers=2, resampled=True, seed=4)  # no epoch_samples: endless
    ld = loader(pattern, **kw)
    full = list(itertools.islice(iter(ld), 9))  # one iteration runs on across segments
    assert ld.steps_per_epoch is None and ld.step == 9
    with pytest.raises(TypeError):
        len(ld)
    for start in (4, 5, 6):
        resumed = list(itertools.islice(iter(loader(pattern, start_step=start, **kw)), 9 - start))
        assert len(resumed) == 9 - start and all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(full[start:], resumed))


def test_resume_one_pass_mode(pattern):
    full = take(loader(pattern), 12)
    resumed = list(loader(pattern, start_step=5))
    assert len(resumed) == 7
    assert all(torch.equal(x[1], y[1]) and torch.equal(x[0], y[0]) for x, y in zip(full[5:], resumed))


def test_iter_captions_and_iter_eval(pattern):
    caps = list(iter_captions(pattern, limit=30))
    assert len(caps) == 30 and caps[0].endswith("#0") and caps[29].endswith("#29")
    assert list(itertools.islice(iter_captions(pattern, 1000), 200)) == list(iter_captions(pattern, 96))
    batches = list(iter_eval(pattern, image_size=24, batch_size=40))
    assert [b[0].shape[0] for b in batches] == [40, 40, 16]
    assert batches[0][2][0]["text"] == batches[0][1][0]


def test_bad_arguments(pattern):
    with pytest.raises(ValueError, match="no shards"):
        loader([])
    with pytest.raises(ValueError, match="ranks"):
        loader(pattern, rank=5, world_size=8)
    with pytest.raises(ValueError, match="less than one global batch"):
        loader(pattern, resampled=True, epoch_samples=4)


def test_resampling_over_only_unusable_samples_stops_with_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_UNUSABLE_IN_A_ROW", 7)
    bad = [dict(s, jpg=b"garbage") for s in concept_samples(0, 3)]
    write_shard(tmp_path / "wit-000000.tar", bad)
    with pytest.raises(RuntimeError, match="7 unusable samples in a row"):
        next(iter(loader(str(tmp_path / "wit-000000.tar"), resampled=True)))


def test_one_pass_ranks_with_unequal_shards_take_the_same_steps(tmp_path):
    """Three shards of 60, 20 and 16 samples on two ranks: one rank's share runs dry first. It reads its share again
    (counted) so both ranks take the epoch's steps, as DDP needs; a pass that suffices is
    read exactly once."""
    entries = []
    for k, n in enumerate((60, 20, 16)):
        name = f"wit-{k:06d}.tar"
        write_shard(tmp_path / name, concept_samples(k * 100, n))
        entries.append({"name": name, "samples": n, "bytes": (tmp_path / name).stat().st_size, "sha256": "0" * 64})
    write_manifest(str(tmp_path), entries, {}, {}, 0)
    steps, wrapped = [], []
    for rank in (0, 1):
        ld = loader(str(tmp_path), rank=rank, world_size=2)
        assert len(ld) == 6  # 96 // (8 * 2)
        seen = [c for _, t in ld for c in captions_of(t)]
        steps.append(len(seen) // 8)
        wrapped.append(ld.stats()["wrapped_shards"])
        if ld.stats()["wrapped_shards"] == 0:
            assert len(seen) == len(set(seen))  # its own share sufficed: read once
    assert steps == [6, 6]
    assert max(wrapped) > 0  # however the shards fall, one share holds fewer than 48 samples


def test_one_pass_share_with_nothing_readable_ends_instead_of_spinning(tmp_path):
    """A rank whose only shard is empty cannot fill its epoch by reading it again: the epoch
    ends short (the trainer then stops with 'loader ran dry') rather than looping for ever."""
    write_shard(tmp_path / "a.tar", concept_samples(0, 24))
    (tmp_path / "b.tar").write_bytes(b"")
    ld = loader([str(tmp_path / "a.tar"), str(tmp_path / "b.tar")], epoch_samples=24, batch_size=4,
                rank=1, world_size=2, train=False)  # unshuffled: rank 1's share is b.tar
    assert list(ld) == [] and ld.stats()["short_epochs"] == 1
