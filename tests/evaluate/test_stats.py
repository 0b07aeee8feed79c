"""Bootstrap intervals and the paired Wilcoxon comparison."""

from __future__ import annotations

import numpy as np
import pytest

from setlist.errors import DataError
from setlist.evaluate.stats import bootstrap_mean, compare_paired, wilcoxon_p


def test_bootstrap_interval_brackets_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(1).random(500)
    a = bootstrap_mean(values, seed=3)
    assert a.low < a.mean < a.high
    assert a.mean == pytest.approx(values.mean())
    assert a == bootstrap_mean(values, seed=3)
    # about 1.96 standard errors either side
    se = values.std() / np.sqrt(len(values))
    assert (a.high - a.low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bootstrap_of_a_constant_is_a_point() -> None:
    a = bootstrap_mean(np.full(30, 0.25), n_resamples=50)
    assert a.low == a.high == a.mean == pytest.approx(0.25)


def test_identical_models_give_p_one_and_are_not_better() -> None:
    values = np.random.default_rng(0).random(200)
    assert wilcoxon_p(values, values) == (0.0, 1.0)
    c = compare_paired(values, values)
    assert c.p_value == 1.0 and c.diff.mean == 0.0 and not c.significantly_better()


def test_a_consistent_improvement_is_significant() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(300)
    better = base + 0.05 + rng.normal(0, 0.02, 300)
    c = compare_paired(better, base)
    assert c.p_value < 1e-6 and c.diff.low > 0 and c.significantly_better()
    assert c.wins > c.losses
    worse = compare_paired(base, better)
    assert worse.diff.high < 0 and not worse.significantly_better()


def test_noise_alone_is_not_significant() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(200)
    b = a + rng.normal(0, 0.1, 200)
    assert not compare_paired(b, a).significantly_better()


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(DataError, match="differ in length"):
        compare_paired([0.1, 0.2], [0.1])
    with pytest.raises(DataError, match="non-empty"):
        bootstrap_mean([])
    with pytest.raises(DataError, match="non-finite"):
        bootstrap_mean([0.1, float("nan")])
