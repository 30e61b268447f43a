"""Acceptance tests of `wit train`: it learns, DDP equals one process, resume equals no stop."""

from __future__ import annotations

import json
import math
import os
import random
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import webdataset as wds

from train import evaluate as ev
from train.checkpoint import latest_checkpoint, load_checkpoint, load_model
from train.configs import CONFIGS
from train.loss import clip_loss
from train.model import CLIP
from train.step import backward as step_backward
from train.train import run
from wit_pipeline.core import keys
from wit_pipeline.synthetic.concepts import COLOURS, SHAPES, all_concepts, caption_for
from wit_pipeline.synthetic.images import encode, render

IMAGE_PX = (48, 48)


def write_shards(directory: Path, prefix: str, seeds: range, shards: int) -> str:
    """Every concept rendered once per seed, captioned, spread round-robin over `shards` tars."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{prefix}|captions")
    samples = []
    for seed in seeds:
        for concept in all_concepts():
            text = caption_for(concept, rng)
            url = f"http://img.test/{prefix}/{seed}/{concept.name.replace(' ', '-')}.jpg"
            key = keys.sample_key(url, text)
            meta = {"key": key, "url": url, "text": text, "queries": [concept.colour, concept.shape]}
            samples.append({"__key__": key, "jpg": encode(render(concept, IMAGE_PX, seed)), "txt": text, "json": json.dumps(meta)})
    random.Random(prefix).shuffle(samples)
    for i in range(shards):
        with wds.TarWriter(str(directory / f"{prefix}-{i:06d}.tar")) as sink:
            for s in samples[i::shards]:
                sink.write(s)
    return str(directory / f"{prefix}-{{{0:06d}..{shards - 1:06d}}}.tar")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("shards")
    (d / "colours.txt").write_text("\n".join(COLOURS) + "\n")
    (d / "colour_templates.txt").write_text("\n".join(f"a photo of a {{}} {s}." for s in SHAPES) + "\n")
    return {
        "train": write_shards(d, "train", range(8), 4),  # 8 x 192 = 1536 pairs
        "eval": write_shards(d, "eval", range(1000, 1001), 1),  # 192 held-out images, unseen seeds
        "classes": str(d / "colours.txt"),
        "templates": str(d / "colour_templates.txt"),
    }


@pytest.fixture(autouse=True)
def _restore_threads():
    """`--threads 1` (kept for a shared CI box) must not leak into other test modules."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def losses(rows: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_tiny_learns_zero_shot_above_chance(data, tmp_path) -> None:
    """A few hundred CPU steps: held-out colour and shape zero-shot accuracy >= 3x chance."""
    out = tmp_path / "run"
    run(["--threads", "1",
        "--shards", data["train"], "--config", "tiny", "--batch-size", "64", "--steps", "300", "--lr", "1e-3",
        "--warmup", "30", "--wd", "0.1", "--tokenizer", "bpe", "--bpe-vocab", "512", "--out", str(out),
        "--eval-shards", data["eval"], "--zero-shot-classes", data["classes"],
        "--zero-shot-templates", data["templates"], "--no-progress", "--log-every", "10",
    ])
    rows = read_log(out)
    loss = losses(rows)
    assert sorted(loss) == list(range(10, 301, 10))
    assert loss[300] < 0.6 * loss[10]
    final = [r for r in rows if "zero_shot/top1" in r]
    assert len(final) == 1
    metrics = final[0]
    assert metrics["zero_shot/n"] == 192 and metrics["zero_shot/chance"] == pytest.approx(1 / 8)
    assert metrics["zero_shot/top1"] >= 3 / 8, metrics
    assert metrics["retrieval/n"] == 192
    assert metrics["retrieval/image_to_text_R@10"] > 10 / 192

    # Shapes from the saved checkpoint (what `wit eval` loads): 6 classes, chance 1/6.
    ckpt = latest_checkpoint(out)
    assert ckpt is not None and ckpt.name == "step-00000300.pt"
    model, tokenizer = load_model(ckpt)
    assert tokenizer.sha256 == load_checkpoint(ckpt)["extra"]["tokenizer_sha256"]
    templates = [f"a photo of a {c} {{}}." for c in COLOURS]
    shapes = ev.zero_shot(model, tokenizer, data["eval"], list(SHAPES), templates, ev.caption_label_fn(SHAPES), 32, 64)
    assert shapes["n"] == 192
    # Shapes at 32 px are harder than colours: 300 steps reach ~2x chance, 500 steps ~2.6x.
    assert shapes["top1"] >= 1.5 / 6, shapes
    stats = [r["loader"] for r in rows if "loader" in r][-1]
    assert stats["batched"] == 300 * 64 and stats["skipped"] == {}


