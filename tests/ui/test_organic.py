"""The "Playlists from people like you" page under AppTest, against a fake API on loopback."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from setlist.ui.organic import reasons
from tests.ui.fake_api import FakeApi, Request, no_organic_ranker, seed_playlists
from tests.ui.pages import page
from tests.ui.texts import texts

TIMEOUT = 20
SEEDS = "/v1/recommendations/playlists"


def _page(url: str, seeds: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(page, args=(url, "organic"), default_timeout=TIMEOUT)
    at.session_state["anon_id"] = "ui-test"
    if seeds is not None:
        at.session_state["seeds"] = seeds  # what the Listen page's picks leave in the session
    return at.run()


def _names(at: AppTest) -> list[str]:
    """The recommended playlists' names, in order (cards start with the bold name)."""
    return [
        str(m.value)[2:].split("**")[0]
        for m in at.markdown
        if str(m.value).startswith("**") and " follower" in str(m.value)
    ]


def _batches(api: FakeApi) -> list[list[dict]]:
    return [r.body["events"] for r in api.sent("POST", "/v1/events")]


def _impressions(api: FakeApi) -> list[list[dict]]:
    """The batches of playlist_impression events the page sent, in order."""
    batches = [[e for e in b if e["type"] == "playlist_impression"] for b in _batches(api)]
    return [b for b in batches if b]


def _feedback(api: FakeApi) -> list[dict]:
    return [e for b in _batches(api) for e in b if e["type"] != "playlist_impression"]


def test_playlists_of_the_picks_show_their_reasons(fake_api: FakeApi) -> None:
    at = _page(fake_api.url, {"a": "Alpha"})
    assert not at.exception
    asked = fake_api.sent("POST", SEEDS)
    assert asked and asked[-1].body == {"seeds": ["a"], "k": 10, "serendipity": 0.3}
    assert _names(at) == ["Alpha and friends", "Beta beats", "Gamma nights", "Ex live"]
    text = texts(at)
    assert "**Alpha and friends** · 1,200 followers · 30 tracks" in text
    assert "**Beta beats** · 1 follower · 12 tracks" in text
    assert "You know: Alpha, Beta · New to you: Gamma · Loved by 2 of your taste buddies" in text
    assert "New to you: Gamma, Ex \\[live\\] · Loved by one of your taste buddies" in text


def test_follow_and_skip_send_events_and_change_the_list(fake_api: FakeApi) -> None:
    at = _page(fake_api.url, {"a": "Alpha"})
    at.button(key="organic-skip-p2").click().run()
    assert not at.exception
    (skip,) = _feedback(fake_api)
    assert skip["type"] == "playlist_skip" and skip["playlist_id"] == "p2"
    assert skip["user_id"] == "ui-test" and skip["item_id"] == "p2" and skip["position"] == 1
    assert skip["arm"] == "ranker" and skip["model_version"] == "v3"
    assert _names(at) == ["Alpha and friends", "Gamma nights", "Ex live"]
    assert [t.value for t in at.toast] == ["Skipped Beta beats: it will not come back."]
    # the list asks for more, so that it stays full with the skipped one set aside
    assert fake_api.sent("POST", SEEDS)[-1].body["k"] == 11

    at.button(key="organic-follow-p1").click().run()
    follow = _feedback(fake_api)[-1]
    assert follow["type"] == "playlist_follow" and follow["playlist_id"] == "p1"
    assert follow["position"] == 0
    assert _names(at) == ["Gamma nights", "Ex live"]
    assert [s.value for s in at.subheader] == ["Followed", "For you"]
    assert "✓ **Alpha and friends** · 1,200 followers · 30 tracks" in texts(at)
    assert fake_api.sent("POST", SEEDS)[-1].body["k"] == 12


def test_a_refused_event_leaves_the_list_as_it_was(fake_api: FakeApi) -> None:
    at = _page(fake_api.url, {"a": "Alpha"})
    fake_api.routes[("POST", "/v1/events")] = lambda r: (
        404,
        {"error": {"code": "not_found", "message": "unknown playlist 'p2'"}},
    )
    at.button(key="organic-skip-p2").click().run()
    assert "Your skip of Beta beats was not recorded" in texts(at)
    assert "Beta beats" in _names(at)


