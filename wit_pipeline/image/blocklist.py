"""Known-bad images: a list of hashes that `wit curate --blocklist` keeps out of every shard.

The file is text, one entry per line; blank lines and lines starting with `#` are ignored:

    # kind   hash                                                              [distance]
    sha256   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    phash    c3d4e5f6a7b8c9d0
    phash    c3d4e5f6a7b8c9d0  6

`sha256` matches the exact bytes of a downloaded image (64 hex digits): the bytes as fetched
(img2dataset's `sha256` in the sample's json) or as stored after download's resize; `phash` matches an
image whose 64-bit perceptual hash (`image.phash`, 16 hex digits) is within `distance` bits
(0..`MAX_DISTANCE`, default `DEFAULT_DISTANCE`). The file may be anywhere fsspec reads
(local, gs://, s3://). A malformed line is an error naming its line: a blocklist that is
half read would let the other half through.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from wit_pipeline.core import fsio
from wit_pipeline.image import phash as phash_mod
from wit_pipeline.image.neardup import DEFAULT_MAX_DISTANCE, EvalIndex

BLOCKLISTED = "blocklisted"
DEFAULT_DISTANCE = DEFAULT_MAX_DISTANCE  # curate's near-duplicate distance
MAX_DISTANCE = 16  # beyond this a "near" match is most of the web
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_PHASH = re.compile(r"[0-9a-fA-F]{16}")


@dataclass
class Blocklist:
    sha256: frozenset[str] = frozenset()
    indexes: list[EvalIndex] = field(default_factory=list)  # one per distance

    def __len__(self) -> int:
        return len(self.sha256) + sum(len(i) for i in self.indexes)

    def blocks(self, digest: str | None, phash_hex: str | None, source_digest: str | None = None) -> bool:
        """Whether an image with this sha256 (hex) or pHash (hex) is on the list; `source_digest`:
        the sha256 of the bytes as downloaded, where the stored image was re-encoded since."""
        for d in (digest, source_digest):
            if d is not None and d.lower() in self.sha256:
                return True
        if phash_hex is not None and self.indexes:
            h = phash_mod.from_hex(phash_hex)
            return any(index.contains_near(h) for index in self.indexes)
        return False


def parse(text: str, source: str = "blocklist") -> Blocklist:
    """A Blocklist from the file's text; ValueError names the first bad line."""
    digests: set[str] = set()
    by_distance: dict[int, set[int]] = defaultdict(set)
    for n, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):  # a BOM is no part of line 1
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        kind = parts[0].lower()
        if kind == "sha256" and len(parts) == 2 and _SHA256.fullmatch(parts[1]):
            digests.add(parts[1].lower())
        elif kind == "phash" and len(parts) in (2, 3) and _PHASH.fullmatch(parts[1]):
            distance = DEFAULT_DISTANCE
            if len(parts) == 3:
                if not parts[2].isdigit() or int(parts[2]) > MAX_DISTANCE:
                    raise ValueError(f"{source} line {n}: a pHash distance is 0..{MAX_DISTANCE}, got {parts[2]!r}")
                distance = int(parts[2])
            by_distance[distance].add(phash_mod.from_hex(parts[1]))
        else:
            raise ValueError(f"{source} line {n}: expected 'sha256 <64 hex>' or 'phash <16 hex> [distance]', "
                             f"got {line.strip()[:80]!r}")
    indexes = [EvalIndex(np.array(sorted(hashes), dtype=np.uint64), d) for d, hashes in sorted(by_distance.items())]
    return Blocklist(frozenset(digests), indexes)


def load(url: str) -> Blocklist:
    """The blocklist at `url` (any fsspec URL); text that is not UTF-8 is an error naming its line."""
    with fsio.open(url, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{url} line {line}: not UTF-8 text") from None
    return parse(text, url)
