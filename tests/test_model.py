"""Unit tests for the CLIP trainer's parts: model, tokenizer, loss, checkpoints, schedule."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest
import torch

from train.checkpoint import (
    BadCheckpoint,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    load_latest_readable,
    load_model,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from train.configs import CONFIGS, ModelConfig
from train.loss import clip_loss
from train.model import CLIP, INIT_LOGIT_SCALE
from train.step import backward as step_backward
from train.tokenizer import Tokenizer, byte_tokenizer, train_bpe
from train.train import lr_at, param_groups, parse_args
from wit_pipeline.synthetic.concepts import all_concepts, caption_for

TINY = CONFIGS["tiny"].replace(vocab_size=300, context_length=12)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core box: one thread is many times faster than two fighting."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def captions() -> list[str]:
    rng = random.Random(0)
    return [caption_for(c, rng) for c in all_concepts() * 2]


def _tokens(tok: Tokenizer, texts: list[str], n: int = 12) -> torch.Tensor:
    return tok.encode(texts, n)


# --- configs ---------------------------------------------------------------------------------


def test_vit_b32_is_the_papers() -> None:
    c = CONFIGS["ViT-B/32"]
    assert (c.image_size, c.patch_size, c.vision_width, c.vision_layers, c.vision_heads) == (224, 32, 768, 12, 12)
    assert (c.context_length, c.text_width, c.text_layers, c.text_heads, c.embed_dim) == (77, 512, 12, 8, 512)
    assert ModelConfig.from_dict(c.to_dict()) == c


# --- tokenizer -------------------------------------------------------------------------------


def test_byte_tokenizer_framing_padding_truncation() -> None:
    tok = byte_tokenizer()
    assert tok.vocab_size == 259 and (tok.sot_id, tok.eot_id) == (1, 2)
    ids = tok.encode(["Ab", "x" * 50], 6)
    assert ids.dtype == torch.long and ids.shape == (2, 6)
    a, b = ids.tolist()
    assert a[0] == 1 and a[3] == 2 and a[4:] == [0, 0]  # SOT, 'a', 'b', EOT, padding
    assert a[1:3] == tok.encode(["aB"], 6)[0, 1:3].tolist()  # lower-cased
    assert b[0] == 1 and b[-1] == 2 and 0 not in b  # truncated, EOT kept
    assert tok.decode(a) == "ab"


def test_whitespace_normalised_and_specials_are_text() -> None:
    tok = byte_tokenizer()
    assert torch.equal(tok.encode(["  a \t red\n circle "], 20), tok.encode(["a red circle"], 20))
    for t in (tok, pickle.loads(pickle.dumps(tok)), Tokenizer.from_json(tok.to_json())):
        ids = t.encode(["<end_of_text>"], 20)[0].tolist()
        assert ids.count(tok.eot_id) == 1 and len([i for i in ids if i]) == len("<end_of_text>") + 2


def test_bpe_deterministic_roundtrip_and_compresses(captions: list[str]) -> None:
    t1, t2 = train_bpe(captions, 400), train_bpe(captions, 400)
    assert t1.sha256 == t2.sha256 and t1.to_json() == t2.to_json()
    assert t1.vocab_size <= 400
    t3 = Tokenizer.from_json(t1.to_json())
    assert t3.sha256 == t1.sha256
    text = ["a striped red circle"]
    assert torch.equal(t3.encode(text, 16), t1.encode(text, 16))
    n_bpe = int((t1.encode(text, 32) != 0).sum())
    n_bytes = int((byte_tokenizer().encode(text, 32) != 0).sum())
    assert n_bpe < n_bytes // 2
    assert t1.decode(t1.encode(text, 16)[0]) == text[0]


def test_bpe_fit_reads_a_bounded_prefix_of_each_caption(captions: list[str]) -> None:
    """BPE training is super-linear in one word's length (a 0.4M-character caption took
    minutes): each caption is cut to MAX_FIT_CHARS first, so this fit is the same as on the
    caption's first MAX_FIT_CHARS characters, bounded by construction."""
    from train.tokenizer import MAX_FIT_CHARS

    rng = random.Random(0)
    long = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=400_000))  # one 400k-character pre-token
    assert train_bpe([*captions, long], 400).sha256 == train_bpe([*captions, long[:MAX_FIT_CHARS]], 400).sha256
    cut = [c[:10] for c in captions]
    assert train_bpe([*captions, long], 400, max_chars=10).sha256 == train_bpe([*cut, long[:10]], 400).sha256


