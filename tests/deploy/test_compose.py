"""deploy/compose.yaml: the compose specification's JSON schema (shipped by check-jsonschema) and,
where the compose plugin answers, `docker compose config`; dependencies, volumes and
healthchecks that hold together; ports and URLs that match the settings; its Prometheus and
Grafana configs differ from deploy/'s in host names only (promtool checks the former).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.files import (
    COMPOSE_FILE,
    DEPLOY,
    SERVICES,
    binds,
    compose,
    local_url,
    published_container_ports,
    settings_from,
)

CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def test_compose_file_matches_the_compose_specification() -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (dev extras) not installed")
    import importlib.resources

    import jsonschema

    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, errors
    broken = compose()
    broken["services"]["api"]["depends_on"]["train"]["condition"] = "service_done"
    assert not validator.is_valid(broken)


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI has no compose plugin (`docker compose version` fails)")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_compose_dependencies_volumes_and_healthchecks_hold_together() -> None:
    declared = set(compose()["volumes"])
    for name, service in SERVICES.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in SERVICES and rule["condition"] in CONDITIONS, f"{name} -> {target}"
            if rule["condition"] == "service_healthy":
                assert "test" in SERVICES[target].get("healthcheck", {}), f"{target}: no check"
            if rule["condition"] == "service_completed_successfully":
                assert SERVICES[target]["restart"] == "no", f"{target} must be one-shot"
        if name != "train":
            assert "test" in service.get("healthcheck", {}), f"{name}: no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
    for service in ("api", "loop"):
        assert SERVICES[service]["depends_on"]["train"]["condition"] == (
            "service_completed_successfully"
        )


def test_compose_ports_and_urls_match_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    api = settings_from(SERVICES["api"]["environment"], monkeypatch)
    assert local_url(SERVICES["api"]["healthcheck"]["test"]) == (api.port, "/ready")
    assert published_container_ports(SERVICES["api"]) == [api.port]
    loop = settings_from(SERVICES["loop"]["environment"], monkeypatch)
    loop_check = local_url(SERVICES["loop"]["healthcheck"]["test"])
    assert loop_check == (loop.loop_metrics_port, "/metrics")
    ui_command = SERVICES["ui"]["command"]
    ui_port = int(ui_command[ui_command.index("--port") + 1])
    assert local_url(SERVICES["ui"]["healthcheck"]["test"])[0] == ui_port
    assert published_container_ports(SERVICES["ui"]) == [ui_port]
    ui = settings_from(SERVICES["ui"]["environment"], monkeypatch)
    assert ui.ui_api_url == f"http://api:{api.port}"
    mlflow_port = local_url(SERVICES["mlflow"]["healthcheck"]["test"])[0]
    assert f"--port={mlflow_port}" in SERVICES["mlflow"]["command"]
    assert api.mlflow_tracking_uri == loop.mlflow_tracking_uri == f"http://mlflow:{mlflow_port}"
    for variable in ("SETLIST_EVENTS_STORE_URL", "SETLIST_EVENTS_BUS_URL"):
        host = SERVICES["api"]["environment"][variable].split("@")[-1].split("//")[-1]
        assert host.split(":")[0] in SERVICES, f"{variable} names no compose service"


def test_compose_prometheus_config_differs_only_in_its_targets() -> None:
    ours = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    reference = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {}
    for config in (ours, reference):
        for job in config["scrape_configs"]:
            targets.setdefault(job["job_name"], []).append(job.pop("static_configs"))
    assert ours == reference
    api_port = int(SERVICES["api"]["environment"]["SETLIST_PORT"])
    loop_port = int(SERVICES["loop"]["environment"]["SETLIST_LOOP_METRICS_PORT"])
    assert targets["setlist-api"][0] == [{"targets": [f"api:{api_port}"]}]
    assert targets["setlist-loop"][0] == [{"targets": [f"loop:{loop_port}"]}]
    mounts = binds(SERVICES["prometheus"])
    config_dir = Path(mounts["./compose/prometheus.yml"]).parent
    assert mounts["./prometheus/alerts.yml"] == str(config_dir / ours["rule_files"][0])


def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    shutil.copy(DEPLOY / "compose" / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    done = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout + done.stderr, done.stderr


def test_compose_grafana_is_provisioned_from_deploy_grafana() -> None:
    grafana = DEPLOY / "grafana" / "provisioning"
    reference = yaml.safe_load((grafana / "datasources" / "prometheus.yml").read_text())
    ours = yaml.safe_load((DEPLOY / "compose" / "grafana-datasource.yml").read_text())
    (source,), (datasource,) = reference["datasources"], ours["datasources"]
    assert datasource.pop("url") == "http://prometheus:9090"
    source.pop("url")
    assert datasource == source
    assert "127.0.0.1:9090:9090" in SERVICES["prometheus"]["ports"]
    provider = yaml.safe_load((grafana / "dashboards" / "setlist.yml").read_text())
    dashboards = provider["providers"][0]["options"]["path"]
    assert binds(SERVICES["grafana"])["./grafana/dashboards"] == dashboards


def test_every_container_is_limited_to_2_gb_and_restarts() -> None:
    for name, service in SERVICES.items():
        limit = str(service.get("mem_limit", ""))
        assert limit.lower() in ("2g", "2gb", "2048m"), f"{name}: mem_limit {limit!r}, not 2g"
        expected = "no" if name == "train" else "unless-stopped"
        assert service.get("restart") == expected, f"{name}: restart {service.get('restart')!r}"