def _small_run(out: Path, shards: str, *extra: str) -> None:
    run(["--threads", "1", "--shards", shards, "--config", "tiny", "--batch-size", "8", "--steps", "6", "--warmup", "2",
         "--tokenizer", "bytes", "--out", str(out), "--no-progress", "--save-every", "3", "--keep", "0", *extra])


@pytest.mark.parametrize("accum", [1, 2])
def test_resume_gives_the_same_next_steps(data, tmp_path, accum) -> None:
    """Stopped after step 3 with a checkpoint, then resumed: steps 4..6 as if never stopped."""
    full, split = tmp_path / "full", tmp_path / "split"
    acc = ("--accum", str(accum))
    _small_run(full, data["train"], *acc)
    _small_run(split, data["train"], "--stop-at", "3", *acc)
    assert latest_checkpoint(split).name == "step-00000003.pt"
    assert load_checkpoint(latest_checkpoint(split))["data_state"]["start_step"] == 3 * accum
    with open(split / "log.jsonl", "a", encoding="utf-8") as f:  # logged after the checkpoint, then killed
        f.write('{"step": 4, "loss": 99.0}\n{"step": 5, "loss": 99.0}\n{"step": 6, "lo')  # cut mid-write
    _small_run(split, data["train"], "--resume", *acc)
    a, b = losses(read_log(full)), losses(read_log(split))
    assert sorted(a) == [1, 2, 3, 4, 5, 6]
    assert [row["step"] for row in read_log(split) if "loss" in row] == [1, 2, 3, 4, 5, 6]  # each once
    for step in range(1, 7):
        assert b[step] == a[step], (step, a, b)
    wa = load_checkpoint(full / "step-00000006.pt")["model"]
    wb = load_checkpoint(split / "step-00000006.pt")["model"]
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def test_resume_refuses_another_data_stream(data, tmp_path) -> None:
    """The saved data position only means something for the same batch size, accumulation,
    workers and world size: another one is refused, not silently replayed differently."""
    out = tmp_path / "r"
    _small_run(out, data["train"], "--stop-at", "3")
    with pytest.raises(SystemExit, match="^wit train: --resume with another data stream .*batch_size 8 -> 4"):
        _small_run(out, data["train"], "--resume", "--batch-size", "4")
    with pytest.raises(SystemExit, match="accum 1 -> 2"):
        _small_run(out, data["train"], "--resume", "--accum", "2")
    _small_run(out, data["train"], "--resume")  # the same options go on
    assert latest_checkpoint(out).name == "step-00000006.pt"


