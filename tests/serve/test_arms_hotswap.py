"""A/B arms (stable assignment, readiness) and hot-swap (new versions in, broken ones refused)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from setlist.errors import ConfigError
from setlist.registry import Registry, RegistryConfig
from setlist.serve import create_app
from setlist.serve.answer.state import ModelState
from setlist.serve.api.service import service_of
from setlist.serve.runtime.abtest import Arm, Arms, ArmSpec, bucket, parse_arms
from tests.serve.conftest import make_settings


def test_arms_are_parsed_and_checked() -> None:
    assert parse_arms("") == [ArmSpec("champion", "champion", 1.0)]
    assert parse_arms("control=champion:90, test=3:10") == [
        ArmSpec("control", "champion", 90.0),
        ArmSpec("test", "3", 10.0),
    ]
    assert parse_arms("challenger") == [ArmSpec("challenger", "challenger", 1.0)]
    for bad in ("a=champion:0", "a=champion:x", "a=b:1,a=c:1", "a=:1", "bad name=x:1"):
        with pytest.raises(ConfigError):
            parse_arms(bad)


def test_the_bucket_is_stable_across_processes() -> None:
    # BLAKE2b of salt and id: the same number on every machine and after every restart.
    assert bucket("u1", "setlist") == pytest.approx(0.06303239546665443, abs=1e-15)
    assert bucket("u1", "setlist") != bucket("u1", "other-salt")


def _arms(ready: dict[str, bool], weights: dict[str, float]) -> Arms:
    arms = []
    for name, weight in weights.items():
        state = ModelState(problem="test")
        if ready[name]:
            state.bundle, state.info = object(), object()  # type: ignore[assignment]
        arms.append(Arm(ArmSpec(name, name, weight), state))
    return Arms(arms, "setlist")


def test_users_split_by_weight_and_keep_their_arm() -> None:
    arms = _arms({"a": True, "b": True}, {"a": 3, "b": 1})
    users = [f"user-{n}" for n in range(4000)]
    first = [arms.assign(u).name for u in users]
    share = Counter(first)["a"] / len(users)
    assert 0.72 < share < 0.78
    assert first == [arms.assign(u).name for u in users]


def test_an_arm_that_is_not_ready_gets_no_traffic() -> None:
    arms = _arms({"a": True, "b": False}, {"a": 1, "b": 1})
    assert {arms.assign(f"u{n}").name for n in range(500)} == {"a"}
    both = _arms({"a": True, "b": True}, {"a": 1, "b": 1})
    moved = [u for u in (f"u{n}" for n in range(500)) if both.assign(u).name == "a"]
    assert all(arms.assign(u).name == "a" for u in moved)  # users of ready arms stay put


def _register(registry: Registry, bundle_dir: Path, ndcg: float) -> str:
    mv = registry.log_model(
        run_name="als",
        bundle_dir=bundle_dir,
        model_type="als",
        params={"factors": 4},
        metrics={"ndcg@10": ndcg},
        data={"name": "tiny"},
        fit_seconds=0.1,
    )
    return mv.version


def _artifact_npz(registry: Registry, version: str) -> Path:
    mv = registry.get(version)
    run = registry._client.get_run(mv.run_id)
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    return root / "model" / "bundle.npz"


def test_hot_swap_takes_new_versions_and_refuses_broken_ones(
    bundle_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, swap_interval_s=0, ab_arms="main=champion:1,next=challenger:1"
    )
    registry = Registry(RegistryConfig.from_settings(settings))
    v1 = _register(registry, bundle_dir, 0.1)
    registry.set_alias("champion", v1)
    with TestClient(create_app(settings)) as client:
        swapper = service_of(client.app).artists.swapper
        assert swapper is not None
        arms = service_of(client.app).artists.arms
        assert client.get("/ready").json()["model_version"] == v1
        assert not arms.by_name("next").ready  # no challenger yet: no traffic to it
        assert {client.get(f"/v1/users/u{n}/recommendations").json()["arm"] for n in range(30)} == {
            "main"
        }
        v2 = _register(registry, bundle_dir, 0.2)
        registry.set_alias("challenger", v2)
        registry.set_alias("champion", v2)
        held = arms.by_name("main").state  # a request in flight keeps this one
        assert swapper.check_once() == 2
        assert held.info.version == v1 and held.recommend("u1", 2).items
        assert client.get("/v1/model").json()["version"] == v2
        served = {client.get(f"/v1/users/u{n}/recommendations").json()["arm"] for n in range(30)}
        assert served == {"main", "next"}

        v3 = _register(registry, bundle_dir, 0.3)
        npz = _artifact_npz(registry, v3)
        npz.write_bytes(npz.read_bytes()[:-100])  # truncated in the artifact store
        registry.set_alias("champion", v3)
        assert swapper.check_once() == 0
        assert swapper.check_once() == 0  # refused once, not retried
        assert client.get("/v1/model").json()["version"] == v2
        assert client.get("/v1/users/u1/recommendations").status_code == 200
        metrics = client.get("/metrics").text
        assert (
            'setlist_model_swaps_total{arm="main",catalogue="artists",outcome="refused"} 1.0'
            in metrics
        )
        # the start-up load counts as a swap too
        assert (
            'setlist_model_swaps_total{arm="main",catalogue="artists",outcome="swapped"} 2.0'
            in metrics
        )
        assert (
            'setlist_model_info{arm="next",catalogue="artists",model_type="als",'
            f'version="{v2}"}} 1.0' in metrics
        )
