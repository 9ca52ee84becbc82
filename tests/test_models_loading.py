"""Loading checkpoints: Auto classes per task kind, architecture families, devices,
revisions, determinism of fresh heads, and safety (no pickles, no remote code).

All on tiny random checkpoints built from a config (xcal.models.tiny).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xcal.models import (
    ModelLoadError,
    RemoteCodeError,
    architecture_family,
    choose_device,
    load_model_and_tokenizer,
    resolve_dtype,
    weights_sha256,
)
from xcal.models.tiny import make_tiny_model


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        "bert": make_tiny_model(root / "bert", "bert"),
        "gpt2": make_tiny_model(root / "gpt2", "gpt2"),
        "llama": make_tiny_model(root / "llama", "llama"),
        "bert-clf2": make_tiny_model(
            root / "bert-clf2", "bert", head="classification", num_labels=2
        ),
    }


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------- task kinds, families


@pytest.mark.parametrize(
    ("kind", "task_kind", "cls_name"),
    [
        ("bert", "classification", "BertForSequenceClassification"),
        ("bert", "qa", "BertForQuestionAnswering"),
        ("bert", "multiple_choice", "BertForMultipleChoice"),
        ("bert", "retrieval", "BertModel"),
        ("gpt2", "classification", "GPT2ForSequenceClassification"),
        ("gpt2", "causal_lm", "GPT2LMHeadModel"),
        ("llama", "classification", "LlamaForSequenceClassification"),
        ("llama", "causal_lm", "LlamaForCausalLM"),
    ],
)
def test_task_kinds_pick_the_auto_class(tiny, kind, task_kind, cls_name) -> None:
    import torch

    num_labels = 3 if task_kind == "classification" else None
    loaded = load_model_and_tokenizer(
        tiny[kind], task_kind=task_kind, num_labels=num_labels, device="cpu"
    )
    assert type(loaded.model).__name__ == cls_name
    assert loaded.architecture == ("encoder-only" if kind == "bert" else "decoder-only")
    assert loaded.device == "cpu"
    assert loaded.dtype == "float32" and loaded.weights_format == "safetensors"
    assert not loaded.model.training
    assert loaded.max_length == 512
    model, tokenizer = loaded  # unpacks like a pair
    enc = tokenizer(
        ["a short one", "a somewhat longer second input"], padding=True, return_tensors="pt"
    )
    if task_kind == "multiple_choice":
        enc = {k: v.unsqueeze(0) for k, v in enc.items()}
    with torch.inference_mode():
        out = model(**enc)
    if task_kind == "classification":
        assert out.logits.shape == (2, 3) and loaded.num_labels == 3
        assert (
            "classifier.weight" in loaded.new_parameters or "score.weight" in loaded.new_parameters
        )
    if task_kind in ("retrieval", "causal_lm"):
        assert loaded.new_parameters == ()


def test_threads_loading_at_once_leave_weight_tying_on(tiny) -> None:
    """Concurrent loads (sharded runs in threads) must not leave tying disabled.

    transformers swaps ``PreTrainedModel.tie_weights`` for a no-op while it
    loads; unserialised, two threads can restore each other's no-op, and every
    later tied decoder then keeps an empty output layer.
    """
    import threading

    from transformers.modeling_utils import PreTrainedModel

    original = PreTrainedModel.__dict__["tie_weights"]
    errors: list[BaseException] = []
    loaded: list[object] = []

    def load() -> None:
        try:
            for _ in range(4):
                loaded.append(
                    load_model_and_tokenizer(tiny["gpt2"], task_kind="causal_lm", device="cpu")
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        left = PreTrainedModel.__dict__["tie_weights"]
    finally:
        PreTrainedModel.tie_weights = original  # type: ignore[method-assign]  # keep later tests safe
    assert not errors
    assert left is original
    for item in loaded:
        model = item.model  # type: ignore[attr-defined]
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_decoder_classification_uses_last_real_token_under_padding(tiny, kind) -> None:
    """A padded batch gives each text the logits it gets alone (pad token set by the loader)."""
    import torch

    loaded = load_model_and_tokenizer(
        tiny[kind], task_kind="classification", num_labels=3, device="cpu"
    )
    tok = loaded.tokenizer
    assert tok.pad_token is not None and loaded.model.config.pad_token_id == tok.pad_token_id
    texts = ["short", "a much longer input that needs no padding at all"]
    with torch.inference_mode():
        batch = loaded.model(**tok(texts, padding=True, return_tensors="pt")).logits
        alone = [loaded.model(**tok([t], return_tensors="pt")).logits[0] for t in texts]
    torch.testing.assert_close(batch, torch.stack(alone), atol=1e-5, rtol=1e-5)


def test_architecture_family_from_configs() -> None:
    import transformers as tf

    assert architecture_family(tf.BertConfig()) == "encoder-only"
    assert architecture_family(tf.XLMRobertaConfig()) == "encoder-only"
    assert architecture_family(tf.GPT2Config()) == "decoder-only"
    assert architecture_family(tf.LlamaConfig()) == "decoder-only"
    assert architecture_family(tf.T5Config()) == "encoder-decoder"
    assert architecture_family(tf.BartConfig()) == "encoder-decoder"
    assert architecture_family(tf.BertConfig(is_decoder=True)) == "decoder-only"
    # The saved architectures decide for types transformers knows both ways.
    assert architecture_family(tf.BertConfig(architectures=["BertForMaskedLM"])) == "encoder-only"


def test_multiple_choice_on_a_decoder_points_to_causal_lm(tiny) -> None:
    with pytest.raises(ModelLoadError, match=r"no AutoModelForMultipleChoice head.*causal_lm"):
        load_model_and_tokenizer(tiny["llama"], task_kind="multiple_choice")


# ------------------------------------------------------------------------ labels, seeds


def test_label_count_mismatch_with_a_trained_head_is_refused(tiny) -> None:
    with pytest.raises(ModelLoadError, match=r"head has 2 labels .* but the task has 3"):
        load_model_and_tokenizer(tiny["bert-clf2"], task_kind="classification", num_labels=3)
    ok = load_model_and_tokenizer(tiny["bert-clf2"], task_kind="classification", num_labels=2)
    assert ok.new_parameters == ()  # the head was in the checkpoint


@pytest.mark.parametrize("bad", [None, 1, 2.0, True])
def test_classification_needs_num_labels(tiny, bad) -> None:
    with pytest.raises(ModelLoadError, match="num_labels >= 2"):
        load_model_and_tokenizer(tiny["bert"], task_kind="classification", num_labels=bad)


def test_fresh_heads_are_seeded_and_leave_the_global_rng_alone(tiny) -> None:
    import torch

    def head(seed: int) -> torch.Tensor:
        loaded = load_model_and_tokenizer(
            tiny["bert"], task_kind="classification", num_labels=3, seed=seed, device="cpu"
        )
        return loaded.model.classifier.weight.detach().clone()

    torch.manual_seed(123)
    expected_next = torch.rand(4)
    torch.manual_seed(123)
    a = head(0)
    assert torch.equal(torch.rand(4), expected_next)  # fork_rng restored the caller's RNG
    assert torch.equal(a, head(0))
    assert not torch.equal(a, head(1))


# ---------------------------------------------------------------- devices, dtypes, hashes


def test_default_device_is_the_auto_choice(tiny) -> None:
    loaded = load_model_and_tokenizer(tiny["bert"], task_kind="retrieval")
    assert loaded.device == choose_device("auto")
    assert {p.device.type for p in loaded.model.parameters()} == {
        __import__("torch").device(loaded.device).type
    }


def test_choose_device() -> None:
    import torch

    assert choose_device("cpu") == "cpu"
    auto = choose_device("auto")
    if torch.cuda.is_available():
        assert auto == "cuda"
    elif torch.backends.mps.is_available():
        assert auto == "mps"
    else:
        assert auto == "cpu"
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            choose_device("cuda:0")
    with pytest.raises(ModelLoadError, match="unknown device 'gpu7'"):
        choose_device("gpu7")


def test_dtypes(tiny) -> None:
    import torch

    assert [resolve_dtype(x) for x in ("auto", None, "fp32", "bf16", "fp16", torch.bfloat16)] == [
        "float32",
        "float32",
        "float32",
        "bfloat16",
        "float16",
        "bfloat16",
    ]
    with pytest.raises(ModelLoadError, match="unknown dtype 'int4'"):
        resolve_dtype("int4")
    loaded = load_model_and_tokenizer(
        tiny["bert"], task_kind="retrieval", dtype="bf16", device="cpu"
    )
    assert loaded.dtype == "bfloat16"
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}


def test_weight_hash_follows_content_not_location(tiny, tmp_path: Path) -> None:
    copy = _copy(tiny["bert"], tmp_path / "copy")
    assert weights_sha256(copy) == weights_sha256(tiny["bert"])
    assert weights_sha256(copy).startswith("sha256:")
    assert weights_sha256(tiny["gpt2"]) != weights_sha256(tiny["bert"])
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last weight
    weights.write_bytes(bytes(data))
    assert weights_sha256(copy) != weights_sha256(tiny["bert"])
    loaded = load_model_and_tokenizer(tiny["bert"], task_kind="retrieval")
    assert loaded.model_revision == weights_sha256(tiny["bert"])


# ---------------------------------------------------------------------------- bad input


def test_bad_paths_and_kinds(tiny, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is not a checkpoint directory"):
        load_model_and_tokenizer(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_model_and_tokenizer(tmp_path / "empty")
    no_weights = _copy(tiny["bert"], tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"no model weights .* found: config\.json"):
        load_model_and_tokenizer(no_weights)
    broken = _copy(tiny["bert"], tmp_path / "broken-config")
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json: cannot read JSON"):
        load_model_and_tokenizer(broken)
    with pytest.raises(ModelLoadError, match="unknown task_kind 'ner'"):
        load_model_and_tokenizer(tiny["bert"], task_kind="ner")  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError, match="unknown bundled model"):
        load_model_and_tokenizer("bundled:no-such-model")


def _truncate_weights(p: Path) -> None:
    data = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(data[: len(data) // 2])


def _edit_config(**changes):
    def edit(p: Path) -> None:
        config = json.loads((p / "config.json").read_text())
        config.update(changes)
        (p / "config.json").write_text(json.dumps(config))

    return edit


def _remove_tokenizer(p: Path) -> None:
    (p / "tokenizer.json").unlink()
    (p / "tokenizer_config.json").unlink()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_truncate_weights, r"cannot load weights: SafetensorError"),
        (
            lambda p: (p / "model.safetensors").write_bytes(b"\0" * 100),
            r"cannot load weights: SafetensorError",
        ),
        (
            lambda p: (p / "tokenizer.json").write_text("{broken"),
            r"cannot load its tokenizer: JSONDecodeError",
        ),
        (_edit_config(hidden_size="big"), r"cannot read its config: .*hidden_size"),
        (
            _edit_config(hidden_size=64),
            r"cannot load weights: (?s:.*)embeddings.word_embeddings.weight +\| MISMATCH",
        ),
        (_edit_config(model_type="no-such-arch"), r"cannot read its config: .*no-such-arch"),
        (
            lambda p: (p / "config.json").write_text("[1, 2]"),
            r"config\.json: expected a JSON object, got list",
        ),
        (
            lambda p: (p / "config.json").write_bytes(b'{"model_type": "bert\xe9"}'),
            r"config\.json: cannot read JSON",
        ),
        (_remove_tokenizer, r"tokenizer has no vocabulary beyond special tokens"),
    ],
    ids=[
        "truncated",
        "garbage",
        "tokenizer-json",
        "field-type",
        "shape",
        "model-type",
        "not-object",
        "encoding",
        "no-tokenizer",
    ],
)
def test_broken_checkpoints_give_a_model_load_error(tiny, tmp_path: Path, mutate, message) -> None:
    ckpt = _copy(tiny["bert"], tmp_path / "broken")
    mutate(ckpt)
    with pytest.raises(ModelLoadError, match=message) as info:
        load_model_and_tokenizer(ckpt, task_kind="retrieval")
    assert str(ckpt) in str(info.value)


def test_hub_id_offline_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="cannot find model 'xcal-test/no-such-model'"):
        load_model_and_tokenizer("xcal-test/no-such-model")


# ------------------------------------------------------------------------------- safety


class _Payload:
    """Unpickling this writes a file: stands in for any code a pickle could run."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.write_text, (self.sentinel, "code ran"))


