""".github/workflows/: actionlint (dev extras) finds nothing, and the workflow holds together with
the project: the Make targets it calls exist (and `make render-OVERLAY`, the step that names the
image in the manifests, runs here), the test job has PostgreSQL and Redis where the event store
tests look for them, deploying waits for every check and runs on main only, in order (staging,
load test, canary, production), and its `setlist` command lines parse with the real commands.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from setlist.cli import app as cli_app
from tests.deploy.files import ROOT, parse_command_line

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
BIN = Path(sys.executable).parent


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    return loaded


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    actionlint = BIN / "actionlint"
    if not actionlint.exists():
        pytest.fail("actionlint is not installed: `make install` (dev extras) installs it")
    return subprocess.run(
        [str(actionlint), "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_actionlint_finds_nothing_in_the_workflows(tmp_path: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert CI in files
    done = _actionlint(*files)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = CI.read_text().replace("runs-on: ubuntu-24.04", "runs-on: [ubuntu-24.04", 1)
    (tmp_path / "broken.yml").write_text(
        broken.replace("needs.image.outputs", "needs.imag.outputs")
    )
    assert _actionlint(tmp_path / "broken.yml").returncode != 0


def test_the_workflow_calls_make_targets_that_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([\w%-]+):", makefile))
    called = set()
    for job in workflow()["jobs"].values():
        for line in runs(job).splitlines():
            words = shlex.split(line.strip()) if line.strip().startswith("make ") else []
            called |= {w for w in words[1:] if "=" not in w and not w.startswith("-")}
    assert {"install", "security", "image", "render-staging", "render-canary"} <= called
    for target in called:
        assert target in targets or re.sub(r"-\w+$", "-%", target) in targets, target
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci_run
    for step in ("lint:", "typecheck:", "unit:"):
        assert step in makefile
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "actionlint .github/workflows" in lint and "hadolint deploy/Dockerfile" in lint


def test_render_names_the_image_in_every_container(tmp_path: Path) -> None:
    name, digest = "registry.example/setlist", "sha256:" + "a" * 64
    done = subprocess.run(
        ["make", "-s", "-o", "install", f"BIN={BIN}", "render-canary"]
        + [f"IMAGE_NAME={name}", f"IMAGE_DIGEST={digest}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    docs = list(yaml.safe_load_all((ROOT / "build" / "k8s" / "canary.yaml").read_text()))
    images = {c["image"] for d in docs for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {f"{name}@{digest}"}


def test_tests_get_postgres_and_redis_where_they_look_for_them() -> None:
    test = workflow()["jobs"]["test"]
    assert {"postgres", "redis"} <= test["services"].keys()
    assert runs(test).strip() == "bash .ci/run"
    conftest = (ROOT / "tests" / "events" / "conftest.py").read_text()
    for variable, service in (
        ("SETLIST_TEST_POSTGRES_URL", "postgres"),
        ("SETLIST_TEST_REDIS_URL", "redis"),
    ):
        assert variable in conftest
        assert f"@{service}:" in test["env"][variable] or f"//{service}:" in test["env"][variable]
    postgres = test["services"]["postgres"]["env"]
    url = test["env"]["SETLIST_TEST_POSTGRES_URL"]
    assert url.endswith("/" + postgres["POSTGRES_DB"]) and postgres["POSTGRES_PASSWORD"] in url


def test_delivery_runs_on_main_after_every_check_in_order() -> None:
    jobs = workflow()["jobs"]
    assert set(workflow()[True]) == {"push", "pull_request"}  # YAML 1.1 reads `on` as True
    image = runs(jobs["image"])
    assert 'make image IMAGE="$IMAGE_NAME:$GITHUB_SHA"' in image
    assert set(jobs["staging"]["needs"]) == {"test", "security", "image"}
    assert "staging" in jobs["production"]["needs"]
    assert jobs["staging"]["if"] == "github.ref == 'refs/heads/main' && github.event_name == 'push'"
    staging, production = runs(jobs["staging"]), runs(jobs["production"])
    assert staging.index("kubectl apply") < staging.index("setlist canary load")
    order = [
        production.index("apply -f build/k8s/canary.yaml"),
        production.index("setlist canary decide"),
        production.index("apply -f build/k8s/production.yaml"),
    ]
    assert order == sorted(order)
    steps = {s.get("name"): s for s in jobs["production"]["steps"]}
    assert "steps.judge.outcome == 'success'" in steps["Promote"]["if"]
    assert "delete" in steps["Roll back"]["run"] and "failure()" in steps["Roll back"]["if"]
    artifacts = [s for j in ("staging", "production") for s in jobs[j]["steps"]]
    kept = [s["with"]["path"] for s in artifacts if s.get("uses", "").startswith("actions/upload")]
    assert kept == ["build/load-test.json", "build/canary.json"]
    assert all(
        s["if"] == "always()" for s in artifacts if s.get("uses", "").startswith("actions/up")
    )


def test_the_workflow_setlist_commands_parse() -> None:
    root = typer.main.get_command(cli_app)
    text = CI.read_text().replace("\\\n", " ")
    lines = [m.group(0) for m in re.finditer(r"\.venv/bin/setlist [^\n]+", text)]
    parsed = {
        parse_command_line(root, shlex.split(line)[0:1] + shlex.split(line)[1:]) for line in lines
    }
    assert parsed == {".venv/bin/setlist canary load", ".venv/bin/setlist canary decide"}
