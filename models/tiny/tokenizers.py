"""Tokenizers for the tiny models, built offline: a byte-level CLIP BPE and a T5 unigram over printable ASCII.

Real models ship their tokenizers; the tiny ones must not download any, so these are made from scratch with the
same classes (and file formats) the real ones load with.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins GPT-2 and CLIP use for raw bytes, in their canonical order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(code) for code in printable] + [chr(256 + index) for index in range(len(others))]


def byte_clip_tokenizer(model_max_length: int = 77):
    """A byte-level CLIP tokenizer whose vocabulary is the 256 byte symbols (and their end-of-word forms)."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    vocab.update({symbol + "</w>": len(symbols) + index for index, symbol in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "vocab.json"
        merges_file = Path(scratch) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        merges_file.write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=model_max_length)


def t5_tokenizer(model_max_length: int = 77):
    """A T5 tokenizer (SentencePiece-style unigram) whose pieces are the printable ASCII characters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    symbols = [chr(code) for code in range(32, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    vocab += [(symbol, -2.0) for symbol in symbols] + [("\u2581" + symbol, -1.5) for symbol in symbols]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0, model_max_length=model_max_length)


def bert_word_tokenizer(words: list[str], model_max_length: int = 40):
    """A BERT WordPiece tokenizer over a small list of whole ``words`` (BLIP's tokenizer class, with ``[DEC]``, the
    token BLIP's decoder starts a caption with, as its bos token): a random captioner then writes random words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = {token: index for index, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words,
                                                         "[DEC]"])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", bos_token="[DEC]",
                             model_max_length=model_max_length)


QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
"""Qwen3's chat layout (the part FLUX.2 [klein]'s prompt encoding uses: user turns, the assistant's cue, and the
empty thinking block ``enable_thinking=False`` asks for)."""


def qwen_tokenizer(special: tuple[str, ...] = ("<|im_start|>", "<|im_end|>"), chat_template: str | None = None):
    """A byte-level Qwen2 BPE tokenizer whose vocabulary is the 256 byte symbols, plus ``<|endoftext|>`` and the
    ``special`` tokens (chat markers, vision placeholders) as single tokens; no merges, so every byte is a token."""
    from transformers import Qwen2Tokenizer

    vocab = {symbol: index for index, symbol in enumerate(_byte_symbols())}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special)})
    tokenizer.add_special_tokens({"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def gemma_tokenizer(model_max_length: int = 8192):
    """A Gemma tokenizer (Sana's and Lumina 2's text encoder is a Gemma 2) whose pieces are the printable ASCII
    characters: ``<bos>`` before every text as Gemma's own, and padding on the right."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import GemmaTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {token: index for index, token in enumerate([*specials, "\u2581", *(chr(code) for code in range(32, 127))])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", vocab["<bos>"])])
    return GemmaTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                              unk_token="<unk>", padding_side="right", model_max_length=model_max_length)


def llama3_tokenizer(model_max_length: int = 128):
    """A Llama 3 style tokenizer (``PreTrainedTokenizerFast``, the class Meta's repositories load as) whose pieces are
    the printable ASCII characters, with ``<|begin_of_text|>`` before every text and ``<|eot_id|>`` as its end."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<|begin_of_text|>", "<|eot_id|>", "<|unk|>"]
    vocab = {token: index for index, token in enumerate([*specials, *(chr(code) for code in range(32, 127))])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<|unk|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", vocab["<|begin_of_text|>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   unk_token="<|unk|>", model_max_length=model_max_length)
