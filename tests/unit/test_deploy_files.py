"""The deployment files agree with the code: docker-compose.yml, the Dockerfile, the
Prometheus config and alert rules, and the Grafana provisioning and dashboard.

No Docker engine runs here, so what can be checked without one is checked:
the compose file parses and only sets real settings with values that load,
services and ports line up, Prometheus loads its config and rules (promtool,
when installed) and the rules' unit tests pass, and every metric the alerts
and the dashboard query is one the workers really export.
"""

from __future__ import annotations

import ast
import base64
import importlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import AliasChoices

from streams.cli import main
from streams.observability import exported_metric_names
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
PROM_DIR = REPO / "deploy" / "prometheus"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "creator-scores.json"
OPERATIONS_DOC = REPO / "docs" / "operations.md"
PROMTOOL = shutil.which("promtool")
# Locally promtool is optional; in CI (.ci/run installs it) its absence is a failure.
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"),
    reason="promtool not installed (apt-get install prometheus)",
)

#: Series Prometheus itself creates for every target.
PROMETHEUS_BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def load_yaml(path: Path) -> Any:
    with path.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = compose["services"]
    assert isinstance(out, dict)
    return out


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services running our image (built from deploy/Dockerfile)."""
    return {
        name: svc
        for name, svc in services(compose).items()
        if isinstance(svc.get("build"), dict)
        and svc["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def worker_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in app_services(compose).items()
        if s.get("command") == ["creator-scores", "worker"]
    }


def settings_env_names() -> set[str]:
    """Every environment variable `Settings` reads (upper-cased; matching is case-insensitive)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c.upper() for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add((prefix + name).upper())
    return names


