"""What a demo training stage learns: its examples, their encoding, its head and its loss.

Four kinds of English task train the same encoder (:mod:`xcal.demo.train`):
sentence pairs (XNLI, PAWS-X), multiple choice (XCOPA), token tagging
(PAN-X) and extractive question answering (TyDiQA-GoldP). Each kind turns
its examples into token rows (one per input sequence; K per multiple-choice
item) and computes its loss from the top layer's hidden states with the head
of the matching transformers class, so every stage saves a checkpoint that
transformers and ``xcal infer`` load as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The padding target of token rows: cross-entropy ignores it (transformers' convention).
IGNORE = -100
#: The span logit of a padding position: no weight in the softmax.
PAD_LOGIT = -1e4


@dataclass
class Rows:
    """A training set as token rows.

    ``items[i]`` lists the rows of training item ``i`` (one row, or one per
    choice) and ``targets[i]`` its target: a class, a tag per row token, or
    the (start, end) token of the answer.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    items: list[list[int]]
    targets: list[Any]
    n_dropped: int = 0  # items the encoding could not keep (an answer cut off)


@dataclass
class Head:
    """The modules on top of the encoder that a task's loss uses."""

    output: Any  # the linear layer: classifier or qa_outputs
    pooler: Any = None  # the [CLS] pooler, for sequence-level tasks
    dropout: Any = None

    def dropped(self, x: Any) -> Any:
        return x if self.dropout is None else self.dropout(x)


def _sequence_head(model: Any) -> Head:
    """The [CLS] pooler, dropout and classifier of a sequence-level transformers head."""
    return Head(model.classifier, model.base_model.pooler, getattr(model, "dropout", None))


def _pooled(head: Head, hidden: Any) -> Any:
    return head.pooler(hidden) if head.pooler is not None else hidden[:, 0]


def _encode(tokenizer: Any, first: Any, second: Any, max_length: int, **kwargs: Any) -> Any:
    return tokenizer(first, second, truncation=True, max_length=max_length, **kwargs)


def _types(batch: Any) -> list[list[int]] | None:
    types = batch.get("token_type_ids")
    return [list(t) for t in types] if types is not None else None


@dataclass(frozen=True)
class PairData:
    """Sentence pairs with integer labels (XNLI, PAWS-X)."""

    text_a: Sequence[str]
    text_b: Sequence[str]
    labels: Sequence[int]
    label_names: tuple[str, ...]  # written to the config's id2label, so runners map columns
    name: str  # the task's name, recorded in the checkpoint
    auto_class = "AutoModelForSequenceClassification"

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def n_items(self) -> int:
        return len(self.labels)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.text_a) != n or len(self.text_b) != n:
            raise ValueError(
                f"{self.name}: text_a, text_b and labels differ in length "
                f"({len(self.text_a)}, {len(self.text_b)}, {n})"
            )
        _check_labels(self.name, [[y] for y in self.labels], self.num_labels)

    def model_kwargs(self) -> dict[str, Any]:
        return _label_kwargs(self.label_names)

    def encode(self, tokenizer: Any, max_length: int) -> Rows:
        batch = _encode(tokenizer, list(self.text_a), list(self.text_b), max_length)
        n = len(self.labels)
        return Rows(
            [list(x) for x in batch["input_ids"]],
            _types(batch),
            [[i] for i in range(n)],
            [int(y) for y in self.labels],
        )

    def head(self, model: Any) -> Head:
        return _sequence_head(model)

    def loss(self, head: Head, hidden: Any, attention: Any, targets: Sequence[Any]) -> Any:
        import torch

        logits = head.output(head.dropped(_pooled(head, hidden)))
        return torch.nn.functional.cross_entropy(logits, torch.as_tensor(list(targets)))