def test_bpe_rejects_tiny_vocab(captions: list[str]) -> None:
    with pytest.raises(ValueError):
        train_bpe(captions, 100)


# --- model -----------------------------------------------------------------------------------


def test_model_shapes_normalised_and_temperature() -> None:
    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = CLIP(TINY, eot_id=tok.eot_id)
    images = torch.randn(3, 3, TINY.image_size, TINY.image_size)
    tokens = tok.encode(["a", "bb", "ccc"], TINY.context_length)
    img, txt, scale = model(images, tokens)
    assert img.shape == txt.shape == (3, TINY.embed_dim)
    assert torch.allclose(img.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert math.isclose(model.logit_scale.item(), INIT_LOGIT_SCALE) and math.isclose(scale.item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1000.0))
    model.clamp_logit_scale_()  # what the trainer does after every optimizer step
    assert model(images, tokens)[2].item() == pytest.approx(100.0)
    with pytest.raises(ValueError):
        model.encode_image(torch.randn(1, 3, TINY.image_size + 8, TINY.image_size + 8))


def test_temperature_gradient_is_not_zero_at_the_cap() -> None:
    """At the cap, the scale can still be pushed down: its gradient must not vanish (a forward
    clamp at 100 froze it, since float32(ln 100) exponentiates to just above 100)."""
    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = CLIP(TINY.replace(vocab_size=tok.vocab_size), eot_id=tok.eot_id)
    with torch.no_grad():
        model.logit_scale.fill_(1e3)
    model.clamp_logit_scale_()
    assert model.logit_scale.item() == pytest.approx(math.log(100.0))
    images = torch.randn(8, 3, TINY.image_size, TINY.image_size)
    clip_loss(*model(images, tok.encode([f"caption {i}" for i in range(8)], 12))).backward()
    grad = model.logit_scale.grad.item()
    assert grad != 0.0 and math.isfinite(grad)
    # Untrained features are near-orthogonal noise: the loss wants a lower scale, so a step goes down.
    assert grad > 0


def test_vit_blocks_keep_pytorch_init_text_blocks_get_clips() -> None:
    """CLIP and open_clip leave the ViT's blocks at PyTorch's defaults (nn.MultiheadAttention:
    Xavier-uniform in-projection, zero biases; nn.Linear's uniform MLP) and give only the text
    tower the 1/sqrt(width) normal scheme."""
    torch.manual_seed(0)
    model = CLIP(CONFIGS["small"].replace(vocab_size=300))
    w = CONFIGS["small"].vision_width
    for block in model.visual.blocks:
        assert block.attn.qkv.weight.abs().max() <= math.sqrt(6 / (w + 3 * w))  # Xavier-uniform bound
        assert block.attn.qkv.weight.std().item() == pytest.approx(math.sqrt(2 / (4 * w)), rel=0.02)
        assert not block.attn.qkv.bias.any() and not block.attn.proj.bias.any()
        for lin in (block.attn.proj, block.mlp[0], block.mlp[2]):  # nn.Linear: U(+-1/sqrt(fan_in))
            bound = lin.weight.shape[1] ** -0.5
            assert lin.weight.abs().max() <= bound and lin.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
        assert block.mlp[0].bias.abs().max() > 0  # nn.Linear's default bias, not zeroed
    tw = CONFIGS["small"].text_width
    for block in model.text.blocks:
        assert block.attn.qkv.weight.std().item() == pytest.approx(tw**-0.5, rel=0.02)
        assert not block.mlp[0].bias.any()