def test_resume_without_checkpoint_starts_fresh_and_bad_args_fail(data, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        run(["--shards", data["train"], "--out", str(tmp_path), "--steps", "0"])
    with pytest.raises(SystemExit, match="shard\\(s\\) not found, e.g. '/no/such.tar'"):
        run(["--shards", "/no/such.tar", "--out", str(tmp_path / "x"), "--steps", "1"])
    assert not (tmp_path / "x").exists()  # nothing written for a run that could not start
    capsys.readouterr()
    _small_run(tmp_path / "r", data["train"], "--resume", "--stop-at", "1")
    assert f"--resume: no checkpoint in {tmp_path / 'r'}; starting at step 0" in capsys.readouterr().err
    assert sorted(losses(read_log(tmp_path / "r"))) == [1]


def test_resume_of_a_finished_run_does_nothing(data, tmp_path, capsys) -> None:
    """--resume on a run that already reached --steps: no second closing row, no NaN loss, the
    log and checkpoint untouched; one line says so. A run killed after its last checkpoint but
    before its closing row gets that row (once), not a NaN loss."""
    out = tmp_path / "r"
    _small_run(out, data["train"])
    capsys.readouterr()
    log, ckpt = (out / "log.jsonl").read_bytes(), (out / "step-00000006.pt").read_bytes()
    _small_run(out, data["train"], "--resume")
    captured = capsys.readouterr()
    assert "already stopped at step 6; nothing to do" in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(c))
    assert summary["step"] == 6 and summary["loss"] == losses(read_log(out))[6]
    assert (out / "log.jsonl").read_bytes() == log and (out / "step-00000006.pt").read_bytes() == ckpt

    rows = log.decode().splitlines()
    assert "final" in json.loads(rows[-1])
    (out / "log.jsonl").write_text("\n".join(rows[:-1]) + "\n")  # killed before the closing row
    _small_run(out, data["train"], "--resume")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(c))
    assert summary["loss"] == losses(read_log(out))[6]
    assert [(r["step"], r["final"]) for r in read_log(out) if "final" in r] == [(6, True)]
    assert (out / "step-00000006.pt").read_bytes() == ckpt


def test_rerun_into_the_same_out_without_resume_is_refused(data, tmp_path) -> None:
    """A second run into a folder that holds one would append its steps to the first's log."""
    out = tmp_path / "r"
    _small_run(out, data["train"], "--stop-at", "3")
    before = (out / "log.jsonl").read_bytes()
    with pytest.raises(SystemExit, match="already holds a run \\(step-00000003.pt, log.jsonl\\): add --resume"):
        _small_run(out, data["train"], "--seed", "1")
    assert (out / "log.jsonl").read_bytes() == before
    (out / "step-00000003.pt").unlink()  # a run killed before its first checkpoint: its log alone counts
    with pytest.raises(SystemExit, match="already holds a run \\(log.jsonl\\)"):
        _small_run(out, data["train"])


def test_resume_falls_back_past_a_corrupt_latest_checkpoint(data, tmp_path, capsys) -> None:
    """The newest checkpoint cut short (a full disk, a copy interrupted): resume from the one
    before, say so, and still end where an uninterrupted run ends."""
    full, split = tmp_path / "full", tmp_path / "split"
    _small_run(full, data["train"])
    _small_run(split, data["train"], "--stop-at", "4", "--save-every", "2")
    latest = split / "step-00000004.pt"
    latest.write_bytes(latest.read_bytes()[:4096])
    capsys.readouterr()
    _small_run(split, data["train"], "--resume")
    err = capsys.readouterr().err
    assert "skipping" in err and "step-00000004.pt: not a readable checkpoint" in err
    assert "falling back to step-00000002.pt (step 2)" in err
    a, b = losses(read_log(full)), losses(read_log(split))
    assert [r["step"] for r in read_log(split) if "loss" in r] == [1, 2, 3, 4, 5, 6] and a == b
    for step in range(1, 7):
        assert b[step] == a[step], (step, a, b)
    for p in split.glob("step-*.pt"):
        p.write_bytes(b"garbage")
    with pytest.raises(SystemExit, match="--resume: no readable checkpoint in"):
        _small_run(split, data["train"], "--resume")


