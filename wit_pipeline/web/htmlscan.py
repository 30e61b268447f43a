"""The `<img>` elements of an HTML document and the URL a browser ends up showing, in one
linear scan (no DOM tree, so no nesting depth can make a page cost more than its size).

The scan follows the HTML tokenizer where it decides what is markup: comments (`<!-- -->`,
also unterminated: the rest is comment), bogus comments (`<!x ...>`, `<?php ...>`, `</ ...>`:
they end at the first `>`, so an `<img>` inside is none), CDATA sections inside `<svg>`,
raw-text and RCDATA elements (`<script>`, `<style>`, `<textarea>`, `<title>`, ...: an `<img>`
inside is text, as in any tag's quoted attribute value; `<noscript>` is read as markup, as
with scripting off, since its `<img>` is often the only plain copy of a script-made image),
attributes with quoted values (a `>` inside quotes does not end the tag), character
references in attribute values by the attribute rule (`&copy=1` and `&section=4;` in a URL
stay as written), `<image>` read as `<img>` outside `<svg>` (and `<img>` ending the `<svg>`,
as it does in a browser), the first HTML `<base href>` (an SVG `<image href>` is no base). A
tag the document ends inside is no tag, and nothing after it is markup. tests/test_page.py
holds the scan to lexbor's HTML5 parser on random documents.

Which URL an `<img>` shows (`pick_source`): what the page shows once its lazy-loading script
has run, since that script replaces a placeholder (a 1x1 GIF, a spacer, a `data:` URL) with
the real image. So `data-src`, `data-lazy-src` or `data-original` win; then the largest
candidate of the enclosing `<picture>`'s first `<source data-srcset>` (a browser shows a
picture's source before its `<img>`); then the `<img>`'s own `data-srcset`; then `src` when
it is a real URL (not empty, not `data:` or `javascript:`); then `srcset`, then the
picture's first `<source srcset>`; else `src` as it is (its drop reason is counted).
"""

from __future__ import annotations

import html.entities
import re

# An image: (src, alt, title, where the URL came from: an attribute name or "picture").
Image = tuple[str | None, str | None, str | None, str]

LAZY_ATTRS = ("data-src", "data-lazy-src", "data-original")
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
# Other markup is skipped whole: start and end tags (an end tag's attributes are read, then
# ignored), and bogus comments, which end at the first ">" whatever it is inside: `<!x ...>`,
# `<?php ...>`, `</ ...>`, `<!DOCTYPE ...>`, `<![CDATA[` outside SVG. A `<` before anything
# else is text.
_MARKUP = rf"<(?:!--|!\[CDATA\[|/?(?i:{_NAMES})(?=[\t\n\f\r />]))"
_NEXT = re.compile(
    rf"(?:[^<]++|(?!{_MARKUP})(?:</?[a-zA-Z][^\t\n\f\r />]*+{_ATTRS}[\t\n\f\r /]*+>|<[!?/][^>]*+>"
    rf"|<(?![a-zA-Z!?/])))*+"
    rf"<(?:(!--)|(!\[CDATA\[)|(/?)((?i:{_NAMES}))(?=[\t\n\f\r />]))"
)
_CDATA_END = "]]>"
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_UNUSABLE = re.compile(r"[\x00-\x20]*(?:data|javascript):|[\x00-\x20]*$", re.IGNORECASE)
_SRCSET_URL = re.compile(r"[\t\n\f\r ,]*([^\t\n\f\r ]+)")
_DESCRIPTOR = re.compile(r"([0-9.]+)([wx])", re.IGNORECASE)


_NAMED = html.entities.html5


def _charref(m: re.Match) -> str:
    """One character reference in an attribute value, by the tokenizer's rule: the longest
    name in the table wins; a name without ";" (one of the legacy ones, at most 6 letters)
    followed by "=" or an ASCII alphanumeric stays as written (`&section=4`, `&notes;`)."""
    ref = m.group(1)
    if ref[0] == "#":
        return html.unescape(m.group(0))
    if ref[-1] == ";" and ref in _NAMED:
        return _NAMED[ref]
    for n in range(min(len(ref), 6), 1, -1):
        if ref[:n] in _NAMED:
            after = ref[n] if n < len(ref) else m.string[m.end():m.end() + 1]
            if after == "=" or (after.isascii() and after.isalnum()):
                return m.group(0)
            return _NAMED[ref[:n]] + ref[n:]
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


def pick_source(attrs: dict[str, str], source: dict[str, str] | None = None) -> tuple[str | None, str]:
    """(the URL an `<img>` shows, where it came from) from raw attribute values, `source`
    being the attributes of its `<picture>`'s first `<source>` with a srcset; see the
    module docstring."""
    for name in LAZY_ATTRS:
        value = attrs.get(name)
        if value and not _UNUSABLE.match(value):
            return unescape_attribute(value), name
    if source and (value := source.get("data-srcset")) and (url := largest_candidate(unescape_attribute(value))):
        return url, "picture"
    if (value := attrs.get("data-srcset")) and (url := largest_candidate(unescape_attribute(value))):
        return url, "data-srcset"
    src = attrs.get("src")
    if src and not _UNUSABLE.match(src):
        return unescape_attribute(src), "src"
    if (value := attrs.get("srcset")) and (url := largest_candidate(unescape_attribute(value))):
        return url, "srcset"
    if source and (value := source.get("srcset")) and (url := largest_candidate(unescape_attribute(value))):
        return url, "picture"
    return (unescape_attribute(src) if src else src), "src"


def scan_images(text: str) -> tuple[str | None, list[Image]]:
    """(the first `<base href>` or None, every `<img>` as (url, alt, title, from)) in order."""
    base_href: str | None = None
    images: list[Image] = []
    in_picture, picture = False, None  # the attributes of the open <picture>'s first <source srcset>
    svg_depth = 0  # inside <svg>, <image> is SVG's own element, not an <img>
    pos = 0
    while m := _NEXT.match(text, pos):
        comment, cdata, end_tag, name = m.groups()
        if cdata:  # a CDATA section in SVG; elsewhere a bogus comment
            end = text.find(_CDATA_END, m.end()) if svg_depth else text.find(">", m.end())
            if end < 0:
                break
            pos = end + (len(_CDATA_END) if svg_depth else 1)
            continue
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
            svg_depth = 0  # <img> breaks out of SVG: what follows is HTML again
            url, origin = pick_source(attrs, picture if in_picture else None)
            alt, title = attrs.get("alt"), attrs.get("title")
            images.append((url, alt and unescape_attribute(alt), title and unescape_attribute(title), origin))
        elif name in _RAW_END:
            end = _RAW_END[name].search(text, pos)
            if end is None:
                break
            pos = end.start()
        elif name == "picture":
            in_picture, picture = True, None
        elif name == "svg" and text[pos - 2] != "/":  # not <svg/>
            svg_depth += 1
        elif name == "source":
            if in_picture and picture is None and (attrs.get("srcset") or attrs.get("data-srcset")):
                picture = attrs
        elif name == "base" and base_href is None and "href" in attrs and not svg_depth:
            base_href = unescape_attribute(attrs["href"])
    return base_href, images