def test_text_features_at_eot_are_causal() -> None:
    """What follows the end-of-text token (padding, anything) cannot change the features."""
    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = CLIP(TINY, eot_id=tok.eot_id).eval()
    tokens = tok.encode(["red", "a blue square"], TINY.context_length)
    changed = tokens.clone()
    changed[0, 5:] = 77  # after "red"'s EOT at position 4
    a, b = model.encode_text(tokens), model.encode_text(changed)
    assert torch.allclose(a, b, atol=1e-6)
    changed[0, 2] = 99  # inside the caption: must change
    assert not torch.allclose(a[0], model.encode_text(changed)[0], atol=1e-4)


# --- loss ------------------------------------------------------------------------------------


def test_clip_loss_matches_definition() -> None:
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * img @ txt.T
    expected = 0.0
    for i in range(5):
        expected += -torch.log_softmax(logits[i], 0)[i] - torch.log_softmax(logits[:, i], 0)[i]
    assert clip_loss(img, txt, scale).item() == pytest.approx(expected.item() / 10, rel=1e-6)
    # Aligned pairs with a high scale give a near-zero loss; shuffled ones a large one.
    assert clip_loss(img, img, torch.tensor(100.0)).item() < 1e-3
    assert clip_loss(img, img.flip(0), torch.tensor(100.0)).item() > 10


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("k", [2, 4])
def test_accumulation_equals_one_batch_k_times_as_large(k) -> None:
    """k micro-batches of b, each scored against the cached features of the others, give the
    loss and gradient of one batch of k*b; the mean of k small losses (the old --accum) does not."""
    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = CLIP(TINY.replace(vocab_size=tok.vocab_size), eot_id=tok.eot_id)
    images = torch.randn(16, 3, TINY.image_size, TINY.image_size)
    tokens = tok.encode([f"a caption number {i}" for i in range(16)], 12)
    big_loss = step_backward(model, [(images, tokens)])
    big = _grads(model)
    micro = list(zip(images.chunk(k), tokens.chunk(k)))
    acc_loss = step_backward(model, micro)
    acc = _grads(model)
    assert acc_loss.item() == pytest.approx(big_loss.item(), rel=1e-6)
    for name, g in big.items():
        assert torch.allclose(acc[name], g, rtol=1e-4, atol=1e-6), (name, (acc[name] - g).abs().max())
    assert acc["logit_scale"].item() == pytest.approx(big["logit_scale"].item(), rel=1e-4)  # counted once, not k times

    small = sum(clip_loss(*model(i, t)) / k for i, t in micro)
    small.backward()
    old = _grads(model)
    assert small.item() < big_loss.item() - 0.1  # fewer negatives: an easier, lower loss
    flat = lambda d: torch.cat([v.flatten() for v in d.values()])  # noqa: E731
    assert torch.nn.functional.cosine_similarity(flat(old), flat(big), dim=0) < 0.999


# --- checkpoints -----------------------------------------------------------------------------


def _save(path, model, opt, step=3):
    return save_checkpoint(
        path, model=model, optimizer=opt, step=step, rng=rng_state(),
        data_state={"start_step": step}, config={"model": model.cfg.to_dict()},
        tokenizer_json=byte_tokenizer().to_json(), extra={"note": "x"},
    )


def test_checkpoint_roundtrip_atomic_and_latest(tmp_path) -> None:
    torch.manual_seed(0)
    model = CLIP(TINY, eot_id=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 32, 32), byte_tokenizer().encode(["a", "b"], 12))[0].sum().backward()
    opt.step()
    for step in (3, 12, 7):
        _save(tmp_path / checkpoint_name(step), model, opt, step)
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint_name(s) for s in (3, 7, 12)]  # no temp files
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(12)
    assert latest_checkpoint(tmp_path / "missing") is None
    doc = load_checkpoint(tmp_path / checkpoint_name(12))
    assert doc["step"] == 12 and doc["data_state"] == {"start_step": 12} and doc["extra"] == {"note": "x"}
    other = CLIP(TINY, eot_id=2)
    other.load_state_dict(doc["model"])
    for (n, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), n
    opt2 = torch.optim.AdamW(other.parameters(), lr=1e-3)
    opt2.load_state_dict(doc["optimizer"])
    state = opt2.state_dict()["state"]
    assert len(state) > 10 and all(int(v["step"]) == 1 for v in state.values())
    loaded, tok = load_model(tmp_path / checkpoint_name(12))
    assert tok.sha256 == byte_tokenizer().sha256 and not loaded.training