def test_the_slider_changes_the_request_and_the_order(fake_api: FakeApi) -> None:
    at = _page(fake_api.url, {"a": "Alpha"})
    slider = at.select_slider(key="organic_serendipity")
    assert slider.value == 0.3 and slider.format_func(0.3) == "Mostly familiar"
    slider.set_value(0.7).run()
    assert not at.exception
    assert fake_api.sent("POST", SEEDS)[-1].body["serendipity"] == 0.7
    assert _names(at)[0] == "Ex live"


def test_a_known_listener_by_id(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    assert "here are the most followed playlists" in texts(at)
    assert fake_api.sent("POST", SEEDS)[-1].body["seeds"] == []
    at.radio(key="organic_mode").set_value("I have a listener id").run()
    at.text_input(key="organic_user").input("42").run()
    assert not at.exception
    asked = fake_api.sent("GET", "/v1/users/42/playlists")[-1]
    assert asked.query == {"k": ["10"], "serendipity": ["0.3"]}
    at.button(key="organic-follow-p3").click().run()
    follow = _feedback(fake_api)[-1]
    assert follow["type"] == "playlist_follow" and follow["user_id"] == "42"
    # the known listener's cards were logged as theirs, once, beside the new listener's
    assert [{e["user_id"] for e in b} for b in _impressions(fake_api)] == [{"ui-test"}, {"42"}]
    at.text_input(key="organic_user").input("nobody").run()
    assert "not in the training data" in texts(at)


def test_the_cards_shown_are_logged_once_a_session(fake_api: FakeApi) -> None:
    at = _page(fake_api.url, {"a": "Alpha"})
    assert not at.exception
    (batch,) = _impressions(fake_api)
    assert [e["playlist_id"] for e in batch] == ["p1", "p2", "p3", "p4"]
    assert [e["item_id"] for e in batch] == ["p1", "p2", "p3", "p4"]
    assert [e["position"] for e in batch] == [0, 1, 2, 3]
    assert {(e["user_id"], e["arm"], e["model_version"]) for e in batch} == {
        ("ui-test", "ranker", "v3")
    }
    assert not any("propensity" in e for e in batch)  # the answer carries none
    assert len({e["event_id"] for e in batch}) == 4
    # reruns, the slider (the same playlists in another order), a skip: nothing shown anew
    at.run()
    at.select_slider(key="organic_serendipity").set_value(0.7).run()
    at.button(key="organic-skip-p2").click().run()
    assert not at.exception
    assert len(_impressions(fake_api)) == 1
    assert [e["type"] for e in _feedback(fake_api)] == ["playlist_skip"]

    # a new ranker version shows them anew, with the propensity its answer carries
    def newer(req: Request) -> tuple[int, dict]:
        _, answer = seed_playlists(req)
        items = [{**p, "propensity": 0.25} for p in answer["items"]]
        return 200, {**answer, "version": "v4", "items": items}

    fake_api.routes[("POST", SEEDS)] = newer
    at.run()
    assert not at.exception
    again = _impressions(fake_api)[-1]
    assert len(_impressions(fake_api)) == 2
    assert [e["playlist_id"] for e in again] == ["p4", "p3", "p1"]  # p2 was skipped
    assert {(e["model_version"], e["propensity"]) for e in again} == {("v4", 0.25)}


def test_a_failure_to_log_impressions_leaves_the_page_whole(fake_api: FakeApi) -> None:
    fake_api.routes[("POST", "/v1/events")] = lambda r: (
        503,
        {"error": {"code": "unavailable", "message": "the event store is not available"}},
    )
    at = _page(fake_api.url, {"a": "Alpha"})
    assert not at.exception and not at.error
    assert len(_impressions(fake_api)) == 1  # tried once
    assert _names(at) == ["Alpha and friends", "Beta beats", "Gamma nights", "Ex live"]
    at.run()
    assert len(_impressions(fake_api)) == 1  # not retried on every rerun


def test_without_a_trained_ranker_the_page_says_how_to_train_it(fake_api: FakeApi) -> None:
    fake_api.routes[("POST", SEEDS)] = no_organic_ranker
    at = _page(fake_api.url, {"a": "Alpha"})
    assert not at.exception
    (warning,) = at.warning
    assert "`setlist organic train`" in str(warning.value)
    assert not at.button


def test_reasons_in_words() -> None:
    many = [{"item_id": str(i), "name": f"A{i}"} for i in range(6)]
    assert reasons({"familiar": many, "new": [], "buddies": []}) == (
        "You know: A0, A1, A2, A3 and 2 more"
    )
    assert reasons({"familiar": [], "new": [], "buddies": []}) == (
        "One of the most followed playlists"
    )
