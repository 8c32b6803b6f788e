"""Text to ids and back: tokenizers by name, a vocabulary, and the `TextEncoder` that joins them.

from rnnkit.text import TextEncoder
enc = TextEncoder.build(train_texts, tokenizer="basic_english", min_freq=2)
ids = enc.encode_batch(texts, max_length=256)          # list[list[int]]
enc.save("run/text_encoder.json"); enc = TextEncoder.load("run/text_encoder.json")
"""

from rnnkit.text.encoder import RaggedIds, TextEncoder
from rnnkit.text.tokenizers import (
    TOKENIZERS,
    BasicEnglishTokenizer,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    get_tokenizer,
    tokenizer_from_dict,
)
from rnnkit.text.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocab

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "SPECIALS",
    "TOKENIZERS",
    "UNK_ID",
    "BPETokenizer",
    "BasicEnglishTokenizer",
    "CharTokenizer",
    "RaggedIds",
    "TextEncoder",
    "Tokenizer",
    "Vocab",
    "get_tokenizer",
    "tokenizer_from_dict",
]
