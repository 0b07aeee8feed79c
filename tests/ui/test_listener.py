"""The listener's page under AppTest, against a fake API on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from setlist.config import get_settings
from tests.ui.fake_api import FakeApi, not_found, unavailable
from tests.ui.pages import page
from tests.ui.texts import texts

TIMEOUT = 20


def _page(url: str, timeout_s: float = 5.0) -> AppTest:
    at = AppTest.from_function(page, args=(url, "listener", timeout_s), default_timeout=TIMEOUT)
    return at.run()


def test_mood_artist_recommendations_and_like(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    assert not at.exception
    assert at.radio(key="mood").options == ["any mood", "chill", "party"]
    at.radio(key="mood").set_value("chill").run()
    picker = at.selectbox(key="artist_pick")
    assert picker.options == ["Alpha", "Beta", "Gamma", "Ex [live]"]  # type-ahead, in the browser
    picker.select("a").run()
    assert not at.exception
    assert at.selectbox(key="artist_pick").value is None  # ready for the next artist
    body = fake_api.sent("POST", "/v1/recommendations")[-1].body
    assert body["seeds"] == ["a"] and body["mood"] == "chill"
    text = texts(at)
    assert "[Beta](https://example.org/b)" in text  # the link comes from the catalogue
    assert "Because you like Alpha" in text
    assert "Ex \\[live\\]" in text  # names are escaped, not read as markdown
    impressions = fake_api.sent("POST", "/v1/events")[-1].body["events"]
    assert {e["type"] for e in impressions} == {"impression"}

    at.button(key="like-b").click().run()
    like = fake_api.sent("POST", "/v1/events")[-1].body["events"][0]
    assert like["type"] == "like" and like["item_id"] == "b" and like["position"] == 0
    assert like["user_id"].startswith("ui-") and like["arm"] == "A"
    body = fake_api.sent("POST", "/v1/recommendations")[-1].body
    assert body["seeds"] == ["a", "b"] and "b" in body["exclude"]
    # the confirmation is a toast: it shows wherever the listener scrolled to
    assert [t.value for t in at.toast] == ["Liked Beta: your list is updated."]
    assert "Liked: Beta" in texts(at)
    assert not any(b.key == "like-b" for b in at.button)
    text = texts(at)
    assert "Chosen from the artists you picked for a chill mood" in text
    for jargon in ("strategy", "onboarding", "arm", "Model 7"):
        assert jargon not in text, jargon
    # the picks are chips (x removes one), not "Remove" buttons
    assert at.multiselect(key="picks").value == ["a"]
    assert not any(b.label.startswith("Remove") for b in at.button)
    at.multiselect(key="picks").unselect("a").run()
    assert not at.exception and at.session_state["seeds"] == {}
    assert not any(m.key == "picks" for m in at.multiselect)


def test_a_mood_reason_says_the_mood_chose_the_item(fake_api: FakeApi) -> None:
    def moody(req):  # type: ignore[no-untyped-def]
        from tests.ui.fake_api import onboard

        status, body = onboard(req)
        mood = {"item_id": "", "name": "chill", "contribution": 0.8, "kind": "mood"}
        body["items"][0]["because"].insert(0, mood)
        faint = {"item_id": "a", "name": "Alpha", "contribution": 0.01}
        body["items"][1]["because"] = [mood, faint]  # too faint to name beside the mood
        return status, body

    fake_api.routes[("POST", "/v1/recommendations")] = moody
    at = _page(fake_api.url)
    at.radio(key="mood").set_value("chill").run()
    at.selectbox(key="artist_pick").select("a").run()
    captions = [c.value for c in at.caption]
    assert "Picked by the chill mood · also close to Alpha" in captions
    assert "Picked by the chill mood" in captions
    assert "Because you like chill, Alpha" not in captions


def test_enter_on_typed_text_picks_the_best_match(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    # What the picker's callback stores for text typed and confirmed with Enter (AppTest cannot
    # type a new option into a selectbox; test_picker_callback... checks the callback itself).
    at.session_state["artist_query"] = at.session_state["artist_typed"] = "gam"
    at.run()
    assert not at.exception
    assert at.session_state["seeds"] == {"c": "Gamma"}  # picked, not offered as "Add: gam"
    assert at.multiselect(key="picks").value == ["c"]
    assert fake_api.sent("POST", "/v1/recommendations")[-1].body["seeds"] == ["c"]
    assert not any(b.key == "add-c" for b in at.button)  # the pick is not offered again
    at.run()  # a later run does not pick again
    assert at.session_state["seeds"] == {"c": "Gamma"}


def test_a_name_outside_the_type_ahead_searches_the_catalogue(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    # What the picker's callback stores for text typed and confirmed with Enter (AppTest cannot
    # type a new option into a selectbox).
    at.session_state["artist_query"] = "gam"
    at.run()
    assert not at.exception
    assert any("Other artists matching 'gam'" in c.value for c in at.caption)
    assert fake_api.requests and any(r.query.get("q") == ["gam"] for r in fake_api.requests)
    at.button(key="add-c").click().run()
    assert fake_api.sent("POST", "/v1/recommendations")[-1].body["seeds"] == ["c"]


def test_picker_callback_turns_typed_text_into_a_search() -> None:
    from streamlit.testing.v1 import AppTest as _AppTest

    def script() -> None:
        import streamlit as st

        from setlist.ui.listener import _picked

        st.session_state.setdefault("seeds", {})
        st.session_state["artist_pick"] = st.session_state.get("typed")
        _picked({"a": "Alpha"})
        st.write(repr((st.session_state["seeds"], st.session_state.get("artist_query"))))

    at = _AppTest.from_function(script)
    at.session_state["typed"] = "björ"
    at.run()
    assert at.markdown[0].value == repr(({}, "björ"))
    assert at.session_state["artist_typed"] == "björ"  # the next run picks its best match
    at.session_state["typed"] = "a"
    at.run()
    assert at.markdown[0].value == repr(({"a": "Alpha"}, ""))


def test_mood_only_asks_the_session_users_recommendations(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.radio(key="mood").set_value("party").run()
    asked = [r for r in fake_api.requests if r.path.endswith("/recommendations")]
    assert asked and asked[-1].path.startswith("/v1/users/ui-")
    assert asked[-1].query["mood"] == ["party"]


def test_known_listener_history_and_similar(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.radio(key="mode").set_value("I have a listener id").run()
    at.text_input(key="listener_id").input("42").run()
    assert not at.exception
    text = texts(at)
    assert "Alpha (120 plays)" in text and "Tags: rock" in text
    assert any(s.value == "Similar to Alpha" for s in at.subheader)
    at.button(key="skip-b").click().run()
    event = fake_api.sent("POST", "/v1/events")[-1].body["events"][0]
    assert event["user_id"] == "42" and event["type"] == "skip"
    asked = [r for r in fake_api.requests if r.path == "/v1/users/42/recommendations"]
    assert asked[-1].query["exclude"] == ["b"] and not at.exception


def test_unknown_listener_is_a_message(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.radio(key="mode").set_value("I have a listener id").run()
    at.text_input(key="listener_id").input("nobody").run()
    assert "not in the training data" in texts(at)
    assert not at.exception


def test_unreachable_api_is_a_message(dead_url: str) -> None:
    at = _page(dead_url)
    assert not at.exception
    assert any("Cannot reach the setlist API" in e.value for e in at.error)


def test_slow_api_is_a_message(fake_api: FakeApi) -> None:
    fake_api.delay_s = 1.0
    at = _page(fake_api.url, timeout_s=0.2)
    assert not at.exception
    assert any("is slow" in w.value for w in at.warning)


def test_degraded_api_shows_the_fallback(fake_api: FakeApi) -> None:
    def fallback(req):  # type: ignore[no-untyped-def]
        from tests.ui.fake_api import user_recs

        status, body = user_recs(req)
        return status, {**body, "strategy": "popular_fallback"}

    fake_api.routes[("GET", "/v1/users/*/recommendations")] = fallback
    at = _page(fake_api.url)
    at.radio(key="mood").set_value("chill").run()
    assert any("popular artists, not picks for you" in w.value for w in at.warning)
    assert "Popular with listeners" in texts(at) or "Because you like" in texts(at)


def test_not_ready_api_says_when_to_retry(fake_api: FakeApi) -> None:
    fake_api.routes[("GET", "/v1/moods")] = unavailable
    fake_api.routes[("POST", "/v1/recommendations")] = unavailable
    at = _page(fake_api.url)
    at.selectbox(key="artist_pick").select("a").run()
    assert not at.exception
    assert any("not ready" in w.value and "Retry in 5 s" in w.value for w in at.warning)


def test_older_api_without_moods_or_search_degrades(fake_api: FakeApi) -> None:
    fake_api.routes[("GET", "/v1/moods")] = not_found
    fake_api.routes[("GET", "/v1/catalogue/search")] = not_found
    at = _page(fake_api.url)
    assert at.selectbox(key="artist_pick").options == []  # no type-ahead list from this API
    at.session_state["artist_query"] = "alp"
    at.run()
    assert not at.exception
    text = texts(at)
    assert "offers no moods yet" in text
    assert "does not offer /v1/catalogue/search yet" in text


def test_like_refused_by_the_api_is_a_message(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.selectbox(key="artist_pick").select("a").run()
    fake_api.routes[("POST", "/v1/events")] = unavailable
    at.button(key="like-b").click().run()
    assert any("was not recorded" in e.value for e in at.error)
    assert any(b.key == "like-b" for b in at.button)  # nothing changed locally


def test_whole_app_reads_the_api_url_setting(
    fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    import setlist.ui

    monkeypatch.setenv("SETLIST_UI_API_URL", fake_api.url)
    get_settings.cache_clear()
    try:
        script = Path(setlist.ui.__file__).parent / "streamlit_app.py"
        at = AppTest.from_file(str(script), default_timeout=TIMEOUT).run()
    finally:
        get_settings.cache_clear()
    assert not at.exception
    assert any(fake_api.url in c.value for c in at.sidebar.caption)
    assert any(c.value == "Service ready" for c in at.sidebar.caption)
    assert not any("model" in c.value for c in at.sidebar.caption)
    assert at.title[0].value == "setlist: artists for you"
