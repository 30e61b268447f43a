"""Zero-shot classification and image-text retrieval on held-out shards (`wit eval`).

Zero-shot follows the CLIP paper: a class's text embedding is the mean of its L2-normalised
prompt embeddings (one per template), renormalised; an image is assigned the class of
highest cosine similarity. A shard sample's labels come from its json (`label_fn`): by
default the one class name that occurs in the caption (the allowlist's matching rule, so
class names in any language and script work) (samples with none or
several are counted, not guessed); with `--label-from queries` every class among the
sample's matched allowlist queries, and a prediction is right if it is any of them (an
allowlist's queries overlap: "red", "star", "red star"), with chance scored the same way.
Everything runs on the model's device.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import fsspec
import torch
import torch.nn.functional as F

from train.args import check_values, device_problem
from train.data import DEFAULT_CONTEXT_LENGTH, BadData, iter_eval
from train.decontaminate import DEFAULT_MAX_DISTANCE, decontaminate
from wit_pipeline.core import fsio
from wit_pipeline.core.cli_help import HelpFormatter
from wit_pipeline.image import neardup
from wit_pipeline.text import textnorm
from wit_pipeline.text.allowlist import HEADER, decode_utf8, parse_allowlist
from wit_pipeline.text.matcher import QueryMatcher

# A handful of CLIP's ImageNet prompt templates; '{}' is the class name.
DEFAULT_TEMPLATES: list[str] = [
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a good photo of a {}.",
    "a rendering of a {}.",
]
RECALL_AT = (1, 5, 10)


def load_classnames(path_or_allowlist: str) -> list[str]:
    """Class names from a text file (one per line, '#' comments) or the queries of an allowlist TSV."""
    with fsspec.open(path_or_allowlist, "rb") as f:
        text = decode_utf8(f.read(), path_or_allowlist)
    if text.startswith("\t".join(HEADER)):  # an allowlist: its queries, read as every stage reads them
        names = parse_allowlist(text, allow_duplicates=True, name=path_or_allowlist).queries
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise ValueError(f"{path_or_allowlist}: duplicate class names {dupes[:5]}")
    if not names:
        raise ValueError(f"{path_or_allowlist}: no class names")
    return names


LabelFn = Callable[[dict], "frozenset[int] | None"]


class NoLabelledSamples(ValueError):
    """No held-out sample names any of the classes: there is no accuracy to report."""


def load_templates(path: str | None) -> list[str]:
    """Prompt templates from a file (one per line, '{}' = the class name), or CLIP-style ones."""
    if not path:
        return list(DEFAULT_TEMPLATES)
    with fsspec.open(path, "rt", encoding="utf-8") as f:
        templates = [line.strip() for line in f if line.strip()]
    if not templates or not all("{}" in t for t in templates):
        raise ValueError(f"{path}: every template needs a '{{}}' for the class name")
    return templates


def caption_label_fn(classnames: Sequence[str]) -> LabelFn:
    """Label = the one class whose name occurs in the sample's `text` by the allowlist's matching
    rule (whole words; inside a run of an unspaced script for a Chinese, Japanese or Thai name)."""
    matcher = QueryMatcher.from_queries(list(classnames))

    def label(sample_json: dict) -> frozenset[int] | None:
        hits = matcher.match(str(sample_json.get("text", "")))
        return frozenset(hits) if len(hits) == 1 else None

    return label


def query_label_fn(classnames: Sequence[str]) -> LabelFn:
    """Labels = every class among the sample's matched allowlist `queries` (None if none)."""
    index = {textnorm.normalize(c): i for i, c in enumerate(classnames)}

    def label(sample_json: dict) -> frozenset[int] | None:
        hits = {index[q] for q in (textnorm.normalize(str(q)) for q in sample_json.get("queries") or []) if q in index}
        return frozenset(hits) or None

    return label


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _context_length(model: torch.nn.Module) -> int:
    inner = getattr(model, "module", model)
    cfg = getattr(inner, "cfg", None)
    return int(getattr(cfg, "context_length", 0) or getattr(getattr(inner, "text", None), "context_length", 0) or DEFAULT_CONTEXT_LENGTH)


