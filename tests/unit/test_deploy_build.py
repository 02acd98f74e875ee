"""``shipyard deploy build``: the image's Dockerfile and requirements, and Kubernetes and KServe manifests
that validate offline against the real schemas."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import shipyard
from shipyard import deploy
from shipyard.cli import app
from shipyard.deploy.bundle import Pin, build_bundle, merge_requirements, render_bundle
from shipyard.deploy.manifests import kubernetes_name
from shipyard.entities import Resources
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.models.manifest import ModelManifest
from shipyard.models.package import save_model

SHIPYARD = "9.9.9"
FILES = ["Dockerfile", "requirements.txt", "kubernetes.yaml", "kserve.yaml", "README.md"]


@dataclasses.dataclass
class Registry:
    client: shipyard.Client
    tracking_uri: str
    artifact_uri: str
    work: Path

    def log(self, model: Any, *, edit: Callable[[list[str]], list[str]] = list, python: str | None = None) -> int:
        """Register ``model`` as the next version of ``churn``, its manifest's requirements
        changed by ``edit`` and its Python version replaced by ``python``."""
        run_id = self.client.create_run("0", "train").info.run_id
        folder = self.work / run_id
        manifest = save_model(model, folder)
        changed = dataclasses.replace(manifest, requirements=edit(list(manifest.requirements)),
                                      python_version=python or manifest.python_version)
        changed.write(folder)  # the digests cover the other files, not MLmodel
        self.client.log_artifacts(run_id, folder, "model")
        self.client.set_terminated(run_id)
        return self.client.register_model(f"runs:/{run_id}/model", "churn").version

    def manifest(self, version: int) -> ModelManifest:
        return self.client.get_model_manifest(f"models:/churn/{version}")


def _fit(estimator: Any) -> Any:
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=40), "y": np.random.default_rng(1).normal(size=40)})
    return estimator.fit(frame, frame["x"] > frame["y"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Model ``churn``: 1 a logistic regression, 2 a decision tree, 3 a random forest (real
    sklearn models), 4 a decision tree whose manifest adds a pin, 5 one whose manifest pins
    numpy differently, 6 one saved with another Python, 7 one with an unpinned requirement.
    Deployment ``churn-api``: 1 at 90%, 2 at 10% (canary), 3 shadowing, 2 replicas of 500m, 1Gi."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    tmp = tmp_path_factory.mktemp("build")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
        patch.setenv("LOGNAME", "ana")
        uri, artifacts = f"sqlite:///{tmp / 'db.sqlite'}", str(tmp / "artifacts")
        reg = Registry(shipyard.Client(tracking_uri=uri, artifact_uri=artifacts), uri, artifacts, tmp / "packages")
        reg.log(_fit(LogisticRegression()))
        reg.log(_fit(DecisionTreeClassifier(max_depth=2)))
        reg.log(_fit(RandomForestClassifier(n_estimators=3, random_state=0)))
        reg.log(_fit(DecisionTreeClassifier(max_depth=3)), edit=lambda pins: [*pins, "Threadpoolctl==3.5.0"])
        reg.log(_fit(DecisionTreeClassifier()),
                edit=lambda pins: ["numpy==1.0.0" if p.startswith("numpy==") else p for p in pins])
        reg.log(_fit(DecisionTreeClassifier()), python="3.12.1")
        reg.log(_fit(DecisionTreeClassifier()), edit=lambda pins: [*pins, "pandas>=2"])
        deploy.create_deployment(reg.client, "churn-api", "models:/churn/1", "production",
                                 resources=Resources(2, "500m", "1Gi"))
        deploy.canary(reg.client, "churn-api", "models:/churn/2", 10)
        deploy.shadow(reg.client, "churn-api", "models:/churn/3")
        yield reg
        reg.client.close()


def _deployment(reg: Registry, name: str, *versions: int, resources: Resources | None = None) -> str:
    """Deployment ``name`` with ``versions[0]`` as primary, then a canary and shadows."""
    deploy.create_deployment(reg.client, name, f"models:/churn/{versions[0]}", resources=resources)
    if len(versions) > 1:
        deploy.canary(reg.client, name, f"models:/churn/{versions[1]}", 20)
    for version in versions[2:]:
        deploy.shadow(reg.client, name, f"models:/churn/{version}")
    return name


@pytest.fixture(scope="module")
def bundle(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "deploy"
    build_bundle(registry.client, "churn-api", out, image="registry.example.com/churn-api:1.0",
                 shipyard_version=SHIPYARD, max_replicas=8)
    return out


def _objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _canonical(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


# -- Kubernetes ---------------------------------------------------------------------------------
K8S_VERSIONS = ["1.30", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("k8s", K8S_VERSIONS)
def test_kubernetes_objects_validate_strictly_against_the_schemas(bundle: Path, k8s: str) -> None:
    objects = _objects(bundle / "kubernetes.yaml")
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for obj in objects:  # strict: an unknown or misplaced field fails too
        kubernetes_validate.validate(obj, k8s, strict=True)


def test_the_validator_is_not_vacuous(bundle: Path) -> None:
    deployment = _objects(bundle / "kubernetes.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    deployment = _objects(bundle / "kubernetes.yaml")[0]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_kubernetes_objects_follow_the_deployment_record(bundle: Path) -> None:
    deployment, service, autoscaler = _objects(bundle / "kubernetes.yaml")
    assert {o["metadata"]["name"] for o in (deployment, service, autoscaler)} == {"churn-api"}
    assert deployment["metadata"]["annotations"]["shipyard.dev/models"] == \
        "models:/churn/1,models:/churn/2,models:/churn/3"
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert spec["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
    [container] = pod["containers"]
    assert container["image"] == "registry.example.com/churn-api:1.0"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                      "limits": {"cpu": "500m", "memory": "1Gi"}}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    env = {e["name"]: e for e in container["env"]}
    assert env["SHIPYARD_TRACKING_URI"] == {"name": "SHIPYARD_TRACKING_URI", "valueFrom": {
        "secretKeyRef": {"name": "churn-api-shipyard", "key": "tracking-uri"}}}
    assert env["SHIPYARD_ARTIFACT_URI"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "value" not in env["SHIPYARD_TRACKING_URI"]  # never a literal in the manifest

    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]

    hpa = autoscaler["spec"]
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-api"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    assert hpa["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]


# -- KServe -------------------------------------------------------------------------------------
# No KServe CRD ships offline with a validator, so the InferenceService is checked in two parts:
# the fields KServe adds to a predictor against this schema, written from KServe's v1beta1 API
# reference (InferenceService, PredictorSpec, ComponentExtensionSpec; scaleMetric's enum), and
# the PodSpec fields KServe inlines into the predictor strictly against Kubernetes' own schema.
# During development the whole object was also checked against the openAPIV3Schema of KServe's
# released CRD (v0.20, config/crd/full/serving.kserve.io_inferenceservices.yaml), with no field
# pruned; that 2 MB file is not vendored.
_EXTENSION = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "scaleMetricType", "containerConcurrency",
              "timeout", "canaryTrafficPercent", "labels", "annotations", "deploymentStrategy"}
_DNS_1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
KSERVE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": _DNS_1035, "maxLength": 63},
                           "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                           "annotations": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
        "spec": {
            "type": "object", "required": ["predictor"], "additionalProperties": False,
            "properties": {"predictor": {
                "type": "object", "required": ["containers"],
                "properties": {
                    "minReplicas": {"type": "integer", "minimum": 0},
                    "maxReplicas": {"type": "integer", "minimum": 0},
                    "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
                    "scaleTarget": {"type": "integer", "minimum": 1},
                    # A custom predictor: exactly one serving container, named as KServe names it.
                    "containers": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                        "type": "object", "required": ["name", "image"],
                        "properties": {"name": {"const": "kserve-container"}}}},
                },
            }},
        },
    },
}


def test_inference_service_validates(bundle: Path) -> None:
    [isvc] = _objects(bundle / "kserve.yaml")
    jsonschema.Draft202012Validator(KSERVE_SCHEMA).validate(isvc)
    predictor = isvc["spec"]["predictor"]
    pod_spec = {k: v for k, v in predictor.items() if k not in _EXTENSION}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod_spec}
    kubernetes_validate.validate(pod, K8S_VERSIONS[-1], strict=True)
    misplaced = {**isvc, "spec": {"predictor": predictor, "protocolVersion": "v2"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(KSERVE_SCHEMA).validate(misplaced)


def test_inference_service_runs_the_same_image_with_the_v2_protocol(bundle: Path) -> None:
    [isvc] = _objects(bundle / "kserve.yaml")
    deployment = _objects(bundle / "kubernetes.yaml")[0]
    predictor = isvc["spec"]["predictor"]
    [container] = predictor["containers"]
    [serving] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == serving["image"] == "registry.example.com/churn-api:1.0"
    assert container["ports"][0]["containerPort"] == 8080
    # KServe reads a custom predictor's protocol from PROTOCOL on its container.
    assert {"name": "PROTOCOL", "value": "v2"} in container["env"]
    assert container["livenessProbe"] == serving["livenessProbe"]
    assert container["readinessProbe"] == serving["readinessProbe"]
    assert container["resources"] == serving["resources"]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"]) == (2, 8, "cpu")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/enable-prometheus-scraping"] == "true"


# -- image --------------------------------------------------------------------------------------
def test_requirements_are_exactly_the_union_of_the_versions_pins(registry: Registry, tmp_path: Path) -> None:
    name = _deployment(registry, "union-api", 1, 4, 3)
    build_bundle(registry.client, name, tmp_path, shipyard_version=SHIPYARD)
    expected = {_canonical(r) for v in (1, 4, 3) for r in registry.manifest(v).requirements}
    assert "threadpoolctl==3.5.0" in expected  # only version 4 pins it
    lines = (tmp_path / "requirements.txt").read_text().splitlines()
    assert lines == sorted(lines)
    assert len(lines) == len(set(lines))
    assert set(lines) == expected | {f"shipyard-mlops[server]=={SHIPYARD}"}


def test_the_dockerfile_installs_the_requirements_file_and_nothing_else(registry: Registry, bundle: Path) -> None:
    dockerfile = (bundle / "Dockerfile").read_text()
    instructions = [line for line in re.sub(r"\\\n", " ", dockerfile).splitlines()
                    if line.strip() and not line.startswith("#")]
    python = ".".join(registry.manifest(1).python_version.split(".")[:2])
    assert instructions[0] == f"FROM python:{python}-slim"
    installs = [line for line in instructions if re.search(r"\b(pip|apt-get|apk|conda|uv)\b", line)]
    assert len(installs) == 1
    assert re.fullmatch(r"RUN python -m pip install --no-input --requirement /tmp/requirements\.txt\s+&& "
                        r"rm /tmp/requirements\.txt", installs[0])
    assert "COPY requirements.txt /tmp/requirements.txt" in instructions
    assert not [line for line in instructions if line.startswith(("ADD", "COPY")) and "requirements.txt" not in line]
    users = [line for line in instructions if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert instructions.index(users[0]) > instructions.index(installs[0])
    healthcheck = next(line for line in instructions if line.startswith("HEALTHCHECK"))
    assert "http://127.0.0.1:8080/v2/health/live" in healthcheck
    assert instructions[-1] == \
        'CMD ["shipyard", "deploy", "run", "churn-api", "--host", "0.0.0.0", "--port", "8080", "--insecure"]'
    # Required at run time, documented, never baked in.
    assert "SHIPYARD_TRACKING_URI  required" in dockerfile
    assert "SHIPYARD_SERVING_AUTH  true" in dockerfile
    assert not [line for line in instructions if "SHIPYARD_" in line]


def test_every_requirement_is_an_exact_pin(bundle: Path) -> None:
    for line in (bundle / "requirements.txt").read_text().splitlines():
        assert re.fullmatch(r"[a-z0-9-]+(\[[a-z0-9,-]+\])?==[A-Za-z0-9.+!-]+", line), line


def test_output_is_byte_identical_when_built_again(registry: Registry, bundle: Path, tmp_path: Path) -> None:
    build_bundle(registry.client, "churn-api", tmp_path, image="registry.example.com/churn-api:1.0",
                 shipyard_version=SHIPYARD, max_replicas=8)
    build_bundle(registry.client, "churn-api", tmp_path, image="registry.example.com/churn-api:1.0",
                 shipyard_version=SHIPYARD, max_replicas=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (bundle / name).read_bytes(), name


def test_the_readme_says_how_to_build_push_and_apply(bundle: Path) -> None:
    readme = (bundle / "README.md").read_text()
    for expected in ("docker build -t registry.example.com/churn-api:1.0 .",
                     "docker push registry.example.com/churn-api:1.0", "kubectl apply -f kubernetes.yaml",
                     "kubectl apply -f kserve.yaml", "kubectl create secret generic churn-api-shipyard",
                     "`models:/churn/3` | mirror"):
        assert expected in readme, expected


# -- refusals -----------------------------------------------------------------------------------
def test_conflicting_pins_name_both_versions(registry: Registry, tmp_path: Path) -> None:
    name = _deployment(registry, "clash-api", 1, 5)
    numpy = next(r for r in registry.manifest(1).requirements if r.startswith("numpy=="))
    with pytest.raises(Conflict, match="numpy") as raised:
        build_bundle(registry.client, name, tmp_path)
    assert all(part in str(raised.value) for part in ("churn/1", "churn/5", numpy, "numpy==1.0.0"))
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_conflicting_python_versions_and_unpinned_requirements_are_refused(registry: Registry) -> None:
    with pytest.raises(Conflict, match=r"churn/1 .*churn/6 with Python 3\.12"):
        render_bundle(registry.client, _deployment(registry, "python-api", 1, 6))
    with pytest.raises(InvalidInput, match=r"churn/7 requires 'pandas>=2'.*not an exact pin"):
        render_bundle(registry.client, _deployment(registry, "loose-api", 7))
    with pytest.raises(InvalidInput, match=r"3\.11 or newer"):
        render_bundle(registry.client, "churn-api", python_version="3.10")


def test_the_image_shipyard_must_agree_with_a_models_pin() -> None:
    with pytest.raises(Conflict, match=r"the serving image requires shipyard-mlops==2\.0"):
        merge_requirements([("churn/1", ["Shipyard_MLOps==1.0"]),
                            ("the serving image", ["shipyard-mlops[server]==2.0"])])
    assert [str(p) for p in merge_requirements([("a", ["A.B[x]==1", "c==2"]), ("b", ["a-b[Y]==1"])])] == \
        ["a-b[x,y]==1", "c==2"]
    assert Pin.parse(" numpy == 2.0.1 ", "a") == Pin("numpy", "2.0.1")


def test_unknown_deployment_bad_image_and_replicas(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nope"):
        build_bundle(registry.client, "nope", tmp_path)
    with pytest.raises(InvalidInput, match="image"):
        render_bundle(registry.client, "churn-api", image="not an image")
    with pytest.raises(InvalidInput, match="at least 2"):
        render_bundle(registry.client, "churn-api", max_replicas=1)


def test_the_bundle_is_domain_code_on_a_registry_service(registry: Registry) -> None:
    """Built from a Store and an ArtifactStore (no Client): the same bundle as the SDK's spelling."""
    from shipyard.auth import Principal
    from shipyard.models.registry import RegistryService

    client = registry.client
    service = RegistryService(client.store, client.artifacts, Principal("bob"))
    assert render_bundle(service, "churn-api").files == render_bundle(client, "churn-api").files


