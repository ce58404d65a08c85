"""A tiny random BLIP captioner (``BlipForConditionalGeneration``), for tests and offline use of ``describe.model``.

BLIP's real architecture (a ViT image encoder, a BERT text decoder cross-attending to it) at a toy size, saved with
its processor (BLIP's image processor and a BERT tokenizer) the way ``Salesforce/blip-image-captioning-large`` is,
so ``AutoProcessor`` and ``AutoModelForImageTextToText`` load it like a real one. Its vocabulary is a few hundred
everyday words, so its captions are random words rather than random bytes: noise, like the tiny pipelines' images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny.tokenizers import bert_word_tokenizer

IMAGE_SIZE = 32
LAST_FILE = "processor_config.json"
"""Written last: a directory holding it is complete (``models.tiny.model_location`` builds it once)."""
WORDS = " ".join((
    "a an the of on in with and at by near under over two three",
    "dog cat bird horse fox owl deer fish dragon robot knight woman man child girl boy",
    "tree house castle car boat ship train river lake sea mountain forest city street beach sky",
    "sunset moon stars garden field flowers clouds snow rain bridge window table chair road tower",
    "red blue green yellow white black golden silver orange purple pink",
    "old small large tiny giant sitting standing running flying sleeping walking",
    "painting photo drawing sculpture portrait landscape view",
)).split(" ")


def write(directory: Path, seed: int) -> Path:
    """Save the tiny captioner and its processor in ``directory`` (a model directory, like a Hub snapshot)."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tokenizer = bert_word_tokenizer(list(WORDS))
    vocab = tokenizer.get_vocab()
    config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, encoder_hidden_size=32, intermediate_size=37, projection_dim=32,
            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
            bos_token_id=vocab["[DEC]"], pad_token_id=vocab["[PAD]"], sep_token_id=vocab["[SEP]"],
            eos_token_id=vocab["[SEP]"],
        ),
        vision_config=dict(hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2,
                           num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=32,
        image_text_hidden_size=32,
    )
    torch.manual_seed(seed)
    BlipForConditionalGeneration(config).save_pretrained(directory)
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    BlipProcessor(image_processor, tokenizer).save_pretrained(directory)
    return directory
