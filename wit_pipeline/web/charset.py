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

import codecs
import re

import webencodings
from resiliparse.parse.encoding import detect_encoding

from wit_pipeline.web import whatwg_index

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([^\s\"';,]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([^\s\"'/>;]+)", re.IGNORECASE)
_PRESCAN_BYTES = 1024
# The Python codec closest to each WHATWG multi-byte decoder (GBK is decoded as GB18030, as
# the standard does; Shift_JIS is windows-31j; EUC-KR is windows-949; Big5 is Big5-HKSCS).
MULTI_BYTE_CODECS = {"gbk": "gb18030", "gb18030": "gb18030", "shift_jis": "cp932", "euc-jp": "euc_jp",
                     "big5": "big5hkscs", "euc-kr": "cp949"}
_SINGLE_BYTE = {name: "".join(map(chr, range(128))) + chars
                for name, chars in whatwg_index.SINGLE_BYTE.items()}
_FIXES = {name: (re.compile("[" + re.escape("".join(table)) + "]"), str.maketrans(table))
          for name, table in whatwg_index.FIXES.items() if table}


# The lead bytes of each multi-byte encoding: an error there takes a non-ASCII trail byte along.
_LEADS = {"shift_jis": frozenset([*range(0x81, 0xA0), *range(0xE0, 0xFD)]),
          "euc-jp": frozenset([0x8E, 0x8F, *range(0xA1, 0xFF)])}


def _whatwg_errors(name: str):  # noqa: ANN202 (a codec error handler)
    """A codec error handler for one multi-byte encoding: a sequence that WHATWG's index has
    and Python's codec lacks (EUC-JP's NEC row 13, Big5's HKSCS, GB18030's 0x80, ...)
    becomes its character; anything else is one U+FFFD, taking a lead byte's trail byte
    with it unless that is ASCII (the standard puts an ASCII byte back)."""
    extra = {bytes.fromhex(k): v for k, v in whatwg_index.EXTRA.get(name, {}).items()}
    leads = _LEADS.get(name, frozenset(range(0x81, 0xFF)))

    def handle(exc: UnicodeDecodeError) -> tuple[str, int]:
        data, i = exc.object, exc.start
        pair = bytes(data[i:i + 2])
        if len(pair) == 2 and pair in extra:
            return extra[pair], i + 2
        if (char := extra.get(pair[:1])) is not None:
            return char, i + 1
        if data[i] in leads and i + 1 < len(data) and data[i + 1] >= 0x80:
            return "\ufffd", i + 2
        return "\ufffd", i + 1

    return handle


for _name in MULTI_BYTE_CODECS:
    codecs.register_error(f"wit-whatwg-{_name}", _whatwg_errors(_name))


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
    """`body` decoded by the WHATWG decoder of `name`: single-byte encodings by their index
    (as a charmap), multi-byte ones by Python's closest codec with the index's differences
    (see whatwg_index)."""
    table = _SINGLE_BYTE.get(name)
    if table is not None:
        return codecs.charmap_decode(body, "strict", table)[0]
    codec = MULTI_BYTE_CODECS.get(name)
    if codec is None:
        return webencodings.lookup(name).codec_info.decode(body, "replace")[0]
    text = body.decode(codec, f"wit-whatwg-{name}")
    fix = _FIXES.get(name)
    if fix is not None and fix[0].search(text):
        text = text.translate(fix[1])
    return text


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
