"""pHash: agreement with imagehash, safe decoding of hostile bytes, determinism."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import imagehash
import numpy as np
import pytest
from PIL import Image

from wit_pipeline.image.decode import MAX_PIXELS, decode_image, open_image
from wit_pipeline.image.phash import (
    from_hex,
    hamming,
    phash64,
    phash64_bytes,
    to_hex,
)
from wit_pipeline.synthetic.concepts import all_concepts
from wit_pipeline.synthetic.images import encode, render


def _photo(i: int, size: tuple[int, int]) -> Image.Image:
    """A rendered concept with sensor-like noise, so it is not a flat synthetic picture."""
    concept = all_concepts()[(i * 7) % len(all_concepts())]
    img = render(concept, size, seed=i)
    rng = np.random.default_rng(i)
    noisy = np.asarray(img).astype(np.int16) + rng.normal(0, 10, (size[1], size[0], 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _reference(data: bytes) -> int:
    return int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def test_png_hashes_equal_imagehash_exactly():
    for i in range(20):
        data = encode(_photo(i, (200 + 10 * i, 150 + 5 * i)), "PNG")
        h, w, hh, reason = phash64_bytes(data)
        assert reason is None and (w, hh) == (200 + 10 * i, 150 + 5 * i)
        assert h == _reference(data), i
        assert phash64(Image.open(io.BytesIO(data))) == h


def test_modes_other_than_rgb_match_imagehash():
    base = _photo(3, (120, 90))
    for img in (base.convert("L"), base.convert("RGBA"), base.convert("P"), base.convert("1")):
        data = encode(img, "PNG")
        assert phash64_bytes(data)[0] == _reference(data), img.mode


def test_large_jpegs_within_two_bits_of_imagehash():
    dists = []
    for i in range(24):
        data = encode(_photo(i, (1024, 768)), "JPEG", quality=90)
        h, w, hh, reason = phash64_bytes(data)
        assert reason is None and (w, hh) == (1024, 768)  # the stored size, not the draft's
        dists.append(hamming(h, _reference(data)))
    assert max(dists) <= 8
    assert sum(d <= 2 for d in dists) >= 0.8 * len(dists), dists


def test_small_jpegs_are_not_drafted_and_match_exactly():
    # draft() only reduces when the image is >= 2x the target; 64x64 and below decode fully.
    for i in range(5):
        data = encode(_photo(i, (64, 64)), "JPEG")
        assert phash64_bytes(data)[0] == _reference(data)


def test_decompression_bomb_is_refused_from_the_header():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither PIL's bomb warning nor anything else
        for w, h in ((10_000, 10_000), (20_000, 5_000), (100_000, 100_000)):
            data = _png_declaring(w, h)
            assert len(data) < 200
            # The pixel data is 64 bytes: decoding would fail as truncated, so this reason
            # proves the header check came first.
            expected_size = (w, h) if w * h < 2 * Image.MAX_IMAGE_PIXELS else (0, 0)  # PIL refuses those in open()
            assert phash64_bytes(data) == (None, *expected_size, "too_many_pixels")
            assert decode_image(data) == (None, "too_many_pixels")
    assert 10_000 * 10_000 > MAX_PIXELS


def test_max_pixels_is_configurable():
    data = encode(_photo(1, (200, 100)), "PNG")
    assert phash64_bytes(data, max_pixels=19_999) == (None, 200, 100, "too_many_pixels")
    assert phash64_bytes(data, max_pixels=20_000)[3] is None
    img, reason = decode_image(data, max_pixels=20_000)
    assert reason is None and img.size == (200, 100)
    assert decode_image(data, max_pixels=100) == (None, "too_many_pixels")


def test_truncated_and_garbage_bytes_are_reported():
    jpg = encode(_photo(2, (300, 200)), "JPEG")
    png = encode(_photo(2, (300, 200)), "PNG")
    assert phash64_bytes(jpg[: len(jpg) // 2]) == (None, 300, 200, "truncated")
    assert phash64_bytes(png[: len(png) // 2]) == (None, 300, 200, "truncated")
    assert decode_image(png[: len(png) // 2]) == (None, "truncated")
    rng = np.random.default_rng(0)
    assert phash64_bytes(rng.bytes(5000)) == (None, 0, 0, "undecodable")
    assert phash64_bytes(b"") == (None, 0, 0, "undecodable")
    assert decode_image(b"<html>not an image</html>") == (None, "undecodable")
    # A valid signature with a corrupt header.
    assert phash64_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)[3] in ("undecodable", "truncated")


def test_decode_image_returns_a_loaded_full_size_image():
    data = encode(_photo(4, (640, 480)), "JPEG")
    img, reason = decode_image(data)
    assert reason is None and img.size == (640, 480) and img.mode == "RGB"
    assert phash64(img) == _reference(data)


def test_deterministic_and_flat_images_have_a_fixed_hash():
    data = encode(_photo(5, (500, 400)), "JPEG")
    assert len({phash64_bytes(data) for _ in range(3)}) == 1
    # Only the DC term can exceed the median of a flat image (and not even that when black).
    for colour in ((1, 1, 1), (128, 40, 200), (255, 255, 255)):
        assert phash64(Image.new("RGB", (80, 60), colour)) == 1 << 63
    assert phash64(Image.new("RGB", (80, 60), (0, 0, 0))) == 0


def test_hex_and_hamming():
    assert hamming(0, (1 << 64) - 1) == 64
    assert hamming(0b1011, 0b0001) == 2
    for h in (0, 1, 1 << 63, 0xDEADBEEF12345678, (1 << 64) - 1):
        assert len(to_hex(h)) == 16 and from_hex(to_hex(h)) == h
    data = encode(_photo(6, (100, 100)), "PNG")
    assert to_hex(phash64_bytes(data)[0]) == str(imagehash.phash(Image.open(io.BytesIO(data))))
    for bad in ("123", "0x" + "0" * 14, "g" * 16, " " + "0" * 15):
        with pytest.raises(ValueError):
            from_hex(bad)
    with pytest.raises(ValueError):
        to_hex(1 << 64)


def test_curate_and_training_share_one_cap_and_one_set_of_reasons():
    """A 70 MP image (the case that passed curate and was then skipped in training) and a
    truncated one get the same verdict and the same reason name from both."""
    from train import preprocess

    bomb = _png_declaring(9000, 7800)
    assert 9000 * 7800 > MAX_PIXELS
    jpg = encode(_photo(2, (300, 200)), "JPEG")
    for data, reason in ((bomb, "too_many_pixels"), (jpg[: len(jpg) // 2], "truncated"), (b"junk", "undecodable")):
        assert phash64_bytes(data)[3] == reason
        with pytest.raises(preprocess.BadImage) as bad:
            preprocess.decode(data, 64)
        assert bad.value.reason == reason
    assert preprocess.decode(jpg, 64).size == (150, 100)  # drafted: the shorter side still covers 64


def test_draft_decodes_a_large_jpeg_at_reduced_scale_only_when_asked():
    data = encode(_photo(6, (1024, 768)), "JPEG")
    full, w, h, _ = open_image(data)
    small, *_ = open_image(data, draft=lambda w, h: (w // 8, h // 8))
    assert (w, h) == (1024, 768) and full.size == (1024, 768) and small.size == (128, 96)
    assert open_image(data, draft=(64, 64))[0].size == (128, 96)  # never below the request
