"""lexbor's WHATWG Encoding Standard decoders (the ones selectolax's extension carries), called
through ctypes: the browser-grade reference for `wit_pipeline.web.charset`, and the source of
its generated tables (`python -m tests.lexbor_codec` rewrites wit_pipeline/web/whatwg_index.py).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

import selectolax

_so = glob.glob(os.path.join(os.path.dirname(selectolax.__file__), "lexbor.cpython-*.so"))[0]
L = ctypes.CDLL(_so)
L.lxb_encoding_data_by_name_noi.restype = ctypes.c_void_p
L.lxb_encoding_data_by_name_noi.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
L.lxb_encoding_decode_init_noi.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
L.lxb_encoding_decode_replace_set_noi.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
L.lxb_encoding_data_call_decode_noi.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_char_p]
L.lxb_encoding_decode_finish_noi.argtypes = [ctypes.c_void_p]
L.lxb_encoding_decode_buf_used_noi.argtypes = [ctypes.c_void_p]
L.lxb_encoding_decode_buf_used_noi.restype = ctypes.c_size_t
_REPL = (ctypes.c_uint32 * 1)(0xFFFD)

def decode(data: bytes, name: str) -> str:
    """`data` decoded by lexbor's decoder for the WHATWG encoding `name` (errors: U+FFFD)."""
    enc = L.lxb_encoding_data_by_name_noi(name.encode(), len(name))
    assert enc, name
    n = len(data) * 2 + 16
    out = (ctypes.c_uint32 * n)()
    ctx = ctypes.create_string_buffer(1024)
    L.lxb_encoding_decode_init_noi(ctx, enc, out, n)
    L.lxb_encoding_decode_replace_set_noi(ctx, _REPL, 1)
    buf = ctypes.create_string_buffer(data, len(data))
    p = ctypes.c_char_p(ctypes.addressof(buf))
    end = ctypes.c_char_p(ctypes.addressof(buf) + len(data))
    L.lxb_encoding_data_call_decode_noi(enc, ctx, ctypes.byref(p), end)
    L.lxb_encoding_decode_finish_noi(ctx)
    used = L.lxb_encoding_decode_buf_used_noi(ctx)
    return "".join(map(chr, out[:used]))


SINGLE_BYTE = ("ibm866", "iso-8859-2", "iso-8859-3", "iso-8859-4", "iso-8859-5", "iso-8859-6", "iso-8859-7",
               "iso-8859-8", "iso-8859-8-i", "iso-8859-10", "iso-8859-13", "iso-8859-14", "iso-8859-15",
               "iso-8859-16", "koi8-r", "koi8-u", "macintosh", "windows-874", "windows-1250", "windows-1251",
               "windows-1252", "windows-1253", "windows-1254", "windows-1255", "windows-1256", "windows-1257",
               "windows-1258", "x-mac-cyrillic")


def sequences() -> list[bytes]:
    """Every byte, and every two-byte sequence with a non-ASCII lead."""
    return [bytes([b]) for b in range(256)] + [bytes([a, b]) for a in range(0x80, 0x100) for b in range(0x100)]


def tables() -> tuple[dict[str, str], dict[str, dict[bytes, str]], dict[str, dict[str, str]]]:
    """(single-byte encoding -> its 128 characters for 0x80-0xFF; multi-byte encoding -> the
    sequences Python's codec cannot decode but WHATWG's index can; multi-byte encoding ->
    {character Python's codec gives: the one WHATWG's gives}, for a character that comes from
    that sequence only)."""
    from wit_pipeline.web.charset import MULTI_BYTE_CODECS

    single = {name: "".join(decode(bytes([b]), name) for b in range(0x80, 0x100)) for name in SINGLE_BYTE}
    extra: dict[str, dict[bytes, str]] = {}
    fixes: dict[str, dict[str, str]] = {}
    seqs = [s for s in sequences() if len(s) == 2]
    for name, codec in sorted(MULTI_BYTE_CODECS.items()):
        extra[name], fixes[name] = {}, {}
        sources: dict[str, list[bytes]] = {}
        for seq in seqs + [bytes([b]) for b in range(0x80, 0x100)]:
            ref = decode(seq, name)
            try:
                mine = seq.decode(codec)
            except UnicodeDecodeError:
                if "\ufffd" not in ref and len(ref) == 1:
                    extra[name][seq] = ref
                continue
            sources.setdefault(mine, []).append(seq)
            if mine != ref and len(mine) == len(ref) == 1:
                fixes[name][mine] = ref
        for char in [c for c in fixes[name] if len(sources[c]) > 1]:  # another sequence gives it rightly
            del fixes[name][char]
    return single, extra, fixes


def write_module(path: str) -> None:
    single, extra, fixes = tables()
    lines = ['"""WHATWG Encoding Standard index data where Python\'s codecs differ, generated from lexbor',
             "(selectolax's extension) by `python -m tests.lexbor_codec`: do not edit.",
             "",
             "SINGLE_BYTE: each single-byte encoding's characters for bytes 0x80-0xFF (U+FFFD: none).",
             "EXTRA: per multi-byte encoding, two-byte sequences Python's codec lacks (hex: characters).",
             "FIXES: per multi-byte encoding, a character Python's codec gives for one sequence: WHATWG's.",
             '"""', "", "SINGLE_BYTE = {"]
    for name, chars in single.items():
        lines.append(f"    {name!r}: {chars!r},")
    lines += ["}", "", "EXTRA = {"]
    for name, table in extra.items():
        lines.append(f"    {name!r}: {{")
        items = [f"{k.hex()!r}: {v!r}" for k, v in sorted(table.items())]
        for i in range(0, len(items), 6):
            lines.append("        " + ", ".join(items[i:i + 6]) + ",")
        lines.append("    },")
    lines += ["}", "", "FIXES = {"]
    for name, table in fixes.items():
        lines.append(f"    {name!r}: {dict(sorted(table.items()))!r},")
    lines += ["}", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    write_module(sys.argv[1] if len(sys.argv) > 1 else "wit_pipeline/web/whatwg_index.py")
