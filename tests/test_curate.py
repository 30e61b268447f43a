"""beam_jobs.curate end to end on generated img2dataset-style raw shards.

Beam runs are few (each costs seconds): one full run, the same job on two processes into
the same output (determinism, atomic overwrite), one run without rebalancing, one with a
record whose handling raises, and a small pipeline checking the banded near-dup transform
against `near_duplicates` on one machine and brute force.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import random
import tarfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from beam_jobs import curate
from beam_jobs.common import make_pipeline
from wit_pipeline import shards
from wit_pipeline.core import keys, parquet_io, schema
from wit_pipeline.core.outputs import STATS
from wit_pipeline.image import neardup, phash
from wit_pipeline.stages import curate as stage
from wit_pipeline.stages.balance import select_cap
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render

D = 4
QUERIES = ["red", "green", "blue"]
MAX_PIXELS = 1_000_000


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


class RawShard:
    """Writes a tar in img2dataset's webdataset layout (running keys, json with our columns)."""

    def __init__(self, path: Path) -> None:
        self.tar = tarfile.open(path, "w")
        self.n = 0

    def add(self, url: str, caption: str, image: bytes | None, query_ids: list[int], with_json: bool = True,
            sample_key: str | None = None) -> str:
        k = f"{self.n:09d}"
        self.n += 1
        meta = {
            "url": url,
            "caption": caption,
            "key": k,
            "sample_key": sample_key or keys.sample_key(url, caption),
            "page_url": "http://page.example/" + url.rsplit("/", 1)[-1],
            "language": "en",
            "lang_score": 0.75,
            "query_ids": query_ids,
            "status": "success",
            "error_message": None,
            "width": 256,
            "height": 256,
        }
        if image is not None:
            _add(self.tar, f"{k}.jpg", image)
        _add(self.tar, f"{k}.txt", caption.encode())
        if with_json:
            _add(self.tar, f"{k}.json", json.dumps(meta, indent=4).encode())
        return keys.sample_key(url, caption)

    def close(self) -> None:
        self.tar.close()


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (2000, 2000)).save(buf, "PNG")  # 4 MP declared, a few kB on disk
    return buf.getvalue()


def make_raw(root: Path) -> dict:
    """Two raw shards + a corrupt tar + an eval folder; returns what the test expects."""
    raw = root / "raw"
    raw.mkdir()
    concepts = random.Random(3).sample(all_concepts(), 14)
    base = [render(c, (256, 256), seed=i) for i, c in enumerate(concepts)]
    data = [encode(img) for img in base]
    hashes = [phash.phash64_bytes(b)[0] for b in data]
    assert min(phash.hamming(a, b) for a, b in itertools.combinations(hashes, 2)) > 2 * D

    a, b = RawShard(raw / "00000.tar"), RawShard(raw / "00001.tar")
    k = {}
    for i in range(14):
        shard = a if i < 7 else b
        k[i] = shard.add(f"http://img.example/{i}.jpg", f"a picture number {i}", data[i], [i % 3])
    k["exact"] = b.add("http://img.example/copy0.jpg", "copy of zero", data[0], [0])  # same bytes
    k["requal"] = a.add("http://img.example/q1.jpg", "reencoded one", encode(base[1], quality=50), [1])  # same hash
    k["resized"] = a.add("http://img.example/r3.jpg", "resized three", encode(base[3].resize((200, 200))), [0])
    k["cropped"] = b.add("http://img.example/c4.jpg", "cropped four", encode(base[4].crop((3, 3, 253, 253))), [1])
    k["bigger"] = b.add("http://img.example/big5.jpg", "bigger five", encode(base[5].resize((320, 320))), [2])
    b.add("http://img.example/8.jpg", "a picture number 8", data[8], [8 % 3])  # same sample downloaded twice
    a.add("http://img.example/junk.jpg", "junk", b"this is not an image", [0])
    a.add("http://img.example/trunc.jpg", "truncated", encode(base[9])[:400], [0])
    a.add("http://img.example/bomb.png", "bomb", _bomb_png(), [0])
    a.add("http://img.example/nojson.jpg", "no json", data[10], [0], with_json=False)
    b.add("http://img.example/noimage.jpg", "no image", None, [0])
    k["noquery"] = b.add("http://img.example/nq.jpg", "no query", encode(render(all_concepts()[0], (256, 256), 99)), [])
    _add(a.tar, "../evil.jpg", data[11])
    b.add("http://img.example/evil10.jpg", "evil key", data[12], [0], sample_key="../../evil10")
    # planted distances to the original (d=4): same hash -> exact_duplicate, 1..d -> near_duplicate
    dist = {
        name: phash.hamming(hashes[i], phash.phash64_bytes(img)[0])
        for name, i, img in [
            ("requal", 1, encode(base[1], quality=50)),
            ("resized", 3, encode(base[3].resize((200, 200)))),
            ("cropped", 4, encode(base[4].crop((3, 3, 253, 253)))),
            ("bigger", 5, encode(base[5].resize((320, 320)))),
            ("eval", 6, encode(base[6].crop((2, 2, 254, 254)), "PNG")),
        ]
    }
    assert dist == {"requal": 0, "resized": 2, "cropped": 2, "bigger": 0, "eval": 2}
    a.close()
    b.close()
    (raw / "00002.tar").write_bytes(b"this is not a tar file at all" * 40)
    for n in range(3):  # img2dataset writes each shard's stats last: these shards are finished
        (raw / f"{n:05d}_stats.json").write_text("{}")

    evals = root / "eval"
    evals.mkdir()
    (evals / "e6.png").write_bytes(encode(base[6].crop((2, 2, 254, 254)), "PNG"))
    (evals / "notes.txt").write_text("not an image, ignored")
    allow = root / "allow.tsv"
    allow.write_text("query\tsource\tstat\n" + "".join(f"{q}\tword\t1\n" for q in QUERIES))
    return {"keys": k, "hashes": hashes, "raw": raw, "eval": evals, "allow": allow}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_raw(tmp_path_factory.mktemp("curate"))


