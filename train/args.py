"""Value checks shared by `wit train` and `wit eval` that argparse's types do not make: each
failure is a usage error (exit 2, one line) before anything is read or written."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterable

import torch


def check_values(parser: argparse.ArgumentParser, rules: Iterable[tuple[str, object, bool, str]]) -> None:
    """`rules` are (flag, value, whether it is fine, what it must be); the first failure is a usage error."""
    for flag, value, ok, must in rules:
        if not ok:
            parser.error(f"{flag} must be {must}, got {value}")


def finite(x: float) -> bool:
    return math.isfinite(x)


def device_problem(spec: str, allow_index: bool = True) -> str | None:
    """None when this torch can use `spec` (auto, cpu, cuda, cuda:N), else why it cannot."""
    if spec in ("auto", "cpu"):
        return None
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not m or (m.group(1) is not None and not allow_index):
        return f"--device must be {'auto, cpu, cuda or cuda:N' if allow_index else 'auto, cpu or cuda'}, got {spec!r}"
    if not torch.cuda.is_available():
        return f"--device {spec}: this torch sees no CUDA device (a CPU build, or no GPU here)"
    count = torch.cuda.device_count()
    if m.group(1) is not None and int(m.group(1)) >= count:
        return f"--device {spec}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
    return None
