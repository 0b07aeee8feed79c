"""schemathesis over the whole OpenAPI schema: no server errors, no response off the schema.

The app serves a tiny tagged bundle (artists), a tiny organic playlist ranker (so the organic
routes answer rather than 503) and a tiny playlist catalogue (tracks, so the playlist routes
answer rather than 404); schemathesis calls it in process (its ASGI transport runs the app's
lifespan once). Examples per operation are bounded so the test stays fast.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
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
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


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