def _malicious_bin(path: Path, sentinel: Path) -> None:
    import torch

    torch.save({"embeddings.word_embeddings.weight": _Payload(sentinel)}, path)


def test_malicious_pickle_weights_are_never_unpickled(tiny, tmp_path: Path) -> None:
    import torch

    sentinel = tmp_path / "pwned"
    ckpt = _copy(tiny["bert"], tmp_path / "pickled")
    (ckpt / "model.safetensors").unlink()
    _malicious_bin(ckpt / "pytorch_model.bin", sentinel)
    # The payload is real: an unsafe load runs it.
    torch.load(ckpt / "pytorch_model.bin", weights_only=False)
    assert sentinel.read_text() == "code ran"
    sentinel.unlink()

    with pytest.raises(ModelLoadError, match="cannot load weights"):
        load_model_and_tokenizer(ckpt, task_kind="retrieval")
    assert not sentinel.exists()


def test_plain_pickle_weights_load_with_weights_only(tiny, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    ckpt = _copy(tiny["bert"], tmp_path / "pickled-ok")
    state = load_file(ckpt / "model.safetensors")
    (ckpt / "model.safetensors").unlink()
    torch.save(state, ckpt / "pytorch_model.bin")
    loaded = load_model_and_tokenizer(ckpt, task_kind="retrieval", device="cpu")
    assert loaded.weights_format == "pickle (weights_only)"
    torch.testing.assert_close(
        loaded.model.embeddings.word_embeddings.weight, state["embeddings.word_embeddings.weight"]
    )


def test_safetensors_win_over_a_pickle_beside_them(tiny, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    ckpt = _copy(tiny["bert"], tmp_path / "both")
    _malicious_bin(ckpt / "pytorch_model.bin", sentinel)
    loaded = load_model_and_tokenizer(ckpt, task_kind="retrieval")
    assert loaded.weights_format == "safetensors"
    assert not sentinel.exists()


_EVIL_MODULE = """
from pathlib import Path
Path({sentinel!r}).write_text("remote code ran")
from transformers import BertConfig, BertModel
class EvilConfig(BertConfig):
    model_type = "bert"
class EvilModel(BertModel):
    config_class = EvilConfig
"""


def _remote_code_checkpoint(tiny: dict[str, Path], dst: Path, where: str, model_type: str) -> Path:
    ckpt = _copy(tiny["bert"], dst)
    (ckpt / "evil.py").write_text(_EVIL_MODULE.format(sentinel=str(dst.parent / "pwned")))
    name = "config.json" if where == "config" else "tokenizer_config.json"
    data = json.loads((ckpt / name).read_text())
    if where == "config":
        data["model_type"] = model_type
        data["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    else:
        data["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (ckpt / name).write_text(json.dumps(data))
    return ckpt


@pytest.mark.parametrize(
    ("where", "model_type"),
    [("config", "evil-net"), ("config", "bert"), ("tokenizer", "bert")],
)
def test_remote_code_is_refused_without_the_flag(tiny, tmp_path: Path, where, model_type) -> None:
    """Refused even when a built-in class could stand in (model_type 'bert')."""
    ckpt = _remote_code_checkpoint(tiny, tmp_path / "remote", where, model_type)
    with pytest.raises(
        RemoteCodeError, match=r"asks to run its own Python code.*trust_remote_code=True"
    ):
        load_model_and_tokenizer(ckpt, task_kind="retrieval")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_trust_remote_code_flag_is_passed_through(tiny, tmp_path: Path) -> None:
    """With the flag, the checkpoint's own code does run (in a subprocess, own module cache)."""
    ckpt = _remote_code_checkpoint(tiny, tmp_path / "remote", "config", "bert")
    script = textwrap.dedent(
        f"""
        from xcal.models import load_model_and_tokenizer
        loaded = load_model_and_tokenizer({str(ckpt)!r}, task_kind="retrieval", trust_remote_code=True)
        print(type(loaded.model).__name__)
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("EvilModel")
    assert (tmp_path / "pwned").read_text() == "remote code ran"


def test_importing_xcal_models_does_not_import_torch() -> None:
    code = (
        "import sys, xcal.models, xcal.models.embed, xcal.models.tiny, xcal.models.bundled\n"
        "bad = [m for m in ('torch', 'transformers', 'tokenizers', 'safetensors') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_tokenizer_already_read_is_used_not_read_again(tiny, monkeypatch) -> None:
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny["gpt2"])
    assert tokenizer.pad_token is None

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer was read again")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    loaded = load_model_and_tokenizer(tiny["gpt2"], task_kind="causal_lm", tokenizer=tokenizer)
    assert loaded.tokenizer is tokenizer
    # still given a pad token, as a freshly read one is
    assert tokenizer.pad_token == tokenizer.eos_token
    assert loaded.model.config.pad_token_id == tokenizer.pad_token_id
