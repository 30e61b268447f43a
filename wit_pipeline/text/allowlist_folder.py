"""A worldwide allowlist: a folder of `<code>.tsv`, one list per Wikipedia language.

Each file is an allowlist in the usual format (`wit_pipeline.text.allowlist`), named by its
Wikipedia code (`en.tsv`, `zh.tsv`, `zh_yue.tsv`). Query ids are unique across the folder:
the files are taken in sorted order of their code and each file's ids follow the last one's
(`en.tsv`'s 3 queries are 0-2 when it comes first, the next file starts at 3), so an id means
the same query whatever languages a run keeps. A variant's list is matched together with its
base language's (`languages.base_code`), and a query's language is that base.

The folder is read strictly before any work: a file with no queries, a file that does not
parse, a name that is no Wikipedia code, or a folder without a `.tsv` is an error naming it.
`FolderMatcher` matches a text only against the list of its LID language, with one matcher
(token tables and, for unspaced scripts, one automaton) per language.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from wit_pipeline.core import fsio
from wit_pipeline.text.allowlist import Allowlist, parse_allowlist
from wit_pipeline.text.languages import base_code, lid_to_wiki

SUFFIX = ".tsv"


@dataclass(frozen=True)
class FolderAllowlist:
    """The lists of a folder, by code in sorted order; `offsets[i]` is the first id of `codes[i]`."""

    codes: tuple[str, ...]
    lists: tuple[Allowlist, ...]
    offsets: tuple[int, ...]
    sha256: str  # of every file's name and bytes: what the harvest's parts depend on

    def __len__(self) -> int:
        return sum(len(a) for a in self.lists)

    @property
    def queries(self) -> list[str]:
        return [q for a in self.lists for q in a.queries]

    def languages(self) -> list[str]:
        """The (folded) language of every query id, in id order."""
        return [base_code(code) for code, a in zip(self.codes, self.lists) for _ in range(len(a))]

    def by_language(self) -> dict[str, list[int]]:
        """Folded language -> the indexes (into `codes`) of its files."""
        out: dict[str, list[int]] = {}
        for i, code in enumerate(self.codes):
            out.setdefault(base_code(code), []).append(i)
        return out


def is_folder(url: str) -> bool:
    """Whether an --allowlist value names a folder (a worldwide allowlist) rather than one file."""
    return url != "demo" and fsio.isdir(url)


def load_folder(url: str, case_sensitive: bool = False) -> FolderAllowlist:
    """Read and validate every `<code>.tsv` of a folder (module docstring)."""
    files = sorted((name[: -len(SUFFIX)], name) for name in fsio.names(url) if name.endswith(SUFFIX))
    if not files:
        raise ValueError(f"allowlist folder {url} holds no <code>.tsv file (e.g. en.tsv, zh.tsv)")
    digest = hashlib.sha256()
    codes, lists, offsets = [], [], []
    next_id = 0
    for code, name in files:
        path = fsio.join(url, name)
        try:
            base_code(code)
        except ValueError as exc:
            raise ValueError(f"allowlist {path}: {exc}") from None
        with fsio.open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"allowlist {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
        allowlist = parse_allowlist(text, case_sensitive, name=path)
        if not len(allowlist):
            raise ValueError(f"allowlist {path} holds no queries")
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
        codes.append(code)
        lists.append(allowlist)
        offsets.append(next_id)
        next_id += len(allowlist)
    return FolderAllowlist(tuple(codes), tuple(lists), tuple(offsets), digest.hexdigest())


class FolderMatcher:
    """Per-language matchers over a folder: a text is matched only against its language's list.

    Built once per worker process (like QueryMatcher, it refuses to be pickled)."""

    def __init__(self, folder: FolderAllowlist, case_sensitive: bool = False, keep: Iterable[str] | None = None) -> None:
        from wit_pipeline.text.matcher import QueryMatcher

        keep = None if keep is None else set(keep)
        self.size = len(folder)
        self._matchers: dict[str, tuple[QueryMatcher, np.ndarray]] = {}
        for language, files in folder.by_language().items():
            if keep is not None and language not in keep:
                continue
            queries = [q for i in files for q in folder.lists[i].queries]
            ids = np.concatenate([np.arange(folder.offsets[i], folder.offsets[i] + len(folder.lists[i])) for i in files])
            self._matchers[language] = (QueryMatcher.from_queries(queries, case_sensitive), ids)

    @classmethod
    def from_folder(cls, url: str, case_sensitive: bool = False, keep: Iterable[str] | None = None) -> "FolderMatcher":
        return cls(load_folder(url, case_sensitive), case_sensitive, keep)

    def __len__(self) -> int:
        return self.size

    def __reduce__(self):
        raise TypeError("FolderMatcher is not picklable: build it per worker process (DoFn.setup, beam Shared)")

    def has_list(self, lid_label: str) -> bool:
        """Whether texts LID labels `lid_label` have a list to be matched against."""
        return lid_to_wiki(lid_label) in self._matchers

    def match_many(self, texts: Sequence[str], lid_labels: Sequence[str]) -> list[list[int] | None]:
        """Global query ids of each text, matched against its LID language's list (sorted); None
        for a text whose language has no list. Texts are matched one language batch at a time."""
        out: list[list[int] | None] = [None] * len(texts)
        groups: dict[str, list[int]] = {}
        for i, label in enumerate(lid_labels):
            language = lid_to_wiki(label)
            if language in self._matchers:
                groups.setdefault(language, []).append(i)
        for language, rows in groups.items():
            matcher, ids = self._matchers[language]
            for i, local in zip(rows, matcher.match_many([texts[i] for i in rows])):
                out[i] = ids[local].tolist()  # ids increase with local ids: still sorted
        return out