def test_in_training_eval_can_leave_out_what_it_trains_on(data, tmp_path) -> None:
    """--decontaminate-eval: eval images that are training images are not scored."""
    first_train_shard = data["train"].replace("{000000..000003}", "000000")
    out = tmp_path / "r"
    _small_run(out, data["train"], "--steps", "2", "--eval-shards", f"{data['eval']},{first_train_shard}",
               "--decontaminate-eval")
    rows = read_log(out)
    report = next(r for r in rows if "decontamination/removed" in r)
    assert report["decontamination/eval_samples"] == 192 + 384 and report["decontamination/train_images"] == 1536
    assert 384 <= report["decontamination/removed"] < 192 + 384
    final = next(r for r in rows if "retrieval/n" in r)
    assert final["retrieval/n"] == 192 + 384 - report["decontamination/removed"]


def _accum_run(out: Path, shards: str, batch: int, accum: int, steps: int = 3, threads: str = "1") -> None:
    run(["--threads", threads, "--shards", shards, "--config", "tiny", "--batch-size", str(batch), "--accum", str(accum),
         "--steps", str(steps), "--warmup", "1", "--lr", "1e-3", "--tokenizer", "bytes", "--out", str(out), "--no-progress"])


def test_accum_logs_the_loss_of_the_whole_batch(data, tmp_path) -> None:
    """`--accum 4 --batch-size 4` is one batch of 16: the same samples, so the same first loss.
    (That the update is the same is `test_accum_gives_the_gradient_of_the_whole_batch`'s: after
    an AdamW step, float noise in the gradient of a near-zero parameter, divided by its own
    square root, becomes an lr-sized difference, so weights are no place to compare.)"""
    _accum_run(tmp_path / "big", data["train"], 16, 1, steps=1)
    _accum_run(tmp_path / "acc", data["train"], 4, 4, steps=1)
    big, acc = losses(read_log(tmp_path / "big")), losses(read_log(tmp_path / "acc"))
    assert acc[1] == pytest.approx(big[1], rel=1e-6)


# --- DDP -------------------------------------------------------------------------------------

CFG = CONFIGS["tiny"].replace(vocab_size=64, context_length=8)


def _global_batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    images = torch.randn(n, 3, CFG.image_size, CFG.image_size, generator=g)
    tokens = torch.randint(3, CFG.vocab_size, (n, CFG.context_length), generator=g)
    tokens[:, 0], tokens[:, -1] = 1, 2
    return images, tokens


def test_accum_gives_the_gradient_of_the_whole_batch() -> None:
    """Four micro-batches of 4 accumulate the gradient of one batch of 16, for every parameter
    (float tolerance: sums in another order), the temperature included."""
    torch.manual_seed(0)
    model = CLIP(CFG, eot_id=2)
    images, tokens = _global_batch(16)
    grads = {}
    for accum in (1, 4):
        loss = step_backward(model, list(zip(images.chunk(accum), tokens.chunk(accum))))
        grads[accum] = (loss, {k: p.grad.clone() for k, p in model.named_parameters()})
        model.zero_grad(set_to_none=True)
    assert grads[4][0] == pytest.approx(grads[1][0].item(), rel=1e-6)
    for name, whole in grads[1][1].items():
        assert torch.allclose(grads[4][1][name], whole, rtol=1e-4, atol=1e-7), name


