"""Training-step samples/s and loader images/s on CPU: wit's trainer vs open_clip's, same run.

(a) One optimiser step (forward, CLIP loss, backward, AdamW) on the same random batch:
    `train.model.CLIP` + `train.loss.clip_loss` vs `open_clip.CLIP` built from the matching
    vision/text config + `open_clip.ClipLoss`, for the `tiny` and `small` configs.
(b) Loader images/s over the same generated WebDataset shards: `train.data.make_loader` vs
    open_clip's `open_clip_train.data.get_wds_dataset` (torchvision `image_transform`,
    its own CLIP tokenizer), same batch size, workers, resampled epoch length.

Every measurement runs in a fresh subprocess with the same thread count, alternating sides,
best of `--repeats`. open_clip needs torchvision, so its side runs in a separate venv
(`bench/requirements-openclip.txt`: torch 2.14.1, as torchvision's wheels need). The training
step of both sides runs on that venv's torch (ours needs nothing but torch and this checkout),
so the model comparison is one torch build; our loader runs in the project's venv.

    python3 -m venv /work/benchvenv
    /work/benchvenv/bin/pip install -r bench/requirements-openclip.txt

    /work/venv/bin/python bench/train.py            # about three minutes on 2 cores
    /work/venv/bin/python bench/train.py --full     # more steps, bigger shards

`--openclip-python` (or WIT_BENCH_PYTHON) points at that venv's python. The last line is
`ratio: <training-step ratio>`: the geometric mean over configs of our samples/s divided by
open_clip's (>1 means we are faster). Numbers on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and `import train` would find this file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


# --- measurements (each runs in its own subprocess: `--side ours|openclip --task step|loader`) ---


def _random_batch(cfg: dict, batch: int, eot_id: int):
    import torch

    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, cfg["image_size"], cfg["image_size"], generator=g)
    tokens = torch.randint(3, cfg["vocab_size"], (batch, cfg["context_length"]), generator=g)
    tokens[:, cfg["context_length"] // 2] = eot_id
    tokens[:, cfg["context_length"] // 2 + 1 :] = 0
    return images, tokens


def _time_steps(step, steps: int, warmup: int, batch: int) -> float:
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


def step_ours(cfg: dict, batch: int, steps: int, warmup: int) -> float:
    import torch

    from train.configs import ModelConfig
    from train.loss import clip_loss
    from train.model import CLIP

    torch.manual_seed(0)
    model = CLIP(ModelConfig.from_dict(cfg), eot_id=2).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images, tokens = _random_batch(cfg, batch, eot_id=2)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        img, txt, scale = model(images, tokens)
        clip_loss(img, txt, scale).backward()
        opt.step()

    return _time_steps(step, steps, warmup, batch)


def step_openclip(cfg: dict, batch: int, steps: int, warmup: int) -> float:
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=cfg["embed_dim"],
        vision_cfg=dict(image_size=cfg["image_size"], patch_size=cfg["patch_size"], width=cfg["vision_width"],
                        layers=cfg["vision_layers"], head_width=cfg["vision_width"] // cfg["vision_heads"]),
        text_cfg=dict(context_length=cfg["context_length"], vocab_size=cfg["vocab_size"], width=cfg["text_width"],
                      heads=cfg["text_heads"], layers=cfg["text_layers"]),
        output_dict=False,
    ).train()
    loss_fn = open_clip.ClipLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images, tokens = _random_batch(cfg, batch, eot_id=cfg["vocab_size"] - 1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        img, txt, scale = model(images, tokens)[:3]  # output_dict=False: (image, text, logit_scale.exp())
        loss_fn(img, txt, scale).backward()
        opt.step()

    return _time_steps(step, steps, warmup, batch)


def loader_ours(shards: str, image_size: int, batch: int, workers: int, samples: int, context_length: int) -> float:
    from train.data import iter_captions, make_loader
    from train.tokenizer import train_bpe

    tok = train_bpe(iter_captions(shards, 2000), 1024)
    t0 = time.perf_counter()
    loader = make_loader(shards, tokenizer=tok, image_size=image_size, batch_size=batch, train=True, workers=workers,
                         resampled=True, epoch_samples=samples, context_length=context_length)
    n = sum(images.shape[0] for images, _ in loader)
    return n / (time.perf_counter() - t0)


def loader_openclip(shards: str, image_size: int, batch: int, workers: int, samples: int, context_length: int) -> float:
    import functools
    from argparse import Namespace

    import open_clip
    import open_clip_train.data as oc_data
    from webdataset.tariterators import tar_file_expander

    # webdataset 0.2.111 (the version img2dataset pins) ends each shard with an `{}` marker that
    # open_clip's group_by_keys_nothrow predates; turn the marker off so its pipeline runs as written.
    oc_data.tar_file_expander = functools.partial(tar_file_expander, eof_value=None)
    get_wds_dataset = oc_data.get_wds_dataset

    preprocess = open_clip.image_transform(image_size, is_train=True)  # RandomResizedCrop(scale=(0.9, 1.0)), bicubic
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=context_length)
    args = Namespace(train_data=shards, val_data=None, train_num_samples=samples, val_num_samples=None,
                     dataset_resampled=True, train_data_upsampling_factors=None, seed=0, batch_size=batch,
                     workers=workers, world_size=1, rank=0)
    t0 = time.perf_counter()
    data = get_wds_dataset(args, preprocess, is_train=True, epoch=0, tokenizer=tokenizer)
    n = sum(images.shape[0] for images, _ in data.dataloader)
    return n / (time.perf_counter() - t0)


def _side(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    fn = {("ours", "step"): step_ours, ("openclip", "step"): step_openclip,
          ("ours", "loader"): loader_ours, ("openclip", "loader"): loader_openclip}[(args.side, args.task)]
    print(json.dumps({"rate": fn(**spec)}))


# --- orchestration ---


def make_shards(out: Path, shards: int, per_shard: int, size: tuple[int, int]) -> str:
    """Concept images at web-like size, written as wit's final shards (jpg/txt/json)."""
    import random

    import webdataset as wds

    from wit_pipeline.core import keys
    from wit_pipeline.synthetic.concepts import all_concepts, caption_for
    from wit_pipeline.synthetic.images import encode, render

    concepts = all_concepts()
    for s in range(shards):
        with wds.TarWriter(str(out / f"wit-{s:06d}.tar")) as w:
            for i in range(s * per_shard, (s + 1) * per_shard):
                c = concepts[(i * 37) % len(concepts)]
                text = caption_for(c, random.Random(i))
                url = f"http://img.test/{i}.jpg"
                key = keys.sample_key(url, text)
                w.write({"__key__": key, "jpg": encode(render(c, size, seed=i), quality=85), "txt": text,
                         "json": json.dumps({"key": key, "url": url, "text": text})})
    return str(out / f"wit-{{000000..{shards - 1:06d}}}.tar")