def settings_from(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for key in list(os.environ):
        if key.upper() in settings_env_names():
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Settings()


# -- docker-compose.yml ---------------------------------------------------------------


def test_compose_runs_the_whole_system(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert {"kafka", "redis", "topics", "prometheus", "grafana", "lag-exporter"} <= set(svc)
    assert set(worker_services(compose)) == {"worker-1", "worker-2"}
    kafka = svc["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"  # topics come from `topics`
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert "zookeeper" not in json.dumps(compose).lower()


def test_every_variable_set_for_our_image_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = settings_env_names()
    assert app_services(compose), "no service builds deploy/Dockerfile"
    for name, svc in app_services(compose).items():
        env = svc.get("environment", {})
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        unknown = sorted(k for k in env if k.upper() not in known)
        assert not unknown, f"{name} sets variables Settings does not read: {unknown}"


def test_compose_settings_load_and_match_the_defaults_and_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = Settings.model_construct()
    kafka_env = services(compose)["kafka"]["environment"]
    advertised = dict(
        item.split("://", 1) for item in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    for name, svc in app_services(compose).items():
        settings = settings_from(svc.get("environment", {}), monkeypatch)
        for topic_field in (
            "posts_topic", "tags_topic", "orders_topic", "changes_topic", "dead_letter_topic",
        ):  # fmt: skip
            assert getattr(settings, topic_field) == getattr(defaults, topic_field), name
        assert settings.app_id == defaults.app_id, name
        # The bootstrap address is the broker's in-network listener, the Redis URL the service.
        assert (
            settings.kafka_bootstrap_servers
            == advertised[kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        )
        assert settings.kafka_bootstrap_servers.split(":")[0] == "kafka"
        assert urlparse(settings.redis_url).hostname == "redis"
        assert settings.topic_partitions == int(kafka_env["KAFKA_NUM_PARTITIONS"])


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name, s in svc.items():
        deps = s.get("depends_on", {})
        for dep in deps:
            assert dep in svc, f"{name} depends on unknown service {dep}"
    assert svc["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in svc["kafka"] and "healthcheck" in svc["redis"]
    for name, s in worker_services(compose).items():
        assert s["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
        assert s["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert svc["topics"].get("restart") == "no"  # one-shot


def test_topic_creation_command_is_runnable_python(compose: dict[str, Any]) -> None:
    command = services(compose)["topics"]["command"]
    assert command[:2] == ["python", "-c"]
    tree = ast.parse(command[2])
    imported = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported
    for node in imported:
        assert node.module is not None
        module = importlib.import_module(node.module)
        for alias in node.names:
            assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


def test_commands_run_by_compose_exist_in_the_cli(compose: dict[str, Any]) -> None:
    for name, svc in app_services(compose).items():
        command = svc.get("command")
        if not command or command[0] != "creator-scores":
            continue
        sub = main.commands.get(command[1])
        assert sub is not None, f"{name}: `creator-scores {command[1]}` does not exist"
        options = {opt for p in sub.params for opt in getattr(p, "opts", [])}
        for arg in command[2:]:
            if arg.startswith("--"):
                assert arg in options, f"{name}: {command[1]} has no option {arg}"


def test_bind_mounts_point_at_files_in_the_repository(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_every_worker_on_its_metrics_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for sc in jobs["creator-scores-workers"]["static_configs"] for t in sc["targets"]}
    expected = set()
    for name, svc in worker_services(compose).items():
        port = settings_from(svc.get("environment", {}), monkeypatch).metrics_port
        expected.add(f"{name}:{port}")
    assert targets == expected
    exporter = services(compose)["lag-exporter"]["command"]
    port = exporter[exporter.index("--serve") + 1]
    lag_targets = {t for sc in jobs["creator-scores-lag"]["static_configs"] for t in sc["targets"]}
    assert lag_targets == {f"lag-exporter:{port}"}
    mount = next(v for v in services(compose)["prometheus"]["volumes"] if "deploy/prometheus" in v)
    assert mount.split(":")[1] == "/etc/prometheus"
    for rule_file in config["rule_files"]:
        assert (PROM_DIR / rule_file).is_file()


# -- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_is_slim_non_root_and_runs_the_worker() -> None:
    steps = dockerfile_instructions()
    froms = [rest for kw, rest in steps if kw == "FROM"]
    assert froms and all("-slim" in f for f in froms)
    final = max(i for i, (kw, _) in enumerate(steps) if kw == "FROM")
    users = [rest for kw, rest in steps[final:] if kw == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"0", "root"}
    cmd = next(rest for kw, rest in reversed(steps) if kw == "CMD")
    assert json.loads(cmd) == ["creator-scores", "worker"]
    exposed = [rest for kw, rest in steps[final:] if kw == "EXPOSE"]
    assert exposed == [str(Settings.model_fields["metrics_port"].default)]
    health = next(rest for kw, rest in steps if kw == "HEALTHCHECK")
    assert "/healthz" in health and "CREATOR_SCORES_METRICS_PORT" in health
    assert "CREATOR_SCORES_METRICS_PORT" in settings_env_names()
    for kw, rest in steps:
        if kw == "ENV":
            for name in re.findall(r"(CREATOR_SCORES_\w+)=", rest):
                assert name in settings_env_names(), name


def test_dockerfile_copies_only_what_exists_and_the_context_allows() -> None:
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for kw, rest in dockerfile_instructions():
        if kw == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY source {source} missing"
                assert source.rstrip("/") in allowed, f"{source} is outside the build context"


# -- metric names in PromQL ---------------------------------------------------------

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels and keywords removed)."""
    s = re.sub(r"\$\{?\w+\}?", "1m", expr)  # Grafana variables
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', s)
    s = re.sub(r"\{[^{}]*\}", "", s)  # label matchers
    s = re.sub(r"\[[^\[\]]*\]", "", s)  # ranges and subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    s = re.sub(r"(?<![\w:.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*", " ", s)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        word, after = match.group(0), s[match.end() :].lstrip()
        if after.startswith("(") or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_promql_metric_name_extraction() -> None:
    expr = (
        'sum by (le, topic) (rate(foo_seconds_bucket{topic="a b", x=~"y.*"}[5m])) '
        "/ on() group_left(x) bar_total offset 5m > 1e-3 "
        'and histogram_quantile(0.95, baz[$__rate_interval]) or vector(1) unless qux{a="}"}'
    )
    assert promql_metric_names(expr) == {"foo_seconds_bucket", "bar_total", "baz", "qux"}


def alert_rules() -> list[dict[str, Any]]:
    data = load_yaml(PROM_DIR / "alerts.yml")
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if "expr" in t]
    for var in dashboard()["templating"]["list"]:
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            assert inner, f"unexpected variable query {query}"
            exprs.append(inner.group(1))
    return exprs


def test_alerts_and_dashboard_use_only_metrics_the_workers_export() -> None:
    exported = exported_metric_names() | PROMETHEUS_BUILTIN
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        used[f"alert {rule['alert']}"] = promql_metric_names(rule["expr"])
    for i, expr in enumerate(dashboard_exprs()):
        used[f"dashboard expr {i}: {expr}"] = promql_metric_names(expr)
    all_used = set().union(*used.values())
    # The check must see the metrics this issue is about.
    assert {
        "kafka_consumergroup_group_lag_seconds", "kafka_consumergroup_group_status",
        "creator_scores_dead_letters_total", "creator_scores_top_creator_score",
        "creator_scores_event_time_to_redis_seconds_bucket",
    } <= all_used  # fmt: skip
    for where, names in used.items():
        assert names, f"{where} selects no metric"
        assert names <= exported, f"{where} uses unknown metrics {sorted(names - exported)}"


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    exprs = " ".join(r["expr"] for r in rules)
    for needed in ("kafka_consumergroup_group_max_lag_seconds", "kafka_consumergroup_group_status",
                   "creator_scores_dead_letters_total"):  # fmt: skip
        assert needed in exprs


# -- promtool -----------------------------------------------------------------------------


def promtool(*args: str, cwd: Path = PROM_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_prometheus_config_and_rules_load_with_promtool() -> None:
    proc = promtool("check", "config", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = promtool("check", "rules", "alerts.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in proc.stdout


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    proc = promtool("test", "rules", "alerts.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tested = {
        case["alertname"]
        for test in load_yaml(PROM_DIR / "alerts.test.yml")["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert {
        "CreatorScoresLagHigh", "CreatorScoresConsumerStalled", "CreatorScoresConsumerStopped",
        "CreatorScoresDeadLetterRate", "CreatorScoresNoWorkerUp",
    } <= tested  # fmt: skip


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = [
        re.sub(r"\$__\w+", "1m", e).replace("$group", "creator-scores") for e in dashboard_exprs()
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))
    proc = promtool("check", "rules", "dashboard-rules.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_are_structurally_valid_without_promtool() -> None:
    data = load_yaml(PROM_DIR / "alerts.yml")
    for group in data["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"])
            # Balanced brackets: the one PromQL error a YAML edit easily introduces.
            for opening, closing in ("()", "[]", "{}"):
                assert rule["expr"].count(opening) == rule["expr"].count(closing), rule["alert"]


# -- Grafana ------------------------------------------------------------------------------


def test_grafana_provisioning_matches_compose_and_prometheus(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    providers = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "creator-scores.yml")
    (provider,) = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    sources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = sources["datasources"]
    url = urlparse(source["url"])
    assert url.hostname == "prometheus" and url.port == 9090
    assert "9090:9090" in services(compose)["prometheus"]["ports"]


def test_dashboard_panels_are_well_formed() -> None:
    sources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    uid = sources["datasources"][0]["uid"]
    panels = list(dashboard_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels}
    for row in ("Lag", "Throughput", "Freshness", "Dead letters", "Top creators"):
        assert row in titles
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"][
            "w"
        ] <= 24
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == uid, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == uid, p["title"]


# -- docs -----------------------------------------------------------------------------------


def test_operations_doc_covers_every_alert_and_lag_metric() -> None:
    text = OPERATIONS_DOC.read_text()
    for rule in alert_rules():
        assert rule["alert"] in text, f"docs/operations.md does not explain {rule['alert']}"
    from streams.lag import LAG_METRICS
    from streams.observability import TOP_CREATORS_METRIC

    for name in [*LAG_METRICS, TOP_CREATORS_METRIC]:
        assert name in text, f"docs/operations.md does not list {name}"


def test_operations_doc_lists_every_pipeline_metric() -> None:
    from streams.metrics import REGISTRY

    text = OPERATIONS_DOC.read_text()
    for family in REGISTRY.collect():
        assert family.name in text, f"docs/operations.md does not list {family.name}"
