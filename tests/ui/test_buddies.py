"""The "Your taste buddies" page under AppTest, against a fake API on loopback."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.ui.fake_api import FakeApi
from tests.ui.pages import page
from tests.ui.texts import texts

TIMEOUT = 20


def _page(url: str, seeds: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(page, args=(url, "buddies"), default_timeout=TIMEOUT)
    if seeds is not None:
        at.session_state["seeds"] = seeds  # what the Listen page's picks leave in the session
    return at.run()


def test_buddies_of_the_picks_show_shared_and_discoveries(fake_api: FakeApi) -> None:
    at = _page(fake_api.url, {"a": "Alpha"})
    assert not at.exception
    asked = [r for r in fake_api.requests if r.path == "/v1/buddies"]
    assert asked and asked[-1].body["seeds"] == ["a"]
    text = texts(at)
    assert "**Listener 7** · 62% alike" in text and "**Listener 8** · 41% alike" in text
    assert "You both love: Alpha" in text
    # a discovery joins the picks: the request and the list follow it at once
    at.button(key="buddy-add-7-b").click().run()
    assert at.session_state["seeds"] == {"a": "Alpha", "b": "Beta"}
    asked = [r for r in fake_api.requests if r.path == "/v1/buddies"]
    assert asked[-1].body["seeds"] == ["a", "b"]
    assert [t.value for t in at.toast] == ["Added Beta to your picks."]
    assert "You both love: Alpha, Beta" in texts(at)


def test_without_picks_the_page_says_how_to_start(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    assert not at.exception
    assert "Pick a few artists you like on the Listen page" in texts(at)
    assert not any(r.path == "/v1/buddies" for r in fake_api.requests)


def test_a_known_listener_by_id(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.radio(key="buddies_mode").set_value("I have a listener id").run()
    at.text_input(key="buddies_user").input("42").run()
    assert not at.exception
    text = texts(at)
    assert "**Listener 7** · 50% alike" in text and "You both love: Alpha" in text
    assert "Gamma" in text and not any(b.key and b.key.startswith("buddy-add") for b in at.button)
    at.text_input(key="buddies_user").input("nobody").run()
    assert "not in the training data" in texts(at)