@dataclass(frozen=True)
class ChoiceData:
    """Multiple choice (XCOPA): a context, K choices, the index of the right one.

    Each choice is scored as the pair (context, choice) by a one-output head
    over the pooled [CLS] state, and the K scores are a softmax: the
    ``*ForMultipleChoice`` recipe.
    """

    contexts: Sequence[str]
    choices: Sequence[Sequence[str]]
    labels: Sequence[int]
    name: str
    auto_class = "AutoModelForMultipleChoice"

    @property
    def n_items(self) -> int:
        return len(self.labels)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.contexts) != n or len(self.choices) != n:
            raise ValueError(f"{self.name}: contexts, choices and labels differ in length")
        if n and len({len(c) for c in self.choices}) != 1:
            raise ValueError(f"{self.name}: every item needs the same number of choices")
        k = len(self.choices[0]) if n else 0
        _check_labels(self.name, [[y] for y in self.labels], k)

    def model_kwargs(self) -> dict[str, Any]:
        return {}

    def encode(self, tokenizer: Any, max_length: int) -> Rows:
        k = len(self.choices[0])
        first = [c for c in self.contexts for _ in range(k)]
        second = [choice for choices in self.choices for choice in choices]
        batch = _encode(tokenizer, first, second, max_length)
        n = len(self.labels)
        return Rows(
            [list(x) for x in batch["input_ids"]],
            _types(batch),
            [list(range(i * k, (i + 1) * k)) for i in range(n)],
            [int(y) for y in self.labels],
        )

    def head(self, model: Any) -> Head:
        return _sequence_head(model)

    def loss(self, head: Head, hidden: Any, attention: Any, targets: Sequence[Any]) -> Any:
        import torch

        scores = head.output(head.dropped(_pooled(head, hidden))).view(len(targets), -1)
        return torch.nn.functional.cross_entropy(scores, torch.as_tensor(list(targets)))


@dataclass(frozen=True)
class TokenData:
    """Tagged sentences (PAN-X): words and one tag index per word.

    A word's tag trains its first sub-word token; the other tokens are
    ignored (the usual token-classification recipe).
    """

    words: Sequence[Sequence[str]]
    tags: Sequence[Sequence[int]]
    label_names: tuple[str, ...]
    name: str
    auto_class = "AutoModelForTokenClassification"

    @property
    def n_items(self) -> int:
        return len(self.tags)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise ValueError(f"{self.name}: words and tags differ in length")
        for i, (w, t) in enumerate(zip(self.words, self.tags, strict=True)):
            if len(w) != len(t) or not w:
                raise ValueError(f"{self.name}: sentence {i} has {len(w)} words and {len(t)} tags")
        _check_labels(self.name, self.tags, len(self.label_names))

    def model_kwargs(self) -> dict[str, Any]:
        return _label_kwargs(self.label_names)

    def encode(self, tokenizer: Any, max_length: int) -> Rows:
        batch = tokenizer(
            [list(w) for w in self.words],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
        )
        targets: list[list[int]] = []
        for i, tags in enumerate(self.tags):
            previous = None
            row = []
            for word in batch.word_ids(i):
                row.append(IGNORE if word is None or word == previous else int(tags[word]))
                previous = word
            targets.append(row)
        return Rows(
            [list(x) for x in batch["input_ids"]],
            _types(batch),
            [[i] for i in range(len(self.tags))],
            targets,
        )

    def head(self, model: Any) -> Head:
        return Head(model.classifier, None, getattr(model, "dropout", None))

    def loss(self, head: Head, hidden: Any, attention: Any, targets: Sequence[Any]) -> Any:
        import torch

        logits = head.output(head.dropped(hidden))
        gold = torch.full(attention.shape, IGNORE, dtype=torch.long)
        for row, tags in enumerate(targets):
            gold[row, : len(tags)] = torch.as_tensor(tags)
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=IGNORE
        )


