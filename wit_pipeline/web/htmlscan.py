"""The `<img>` elements of an HTML document and the URL a browser ends up showing, in one
linear scan (no DOM tree, so no nesting depth can make a page cost more than its size).

The scan follows the HTML tokenizer where it decides what is markup: comments (`<!-- -->`,
also unterminated: the rest is comment), raw-text and RCDATA elements (`<script>`, `<style>`,
`<textarea>`, `<title>`, ...: an `<img>` inside is text, as in any tag's quoted attribute
value; `<noscript>` is read as markup, as with scripting off, since its `<img>` is often the
only plain copy of a script-made image), attributes with quoted values (a `>` inside quotes
does not end the tag), entities in attribute values (the attribute rule: `&copy=1` in a URL
stays), `<image>` read as `<img>` outside `<svg>`, the first `<base href>`. A tag the document
ends inside is no tag, and nothing after it is markup. tests/test_page.py holds the scan to
lexbor's HTML5 parser on random documents.

Which URL an `<img>` shows (`pick_source`): lazy-loading scripts move `data-src`,
`data-lazy-src` or `data-original` into `src`, so those win; then `src` when it is a real
URL (not empty, not `data:` or `javascript:`); then the largest candidate of `data-srcset`,
`srcset`, and the first `<source srcset>` of an enclosing `<picture>`; else `src` as it is
(its drop reason is counted).
"""

from __future__ import annotations

import html.entities
import re

# An image: (src, alt, title, where the URL came from: an attribute name or "picture").
Image = tuple[str | None, str | None, str | None, str]

LAZY_ATTRS = ("data-src", "data-lazy-src", "data-original")
SRCSET_ATTRS = ("data-srcset", "srcset")
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_COMMENT_END = re.compile(r"--!?>")
_RAW_END = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE) for name in _RAW_TEXT}
# One attribute: name, then a double-, single- or unquoted value, or a quote that never
# closes (the tokenizer runs to the end of the document inside it: the tag is lost).
_WS = r"[\t\n\f\r ]"
_NAME = r"[^\t\n\f\r />][^\t\n\f\r /=>]*+"
_VALUES = r"""(?:"([^"]*+)"|'([^']*+)'|(["'])|([^\t\n\f\r >]*+))"""
_ATTR = re.compile(rf"({_NAME})(?:{_WS}*+={_WS}*+{_VALUES})?+")
# The attributes of a tag up to its ">" (no match: the document ends inside the tag).
_ATTRS = rf"""(?:[\t\n\f\r /]*+{_NAME}(?:{_WS}*+={_WS}*+(?:"[^"]*+"|'[^']*+'|["']|[^\t\n\f\r >]*+))?+)*+"""
_TAG_END = re.compile(rf"{_ATTRS}[\t\n\f\r /]*+>")
# From a position: text and other tags (their quoted values may hold "<img": that is no tag),
# all possessive, then the next markup that matters: a comment, or a start or end tag named
# here. No match: nothing more matters, or a tag runs to the end of the document.
_NAMES = "img|image|source|base|picture|svg|plaintext|" + "|".join(_RAW_TEXT)
_MARKUP = rf"<(?:!--|/?(?i:{_NAMES})(?=[\t\n\f\r />]))"
_NEXT = re.compile(
    rf"(?:[^<]++|(?!{_MARKUP})(?:<[a-zA-Z][^\t\n\f\r />]*+{_ATTRS}[\t\n\f\r /]*+>|<(?![a-zA-Z])))*+"
    rf"<(?:(!--)|(/?)((?i:{_NAMES}))(?=[\t\n\f\r />]))"
)
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_UNUSABLE = re.compile(r"[\x00-\x20]*(?:data|javascript):|[\x00-\x20]*$", re.IGNORECASE)
_SRCSET_URL = re.compile(r"[\t\n\f\r ,]*([^\t\n\f\r ]+)")
_DESCRIPTOR = re.compile(r"([0-9.]+)([wx])", re.IGNORECASE)


def _charref(m: re.Match) -> str:
    ref = m.group(1)
    if ref[0] == "#" or ref[-1] == ";":
        return html.unescape(m.group(0))
    # A named reference without ";" is one of the legacy names, longest first; in an
    # attribute it stays as written when "=" or an alphanumeric follows it.
    for n in range(min(len(ref), 6), 1, -1):
        if ref[:n] in html.entities.html5:
            after = ref[n] if n < len(ref) else m.string[m.end():m.end() + 1]
            if after == "=" or after.isalnum():
                return m.group(0)
            return html.entities.html5[ref[:n]] + ref[n:]
    return m.group(0)


