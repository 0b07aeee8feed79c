"""A stand-in for setlist's HTTP API on a loopback port: canned answers, recorded requests.

A real HTTP server (not a mock of the client) so the app's client, timeouts and error handling
are exercised as in production; each test changes ``routes`` to make the API slow, degraded,
not ready, or older than the app (routes missing).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Answer = tuple[int, Any]  # status, JSON body (or str for text)
Route = Callable[["Request"], Answer]

ARTISTS = {
    "a": ("Alpha", "https://example.org/a", 4),
    "b": ("Beta", "https://example.org/b", 3),
    "c": ("Gamma", "", 2),
    "x": ("Ex [live]", "https://example.org/x", 3),
}
METRICS = """\
# TYPE setlist_http_requests_total counter
setlist_http_requests_total{arm="A",method="GET",route="/v1/recommendations",status="200"} 30.0
setlist_http_requests_total{arm="B",method="GET",route="/v1/recommendations",status="200"} 10.0
setlist_http_requests_total{arm="none",method="GET",route="/health",status="200"} 5.0
# TYPE setlist_http_request_duration_seconds histogram
setlist_http_request_duration_seconds_bucket{arm="A",le="0.001",route="/x"} 10.0
setlist_http_request_duration_seconds_bucket{arm="A",le="0.01",route="/x"} 40.0
setlist_http_request_duration_seconds_bucket{arm="A",le="+Inf",route="/x"} 45.0
setlist_http_request_duration_seconds_count{arm="A",route="/x"} 45.0
setlist_http_request_duration_seconds_sum{arm="A",route="/x"} 0.2
# TYPE setlist_recommendation_fallbacks_total counter
setlist_recommendation_fallbacks_total{arm="A",reason="unknown_user"} 4.0
# TYPE setlist_recommendations_total counter
setlist_recommendations_total{arm="A",catalogue="artists",strategy="personalized"} 45.0
setlist_recommendations_total{arm="A",catalogue="artists",strategy="mood"} 12.0
setlist_recommendations_total{arm="A",catalogue="artists",strategy="popular_fallback"} 3.0
# TYPE setlist_events_received_total counter
setlist_events_received_total 12.0
setlist_events_received_created 1.7964592970e+09
"""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


def _item(item_id: str, because: list[str]) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "name": ARTISTS[item_id][0],
        "score": 0.5,
        "because": [{"item_id": b, "name": ARTISTS[b][0], "contribution": 0.3} for b in because],
    }


def _slate(exclude: list[str], seeds: list[str]) -> list[dict[str, Any]]:
    return [_item(i, seeds[:1]) for i in ARTISTS if i not in exclude and i not in seeds]


def onboard(req: Request) -> Answer:
    body = req.body
    items = _slate(body.get("exclude", []), body["seeds"])
    answer = {"model_version": "7", "strategy": "onboarding", "arm": "A", "mood": body.get("mood")}
    return 200, {**answer, "seeds": body["seeds"], "unknown_seeds": [], "items": items}


def user_recs(req: Request) -> Answer:
    user = unquote(req.path.split("/")[3])
    exclude = req.query.get("exclude", [])
    return 200, {
        "user_id": user,
        "model_version": "7",
        "strategy": "personalized",
        "arm": "A",
        "mood": next(iter(req.query.get("mood", [])), None),
        "items": _slate(exclude, ["a"]),
    }


TRACKS = {
    "spotify:track:1AbC": ("Lose Control", "Missy Elliott"),
    "spotify:track:2DeF": ("Toxic", "Britney Spears"),
    "spotify:track:3GhI": ("Crazy In Love", "Beyonce"),
    "spotify:track:4JkL": ("Hey Ya!", "OutKast"),
    "t:1": ("Not on Spotify [demo]", "Local"),
}


def continue_playlist(req: Request) -> Answer:
    """The catalogue's tracks not in the list, in order; each because of the list's first."""
    body = req.body
    tracks = body.get("tracks") or []
    known = [t for t in tracks if t in TRACKS]
    first = [{"item_id": known[0], "name": TRACKS[known[0]][0]}] if known else []
    items = [
        {"item_id": i, "name": n, "artist": a, "score": 1.0 / (r + 1), "because": first}
        for r, (i, (n, a)) in enumerate((i, v) for i, v in TRACKS.items() if i not in tracks)
    ][: body.get("k", 10)]
    strategy = "tracks" if known else "title"
    return 200, {"items": items, "strategy": strategy, "model_version": "3",
                 "unknown_tracks": [t for t in tracks if t not in TRACKS]}  # fmt: skip


# playlist id, name, followers, tracks, familiar, new, buddies: in order at low serendipity
ORGANIC = [
    ("p1", "Alpha and friends", 1200, 30, ["a", "b"], ["c"], ["7", "8"]),
    ("p2", "Beta beats", 1, 12, ["b"], [], []),
    ("p3", "Gamma nights", 40, 25, [], ["c", "x"], ["7"]),
    ("p4", "Ex live", 5, 8, [], ["x"], []),
]


def organic(k: int, serendipity: float) -> Answer:
    """The playlists above, the most discovering first from serendipity 0.5 on."""
    rows = ORGANIC if serendipity < 0.5 else ORGANIC[::-1]

    def refs(ids: list[str]) -> list[dict[str, str]]:
        return [{"item_id": i, "name": ARTISTS[i][0]} for i in ids]

    items = [
        {"playlist_id": pid, "name": name, "num_followers": followers, "num_tracks": tracks,
         "because": {"familiar": refs(known), "new": refs(new), "buddies": buddies}}
        for pid, name, followers, tracks, known, new, buddies in rows
    ][:k]  # fmt: skip
    return 200, {"version": "v3", "champion": "ranker", "items": items}


def user_playlists(req: Request) -> Answer:
    user = unquote(req.path.split("/")[3])
    if user != "42":
        return 404, {"error": {"code": "not_found", "message": "unknown listener",
                               "field": "user_id"}}  # fmt: skip
    k, serendipity = req.query.get("k", ["10"])[0], req.query.get("serendipity", ["0.3"])[0]
    return organic(int(k), float(serendipity))


def seed_playlists(req: Request) -> Answer:
    return organic(int(req.body.get("k", 10)), float(req.body.get("serendipity", 0.3)))


def no_organic_ranker(_: Request) -> Answer:
    message = "no organic playlist ranker under organic_dir /h (run `setlist organic train`)"
    return 503, {"error": {"code": "unavailable", "message": message, "field": "organic_dir"}}


def default_routes() -> dict[tuple[str, str], Route]:
    moods = [
        {"name": "chill", "description": "Laid-back", "tags": ["chill"], "artists": 3},
        {"name": "party", "description": "Dance floor", "tags": ["party"], "artists": 3},
    ]
    stats = {
        "model_version": "7",
        "listeners": 1892,
        "artists": 17632,
        "interactions": 92834,
        "plays": 70_000_000.0,
        "density": 0.0028,
        "plays_per_interaction": [
            {"low": 1, "high": 9, "count": 50},
            {"low": 10, "high": 99, "count": 20},
        ],
        "artists_per_listener": [{"low": 5, "high": 50, "count": 1892}],
        "listeners_per_artist": [{"low": 1, "high": 3, "count": 9000}],
        "top_artists": [{"item_id": "a", "name": "Alpha", "url": None, "listeners": 611}],
        "top_tags": [{"name": "rock", "count": 900.0}],
    }
    events = {
        "events": 12,
        "by_type": [
            {"name": "listen", "count": 6.0},
            {"name": "impression", "count": 3.0},
            {"name": "playlist_impression", "count": 3.0},
        ],
        "listening": [
            {"day": "2026-11-22", "name": "organic", "count": 4},
            {"day": "2026-11-23", "name": "recommended", "count": 2},
        ],
        "new_listener_recommendations": [{"name": "Beta", "count": 3.0}],
        "new_listener_playlists": [
            {"name": "Alpha and friends", "count": 2.0},
            {"name": "Beta beats", "count": 1.0},
        ],
        "moods": [{"day": "2026-11-22", "name": "chill", "count": 2}],
    }
    model = {
        "version": "7",
        "model_type": "als",
        "params": {},
        "metrics": {"ndcg@10": 0.21},
        "data_fingerprint": "fp",
        "trained_at": "2026-11-20T10:00:00Z",
    }
    versions = {
        "served": "7",
        "versions": [
            {"version": "7", "aliases": ["champion"], "model_type": "als",
             "metrics": {"ndcg@10": 0.21}, "created_at": "2026-11-20T10:00:00Z"},
            {"version": "6", "aliases": [], "model_type": "ease",
             "metrics": {"ndcg@10": 0.19}, "created_at": "2026-11-19T10:00:00Z"},
        ],
    }  # fmt: skip

    def search(req: Request) -> Answer:
        q = req.query.get("q", [""])[0].lower()
        found = [
            {"item_id": i, "name": n, "url": u or None, "listeners": c}
            for i, (n, u, c) in ARTISTS.items()
            if q in n.lower()
        ]
        return 200, {"query": q, "items": found}

    def artists(req: Request) -> Answer:
        ids = req.query.get("item_id", [])
        found = [
            {"item_id": i, "name": ARTISTS[i][0], "url": ARTISTS[i][1] or None, "listeners": 1}
            for i in ids
            if i in ARTISTS
        ]
        return 200, {"items": found}

    def history(req: Request) -> Answer:
        user = unquote(req.path.split("/")[3])
        if user != "42":
            return 404, {
                "error": {"code": "not_found", "message": "unknown listener", "field": "user_id"}
            }
        top = [{"name": "Alpha", "count": 120.0, "item_id": "a"}]
        tags = [{"name": "rock", "count": 0.8}]
        return 200, {
            "user_id": user,
            "artists": 50,
            "plays": 3000.0,
            "top_artists": top,
            "top_tags": tags,
        }

    def search_tracks(req: Request) -> Answer:
        q = req.query.get("q", [""])[0].lower()
        limit = int(req.query.get("limit", ["8"])[0])
        found = [
            {"item_id": i, "name": n, "artist": a}
            for i, (n, a) in TRACKS.items()
            if q in n.lower() or q in a.lower()
        ]
        return 200, {"query": q, "items": found[:limit]}

    def buddies_of(req: Request) -> Answer:
        user = unquote(req.path.split("/")[3])
        if user != "42":
            return 404, {
                "error": {"code": "not_found", "message": "unknown listener", "field": "user_id"}
            }
        ref = {"item_id": "a", "name": "Alpha"}
        return 200, {"items": [{"user_id": "7", "similarity": 0.5, "shared": [ref],
                                "discoveries": [{"item_id": "c", "name": "Gamma"}]}]}  # fmt: skip

    def seed_buddies(req: Request) -> Answer:
        """Two buddies: both heard the seeds; each loves one of the other artists."""
        seeds = req.body["seeds"]
        shared = [{"item_id": i, "name": ARTISTS[i][0]} for i in seeds if i in ARTISTS]
        rest = [{"item_id": i, "name": ARTISTS[i][0]} for i in ARTISTS if i not in seeds]
        items = [
            {"user_id": user, "similarity": sim, "shared": shared, "discoveries": rest[n : n + 1]}
            for n, (user, sim) in enumerate([("7", 0.62), ("8", 0.41)])
        ]
        return 200, {"items": items, "seeds": [s["item_id"] for s in shared],
                     "unknown_seeds": [i for i in seeds if i not in ARTISTS]}  # fmt: skip

    def playlist(req: Request) -> Answer:
        pid = unquote(req.path.split("/")[3])
        if pid != "7":
            return 404, {"error": {"code": "not_found", "message": f"no playlist {pid}",
                                   "field": "pid"}}  # fmt: skip
        tracks = [{"item_id": i, "name": TRACKS[i][0], "artist": TRACKS[i][1]} for i in ("t:1",)]
        return 200, {"pid": 7, "name": "Road trip", "tracks": tracks}

    return {
        ("GET", "/v1/tracks/search"): search_tracks,
        ("POST", "/v1/playlists/continue"): continue_playlist,
        ("GET", "/v1/playlists/*"): playlist,
        ("GET", "/ready"): lambda r: (200, {"status": "ready", "model_version": "7"}),
        ("GET", "/v1/moods"): lambda r: (200, {"model_version": "7", "moods": moods}),
        ("GET", "/v1/catalogue/search"): search,
        ("GET", "/v1/catalogue/artists"): artists,
        ("POST", "/v1/recommendations"): onboard,
        ("GET", "/v1/users/*/recommendations"): user_recs,
        ("GET", "/v1/users/*/history"): history,
        ("GET", "/v1/users/*/buddies"): buddies_of,
        ("POST", "/v1/buddies"): seed_buddies,
        ("GET", "/v1/users/*/playlists"): user_playlists,
        ("POST", "/v1/recommendations/playlists"): seed_playlists,
        ("GET", "/v1/items/*/similar"): lambda r: (
            200,
            {"item_id": "a", "model_version": "7", "items": [_item("b", [])]},
        ),
        ("POST", "/v1/events"): lambda r: (200, {"accepted": 1, "stored": 1, "duplicates": 0}),
        ("GET", "/v1/stats"): lambda r: (200, stats),
        ("GET", "/v1/stats/events"): lambda r: (200, events),
        ("GET", "/v1/model"): lambda r: (200, model),
        ("GET", "/v1/models"): lambda r: (200, versions),
        ("GET", "/metrics"): lambda r: (200, METRICS),
    }


def not_found(_: Request) -> Answer:
    return 404, {"error": {"code": "not_found", "message": "Not Found"}}


def unavailable(_: Request) -> Answer:
    return 503, {"error": {"code": "unavailable", "message": "no model is loaded: loading"}}


@dataclass
class FakeApi:
    routes: dict[tuple[str, str], Route] = field(default_factory=default_routes)
    requests: list[Request] = field(default_factory=list)
    delay_s: float = 0.0
    url: str = ""

    def route(self, method: str, path: str) -> Route:
        if (method, path) in self.routes:
            return self.routes[(method, path)]
        parts = path.split("/")
        if len(parts) >= 5 and parts[1:3] in (["v1", "users"], ["v1", "items"]):
            pattern = "/".join([*parts[:3], "*", parts[-1]])
            if (method, pattern) in self.routes:
                return self.routes[(method, pattern)]
        if len(parts) == 4 and parts[1:3] == ["v1", "playlists"]:
            return self.routes.get((method, "/v1/playlists/*"), not_found)
        return not_found

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]


def serve(api: FakeApi) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            req = Request(method, split.path, parse_qs(split.query), body)
            api.requests.append(req)
            if api.delay_s:
                time.sleep(api.delay_s)
            status, payload = api.route(method, split.path)(req)
            text = payload if isinstance(payload, str) else json.dumps(payload)
            data = text.encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            if status == 503:
                self.send_header("retry-after", "5")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