def _args(raw: dict, out: Path, *extra: str) -> list[str]:
    return [
        "--input", str(raw["raw"]),
        "--output", str(out),
        "--allowlist", str(raw["allow"]),
        "--eval-images", str(raw["eval"]),
        "--max-pixels", str(MAX_PIXELS),
        "--seed", "5",
        *extra,
    ]  # fmt: skip


def _read_all(out: Path) -> list[dict]:
    samples = []
    for url in shards.shard_urls(str(out)):
        samples += list(shards.iter_tar_samples(url))
    return samples


EXPECTED_BASE = {
    # 00000.tar: 7 base + requal, resized, junk, trunc, bomb, nojson(1 group), ../evil; 00001: 7 + exact,
    # cropped, bigger, dup8, noimage, noquery, a sample_key ../../evil10; 00002.tar is not a tar.
    "read": {"in": 29, "out": 24, "dropped": {"bad_key": 1, "bad_member": 1, "bad_tar": 1, "missing_image": 1,
                                              "missing_json": 1}},
    "decode": {"in": 24, "out": 21, "dropped": {"too_many_pixels": 1, "truncated": 1, "undecodable": 1}},
    # exact: copy of 0, re-encoded 1, 5 (its upscaled copy ranks first); near: resized 3, cropped 4
    "dedup": {"in": 21, "out": 15, "dropped": {"duplicate_key": 1, "exact_duplicate": 3, "near_duplicate": 2}},
    "decontaminate": {"in": 15, "out": 14, "dropped": {"near_eval": 1}},
    "eval_images": {"in": 1, "out": 1, "dropped": {}},  # outside the chain: the eval folder's images
}


def _dead_letters(out: Path) -> list[dict]:
    return parquet_io.read_table(str(out / "dead_letter" / "*.parquet"), schema.DEAD_LETTER).to_pylist()


def _stages(out: Path) -> dict:
    doc = json.loads((out / STATS).read_text())
    return {s["name"]: {f: s[f] for f in ("in", "out", "dropped")} for s in doc["stages"]}


