"""Words of languages written without spaces, for counting: which segmenter, phrases, bigram joins.

Wikipedia languages whose script puts no space between words (MetaCLIP 2's `no_space_languages`)
are cut into words by a segmenter before unigrams and bigrams are counted. The segmenters come
from PyPI in extras (`worldwide`: ICU; `segmenters`: the others) and are imported only when
such a language is built:

- `icu` (the default for zh, ja, th, lo, km, my and their variants): ICU's dictionary-based word
  break iterator, through `icu4py` (a 16 MB wheel with ICU and its dictionaries inside). One
  library for six scripts, no model or dictionary fetched or cached at run time. Counting
  articles (bench/segmenters.py): jieba takes 2.8x ICU's time on zh, pythainlp 3.9x on th,
  MeCab 1.1x on ja.
- `jieba` (zh), `mecab` (ja: fugashi + unidic-lite, MeCab as MetaCLIP 2 used it), `pythainlp`
  (th, its `newmm` engine): the usual single-language choices, selectable with `--segmenter`.
- `syllable` (bo, dz): Tibetan marks every syllable with a tsheg (U+0F0B), which the text
  normaliser turns into a token break, so a token is a syllable and two-syllable words are
  found as high-PMI bigrams. No library is needed (botok, MetaCLIP 2's choice, downloads its
  dictionary at run time, which wit does not do).

Counting an unspaced language: the plain text is cut into phrases at punctuation of every
script (bigrams never cross them), each phrase is segmented as written
(before NFKC, which splits Thai's SARA AM and would cost the dictionary its words), and each
word is then normalised exactly as captions are (`textnorm`; punctuation words vanish). For th, lo, km, my, bo and dz a
space separates phrases, not words, so bigrams do not cross it; in zh and ja a space only sits
beside embedded Latin words and bigrams cross it. Bigram keys stay `a b` while counting (PMI
needs both words); the allowlist writes them with `join_bigram`: without a space where either
side of the join is a character of an unspaced script (CJK, kana, Thai, Lao, Burmese, Khmer),
with one between two Latin words ("new york" inside Chinese text stays matchable), and always
with a space for bo/dz syllables (the normal form of a tsheg).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from queries.wikipedia import PHRASE_BREAK
from wit_pipeline.text.matcher import batch_tokens

_SEP = "\x00"  # what normalize_batch joins its texts with

# Wikipedia code -> its default segmenter. Codes use "_" as MetaCLIP and the dump names do.
UNSPACED: dict[str, str] = {
    "zh": "icu", "zh_yue": "icu", "zh_classical": "icu", "ja": "icu", "ryu": "icu",
    "th": "icu", "lo": "icu", "km": "icu", "my": "icu", "bo": "syllable", "dz": "syllable"}
# The locale ICU segments a language's text with.
ICU_LOCALE = {"zh_yue": "zh", "zh_classical": "zh", "ryu": "ja"}
# Where a space separates phrases rather than words.
SPACE_BREAKS = frozenset({"th", "lo", "km", "my", "bo", "dz"})
SYLLABLE_JOIN = frozenset({"bo", "dz"})


@dataclass(frozen=True)
class Engine:
    modules: tuple[str, ...]  # what must import
    pip: str  # what to install
    extra: str  # wit's extra that installs it
    languages: frozenset[str]


SEGMENTERS: dict[str, Engine] = {
    "icu": Engine(("icu4py.breakers",), "icu4py==1.2.0", "worldwide", frozenset(UNSPACED) - {"bo", "dz"}),
    "jieba": Engine(("jieba",), "jieba==0.42.1", "segmenters", frozenset({"zh", "zh_yue", "zh_classical"})),
    "mecab": Engine(("fugashi", "unidic_lite"), "fugashi==1.5.2 unidic-lite==1.0.8", "segmenters",
                    frozenset({"ja", "ryu"})),
    "pythainlp": Engine(("pythainlp.tokenize",), "pythainlp==5.4.0", "segmenters", frozenset({"th"})),
    "syllable": Engine((), "", "", frozenset({"bo", "dz"})),
}

# Phrase breaks of unspaced scripts, on top of PHRASE_BREAK: CJK and full-width punctuation,
# Thai, Lao, Khmer, Burmese and Tibetan sentence and clause marks.
_EXTRA_BREAKS = ("。、，；：？！「」『』（）［］【】《》〈〉〔〕｛｝・～．｡､"
                 "ฯ๏๚๛" "។៕៖" "၊။" "།༎༏༐༑༔༄༅")
UNSPACED_BREAK = re.compile(PHRASE_BREAK.pattern[:-2] + re.escape(_EXTRA_BREAKS) + "]+")
_WHITESPACE_BREAK = re.compile(UNSPACED_BREAK.pattern[:-2] + r"\s]+")

_UNSPACED_SCRIPT = re.compile(
    "[\u2e80-\u2fdf\u2ff0-\u2fff\u3005\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002ebef\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")

_DIGIT = re.compile(r"\d")
# ICU keeps digits and the Thai (Lao, ...) letters beside them as one word ("0ภาษา"): cut there.
_DIGIT_EDGE = re.compile(rf"(?<=\d)(?={_UNSPACED_SCRIPT.pattern})|(?<={_UNSPACED_SCRIPT.pattern})(?=\d)")


def is_unspaced(language: str) -> bool:
    return language in UNSPACED


def default_segmenter(language: str) -> str | None:
    """The segmenter a language uses unless told otherwise (None: it is written with spaces)."""
    return UNSPACED.get(language)


def check(language: str, name: str | None) -> None:
    """ValueError (one line) when `name` cannot segment `language` here: wrong language, or its
    library is not installed. Called before any work starts."""
    if name is None:
        if is_unspaced(language):
            raise ValueError(f"language {language} is written without spaces and needs a segmenter")
        return
    engine = SEGMENTERS.get(name)
    if engine is None:
        raise ValueError(f"unknown segmenter {name!r}: one of {', '.join(SEGMENTERS)}")
    if not is_unspaced(language):
        raise ValueError(f"language {language} is written with spaces: it takes no segmenter")
    if language not in engine.languages:
        fits = sorted(n for n, e in SEGMENTERS.items() if language in e.languages)
        raise ValueError(f"segmenter {name} does not segment {language} (use {' or '.join(fits)})")
    for module in engine.modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(f"language {language} needs the {name} segmenter ({engine.pip}), which is not installed: "
                             f"pip install -e '.[{engine.extra}]'") from None


def _icu(language: str) -> Callable[[str], list[str]]:
    from icu4py.breakers import WordBreaker

    locale = ICU_LOCALE.get(language, language)
    return lambda chunk: list(WordBreaker(chunk, locale))


def _jieba(language: str) -> Callable[[str], list[str]]:
    import jieba

    tok = jieba.Tokenizer()
    # Build the prefix dictionary in memory: jieba's own initialize() writes a cache file to /tmp.
    tok.FREQ, tok.total = tok.gen_pfdict(tok.get_dict_file())
    tok.initialized = True
    return lambda chunk: tok.lcut(chunk)


def _mecab(language: str) -> Callable[[str], list[str]]:
    import fugashi

    tagger = fugashi.Tagger("-Owakati")
    return lambda chunk: tagger.parse(chunk).split()


def _pythainlp(language: str) -> Callable[[str], list[str]]:
    from pythainlp.tokenize import word_tokenize

    return lambda chunk: word_tokenize(chunk, engine="newmm", keep_whitespace=False)


_FACTORIES: dict[str, Callable[[str], Callable[[str], list[str]]]] = {
    "icu": _icu, "jieba": _jieba, "mecab": _mecab, "pythainlp": _pythainlp, "syllable": lambda _: lambda c: [c]}
_LOADED: dict[tuple[str, str], Callable[[str], list[str]]] = {}  # one engine per process


@dataclass(frozen=True)
class Segmenter:
    """Counts the words of one unspaced language; pickles as its two names (the engine is
    loaded once per process, on first use)."""

    language: str
    name: str

    def __post_init__(self) -> None:
        check(self.language, self.name)

    def _engine(self) -> Callable[[str], list[str]]:
        key = (self.language, self.name)
        if key not in _LOADED:
            _LOADED[key] = _FACTORIES[self.name](self.language)
        return _LOADED[key]

    def phrases(self, text: str) -> Iterator[list[str]]:
        """Token lists of plain text's phrases (see the module docstring)."""
        breaks = _WHITESPACE_BREAK if self.language in SPACE_BREAKS else UNSPACED_BREAK
        segment = self._engine()
        spans = []
        for span in breaks.split(text):
            if span and not span.isspace():
                words = [part for word in segment(span) if not word.isspace()
                         for part in (_DIGIT_EDGE.split(word) if _DIGIT.search(word) else (word,))]
                spans.append(" ".join(words))
        # Each word is normalised as captions are; one batch for the whole text (words are
        # joined by spaces, which normalisation never crosses), spans apart at the NULs.
        toks: list[str] = []
        for tok in batch_tokens(spans) if spans else ():
            if tok == _SEP:
                if toks:
                    yield toks
                toks = []
            else:
                toks.append(tok)
        if toks:
            yield toks


def join_bigram(language: str, bigram: str) -> str:
    """A counted bigram key `a b` as the allowlist writes it (see the module docstring)."""
    if language not in UNSPACED or language in SYLLABLE_JOIN:
        return bigram
    a, b = bigram.split(" ")
    return a + b if _UNSPACED_SCRIPT.match(a[-1]) or _UNSPACED_SCRIPT.match(b[0]) else bigram


def for_language(language: str, name: str | None = None) -> Segmenter | None:
    """The checked segmenter of a language (None for a spaced one), or ValueError."""
    name = name or default_segmenter(language)
    check(language, name)
    return None if name is None else Segmenter(language, name)


__all__ = ["SEGMENTERS", "SPACE_BREAKS", "UNSPACED", "UNSPACED_BREAK", "Segmenter", "check", "default_segmenter",
           "for_language", "is_unspaced", "join_bigram"]
