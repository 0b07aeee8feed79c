"""End to end in a real browser: "Continue a playlist" against the real API on a tracks bundle.

The bundle is built here from a tiny playlist matrix (item kNN over 8 playlists of 10 tracks
with Spotify URIs, the playlists table and each track's artist), served by ``setlist serve
--bundle tracks=DIR``; the app runs with ``setlist ui``; Chromium searches a track, adds it,
asks for continuations, keeps two, asks again and follows a Spotify link's address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from setlist.bundle import PLAYLIST_COLUMNS, ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA
from setlist.matrix import build_matrix
from setlist.models.knn import ItemKNNRecommender
from tests.e2e.test_ui_browser import CHROMIUM_ARGS, SHOTS, _env, _settle, _start, _stop, _wait
from tests.net import free_port

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

# Track URI -> (name, artist). Two kinds of playlists: road-trip rock and quiet piano.
TRACKS = {
    "spotify:track:0rock01": ("Highway Song", "The Drivers"),
    "spotify:track:0rock02": ("Open Road", "The Drivers"),
    "spotify:track:0rock03": ("Gasoline", "Motor Club"),
    "spotify:track:0rock04": ("Night Drive", "Motor Club"),
    "spotify:track:0rock05": ("Exit 42", "Asphalt"),
    "spotify:track:0keys01": ("Nocturne Rain", "Quiet Hands"),
    "spotify:track:0keys02": ("Soft Morning", "Quiet Hands"),
    "spotify:track:0keys03": ("Still Water", "Ivory"),
    "spotify:track:0keys04": ("Candlelight", "Ivory"),
    "spotify:track:0keys05": ("Long Shadows", "Felt"),
}
NEXT = re.compile(r"^Next \d+\. ")
ROCK = [t for t in TRACKS if "rock" in t]
KEYS = [t for t in TRACKS if "keys" in t]
PLAYLISTS = {
    "0": ("road trip", ROCK[:4]),
    "1": ("driving", ROCK[1:]),
    "2": ("road", [ROCK[0], ROCK[2], ROCK[4]]),
    "3": ("car songs", [ROCK[0], ROCK[1], ROCK[3]]),
    "4": ("piano", KEYS[:4]),
    "5": ("sleep", KEYS[1:]),
    "6": ("calm", [KEYS[0], KEYS[2], KEYS[4]]),
    "7": ("study", [KEYS[0], KEYS[1], KEYS[3]]),
}


def save_playlist_bundle(path: Path) -> Path:
    rows = [(pid, t, 1.0) for pid, (_, tracks) in PLAYLISTS.items() for t in tracks]
    users, items, weights = zip(*rows, strict=True)
    frame = pl.DataFrame(
        {"user": users, "item": items, "weight": weights, "timestamp": [None] * len(rows)},
        schema=INTERACTION_SCHEMA,
    )
    train = build_matrix(frame)
    model = ItemKNNRecommender(k=20)
    model.fit(train.csr)
    meta = pl.DataFrame(
        {"item": list(TRACKS), "name": [n for n, _ in TRACKS.values()], "url": [""] * len(TRACKS)},
        schema=ITEM_SCHEMA,
    )
    playlists = pl.DataFrame(
        {
            "pid": list(PLAYLISTS),
            "name": [n for n, _ in PLAYLISTS.values()],
            "num_followers": [1] * len(PLAYLISTS),
            "tracks": [t for _, t in PLAYLISTS.values()],
        },
        schema=PLAYLIST_COLUMNS,
    )
    bundle = ModelBundle.build(
        model,
        train,
        meta,
        BundleMeta(model_type="knn", catalogue="tracks", data_fingerprint="e2e"),
        playlists=playlists,
    )
    bundle.item_attributes["artist"] = np.array(
        [TRACKS[str(t)][1] for t in bundle.items.ids], dtype=np.str_
    )
    bundle.save(path)
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("ui-playlist-e2e")
    bundle = save_playlist_bundle(root / "tracks")
    env = _env(root / "home")
    api_port, ui_port = free_port(), free_port()
    api_url, ui_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    api = _start(
        ["serve", "--port", str(api_port), "--bundle", f"tracks={bundle}"], env, root / "api.log"
    )
    procs = [api]
    try:
        _wait(api, f"{api_url}/ready", root / "api.log")
        ui = _start(["ui", "--port", str(ui_port), "--api-url", api_url], env, root / "ui.log")
        procs.append(ui)
        _wait(ui, f"{ui_url}/_stcore/health", root / "ui.log")
        yield {"api": api_url, "ui": ui_url}
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.e2e.test_ui_browser import CHROMIUM

    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def _next(page: Any) -> list[str]:
    """The continuations' track names, in order."""
    texts = page.locator("p").filter(has_text=NEXT).all_inner_texts()
    return [NEXT.sub("", t).split(" · ")[0].strip() for t in texts if NEXT.match(t)]


def test_search_add_continue_keep_continue_again(servers: dict[str, str], browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(servers["ui"] + "/playlist")
    search = page.get_by_label("Search tracks")
    search.wait_for(timeout=30_000)
    search.fill("highway")
    search.press("Enter")
    page.get_by_role("button", name="Add Highway Song by The Drivers").click()
    page.get_by_text("Your playlist (1 track)").wait_for(timeout=15_000)
    page.get_by_role("button", name="Continue the playlist").click()
    page.get_by_text("How it could go on").wait_for(timeout=15_000)
    _settle(page)
    first = _next(page)
    assert first, page.content()[:2000]
    rock = {TRACKS[t][0] for t in ROCK}
    assert first[0] in rock and "Highway Song" not in first  # the road-trip tracks come first
    page.get_by_text("Because of Highway Song").first.wait_for()
    page.screenshot(path=str(SHOTS / "playlist-continuations.png"), full_page=True)

    link = page.get_by_role("link", name=first[0]).first
    uri = next(t for t, (n, _) in TRACKS.items() if n == first[0])
    assert link.get_attribute("href") == (
        "https://open.spotify.com/track/" + uri.removeprefix("spotify:track:")
    )

    keep = page.get_by_role("button", name="Keep")
    keep.first.click()
    page.get_by_text("Your playlist (2 tracks)").wait_for(timeout=15_000)
    _settle(page)
    page.get_by_role("button", name="Keep").first.click()
    page.get_by_text("Your playlist (3 tracks)").wait_for(timeout=15_000)
    _settle(page)
    assert page.get_by_role("button", name="Kept").count() == 2

    page.get_by_role("button", name="Continue again").click()
    page.wait_for_function(
        "() => document.querySelectorAll('button').length > 0 && "
        "![...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Kept')",
        timeout=15_000,
    )
    _settle(page)
    again = _next(page)
    assert first[0] not in again and first[1] not in again  # kept: now part of the list
    page.screenshot(path=str(SHOTS / "playlist-again.png"), full_page=True)

    # The API saw the longer list: ask it directly for the same and compare.
    answer = httpx.post(
        servers["api"] + "/v1/playlists/continue",
        json={"tracks": ["spotify:track:0rock01", uri], "k": 3},
        timeout=10,
    ).json()
    assert answer["items"] and all(i["item_id"] in TRACKS for i in answer["items"])