@torch.inference_mode()
def class_embeddings(model: torch.nn.Module, tokenizer: Any, classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """[C, D]: per class, the renormalised mean of its normalised template embeddings."""
    ctx, device = _context_length(model), _device(model)
    out = []
    for name in classnames:
        tokens = tokenizer.encode([t.format(name) for t in templates], ctx).to(device)
        emb = F.normalize(model.encode_text(tokens).float(), dim=-1)
        out.append(F.normalize(emb.mean(dim=0), dim=-1))
    return torch.stack(out)


@torch.inference_mode()
def zero_shot(
    model: torch.nn.Module,
    tokenizer: Any,
    shards: str | list[str],
    classnames: list[str],
    templates: list[str],
    label_fn: LabelFn | None,
    image_size: int,
    batch_size: int = 64,
    exclude: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Top-1/top-5 accuracy over the labelled samples of `shards`; per-class counts for
    single-label samples. Raises ValueError when no sample has a label: a 0% would lie."""
    if not classnames or not templates:
        raise ValueError("zero_shot needs class names and templates")
    label_fn = label_fn or caption_label_fn(classnames)
    classes = class_embeddings(model, tokenizer, classnames, templates)
    device = classes.device
    k = min(5, len(classnames))
    counts: Counter = Counter()
    n = correct1 = correctk = 0
    chance = 0.0
    per_class = {c: {"n": 0, "correct": 0} for c in classnames}
    for images, _, metas in iter_eval(shards, image_size, batch_size, counts, exclude):
        labels = [label_fn(m) for m in metas]
        keep = [i for i, y in enumerate(labels) if y]
        counts["unlabelled"] += len(labels) - len(keep)
        if not keep:
            continue
        target = torch.zeros(len(keep), len(classnames), dtype=torch.bool)
        for row, i in enumerate(keep):
            target[row, list(labels[i])] = True
        target = target.to(device)
        logits = F.normalize(model.encode_image(images[keep].to(device)).float(), dim=-1) @ classes.T
        topk = logits.topk(k, dim=-1).indices
        hit1 = target.gather(1, topk[:, :1]).squeeze(1)
        n += len(keep)
        correct1 += int(hit1.sum())
        correctk += int(target.gather(1, topk).any(dim=-1).sum())
        chance += float(target.sum()) / len(classnames)
        for i, ok in zip(keep, hit1.tolist()):
            if len(labels[i]) == 1:
                (label,) = labels[i]
                per_class[classnames[label]]["n"] += 1
                per_class[classnames[label]]["correct"] += int(ok)
    skipped = {k_.split(".", 1)[1]: v for k_, v in sorted(counts.items()) if k_.startswith("skipped.")}
    if not n:
        raise NoLabelledSamples(f"no sample of {shards!r} names any of the {len(classnames)} classes "
                         f"({counts['unlabelled']} unlabelled): nothing to score")
    return {
        "top1": correct1 / n,
        "top5": correctk / n,  # top-min(5, classes)
        "n": n,
        "classes": len(classnames),
        "chance": chance / n,  # of a uniform guess being one of a sample's labels
        "unlabelled": counts["unlabelled"],
        "skipped": skipped,
        "per_class": {c: v for c, v in per_class.items() if v["n"]},
    }


def recall_at_k(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: Sequence[int] = RECALL_AT, chunk: int = 1024) -> dict[str, float]:
    """Recall@k both ways for paired rows; a tie with the true partner counts for it (a duplicate is a hit).

    Computed in row chunks so N x N similarities never sit in memory at once.
    """
    n = image_emb.shape[0]
    if n == 0 or text_emb.shape[0] != n:
        raise ValueError(f"need equal, non-zero numbers of image and text embeddings, got {n} and {text_emb.shape[0]}")
    out: dict[str, float] = {}
    for name, a, b in (("image_to_text", image_emb, text_emb), ("text_to_image", text_emb, image_emb)):
        ranks = []
        for start in range(0, n, chunk):
            sims = a[start : start + chunk] @ b.T
            true = sims[torch.arange(sims.shape[0]), torch.arange(start, start + sims.shape[0])]
            ranks.append((sims > true[:, None]).sum(dim=1))
        rank = torch.cat(ranks)
        for k in ks:
            out[f"{name}_R@{k}"] = float((rank < k).float().mean())
    return out


@torch.inference_mode()
def retrieval(model: torch.nn.Module, tokenizer: Any, shards: str | list[str], image_size: int, batch_size: int = 64,
              exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Image->text and text->image recall@1/5/10 over every usable (image, caption) of `shards`."""
    ctx, device = _context_length(model), _device(model)
    images_emb, texts_emb = [], []
    counts: Counter = Counter()
    for images, captions, _ in iter_eval(shards, image_size, batch_size, counts, exclude):
        images_emb.append(F.normalize(model.encode_image(images.to(device)).float(), dim=-1))
        texts_emb.append(F.normalize(model.encode_text(tokenizer.encode(captions, ctx).to(device)).float(), dim=-1))
    if not images_emb:
        raise ValueError(f"no usable samples in {shards!r}")
    metrics: dict[str, Any] = recall_at_k(torch.cat(images_emb), torch.cat(texts_emb))
    metrics["n"] = sum(e.shape[0] for e in images_emb)
    metrics["skipped"] = {k.split(".", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("skipped.")}
    return metrics


def run(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="wit eval", description="Zero-shot accuracy and retrieval recall of a checkpoint.",
                                formatter_class=HelpFormatter, allow_abbrev=False)
    p.add_argument("--checkpoint", required=True, help="a step-*.pt written by `wit train`")
    p.add_argument("--shards", required=True, help="held-out shards: a folder, 'out/wit-{000000..000003}.tar', a glob or a comma-separated list")
    p.add_argument("--classes", default=None, help="class names: a text file (one per line) or an allowlist TSV")
    p.add_argument("--templates", default=None, help="prompt templates, one per line, '{}' = class (default: CLIP-style)")
    p.add_argument("--label-from", choices=("text", "queries"), default="text",
                   help="label a sample by the class named in its caption, or among its matched queries")
    p.add_argument("--train-shards", default=None,
                   help="the shards the model trained on: leave out every eval image within --max-distance pHash "
                   "bits of one of their images (curate's rule), and report how many")
    p.add_argument("--max-distance", type=int, default=DEFAULT_MAX_DISTANCE, help="pHash distance for --train-shards")
    p.add_argument("--no-retrieval", action="store_true")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N")
    p.add_argument("--out", default=None, help="write metrics JSON here (printed either way)")
    args = p.parse_args(argv)
    check_values(p, [
        ("--max-distance", args.max_distance, 0 <= args.max_distance < neardup.BITS,
         f"in 0..{neardup.BITS - 1} (bits of a pHash; curate's rule)"),
        ("--batch-size", args.batch_size, args.batch_size >= 1, ">= 1"),
        ("--threads", args.threads, args.threads >= 0, ">= 0 (0: torch's default)"),
    ])
    if problem := device_problem(args.device):
        p.error(problem)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args)
    except (OSError, ValueError, BadData) as exc:  # unreadable checkpoint, missing shards, bad class file: one line
        raise SystemExit(f"wit eval: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from train.checkpoint import load_model
    from train.data import check_shards

    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    check_shards(args.shards)
    model, tokenizer = load_model(args.checkpoint)
    model = model.to(device)
    image_size = model.cfg.image_size
    metrics: dict[str, Any] = {"checkpoint": args.checkpoint, "shards": args.shards}
    exclude: frozenset[str] = frozenset()
    if args.train_shards:
        check_shards(args.train_shards)
        exclude, metrics["decontamination"] = decontaminate(args.shards, args.train_shards, args.max_distance)
    if args.classes:
        classes = load_classnames(args.classes)
        templates = load_templates(args.templates)
        label_fn = caption_label_fn(classes) if args.label_from == "text" else query_label_fn(classes)
        metrics["zero_shot"] = zero_shot(model, tokenizer, args.shards, classes, templates, label_fn, image_size,
                                         args.batch_size, exclude)
    if not args.no_retrieval:
        metrics["retrieval"] = retrieval(model, tokenizer, args.shards, image_size, args.batch_size, exclude)
    text = json.dumps(metrics, indent=2)
    if args.out:
        fsio.write_json(args.out, metrics)
    print(text)
    return 0
