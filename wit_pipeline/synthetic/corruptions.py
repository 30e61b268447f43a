"""Bad bytes a real crawl serves: truncated and random "JPEGs", a decompression bomb, and a
gzip file whose last member was cut short (a crawler died mid-write).

Each is deterministic from its arguments so a generated crawl is byte-identical per seed.
"""

from __future__ import annotations

import random
import struct
import zlib

BOMB_SIDE = 20_000  # 400M declared pixels: > 2x PIL's MAX_IMAGE_PIXELS, so PIL refuses it


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` fraction of an encoded image: the header parses, the pixels do not."""
    if not 0 < keep < 1:
        raise ValueError(f"keep must be in (0, 1), got {keep}")
    return data[: max(1, int(len(data) * keep))]


def random_bytes(n: int, seed: int) -> bytes:
    """Noise with no image header (served under a .jpg name)."""
    return random.Random(f"random-bytes|{seed}").randbytes(n)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit greyscale PNG of side x side zero pixels that compresses to tens of kB.

    Written chunk by chunk (never materialised as an image) so generating it is cheap; decoding
    it must be refused by a pixel cap before the ~side^2 bytes of an RGB decode are allocated.
    """
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    rows_per_block = 1000
    block = row * rows_per_block
    parts = []
    full, rest = divmod(side, rows_per_block)
    for _ in range(full):
        parts.append(comp.compress(block))
    parts.append(comp.compress(row * rest))
    parts.append(comp.flush())
    idat = b"".join(parts)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def truncate_tail(data: bytes, last_member_start: int, keep: float = 0.5) -> bytes:
    """Cut the gzip member that starts at `last_member_start` (the file's last) to `keep` of its length."""
    if not 0 <= last_member_start < len(data):
        raise ValueError("last_member_start is outside the data")
    member_len = len(data) - last_member_start
    return data[: last_member_start + max(1, int(member_len * keep))]
