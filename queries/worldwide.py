"""Per-language allowlists, MetaCLIP 2's way: one `<code>.tsv` per Wikipedia language in one folder.

English is built as it always was (MetaCLIP 2 copies MetaCLIP 1's English list too). Every other
language takes MetaCLIP 2's metadata/build_metadata.py recipe (`worldwide_recipe`):
the strings "0".."99", its Open Multilingual WordNet lemmas (uncapped), then unigrams by count
(the top 10% of the language's distinct words, at most 251,465), bigrams by PMI (at most 100,646;
`bigram_quota="doc"`: at most 40% of the unigram quota), titles by page views (the top 76% of
the language's viewed titles, at most 61,235); no count or view floor for words and titles, PMI
>= 30 with wit's bigram count floor (MetaCLIP's PMI step is unreleased), entries longer than
256 characters dropped, no cap on the whole list. docs/worldwide.md lists each choice.

    build_language("ja", ["dumps/jawiki-...-pages-articles.xml.bz2"], "out/allowlist",
                   pageviews=["pv/pageviews-*.gz"], omw="nltk_data/corpora/omw-1.4")
    -> "out/allowlist/ja.tsv" (and out/allowlist/build/ja/stats.json)

is the one-process build for small dumps (tests, the demo); `wit build-queries --language ja`
is the same build as a Beam job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from queries import build, dumpset, omw
from queries.build import Recipe
from wit_pipeline.core import fsio, outputs
from wit_pipeline.core.stats import DictTally, stages_from_counters

BUILD_DIR = "build"  # <output>/build/<code>/: stats.json, reads.jsonl, dead_letter/
STAGES = ("inputs", "pages", "articles", "unigrams", "bigrams", "pmi", "pageviews", "titles", "wordnet", "allowlist")


def worldwide_recipe(language: str, **overrides: Any) -> Recipe:
    """The recipe of `language` (build.LANGUAGE_DEFAULTS: English's or MetaCLIP 2's), with overrides."""
    return Recipe(language=language, **overrides)


def allowlist_url(output: str, language: str) -> str:
    return fsio.join(output, f"{language}.tsv")


def job_dir(output: str, language: str) -> str:
    return fsio.join(output, BUILD_DIR, language)


def with_site(recipe: Recipe, dump_urls: Iterable[str]) -> Recipe:
    """The recipe with the wiki's own namespace names, read from the first dump's siteinfo."""
    if recipe.language == "en" or recipe.namespaces:
        return recipe
    for url in dump_urls:
        names = dumpset.site_namespaces(url)
        if names:
            return dataclasses.replace(recipe, namespaces=tuple(sorted(names.items())))
    return recipe


def wordnet_note(language: str, omw_path: str | None) -> str | None:
    """Why a language's list will have no WordNet entries, or None when it will have some."""
    if language == "en":
        return None
    if omw_path is None:
        return f"no --omw: the {language} list has no WordNet entries"
    if not omw.has_language(omw_path, language):
        return f"--omw {omw_path}: no WordNet of {language} there; the {language} list has no WordNet entries"
    return None


def build_language(language: str, wikipedia: list[str], output: str, pageviews: Iterable[str] = (),
                   omw_path: str | None = None, recipe: Recipe | None = None, wordnet_dir: str | None = None) -> str:
    """Build `<output>/<language>.tsv` in this process (see the module docstring); returns its URL.

    Raises ValueError (one line) before any work for a bad code or a missing segmenter."""
    recipe = recipe or worldwide_recipe(language)
    if recipe.language != language:  # its defaults were filled for its own language
        raise ValueError(f"the recipe is for {recipe.language}, not {language}: use worldwide_recipe({language!r}, ...)")
    for url in wikipedia:
        wiki = dumpset.wiki_language(url)
        if wiki is not None and wiki != language:
            raise ValueError(f"{url} is the {wiki} Wikipedia, not {language}")
    if omw_path is not None and not fsio.exists(omw_path):
        raise ValueError(f"--omw {omw_path!r} does not exist")
    recipe = with_site(recipe, wikipedia)
    tally = DictTally()
    rows = build.build_allowlist(wikipedia, list(pageviews), wordnet_dir, recipe, tally, omw_path)
    from wit_pipeline.text.allowlist import write_allowlist

    url = allowlist_url(output, language)
    fsio.makedirs(output)
    write_allowlist(url, rows)
    stages = stages_from_counters(tally.as_dict(), STAGES)
    build.check_sources(stages, recipe.numbers)
    outputs.write_stats(job_dir(output, language), stages, (("bigrams", "pmi"),), job="build-queries",
                        language=language, recipe=dataclasses.asdict(recipe))
    return url


__all__ = ["BUILD_DIR", "allowlist_url", "build_language", "job_dir", "with_site", "wordnet_note", "worldwide_recipe"]
