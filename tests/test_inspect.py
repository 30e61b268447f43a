"""`wit inspect`: exact summaries, --check catching each kind of damage, readable PNGs, and
no torch/Beam on import."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from wit_pipeline import inspect as wi
from wit_pipeline import shards
from wit_pipeline.core import parquet_io, schema
from wit_pipeline.core.keys import sample_key
from wit_pipeline.core.outputs import STATS
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render

# 10 samples over 3 shards (4, 3, 3): widths 40..76 step 4, height 32; 8 en + 2 de.
N = 10
SIZES = [4, 3, 3]


def _samples() -> list[dict]:
    concepts = all_concepts()
    out = []
    for i in range(N):
        c = concepts[i % 3]
        text = f"a {c.colour} {c.shape}" + " photo" * i  # words: 3 + i
        url = f"http://example.com/img/{i}.jpg"
        key = sample_key(url, text)
        size = (40 + 4 * i, 32)
        rec = {"key": key, "url": url, "page_url": "http://example.com/", "text": text,
               "language": "de" if i in (3, 7) else "en", "lang_score": 0.9, "query_ids": [i % 3],
               "phash": f"{i:016x}", "width": size[0], "height": size[1]}
        doc = shards.sample_json(rec, queries=["red", "blue", "green"])
        out.append({"key": key, "image": encode(render(c, size, i), "JPEG", 90), "ext": "jpg", "text": text, "json": doc})
    return out


@pytest.fixture(scope="module")
def final_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("final")
    samples = sorted(_samples(), key=lambda s: s["key"])
    entries, start = [], 0
    for i, n in enumerate(SIZES):
        name = shards.shard_name(i)
        count, nbytes, sha = shards.write_shard(str(root / name), samples[start : start + n])
        entries.append({"name": name, "samples": count, "bytes": nbytes, "sha256": sha})
        start += n
    stats = {"stages": [{"name": "read", "in": 12, "out": 10, "dropped": {"bad_json": 2}},
                        {"name": "write", "in": 10, "out": 10, "dropped": {}}], "job": "curate"}
    (root / STATS).write_text(json.dumps(stats))
    counts = {s["name"]: {k: s[k] for k in ("in", "out", "dropped")} for s in stats["stages"]}
    shards.write_manifest(str(root), entries, counts, {}, seed=0)
    return root


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_summary_exact(final_dir: Path) -> None:
    summary, problems, first = wi.inspect_path(str(final_dir), top=2, samples=3, progress=False)
    assert problems == []
    assert summary["format"] == "wit"
    assert summary["shards"] == 3 and summary["samples"] == N
    assert summary["bytes"] == sum(p.stat().st_size for p in final_dir.glob("*.tar"))
    assert summary["samples_per_shard"] == {"min": 3, "max": 4}
    assert summary["image_width"] == {"min": 40, "median": 56, "max": 76}
    assert summary["image_height"] == {"min": 32, "median": 32, "max": 32}
    words = [3 + i for i in range(N)]
    assert summary["caption_words"] == {"min": 3, "median": 7, "max": 12, "mean": sum(words) / N}
    chars = sorted(len(s["text"]) for s in _samples())
    assert summary["caption_chars"]["min"] == chars[0] and summary["caption_chars"]["max"] == chars[-1]
    assert summary["languages"] == {"en": 8, "de": 2}
    assert summary["queries"] == {"distinct": 3, "top": [["red", 4], ["blue", 3]]}
    assert summary["stats"]["adds_up"] is True
    assert [k for k, _, _ in first] == sorted(s["key"] for s in _samples())[:3]


def test_cli_text_and_json(final_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert wi.run([str(final_dir), "--check", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "check: ok" in out
    assert "samples/shard min/max" in out and "3 / 4" in out
    assert "write" in out and "adds up" in out
    assert wi.run([str(final_dir), "--json", "--check", "--top", "1", "--no-progress"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["check"] == {"ok": True, "problems": []}
    assert doc["samples"] == N and doc["queries"]["top"] == [["red", 4]]


def _problems(path: Path, capsys: pytest.CaptureFixture) -> list[str]:
    code = wi.run([str(path), "--check", "--json", "--no-progress"])
    doc = json.loads(capsys.readouterr().out)
    assert code == (1 if doc["check"]["problems"] else 0)
    return doc["check"]["problems"]


def test_check_of_a_relative_folder(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's `wit inspect wit-demo/shards --check` is a relative path: the manifest's
    shards and the folder's tars must be seen as the same files (they were not)."""
    copy(final_dir, tmp_path / "s")
    monkeypatch.chdir(tmp_path)
    assert _problems(Path("s"), capsys) == []
    assert _problems(Path("s/"), capsys) == []


