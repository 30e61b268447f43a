"""`wit train`: train CLIP on WebDataset shards. One flat loop, nanoGPT style.

    wit train --shards 'out/wit-{000000..000003}.tar' --config tiny --batch-size 64 \\
        --steps 300 --out runs/x
    torchrun --nproc_per_node 8 -m train.train --shards ... --config ViT-B/32 ...

`--batch-size` is per process and per micro-step; the global batch of one optimizer step is
batch_size * accum * world_size, and its negatives span all of it: features are all-gathered
across ranks, and `--accum k` caches the features of its k micro-batches (as open_clip does),
so the gradient is that of one batch k times as large, for one extra forward pass.
Defaults follow the CLIP paper (AdamW betas 0.9/0.98, eps 1e-6, wd 0.2, no gradient clipping,
temperature init 1/0.07 capped at 100).
Resuming (`--resume`) restores weights, optimizer, RNG states and the step; the loader is
rebuilt at the same position (seeded, resampled stream), so the next batch is the one an
uninterrupted run would have seen. An unreadable latest checkpoint is skipped for the one
before it. Without --resume, an --out that already holds a run is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.utils import clip_grads_with_norm_, get_total_norm

from train.args import check_values, device_problem, finite
from train.checkpoint import (
    BadCheckpoint,
    checkpoint_name,
    load_latest_readable,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from train.configs import CONFIGS, ModelConfig, get_config
from train.model import CLIP
from train.step import backward as step_backward
from train.tokenizer import Tokenizer, byte_tokenizer, train_bpe
from wit_pipeline.core.cli_help import HelpFormatter

log = logging.getLogger(__name__)

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="wit train", description=__doc__, formatter_class=HelpFormatter, allow_abbrev=False)
    p.add_argument("--shards", required=True, help="training shards: a shards folder (manifest.json), brace pattern, glob or comma-separated list")
    p.add_argument("--out", required=True, help="run directory: checkpoints, log.jsonl, tokenizer.json")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS), help="model size")
    p.add_argument("--context-length", type=int, default=None, help="override the config's text context length")
    p.add_argument("--batch-size", type=int, default=64, help="per process, per micro-step")
    p.add_argument("--accum", type=int, default=1,
                   help="micro-batches per optimizer step; the loss spans all of them (one extra forward each)")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps in the whole run")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (after warmup)")
    p.add_argument("--min-lr", type=float, default=0.0, help="cosine floor")
    p.add_argument("--warmup", type=int, default=None, help="linear warmup steps (default: 10%% of --steps)")
    p.add_argument("--wd", type=float, default=0.2, help="AdamW weight decay (not on gains, biases, logit_scale)")
    p.add_argument("--beta1", type=float, default=0.9, help="AdamW beta1")
    p.add_argument("--beta2", type=float, default=0.98, help="AdamW beta2 (CLIP's)")
    p.add_argument("--eps", type=float, default=1e-6, help="AdamW epsilon (CLIP's)")
    p.add_argument("--grad-clip", type=float, default=0.0, help="max gradient norm (0 = off, as in the paper)")
    p.add_argument("--seed", type=int, default=0, help="seeds the model, the data order and every crop")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes per rank")
    p.add_argument("--tokenizer", default="bpe", help="'bpe' (trained on the shards' captions), 'bytes', or a tokenizer JSON path")
    p.add_argument("--bpe-vocab", type=int, default=1024, help="BPE vocabulary size (CLIP's is 49408)")
    p.add_argument("--bpe-captions", type=int, default=20000, help="captions to train the BPE on")
    p.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (0: only at the end)")
    p.add_argument("--keep", type=int, default=2, help="step checkpoints to keep (0: all)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--stop-at", type=int, default=None, help="save and stop after this step (pre-emption drills)")
    p.add_argument("--log-every", type=int, default=1, help="steps between log.jsonl rows")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--eval-shards", default=None, help="held-out shards for zero-shot and retrieval")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: only at the end)")
    p.add_argument("--eval-batch-size", type=int, default=256, help="batch size of --eval-shards evaluation")
    p.add_argument("--decontaminate-eval", action="store_true",
                   help="leave out eval images within 4 pHash bits of a training image (reads --shards once)")
    p.add_argument("--zero-shot-classes", default=None, help="class names: a text file (one per line) or an allowlist TSV")
    p.add_argument("--zero-shot-templates", default=None, help="prompt templates, one per line, '{}' = class")
    p.add_argument("--label-from", choices=("text", "queries"), default="text",
                   help="zero-shot label: the class named in the caption, or among the sample's matched queries")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway when not on a terminal)")
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = max(1, args.steps // 10)
    check_values(p, _rules(args))
    if problem := device_problem(args.device, allow_index=False):
        p.error(problem)
    if args.zero_shot_templates:
        from train.evaluate import load_templates

        try:
            load_templates(args.zero_shot_templates)
        except ValueError as exc:
            p.error(f"--zero-shot-templates: {exc}")
    return args


def _rules(a: argparse.Namespace) -> list[tuple[str, object, bool, str]]:
    """(flag, value, fine?, what it must be) for every number `wit train` takes."""
    def at_least(flag: str, n: int) -> tuple[str, object, bool, str]:
        value = getattr(a, flag[2:].replace("-", "_"))
        return flag, value, value >= n, f">= {n}"

    return [
        *(at_least(f, 1) for f in ("--steps", "--batch-size", "--accum", "--log-every", "--eval-batch-size", "--bpe-captions")),
        *(at_least(f, 0) for f in ("--warmup", "--workers", "--save-every", "--keep", "--threads", "--eval-every")),
        ("--bpe-vocab", a.bpe_vocab, a.bpe_vocab >= 259, ">= 259 (256 bytes and 3 special tokens)"),
        ("--stop-at", a.stop_at, a.stop_at is None or a.stop_at >= 1, ">= 1"),
        ("--context-length", a.context_length, a.context_length is None or a.context_length >= 2,
         ">= 2 (room for the start and end tokens)"),
        ("--lr", a.lr, finite(a.lr) and a.lr > 0, "a positive number"),
        ("--min-lr", a.min_lr, finite(a.min_lr) and 0 <= a.min_lr <= a.lr, "a number in 0..--lr"),
        ("--wd", a.wd, finite(a.wd) and a.wd >= 0, "a number >= 0"),
        ("--beta1", a.beta1, 0 <= a.beta1 < 1, "in [0, 1)"),
        ("--beta2", a.beta2, 0 <= a.beta2 < 1, "in [0, 1)"),
        ("--eps", a.eps, finite(a.eps) and a.eps > 0, "a positive number"),
        ("--grad-clip", a.grad_clip, finite(a.grad_clip) and a.grad_clip >= 0, "a number >= 0 (0: off)"),
    ]


def lr_at(step: int, *, lr: float, min_lr: float, warmup: int, steps: int) -> float:
    """Linear warmup to `lr`, then cosine decay to `min_lr` at `steps` (step counts from 0)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip's split: no decay on gains, biases, class token and logit_scale (ndim < 2)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "logit_scale" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_distributed(device_arg: str) -> tuple[int, int, torch.device]:
    """(rank, world_size, device); joins the process group when torchrun set WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device_arg == "auto" else device_arg.startswith("cuda")
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return rank, world, device


def load_tokenizer(spec: str, shards: str, vocab: int, limit: int) -> Tokenizer:
    if spec == "bytes":
        return byte_tokenizer()
    if spec == "bpe":
        from train.data import iter_captions

        return train_bpe(iter_captions(shards, limit), vocab)
    return Tokenizer.from_json(Path(spec).read_text(encoding="utf-8"))


def evaluate(model: CLIP, tokenizer: Tokenizer, args: argparse.Namespace, image_size: int,
             exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Zero-shot (when classes are given) and retrieval metrics on --eval-shards, flattened for the log."""
    from train import evaluate as ev

    metrics: dict[str, Any] = {}
    was_training = model.training
    model.eval()
    if args.zero_shot_classes:
        classes = ev.load_classnames(args.zero_shot_classes)
        templates = ev.load_templates(args.zero_shot_templates)
        label_fn = ev.caption_label_fn(classes) if args.label_from == "text" else ev.query_label_fn(classes)
        try:
            zs = ev.zero_shot(model, tokenizer, args.eval_shards, classes, templates, label_fn, image_size,
                              args.eval_batch_size, exclude)
            metrics.update({f"zero_shot/{k}": zs[k] for k in ("top1", "top5", "n", "chance")})
        except ev.NoLabelledSamples as exc:  # say so, keep training
            log.warning("zero-shot skipped: %s", exc)
    rt = ev.retrieval(model, tokenizer, args.eval_shards, image_size, args.eval_batch_size, exclude)
    metrics.update({f"retrieval/{k}": v for k, v in rt.items() if isinstance(v, (int, float))})
    model.train(was_training)
    return metrics


