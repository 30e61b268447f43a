"""Checkpoints that load without running pickled code.

Everything saved is a tensor or plain str/int/float/list/dict, so `torch.load(...,
weights_only=True)` reads it; the model config and the tokenizer JSON travel inside, so a
checkpoint is self-describing. Writes go to a temporary file then `os.replace`, so a run
killed mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "wit-clip-checkpoint/1"
_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain values (weights_only-safe)."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    rng: dict[str, Any] | None,
    data_state: dict[str, Any] | None,
    config: dict[str, Any],
    tokenizer_json: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a checkpoint; `model` may be DDP/compiled-wrapped (the inner module is saved)."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)  # torch.compile wrapper
    doc = {
        "format": FORMAT,
        "step": int(step),
        "model": inner.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng": rng,
        "data_state": data_state or {},
        "config": dict(config),
        "tokenizer_json": tokenizer_json,
        "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(doc, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the latest
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class BadCheckpoint(ValueError):
    """A file that is not a readable wit checkpoint; the message is one line for the user."""


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with weights_only=True: a pickle that wants to run code is refused.

    Every failure to read it (truncated, random bytes, pickled code, another format) is a
    BadCheckpoint with a one-line reason; torch's own text would advise weights_only=False,
    which is exactly what must not be done with an untrusted file."""
    try:
        doc = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except pickle.UnpicklingError as exc:
        detail = str(exc).partition("WeightsUnpickler error:")[2].strip() or str(exc).strip()
        detail = (detail.splitlines() or [type(exc).__name__])[0]
        if "Unsupported global" in detail:
            name = detail.partition("GLOBAL ")[2].split(" ")[0]
            raise BadCheckpoint(f"{path}: refused: it holds pickled code or objects ({name}), not only tensors "
                                "and plain data; loading it could run code") from None
        raise BadCheckpoint(f"{path}: not a readable checkpoint (corrupt: {detail[:200]})") from None
    except Exception as exc:  # truncated zip, random bytes, EOF: torch raises many types
        raise BadCheckpoint(f"{path}: not a readable checkpoint (truncated or corrupt: {_first_line(exc)})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise BadCheckpoint(f"{path}: not a wit CLIP checkpoint (format {found})")
    return doc


def _first_line(exc: BaseException) -> str:
    """The first sentence of an exception's first line: torch's texts run on with advice."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0].split('. ')[0][:200]}" if text else type(exc).__name__


def checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Every `step-NNNNNNNN.pt` in `directory`, highest step first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The highest-step `step-NNNNNNNN.pt` in `directory` (None if there is none)."""
    found = checkpoints(directory)
    return found[0] if found else None


def load_latest_readable(directory: str | os.PathLike) -> tuple[Path, dict[str, Any], list[str]] | None:
    """(path, doc, reasons the newer ones were skipped) of the newest checkpoint that loads;
    None when `directory` has no checkpoint. Raises BadCheckpoint when none of them loads."""
    skipped: list[str] = []
    for path in checkpoints(directory):
        try:
            return path, load_checkpoint(path), skipped
        except BadCheckpoint as exc:
            skipped.append(str(exc))
    if skipped:
        raise BadCheckpoint(f"no readable checkpoint in {directory}: " + "; ".join(skipped))
    return None


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """(CLIP model in eval mode, Tokenizer) from a checkpoint, for evaluation and inference."""
    from train.configs import ModelConfig
    from train.model import CLIP
    from train.tokenizer import Tokenizer

    doc = load_checkpoint(path, map_location)
    tokenizer = Tokenizer.from_json(doc["tokenizer_json"])
    model = CLIP(ModelConfig.from_dict(doc["config"]["model"]), eot_id=tokenizer.eot_id)
    model.load_state_dict(doc["model"])
    return model.eval(), tokenizer