def unescape_attribute(value: str) -> str:
    """Character references in an attribute value, decoded as the HTML tokenizer does."""
    return _CHARREF.sub(_charref, value) if "&" in value else value


def _attributes(text: str, pos: int) -> tuple[dict[str, str], int]:
    """(attributes, position after ">") of the tag whose attributes start at pos, raw (entities
    not decoded; the first of a repeated name wins); (.., -1) when the document ends inside it."""
    m = _TAG_END.match(text, pos)
    if m is None:
        return {}, -1
    attrs: dict[str, str] = {}
    for name, dq, sq, open_quote, uq in reversed(_ATTR.findall(text, pos, m.end() - 1)):
        if open_quote:
            return {}, -1
        attrs[name.lower()] = dq or sq or uq
    return attrs, m.end()


def largest_candidate(srcset: str) -> str | None:
    """The URL of a srcset's largest candidate (by width descriptor, else density)."""
    best, best_size, pos = None, (-1.0, -1.0), 0
    while m := _SRCSET_URL.match(srcset, pos):
        url = m.group(1)
        pos = m.end()
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = srcset.find(",", pos)
            end = len(srcset) if end < 0 else end
            descriptors, pos = srcset[pos:end], end
        width = density = 0.0
        for value, kind in _DESCRIPTOR.findall(descriptors):
            try:
                if kind.lower() == "w":
                    width = float(value)
                else:
                    density = float(value)
            except ValueError:
                pass
        size = (width, density or (1.0 if not width else 0.0))
        if url and size > best_size:
            best, best_size = url, size
    return best


def pick_source(attrs: dict[str, str], picture_srcset: str | None = None) -> tuple[str | None, str]:
    """(the URL an `<img>` shows, the attribute it came from) from raw attribute values; see
    the module docstring."""
    for name in LAZY_ATTRS:
        value = attrs.get(name)
        if value and not _UNUSABLE.match(value):
            return unescape_attribute(value), name
    src = attrs.get("src")
    if src and not _UNUSABLE.match(src):
        return unescape_attribute(src), "src"
    for name in SRCSET_ATTRS:
        if (value := attrs.get(name)) and (url := largest_candidate(unescape_attribute(value))):
            return url, name
    if picture_srcset and (url := largest_candidate(unescape_attribute(picture_srcset))):
        return url, "picture"
    return (unescape_attribute(src) if src else src), "src"


def scan_images(text: str) -> tuple[str | None, list[Image]]:
    """(the first `<base href>` or None, every `<img>` as (url, alt, title, from)) in order."""
    base_href: str | None = None
    images: list[Image] = []
    in_picture, picture_srcset = False, None  # the first <source srcset> of the open <picture>
    svg_depth = 0  # inside <svg>, <image> is SVG's own element, not an <img>
    pos = 0
    while m := _NEXT.match(text, pos):
        comment, end_tag, name = m.groups()
        if comment:  # "<!-->" and "<!--->" are complete comments
            if text.startswith((">", "->"), m.end()):
                pos = text.index(">", m.end()) + 1
                continue
            end = _COMMENT_END.search(text, m.end())
            if end is None:
                break
            pos = end.end()
            continue
        name = name.lower()
        if end_tag:
            in_picture = in_picture and name != "picture"
            if name == "svg" and svg_depth:
                svg_depth -= 1
            pos = m.end()
            continue
        attrs, pos = _attributes(text, m.end())
        if pos < 0 or name == "plaintext":
            break
        if name == "img" or (name == "image" and not svg_depth):
            url, origin = pick_source(attrs, picture_srcset if in_picture else None)
            alt, title = attrs.get("alt"), attrs.get("title")
            images.append((url, alt and unescape_attribute(alt), title and unescape_attribute(title), origin))
        elif name in _RAW_END:
            end = _RAW_END[name].search(text, pos)
            if end is None:
                break
            pos = end.start()
        elif name == "picture":
            in_picture, picture_srcset = True, None
        elif name == "svg" and text[pos - 2] != "/":  # not <svg/>
            svg_depth += 1
        elif name == "source":
            if in_picture and picture_srcset is None:
                picture_srcset = attrs.get("srcset") or None
        elif base_href is None and "href" in attrs:
            base_href = unescape_attribute(attrs["href"])
    return base_href, images