def test_check_flipped_byte(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = copy(final_dir, tmp_path / "s")
    tar = root / shards.shard_name(1)
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF  # inside the first member's image bytes (the header is 512)
    tar.write_bytes(bytes(data))
    problems = _problems(root, capsys)
    assert any(p.startswith("wit-000001.tar: sha256") for p in problems), problems
    assert wi.run([str(root), "--check", "--no-progress"]) == 1
    assert "wit-000001.tar: sha256" in capsys.readouterr().out


def _rewrite(tar_path: Path, keep) -> None:
    """Rewrite a tar keeping members for which keep(name) is true (or renaming via a str)."""
    with tarfile.open(tar_path) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as dst:
        for m, data in members:
            name = keep(m.name)
            if name:
                info = tarfile.TarInfo(name if isinstance(name, str) else m.name)
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))


def test_check_missing_member(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = copy(final_dir, tmp_path / "s")
    tar = root / shards.shard_name(0)
    with tarfile.open(tar) as t:
        victim = t.getnames()[2]  # the first sample's .txt (members: jpg, json, txt)
    assert victim.endswith(".txt")
    _rewrite(tar, lambda n: n != victim)
    problems = _problems(root, capsys)
    key = victim.split(".")[0]
    assert len(problems) == 2
    assert problems[0] == f"wit-000000.tar: sample {key} lacks txt"
    assert problems[1].startswith("wit-000000.tar: sha256 ")


def test_check_truncated_tar(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = copy(final_dir, tmp_path / "s")
    tar = root / shards.shard_name(2)
    size = tar.stat().st_size
    tar.write_bytes(tar.read_bytes()[:1500])  # cut inside the first sample's image
    problems = _problems(root, capsys)
    assert problems[0].startswith("wit-000002.tar: unreadable tar after 0 samples (ReadError")
    assert problems[1:] == [
        f"wit-000002.tar: 1500 bytes, manifest.json says {size}",
        problems[2],
        "wit-000002.tar: 0 samples, manifest.json says 3",
        "stats.json: stage 'write' out=10 but the tars hold 7 samples",
    ]
    assert problems[2].startswith("wit-000002.tar: sha256 ")


def test_check_manifest_counts(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = copy(final_dir, tmp_path / "s")
    doc = json.loads((root / "manifest.json").read_text())
    doc["shards"][2]["samples"] += 1
    doc["totals"]["samples"] += 1
    (root / "manifest.json").write_text(json.dumps(doc))
    assert _problems(root, capsys) == ["wit-000002.tar: 3 samples, manifest.json says 4"]
    (root / "wit-000009.tar").write_bytes((root / "wit-000000.tar").read_bytes())
    (root / "wit-000001.tar").unlink()
    problems = _problems(root, capsys)
    assert "wit-000001.tar: listed in manifest.json but missing" in problems
    assert "wit-000009.tar: in the folder but not in manifest.json" in problems


def test_check_duplicate_key_unsafe_name_and_json_keys(final_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "s"
    root.mkdir()
    for i in range(3):
        shutil.copy(final_dir / shards.shard_name(i), root / shards.shard_name(i))
    # shard 2 gets a copy of shard 0's first sample: a key in two shards
    with tarfile.open(root / shards.shard_name(0)) as t:
        first = [(m, t.extractfile(m).read()) for m in t.getmembers()[:3]]
    with tarfile.open(root / shards.shard_name(2), "a") as t:
        for m, data in first:
            t.addfile(m, io.BytesIO(data))
        evil = tarfile.TarInfo("../evil.txt")
        evil.size = 3
        t.addfile(evil, io.BytesIO(b"bad"))
    # a sample whose json lacks "phash"
    with tarfile.open(root / shards.shard_name(1)) as t:
        names = t.getnames()
    json_name = names[1]
    key = json_name.split(".")[0]

    with tarfile.open(root / shards.shard_name(1)) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(root / shards.shard_name(1), "w") as dst:
        for m, data in members:
            if m.name == json_name:
                doc = json.loads(data)
                del doc["phash"]
                data = json.dumps(doc).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    problems = _problems(root, capsys)
    dup_key = first[0][0].name.split(".")[0]
    assert problems == [
        f"wit-000001.tar: sample {key} json lacks phash",
        f"duplicate key {dup_key} (in wit-000000.tar and wit-000002.tar)",
        "wit-000002.tar: 1 unsafe member name(s) or non-file member(s)",
        "manifest.json: missing beside 3 final shard(s): an unfinished wit curate (rerun it)",
    ]


def test_check_fails_on_a_killed_curate(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Tars, no manifest, no stats (curate writes both last) must not pass --check."""
    root = copy(final_dir, tmp_path / "killed")
    (root / "manifest.json").unlink()
    (root / STATS).unlink()
    assert _problems(root, capsys) == ["manifest.json: missing beside 3 final shard(s): an unfinished wit curate (rerun it)"]
    # Plain webdataset shards under other names (an eval set), or one tar on its own, are not curate's.
    (root / "wit-000000.tar").rename(root / "00000.tar")
    (root / "wit-000001.tar").rename(root / "00001.tar")
    (root / "wit-000002.tar").rename(root / "00002.tar")
    assert _problems(root, capsys) == []
    assert _problems(final_dir / "wit-000000.tar", capsys) == []


def test_check_undecodable_image(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "s"
    root.mkdir()
    shutil.copy(final_dir / shards.shard_name(0), root / "a.tar")
    with tarfile.open(root / "a.tar") as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(root / "a.tar", "w") as dst:
        for m, data in members:
            if m.name == members[0][0].name:
                data = b"not a jpeg at all"
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    key = members[0][0].name.split(".")[0]
    assert _problems(root / "a.tar", capsys) == [f"a.tar: sample {key} image does not decode (undecodable)"]


def test_check_stats_not_adding_up(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = copy(final_dir, tmp_path / "s")
    doc = json.loads((root / STATS).read_text())
    doc["stages"][0]["dropped"] = {"bad_json": 1}
    (root / STATS).write_text(json.dumps(doc))
    want0 = "manifest.json: counts disagree with stats.json stages"
    want = "stats.json: stage 'read': in=12 out=10 dropped={'bad_json': 1} leaves 1 unaccounted"
    assert _problems(root, capsys) == [want, want0]
    # the same file on its own
    assert wi.run([str(root / STATS), "--check"]) == 1
    out = capsys.readouterr().out
    assert want in out and "MISMATCH" in out and "DOES NOT ADD UP" in out
    assert wi.run([str(final_dir / STATS), "--check"]) == 0
    assert "check: ok" in capsys.readouterr().out


def test_pngs(final_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sheet, hist = tmp_path / "sheet.png", tmp_path / "hist.png"
    argv = [str(final_dir), "--contact-sheet", str(sheet), "--samples", "8", "--histogram", str(hist), "--no-progress"]
    assert wi.run(argv) == 0
    with Image.open(sheet) as img:
        # 6 columns x 2 rows of 176 x 255 cells
        assert img.format == "PNG" and img.size == (6 * 176, 2 * 255)
    with Image.open(hist) as img:
        assert img.format == "PNG" and img.size == (900, 44 + 3 * 22 + 16)
    first = sheet.read_bytes()
    assert wi.run(argv) == 0
    assert sheet.read_bytes() == first  # deterministic


@pytest.fixture()
def harvest_dir(tmp_path: Path) -> Path:
    root = tmp_path / "harvest"
    cand = [{"key": f"{i:016x}", "url": f"http://e.com/{i}.jpg", "text": f"t {i}", "page_url": "http://e.com/",
             "language": "en", "lang_score": 0.9, "query_ids": [i % 2], "queries": [("red", "blue")[i % 2]]}
            for i in range(7)]
    sel = [{"url": r["url"], "caption": r["text"], **{k: r[k] for k in schema.SELECTED_EXTRA_COLUMNS}} for r in cand[:5]]
    parquet_io.write_rows(str(root / "candidates" / "part-00000.parquet"), cand, schema.CANDIDATES, "key")
    parquet_io.write_rows(str(root / "selected" / "part-00000.parquet"), sel, schema.SELECTED, "key")
    qc = [{"query_id": 0, "query": "red", "count": 4, "selected": 3, "kept": 3},
          {"query_id": 1, "query": "blue", "count": 3, "selected": 2, "kept": 2}]
    parquet_io.write_rows(str(root / "query_counts.parquet"), qc, schema.QUERY_COUNTS, "query_id")
    stats = {"stages": [{"name": "match", "in": 9, "out": 7, "dropped": {"no_match": 2}},
                        {"name": "balance", "in": 7, "out": 5, "dropped": {"over_cap": 2}}],
             "job": "harvest", "config": {"t": 3}}
    (root / STATS).write_text(json.dumps(stats))
    return root


def test_harvest(harvest_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hist = tmp_path / "h.png"
    assert wi.run([str(harvest_dir), "--check", "--json", "--histogram", str(hist)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "harvest" and doc["candidates"] == 7 and doc["selected"] == 5 and doc["t"] == 3
    assert doc["queries"] == {
        "matched": 2,
        "before": {"total": 7, "max": 4, "over_t": 1},
        "after": {"total": 5, "max": 3, "none_kept": 0, "at_t": 1, "over_t": 0},
        "top": [["red", 4, 3, 3], ["blue", 3, 2, 2]],
    }
    assert [s["ok"] for s in doc["stats"]["stages"]] == [True, True]
    with Image.open(hist) as img:
        assert img.size == (900, 44 + 20 + 2 * 32 + 16)
    assert wi.run([str(harvest_dir), "--contact-sheet", str(tmp_path / "x.png")]) == 2
    # selected rows disagreeing with stats.json balance.out
    doc = json.loads((harvest_dir / STATS).read_text())
    doc["stages"][1] = {"name": "balance", "in": 7, "out": 6, "dropped": {"over_cap": 1}}
    (harvest_dir / STATS).write_text(json.dumps(doc))
    assert wi.run([str(harvest_dir), "--check", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["check"]["problems"] == ["selected: 5 rows but stats.json balance.out=6"]
    # --balance cap: each query keeps exactly min(count, t) itself
    doc["stages"][1] = {"name": "balance", "in": 7, "out": 5, "dropped": {"over_cap": 2}}
    doc["config"]["balance"] = "cap"
    (harvest_dir / STATS).write_text(json.dumps(doc))
    assert wi.run([str(harvest_dir), "--check", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["check"]["problems"] == [
        "query 'blue': --balance cap kept 2, expected min(3, 3)"]


def test_raw_img2dataset_shards(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """img2dataset layout: NNNNN.tar + NNNNN.parquet + NNNNN_stats.json; its json keys, not ours."""
    jpg = encode(render(all_concepts()[0], (48, 40), 0), "JPEG", 90)
    with tarfile.open(tmp_path / "00000.tar", "w") as t:
        for i in range(3):
            meta = {"url": f"http://e.com/{i}.jpg", "caption": f"red star {i}", "key": f"00000000{i}",
                    "sample_key": f"{i:016x}", "query_ids": [5], "language": "en"}
            for ext, data in (("jpg", jpg), ("txt", meta["caption"].encode()), ("json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(f"00000000{i}.{ext}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    pq.write_table(pa.table({"key": [f"00000000{i}" for i in range(4)], "status": ["success"] * 3 + ["failed_to_download"]}),
                   tmp_path / "00000.parquet")
    (tmp_path / "00000_stats.json").write_text(json.dumps({"count": 4, "successes": 3, "failed_to_download": 1}))
    assert wi.run([str(tmp_path), "--check", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "img2dataset" and doc["samples"] == 3
    assert doc["image_width"] == {"min": 48, "median": 48, "max": 48}
    assert doc["queries"] == {"distinct": 1, "top": [["#5", 3]]}
    assert doc["download"] == {"count": 4, "successes": 3, "failed_to_download": 1}


def test_bad_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert wi.run([str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert wi.run([str(tmp_path / "*.tar")]) == 2


def test_light_imports(final_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from wit_pipeline.cli import main\n"
        f"rc = main(['inspect', {str(final_dir)!r}, '--check', '--histogram', {str(tmp_path / 'h.png')!r},"
        f" '--contact-sheet', {str(tmp_path / 's.png')!r}, '--no-progress'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'apache_beam', 'webdataset', 'img2dataset'))\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"