def _stream_shape(args: argparse.Namespace, world: int) -> dict[str, Any]:
    """What fixes the data stream: the resumed loader replays it from these."""
    return {"seed": args.seed, "world_size": world, "accum": args.accum, "batch_size": args.batch_size,
            "workers": args.workers}


def check_same_stream(doc: dict[str, Any], args: argparse.Namespace, world: int, tokenizer: Tokenizer) -> None:
    """--resume continues the saved data stream only with the same stream shape and tokenizer:
    refuse instead of silently training on another sequence of batches."""
    saved = doc.get("data_state") or {}
    now = _stream_shape(args, world)
    changed = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in now if k in saved and saved[k] != now[k]]
    if changed:
        raise ValueError("--resume with another data stream than the checkpoint's: " + ", ".join(changed)
                         + " (resume with the same options, or start a new --out)")
    want = (doc.get("extra") or {}).get("tokenizer_sha256")
    if want and want != tokenizer.sha256:
        raise ValueError(f"--resume: the checkpoint's tokenizer hashes to {tokenizer.sha256}, but it was saved as {want}")


def agree_on_resume_step(step: int, device: torch.device, refuse: bool = False) -> bool:
    """Every rank must resume from the same step: a node that cannot see the checkpoints
    (--out on a machine-local disk) would otherwise start over and hang the collectives.
    Also returns whether any rank refuses to start (so all of them stop, none hangs)."""
    t = torch.tensor([step, -step, int(refuse)], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if int(t[0]) != -int(t[1]):
        raise RuntimeError(
            f"--resume: ranks found checkpoints from step {-int(t[1])} to step {int(t[0])} (this rank: {step}); "
            "--out must be a folder every node shares"
        )
    return bool(t[2])


def existing_run(out: Path) -> list[str]:
    """What in `out` shows an earlier run (its log and checkpoints): a new run must not mix with it."""
    return [p.name for p in sorted(out.glob("step-*.pt"))[-1:]] + (["log.jsonl"] if (out / "log.jsonl").exists() else [])


def resume_point(out: Path, say: bool) -> tuple[Path | None, dict[str, Any] | None]:
    """(checkpoint, its contents) to resume from, newest readable first; says (on rank 0) when it
    skips an unreadable one or finds none."""
    found = load_latest_readable(out)
    if found is None:
        if say:
            print(f"wit train: --resume: no checkpoint in {out}; starting at step 0", file=sys.stderr, flush=True)
        return None, None
    path, doc, skipped = found
    if say:
        for reason in skipped:
            print(f"wit train: --resume: skipping {reason}", file=sys.stderr)
        if skipped:
            print(f"wit train: --resume: falling back to {path.name} (step {doc['step']})", file=sys.stderr, flush=True)
    return path, doc


def _json_row(line: str) -> dict[str, Any] | None:
    """A log.jsonl row, or None for a blank line or one a kill cut short."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


class Logger:
    """JSONL per step (rank 0), mirrored to TensorBoard when it is installed.

    On resume from step k, rows after k (logged by the run that died after its last
    checkpoint) are dropped first, so each step appears once."""

    def __init__(self, out: Path, enabled: bool, resume_step: int | None = None) -> None:
        self.enabled = enabled
        path = out / "log.jsonl"
        if enabled and resume_step is not None and path.exists():
            kept = [r for r in path.read_text(encoding="utf-8").splitlines(keepends=True)
                    if (row := _json_row(r)) is not None and row.get("step", 0) <= resume_step]
            path.write_text("".join(kept), encoding="utf-8")
        self.file = open(path, "a", encoding="utf-8") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except Exception:  # tensorboard not installed: JSONL is the record
                self.tb = None

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(row, sort_keys=True) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the loop; returns {'step', 'loss', 'metrics', 'checkpoint'} (rank 0's view)."""
    from train.data import BadData, make_loader

    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = setup_distributed(args.device)
    master = rank == 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)

    ckpt, resume_doc = resume_point(out, master) if args.resume else (None, None)
    earlier = [] if args.resume else existing_run(out)
    if world > 1:
        refuse = agree_on_resume_step(int(resume_doc["step"]) if resume_doc is not None else 0, device, bool(earlier))
    else:
        refuse = bool(earlier)
    if refuse:
        raise SystemExit(f"wit train: --out {out} already holds a run ({', '.join(earlier) or 'on another rank'}): "
                         "add --resume to continue it, or choose a new --out")
    if resume_doc is not None:
        saved = resume_doc["config"].get("config_name")
        if saved != args.config:
            raise ValueError(f"--resume: {ckpt} is a {saved!r} model, not --config {args.config!r}")
        tokenizer = Tokenizer.from_json(resume_doc["tokenizer_json"])
        check_same_stream(resume_doc, args, world, tokenizer)
        cfg = ModelConfig.from_dict(resume_doc["config"]["model"])
    else:
        tokenizer = load_tokenizer(args.tokenizer, args.shards, args.bpe_vocab, args.bpe_captions)
        cfg = get_config(args.config).replace(vocab_size=tokenizer.vocab_size)
        if args.context_length:
            cfg = cfg.replace(context_length=args.context_length)
    if master:
        (out / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")

    model = CLIP(cfg, eot_id=tokenizer.eot_id).to(device)
    optimizer = torch.optim.AdamW(
        param_groups(model, args.wd), lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps
    )
    step = 0
    last_stop = min(args.steps, args.stop_at) if args.stop_at else args.steps
    if resume_doc is not None:
        step = int(resume_doc["step"])
        if step >= last_stop and closed_at(out, step):  # nothing left: no NaN loss, no second final row
            if master:
                print(f"wit train: --resume: the run in {out} already stopped at step {step}; nothing to do",
                      file=sys.stderr, flush=True)
            return {"step": step, "loss": last_loss(out, step), "metrics": {}, "checkpoint": str(ckpt)}
        model.load_state_dict(resume_doc["model"])
        optimizer.load_state_dict(resume_doc["optimizer"])
        set_rng_state(resume_doc["rng"])
        del resume_doc
    raw_model = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:
        model = torch.compile(model)
    autocast = (
        functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16) if device.type == "cuda"
        else contextlib.nullcontext
    )

    loader = make_loader(
        args.shards,
        tokenizer=tokenizer,
        image_size=cfg.image_size,
        batch_size=args.batch_size,
        train=True,
        workers=args.workers,
        resampled=True,
        seed=args.seed,
        rank=rank,
        world_size=world,
        start_step=step * args.accum,  # batches this rank has already consumed
        context_length=cfg.context_length,
    )
    batches = iter(loader)
    logger = Logger(out, master, resume_step=step if args.resume else None)
    exclude: frozenset[str] = frozenset()
    if master and args.eval_shards and args.decontaminate_eval:
        from train.decontaminate import decontaminate

        exclude, report = decontaminate(args.eval_shards, args.shards)
        logger.log({"step": step, **{f"decontamination/{k}": v for k, v in report.items() if isinstance(v, int)}})
    config_doc = {"model": cfg.to_dict(), "config_name": args.config, "train": {k: v for k, v in vars(args).items() if v is None or isinstance(v, (str, int, float, bool))}}
    schedule = dict(lr=args.lr, min_lr=args.min_lr, warmup=args.warmup, steps=args.steps)
    progress = None
    if master and not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=args.steps, initial=step, desc="train", unit="step", disable=None)  # None: off in logs

    def checkpoint(at: int) -> Path:
        path = out / checkpoint_name(at)
        if master:
            save_checkpoint(
                path, model=raw_model, optimizer=optimizer, step=at, rng=rng_state(),
                data_state={"start_step": at * args.accum, **_stream_shape(args, world)},
                config=config_doc, tokenizer_json=tokenizer.to_json(),
                extra={"tokenizer_sha256": tokenizer.sha256, "loader": _loader_stats(loader)},
            )
            if args.keep:
                olds = sorted(out.glob("step-*.pt"))[: -args.keep]
                for old in olds:
                    old.unlink(missing_ok=True)
        if world > 1:
            dist.barrier()
        return path

    metrics: dict[str, Any] = {}
    loss_value = last_loss(out, step) if step else None  # resumed at its last step: the loss it logged
    last_ckpt: Path | None = ckpt  # resumed at its last step (killed before its final row): not saved again
    model.train()
    while step < last_stop:
        t0 = time.perf_counter()
        lr = lr_at(step, **schedule)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro_batches = []
        for _ in range(args.accum):
            try:
                images, tokens = next(batches)
            except StopIteration:
                raise BadData(f"the loader ran dry at step {step}: {_loader_stats(loader)}") from None
            micro_batches.append((images.to(device, non_blocking=True), tokens.to(device, non_blocking=True)))
        loss = step_backward(model, micro_batches, autocast)
        del micro_batches
        grads = [p.grad for p in raw_model.parameters() if p.grad is not None]
        grad_norm = get_total_norm(grads)
        if args.grad_clip > 0:
            clip_grads_with_norm_(raw_model.parameters(), args.grad_clip, grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        raw_model.clamp_logit_scale_()  # the paper's cap: the scale never exceeds 100
        step += 1

        if world > 1:
            dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} at step {step}")
        dt = time.perf_counter() - t0
        if step % args.log_every == 0 or step == last_stop:
            scale = raw_model.logit_scale.exp().item()
            row = {
                "step": step, "loss": loss_value, "lr": lr, "logit_scale": scale, "temperature": 1.0 / scale,
                "samples_per_s": args.batch_size * args.accum * world / dt, "grad_norm": float(grad_norm),
            }
            logger.log(row)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
        if args.save_every and step % args.save_every == 0 and step < last_stop:
            last_ckpt = checkpoint(step)
        if args.eval_shards and args.eval_every and step % args.eval_every == 0 and step < args.steps:
            if master:
                metrics = evaluate(raw_model, tokenizer, args, cfg.image_size, exclude)
                logger.log({"step": step, **metrics})
            if world > 1:
                dist.barrier()

    if step > 0 and (last_ckpt is None or last_ckpt.name != checkpoint_name(step)):
        last_ckpt = checkpoint(step)
    if progress is not None:
        progress.close()
    if step >= args.steps and args.eval_shards:
        if master:
            metrics = evaluate(raw_model, tokenizer, args, cfg.image_size, exclude)
            logger.log({"step": step, **metrics})
        if world > 1:
            dist.barrier()
    if master:
        logger.log({"step": step, "final": step >= args.steps, "loader": _loader_stats(loader)})
    logger.close()
    return {"step": step, "loss": loss_value, "metrics": metrics, "checkpoint": str(last_ckpt) if last_ckpt else None}


