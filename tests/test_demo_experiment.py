"""The demo's experiment plan: disjoint XNLI lines, intermediate-task data, profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from xcal.demo.experiment import (
    PROFILES,
    get_profile,
    intermediate_data,
    with_overrides,
    xnli_line_ranges,
)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_training_and_evaluation_lines_are_disjoint_premise_groups(name: str) -> None:
    train, evaluate = xnli_line_ranges(get_profile(name), 2490)
    assert set(train).isdisjoint(evaluate)
    # XNLI dev repeats each premise on three consecutive lines: no group is split.
    assert {i // 3 for i in train}.isdisjoint({i // 3 for i in evaluate})
    assert len(evaluate) == get_profile(name).eval_examples


def test_evaluation_lines_share_premises_with_nothing_trained_on(xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    english = get_task("xnli").load(xtreme_dir, "en", "dev")
    train, evaluate = xnli_line_ranges(get_profile("full"), len(english))
    trained = {english[i].premise for i in train}
    assert not trained & {english[i].premise for i in evaluate}


def test_profiles_that_do_not_fit_are_refused() -> None:
    big = with_overrides(get_profile("ci"), train_groups=800, eval_examples=300)
    with pytest.raises(ValueError, match="exceed the 2490 lines"):
        xnli_line_ranges(big, 2490)
    ragged = with_overrides(get_profile("ci"), eval_examples=31)
    with pytest.raises(ValueError, match="multiple of 3"):
        xnli_line_ranges(ragged, 2490)
    with pytest.raises(ValueError, match="unknown demo profile 'huge'; known: full, ci"):
        get_profile("huge")


def test_xcopa_becomes_pairs_with_one_right_choice_each(xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    data = intermediate_data("xcopa", xtreme_dir, 10_000)
    examples = [
        *get_task("xcopa").load(xtreme_dir, "en", "train"),
        *get_task("xcopa").load(xtreme_dir, "en", "val"),
    ]
    assert len(data.labels) == 2 * len(examples)
    for k, ex in enumerate(examples):
        right = (ex.choice1, ex.choice2)[ex.label]
        pair = data.labels[2 * k : 2 * k + 2]
        assert sorted(pair) == [0, 1]
        assert data.text_b[2 * k + pair.index(1)] == right
        assert data.text_a[2 * k].startswith(ex.premise)


def test_pawsx_keeps_its_labels(xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    data = intermediate_data("pawsx", xtreme_dir, 50)
    gold = get_task("pawsx").load(xtreme_dir, "en", "dev")[:50]
    assert list(data.labels) == [e.label for e in gold]
    assert data.label_names == tuple(get_task("pawsx").label_names)
    with pytest.raises(ValueError, match="unknown intermediate task 'mnli'"):
        intermediate_data("mnli", xtreme_dir, 5)


def test_intermediate_stages_take_their_own_epochs_and_nothing_else() -> None:
    full = get_profile("full")
    assert full.intermediate_epochs is not None
    assert full.intermediate_train.epochs == full.intermediate_epochs
    assert full.intermediate_train.learning_rate == full.train.learning_rate
    same = with_overrides(full, intermediate_epochs=None)
    assert same.intermediate_train == full.train
