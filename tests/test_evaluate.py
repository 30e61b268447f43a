"""Zero-shot and retrieval on shards where the right answer is known."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
import webdataset as wds
from PIL import Image, ImageDraw

from train import evaluate, preprocess
from train.data import expand_shards, read_samples
from train.evaluate import (
    DEFAULT_TEMPLATES,
    caption_label_fn,
    load_classnames,
    load_templates,
    query_label_fn,
    recall_at_k,
    retrieval,
    zero_shot,
)
from train.tokenizer import byte_tokenizer
from wit_pipeline.core import keys
from wit_pipeline.image import phash
from wit_pipeline.shards import image_of
from wit_pipeline.synthetic.concepts import COLOURS, SHAPES, Concept, caption_for
from wit_pipeline.synthetic.images import encode, render

CTX = 64
COLOUR_NAMES = list(COLOURS)


class ColourModel(torch.nn.Module):
    """Encoders that return the one-hot colour: of the image's dominant palette colour, of the colour word in the text."""

    def __init__(self, tokenizer) -> None:
        super().__init__()
        self.cfg = SimpleNamespace(context_length=CTX)
        self.tokenizer = tokenizer
        self.palette = torch.tensor([COLOURS[c] for c in COLOUR_NAMES], dtype=torch.float32)
        self.logit_scale = torch.nn.Parameter(torch.tensor(4.6))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        mean, std = torch.tensor(preprocess.CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(preprocess.CLIP_STD).view(1, 3, 1, 1)
        rgb = ((images * std + mean) * 255).flatten(2).transpose(1, 2)  # [B, P, 3]
        near = (torch.cdist(rgb, self.palette.expand(rgb.shape[0], -1, -1)) < 60).sum(dim=1)  # [B, colours]
        return torch.nn.functional.one_hot(near.argmax(dim=1), len(COLOUR_NAMES)).float()

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(tokens.shape[0], len(COLOUR_NAMES))
        for i, row in enumerate(tokens):
            words = self.tokenizer.decode(row.tolist()).replace(".", " ").split()
            for j, c in enumerate(COLOUR_NAMES):
                if c in words:
                    out[i, j] = 1.0
        return out


def sample(i: int, concept: Concept, text: str | None = None, image: bytes | None = None) -> dict:
    text = text if text is not None else caption_for(concept, random.Random(i))
    url = f"http://img.test/{i}.jpg"
    key = keys.sample_key(url, text)
    meta = {"key": key, "url": url, "text": text, "queries": [concept.colour, concept.shape]}
    return {"__key__": key, "jpg": image if image is not None else encode(render(concept, (48, 40), seed=i)),
            "txt": text, "json": json.dumps(meta)}


@pytest.fixture(scope="module")
def colour_shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    samples = [sample(i, Concept(c, SHAPES[(i + k) % len(SHAPES)], "plain"))
               for i, c in enumerate(COLOUR_NAMES) for k in range(2)]
    samples = [dict(s, __key__=f"{n:04d}{s['__key__']}") for n, s in enumerate(samples)]
    extra = [
        sample(100, Concept("red", "star", "plain"), text="a star on a background"),  # no class named
        sample(101, Concept("red", "star", "plain"), text="a red and blue star"),  # two classes named
        sample(102, Concept("red", "star", "plain"), image=b"not an image"),
    ]
    with wds.TarWriter(str(d / "wit-000000.tar")) as w:
        for s in samples[:10]:
            w.write(s)
    with wds.TarWriter(str(d / "wit-000001.tar")) as w:
        for s in samples[10:] + extra:
            w.write(s)
    return str(d / "wit-{000000..000001}.tar")


@pytest.fixture(scope="module")
def one_per_colour(tmp_path_factory):
    d = tmp_path_factory.mktemp("ret")
    with wds.TarWriter(str(d / "wit-000000.tar")) as w:
        for i, c in enumerate(COLOUR_NAMES):
            w.write(sample(i, Concept(c, SHAPES[i % len(SHAPES)], "plain")))
    return str(d / "wit-000000.tar")


def test_zero_shot_with_a_model_that_knows_colours_is_perfect(colour_shards):
    tok = byte_tokenizer()
    model = ColourModel(tok)
    res = zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a photo of a {}.", "a {} thing"],
                    caption_label_fn(COLOUR_NAMES), image_size=32, batch_size=5)
    assert res["n"] == 16 and res["top1"] == 1.0 and res["top5"] == 1.0
    assert res["unlabelled"] == 2 and res["skipped"] == {"undecodable": 1}
    assert res["per_class"] == {c: {"n": 2, "correct": 2} for c in COLOUR_NAMES}
    assert res["chance"] == 1 / 8


def test_zero_shot_is_wrong_when_the_classes_are_wrong(colour_shards):
    """The same model scored against shuffled class names: every top-1 is a miss (the test can fail)."""
    tok = byte_tokenizer()
    model = ColourModel(tok)
    label = caption_label_fn(COLOUR_NAMES)
    res = zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a photo of a {}."],
                    lambda m: None if label(m) is None else frozenset((i + 1) % 8 for i in label(m)),
                    image_size=32, batch_size=64)
    assert res["n"] == 16 and res["top1"] == 0.0