def _run(python: str, side: str, task: str, spec: dict, threads: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT) if side == "ours" else "", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=str(threads))
    cmd = [python, str(Path(__file__).resolve()), "--side", side, "--task", task, "--spec", json.dumps(spec),
           "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT if side == "ours" else "/")
    if out.returncode:
        raise RuntimeError(f"{side} {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def _best_of(args: argparse.Namespace, task: str, spec: dict) -> tuple[float, float]:
    """Best rate of each side over `--repeats` alternating runs: the least disturbed by other load."""
    # The step needs only torch: run ours on the bench venv's torch too, so both use one build.
    our_python = args.openclip_python if task == "step" else sys.executable
    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(_run(our_python, "ours", task, spec, args.threads))
        theirs.append(_run(args.openclip_python, "openclip", task, spec, args.threads))
    return max(ours), max(theirs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", choices=("ours", "openclip"))
    p.add_argument("--task", choices=("step", "loader"))
    p.add_argument("--spec", default="{}")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per process (1: steadiest on a shared machine; the loader's workers use 1 each)")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs per side; the best rate counts")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--full", action="store_true", help="more steps and samples (slower, steadier)")
    p.add_argument("--openclip-python", default=os.environ.get("WIT_BENCH_PYTHON", "/work/benchvenv/bin/python"))
    args = p.parse_args(argv)
    if args.side:
        _side(args)
        return 0
    if not Path(args.openclip_python).exists():
        p.error(f"{args.openclip_python} not found: create the open_clip venv (see this file's docstring)")
    sys.path.insert(0, str(ROOT))
    from train.configs import CONFIGS

    plan = {"tiny": dict(batch=64, steps=40 if args.full else 15), "small": dict(batch=32, steps=12 if args.full else 4)}
    step_ratios = []
    for name, pl in plan.items():
        cfg = CONFIGS[name].to_dict()
        spec = dict(cfg=cfg, batch=pl["batch"], steps=pl["steps"], warmup=2)
        ours, theirs = _best_of(args, "step", spec)
        step_ratios.append(ours / theirs)
        print(f"train step {name:5s} batch {pl['batch']:3d}: wit {ours:8.1f} samples/s  open_clip {theirs:8.1f} samples/s  "
              f"ratio {ours / theirs:.2f}", flush=True)

    per_shard, n_shards = (256, 8) if args.full else (96, 4)
    with tempfile.TemporaryDirectory(prefix="wit-bench-train-") as tmp:
        shards = make_shards(Path(tmp), n_shards, per_shard, (512, 384))
        samples = per_shard * n_shards * 3  # resampled: long enough that the shuffle buffer's fill is not all
        for name in ("tiny", "small"):
            cfg = CONFIGS[name]
            spec = dict(shards=shards, image_size=cfg.image_size, batch=32, workers=args.workers, samples=samples,
                        context_length=cfg.context_length)
            ours, theirs = _best_of(args, "loader", spec)
            print(f"loader {name:5s} {cfg.image_size:3d}px 512x384 jpeg, {args.workers} workers: wit {ours:7.1f} images/s  "
                  f"open_clip {theirs:7.1f} images/s  ratio {ours / theirs:.2f}", flush=True)
    ratio = math.exp(sum(math.log(r) for r in step_ratios) / len(step_ratios))
    print(f"ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
