"""Regenerate `queries/demo_allowlist.tsv` (committed; runtime never needs wordfreq):

    python -m queries.make_demo_allowlist        # needs wordfreq==3.1.1 (the `bench` extra)

The demo list mirrors the CLIP/MetaCLIP sources at toy scale (see queries/__init__.py for
what each source's `stat` means): unigrams (every concept word + common English words),
high-PMI bigrams of the synthetic captions, a few Wikipedia-title-like phrases and WordNet
lemmas not already listed.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

from wit_pipeline.synthetic.concepts import COLOURS, SHAPES, TEXTURES, all_concepts, caption_for
from wit_pipeline.text.textnorm import normalize, padded

OUT = Path(__file__).with_name("demo_allowlist.tsv")
N_COMMON = 500
N_CAPTIONS = 20_000
MIN_BIGRAM_COUNT = 20
MIN_PMI = 1.0
STOPWORDS = {"a", "an", "the", "of", "on", "in", "with", "and", "to"}
TITLES = ("Red Cross", "Black Square", "Southern Cross", "Star of David", "Olympic rings", "Checkered flag",
          "Blue Star", "White Star Line", "Yellow Submarine", "Purple Heart", "Orange Order", "Green Ring")
WORDNET = ("polka dot", "checkerboard", "pentagram", "annulus", "rhombus", "hexagon", "oval", "rectangle",
           "crimson", "navy blue", "olive green", "sky blue", "stripe", "dot", "pinstripe")


def _captions() -> list[str]:
    rng = random.Random("demo-allowlist|0")
    concepts = all_concepts()
    return [normalize(caption_for(rng.choice(concepts), rng)) for _ in range(N_CAPTIONS)]


def rows() -> list[tuple[str, str, str]]:
    import wordfreq

    out: dict[str, tuple[str, str]] = {}

    def add(query: str, source: str, stat: str) -> None:
        q = normalize(query)
        if q and q not in out:
            out[q] = (source, stat)

    concept_words = [*COLOURS, *SHAPES, *TEXTURES]
    common = [w for w in wordfreq.top_n_list("en", N_COMMON) if w.isalpha() and len(w) >= 2]
    for word in [*concept_words, *common]:
        add(word, "unigram", str(round(wordfreq.word_frequency(word, "en") * 1e9)))

    captions = _captions()
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for cap in captions:
        toks = cap.split()
        unigrams.update(toks)
        bigrams.update(zip(toks, toks[1:]))
    n_uni, n_bi = sum(unigrams.values()), sum(bigrams.values())
    scored = []
    for (a, b), n in bigrams.items():
        if n < MIN_BIGRAM_COUNT or a in STOPWORDS or b in STOPWORDS:
            continue
        pmi = math.log2((n / n_bi) / ((unigrams[a] / n_uni) * (unigrams[b] / n_uni)))
        if pmi >= MIN_PMI:
            scored.append((-pmi, f"{a} {b}"))
    for neg_pmi, bigram in sorted(scored):
        add(bigram, "bigram", f"{-neg_pmi:.3f}")

    padded_caps = [f" {c} " for c in captions]
    for phrase in [*TITLES, *WORDNET]:
        needle = padded(phrase)
        count = sum(needle in c for c in padded_caps)
        add(phrase, "title" if phrase in TITLES else "wordnet", str(count))
    return [(q, s, st) for q, (s, st) in out.items()]


def main() -> None:
    lines = ["query\tsource\tstat", *("\t".join(r) for r in rows())]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines) - 1} queries to {OUT}")


if __name__ == "__main__":
    main()
