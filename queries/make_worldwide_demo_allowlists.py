"""Regenerate `queries/worldwide_demo/<code>.tsv` (committed): the per-language lists of the
worldwide demo when `wit build-queries --language` is not used.

    python -m queries.make_worldwide_demo_allowlists

Each list holds the language's colour and shape words (the words `wit gen-crawl --worldwide`
captions its pages with) as unigrams, with their counts in the generated dump of that language
(`wit_pipeline.synthetic.worldwide.write_dump`, seed 0) as the stat. English is the bundled
demo list (`queries/demo_allowlist.tsv`).
"""

from __future__ import annotations

import bz2
import tempfile
from pathlib import Path

from wit_pipeline.synthetic import worldwide
from wit_pipeline.text.allowlist import write_allowlist

OUT = Path(__file__).with_name("worldwide_demo")


def rows(language: str) -> list[tuple[str, str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        text = bz2.decompress(worldwide.write_dump(Path(tmp) / "dump.xml.bz2", language).read_bytes()).decode("utf-8")
    return [(word, "unigram", text.count(word)) for word in worldwide.WORDS[language].values()]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for language in worldwide.LANGUAGES:
        n = write_allowlist(str(OUT / f"{language}.tsv"), rows(language))
        print(f"wrote {n} queries to {OUT / f'{language}.tsv'}")


if __name__ == "__main__":
    main()
