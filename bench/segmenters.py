"""Word segmenters for unspaced languages: counting rate of each engine on the same articles.

Each language's generated sample dump (queries.sample_worldwide) is read and its articles'
plain text counted exactly as a build worker does (wikipedia.count_ngrams with the language's
Segmenter), once per engine installed. Printed per language: MB of plain text per second and
the number of distinct words each engine finds, then `ratio:` each engine's time over ICU's
(the default) in the same run. Engines that are not installed are left out with a note.

    python bench/segmenters.py [--pages 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import xml.etree.ElementTree as ET
from collections import Counter

from queries import sample_worldwide, segment, wikipedia

ENGINES = {"zh": ("icu", "jieba"), "ja": ("icu", "mecab"), "th": ("icu", "pythainlp")}


def texts_of(code: str, pages: int) -> list[str]:
    out = []
    for raw in sample_worldwide.sample_pages(code, pages):
        page = wikipedia.page_of(ET.fromstring(raw))
        article = wikipedia.article_text(page)
        if isinstance(article, tuple):
            out.append(article[1])
    return out


def count(texts: list[str], seg: segment.Segmenter) -> Counter[str]:
    unigrams: Counter[str] = Counter()
    for text in texts:
        unigrams.update(wikipedia.count_ngrams(text, seg)[0])
    return unigrams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for code, engines in ENGINES.items():
        texts = texts_of(code, args.pages)
        mb = sum(len(t.encode()) for t in texts) / 1e6
        best: dict[str, float] = {}
        for name in engines:
            if any(importlib.util.find_spec(m.split(".")[0]) is None for m in segment.SEGMENTERS[name].modules):
                print(f"{code} {name:10s} not installed ({segment.SEGMENTERS[name].pip})")
                continue
            seg = segment.for_language(code, name)
            words = count(texts[:5], seg)  # loads the engine outside the timing
            times = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                words = count(texts, seg)
                times.append(time.perf_counter() - start)
            best[name] = min(times)
            print(f"{code} {name:10s} {mb / best[name]:6.2f} MB/s of plain text  {len(words)} distinct words")
        for name, secs in best.items():
            if name != "icu" and "icu" in best:
                print(f"ratio: {code} {name}/icu time = {secs / best['icu']:.2f}")


if __name__ == "__main__":
    main()
