"""Near-duplicate search time vs number of hashes: wit's MIH (near_pairs) vs brute force.

    python bench/dedup.py [--sizes 10000,100000,1000000] [--d 4] [--brute-cap 60]

Random 64-bit hashes with 1% planted near copies (1..d bits flipped) and 0.1% exact
copies. Brute force (blocked numpy popcount, quadratic) runs where its estimated time is
under --brute-cap seconds, and the two pair sets must be equal. Times are CPU seconds of
this process (the machine is shared). Last line: `growth: <time ratio per 10x hashes>`,
the geometric mean over consecutive sizes (1 order of magnitude apart: ~10 is linear).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from wit_pipeline.image.neardup import brute_force_pairs, near_pairs


def planted(n: int, d: int, seed: int) -> tuple[np.ndarray, int]:
    """(hashes, number of planted near pairs)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)
    k = n // 100
    src = rng.choice(n, size=2 * k, replace=False)
    dst = src[k:]
    for s, t in zip(src[:k].tolist(), dst.tolist()):
        flips = rng.choice(64, size=int(rng.integers(1, d + 1)), replace=False)
        h[t] = h[s] ^ np.uint64(sum(1 << int(b) for b in flips))
    copies = n // 1000
    h[rng.choice(n, size=copies, replace=False)] = h[0]
    return h, k


def cpu(fn, *args):
    t0 = time.process_time()
    out = fn(*args)
    return time.process_time() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--d", type=int, default=4)
    ap.add_argument("--brute-cap", type=float, default=60.0, help="skip brute force estimated above this (s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    times = []
    brute_per_pair = None
    for n in sizes:
        h, k = planted(n, args.d, args.seed)
        reps = 3 if n <= 100_000 else 1
        t = min(cpu(near_pairs, h, args.d)[0] for _ in range(reps))
        compact = near_pairs(h, args.d)
        pairs = compact.expand()
        line = f"n={n:>9,}  mih {t:8.3f} s  pairs {len(pairs):,} (planted near {k:,})"
        estimate = None if brute_per_pair is None else brute_per_pair * n * n / 2
        if estimate is None or estimate <= args.brute_cap:
            tb, ref = cpu(brute_force_pairs, h, args.d)
            brute_per_pair = tb / (n * n / 2)
            if not np.array_equal(pairs, ref):
                print(f"MISMATCH at n={n}: mih {len(pairs)} pairs, brute force {len(ref)}")
                return 1
            line += f"  brute {tb:8.3f} s  speed-up {tb / t:7.1f}x  equal pair sets"
        else:
            line += f"  brute skipped (~{estimate:.0f} s estimated)"
        if times:
            line += f"  growth x{t / times[-1]:.1f}"
        print(line, flush=True)
        times.append(t)
    ratios = [b / a for a, b in zip(times, times[1:])]
    per_decade = [r ** (1 / math.log10(m / n)) for r, n, m in zip(ratios, sizes, sizes[1:])]
    growth = math.exp(sum(math.log(r) for r in per_decade) / len(per_decade)) if per_decade else float("nan")
    print(f"growth: {growth:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