def _ddp_worker(rank: int, world: int, port: int, out: str, argvs: list[list[str]]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(CLIP(CFG, eot_id=2))
    images, tokens = _global_batch()
    n = images.shape[0] // world
    mine = slice(rank * n, (rank + 1) * n)
    result = {}
    for accum in (1, 2):  # this rank's rows in one batch, then as two micro-batches
        micro = list(zip(images[mine].chunk(accum), tokens[mine].chunk(accum)))
        loss = step_backward(model, micro)
        dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        result[accum] = {"loss": loss, "grads": {k: p.grad.clone() for k, p in model.module.named_parameters()}}
        model.zero_grad(set_to_none=True)
    if rank == 0:
        torch.save(result, out)
    # Then the torchrun path of `wit train` in the same processes (it reuses the process group).
    for argv in argvs:
        run(argv)
    dist.barrier()
    dist.destroy_process_group()  # ours, not run()'s: an undestroyed gloo group can abort at exit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_equals_one_process(data, tmp_path) -> None:
    """2 gloo ranks of 4 rows, with and without --accum 2, equal one process on all 8 rows."""
    out, run_dir = tmp_path / "ddp.pt", tmp_path / "ddp-run"
    argv = ["--shards", data["train"], "--config", "tiny", "--steps", "2", "--tokenizer", "bytes", "--no-progress",
            "--threads", "1", "--lr", "1e-3", "--warmup", "1"]
    argvs = [[*argv, "--batch-size", "8", "--out", str(run_dir)],
             [*argv, "--batch-size", "4", "--accum", "2", "--out", str(tmp_path / "ddp-accum")]]
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(out), argvs), nprocs=2, join=True)

    torch.manual_seed(0)
    model = CLIP(CFG, eot_id=2)
    images, tokens = _global_batch()
    loss = clip_loss(*model(images, tokens))
    loss.backward()
    got = torch.load(out, weights_only=True)
    for accum in (1, 2):
        assert got[accum]["loss"].item() == pytest.approx(loss.item(), abs=1e-5), accum
        for name, p in model.named_parameters():
            assert torch.allclose(got[accum]["grads"][name], p.grad, atol=1e-5, rtol=1e-4), (accum, name)
    # Without the all-gather each rank sees only its own negatives: a different (smaller) loss.
    half = clip_loss(*model(images[:4], tokens[:4]), gather=False)
    assert not math.isclose(half.item(), loss.item(), abs_tol=1e-3)

    # `wit train` under WORLD_SIZE=2 (gloo, DDP): rank 0 logs and checkpoints.
    rows = read_log(run_dir)
    assert sorted(losses(rows)) == [1, 2]
    assert all(r["samples_per_s"] > 0 for r in rows if "loss" in r)
    assert latest_checkpoint(run_dir).name == "step-00000002.pt"
    assert load_checkpoint(latest_checkpoint(run_dir))["data_state"]["world_size"] == 2
    # --accum 2 of 4 per rank logs the loss of the same global batch of 16, and makes the same update.
    accum_rows = losses(read_log(tmp_path / "ddp-accum"))
    assert accum_rows[1] == pytest.approx(losses(rows)[1], rel=1e-6)
    assert accum_rows[2] == pytest.approx(losses(rows)[2], rel=1e-4)


def _resume_worker(rank: int, world: int, port: int, outs: list[str], argv: list[str], result: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        run([*argv, "--out", outs[rank]])
        outcome = "ran"
    except RuntimeError as exc:
        outcome = str(exc)
    with open(f"{result}.{rank}", "w") as f:
        f.write(outcome)
    dist.barrier()
    dist.destroy_process_group()  # ours, not run()'s: an undestroyed gloo group can abort at exit


def test_resume_refuses_ranks_that_see_different_checkpoints(data, tmp_path) -> None:
    """--out on node-local disks: rank 0 finds step 1, rank 1 finds nothing. Both stop with
    the reason instead of one starting over and the collectives hanging."""
    argv = ["--shards", data["train"], "--config", "tiny", "--batch-size", "8", "--steps", "3", "--tokenizer", "bytes",
            "--no-progress", "--threads", "1", "--resume"]
    seen, empty = tmp_path / "node0", tmp_path / "node1"
    _small_run(seen, data["train"], "--stop-at", "1", "--tokenizer", "bytes")
    result = str(tmp_path / "result")
    mp.spawn(_resume_worker, args=(2, _free_port(), [str(seen), str(empty)], argv, result), nprocs=2, join=True)
    for rank in (0, 1):
        text = (tmp_path / f"result.{rank}").read_text()
        assert "ranks found checkpoints from step 0 to step 1" in text and "every node shares" in text, text
