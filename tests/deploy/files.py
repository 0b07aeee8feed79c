"""Readers for the deployment files: compose (with its ${VAR:-default} interpolation), the
Kubernetes manifests, the Dockerfile's instructions and .dockerignore patterns, and command
lines parsed (never run) by the real click commands."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from setlist.config import Settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s" / "base"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

API_PROBES = ("readinessProbe", "livenessProbe", "startupProbe")

_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
_LOCAL_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/.-]*)")


def interpolate(text: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's ``${NAME}`` and ``${NAME:-default}``, from ``env`` (the defaults otherwise)."""
    values = env or {}
    return _VARIABLE.sub(lambda m: values.get(m.group(1)) or m.group(2) or "", text)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE_FILE.read_text()))
    return loaded


def k8s_documents() -> list[dict[str, Any]]:
    """Every manifest the kustomization lists, in its order."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S / name).read_text())
        if doc
    ]


def k8s_object(docs: Sequence[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def container_port(container: Mapping[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    assert named, f"container {container['name']!r} has no port named {port!r}"
    return int(named[0])


def local_url(argv: Sequence[str]) -> tuple[int, str]:
    """(port, path) of the http://127.0.0.1:PORT/PATH a healthcheck command asks."""
    match = _LOCAL_URL.search(" ".join(argv))
    assert match, f"no http://127.0.0.1:PORT/PATH in {argv}"
    return int(match.group(1)), match.group(2)


def published_container_ports(service: Mapping[str, Any]) -> list[int]:
    """The container side of compose's ``[HOST_IP:]HOST_PORT:CONTAINER_PORT`` entries."""
    return [int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])]


def image_tag(reference: str) -> str:
    """The tag of ``[registry/]name[:tag][@digest]`` ("" when there is none)."""
    name = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.partition(":")[2]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comment lines dropped and continuations joined."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\s*\n", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), " ".join(arguments.split())))
    return pairs


def final_stage(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (instruction, _) in enumerate(pairs) if instruction == "FROM")
    return list(pairs[last_from:])


def dockerfile_env(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in pairs:
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))  # type: ignore[misc]
    return env


def exec_form(arguments: str) -> list[str]:
    """The JSON argument list of CMD or HEALTHCHECK ... CMD."""
    argv = json.loads(arguments[arguments.index("[") :])
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), arguments
    return argv


def dockerignored(patterns: Sequence[str], path: str) -> bool:
    """Whether the build context leaves ``path`` out (the last matching pattern decides)."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes):
            ignored = not negated
    return ignored


def dockerignore_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def parse_command_line(root: Any, argv: Sequence[str]) -> str:
    """Parse ``argv`` with the real click command (options, types, ranges), without running it;
    returns the command path ("setlist serve"). Raises click's UsageError on a bad line.

    ``root`` is a click command: click's own (mlflow) or the copy typer vendors (setlist),
    hence duck typing rather than isinstance."""
    command, args, parent, path = root, list(argv[1:]), None, [argv[0]]
    while hasattr(command, "resolve_command"):
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        name, sub, args = command.resolve_command(ctx, args)
        assert name is not None and sub is not None, f"no command in {argv}"
        parent, command = ctx, sub
        path.append(name)
    command.make_context(path[-1], list(args), parent=parent)
    return " ".join(path)


def is_setting(variable: str) -> bool:
    return variable.startswith("SETLIST_") or variable == "MLFLOW_TRACKING_URI"


def setting_name(variable: str) -> str:
    return "mlflow_tracking_uri" if variable == "MLFLOW_TRACKING_URI" else variable[8:].lower()


def settings_from(env: Mapping[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process started with exactly these variables would read."""
    for key in [k for k in os.environ if is_setting(k)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Settings()


def containers(docs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every container of the Deployments and Jobs, by name."""
    return {
        c["name"]: c
        for d in docs
        if d["kind"] in ("Deployment", "Job")
        for c in pod_spec(d)["containers"]
    }


def template(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template's metadata (labels, annotations)."""
    metadata: dict[str, Any] = doc["spec"]["template"]["metadata"]
    return metadata


def binds(service: Mapping[str, Any]) -> dict[str, str]:
    """Compose bind mounts (``./SOURCE:TARGET[:ro]``) as source -> target."""
    pairs = (v.split(":")[:2] for v in service["volumes"] if v.startswith("./"))
    return {source: target for source, target in pairs}


SERVICES: dict[str, Any] = compose()["services"]
DOCS = k8s_documents()
CONFIG: dict[str, str] = k8s_object(DOCS, "ConfigMap", "setlist-config")["data"]
