"""The `<img>` elements of an HTML document and the URL a browser ends up showing, in one
linear scan (no DOM tree, so no nesting depth can make a page cost more than its size).

The scan follows the HTML tokenizer where it decides what is markup: comments (`<!-- -->`,
also unterminated: the rest is comment), raw-text and RCDATA elements (`<script>`, `<style>`,
`<textarea>`, `<title>`, ...: an `<img>` inside is text; `<noscript>` is read as markup, as
with scripting off, since its `<img>` is often the only plain copy of a script-made image),
attributes with quoted values (a `>` inside quotes does not end the tag), entities in
attribute values (the attribute rule: `&copy=1` in a URL stays), `<image>` read as `<img>`,
the first `<base href>`. Attributes of other tags are not parsed.

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
_MARKUP = re.compile(
    r"<(?:(!--)|(/?)(img|image|source|base|picture|plaintext|" + "|".join(_RAW_TEXT) + r")(?=[\t\n\f\r />]))",
    re.IGNORECASE,
)
_COMMENT_END = re.compile(r"--!?>")
_RAW_END = {name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE) for name in _RAW_TEXT}
# One attribute (name, then an optional value), or the end of the tag (group "end"); group
# "open" is a quote that never closes.
_ATTR = re.compile(
    r"""[\t\n\f\r /]*+(?:(?P<end>>)|(?P<name>[^\t\n\f\r />][^\t\n\f\r /=>]*+)"""
    r"""(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"(?P<dq>[^"]*+)"|'(?P<sq>[^']*+)'|(?P<open>["'])|(?P<uq>[^\t\n\f\r >]*+)))?)"""
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
    """(attributes, position after ">") of the tag whose attributes start at pos; (.., -1)
    when the document ends inside the tag (the tokenizer then drops it)."""
    attrs: dict[str, str] = {}
    while m := _ATTR.match(text, pos):
        if m.group("end"):
            return attrs, m.end()
        if m.end() == len(text) or m.group("open"):  # an unclosed quote runs to the end
            break
        name = m.group("name").lower()
        if name not in attrs:
            value = m.group("dq")
            if value is None:
                value = m.group("sq")
            if value is None:
                value = m.group("uq") or ""
            attrs[name] = unescape_attribute(value)
        pos = m.end()
    return attrs, -1


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
    """(the URL an `<img>` shows, the attribute it came from); see the module docstring."""
    for name in LAZY_ATTRS:
        value = attrs.get(name)
        if value and not _UNUSABLE.match(value):
            return value, name
    src = attrs.get("src")
    if src and not _UNUSABLE.match(src):
        return src, "src"
    for name in SRCSET_ATTRS:
        if (value := attrs.get(name)) and (url := largest_candidate(value)):
            return url, name
    if picture_srcset and (url := largest_candidate(picture_srcset)):
        return url, "picture"
    return src, "src"


def scan_images(text: str) -> tuple[str | None, list[Image]]:
    """(the first `<base href>` or None, every `<img>` as (url, alt, title, from)) in order."""
    base_href: str | None = None
    images: list[Image] = []
    picture: list[str | None] | None = None  # [first <source srcset>] while inside <picture>
    pos = 0
    while m := _MARKUP.search(text, pos):
        if m.group(1):  # a comment: "<!-->" and "<!--->" are complete ones
            if text.startswith((">", "->"), m.end()):
                pos = text.index(">", m.end()) + 1
                continue
            end = _COMMENT_END.search(text, m.end())
            if end is None:
                break
            pos = end.end()
            continue
        name = m.group(3).lower()
        if m.group(2):  # an end tag
            if name == "picture":
                picture = None
            pos = m.end()
            continue
        attrs, pos = _attributes(text, m.end())
        if pos < 0 or name == "plaintext":
            break
        if name in _RAW_END:
            end = _RAW_END[name].search(text, pos)
            if end is None:
                break
            pos = end.start() + 2
        elif name in ("img", "image"):
            url, origin = pick_source(attrs, picture[0] if picture else None)
            images.append((url, attrs.get("alt"), attrs.get("title"), origin))
        elif name == "picture":
            picture = [None]
        elif name == "source":
            if picture is not None and picture[0] is None and attrs.get("srcset"):
                picture[0] = attrs["srcset"]
        elif base_href is None and "href" in attrs:
            base_href = attrs["href"]
    return base_href, images
