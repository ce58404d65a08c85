"""A tiny random prompt classifier (``BertForSequenceClassification``), for tests and ``safety.prompt_model: tiny``.

A BERT text classifier with the labels ``safe`` and ``nsfw`` over a few hundred everyday words (the tiny captioner's),
saved with its tokenizer so ``AutoTokenizer`` and ``AutoModelForSequenceClassification`` load it like a real one.
Its scores are random but strictly between 0 and 1.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny.blip import WORDS
from models.tiny.tokenizers import bert_word_tokenizer

LABELS = ("safe", "nsfw")
LAST_FILE = "tokenizer.json"
"""Written last: a directory holding it is complete (``models.tiny.model_location`` builds it once)."""


def write(directory: Path, seed: int) -> Path:
    """Save the tiny classifier and its tokenizer in ``directory`` (a model directory, like a Hub snapshot)."""
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = bert_word_tokenizer(list(WORDS))
    config = BertConfig(vocab_size=len(tokenizer.get_vocab()), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
                        id2label=dict(enumerate(LABELS)), label2id={label: index for index, label in enumerate(LABELS)})
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
