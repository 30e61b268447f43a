"""pHash throughput: wit's phash64_bytes vs imagehash.phash(Image.open(path)) on the same JPEGs.

    python bench/phash.py [--n 100] [--seed 0]

Both read the file and hash it; images are synthetic renders with sensor-like noise, saved
at web quality (85), so the JPEGs are about as large as photos (~170 kB at 1024x768; the
entropy decoding that draft() cannot skip grows with that). Rates are per CPU second of
this process (the machine is shared). Last line: `ratio: <speed-up on the large images>`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from wit_pipeline.image.phash import hamming, phash64_bytes
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render


def make_jpegs(root: Path, n: int, size: tuple[int, int], seed: int, noise: float) -> list[Path]:
    concepts = all_concepts()
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = render(concepts[(i * 11) % len(concepts)], size, seed=seed + i)
        noisy = np.asarray(img).astype(np.int16) + rng.normal(0, noise, (size[1], size[0], 3)).astype(np.int16)
        path = root / f"{size[0]}x{size[1]}_{i:04d}.jpg"
        path.write_bytes(encode(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), "JPEG", quality=85))
        paths.append(path)
    return paths


def ours(paths: list[Path]) -> list[int]:
    out = []
    for p in paths:
        h, _, _, reason = phash64_bytes(p.read_bytes())
        if reason is not None:
            raise RuntimeError(f"{p}: {reason}")
        out.append(h)
    return out


def reference(paths: list[Path]) -> list[int]:
    return [int(str(imagehash.phash(Image.open(p))), 16) for p in paths]


def timed(fn, paths: list[Path], repeats: int) -> tuple[float, list[int]]:
    best, result = float("inf"), []
    for _ in range(repeats):
        t0 = time.process_time()
        result = fn(paths)
        best = min(best, time.process_time() - t0)
    return best, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="images per size (the issue's full run: 200)")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many timed passes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=6.0, help="std-dev of the added pixel noise")
    args = ap.parse_args(argv)
    ratio_large = float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((256, 256), (1024, 768)):
            paths = make_jpegs(Path(tmp), args.n, size, args.seed, args.noise)
            kb = sum(p.stat().st_size for p in paths) / len(paths) / 1e3
            reference(paths[:5]), ours(paths[:5])  # warm imports and caches
            t_ref, h_ref = timed(reference, paths, args.repeats)
            t_ours, h_ours = timed(ours, paths, args.repeats)
            dists = [hamming(a, b) for a, b in zip(h_ours, h_ref)]
            ratio = t_ref / t_ours
            print(
                f"{size[0]}x{size[1]}: n={len(paths)} ({kb:.0f} kB) imagehash {len(paths) / t_ref:8.1f}/s  "
                f"wit {len(paths) / t_ours:8.1f}/s  ratio {ratio:.2f}  "
                f"exact {sum(d == 0 for d in dists) / len(dists):.1%}  "
                f"<=2 bits {sum(d <= 2 for d in dists) / len(dists):.1%}  max {max(dists)} bits"
            )
            if size == (1024, 768):
                ratio_large = ratio
    print(f"ratio: {ratio_large:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
