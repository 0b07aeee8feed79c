"""Every ranking rule holds on every way to a top k: the single route (FastAPI's path), the hot
path, the batch route, onboarding and recommend-all all answer through ``ModelState.answer``.

The tagged bundle (tests/serve/tagged.py): listener u4 heard x, y and Björk; its five unheard
items are a, b, c, z and AC/DC, so k = 8 asks for all of them and only a rule can drop one.
b and AC/DC share the "rock" cluster; c, x and AC/DC carry the "party" tag. Onboarding from
the seeds x, y and Björk stands for u4 (the seeds count as heard).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from setlist.bundle import ModelBundle
from setlist.offline.topk import recommend_all_local
from setlist.serve import create_app
from setlist.serve.answer.ask import MAX_ID_LENGTH, MAX_MOOD_LENGTH
from setlist.serve.api.hotpath import HotPathMiddleware
from setlist.serve.runtime.settings import ranking_config
from tests.serve.conftest import TestClient, make_settings
from tests.serve.tagged import save_tagged_bundle

HEARD = {"x", "y", "Björk"}
UNHEARD = {"a", "b", "c", "z", "AC/DC"}
SEEDS = ["x", "y", "Björk"]
K = 8

RULES: dict[str, dict[str, Any]] = {
    "none": {},
    "blocked_item": {"rank_blocked_items": "b"},
    "blocked_tag": {"rank_blocked_tags": "party"},
    "cap": {"rank_max_per_group": 1},
    "explore": {"explore_mode": "epsilon", "explore_epsilon": 1.0, "explore_pool": 5},
}
PATHS = ["route", "hot", "batch", "onboarding", "recommend_all"]


class Apps:
    """One app per rule setting over the same bundle, started on first use."""

    def __init__(self, bundle_dir: Path, home: Path) -> None:
        self.bundle_dir = bundle_dir
        self.home = home
        self.clients: dict[str, TestClient] = {}

    def client(self, rule: str) -> TestClient:
        if rule not in self.clients:
            settings = make_settings(self.home / rule, max_k=50, **RULES[rule])
            client = TestClient(create_app(settings, self.bundle_dir))
            client.__enter__()
            self.clients[rule] = client
        return self.clients[rule]

    def close(self) -> None:
        for client in self.clients.values():
            client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tagged_bundle(tmp_path_factory.mktemp("paths") / "bundle")


@pytest.fixture(scope="module")
def apps(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    apps = Apps(bundle_dir, tmp_path_factory.mktemp("homes"))
    yield apps
    apps.close()


def _hot(client: TestClient) -> HotPathMiddleware:
    client.get("/health")  # builds the middleware stack
    layer: Any = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, HotPathMiddleware):
        layer = layer.app
    return layer


def answer(
    apps: Apps, tmp_path: Path, path: str, rule: str, k: int = K, exclude: tuple[str, ...] = ()
) -> list[str]:
    """u4's item ids (or the seeds' listener's) on ``path`` under ``rule``."""
    if path == "recommend_all":
        assert not exclude, "recommend-all takes no exclusions"
        ranking = ranking_config(make_settings(tmp_path, **RULES[rule]))
        out = tmp_path / "picks.parquet"
        recommend_all_local(ModelBundle.load(apps.bundle_dir), k, out, 1, ranking=ranking)
        rows = pq.read_table(out).to_pylist()
        mine = sorted((r["rank"], r["item_id"]) for r in rows if r["user_id"] == "u4")
        return [item for _, item in mine]
    client = apps.client(rule)
    if path in ("route", "hot"):
        query = f"k={k}" + "".join(f"&exclude={e}" for e in exclude)
        hot = _hot(client)
        before = hot.served
        via = "&via=fastapi" if path == "route" else ""  # an unknown parameter: FastAPI's path
        response = client.get(f"/v1/users/u4/recommendations?{query}{via}")
        assert hot.served == before + (path == "hot")
        items = response.json()["items"]
    elif path == "batch":
        body = {"user_ids": ["u4"], "k": k, "exclude": list(exclude)}
        response = client.post("/v1/recommendations/batch", json=body)
        items = response.json()["results"][0]["items"]
    else:
        body = {"seeds": SEEDS, "k": k, "exclude": list(exclude)}
        response = client.post("/v1/recommendations", json=body)
        items = response.json()["items"]
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in items]


@pytest.mark.parametrize("path", PATHS)
def test_without_rules_every_unheard_item_comes_back(apps: Apps, tmp_path: Path, path: str) -> None:
    """The control: k = 8 returns all five unheard items, so a missing one is a rule's doing."""
    got = answer(apps, tmp_path, path, "none")
    assert set(got) == UNHEARD and len(got) == len(UNHEARD)


