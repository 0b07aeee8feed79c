"""schemathesis with keys required: every operation called with a key, and its ``ignored_auth``
check (an operation the schema protects refuses a missing or a wrong key with 401).

The key holds every scope and a quota no run reaches, so what is checked is the schema and the
refusals of missing or wrong keys, not the rate limit (tests/serve/test_auth.py checks that).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth

from setlist.events.keys import KeyStore
from setlist.serve import create_app
from tests.serve.conftest import make_settings
from tests.serve.organic import save_organic_version
from tests.serve.tagged import save_tagged_bundle
from tests.serve.test_schemathesis import CHECKS, CONFIG, in_range_ts

_HOME = Path(tempfile.mkdtemp(prefix="setlist-schemathesis-auth-"))
atexit.register(shutil.rmtree, _HOME, True)
_SETTINGS = make_settings(
    _HOME / "home", auth="on", events_store_url=f"sqlite:///{_HOME / 'events.db'}"
)
_STORE = KeyStore(f"sqlite:///{_HOME / 'events.db'}")
KEY = _STORE.create("fuzzer", "read,events,admin", "1000000/minute", "test", "test")[1]
_STORE.close()
save_organic_version(_HOME / "home" / "organic")  # the organic routes answer, not 503
APP = create_app(_SETTINGS, save_tagged_bundle(_HOME / "bundle"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    return in_range_ts(body)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_with_a_key_conforms_and_refuses_without_one(case: Any) -> None:
    case.call_and_validate(headers={"X-API-Key": KEY}, checks=[*CHECKS, ignored_auth])


def test_every_operation_but_health_and_ready_is_protected() -> None:
    open_ops = [
        (method, path)
        for path, item in APP.openapi()["paths"].items()
        for method, operation in item.items()
        if "security" not in operation
    ]
    assert sorted(open_ops) == [("get", "/health"), ("get", "/ready")]
