"""lm-eval YAML tasks that read the shared XTREME files and prompt exactly as ``xcal infer --scoring lm``.

XNLI: lm-eval's own option order (entailment, neutral, contradiction) and
XGLM template, with ``target_delimiter: ""`` because xcal scores
"{premise}, {right}? {Yes}, {hypothesis}" without the leading space that
lm-eval's built-in ``xnli_*`` tasks put before it. XCOPA: lm-eval's own
template (premise without its final character, connective, lower-cased
choice), on languages whose premises all end in punctuation.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from xcal.tasks.multiple_choice import XCOPA_CONNECTIVES
from xcal.tasks.pair import XNLI_PROMPT_WORDS


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a jinja string literal


def xnli_task(data_dir: Path, language: str) -> dict[str, object]:
    q, yes, also, no = XNLI_PROMPT_WORDS[language]
    options = ", ".join(f"premise+{_q(f', {q}? {w}, ')}+hypothesis" for w in (yes, also, no))
    return {
        "task": f"xnli_local_{language}",
        "dataset_path": "csv",
        "dataset_kwargs": {
            "data_files": {"validation": str(data_dir / "xnli" / f"dev-{language}.tsv")},
            "delimiter": "\t",
            "quoting": 3,  # csv.QUOTE_NONE: the XTREME TSVs are not quoted
            "column_names": ["premise", "hypothesis", "label"],
        },
        "output_type": "multiple_choice",
        "validation_split": "validation",
        "doc_to_text": "",
        "target_delimiter": "",
        "doc_to_choice": "{{[" + options + "]}}",
        "doc_to_target": "{{['entailment', 'neutral', 'contradiction'].index(label)}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def xcopa_task(data_dir: Path, language: str) -> dict[str, object]:
    cause, effect = XCOPA_CONNECTIVES[language]
    return {
        "task": f"xcopa_local_{language}",
        "dataset_path": "json",
        "dataset_kwargs": {
            "data_files": {"validation": str(data_dir / "xcopa" / f"val-{language}.jsonl")}
        },
        "output_type": "multiple_choice",
        "validation_split": "validation",
        "doc_to_text": "{{premise.strip()[:-1]}} {{"
        + f"{_q(cause)} if question == 'cause' else {_q(effect)}"
        + "}}",
        "doc_to_choice": "{{[choice1.strip()[0].lower() + choice1.strip()[1:], "
        "choice2.strip()[0].lower() + choice2.strip()[1:]]}}",
        "doc_to_target": "label",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def xnli_generation_task(data_dir: Path, language: str) -> dict[str, object]:
    """A generation task on the same file: the importer must list it as skipped."""
    task = xnli_task(data_dir, language)
    for key in ("doc_to_choice", "target_delimiter"):
        task.pop(key)
    task.update(
        task=f"xnli_gen_{language}",
        output_type="generate_until",
        doc_to_text="{{premise}}, right? ",
        doc_to_target="{{label}}",
        generation_kwargs={"until": ["\n"], "max_gen_toks": 2, "do_sample": False},
        metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    )
    return task


def write_tasks(directory: Path, tasks: list[dict[str, object]]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        text = yaml.safe_dump(task, allow_unicode=True, sort_keys=False)
        (directory / f"{task['task']}.yaml").write_text(text, encoding="utf-8")
    return [str(t["task"]) for t in tasks]
