"""Tiny random models built from a config, saved as real checkpoints, for fast tests.

No small decoder-only language model is available offline, and real encoders
are slow on a shared CPU, so the code paths of both architecture families are
tested on models with a few layers, a hidden size of 32 and a byte-level BPE
vocabulary of a few hundred tokens. The checkpoints are ordinary transformers
directories (safetensors weights, config.json, tokenizer.json), loadable with
:func:`xcal.models.load_model_and_tokenizer` like any other model. Building
one is deterministic: the same ``kind``, ``head`` and ``seed`` give identical
weights and tokenizer.

Their predictions are meaningless (the weights are random); use them to test
plumbing, shapes, batching and determinism, never accuracy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from xcal.models.construct import one_at_a_time

TinyKind = Literal["bert", "gpt2", "llama"]
TINY_KINDS: tuple[str, ...] = ("bert", "gpt2", "llama")
TinyHead = Literal["classification", "qa"]

# A fixed multilingual corpus: the BPE merges learnt from it make English and a
# few other scripts a bit shorter than one token per byte; any text is encodable.
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street while people walk by.",
    "The cat sat on the mat and looked out of the window.",
    "Is the answer to the question in the context of the paragraph?",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "敏捷的棕色狐狸跳过了懒狗。",
    "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "Mbweha mwepesi wa kahawia anaruka juu ya mbwa mvivu.",
]


def _byte_bpe(vocab_size: int, specials: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tok


def _config(kind: str, vocab_size: int, max_positions: int, num_labels: int) -> Any:
    import transformers

    common: dict[str, Any] = {"vocab_size": vocab_size}
    if num_labels:  # only for a saved classification head; else transformers' default
        common["id2label"] = {i: f"LABEL_{i}" for i in range(num_labels)}
        common["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
        common["num_labels"] = num_labels
    if kind == "bert":
        return transformers.BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=max_positions,
            pad_token_id=0,
            **common,
        )
    if kind == "gpt2":
        return transformers.GPT2Config(
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_inner=64,
            n_positions=max_positions,
            bos_token_id=0,
            eos_token_id=0,
            **common,
        )
    return transformers.LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=True,
        **common,
    )


def make_tiny_model(
    directory: str | os.PathLike[str],
    kind: TinyKind = "bert",
    *,
    head: TinyHead | None = None,
    num_labels: int = 3,
    seed: int = 0,
    vocab_size: int = 400,
    max_positions: int = 512,
) -> Path:
    """Build and save a tiny random model with its tokenizer.

    Parameters
    ----------
    directory : path-like
        Where to save it (created; must not exist or be empty). Written in a
        temporary sibling and renamed into place.
    kind : {"bert", "gpt2", "llama"}, default "bert"
        An encoder (BERT, ``[CLS] a [SEP] b [SEP]`` inputs) or a decoder-only
        model (GPT-2, or Llama with rotary positions and grouped-query attention).
    head : {"classification", "qa"}, optional
        Save a model with this head (its weights are part of the checkpoint,
        as for a fine-tuned model) instead of the base model (encoders) or
        causal LM (decoders), whose heads start random when loaded.
    num_labels : int, default 3
        Labels of the classification head (recorded in ``id2label``).
    seed : int, default 0
        Seeds the random weights.
    vocab_size, max_positions : int
        Size of the byte-level BPE vocabulary and the longest input.

    Returns
    -------
    pathlib.Path
        The checkpoint directory.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = make_tiny_model(Path(tmp) / "tiny-gpt2", "gpt2")
    ...     sorted(p.name for p in path.iterdir())
    ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
    """
    if kind not in TINY_KINDS:
        raise ValueError(f"Expected `kind` in {TINY_KINDS}, got {kind!r}")
    if head not in (None, "classification", "qa"):
        raise ValueError(f"Expected `head` to be None, 'classification' or 'qa', got {head!r}")
    if head == "qa" and kind != "bert":
        raise ValueError("a QA head is only built for the encoder (kind='bert')")
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty")

    import torch
    import transformers
    from tokenizers import processors

    if kind == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = _byte_bpe(vocab_size, specials)
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=True),
                processors.TemplateProcessing(
                    single="[CLS] $A [SEP]",
                    pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                    special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
                ),
            ]
        )
        token_names = {
            "pad_token": "[PAD]",
            "unk_token": "[UNK]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
        }
    elif kind == "gpt2":
        tok = _byte_bpe(vocab_size, ["<|endoftext|>"])
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
        # No pad token, as in real GPT-2: the loader must cope.
        token_names = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    else:
        tok = _byte_bpe(vocab_size, ["<pad>", "<s>", "</s>", "<unk>"])
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=True),
                processors.TemplateProcessing(
                    single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)]
                ),
            ]
        )
        token_names = {
            "pad_token": "<pad>",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
        }
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=max_positions, **token_names
    )

    config = _config(
        kind, tok.get_vocab_size(), max_positions, num_labels if head == "classification" else 0
    )
    if head == "classification":
        auto_class: Any = transformers.AutoModelForSequenceClassification
    elif head == "qa":
        auto_class = transformers.AutoModelForQuestionAnswering
    elif kind == "bert":
        auto_class = transformers.AutoModel
    else:
        auto_class = transformers.AutoModelForCausalLM
    with one_at_a_time(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = auto_class.from_config(config)
    output = model.get_output_embeddings()
    if getattr(config, "tie_word_embeddings", False) and output is not None:
        # Tied by hand as well: a checkpoint whose config says "tied" but that holds
        # its own output layer is read untied by transformers and tied by lm-eval,
        # so one left untied (see xcal.models.construct) would score two models.
        output.weight = model.get_input_embeddings().weight
    model.eval()

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
