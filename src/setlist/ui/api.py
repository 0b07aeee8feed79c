"""The app's only way to the data: a small client of setlist's HTTP API.

Every failure becomes an :class:`ApiError` carrying a sentence a listener can read (the API is
down, slow, degraded, or refused the request and why), so the pages show a message and never a
stack trace. The client is synchronous and short-lived (Streamlit reruns the script per click);
``transport`` lets the tests answer without a network.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

ErrorKind = Literal[
    "unreachable", "slow", "unavailable", "refused", "missing", "not_found", "broken"
]
DEFAULT_TIMEOUT_S = 5.0


@dataclass
class ApiError(Exception):
    """A request that got no usable answer, with what to tell the person looking at the page."""

    kind: ErrorKind
    message: str
    status: int | None = None

    def __str__(self) -> str:
        return self.message


class Api:
    """GET and POST JSON against one base URL, turning every failure into an :class:`ApiError`."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            transport=transport,
            trust_env=False,
            headers=headers,
        )
        self.timeout_s = timeout_s

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._json(self._send("GET", path, params=clean))

    def post(self, path: str, body: Any) -> Any:
        return self._json(self._send("POST", path, json=body))

    def text(self, path: str) -> str:
        return self._send("GET", path).text

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                "slow",
                f"The setlist API at {self.base_url} is slow: no answer within "
                f"{self.timeout_s:g} s. Try again in a moment.",
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                "unreachable",
                f"Cannot reach the setlist API at {self.base_url} ({type(exc).__name__}). "
                "Is `setlist serve` running?",
            ) from None
        if response.status_code < 400:
            return response
        raise _error(response)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError("broken", "The API answered something that is not JSON.") from None

    # The routes the pages use, one method each (paths in one place).

    def ready(self) -> dict[str, Any]:
        return dict(self.get("/ready"))

    def moods(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/moods").get("moods", []))

    def search(self, query: str, limit: int = 8) -> list[dict[str, Any]]:
        """Artists whose name contains ``query``; with an empty query, the most heard."""
        params = {"q": query or None, "limit": limit}
        return list(self.get("/v1/catalogue/search", **params).get("items", []))

    def onboard(
        self, seeds: list[str], k: int, mood: str | None, exclude: list[str]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"seeds": seeds, "k": k, "exclude": exclude}
        if mood:
            body["mood"] = mood
        return dict(self.post("/v1/recommendations", body))

    def recommendations(
        self, user_id: str, k: int, mood: str | None, exclude: list[str]
    ) -> dict[str, Any]:
        path = f"/v1/users/{quote(user_id, safe='')}/recommendations"
        return dict(self.get(path, k=k, mood=mood or None, exclude=exclude or None))

    def artists(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Catalogue entries (name, url, listeners) by id; ids the API does not know are absent."""
        if not item_ids:
            return {}
        found = self.get("/v1/catalogue/artists", item_id=item_ids).get("items", [])
        return {str(a["item_id"]): dict(a) for a in found}

    def history(self, user_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/users/{quote(user_id, safe='')}/history"))

    def similar(self, item_id: str, k: int = 8) -> dict[str, Any]:
        return dict(self.get(f"/v1/items/{quote(item_id, safe='')}/similar", k=k))

    def buddies(self, user_id: str, k: int = 10) -> list[dict[str, Any]]:
        """A training listener's taste buddies (user_id, similarity, shared, discoveries)."""
        path = f"/v1/users/{quote(user_id, safe='')}/buddies"
        return list(self.get(path, k=k).get("items", []))

    def seed_buddies(self, seeds: list[str], k: int = 10) -> dict[str, Any]:
        """Taste buddies of a new listener who picked the artists ``seeds`` (ids)."""
        return dict(self.post("/v1/buddies", {"seeds": seeds, "k": k}))

    def user_playlists(self, user_id: str, k: int, serendipity: float) -> dict[str, Any]:
        """Organic (human-made) playlists for a training listener, each with its reasons."""
        path = f"/v1/users/{quote(user_id, safe='')}/playlists"
        return dict(self.get(path, k=k, serendipity=serendipity))

    def seed_playlists(self, seeds: list[str], k: int, serendipity: float) -> dict[str, Any]:
        """Organic playlists for a new listener who picked the artists ``seeds`` (ids)."""
        body = {"seeds": seeds, "k": k, "serendipity": serendipity}
        return dict(self.post("/v1/recommendations/playlists", body))

    def search_tracks(self, query: str, limit: int = 8) -> list[dict[str, Any]]:
        """Tracks whose name or artist contains ``query`` (item_id, name, artist)."""
        found = self.get("/v1/tracks/search", q=query, limit=limit)
        return list(found.get("items", []))

    def continue_playlist(self, name: str | None, tracks: list[str], k: int) -> dict[str, Any]:
        """The tracks that should come next in a playlist of ``tracks`` called ``name``."""
        body: dict[str, Any] = {"tracks": tracks, "k": k}
        if name:
            body["name"] = name
        return dict(self.post("/v1/playlists/continue", body))

    def playlist(self, pid: str) -> dict[str, Any]:
        """One of the dataset's playlists: its name and tracks."""
        return dict(self.get(f"/v1/playlists/{quote(pid, safe='')}"))

    def send_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self.post("/v1/events", {"events": events}))


def event(
    user_id: str, item_id: str, kind: str, answer: dict[str, Any], position: int | None = None
) -> dict[str, Any]:
    """One feedback event about an item of ``answer`` (a recommendations response)."""
    body: dict[str, Any] = {
        "event_id": f"ui-{uuid.uuid4().hex}",
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "ts": datetime.now(UTC).isoformat(),
    }
    if position is not None:
        body["position"] = position
    if answer.get("arm"):
        body["arm"] = answer["arm"]
    if answer.get("model_version"):
        body["model_version"] = answer["model_version"]
    return body


def _error(response: httpx.Response) -> ApiError:
    status = response.status_code
    detail = ""
    try:
        payload = response.json()
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        detail = str(error.get("message") or payload.get("detail") or "")
    except ValueError:
        detail = response.text[:200]
    if (status == 404 and detail in ("", "Not Found")) or status == 405:
        return ApiError(
            "missing",
            f"This API does not offer {response.request.url.path} yet ({status}). "
            "Update the setlist service to use this feature.",
            status,
        )
    if status == 503:
        retry = response.headers.get("retry-after")
        after = f" Retry in {retry} s." if retry else ""
        return ApiError("unavailable", f"The service is not ready: {detail}.{after}", status)
    if status == 404:
        return ApiError("not_found", f"Not found: {detail}", status)
    if status >= 500:
        return ApiError("broken", f"The API failed ({status}): {detail or 'no detail'}", status)
    return ApiError("refused", f"The API refused the request ({status}): {detail}", status)
