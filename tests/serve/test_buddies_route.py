"""GET /v1/users/{user_id}/buddies and POST /v1/buddies on the tiny test bundle."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import IndexConfig
from setlist.serve import create_app
from tests.registry.bundles import fit, items_meta
from tests.serve.conftest import make_settings


def _heard(bundle: ModelBundle, user: str) -> set[str]:
    row = bundle.users.get(user)
    assert row is not None
    return {str(bundle.items.ids[c]) for c in bundle.seen[row].indices}


def test_buddies_share_taste_and_never_include_the_listener(
    client: TestClient, bundle: ModelBundle
) -> None:
    answered = 0
    for user in [str(u) for u in bundle.users.ids]:
        response = client.get(f"/v1/users/{user}/buddies", params={"k": 3})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) <= 3
        mine = _heard(bundle, user)
        for buddy in items:
            assert buddy["user_id"] != user
            theirs = _heard(bundle, buddy["user_id"])
            shared = {s["item_id"] for s in buddy["shared"]}
            assert shared and shared <= mine & theirs
            found = {d["item_id"] for d in buddy["discoveries"]}
            assert found <= theirs - mine
        assert all(0 < b["similarity"] <= 1 + 1e-6 for b in items)
        answered += bool(items)
    assert answered > 0


def test_unknown_listener_and_bad_k_are_named(client: TestClient) -> None:
    unknown = client.get("/v1/users/nobody-here/buddies")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "user_id"
    assert "nobody-here" in unknown.json()["error"]["message"]
    bad = client.get("/v1/users/u1/buddies", params={"k": 0})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "k"


def test_seed_artists_get_buddies_who_heard_them(client: TestClient, bundle: ModelBundle) -> None:
    response = client.post("/v1/buddies", json={"seeds": ["Ex", "Björk", "no-such"], "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["seeds"] == ["Ex", "Björk"] and body["unknown_seeds"] == ["no-such"]
    assert body["items"]
    for buddy in body["items"]:
        theirs = _heard(bundle, buddy["user_id"])
        assert {s["item_id"] for s in buddy["shared"]} <= {"x", "Björk"} & theirs
        assert "x" not in {d["item_id"] for d in buddy["discoveries"]}
    # the Ex/Björk cluster (u4, u5) comes before listeners who only heard Ex once
    assert {b["user_id"] for b in body["items"][:2]} == {"u4", "u5"}


def test_seeds_that_match_nothing_are_named(client: TestClient) -> None:
    response = client.post("/v1/buddies", json={"seeds": ["nothing-like-this"]})
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "seeds"
    assert "nothing-like-this" in response.json()["error"]["message"]
    assert client.post("/v1/buddies", json={"seeds": []}).status_code == 422


def test_buddies_through_the_listener_index_match_the_exact_pairing(
    client: TestClient, tmp_path: Path
) -> None:
    """A bundle built with its indexes serves buddies through the listener index (saved in
    ``listeners/`` and described in the metadata); they are the exact pairing's."""
    model, train = fit("als")
    built = ModelBundle.build(
        model, train, items_meta(), BundleMeta(model_type="als"), index_config=IndexConfig()
    )
    assert built.listeners is not None and built.meta.listeners is not None
    assert built.meta.listeners["recall_at_10"] >= 0.95
    built.save(tmp_path / "bundle")
    assert (tmp_path / "bundle" / "listeners" / "listeners.json").is_file()
    app = create_app(make_settings(tmp_path / "home"), tmp_path / "bundle")
    with TestClient(app) as indexed:
        for user in [str(u) for u in built.users.ids]:
            got = indexed.get(f"/v1/users/{user}/buddies", params={"k": 3})
            want = client.get(f"/v1/users/{user}/buddies", params={"k": 3})
            assert got.status_code == want.status_code == 200
            assert got.json() == want.json()
        seeds = {"seeds": ["Alpha", "Gamma"], "k": 2}
        assert (
            indexed.post("/v1/buddies", json=seeds).json()
            == client.post("/v1/buddies", json=seeds).json()
        )