CHECKS: dict[str, Callable[[list[str]], bool]] = {
    "blocked_item": lambda got: set(got) == UNHEARD - {"b"},
    "blocked_tag": lambda got: set(got) == {"a", "b", "z"},  # c and AC/DC are tagged party
    "cap": lambda got: len({"b", "AC/DC"} & set(got)) == 1 and {"a", "c", "z"} <= set(got),
}


@pytest.mark.parametrize("rule", sorted(CHECKS))
@pytest.mark.parametrize("path", PATHS)
def test_each_rule_holds_on_each_path(apps: Apps, tmp_path: Path, path: str, rule: str) -> None:
    got = answer(apps, tmp_path, path, rule)
    assert CHECKS[rule](got), (path, rule, got)
    assert not HEARD & set(got)
    assert len(got) == len(set(got))


@pytest.mark.parametrize("path", ["route", "hot", "batch", "onboarding"])
def test_caller_exclusions_hold_on_each_path(apps: Apps, tmp_path: Path, path: str) -> None:
    got = answer(apps, tmp_path, path, "none", exclude=("a", "AC/DC"))
    assert set(got) == UNHEARD - {"a", "AC/DC"}


@pytest.mark.parametrize("path", ["route", "hot", "batch", "onboarding"])
def test_exploration_applies_on_each_route(apps: Apps, path: str) -> None:
    """Epsilon 1 over a pool of 5: 2 of the 5 shown, each with propensity 2/5."""
    client = apps.client("explore")
    if path in ("route", "hot"):
        via = "&via=fastapi" if path == "route" else ""
        items = client.get(f"/v1/users/u4/recommendations?k=2{via}").json()["items"]
    elif path == "batch":
        body = {"user_ids": ["u4", "u1"], "k": 2}
        results = client.post("/v1/recommendations/batch", json=body).json()["results"]
        assert len(results) == 2
        items = results[0]["items"] + results[1]["items"]
    else:
        body = {"seeds": SEEDS, "k": 2}
        items = client.post("/v1/recommendations", json=body).json()["items"]
    assert items and [i["propensity"] for i in items] == [pytest.approx(0.4)] * len(items)


def test_recommend_all_writes_what_the_service_answers(bundle_dir: Path, tmp_path: Path) -> None:
    """Every user's list in the file, all rules on (new-item slot too), is the service's."""
    from setlist.serve.answer.state import ModelInfo, ModelState

    settings = make_settings(
        tmp_path, rank_blocked_items="a", rank_max_per_group=1, rank_new_item_slot=2,
        rank_new_item_max_listeners=1,
    )  # fmt: skip
    ranking = ranking_config(settings)
    bundle = ModelBundle.load(bundle_dir)
    out = tmp_path / "picks.parquet"
    recommend_all_local(bundle, 3, out, 1, ranking=ranking)
    written: dict[str, list[tuple[int, str]]] = {}
    for row in pq.read_table(out).to_pylist():
        written.setdefault(row["user_id"], []).append((row["rank"], row["item_id"]))
    state = ModelState(bundle, ModelInfo.from_bundle(bundle), ranking=ranking)
    for user in bundle.users.ids.tolist():
        served = [i.item_id for i in state.recommend(user, 3).items]
        assert [item for _, item in sorted(written.get(user, []))] == served, user
    assert any(i.new_item for u in bundle.users.ids.tolist() for i in state.recommend(u, 3).items)


@pytest.mark.parametrize(
    ("param", "limit"),
    [("mood", MAX_MOOD_LENGTH), ("exclude", MAX_ID_LENGTH), ("user", MAX_ID_LENGTH)],
)
def test_the_hot_path_and_fastapi_share_each_length_limit(
    apps: Apps, param: str, limit: int
) -> None:
    """At the limit the hot path takes the request; one past it, FastAPI refuses it (422)."""
    client = apps.client("none")
    hot = _hot(client)

    def get(length: int) -> Any:
        user = "u" * length if param == "user" else "u4"
        query = "" if param == "user" else f"?{param}={'m' * length}"
        before = hot.served
        response = client.get(f"/v1/users/{user}/recommendations{query}")
        return response, hot.served - before

    at, served_at = get(limit)
    past, served_past = get(limit + 1)
    assert served_at == 1 and at.status_code in (200, 422)  # 422: no such mood, not a length
    assert served_past == 0 and past.status_code == 422
    field = "user_id" if param == "user" else param
    assert field in past.text and (at.status_code == 200 or "length" not in at.text)
