"""Loopback helpers shared by the tests that start real servers."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without SETLIST_ and MLFLOW_ variables, plus ``values``: what
    a server started by a test sees, whatever the developer's shell has set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SETLIST_", "MLFLOW_"))}
    env.update(values)
    return env
