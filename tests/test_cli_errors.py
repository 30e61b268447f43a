"""One rule for every `wit` command: a usage error exits 2 with one `prog: error:` line, a
failed run exits 1 with one line, and neither prints a traceback. Here: train, eval, gen-crawl,
serve, inspect, Beam's --runner, abbreviated flags, and faults of the machine (a full disk, a
read-only folder, a FIFO among the inputs) reaching the CLI from anywhere, Beam workers included."""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from wit_pipeline import cli

REPO = Path(__file__).resolve().parents[1]
WIT = [sys.executable, "-c", "import sys; from wit_pipeline.cli import main; sys.exit(main())"]
TRAIN = ["--shards", "x.tar", "--out", "{tmp}/run", "--steps", "5"]
EVAL = ["--checkpoint", "x.pt", "--shards", "x.tar"]


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        ("train.train", [*TRAIN, "--lr", "nan"], "--lr must be a positive number, got nan"),
        ("train.train", [*TRAIN, "--lr", "inf"], "--lr must be a positive number, got inf"),
        ("train.train", [*TRAIN, "--save-every", "-1"], "--save-every must be >= 0, got -1"),
        ("train.train", [*TRAIN, "--threads", "-1"], "--threads must be >= 0, got -1"),
        ("train.train", [*TRAIN, "--keep", "-2"], "--keep must be >= 0, got -2"),
        ("train.train", [*TRAIN, "--beta2", "1"], "--beta2 must be in [0, 1), got 1.0"),
        ("train.train", [*TRAIN, "--bpe-vocab", "10"], "--bpe-vocab must be >= 259"),
        ("train.train", [*TRAIN, "--device", "gpu"], "--device must be auto, cpu or cuda, got 'gpu'"),
        ("train.train", [*TRAIN, "--lr=1e-3", "--sav", "2"], "unrecognized arguments: --sav 2"),
        ("train.evaluate", [*EVAL, "--max-distance", "64"], "--max-distance must be in 0..63"),
        ("train.evaluate", [*EVAL, "--max-distance", "-1"], "--max-distance must be in 0..63"),
        ("train.evaluate", [*EVAL, "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        ("train.evaluate", [*EVAL, "--threads", "-1"], "--threads must be >= 0 (0: torch's default), got -1"),
        ("train.evaluate", [*EVAL, "--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        ("train.evaluate", [*EVAL, "--no-retr"], "unrecognized arguments: --no-retr"),
        ("wit_pipeline.synthetic.generate", ["--out", "{tmp}/afile", "--base-url", "http://127.0.0.1:1"],
         "--out {tmp}/afile: {tmp}/afile is a file, not a folder"),
        ("wit_pipeline.synthetic.generate", ["--out", "{tmp}/afile/sub", "--base-url", "http://127.0.0.1:1"],
         "--out {tmp}/afile/sub: {tmp}/afile is a file, not a folder"),
        ("wit_pipeline.synthetic.generate", ["--out", "{tmp}/g", "--base-url", "http://127.0.0.1:1", "--eval-dir",
                                             "{tmp}/afile"], "--eval-dir {tmp}/afile: {tmp}/afile is a file, not a folder"),
        ("wit_pipeline.synthetic.generate", ["--out", "{tmp}/g", "--base-url", "http://127.0.0.1:1", "--page", "3"],
         "unrecognized arguments: --page 3"),
        ("wit_pipeline.synthetic.server", ["{tmp}", "--po", "99999"], "unrecognized arguments: --po 99999"),
        ("wit_pipeline.inspect.cli", ["{tmp}", "--chec"], "unrecognized arguments: --chec"),
        ("beam_jobs.harvest", ["--input", "x.wat.gz", "--output", "{tmp}/h", "--runner", "Nope"],
         "--runner 'Nope' is not a Beam runner (one of: "),
        ("beam_jobs.curate", ["--input", "x", "--output", "{tmp}/c", "--runner", "no.such.Runner"],
         "--runner 'no.such.Runner': module no.such is not installed"),
    ],
)
def test_usage_errors_exit_2_with_one_line(module, argv, message, tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    argv = [a.format(tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).run(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message.format(tmp=tmp_path) in err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written
    assert (tmp_path / "afile").read_text() == "mine"


def test_eval_on_a_cuda_device_this_torch_has_not(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available() and torch.cuda.device_count() > 9:
        pytest.skip("this machine has a cuda:9")
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module("train.evaluate").run([*EVAL, "--device", "cuda:9"])
    assert exit_.value.code == 2
    assert "--device cuda:9: " in capsys.readouterr().err.strip().splitlines()[-1]


def _wit(*argv: str, prefix: list[str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`wit argv` in its own process group, all of which is killed if it outlives `timeout` (a
    hung Beam worker would otherwise hold the pipes open, and the test, for ever)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    args = [*(prefix or []), *WIT, *argv]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"wit {' '.join(argv)} still ran after {timeout} s")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _private_mount(folder: Path, options: str) -> list[str] | None:
    """A command prefix that runs the rest in a private mount namespace with a tmpfs (`options`)
    on `folder`, so nothing outside the test sees it; None where this machine cannot."""
    if shutil.which("unshare") is None:
        return None
    script = f'mount -t tmpfs -o {options} tmpfs "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(folder), "true"], capture_output=True)
    return ["unshare", "-rm", "sh", "-c", script, str(folder)] if probe.returncode == 0 else None


def _one_line_failure(result: subprocess.CompletedProcess, stage: str, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr[-3000:]
    assert lines and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = lines[-1]
    assert last.startswith(f"wit {stage}: ") and all(w in last for w in words), last
    return last


def test_a_full_disk_is_one_line_naming_the_path(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    prefix = _private_mount(folder, "size=64k")
    if prefix is None:
        pytest.skip("cannot mount a tmpfs here (needs unshare -rm and mount in a user namespace)")
    result = _wit("gen-crawl", "--out", str(folder / "g"), "--base-url", "http://127.0.0.1:1", "--pages", "8",
                  prefix=prefix)
    _one_line_failure(result, "gen-crawl", "No space left on device", str(folder / "g"))


def test_a_read_only_folder_is_one_line_naming_the_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    prefix = _private_mount(folder, "ro")
    if prefix is None:
        pytest.skip("cannot mount a tmpfs here (needs unshare -rm and mount in a user namespace)")
    result = _wit("gen-crawl", "--out", str(folder / "g"), "--base-url", "http://127.0.0.1:1", prefix=prefix)
    _one_line_failure(result, "gen-crawl", "Read-only file system", str(folder / "g"))


def _raw_shards(folder: Path, n: int) -> None:
    """One finished img2dataset-style raw shard of `n` distinct images."""
    from wit_pipeline.core import keys
    from wit_pipeline.synthetic.concepts import all_concepts
    from wit_pipeline.synthetic.images import encode, render

    folder.mkdir()
    with tarfile.open(folder / "00000.tar", "w") as tar:
        for i, concept in enumerate(all_concepts()[:n]):
            url, caption = f"http://img.example/{i}.jpg", f"a red picture {i}"
            meta = {"url": url, "caption": caption, "sample_key": keys.sample_key(url, caption), "query_ids": [0]}
            for name, data in ((f"{i:09d}.jpg", encode(render(concept, (160, 160), seed=i), quality=95)),
                               (f"{i:09d}.json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (folder / "00000_stats.json").write_text("{}")


def test_a_full_disk_inside_a_beam_worker_is_one_line(tmp_path):
    """curate's shards are written by Beam workers, which wrap the OSError in a RuntimeError."""
    folder = tmp_path / "small"
    folder.mkdir()
    prefix = _private_mount(folder, "size=48k")
    if prefix is None:
        pytest.skip("cannot mount a tmpfs here (needs unshare -rm and mount in a user namespace)")
    _raw_shards(tmp_path / "raw", 24)
    allow = tmp_path / "allow.tsv"
    allow.write_text("query\tsource\tstat\nred\tword\t1\n")
    result = _wit("curate", "--input", str(tmp_path / "raw"), "--output", str(folder / "out"), "--allowlist", str(allow),
                  prefix=prefix)
    _one_line_failure(result, "curate", "No space left on device", str(folder / "out"))


def test_a_fifo_among_harvest_inputs_is_refused_not_waited_on(tmp_path, crawl):
    """A glob that matches a FIFO is refused before the job starts; a listed one (checked on the
    worker) is that file's dead letter. Either way nothing blocks on the FIFO's open."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    wat = sorted(Path(crawl.wat_glob).parent.glob("*.warc.wat.gz"))[0]
    shutil.copy(wat, inputs / wat.name)
    os.mkfifo(inputs / "zz.warc.wat.gz")
    result = _wit("harvest", "--input", str(inputs / "*.warc.wat.gz"), "--output", str(tmp_path / "h"), timeout=120)
    _one_line_failure(result, "harvest", f"{inputs / 'zz.warc.wat.gz'} is a FIFO, not a regular file")
    assert not (tmp_path / "h").exists()

    script = ("from wit_pipeline.core.stats import DictTally\nfrom wit_pipeline.web.extract import iter_pairs\n"
              "dead = []\n"
              f"assert list(iter_pairs({str(inputs / 'zz.warc.wat.gz')!r}, DictTally(), lambda s, e: dead.append(e))) == []\n"
              "print(dead[0])\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0 and "a FIFO, not a regular file" in done.stdout, done.stderr[-2000:]


def test_the_wit_entrypoint_passes_other_errors_through(monkeypatch):
    """Only faults of the machine are turned into a line: a bug keeps its traceback."""
    import types

    module = types.ModuleType("wit_fake_stage")

    def run(argv):
        raise KeyError("a bug")

    module.run = run
    monkeypatch.setitem(sys.modules, "wit_fake_stage", module)
    monkeypatch.setitem(cli.STAGES, "fake", ("wit_fake_stage", "a stage that has a bug"))
    with pytest.raises(KeyError):
        cli.main(["fake"])
