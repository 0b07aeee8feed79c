"""The "Continue a playlist" page under AppTest, against a fake API on loopback."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from setlist.ui.playlist import spotify_url
from tests.ui.fake_api import FakeApi, not_found
from tests.ui.pages import page
from tests.ui.texts import texts

TIMEOUT = 20


def _page(url: str) -> AppTest:
    at = AppTest.from_function(page, args=(url, "playlist"), default_timeout=TIMEOUT)
    return at.run()


def _keys(at: AppTest, prefix: str) -> list[str]:
    return [str(b.key) for b in at.button if str(b.key).startswith(prefix)]


def test_spotify_url_from_track_uri() -> None:
    assert spotify_url("spotify:track:0UaMYEvWZi0ZqiDOoHU3YI") == (
        "https://open.spotify.com/track/0UaMYEvWZi0ZqiDOoHU3YI"
    )
    assert spotify_url("t:1") is None
    assert spotify_url("spotify:track:") is None
    assert spotify_url("spotify:track:x/../y") is None  # never a link elsewhere


def test_search_add_continue_keep_continue_again(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    assert not at.exception
    assert "Add a few tracks" in texts(at)
    assert not fake_api.sent("POST", "/v1/playlists/continue")  # nothing to continue yet

    at.text_input(key="pl_query").input("missy").run()
    assert fake_api.sent("GET", "/v1/tracks/search")[-1].query["q"] == ["missy"]
    add = at.button(key="pl-add-spotify:track:1AbC")
    assert add.label == "Add Lose Control by Missy Elliott"
    add.click().run()
    assert at.button(key="pl-add-spotify:track:1AbC").disabled  # already in the list
    text = texts(at)
    assert "Your playlist (1 track)" in text
    assert "[Lose Control](https://open.spotify.com/track/1AbC) · Missy Elliott" in text

    at.text_input(key="pl_name").input("throwbacks").run()
    at.button(key="pl_continue").click().run()
    assert not at.exception
    body = fake_api.sent("POST", "/v1/playlists/continue")[-1].body
    assert body == {"name": "throwbacks", "tracks": ["spotify:track:1AbC"], "k": 10}
    text = texts(at)
    assert "[Toxic](https://open.spotify.com/track/2DeF) · Britney Spears" in text
    assert "Because of Lose Control" in text
    assert "From the tracks in your playlist" in text and "strategy" not in text
    assert "Not on Spotify \\[demo\\] · Local" in text  # no link, name escaped
    assert _keys(at, "pl-keep-") == [
        "pl-keep-spotify:track:2DeF", "pl-keep-spotify:track:3GhI",
        "pl-keep-spotify:track:4JkL", "pl-keep-t:1",
    ]  # fmt: skip

    asked = len(fake_api.sent("POST", "/v1/playlists/continue"))
    at.button(key="pl-keep-spotify:track:2DeF").click().run()
    at.button(key="pl-keep-spotify:track:4JkL").click().run()
    # Keeping does not ask again: the answer stays while the listener picks from it.
    assert len(fake_api.sent("POST", "/v1/playlists/continue")) == asked
    assert at.button(key="pl-keep-spotify:track:2DeF").disabled
    assert at.button(key="pl-keep-spotify:track:2DeF").label == "Kept"
    assert "Your playlist (3 tracks)" in texts(at)

    assert at.button(key="pl_continue").label == "Continue again"
    at.button(key="pl_continue").click().run()
    body = fake_api.sent("POST", "/v1/playlists/continue")[-1].body
    assert body["tracks"] == ["spotify:track:1AbC", "spotify:track:2DeF", "spotify:track:4JkL"]
    assert _keys(at, "pl-keep-") == ["pl-keep-spotify:track:3GhI", "pl-keep-t:1"]

    at.button(key="pl-remove-spotify:track:2DeF").click().run()
    assert "Your playlist (2 tracks)" in texts(at)


def test_name_only_and_unknown_tracks(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.text_input(key="pl_name").input("summer").run()
    at.button(key="pl_continue").click().run()
    body = fake_api.sent("POST", "/v1/playlists/continue")[-1].body
    assert body == {"name": "summer", "tracks": [], "k": 10}
    assert "Often in playlists named like yours" in texts(at)


def test_start_from_a_dataset_playlist(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.text_input(key="pl_pid").input("7").run()
    at.button(key="pl_load").click().run()
    assert not at.exception
    assert at.text_input(key="pl_name").value == "Road trip"
    assert "Your playlist (1 track)" in texts(at)
    at.button(key="pl_continue").click().run()
    body = fake_api.sent("POST", "/v1/playlists/continue")[-1].body
    assert body == {"name": "Road trip", "tracks": ["t:1"], "k": 10}

    at.text_input(key="pl_pid").input("99").run()
    at.button(key="pl_load").click().run()
    assert "Not found: no playlist 99" in texts(at)
    assert "Your playlist (1 track)" in texts(at)  # the list is left as it was


def test_an_api_without_playlists_says_so(fake_api: FakeApi) -> None:
    fake_api.routes[("GET", "/v1/tracks/search")] = not_found
    fake_api.routes[("POST", "/v1/playlists/continue")] = not_found
    at = _page(fake_api.url)
    at.text_input(key="pl_query").input("toxic").run()
    assert "does not offer /v1/tracks/search yet" in texts(at)
    at.text_input(key="pl_name").input("x").run()
    at.button(key="pl_continue").click().run()
    assert not at.exception
    assert "does not offer /v1/playlists/continue yet" in texts(at)
