"""A character-level tokenizer built locally (no hub download) as a PreTrainedTokenizerFast.

Every printable ASCII character and the newline is one token; the thought delimiter is one
added token, so a thought boundary is a single position and a reset cuts exactly there. It is not
a *special* token: default decoding (`skip_special_tokens=True`, vLLM's OpenAI server) keeps it.
`ThoughtDelimiter` also finds thought ends for hub tokenizers, which split the delimiter.
"""

from __future__ import annotations

import string

from tokenizers import AddedToken, Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

from resetrl.core.response_format import THOUGHT_END

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]
CHARACTERS = sorted(set(string.printable) - set("\t\r\x0b\x0c"))


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One id per special token, then one per character; no merges, so text splits into chars."""
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, THOUGHT_END, *CHARACTERS])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()  # join characters back without separators
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",  # generation appends on the right of a left-padded batch
        model_max_length=4096,
    )
    tokenizer.add_tokens([AddedToken(THOUGHT_END, special=False, normalized=False)])  # keeps its vocab id
    return tokenizer


def target_ids(tokenizer, text: str) -> list[int]:
    """A training target: the text's tokens, then EOS, so a model trained on it stops where the
    project stops (a served checkpoint has no other stop rule)."""
    return tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]


class ThoughtDelimiter:
    """Where thoughts end in token ids. The char tokenizer keeps the delimiter as one token (an id
    comparison); a hub tokenizer splits it into several tokens whose boundaries depend on the
    context, so there a thought ends at the token whose decoding completes the delimiter. Only
    tokens holding the delimiter's last character (``closers``) can do that, so the text check is rare."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        ids = tokenizer.encode(THOUGHT_END, add_special_tokens=False)
        self.single_id: int | None = ids[0] if len(ids) == 1 else None
        if self.single_id is not None:
            self.closers = {self.single_id}
        else:
            last = THOUGHT_END[-1]
            self.closers = {i for i in range(len(tokenizer)) if last in tokenizer.decode([i])}

    def completes(self, ids: list[int]) -> bool:
        """Whether the last of `ids` (the tokens of the open thought) completes a delimiter."""
        if not ids or ids[-1] not in self.closers:
            return False
        if self.single_id is not None:
            return True
        tail = ids[-len(THOUGHT_END):]  # every token decodes to at least one character
        text, before = self.tokenizer.decode(tail), self.tokenizer.decode(tail[:-1])
        at = text.rfind(THOUGHT_END)
        return at >= 0 and at + len(THOUGHT_END) > len(before)

    def ends(self, ids: list[int]) -> list[int]:
        """Index past each thought's last token: thought i spans ends[i-2]:ends[i-1]."""
        out, start = [], 0
        for i, token in enumerate(ids):
            if token in self.closers and self.completes(ids[start:i + 1]):
                out.append(i + 1)
                start = i + 1
        return out
