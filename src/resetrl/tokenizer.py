"""A character-level tokenizer built locally (no hub download) as a PreTrainedTokenizerFast.

Every printable ASCII character and the newline is one token; the thought delimiter is one
special token, so a thought boundary is a single position and a reset cuts exactly there.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

from resetrl.task import THOUGHT_END

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, THOUGHT_END]
CHARACTERS = sorted(set(string.printable) - set("\t\r\x0b\x0c"))


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One id per special token, then one per character; no merges, so text splits into chars."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()  # join characters back without separators
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=[THOUGHT_END],
        padding_side="left",  # generation appends on the right of a left-padded batch
        model_max_length=4096,
    )
    return tokenizer


def thought_end_id(tokenizer) -> int:
    """Id of the thought delimiter; it must be a single token for thought spans to be exact."""
    ids = tokenizer.encode(THOUGHT_END, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"tokenizer splits {THOUGHT_END!r} into {len(ids)} tokens; it must be one")
    return ids[0]