def _log_rows(out: Path) -> list[dict[str, Any]]:
    path = out / "log.jsonl"
    if not path.exists():
        return []
    return [row for line in path.read_text(encoding="utf-8").splitlines() if (row := _json_row(line)) is not None]


def closed_at(out: Path, step: int) -> bool:
    """Whether log.jsonl holds the closing row (`final`) a run writes when it stops at `step`."""
    return any(row.get("step") == step and "final" in row for row in _log_rows(out))


def last_loss(out: Path, step: int) -> float | None:
    """The loss log.jsonl records for `step` (None when it has none)."""
    losses = [row["loss"] for row in _log_rows(out) if row.get("step") == step and "loss" in row]
    return losses[-1] if losses else None


def _loader_stats(loader: Any) -> dict[str, Any]:
    stats = getattr(loader, "stats", None)
    return dict(stats()) if callable(stats) else {}


def run(argv: list[str] | None = None) -> int:
    from train.data import BadData, check_shards

    args = parse_args(argv)
    try:
        for what in ("shards", "eval_shards"):
            if getattr(args, what):
                check_shards(getattr(args, what))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"wit train: --{what.replace('_', '-')}: {exc}") from exc
    caller_group = dist.is_available() and dist.is_initialized()
    try:
        summary = train(args)
    except BadCheckpoint as exc:
        raise SystemExit(f"wit train: --resume: {exc}") from None
    except (ValueError, FloatingPointError, BadData) as exc:  # a refused resume, unusable data, a diverged loss
        raise SystemExit(f"wit train: {exc}") from None
    finally:
        if not caller_group and dist.is_available() and dist.is_initialized():  # only the group train() made
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