def test_defaults_and_a_deployment_without_cpu_or_replicas(registry: Registry) -> None:
    made = render_bundle(registry.client, "churn-api")
    assert made.image == "churn-api:rev3"
    objects = list(yaml.safe_load_all(made.files["kubernetes.yaml"]))
    assert objects[-1]["kind"] == "HorizontalPodAutoscaler"
    assert objects[-1]["spec"]["maxReplicas"] == 6
    assert made.warnings == ()
    idle = render_bundle(registry.client, _deployment(registry, "Idle API.v2", 1, resources=Resources(0)))
    objects = list(yaml.safe_load_all(idle.files["kubernetes.yaml"]))
    assert [o["kind"] for o in objects] == ["Deployment", "Service"]
    assert objects[0]["metadata"]["name"] == "idle-api-v2"
    assert "resources" not in objects[0]["spec"]["template"]["spec"]["containers"][0]
    assert any("CPU" in w for w in render_bundle(
        registry.client, _deployment(registry, "no-cpu-api", 1)).warnings)
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(("name", "expected"), [
    ("churn-api", "churn-api"), ("Churn API.v2", "churn-api-v2"), ("2024_model", "d-2024-model"),
    ("x" * 80, "x" * 54 + "-"), ("-a-", "a")], ids=["plain", "spaces-dots", "digit-first", "long", "dashes"])
