"""The dashboard under AppTest, against a fake API on loopback."""

from __future__ import annotations

import json

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from tests.ui.fake_api import FakeApi, not_found
from tests.ui.pages import page

TIMEOUT = 20


def _page(url: str) -> AppTest:
    return AppTest.from_function(page, args=(url, "dashboard"), default_timeout=TIMEOUT).run()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at: AppTest) -> list[object]:
    return list(at.get("vega_lite_chart"))


def _chart(at: AppTest, title: str) -> dict[str, list[object]]:
    """The data a chart of that title draws (its Arrow table, by column)."""
    for chart in at.get("vega_lite_chart"):
        proto = chart.proto  # type: ignore[attr-defined]
        if json.loads(proto.spec).get("title") == title:
            (dataset,) = proto.datasets
            return dict(pa.ipc.open_stream(dataset.data.data).read_all().to_pydict())
    raise AssertionError(f"no chart titled {title!r}")


def test_every_section_renders_with_charts(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    assert not at.exception
    assert [h.value for h in at.header] == ["Dataset", "Model", "Live service", "Listeners"]
    figures = _metrics(at)
    assert figures["Listeners"] == "1,892" and figures["Artists"] == "17,632"
    assert figures["Serving version"] == "7"
    assert figures["Requests (total)"] == "45"
    # 3 popular_fallback answers of 60 (the 12 mood answers to new listeners are not fallbacks,
    # though the service counts them as unknown_user fallbacks)
    assert figures["Answered by popularity"] == "5.0%"
    assert figures["Events received"] == "12"  # counters under a label, no raw dump
    assert not any("setlist_" in c.value or "_created" in c.value for c in at.caption)
    assert figures["Model type"] == "ALS"
    kind = next(m for m in at.metric if m.label == "Model type")
    assert kind.help == "ALS (matrix factorisation)"
    assert figures["Request rate"] == "n/a"  # one scrape: no rate yet
    assert figures["Latency p50 / p99"].endswith("ms")
    # 3 distributions, top artists, top tags, ndcg by version, routes, arms,
    # organic/recommended, moods over time, new listeners' artists and playlists, events by type
    assert len(_charts(at)) == 13
    assert _chart(at, "Most recommended to new listeners")["name"] == ["Beta"]
    assert _chart(at, "Playlists most recommended to new listeners") == {
        "name": ["Alpha and friends", "Beta beats"],
        "count": [2.0, 1.0],
    }
    assert "shown a playlist" in _chart(at, "What listeners did")["name"]
    versions = at.dataframe[-1].value
    assert list(versions["version"]) == ["7", "6"]
    assert list(versions["Ranking quality (top 10)"]) == [0.21, 0.19]
    # every figure is labelled for a person: no raw metric keys in the tables
    for frame in at.dataframe:
        for column in frame.value.columns:
            assert "@" not in str(column) and "_" not in str(column), column
    measures = list(at.dataframe[0].value["measure"])
    assert measures and not any("@" in m for m in measures)


def test_fallback_rate_of_an_older_service_without_answer_counts() -> None:
    from setlist.ui.promtext import parse
    from tests.ui.fake_api import METRICS

    old = "\n".join(line for line in METRICS.splitlines() if "setlist_recommendations" not in line)
    assert parse(old, 0.0).fallback_rate == 0.1  # 4 fallbacks over 40 recommendation requests


def test_request_rate_after_a_refresh(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)
    at.button(key="dashboard-refresh").click().run()
    assert _metrics(at)["Request rate"] == "0.0/s"  # the fake's counters do not move


def test_older_api_degrades_section_by_section(fake_api: FakeApi) -> None:
    for route in ("/v1/stats", "/v1/stats/events", "/v1/models"):
        fake_api.routes[("GET", route)] = not_found
    at = _page(fake_api.url)
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "does not offer /v1/stats yet" in infos
    assert "does not offer /v1/stats/events yet" in infos
    assert _metrics(at)["Serving version"] == "7"  # the rest still renders
    assert len(_charts(at)) == 2  # routes and arms from /metrics


def test_no_events_yet_is_a_hint(fake_api: FakeApi) -> None:
    fake_api.routes[("GET", "/v1/stats/events")] = lambda r: (200, {"events": 0})
    at = _page(fake_api.url)
    assert any("No events yet" in i.value for i in at.info)


def test_unreachable_api_is_one_message_per_section(dead_url: str) -> None:
    at = _page(dead_url)
    assert not at.exception
    assert len(at.error) == 4
    assert all("Cannot reach the setlist API" in e.value for e in at.error)


def test_the_audit_trail_shows_with_an_admin_key_only(fake_api: FakeApi) -> None:
    at = _page(fake_api.url)  # the fake answers 404: no admin route for this app's key
    assert "Audit" not in [h.value for h in at.header]
    entry = {
        "at": "2026-12-05T15:00:00+00:00",
        "actor": "ops",
        "action": "admin.promote",
        "target": "artists",
        "source": "10.0.0.9",
        "outcome": "ok: champion 6 -> 7",
    }
    fake_api.routes[("GET", "/v1/admin/audit")] = lambda r: (200, {"entries": [entry]})
    at = _page(fake_api.url)
    assert [h.value for h in at.header][-1] == "Audit"
    assert list(at.dataframe[-1].value["action"]) == ["admin.promote"]


def test_listening_on_organic_playlists_is_drawn_once_there_is_some(fake_api: FakeApi) -> None:
    _, events = fake_api.routes[("GET", "/v1/stats/events")](None)  # type: ignore[arg-type]
    plays = [
        {"day": "2026-12-01", "name": "organic playlists", "count": 3},
        {"day": "2026-12-01", "name": "the rest", "count": 9},
    ]
    fake_api.routes[("GET", "/v1/stats/events")] = lambda r: (
        200,
        {**events, "playlist_listening": plays},
    )
    at = _page(fake_api.url)
    assert not at.exception
    assert len(_charts(at)) == 14  # the thirteen above and organic playlists vs the rest
    assert _chart(at, "Listening on organic playlists vs the rest")["count"] == [3, 9]


def test_an_older_api_without_playlist_figures_says_so(fake_api: FakeApi) -> None:
    _, events = fake_api.routes[("GET", "/v1/stats/events")](None)  # type: ignore[arg-type]
    older = {k: v for k, v in events.items() if k != "new_listener_playlists"}
    fake_api.routes[("GET", "/v1/stats/events")] = lambda r: (200, older)
    at = _page(fake_api.url)
    assert not at.exception
    assert "Playlists most recommended to new listeners: no data yet" in [
        c.value for c in at.caption
    ]
    assert len(_charts(at)) == 12
