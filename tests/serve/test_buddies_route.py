"""GET /v1/users/{user_id}/buddies on the tiny test bundle."""

from __future__ import annotations

from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle


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
