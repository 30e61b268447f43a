"""Offline text tokenizers: a byte-level BPE trained on the captions, or plain bytes.

Both are Hugging Face `tokenizers` objects, so one JSON string describes either; it is saved
in every checkpoint and recorded by its SHA-256, so a model is never read with the wrong
vocabulary. Normalisation follows CLIP's: NFKC, lower case, whitespace runs collapsed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as _HFTokenizer

PAD, SOT, EOT = "<pad>", "<start_of_text>", "<end_of_text>"
SPECIALS = [PAD, SOT, EOT]  # ids 0, 1, 2: padding is id 0, as the model and loader expect


class Tokenizer:
    """Wraps a HF tokenizer with CLIP's framing: [SOT, tokens..., EOT, 0, 0, ...]."""

    def __init__(self, hf: _HFTokenizer) -> None:
        self._hf = hf
        hf.encode_special_tokens = True  # a caption that says "<end_of_text>" is text, not a marker
        ids = [hf.token_to_id(t) for t in SPECIALS]
        if ids != [0, 1, 2]:
            raise ValueError(f"tokenizer special tokens {SPECIALS} must have ids 0, 1, 2; got {ids}")
        self.pad_id, self.sot_id, self.eot_id = ids
        self.vocab_size: int = hf.get_vocab_size()
        self._json = hf.to_str()
        self.sha256: str = hashlib.sha256(self._json.encode("utf-8")).hexdigest()

    def encode(self, texts: list[str], context_length: int) -> torch.LongTensor:
        """[B, context_length] ids; long captions are truncated but always end with EOT."""
        if context_length < 2:
            raise ValueError("context_length must leave room for SOT and EOT")
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings")
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for i, enc in enumerate(self._hf.encode_batch(list(texts), add_special_tokens=False)):
            ids = [self.sot_id, *enc.ids[: context_length - 2], self.eot_id]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out  # type: ignore[return-value]

    def decode(self, ids: Iterable[int]) -> str:
        return self._hf.decode([int(i) for i in ids], skip_special_tokens=True)

    def to_json(self) -> str:
        return self._json

    def __reduce__(self):  # pickled (DataLoader workers under spawn) as its JSON, keeping our settings
        return (Tokenizer.from_json, (self._json,))

    @classmethod
    def from_json(cls, s: str) -> "Tokenizer":
        return cls(_HFTokenizer.from_str(s))


def _pipeline(model: models.Model) -> _HFTokenizer:
    hf = _HFTokenizer(model)
    hf.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf


# BPE training is super-linear in the length of one pre-token (a 0.4M-character word: minutes),
# so each text is cut to this many characters first: curate's caption cap, and far more than
# the 77 tokens CLIP reads. The fit then costs at most a fixed amount per caption.
MAX_FIT_CHARS = 1000


def train_bpe(texts: Iterable[str], vocab_size: int, max_chars: int = MAX_FIT_CHARS) -> Tokenizer:
    """A byte-level BPE learnt from `texts`, each cut to `max_chars` characters (deterministic
    for the same texts in the same order)."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIALS):
        raise ValueError(f"vocab_size must be at least {len(alphabet) + len(SPECIALS)}")
    hf = _pipeline(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=alphabet, show_progress=False
    )
    hf.train_from_iterator((text[:max_chars] for text in texts), trainer=trainer)
    return Tokenizer(hf)


def byte_tokenizer() -> Tokenizer:
    """Every UTF-8 byte is a token (256 + 3 specials): needs no training data."""
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    hf = _pipeline(models.BPE(vocab=vocab, merges=[]))
    hf.add_special_tokens(SPECIALS)  # already in the vocabulary: keeps ids 0..2, marks them special
    return Tokenizer(hf)