def test_kubernetes_names(name: str, expected: str) -> None:
    label = kubernetes_name(name)
    assert label.startswith(expected)
    assert re.fullmatch(_DNS_1035, label)
    assert len(label) <= 63


# -- CLI ----------------------------------------------------------------------------------------
def _invoke(registry: Registry, *args: str) -> Any:
    return CliRunner().invoke(app, ["--tracking-uri", registry.tracking_uri, "--artifact-uri", registry.artifact_uri,
                                    "deploy", "build", *args], env={"COLUMNS": "200"})


def test_cli_builds_and_prints_the_files(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = _invoke(registry, "churn-api", "--out", str(out), "--image", "registry.example.com/churn:2",
                     "--max-replicas", "5")
    assert result.exit_code == 0, result.output
    assert "Built churn-api revision 3 for image registry.example.com/churn:2" in result.stdout
    for name in FILES:
        assert str(out / name) in result.stdout
    assert "image: registry.example.com/churn:2" in (out / "kubernetes.yaml").read_text()
    assert "maxReplicas: 5" in (out / "kserve.yaml").read_text()


def test_cli_errors_are_a_message_and_an_exit_code(registry: Registry, tmp_path: Path) -> None:
    _deployment(registry, "cli-clash-api", 1, 5)
    for args, code, message in [(("nope",), 3, "does not exist"), (("cli-clash-api",), 4, "conflicting pins"),
                                (("churn-api", "--image", "a b"), 2, "image")]:
        result = _invoke(registry, *args, "--out", str(tmp_path))
        assert result.exit_code == code, result.output
        assert result.stderr.startswith("Error: ")
        assert message in result.stderr
        assert "Traceback" not in result.output
    usage = _invoke(registry, "churn-api", "--out", str(tmp_path), "--max-replicas", "0")
    assert usage.exit_code == 2