def test_zero_shot_with_several_labels_counts_any_of_them(colour_shards):
    """--label-from queries: a sample's labels are all its matched classes; a hit is any one."""
    tok = byte_tokenizer()
    model = ColourModel(tok)
    label = caption_label_fn(COLOUR_NAMES)

    def two_labels(m):  # the true colour plus its neighbour
        y = label(m)
        return None if y is None else frozenset(y) | {(min(y) + 1) % 8}

    res = zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a photo of a {}."], two_labels, image_size=32)
    assert res["n"] == 16 and res["top1"] == 1.0 and res["chance"] == 2 / 8
    assert res["per_class"] == {}  # per-class counts are for single-label samples only

    def wrong_two(m):
        y = label(m)
        return None if y is None else frozenset({(min(y) + 1) % 8, (min(y) + 2) % 8})

    assert zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a {}"], wrong_two, image_size=32)["top1"] == 0.0
    with pytest.raises(ValueError, match="names any of the 8 classes"):
        zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a {}"], lambda m: None, image_size=32)


def test_retrieval_on_matching_embeddings_is_perfect(one_per_colour):
    tok = byte_tokenizer()
    res = retrieval(ColourModel(tok), tok, one_per_colour, image_size=32, batch_size=3)
    assert res["n"] == 8
    for direction in ("image_to_text", "text_to_image"):
        for k in (1, 5, 10):
            assert res[f"{direction}_R@{k}"] == 1.0


def test_recall_at_k_exact_values():
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(50, 16, generator=g), dim=-1)
    assert set(recall_at_k(emb, emb).values()) == {1.0}
    eye = torch.eye(4)
    r = recall_at_k(eye, eye[[1, 0, 2, 3]], ks=(1, 2, 5))  # two pairs swapped: their partner ranks 2nd
    assert r["image_to_text_R@1"] == 0.5 and r["text_to_image_R@1"] == 0.5
    # Ranks of the swapped pairs: image 0 scores text 0 at 0 and text 1 at 1 -> rank 1 (< 2).
    assert r["image_to_text_R@2"] == 1.0 and r["image_to_text_R@5"] == 1.0
    with pytest.raises(ValueError):
        recall_at_k(eye, eye[:3])


def test_label_functions():
    f = caption_label_fn(["red", "blue", "sea lion"])
    assert f({"text": "A RED ball"}) == {0}
    assert f({"text": "a redder ball"}) is None  # whole words only
    assert f({"text": "a sea lion, swimming"}) == {2}
    assert f({"text": "red and blue"}) is None
    q = query_label_fn(["red", "blue"])
    assert q({"queries": ["Blue", "square"]}) == {1} and q({"queries": ["red", "blue"]}) == {0, 1}
    assert q({}) is None and q({"queries": ["square"]}) is None


