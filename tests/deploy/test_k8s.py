"""deploy/k8s/: the manifests against the official schemas (kubernetes-validate, offline, strict),
the kustomization's lists, the objects' references to each other, and probes, ports and scrape
annotations that match the settings in the ConfigMap.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.deploy.files import (
    API_PROBES,
    CONFIG,
    DOCS,
    K8S,
    ROOT,
    container_port,
    containers,
    k8s_object,
    pod_spec,
    settings_from,
    template,
)


def test_kubernetes_manifests_match_the_official_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    version = kubernetes_validate.utils.latest_version()
    for doc in DOCS:
        kubernetes_validate.validate(doc, version, strict=True)
    broken = copy.deepcopy(k8s_object(DOCS, "Deployment", "setlist-api"))
    pod_spec(broken)["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_kustomization_lists_every_manifest_and_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    names = {i["name"] for i in kustomization["images"]}
    assert {c["image"].split(":")[0] for c in containers(DOCS).values()} <= names


def test_kubernetes_objects_refer_to_each_other() -> None:
    pvcs = {d["metadata"]["name"] for d in DOCS if d["kind"] == "PersistentVolumeClaim"}
    readme = (ROOT / "README.md").read_text()
    for doc in (d for d in DOCS if d["kind"] in ("Deployment", "Job")):
        spec = pod_spec(doc)
        if doc["kind"] == "Deployment":
            labels = template(doc)["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in pvcs
        for source in (s for c in spec["containers"] for s in c.get("envFrom", [])):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] == "setlist-config"
            else:  # made by the user: the README says how
                assert f"secret generic {source['secretRef']['name']}" in readme
        assert spec["securityContext"]["runAsNonRoot"] is True
    for service in (d for d in DOCS if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        deployments = (d for d in DOCS if d["kind"] == "Deployment")
        pods = [d for d in deployments if selector.items() <= template(d)["labels"].items()]
        assert len(pods) == 1, f"Service {service['metadata']['name']} selects {len(pods)}"
        for port in service["spec"]["ports"]:
            container_port(pod_spec(pods[0])["containers"][0], port["targetPort"])


def test_kubernetes_probes_and_ports_match_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(CONFIG, monkeypatch)
    pods = containers(DOCS)
    api, loop, ui = pods["api"], pods["loop"], pods["ui"]
    probes = {
        k: (api[k]["httpGet"]["path"], container_port(api, api[k]["httpGet"]["port"]))
        for k in API_PROBES
    }
    assert probes == {
        "readinessProbe": ("/ready", settings.port),
        "livenessProbe": ("/health", settings.port),
        "startupProbe": ("/health", settings.port),
    }
    liveness = loop["livenessProbe"]["httpGet"]
    assert container_port(loop, liveness["port"]) == settings.loop_metrics_port
    scraped = {"setlist-api": settings.port, "setlist-loop": settings.loop_metrics_port}
    for name, port in scraped.items():
        notes = template(k8s_object(DOCS, "Deployment", name))["annotations"]
        expected = {"scrape": "true", "port": str(port), "path": "/metrics"}
        assert notes == {f"prometheus.io/{k}": v for k, v in expected.items()}, name
    ui_port = int(ui["command"][ui["command"].index("--port") + 1])
    assert container_port(ui, ui["readinessProbe"]["httpGet"]["port"]) == ui_port
    api_service = k8s_object(DOCS, "Service", "setlist-api")
    assert settings.ui_api_url == f"http://setlist-api:{api_service['spec']['ports'][0]['port']}"
    for container in pods.values():
        assert {"requests", "limits"} <= container["resources"].keys(), container["name"]
        assert "memory" in container["resources"]["limits"], container["name"]
