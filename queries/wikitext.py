"""Wikitext -> the plain text a reader sees, for counting words (not a full MediaWiki parser).

Order matters and each step is linear in the text:
1. comments go; `<nowiki>` content is kept as visible text, its markup characters escaped as
   numeric entities so no later rule touches them (the final `html.unescape` restores them);
2. `<ref>`s and blocks without prose (math, gallery, source, ...) go;
3. templates `{{...}}` and tables `{|...|}` go, found by one balanced-brace scan, so a
   template holding a table or single braces (`{{math|{x}}}`) goes whole;
4. external links keep their label, bare URLs go;
5. `[[...]]` links, found by one balanced-bracket scan: a link shows its label (or target);
   file/image/media/category links and interlanguage links go whole, even when the caption
   holds brackets (`[above]`, `Bicyclo[1.1.0]`); a leading colon (`[[:fr:X|X]]`,
   `[[:Category:X|y]]`) makes a visible link, which keeps its label;
6. HTML tags, heading marks (one line each: `==A==` then `==B==` stay two lines),
   bold/italic quotes, list markers, rules and magic words go; entities are decoded.
What survives in rare malformed markup is a stray token or two, harmless to counts at scale.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Callable

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# Blocks whose content is not prose (replaced by a space), refs (dropped) and nowiki (kept).
NO_PROSE = ("math", "chem", "gallery", "timeline", "syntaxhighlight", "source", "score", "graph", "mapframe")
_BLOCK_TAG = re.compile(r"<(/?)(nowiki|ref|" + "|".join(NO_PROSE) + r")\b([^>]*)>", re.IGNORECASE)
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]*\s*([^\]]*)\]")
_BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\[\]{}|\"]*")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_HEADING = re.compile(r"^[ \t]*=+[ \t]*(.*?)[ \t]*=+[ \t]*$", re.MULTILINE)  # [ \t], not \s: one line
_BOLD_ITALIC = re.compile(r"'{2,}")
_LIST_MARKER = re.compile(r"^[*#:;]+", re.MULTILINE)
_RULE_OR_MAGIC = re.compile(r"^-{4,}|__[A-Z]+__", re.MULTILINE)
_LEFTOVER_BRACES = re.compile(r"\{\{|\}\}|\{\||\|\}")
_ESCAPE = re.compile(r"[^\w\s]")

# Link prefixes whose link is not shown in the text (without a leading colon).
HIDDEN_NAMESPACES = frozenset({"file", "image", "media", "category"})
_INTERLANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*", re.IGNORECASE)


def _block_text(name: str, body: str) -> str:
    if name == "nowiki":  # visible text: its markup characters become entities, unescaped at the end
        return _ESCAPE.sub(lambda m: f"&#{ord(m.group())};", body)
    return "" if name == "ref" else " "


def _blocks(text: str) -> str:
    """Replace `<tag>...</tag>` blocks (and `<tag/>`) of the names above, outermost first, in one
    pass: each opener finds its closer by bisection, so unclosed tags cost no rescan."""
    tags = list(_BLOCK_TAG.finditer(text))
    closers: dict[str, list[int]] = {}
    for i, m in enumerate(tags):
        if m.group(1):
            closers.setdefault(m.group(2).lower(), []).append(i)
    out, pos, i = [], 0, 0
    while i < len(tags):
        m, name = tags[i], tags[i].group(2).lower()
        ends = closers.get(name, [])
        k = bisect.bisect_right(ends, i)
        if m.group(1) or (not m.group(3).rstrip().endswith("/") and k == len(ends)):
            i += 1  # a closer with no opener, or an opener never closed: left as text
            continue
        if m.group(3).rstrip().endswith("/"):
            out += [text[pos:m.start()], _block_text(name, "")]
            pos, i = m.end(), i + 1
            continue
        close = tags[ends[k]]
        out += [text[pos:m.start()], _block_text(name, text[m.end():close.start()])]
        pos, i = close.end(), ends[k] + 1
    out.append(text[pos:])
    return "".join(out)


def _pairs(text: str, opener: str, closer: str) -> dict[int, int]:
    """Position of every matched `opener` -> its `closer` (one stack pass: linear)."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for m in re.finditer(f"[{re.escape(opener)}{re.escape(closer)}]", text):
        if m.group() == opener:
            stack.append(m.start())
        elif stack:
            match[stack.pop()] = m.start()
    return match


def _replace_outer(text: str, opener: str, closer: str, render: Callable[[str, int, int], str | None]) -> str:
    """Replace each outermost balanced span that `render(text, start, end)` claims (not None)."""
    match = _pairs(text, opener, closer)
    out: list[str] = []
    pos = 0
    for start in sorted(match):
        if start < pos:
            continue  # inside a span already replaced
        repl = render(text, start, match[start])
        if repl is not None:
            out += [text[pos:start], repl]
            pos = match[start] + 1
    out.append(text[pos:])
    return "".join(out)


def _brace_span(text: str, start: int, end: int) -> str | None:
    following = text[start + 1:start + 2]
    return " " if following == "{" else "\n" if following == "|" and text[end - 1] == "|" else None


def _link_span(text: str, start: int, end: int, hidden: frozenset[str] = HIDDEN_NAMESPACES) -> str | None:
    if text[start + 1:start + 2] != "[" or text[end - 1] != "]":
        return None  # a single bracket, e.g. `[above]` or an external link
    return render_link(text[start + 2:end - 1], hidden)


def render_link(inner: str, hidden: frozenset[str] = HIDDEN_NAMESPACES) -> str:
    """What `[[inner]]` shows: '' for hidden links, else the label (or the target). `hidden`:
    lower-case namespace names whose links show nothing (a wiki's own names for file, media
    and category beside the English ones)."""
    target, sep, label = inner.partition("|")
    target = target.strip()
    visible = target.startswith(":")
    prefix, colon, _ = target.lstrip(":").partition(":")
    prefix = prefix.strip().lower()
    if not visible and colon and (prefix in hidden or _INTERLANGUAGE.fullmatch(prefix)):
        return ""
    shown = label if sep and label.strip() else target.lstrip(":")
    # Links inside a label are not valid wikitext (file captions, which hold them, went above):
    # their brackets go without another scan, so nesting cannot make the pass quadratic.
    return shown.replace("[[", "").replace("]]", "")


def wikitext_to_text(wikitext: str, hidden: frozenset[str] = HIDDEN_NAMESPACES) -> str:
    """Plain text of an article's wikitext (see the module docstring for the steps)."""
    text = _COMMENT.sub("", wikitext)
    text = _blocks(text)
    text = _replace_outer(text, "{", "}", _brace_span)
    text = _EXTERNAL_LINK.sub(r"\1", text)
    text = _BARE_URL.sub(" ", text)
    text = _replace_outer(text, "[", "]", _link_span if hidden is HIDDEN_NAMESPACES
                          else lambda t, a, b: _link_span(t, a, b, hidden))
    text = _HTML_TAG.sub(" ", text)
    text = _HEADING.sub(r"\1", text)
    text = _BOLD_ITALIC.sub("", text)
    text = _LIST_MARKER.sub("", text)
    text = _RULE_OR_MAGIC.sub("", text)
    text = _LEFTOVER_BRACES.sub(" ", text)  # from broken markup; they carry no words
    return html.unescape(text)


__all__ = ["HIDDEN_NAMESPACES", "NO_PROSE", "render_link", "wikitext_to_text"]
