"""Command-line model specs and budgets: bad values fail before any work, naming the range."""

from __future__ import annotations

import pytest

from setlist.config import WeightConfig
from setlist.errors import ConfigError
from setlist.models.specs import build_specs, parse_kinds, parse_overrides
from setlist.tune.budget import parse_budget


def test_overrides_are_typed_and_checked_by_name() -> None:
    out = parse_overrides(
        ["knn.k=100", "ease.l2=2.5e3", "ease.weighting=log1p", "ease.keep_popular=false"]
    )
    assert out == {
        "knn": {"k": 100},
        "ease": {"l2": 2500.0, "weighting": "log1p", "keep_popular": False},
    }
    with pytest.raises(ConfigError, match=r"knn has no parameter 'neighbours'; it accepts k, "):
        parse_overrides(["knn.neighbours=5"])
    with pytest.raises(ConfigError, match="kind.name=value"):
        parse_overrides(["k=5"])
    with pytest.raises(ConfigError, match="unknown model 'svd'; known models: .*ease"):
        parse_overrides(["svd.factors=3"])


def test_unknown_models_and_bad_values_name_the_parameter_and_range() -> None:
    with pytest.raises(ConfigError, match="unknown model 'sasrec'; known models: als, blend, bpr"):
        parse_kinds("als,sasrec")
    with pytest.raises(ConfigError, match="names no model"):
        parse_kinds(" , ")
    weights = WeightConfig()
    with pytest.raises(ConfigError, match=r"bpr: factors must be in \[1, 4096\], got -3"):
        build_specs(["bpr"], {"bpr": {"factors": -3}}, weights)
    with pytest.raises(ConfigError, match=r"als: factors must be at least 1, got -1"):
        build_specs(["als"], {"als": {"factors": -1}}, weights)
    with pytest.raises(ConfigError, match="--param names knn, which --models does not train"):
        build_specs(["als"], {"knn": {"k": 5}}, weights)
    specs = build_specs(["als", "ease"], {"ease": {"l2": 10.0}}, weights, {"als": {"factors": 8}})
    assert [s.params for s in specs] == [{"factors": 8}, {"l2": 10.0}]
    assert not specs[0].weighs_itself and specs[1].weighs_itself


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900.0), ("90s", 90.0), ("1.5h", 5400.0), ("45", 45.0)]
)
def test_budgets_parse(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0s", "0.2s", "9d", "soon", "-5m"])
def test_bad_budgets_name_the_accepted_range(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--budget .*(accepted range|is not a duration)"):
        parse_budget(text)