@dataclass(frozen=True)
class SpanData:
    """Extractive QA (TyDiQA-GoldP, SQuAD format): the first gold answer of each question.

    A question whose answer falls outside the first ``max_length`` tokens of
    (question, context) is dropped and counted, not cut short.
    """

    questions: Sequence[str]
    contexts: Sequence[str]
    answer_starts: Sequence[int]
    answer_texts: Sequence[str]
    name: str
    auto_class = "AutoModelForQuestionAnswering"

    @property
    def n_items(self) -> int:
        return len(self.questions)

    def __post_init__(self) -> None:
        n = len(self.questions)
        if not (len(self.contexts) == len(self.answer_starts) == len(self.answer_texts) == n):
            raise ValueError(f"{self.name}: questions, contexts and answers differ in length")
        for i, (c, s, t) in enumerate(
            zip(self.contexts, self.answer_starts, self.answer_texts, strict=True)
        ):
            if not t or c[s : s + len(t)] != t:
                raise ValueError(f"{self.name}: question {i}'s answer is not at its offset")

    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": 2}  # start and end; a previous stage's labels would size the head

    def encode(self, tokenizer: Any, max_length: int) -> Rows:
        batch = tokenizer(
            list(self.questions),
            list(self.contexts),
            truncation="only_second",
            max_length=max_length,
            return_offsets_mapping=True,
        )
        keep, targets = [], []
        for i, (start, text) in enumerate(zip(self.answer_starts, self.answer_texts, strict=True)):
            end = start + len(text)
            in_context = [
                t
                for t, (seq, (a, b)) in enumerate(
                    zip(batch.sequence_ids(i), batch["offset_mapping"][i], strict=True)
                )
                if seq == 1 and b > a and a < end and b > start
            ]
            # the answer's tokens, unless the window cut its end off
            if in_context and batch["offset_mapping"][i][in_context[-1]][1] >= end:
                keep.append(i)
                targets.append((in_context[0], in_context[-1]))
        types = _types(batch)
        return Rows(
            [list(batch["input_ids"][i]) for i in keep],
            [types[i] for i in keep] if types is not None else None,
            [[row] for row in range(len(keep))],
            targets,
            n_dropped=len(self.questions) - len(keep),
        )

    def head(self, model: Any) -> Head:
        return Head(model.qa_outputs)

    def loss(self, head: Head, hidden: Any, attention: Any, targets: Sequence[Any]) -> Any:
        import torch

        # padding is never an answer (transformers' own loss leaves it in the softmax,
        # where a padded row's positions would depend on how it was batched)
        logits = head.output(hidden).masked_fill(~attention.bool()[..., None], PAD_LOGIT)
        start, end = logits.unbind(-1)
        gold = torch.as_tensor(list(targets))
        f = torch.nn.functional.cross_entropy
        return (f(start, gold[:, 0]) + f(end, gold[:, 1])) / 2


TaskData = PairData | ChoiceData | TokenData | SpanData


def new_head(data: TaskData, config: Any, pooler: Any) -> Head:
    """A freshly initialised head for ``data`` over an encoder with this config (multi-task)."""
    import torch

    outputs = {
        PairData: lambda: data.num_labels,  # type: ignore[union-attr]
        ChoiceData: lambda: 1,
        TokenData: lambda: len(data.label_names),  # type: ignore[union-attr]
        SpanData: lambda: 2,
    }[type(data)]()
    linear = torch.nn.Linear(config.hidden_size, outputs)
    # transformers' BERT initialisation
    torch.nn.init.normal_(linear.weight, std=config.initializer_range)
    torch.nn.init.zeros_(linear.bias)
    dropout = torch.nn.Dropout(config.hidden_dropout_prob)
    sequence_level = isinstance(data, PairData | ChoiceData)
    return Head(linear, pooler if sequence_level else None, dropout)


def _label_kwargs(names: Sequence[str]) -> dict[str, Any]:
    return {
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
    }


def _check_labels(name: str, labels: Sequence[Sequence[int]], n: int) -> None:
    if not labels:
        raise ValueError(f"{name}: no training examples")
    for i, row in enumerate(labels):
        if any(not 0 <= y < n for y in row):
            raise ValueError(f"{name}: label out of range [0, {n}) at row {i}")