def test_load_classnames(tmp_path):
    (tmp_path / "c.txt").write_text("# colours\nred\n\n blue \n")
    assert load_classnames(str(tmp_path / "c.txt")) == ["red", "blue"]
    (tmp_path / "a.tsv").write_text("query\tsource\tstat\nred\tunigram\t120\nsea lion\ttitle\t80\n")
    assert load_classnames(str(tmp_path / "a.tsv")) == ["red", "sea lion"]
    (tmp_path / "d.txt").write_text("red\nred\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_classnames(str(tmp_path / "d.txt"))


def test_wit_eval_cli_on_a_checkpoint(tmp_path, colour_shards):
    from train.checkpoint import save_checkpoint
    from train.configs import CONFIGS
    from train.model import CLIP

    tok = byte_tokenizer()
    cfg = CONFIGS["tiny"].replace(vocab_size=tok.vocab_size)
    torch.manual_seed(0)
    model = CLIP(cfg, eot_id=tok.eot_id)
    ckpt = save_checkpoint(tmp_path / "step-00000001.pt", model=model, optimizer=None, step=1, rng=None,
                           data_state=None, config={"model": cfg.to_dict()}, tokenizer_json=tok.to_json())
    (tmp_path / "classes.txt").write_text("\n".join(COLOUR_NAMES) + "\n")
    out = tmp_path / "metrics.json"
    assert evaluate.run(["--checkpoint", str(ckpt), "--shards", colour_shards, "--classes", str(tmp_path / "classes.txt"),
                         "--out", str(out), "--batch-size", "7"]) == 0
    doc = json.loads(out.read_text())
    assert doc["zero_shot"]["n"] == 16 and doc["zero_shot"]["unlabelled"] == 2 and 0.0 <= doc["zero_shot"]["top1"] <= 1.0
    assert doc["retrieval"]["n"] == 18 and doc["retrieval"]["skipped"] == {"undecodable": 1}


def test_load_templates(tmp_path):
    assert load_templates(None) == DEFAULT_TEMPLATES
    (tmp_path / "t.txt").write_text("a photo of a {}.\n\n  a {} thing  \n")
    assert load_templates(str(tmp_path / "t.txt")) == ["a photo of a {}.", "a {} thing"]
    (tmp_path / "bad.txt").write_text("a photo of a {}.\na photo\n")
    with pytest.raises(ValueError, match="every template needs a '{}'"):
        load_templates(str(tmp_path / "bad.txt"))


def _tiny_checkpoint(path):
    from train.checkpoint import save_checkpoint
    from train.configs import CONFIGS
    from train.model import CLIP

    tok = byte_tokenizer()
    cfg = CONFIGS["tiny"].replace(vocab_size=tok.vocab_size)
    torch.manual_seed(0)
    return save_checkpoint(path, model=CLIP(cfg, eot_id=tok.eot_id), optimizer=None, step=1, rng=None,
                           data_state=None, config={"model": cfg.to_dict()}, tokenizer_json=tok.to_json())


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "missing"])
def test_wit_eval_on_a_bad_checkpoint_is_one_line(tmp_path, colour_shards, capsys, damage):
    good = _tiny_checkpoint(tmp_path / "good.pt").read_bytes()
    bad = tmp_path / "step-00000002.pt"
    if damage != "missing":
        bad.write_bytes({"truncated": good[: len(good) * 2 // 3], "random": random.Random(1).randbytes(4096),
                         "empty": b""}[damage])
    with pytest.raises(SystemExit) as err:
        evaluate.run(["--checkpoint", str(bad), "--shards", colour_shards, "--no-retrieval"])
    message = str(err.value.code)
    assert message.startswith("wit eval: ") and str(bad) in message and "\n" not in message, message
    assert "weights_only" not in message and "Traceback" not in capsys.readouterr().err


def _training_shards(d, colour_shards, with_phash: bool):
    """Training shards holding two of the eval images (one byte-identical, one re-encoded at
    another size and quality) among unrelated images; returns their keys in the eval set."""
    eval_samples = [s for s in read_samples(expand_shards(colour_shards), Counter()) if s["__key__"].startswith("00")]

    def near_copy(s: dict) -> tuple[bytes, int]:
        img = Image.open(io.BytesIO(image_of(s)[1])).convert("RGB").resize((96, 80))
        ImageDraw.Draw(img).rectangle((0, 0, 8, 6), fill=(128, 128, 128))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=70)
        return buf.getvalue(), phash.hamming(phash.phash64_bytes(buf.getvalue())[0], phash.phash64_bytes(image_of(s)[1])[0])

    copied = eval_samples[3]
    resaved, near = next((s, data) for s in eval_samples[4:] if 1 <= (data := near_copy(s))[1] <= 4)
    train = [sample(500 + i, Concept(COLOUR_NAMES[i % 8], "star", "striped")) for i in range(12)]
    train += [dict(sample(600, Concept("red", "circle", "plain"), text=copied["txt"].decode()), jpg=copied["jpg"]),
              dict(sample(601, Concept("red", "circle", "plain")), jpg=near[0])]
    with wds.TarWriter(str(d / "train-000000.tar")) as w:
        for s in train:
            if with_phash:
                meta = json.loads(s["json"])
                meta["phash"] = phash.to_hex(phash.phash64_bytes(image_of(s)[1])[0])
                s = dict(s, json=json.dumps(meta))
            w.write(s)
    return str(d / "train-000000.tar"), {copied["__key__"], resaved["__key__"]}


@pytest.mark.parametrize("with_phash", [True, False])
def test_decontaminate_leaves_out_eval_images_seen_in_training(tmp_path, colour_shards, with_phash):
    from train.decontaminate import decontaminate

    train, seen = _training_shards(tmp_path, colour_shards, with_phash)
    removed, report = decontaminate(colour_shards, train, max_distance=4)
    assert removed == seen
    assert report["removed"] == 2 and report["removed_at_distance_0"] == 1 and report["eval_samples"] == 19
    assert report["train_images"] == 14 and report["unhashable"] == 1  # the eval set's "not an image"
    assert report["captions_seen_in_training"] == 1
    assert decontaminate(colour_shards, train, max_distance=0)[1]["removed"] == 1  # only the byte-identical copy

    tok = byte_tokenizer()
    model = ColourModel(tok)
    full = zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a {} thing"], None, 32)
    clean = zero_shot(model, tok, colour_shards, COLOUR_NAMES, ["a {} thing"], None, 32, exclude=removed)
    assert clean["n"] == full["n"] - 2 and clean["skipped"] == {"undecodable": 1, "excluded": 2}
    assert retrieval(model, tok, colour_shards, 32, exclude=removed)["n"] == 16


def test_wit_eval_cli_reports_decontamination(tmp_path, colour_shards):
    train, _ = _training_shards(tmp_path, colour_shards, with_phash=True)
    ckpt = _tiny_checkpoint(tmp_path / "step-00000001.pt")
    out = tmp_path / "metrics.json"
    assert evaluate.run(["--checkpoint", str(ckpt), "--shards", colour_shards, "--train-shards", train,
                         "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["decontamination"]["removed"] == 2 and doc["retrieval"]["n"] == 16
