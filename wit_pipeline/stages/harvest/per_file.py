"""Harvest, the per-file half: one crawl file -> its matched candidates, in one pass.

read -> extract -> filter (text rules, language) -> match happen here, per file, so the
only thing a crawl file leaves behind is a part (`parts`): the parquet of its matched
candidates plus the file's counts and dead letters, stamped with the fingerprint of
everything that decides its contents, so a rerun of the same command skips every file whose
part is complete and a changed setting redoes them all. The global half (`select`: dedup
across files, per-query counts, balancing) reads only keys and query ids back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from wit_pipeline.core import fsio, keys, schema
from wit_pipeline.core.gc_pause import paused_gc
from wit_pipeline.core.stats import ERROR, DictTally, Tally, error_text
from wit_pipeline.stages.harvest import parts
from wit_pipeline.stages.harvest.config import ALL_LANGUAGES, HarvestConfig
from wit_pipeline.text.textfilter import drop_reason
from wit_pipeline.web.extract import iter_pairs

FILTER, MATCH = "filter", "match"
PER_FILE_STAGES = ("read", "extract", FILTER, MATCH)
MAX_DEAD_LETTERS = 1000  # per crawl file, listed in its part
NO_LIST = "no_allowlist_for_language"  # a kept language the allowlist folder has no list for


class Models:
    """What the per-file pass needs besides its config: the language identifier and the
    allowlist matcher, built once per worker process (they are large)."""

    def __init__(self, lid: Any, matcher: Any) -> None:
        self.lid, self.matcher = lid, matcher


def load_lid(config: HarvestConfig) -> Any:
    from wit_pipeline.text.langid import LanguageIdentifier

    return LanguageIdentifier(config.lid_model)


def load_matcher(config: HarvestConfig) -> Any:
    """The allowlist's matcher; for a folder, one per language, only for the languages kept."""
    from wit_pipeline.text.allowlist_folder import FolderMatcher, is_folder
    from wit_pipeline.text.languages import lid_to_wiki
    from wit_pipeline.text.matcher import QueryMatcher

    if is_folder(config.allowlist):
        keep = None if ALL_LANGUAGES in config.languages else {lid_to_wiki(label) for label in config.languages}
        return FolderMatcher.from_folder(config.allowlist, config.case_sensitive, keep)
    return QueryMatcher.from_file(config.allowlist, config.case_sensitive)


def make_part(file_url: str, parts_dir: str, config: HarvestConfig, fingerprint: str,
              load_models: Callable[[], Models]) -> str:
    """A crawl file's part URL, computing the part unless a complete one is there (the models
    are asked for only then). A file whose pass raises (a bug, a failing model) is this file's
    loss, counted; a file that failed as a whole is accounted for now and marked to be read
    again by the next run."""
    part = fsio.join(parts_dir, parts.part_name(file_url))
    version = parts.input_version(file_url)  # before the read: a file changing meanwhile is read again next run
    if not parts.part_is_complete(part, fingerprint, version):
        models = load_models()  # one that cannot load fails the job, not each file
        try:
            with paused_gc():  # a file's pairs and verdicts are many small objects, no cycles
                table, counts, dead = harvest_file(file_url, config, models)
        except Exception as exc:
            logging.exception("harvest of %s failed", file_url)
            table, counts, dead = failed_file(file_url, exc)
        stamp = parts.RETRY if file_failed(file_url, dead) else fingerprint
        parts.write_part(part, table, counts, dead, stamp, version)
    return part


def harvest_file(file_url: str, config: HarvestConfig, models: Models) -> tuple[pa.Table, dict[str, int], list[dict]]:
    """One crawl file -> (its matched candidates, its counts, its dead letters).

    The text rules, language ID and matching are functions of the text alone, and the same
    alt text recurs across a site's pages: each distinct text of the file is judged once,
    and its verdict spread back to its pairs by numpy indexing (no object per pair)."""
    tally = DictTally()
    dead: list[dict] = []

    def on_error(source: str, error: str) -> None:
        dead.append({"stage": "read", "source": source, "error": error})

    pairs = list(iter_pairs(file_url, tally, on_error))
    texts = [pair["text"] for pair in pairs]
    index = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    verdicts = judge_texts(list(index), config, models)
    text_of = np.fromiter(map(index.__getitem__, texts), np.int64, len(texts))  # each pair's distinct text
    pairs_of_text = np.bincount(text_of, minlength=len(index)).tolist()
    filtered = Counter()
    for i, reason in verdicts.dropped.items():
        filtered[reason] += pairs_of_text[i]
    for stage, errors in ((FILTER, verdicts.errors), (MATCH, verdicts.match_errors)):
        if errors:
            dead.extend({"stage": stage, "source": pair["page_url"], "error": errors[i]}
                        for pair, i in zip(pairs, text_of.tolist()) if i in errors)
    rows = np.flatnonzero(verdicts.matched()[text_of])  # the pairs whose text matched some query
    matched = len(pairs) - filtered.total()
    failed = sum(pairs_of_text[i] for i in verdicts.match_errors)
    _count(tally, FILTER, len(pairs), matched, filtered)
    _count(tally, MATCH, matched, len(rows), Counter({"no_match": matched - len(rows) - failed, ERROR: failed}))
    return candidate_table([pairs[i] for i in rows.tolist()], verdicts, text_of[rows]), tally.as_dict(), capped(dead)


