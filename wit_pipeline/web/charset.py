"""HTML bytes to text the way browsers decode them (WHATWG Encoding Standard).

Order: a byte-order mark wins; then the HTTP `Content-Type` charset; then a `<meta charset>`
or `<meta http-equiv content="...charset=...">` in the first 1024 bytes; then UTF-8 when the
bytes are valid UTF-8; else the encoding resiliparse detects (uchardet, WHATWG names).
Labels are mapped through the WHATWG registry (`webencodings`): `iso-8859-1`, `latin1`,
`us-ascii` are windows-1252; `gb2312`, `x-gbk`, `chinese` are GBK (decoded with gb18030, its
superset, as the standard's GBK decoder is); a label that names no text encoding (`base64`,
`utf-7`, the `replacement` set) is skipped, so the next source decides instead of the page
being lost. Undecodable bytes become U+FFFD: one bad byte does not cost the page.
"""

from __future__ import annotations

import re

import webencodings
from resiliparse.parse.encoding import detect_encoding

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([^\s\"';,]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([^\s\"'/>;]+)", re.IGNORECASE)
_PRESCAN_BYTES = 1024
# Where Python's codec for a WHATWG encoding decodes less than the standard's decoder.
_PYTHON_CODEC = {"gbk": "gb18030"}


def lookup(label: str | None, from_meta: bool = False) -> str | None:
    """The WHATWG encoding name a label means, or None for no text encoding.

    From `<meta>`, UTF-16 means UTF-8 and x-user-defined windows-1252 (HTML's prescan rule).
    """
    encoding = webencodings.lookup(label) if label else None
    if encoding is None or encoding.name == "replacement":
        return None
    if from_meta and encoding.name in ("utf-16be", "utf-16le"):
        return "utf-8"
    if from_meta and encoding.name == "x-user-defined":
        return "windows-1252"
    return encoding.name


def declared_encoding(body: bytes, content_type: str | None) -> str | None:
    """The encoding the HTTP header, else the `<meta>` prescan, declares (None: neither)."""
    if content_type and (m := _HEADER_CHARSET.search(content_type)):
        if name := lookup(m.group(1)):
            return name
    for m in _META_CHARSET.finditer(body, 0, _PRESCAN_BYTES):
        if name := lookup(m.group(1).decode("ascii", "replace"), from_meta=True):
            return name
    return None


def _decode(body: bytes, name: str) -> str:
    codec = _PYTHON_CODEC.get(name)
    if codec is not None:
        return body.decode(codec, "replace")
    return webencodings.lookup(name).codec_info.decode(body, "replace")[0]


def decode_html(body: bytes, content_type: str | None) -> str:
    """The text a browser decodes from an HTML payload (see the module docstring)."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, "replace")
    name = declared_encoding(body, content_type)
    if name == "utf-8":
        return body.decode("utf-8", "replace")
    if name is not None:
        return _decode(body, name)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    detected = lookup(detect_encoding(body)) or "windows-1252"
    return _decode(body, detected)
