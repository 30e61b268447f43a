"""A seeded synthetic English-Wikipedia-like dump, plain and multistream, for tests and benchmarks.

Articles are wikitext with the markup the reader must strip (infoboxes holding tables,
links, file links with bracketed captions, refs, headings) around sentences drawn from a
Zipf-like vocabulary with a few fixed collocations, so unigram, bigram and PMI counts are
non-trivial; every tenth page is a redirect and every seventh a talk page.
`write_multistream` lays pages out the way Wikimedia does (header stream, one bz2 stream per
`per_stream` pages, footer stream) with the `offset:page_id:title` index beside it.
"""

from __future__ import annotations

import bz2
import itertools
import random
from xml.sax.saxutils import escape

import fsspec

HEADER = (b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="en">\n'
          b"  <siteinfo><sitename>Wikipedia</sitename><dbname>enwiki</dbname></siteinfo>\n")
FOOTER = b"</mediawiki>\n"
COLLOCATIONS = ("new york", "red fox", "united states", "world war", "prime minister")
_SYLLABLES = ("ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "an", "or", "el", "in", "us", "ba")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))))
    return sorted(words)


def _sentence(rng: random.Random, vocab: list[str], cum_weights: list[float]) -> str:
    words = rng.choices(vocab, cum_weights=cum_weights, k=rng.randint(6, 18))
    if rng.random() < 0.4:
        words.insert(rng.randrange(len(words)), rng.choice(COLLOCATIONS))
    if rng.random() < 0.2:
        i = rng.randrange(len(words))
        words[i] = f"[[{words[i].title()}|{words[i]}]]"
    return " ".join(words).capitalize() + "."


def _wikitext(rng: random.Random, title: str, vocab: list[str], cum_weights: list[float], sentences: int) -> str:
    parts = [f"{{{{Infobox thing|name={title}|stats={{| class=wikitable\n| a || b\n|}}|note={{{{small|x}}}}}}}}",
             f"'''{title}''' is a {rng.choice(vocab)}.<ref>{{{{cite web|url=http://example.org|title=t}}}}</ref>"]
    for i in range(sentences):
        if i and i % 8 == 0:
            parts.append(f"\n== {rng.choice(vocab).title()} ==\n[[File:X{i}.jpg|thumb|The [left] {rng.choice(vocab)}]]")
        parts.append(_sentence(rng, vocab, cum_weights))
    parts.append("\n== References ==\n{{reflist}}\n[[Category:Things]]\n[[de:Ding]]")
    return " ".join(parts)


def page_xml(page_id: int, title: str, ns: int, text: str, redirect: str | None = None) -> bytes:
    red = f'<redirect title="{escape(redirect)}" />' if redirect else ""
    return (f"  <page><title>{escape(title)}</title><ns>{ns}</ns><id>{page_id}</id>{red}<revision><id>{page_id + 1}"
            f'</id><text xml:space="preserve">{escape(text)}</text></revision></page>\n').encode("utf-8")


def sample_pages(n: int, seed: int = 0, sentences: int = 40, vocab_size: int = 3000) -> list[bytes]:
    """n <page> elements (UTF-8 XML), the same for the same arguments."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, vocab_size)
    rng.shuffle(vocab)  # frequency rank apart from spelling
    cum_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocab))))  # Zipf
    pages = []
    for i in range(n):
        title = f"{rng.choice(vocab).title()} {i}"
        if i % 10 == 9:
            pages.append(page_xml(i + 1, title, 0, f"#REDIRECT [[{vocab[i % 50]}]]", redirect=vocab[i % 50]))
        else:
            pages.append(page_xml(i + 1, title if i % 7 != 6 else f"Talk:{title}", 0 if i % 7 != 6 else 1,
                                  _wikitext(rng, title, vocab, cum_weights, sentences)))
    return pages


def write_plain(pages: list[bytes], path: str) -> None:
    """One bz2 stream, as `pages-articles.xml.bz2`."""
    with fsspec.open(path, "wb") as out:
        out.write(bz2.compress(HEADER + b"".join(pages) + FOOTER))


def write_multistream(pages: list[bytes], dump_path: str, index_path: str, per_stream: int = 100,
                      header: bytes = HEADER, footer: bytes = FOOTER) -> int:
    """As `pages-articles-multistream.xml.bz2` and its index; returns the number of page streams."""
    import xml.etree.ElementTree as ET

    offset, lines, streams = 0, [], 0
    with fsspec.open(dump_path, "wb") as out:
        offset += out.write(bz2.compress(header))
        for i in range(0, len(pages), per_stream):
            for page in pages[i:i + per_stream]:
                elem = ET.fromstring(page)
                lines.append(f"{offset}:{elem.findtext('id')}:{elem.findtext('title')}\n")
            offset += out.write(bz2.compress(b"".join(pages[i:i + per_stream])))
            streams += 1
        out.write(bz2.compress(footer))
    with fsspec.open(index_path, "wb") as out:
        out.write(bz2.compress("".join(lines).encode("utf-8")))
    return streams


__all__ = ["FOOTER", "HEADER", "page_xml", "sample_pages", "write_multistream", "write_plain"]