def test_curate_full_run_then_rerun_on_two_processes_is_byte_identical(raw: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert curate.run(_args(raw, out, "--rebalance", "--t", "2", "--samples-per-shard", "4")) == 0
    stages = _stages(out)
    assert stages == {
        **EXPECTED_BASE,
        "rebalance": {"in": 14, "out": 6, "dropped": {"no_query": 1, "over_cap": 7}},
        "write": {"in": 6, "out": 6, "dropped": {}},
    }
    manifest = shards.read_manifest(str(out))
    assert [(s["name"], s["samples"]) for s in manifest["shards"]] == [("wit-000000.tar", 4), ("wit-000001.tar", 2)]
    assert manifest["seed"] == 5 and manifest["config"]["t"] == 2 and manifest["config"]["rebalance"] is True
    assert manifest["config"] == json.loads((out / STATS).read_text())["config"]
    assert sorted(manifest["config"]) == sorted(f.name for f in dataclasses.fields(stage.CurateConfig))
    assert [shards.sha256_of(str(out / s["name"])) for s in manifest["shards"]] == [s["sha256"] for s in manifest["shards"]]

    samples = _read_all(out)
    k = raw["keys"]
    got = [s["__key__"] for s in samples]
    # the kept set is `cap` balancing (t=2) over the decontaminated survivors
    win0, win1 = min(k[0], k["exact"]), min(k[1], k["requal"])  # equal size: the lower key ranks first
    survivors = [(win0, [0]), (k[3], [0]), (k[9], [0]), (k[12], [0]), (win1, [1]), (k[7], [1]), (k[10], [1])]
    survivors += [(k[13], [1]), (k[4], [1]), (k[2], [2]), (k["bigger"], [2]), (k[8], [2]), (k[11], [2])]
    expect_keys = select_cap(survivors, 2, 5)
    assert set(got) == expect_keys and len(got) == 6
    # global order: shard p // 4 by salted_hash(key, "order", seed), sorted by key inside a shard
    order = sorted(expect_keys, key=lambda key: (keys.salted_hash(key, "order", 5), key))
    assert got == sorted(order[:4]) + sorted(order[4:])
    for s in samples:
        doc = json.loads(s["json"])
        assert doc["key"] == s["__key__"] and doc["phash"] == phash.to_hex(phash.phash64_bytes(s["jpg"])[0])
        assert doc["queries"] == [QUERIES[q] for q in doc["query_ids"]] and s["txt"].decode() == doc["text"]

    # same job, two worker processes, same output folder (plus a stale shard of an "earlier run")
    shas = {s["name"]: s["sha256"] for s in manifest["shards"]}
    (out / "wit-000099.tar").write_bytes(b"stale")
    args = _args(raw, out, "--rebalance", "--t", "2", "--samples-per-shard", "4")
    assert curate.run([*args, "--direct_num_workers=2", "--direct_running_mode=multi_processing"]) == 0
    again = shards.read_manifest(str(out))
    assert {s["name"]: s["sha256"] for s in again["shards"]} == shas
    assert {s["name"]: shards.sha256_of(str(out / s["name"])) for s in again["shards"]} == shas
    assert sorted(p.name for p in out.iterdir()) == [".wit-curate", "dead_letter", "manifest.json", STATS, "wit-000000.tar",
                                                     "wit-000001.tar"]
    assert _stages(out)["write"]["out"] == 6
    assert _dead_letters(out) == []
    assert not list(raw["raw"].parent.rglob("evil.jpg")) and not list(raw["raw"].parent.rglob("evil10*"))


def test_curate_without_rebalance_keeps_every_survivor(raw: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert curate.run(_args(raw, out, "--samples-per-shard", "5")) == 0
    assert _stages(out) == {
        **EXPECTED_BASE,
        "rebalance": {"in": 14, "out": 14, "dropped": {}},
        "write": {"in": 14, "out": 14, "dropped": {}},
    }
    manifest = shards.read_manifest(str(out))
    assert [s["samples"] for s in manifest["shards"]] == [5, 5, 4]
    k = raw["keys"]
    kept = {s["__key__"] for s in _read_all(out)}
    dropped = {k[0] if k[0] > k["exact"] else k["exact"], k["requal"] if k["requal"] > k[1] else k[1]}
    dropped |= {k["resized"], k["cropped"], k[5], k[6]}  # smaller copies lose; 6 is near the eval image
    assert kept == {v for v in k.values()} - dropped


def test_a_record_whose_handling_raises_costs_only_itself(raw: dict, tmp_path: Path, monkeypatch) -> None:
    """Fault injection: one record's decode raises, and so does reading one eval
    file; the job exits 0, each is a dead letter and a dropped.error, an eval tar that is not
    a tar is `unreadable`, and every other record is where it was."""
    victim = raw["keys"][2]
    decode, eval_images = stage.decode, stage.eval_images

    def flaky_decode(record, max_pixels):
        if record["key"] == victim:
            raise RuntimeError("injected fault")
        return decode(record, max_pixels)

    def flaky_eval_images(url, tally, name):
        if url.endswith("boom.png"):
            raise RuntimeError("injected eval fault")
        return eval_images(url, tally, name)

    monkeypatch.setattr(stage, "decode", flaky_decode)
    monkeypatch.setattr(stage, "eval_images", flaky_eval_images)
    evals = tmp_path / "eval"
    evals.mkdir()
    (evals / "e6.png").write_bytes((raw["eval"] / "e6.png").read_bytes())
    (evals / "boom.png").write_bytes(b"never read")
    (evals / "broken.tar").write_bytes(b"not a tar" * 100)
    out = tmp_path / "out"
    assert curate.run([*_args(raw, out, "--samples-per-shard", "5"), "--eval-images", str(evals)]) == 0
    assert _stages(out) == {
        **EXPECTED_BASE,
        "decode": {"in": 24, "out": 20, "dropped": {"error": 1, "too_many_pixels": 1, "truncated": 1, "undecodable": 1}},
        "dedup": {"in": 20, "out": 14, "dropped": {"duplicate_key": 1, "exact_duplicate": 3, "near_duplicate": 2}},
        "decontaminate": {"in": 14, "out": 13, "dropped": {"near_eval": 1}},
        "rebalance": {"in": 13, "out": 13, "dropped": {}},
        "write": {"in": 13, "out": 13, "dropped": {}},
        "eval_images": {"in": 3, "out": 1, "dropped": {"error": 1, "unreadable": 1}},
    }
    assert _dead_letters(out) == [
        {"stage": "eval_images", "source": str(evals / "boom.png"), "error": "RuntimeError: injected eval fault"},
        {"stage": "decode", "source": victim, "error": "RuntimeError: injected fault"},
    ]
    k = raw["keys"]
    kept = {s["__key__"] for s in _read_all(out)}
    dropped = {max(k[0], k["exact"]), max(k["requal"], k[1]), k["resized"], k["cropped"], k[5], k[6], victim}
    assert kept == set(k.values()) - dropped


def test_curate_config_is_validated_once_with_one_line_errors(raw: dict, tmp_path: Path, capsys) -> None:
    for flags, message in ((("--max-distance", "64"), "--max-distance must be in 0..63"),
                           (("--t", "0"), "--t must be positive"),
                           (("--order-bucket-bits", "25"), "--order-bucket-bits must be in 1..24")):
        with pytest.raises(SystemExit) as exit_:
            curate.parse_args(["--input", "x", "--output", str(tmp_path), *flags])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="samples-per-shard"):
        stage.CurateConfig(input=("x",), output="y", allowlist="demo", samples_per_shard=0)


def test_curate_refuses_an_output_that_is_not_its_own(raw: dict, tmp_path: Path) -> None:
    """`--output` = its own input (a download's folder) or a folder of someone's files: refused
    in one line before anything is written (curate's rerun rewrites stats.json and removes
    shards it did not write); its own earlier output is fine."""
    before = {p: p.read_bytes() for p in Path(raw["raw"]).rglob("*") if p.is_file()}
    for output in (raw["raw"], tmp_path / "mine"):
        if output == tmp_path / "mine":
            output.mkdir()
            (output / "notes.txt").write_text("mine")
        with pytest.raises(SystemExit, match=r"^wit curate: .*(another stage's output|not a wit curate output)"):
            curate.run(_args(raw, output))
    assert {p: p.read_bytes() for p in Path(raw["raw"]).rglob("*") if p.is_file()} == before
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine" and len(list((tmp_path / "mine").iterdir())) == 1
    stage.check_output(str(tmp_path / "new"))  # new, empty: fine


def _clustered_hashes(n: int, seed: int) -> list[int]:
    """Random hashes, many with planted neighbours at distance 0..6 (so d=4 cuts through)."""
    rng = random.Random(seed)
    out: list[int] = []
    while len(out) < n:
        if out and rng.random() < 0.6:
            h = rng.choice(out)
            for bit in rng.sample(range(64), rng.randint(0, 6)):
                h ^= 1 << bit
        else:
            h = rng.getrandbits(64)
        out.append(h)
    return out


def test_banded_beam_near_dup_equals_near_duplicates_and_brute_force() -> None:
    hashes = _clustered_hashes(300, seed=11)
    rng = random.Random(1)
    items = [(f"{i:016x}", phash.to_hex(h), rng.choice([100, 200, 300])) for i, h in enumerate(hashes)]

    brute: dict[str, int] = {}
    for (ka, ha, aa), (kb, hb, ab) in itertools.combinations(items, 2):
        dist = phash.hamming(phash.from_hex(ha), phash.from_hex(hb))
        if dist <= D:
            worse = max((-aa, ka), (-ab, kb))[1]
            brute[worse] = min(brute.get(worse, 99), min(dist, 1))  # 0: exact copy, 1: near
    assert 50 < len(brute) < 250 and 0 in brute.values()

    # The same rule on one machine (one group holding everything) gives the same answer.
    assert neardup.near_duplicates([(k, phash.from_hex(h), a) for k, h, a in items], D) == brute

    with make_pipeline([]) as p:
        drops = p | beam.Create(items) | curate.NearDuplicates(D)
        assert_that(drops, equal_to(sorted(brute.items())))


def test_inputs_are_a_folders_tars_or_those_of_its_subfolders(tmp_path: Path):
    """`wit download --engine beam` writes one subfolder per selected file; curate reads it whole."""
    beam_layout = tmp_path / "beam"
    for sub in ("part-00000-of-00002", "part-00001-of-00002"):
        (beam_layout / sub).mkdir(parents=True)
        (beam_layout / sub / "00000.tar").write_bytes(b"")
        (beam_layout / sub / "00000_stats.json").write_text("{}")
    assert curate.expand_inputs([str(beam_layout)]) == ([
        str(beam_layout / "part-00000-of-00002" / "00000.tar"),
        str(beam_layout / "part-00001-of-00002" / "00000.tar"),
    ], [])
    local_layout = tmp_path / "local"
    (local_layout / "nested").mkdir(parents=True)
    (local_layout / "00000.tar").write_bytes(b"")
    (local_layout / "00000_stats.json").write_text("{}")
    (local_layout / "nested" / "00000.tar").write_bytes(b"")
    assert curate.expand_inputs([str(local_layout), str(tmp_path / "missing")]) == ([str(local_layout / "00000.tar")], [])


def test_unfinished_download_shards_are_skipped_and_reported(tmp_path: Path):
    """img2dataset writes NNNNN_stats.json last: a tar without it belongs to a download still
    running or killed, which its rerun deletes and fetches again."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for n in (0, 1, 2):
        (raw / f"{n:05d}.tar").write_bytes(b"")
    (raw / "00000_stats.json").write_text("{}")
    (raw / "00002_stats.json").write_text("{}")
    (raw / "wit-000000.tar").write_bytes(b"")  # final shards (eval sets) need no stats file
    assert curate.expand_inputs([str(raw / "*.tar")]) == (
        [str(raw / "00000.tar"), str(raw / "00002.tar"), str(raw / "wit-000000.tar")], [str(raw / "00001.tar")])
    (raw / "00000_stats.json").unlink()
    (raw / "00002_stats.json").unlink()
    (raw / "wit-000000.tar").unlink()
    with pytest.raises(SystemExit, match="3 unfinished: rerun the download"):
        curate.run(["--input", str(raw), "--output", str(tmp_path / "out")])


def test_eval_images_are_found_in_class_folders(tmp_path: Path):
    ev = tmp_path / "val"
    (ev / "n01440764").mkdir(parents=True)
    (ev / "n01443537").mkdir()
    for rel in ("top.jpg", "n01440764/a.JPEG", "n01443537/b.png", "n01443537/c.gif", "n01443537/notes.txt"):
        (ev / rel).write_bytes(b"x")
    assert curate.expand_eval(str(ev)) == sorted(
        str(ev / rel) for rel in ("top.jpg", "n01440764/a.JPEG", "n01443537/b.png", "n01443537/c.gif"))


def test_one_key_under_two_near_hashes_is_not_its_own_near_duplicate():
    """The same sample fetched twice (the image changed a bit in between) must not drop itself:
    dedup_verdicts keeps one copy and counts the other as duplicate_key."""
    items = [("K", phash.to_hex(0x1234), 100), ("K", phash.to_hex(0x1234 ^ 1), 50),
             ("L", phash.to_hex(0x1234 ^ 3), 10)]
    groups: dict = {}
    for item in items:
        for band, value in stage.band_entries(item, D):
            groups.setdefault(band, []).append(value)
    drops: dict[str, int] = {}
    for band, members in groups.items():
        for key, dist in stage.band_drops((band, members), D):
            drops[key] = min(drops.get(key, 9), dist)
    assert drops == {"L": 1}  # L is near K's better copy; K is not near itself


def _member(tar: tarfile.TarFile, name: str | bytes, data: bytes) -> None:
    info = tarfile.TarInfo("x")
    info.name = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_hostile_captions_cost_only_themselves(tmp_path: Path) -> None:
    """A raw shard whose captions are a lone surrogate (JSON "\\ud800", which json.loads
    accepts), a surrogate in another string, a 2 MB caption, a member named in non-UTF-8 bytes
    and a NaN lang_score: curate finishes, each is a counted drop with its reason, and the
    shard's JSON stays strict (NaN written as null)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    images = [encode(render(c, (128, 128), seed=i)) for i, c in enumerate(random.Random(5).sample(all_concepts(), 5))]
    with tarfile.open(raw / "00000.tar", "w", format=tarfile.GNU_FORMAT) as tar:
        def sample(n: int, meta_json: str, image: bytes, txt: bytes = b"x") -> None:
            _member(tar, f"{n:09d}.jpg", image)
            _member(tar, f"{n:09d}.txt", txt)
            _member(tar, f"{n:09d}.json", meta_json.encode())

        def meta(n: int, caption: str, **extra) -> str:  # ensure_ascii: a surrogate stays an escape
            return json.dumps({"url": f"http://img.example/{n}.jpg", "caption": caption, "query_ids": [0],
                               "page_url": "http://page.example/", "language": "en", "lang_score": 0.5, **extra})

        sample(0, meta(0, "a good red picture"), images[0])
        sample(1, meta(1, "\ud800"), images[1])
        sample(2, meta(2, "a red thing", page_url="http://page.example/\udfff"), images[2])
        sample(3, meta(3, "red " * 500_000), images[3])
        sample(4, meta(4, "a red nan score", lang_score=float("nan")), images[4])
        _member(tar, b"\xff\xfe.jpg", images[0])  # not UTF-8: tarfile makes it surrogates
    (raw / "00000_stats.json").write_text("{}")
    allow = tmp_path / "allow.tsv"
    allow.write_text("query\tsource\tstat\nred\tword\t1\n")
    out = tmp_path / "out"
    assert curate.run(["--input", str(raw), "--output", str(out), "--allowlist", str(allow)]) == 0
    assert _stages(out)["read"] == {"in": 6, "out": 2,
                                    "dropped": {"bad_member": 1, "bad_text": 2, "too_long": 1}}
    assert _stages(out)["write"]["out"] == 2
    docs = {}
    for s in _read_all(out):
        docs[s["__key__"]] = json.loads(s["json"], parse_constant=lambda c: pytest.fail(f"{c} in a shard's JSON"))
    assert sorted(d["text"] for d in docs.values()) == ["a good red picture", "a red nan score"]
    assert sorted(d["lang_score"] is None for d in docs.values()) == [False, True]


def test_caption_length_cap_is_a_config_field(tmp_path: Path, capsys) -> None:
    assert stage.read(_raw_sample("x" * 1000)) != stage.read(_raw_sample("x" * 1001))
    assert stage.read(_raw_sample("x" * 1001)).reason == "too_long"
    assert stage.read(_raw_sample("x" * 20), max_caption_chars=10).reason == "too_long"
    with pytest.raises(SystemExit) as exit_:
        curate.parse_args(["--input", "x", "--output", str(tmp_path), "--max-caption-chars", "0"])
    assert exit_.value.code == 2 and "--max-caption-chars must be positive" in capsys.readouterr().err


def _raw_sample(caption: str) -> dict:
    meta = {"url": "http://img.example/1.jpg", "caption": caption}
    return {"__key__": "000000000", "__url__": "x.tar", "jpg": b"jpeg", "json": json.dumps(meta).encode()}