def test_rng_state_roundtrip() -> None:
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = rng_state()
    a = (random.random(), float(np.random.rand()), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == a


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(MARKER).write_text('pwned')".replace("MARKER", repr(str(_Evil.marker))),))


def test_checkpoint_load_refuses_pickled_code(tmp_path) -> None:
    _Evil.marker = tmp_path / "pwned"
    path = tmp_path / checkpoint_name(1)
    with open(path, "wb") as f:  # a legacy pickle checkpoint carrying code
        torch.save({"format": "wit-clip-checkpoint/1", "model": _Evil()}, f)
    with pytest.raises(BadCheckpoint, match="refused: it holds pickled code or objects \\(exec\\)") as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)  # no advice to run the code
    assert not _Evil.marker.exists()


def test_checkpoint_rejects_foreign_truncated_and_random_files(tmp_path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(BadCheckpoint, match="not a wit CLIP checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    model = CLIP(TINY, eot_id=2)
    good = _save(tmp_path / checkpoint_name(1), model, None)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pt").write_bytes(random.Random(0).randbytes(5000))
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "noise.pt", "empty.pt"):
        with pytest.raises(BadCheckpoint, match="not a readable checkpoint") as err:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(err.value) and "weights_only" not in str(err.value), str(err.value)


def test_load_latest_readable_falls_back(tmp_path) -> None:
    assert load_latest_readable(tmp_path) is None
    model = CLIP(TINY, eot_id=2)
    for step in (2, 4):
        _save(tmp_path / checkpoint_name(step), model, None, step)
    (tmp_path / checkpoint_name(6)).write_bytes((tmp_path / checkpoint_name(4)).read_bytes()[:1000])
    path, doc, skipped = load_latest_readable(tmp_path)
    assert path.name == checkpoint_name(4) and doc["step"] == 4
    assert len(skipped) == 1 and checkpoint_name(6) in skipped[0]
    for step in (2, 4):
        (tmp_path / checkpoint_name(step)).write_bytes(b"junk")
    with pytest.raises(BadCheckpoint, match="no readable checkpoint"):
        load_latest_readable(tmp_path)


# --- optimisation details --------------------------------------------------------------------


def test_optimiser_defaults_are_the_papers() -> None:
    """CLIP (and open_clip) do not clip gradients; AdamW beta2 0.98, eps 1e-6, weight decay 0.2."""
    args = parse_args(["--shards", "x.tar", "--out", "o", "--steps", "10"])
    assert args.grad_clip == 0 and (args.beta1, args.beta2, args.eps, args.wd) == (0.9, 0.98, 1e-6, 0.2)
    assert args.accum == 1 and args.warmup == 1


def test_schedule_warmup_then_cosine() -> None:
    kw = dict(lr=1.0, min_lr=0.1, warmup=10, steps=110)
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)
    assert lr_at(110, **kw) == pytest.approx(0.1)
    values = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_no_weight_decay_on_gains_biases_and_scale() -> None:
    model = CLIP(TINY, eot_id=2)
    decay, no_decay = param_groups(model, 0.2)
    names = {id(p): n for n, p in model.named_parameters()}
    nd = {names[id(p)] for p in no_decay["params"]}
    d = {names[id(p)] for p in decay["params"]}
    assert "logit_scale" in nd and "visual.class_embedding" in nd
    assert all(n.endswith(".bias") or ".ln" in n or n in ("logit_scale", "visual.class_embedding") for n in nd)
    assert "text.token_embedding.weight" in d and "visual.patch.weight" in d
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    assert len(d) + len(nd) == len(names)


def test_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    tok = byte_tokenizer()
    model = CLIP(TINY.replace(vocab_size=tok.vocab_size), eot_id=tok.eot_id)
    opt = torch.optim.AdamW(param_groups(model, 0.0), lr=1e-3)
    images = torch.randn(16, 3, 32, 32)
    tokens = tok.encode([f"caption {i}" for i in range(16)], 12)
    losses = []
    for _ in range(30):
        loss = clip_loss(*model(images, tokens))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(16), rel=0.1)
    assert losses[-1] < 0.5 * losses[0]
