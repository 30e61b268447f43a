"""Legacy encodings decoded by the WHATWG Encoding Standard's indexes, where Python's codecs
differ, held to lexbor's decoders (selectolax's extension: what a browser-grade parser does)."""

from __future__ import annotations

import pytest

from tests.lexbor_codec import SINGLE_BYTE, decode, sequences
from wit_pipeline.web.charset import MULTI_BYTE_CODECS, decode_html


@pytest.mark.parametrize(
    ("label", "data", "text"),
    [
        # EUC-JP: NEC row 13 (circled numbers, ㈱) and the IBM extensions, which Python's euc_jp lacks.
        ("euc-jp", b"\xad\xa1\xad\xea\xad\xe2", "①㈱№"),
        ("euc-jp", b"\xfc\xfc\xfc\xfe", "￤＂"),
        # EUC-JP: JIS X 0208 symbols mapped as Microsoft does (Python gives 〜 ‖ − ¢ £ ¬).
        ("euc-jp", b"\xa1\xc1\xa1\xc2\xa1\xdd\xa1\xf1\xa1\xf2\xa2\xcc", "～∥－￠￡￢"),
        # Shift_JIS is windows-31j: NEC row 13 and IBM extensions; 0xA0 and 0xFD-0xFF are errors.
        ("shift_jis", b"\x87\x40\x87\x82\xfa\x40\xed\x40", "①№ⅰ纊"),
        ("shift_jis", b"a\xa0b\xfd", "a\ufffdb\ufffd"),
        # Big5 is Big5-HKSCS: HKSCS characters (some outside the BMP), and its symbol mappings.
        ("big5", b"\x87\x7a\x87\x7b\xfe\xaa", "㡵𡵓瓩"),
        ("big5", b"\xa1\x45\xa1\xc2\xa2\x44", "‧¯￥"),
        # EUC-KR is windows-949: the extended Hangul syllables.
        ("euc-kr", b"\x81\x41\xc6\x52", "갂힣"),
        # GBK and GB18030: 0x80 is the euro sign; GB18030-2022's code points for former PUA ones.
        ("gbk", b"\x80 \xa3\xa0\xa6\xd9", "€ \u3000︐"),
        ("gb18030", b"\xfe\x7e\xfe\x90\xa6\xd9", "\u9fb9\u9fba\ufe10"),
        # Single-byte: bytes a Python codec leaves undefined are the C1 controls of the index.
        ("windows-1252", b"\x80\x81\x8d\x9d", "€\x81\x8d\x9d"),
        ("windows-1253", b"\xaa", "\ufffd"),
        ("koi8-u", b"\xae\xbe", "ўЎ"),
    ],
)
def test_whatwg_index_where_python_differs(label: str, data: bytes, text: str) -> None:
    assert decode_html(data, f"text/html; charset={label}") == text
    assert decode(data, label) == text  # lexbor agrees


KNOWN = {"big5": {b"\xa2\x41", b"\xa2\x42"}}  # Python's big5hkscs gives ／ ＼, WHATWG ∕ ﹨: not fixable by character


@pytest.mark.parametrize("name", sorted(MULTI_BYTE_CODECS) + list(SINGLE_BYTE))
def test_every_sequence_decodes_as_lexbor_does(name: str) -> None:
    """Every byte and two-byte sequence (then an ASCII byte, as in text) of each legacy encoding."""
    seqs = sequences() if name in MULTI_BYTE_CODECS else [bytes([b]) for b in range(256)]
    seqs = [s for s in seqs if s not in (b"\xfe\xff", b"\xff\xfe")]  # byte-order marks: UTF-16 wins
    wrong = [seq for seq in seqs
             if decode_html(seq + b"a", f"text/html; charset={name}") != decode(seq + b"a", name)]
    assert set(wrong) == KNOWN.get(name, set()), [s.hex() for s in wrong[:10]]