def candidate_table(candidates: list[dict], verdicts: Verdicts, text_of: np.ndarray) -> pa.Table:
    """schema.CANDIDATES of the candidate pairs, in order, whose texts are `text_of` (indexes
    of the judged texts), built column by column: a dict per row and Table.from_pylist cost
    more than the row's hash."""
    urls = [pair["url"] for pair in candidates]
    texts = [pair["text"] for pair in candidates]
    columns = [keys.sample_keys(urls, texts), urls, texts, [pair["page_url"] for pair in candidates]]
    arrays = [pa.array(column, type=f.type) for column, f in zip(columns, schema.CANDIDATES)]
    arrays += verdicts.columns(text_of)
    return pa.Table.from_arrays(arrays, schema=schema.CANDIDATES)


def capped(dead: list[dict]) -> list[dict]:
    """At most MAX_DEAD_LETTERS of a file's dead letters, then one that says how many more:
    a crafted file of a million broken records must not make a part of gigabytes (its counts
    stay exact)."""
    if len(dead) <= MAX_DEAD_LETTERS:
        return dead
    more = len(dead) - MAX_DEAD_LETTERS
    return [*dead[:MAX_DEAD_LETTERS], {"stage": dead[-1]["stage"], "source": dead[-1]["source"],
                                       "error": f"... and {more} more dead letters in this file, not listed"}]


def file_failed(file_url: str, dead: list[dict]) -> bool:
    """Whether the file itself failed (not one of its records): its part is written, so this
    run accounts for it, but marked to be read again by the next run (throttling, a flaky
    store or a file not there yet must not become a permanent loss)."""
    return any(d["source"] == file_url for d in dead)


class Verdicts:
    """The verdicts on a file's distinct texts, by their index in the list judged: `dropped`
    holds a dropped text's filter reason, `errors` why a text raised; the texts that passed are
    `passed`, with their language, score and query ids in the same order; `match_errors`
    holds why the matcher raised on a text that passed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.dropped: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self.match_errors: dict[int, str] = {}  # texts that passed the filter but the matcher raised on
        self.passed: list[int] = []
        self.languages: list[str] = []
        self.scores: list[float] = []
        self.query_ids: list[list[int]] = []

    def matched(self) -> np.ndarray:
        """Per text, whether it passed and matched some query (its pairs are candidates)."""
        mask = np.zeros(self.n, bool)
        mask[[i for i, ids in zip(self.passed, self.query_ids) if ids]] = True
        return mask

    def columns(self, text_of: np.ndarray) -> list[pa.Array]:
        """The language, lang_score and query_ids columns of rows whose texts (all passed) are `text_of`."""
        slot = np.zeros(self.n, np.int64)
        slot[self.passed] = np.arange(len(self.passed))
        at = pa.array(slot[text_of])
        values = (self.languages, self.scores, self.query_ids)
        return [pa.array(column, schema.CANDIDATES.field(name).type).take(at)
                for column, name in zip(values, ("language", "lang_score", "query_ids"))]


def judge_texts(texts: list[str], config: HarvestConfig, models: Models) -> Verdicts:
    """The filter stage's rules (text rules, then language ID) and the allowlist match, for
    each distinct text; a text the model cannot take costs only itself (a dead letter). With
    an allowlist folder a text is matched only against its language's list, and a text whose
    language has none is dropped (NO_LIST)."""
    verdicts = Verdicts(len(texts))
    languages = None if ALL_LANGUAGES in config.languages else frozenset(config.languages)
    has_list = getattr(models.matcher, "has_list", None)  # a folder's matcher: one list per language
    for i, text in enumerate(texts):
        reason = drop_reason(text, config.min_chars, config.max_chars)
        if reason is None:
            try:
                language, score = models.lid.predict(text)
            except Exception as exc:
                verdicts.errors[i] = error_text(exc)
                reason = ERROR
            else:
                if languages is not None and language not in languages:
                    reason = "wrong_language"
                elif score < config.min_lang_score:
                    reason = "low_lang_score"
                elif has_list is not None and not has_list(language):
                    reason = NO_LIST
        if reason is None:
            verdicts.passed.append(i)
            verdicts.languages.append(language)
            verdicts.scores.append(score)
        else:
            verdicts.dropped[i] = reason
    verdicts.query_ids = match_passed([texts[i] for i in verdicts.passed], verdicts, models.matcher)
    return verdicts


def match_passed(texts: list[str], verdicts: Verdicts, matcher: Any) -> list[list[int]]:
    """The query ids of each text that passed the filter, matched as one batch; should the
    batch raise, text by text, so that a text the matcher cannot take costs only itself (no
    ids, its error in `verdicts.match_errors`)."""
    def match(batch: list[str], languages: list[str]) -> list:
        return matcher.match_many(batch) if not hasattr(matcher, "has_list") else matcher.match_many(batch, languages)

    try:
        return [list(ids) for ids in match(texts, verdicts.languages)]
    except Exception:
        logging.exception("matching a batch of %d texts failed: matching them one by one", len(texts))
    found = []
    for i, text, language in zip(verdicts.passed, texts, verdicts.languages):
        try:
            found.append(list(match([text], [language])[0]))
        except Exception as exc:
            verdicts.match_errors[i] = error_text(exc)
            found.append([])
    return found


def _count(tally: Tally, stage: str, n_in: int, n_out: int, dropped: Counter[str]) -> None:
    """One stage's counts for a whole file at once (a Tally call per pair costs more than the rule)."""
    tally.inc(stage, "in", n_in)
    tally.kept(stage, n_out)
    for reason, n in dropped.items():
        if n:
            tally.dropped(stage, reason, n)


def failed_file(file_url: str, exc: BaseException) -> tuple[pa.Table, dict[str, int], list[dict]]:
    """What a file whose pass raised (a bug, or a model that failed) leaves: no rows, one
    counted read error, one dead letter; so the run goes on and says what happened."""
    counts = {"read:in": 1, "read:dropped.error": 1}
    dead = [{"stage": "read", "source": file_url, "error": error_text(exc)}]
    return schema.CANDIDATES.empty_table(), counts, dead
