"""schemathesis over the whole OpenAPI schema: no server errors, no response off the schema.

The app serves a tiny tagged bundle (artists), a tiny organic playlist ranker (so the organic
routes answer rather than 503) and a tiny playlist catalogue (tracks, so the playlist routes
answer rather than 404); schemathesis calls it in process (its ASGI transport runs the app's
lifespan once). Examples per operation are bounded so the test stays fast.

Beyond "no server error", schemathesis' positive and negative data checks hold: every request the
schema allows is answered (2xx, or a 404 for what is not in the catalogue), every request it
forbids is refused (4xx; 413 for a body over the event limit counts as a refusal). The schema
cannot state "no later than the server's clock" for an event's ``ts``, so a hook moves generated
times into the accepted range; NUL is off in generated text because the schema's pattern-free
strings cannot exclude it (the server refuses it, naming the field: tests/serve/test_hostile.py).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from setlist.serve import create_app
from tests.serve.conftest import make_settings
from tests.serve.organic import save_organic_version
from tests.serve.playlists import save_playlist_bundle
from tests.serve.tagged import save_tagged_bundle

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]

_HOME = Path(tempfile.mkdtemp(prefix="setlist-schemathesis-"))
atexit.register(shutil.rmtree, _HOME, True)
save_organic_version(_HOME / "home" / "organic")
APP = create_app(
    make_settings(_HOME / "home"),
    {
        "artists": save_tagged_bundle(_HOME / "bundle"),
        "tracks": save_playlist_bundle(_HOME / "tracks"),
    },
)
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"allow-x00": False},
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        },
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
LATEST = datetime(2024, 1, 1, tzinfo=UTC)


def in_range_ts(body: Any) -> Any:
    """Event bodies with every ``ts`` string moved into the accepted range (2000 to now)."""
    events = body.get("events") if isinstance(body, dict) and "events" in body else body
    for event in events if isinstance(events, list) else [events]:
        if isinstance(event, dict) and isinstance(event.get("ts"), str):
            try:
                ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
            except ValueError:
                continue
            if ts.tzinfo is not None and not (datetime(2000, 1, 1, tzinfo=UTC) <= ts <= LATEST):
                event["ts"] = LATEST.isoformat()
    return body


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    return in_range_ts(body)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_schema_covers_the_serving_routes() -> None:
    paths = APP.openapi()["paths"]
    for path in (
        "/v1/users/{user_id}/recommendations",
        "/v1/recommendations",
        "/v1/recommendations/batch",
        "/v1/moods",
        "/v1/items/{item_id}/similar",
        "/v1/playlists/continue",
        "/v1/playlists/{pid}",
        "/v1/tracks/search",
        "/v1/users/{user_id}/playlists",
        "/v1/recommendations/playlists",
    ):
        assert path in paths
