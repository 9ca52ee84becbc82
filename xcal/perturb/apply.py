"""Apply a perturbation to task examples, knowing what each task's fields mean.

Examples are frozen dataclasses (:mod:`xcal.tasks`); a perturbed example is a
``dataclasses.replace`` copy with the same id, language and labels. Which
fields are text comes from ``fields=`` or, by default, the task's
``text_fields`` (XNLI/PAWS-X: premise and hypothesis; QA: question and context;
Tatoeba: the query; XCOPA: premise and choices).

- Sentence pairs: pass ``fields=("premise",)``, ``("hypothesis",)`` or both.
- Retrieval: the query is the only text field, so only queries change; the
  candidate pool is left alone.
- QA: perturbing the question is like any other field. Perturbing the
  context keeps every gold answer span verbatim: the context is cut at the
  answer spans, the stretches between them are perturbed separately, and the
  answer offsets are recomputed. Words therefore never move across an answer.
  An example whose gold answer does not sit at its offset (bad data) or
  cannot be found after perturbation is dropped (``None``) and counted by
  :func:`apply_to_examples`, never kept with a wrong label.

Each field (and each answer-free stretch of a context) gets its own random
stream: the example id is extended with the field name, so the premise and
the hypothesis of one pair are not perturbed in lockstep.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from xcal.perturb.base import PERTURBATIONS, Perturbation, check_seed, check_severity

E = TypeVar("E")


def get_perturbation(name: str | Perturbation, **params: Any) -> Perturbation:
    """The registered perturbation ``name``, with ``params`` changed if given.

    Examples
    --------
    >>> get_perturbation("ngram_shuffle", n=3).params
    {'n': 3}
    """
    if isinstance(name, Perturbation):
        return name.with_params(**params) if params else name
    perturbation = PERTURBATIONS.get(name)
    return perturbation.with_params(**params) if params else perturbation


def perturbation_names() -> list[str]:
    """Names of every registered perturbation, sorted."""
    return PERTURBATIONS.names()


@dataclass(frozen=True)
class PerturbedExamples:
    """The result of :func:`apply_to_examples`: kept examples and the ids dropped."""

    examples: list[Any]
    dropped_ids: list[str] = field(default_factory=list)

    @property
    def n_dropped(self) -> int:
        return len(self.dropped_ids)


def text_fields_of(example: Any, fields: Sequence[str] | None = None) -> tuple[str, ...]:
    """The fields of ``example`` to perturb: ``fields``, the example's or its task's ``text_fields``."""
    if not dataclasses.is_dataclass(example) or isinstance(example, type):
        raise TypeError(f"Expected a dataclass example, got {type(example).__name__}")
    names = {f.name for f in dataclasses.fields(example)}
    if fields is None:
        fields = getattr(example, "text_fields", None)
    if fields is None:
        fields = _task_text_fields(type(example))
    if isinstance(fields, str):
        fields = (fields,)
    fields = tuple(fields)
    if not fields:
        raise ValueError("Expected at least one field to perturb, got none")
    unknown = [f for f in fields if f not in names]
    if unknown:
        raise ValueError(
            f"{type(example).__name__} has no field(s) {unknown}; fields: {sorted(names)}"
        )
    return fields


def _task_text_fields(example_type: type) -> tuple[str, ...]:
    from xcal.tasks import TASKS, get_task

    found = {
        tuple(get_task(name).text_fields)
        for name in TASKS.names()
        if getattr(get_task(name), "example_type", None) is example_type
    }
    if len(found) != 1:
        raise ValueError(
            f"cannot tell which fields of {example_type.__name__} are text: pass fields= "
            "(for a task, fields=task.text_fields)"
        )
    return found.pop()


def _language_of(example: Any, language: str | None) -> str:
    if language is not None:
        return language
    value = getattr(example, "language", None)
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{type(example).__name__} has no `language` field: pass language= explicitly"
        )
    return value


def _example_id_of(example: Any) -> str:
    value = getattr(example, "example_id", None)
    if value is None:
        raise ValueError(f"{type(example).__name__} has no `example_id` field")
    return str(value)


def apply_to_example(
    example: E,
    name: str | Perturbation,
    severity: float,
    seed: int = 0,
    fields: Sequence[str] | None = None,
    *,
    language: str | None = None,
    context_field: str = "context",
    answers_field: str = "answers",
) -> E | None:
    """Perturb the text fields of one example; ``None`` if it had to be dropped.

    Parameters
    ----------
    example : dataclass instance
        Must have ``example_id``; ``language`` too unless passed explicitly.
    name : str or Perturbation
        A registered name or a configured perturbation (``get_perturbation(name, **params)``).
    severity : float
        In [0, 1]; 0 returns the example unchanged.
    seed : int
        Perturbation seed (with the example id it fixes the random stream).
    fields : sequence of str, optional
        Fields to perturb; default the example's task's ``text_fields``. A field
        may hold a str or a tuple/list of str (each item is perturbed).
    language : str, optional
        Overrides ``example.language``.
    context_field, answers_field : str
        For QA: the context field whose answer spans must survive, and the field
        holding the answers (dicts or objects with ``text`` and ``answer_start``).

    Returns
    -------
    The perturbed copy (same type, same id and labels), or ``None`` when a gold
    answer could not be kept.

    Examples
    --------
    >>> from xcal.tasks import QAAnswer, QAExample
    >>> ex = QAExample("q1", "en", "Paris is the capital of France.", "Where is Paris?",
    ...                (QAAnswer("France", 24),))
    >>> new = apply_to_example(ex, "word_shuffle", 1.0, seed=0, fields=("context",))
    >>> a = new.answers[0]
    >>> new.context[a.answer_start : a.answer_start + len(a.text)]
    'France'
    """
    perturbation = get_perturbation(name)
    level = check_severity(severity)
    check_seed(seed)
    names = text_fields_of(example, fields)
    if level == 0.0:
        return example
    lang = _language_of(example, language)
    example_id = _example_id_of(example)
    changes: dict[str, Any] = {}
    for fname in names:
        value = getattr(example, fname)
        key = f"{example_id}/{fname}"
        if fname == context_field and hasattr(example, answers_field):
            result = perturb_context(
                value, getattr(example, answers_field), perturbation,
                language=lang, severity=level, seed=seed, example_id=key,
            )  # fmt: skip
            if result is None:
                return None
            changes[fname], changes[answers_field] = result
        else:
            changes[fname] = _perturb_value(value, fname, perturbation, lang, level, seed, key)
    return dataclasses.replace(example, **changes)  # type: ignore[type-var]


def _perturb_value(
    value: Any,
    fname: str,
    perturbation: Perturbation,
    language: str,
    severity: float,
    seed: int,
    key: str,
) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return perturbation(value, language=language, severity=severity, seed=seed, example_id=key)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        out = [
            perturbation(
                v, language=language, severity=severity, seed=seed, example_id=f"{key}/{k}"
            )
            for k, v in enumerate(value)
        ]
        return type(value)(out)
    raise TypeError(
        f"field {fname!r} holds {type(value).__name__}; expected str or a list/tuple of str"
    )


def _answer_parts(answer: Any) -> tuple[str, int]:
    if isinstance(answer, Mapping):
        text, start = answer.get("text"), answer.get("answer_start")
    else:
        text, start = getattr(answer, "text", None), getattr(answer, "answer_start", None)
    if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, int):
        raise TypeError(
            f"Expected an answer with str 'text' and int 'answer_start', got {answer!r}"
        )
    return text, start


def _with_start(answer: Any, start: int) -> Any:
    if isinstance(answer, Mapping):
        return {**answer, "answer_start": start}
    if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        return dataclasses.replace(answer, answer_start=start)
    if hasattr(answer, "_replace"):  # a NamedTuple
        return answer._replace(answer_start=start)
    raise TypeError(f"cannot rebuild answer of type {type(answer).__name__}")


def perturb_context(
    context: str,
    answers: Sequence[Any],
    perturbation: Perturbation,
    *,
    language: str,
    severity: float,
    seed: int,
    example_id: str,
) -> tuple[str, Any] | None:
    """Perturb a QA context around its gold answer spans; ``None`` if one cannot be kept.

    Returns the new context and the answers with recomputed ``answer_start``
    (same container and element types as given).

    Examples
    --------
    >>> from xcal.perturb import get_perturbation
    >>> ctx, ans = perturb_context(
    ...     "Der Dom steht in Köln, nicht in Zürich.", [{"text": "Köln", "answer_start": 17}],
    ...     get_perturbation("remove_diacritics"), language="de", severity=1.0, seed=0,
    ...     example_id="q")
    >>> ctx, ans
    ('Der Dom steht in Köln, nicht in Zurich.', [{'text': 'Köln', 'answer_start': 17}])
    """
    if not isinstance(context, str):
        raise TypeError(f"Expected the context to be a str, got {type(context).__name__}")
    parts = [_answer_parts(a) for a in answers]
    spans: list[tuple[int, int]] = []
    for text, start in parts:
        if start < 0 or context[start : start + len(text)] != text:
            return None  # the gold answer is not where the data says: cannot keep it
        spans.append((start, start + len(text)))
    # Merge overlapping or touching spans into frozen regions.
    frozen: list[list[int]] = []
    for start, end in sorted(spans):
        if frozen and start <= frozen[-1][1]:
            frozen[-1][1] = max(frozen[-1][1], end)
        else:
            frozen.append([start, end])
    out: list[str] = []
    new_region_start: dict[int, int] = {}
    cursor = 0
    length = 0
    for k, (start, end) in enumerate([*frozen, [len(context), len(context)]]):
        gap = context[cursor:start]
        if gap:
            gap = perturbation(
                gap, language=language, severity=severity, seed=seed,
                example_id=f"{example_id}/{k}",
            )  # fmt: skip
        out.append(gap)
        length += len(gap)
        new_region_start[start] = length
        out.append(context[start:end])
        length += end - start
        cursor = end
    new_context = "".join(out)
    new_answers = []
    for answer, (text, start) in zip(answers, parts, strict=True):
        region = max(r for r in frozen if r[0] <= start)
        new_start = new_region_start[region[0]] + (start - region[0])
        if new_context[new_start : new_start + len(text)] != text:  # pragma: no cover
            return None  # defensive: never keep an answer that moved
        new_answers.append(_with_start(answer, new_start))
    return new_context, (tuple(new_answers) if isinstance(answers, tuple) else new_answers)


def apply_to_examples(
    examples: Iterable[Any],
    name: str | Perturbation,
    severity: float,
    seed: int = 0,
    fields: Sequence[str] | None = None,
    *,
    language: str | None = None,
) -> PerturbedExamples:
    """Perturb many examples; dropped ones are counted, not silently kept.

    Examples
    --------
    >>> from xcal.tasks import PairExample
    >>> exs = [PairExample(f"x-{i}", "en", "A man eats bread.", "He eats.", 1) for i in range(3)]
    >>> res = apply_to_examples(exs, "word_shuffle", 0.5, seed=1, fields=("premise",))
    >>> len(res.examples), res.n_dropped, [e.label for e in res.examples]
    (3, 0, [1, 1, 1])
    """
    perturbation = get_perturbation(name)
    kept: list[Any] = []
    dropped: list[str] = []
    for example in examples:
        new = apply_to_example(example, perturbation, severity, seed, fields, language=language)
        if new is None:
            dropped.append(_example_id_of(example))
        else:
            kept.append(new)
    return PerturbedExamples(kept, dropped)


def manifest_fields(
    name: str | Perturbation,
    *,
    language: str,
    severity: float,
    seed: int,
    fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``RunManifest`` fields describing a perturbation run (splat into ``RunManifest``).

    The perturbed fields are part of ``perturbation_params``: perturbing the
    premise and perturbing the hypothesis are different runs.

    Examples
    --------
    >>> m = manifest_fields("word_shuffle", language="de", severity=0.5, seed=1,
    ...                     fields=("premise",))
    >>> m["perturbation"], m["severity"], m["perturbation_params"]["fields"]
    ('word_shuffle', 0.5, ['premise'])
    """
    perturbation = get_perturbation(name)
    params = perturbation.manifest_params(language)
    if fields is not None:
        params["fields"] = [fields] if isinstance(fields, str) else list(fields)
    return {
        "perturbation": perturbation.name,
        "perturbation_params": params,
        "severity": check_severity(severity),
        "perturbation_seed": check_seed(seed),
    }
