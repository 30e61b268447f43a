"""Language ID across letter case: recall of English captions as written, in Title Case and
in UPPER CASE, and foreign captions kept as English, before (the model shown the text as it
is) and after (`case_folded`), with the CPU cost per text of each.

    python bench/lid.py [--repeat 20]

Kept as English = label `en` with score >= the harvest default (0.3). Captions:
bench/lid_captions.py. Last line: `ratio: <cost per text after / before>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lid_captions import ENGLISH, FOREIGN  # noqa: E402
from wit_pipeline.stages.harvest.config import HarvestConfig  # noqa: E402
from wit_pipeline.text.langid import LanguageIdentifier, _clean, case_folded  # noqa: E402

FORMS = {
    "as written": lambda t: t,
    "Title Case": lambda t: " ".join(w[:1].upper() + w[1:] for w in t.split()),
    "UPPER CASE": str.upper,
}


def recall(predict, texts: list[str], threshold: float) -> float:
    kept = 0
    for text in texts:
        label, score = predict(text)
        kept += label == "en" and score >= threshold
    return kept / len(texts)


def table(lid: LanguageIdentifier, threshold: float) -> dict[str, dict[str, tuple[float, float]]]:
    """{method: {form: (English kept, foreign kept as English)}}."""
    model = lid._model

    def before(text: str) -> tuple[str, float]:
        labels, probs = model.predict(_clean(text), k=1)
        return labels[0][9:], min(1.0, float(probs[0]))

    return {name: {form: (recall(p, [f(t) for t in ENGLISH], threshold), recall(p, [f(t) for t in FOREIGN], threshold))
                   for form, f in FORMS.items()}
            for name, p in (("before", before), ("after", lid.predict))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    lid = LanguageIdentifier()
    threshold = HarvestConfig().min_lang_score
    print(f"{len(ENGLISH)} English and {len(FOREIGN)} foreign captions; kept = en with score >= {threshold}")
    for name, forms in table(lid, threshold).items():
        print(f"{name:7s}", " | ".join(f"{form}: English {en:.3f}, foreign {fo:.3f}" for form, (en, fo) in forms.items()))
    texts = [f(t) for f in FORMS.values() for t in ENGLISH + FOREIGN]
    model = lid._model
    costs = {}
    for name, fn in (("before", lambda t: model.predict(_clean(t), k=1)), ("after", lid.predict)):
        t0 = time.process_time()
        for _ in range(args.repeat):
            for t in texts:
                fn(t)
        costs[name] = (time.process_time() - t0) / (args.repeat * len(texts))
        print(f"{name:7s} {costs[name] * 1e6:.1f} us CPU per text")
    assert case_folded("ABC") == "abc"
    print(f"ratio: {costs['after'] / costs['before']:.2f}")


if __name__ == "__main__":
    main()
