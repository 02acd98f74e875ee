"""Kubernetes and KServe manifests for a deployment's serving image, as plain dicts.

:func:`kubernetes_objects` gives a ``Deployment``, a ``Service`` (port 80 to the app's 8080)
and a ``HorizontalPodAutoscaler`` (autoscaling/v2, CPU utilisation); :func:`inference_service`
gives a KServe ``InferenceService`` with a custom predictor running the same image. Both run
``shipyard deploy run NAME`` (the image's ``CMD``), probe ``/v2/health/live`` and
``/v2/health/ready``, let Prometheus scrape ``/metrics``, and read ``SHIPYARD_TRACKING_URI``
(and, when set, ``SHIPYARD_ARTIFACT_URI``) from a Secret at run time: nothing about the store is
baked into the image. :func:`dump_yaml` writes them with a stable key order, so the same
deployment always gives the same bytes. Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.entities import Deployment
from shipyard.errors import InvalidInput

__all__ = ["HEALTH_LIVE", "HEALTH_READY", "METRICS_PATH", "PORT", "Target", "dump_yaml", "inference_service",
           "kubernetes_name", "kubernetes_objects"]

PORT = 8080
HEALTH_LIVE = "/v2/health/live"
HEALTH_READY = "/v2/health/ready"
METRICS_PATH = "/metrics"
TRACKING_URI_KEY = "tracking-uri"
ARTIFACT_URI_KEY = "artifact-uri"
# The image's user (the Dockerfile creates it with these ids).
RUN_AS = 10001
# uvicorn stops taking connections on SIGTERM and the batcher drains; 30 s covers a slow batch.
GRACE_SECONDS = 30

_LABEL_MAX = 63  # a DNS label, and a label value


@dataclass(frozen=True)
class Target:
    """What the manifests describe: ``deployment`` served by ``image``, scaled by CPU
    between its ``replicas`` and ``max_replicas``, with the store's URIs in Secret ``secret``."""

    deployment: Deployment
    image: str
    max_replicas: int
    secret: str
    cpu_target_percent: int = 70

    @property
    def name(self) -> str:
        return kubernetes_name(self.deployment.name)


def kubernetes_name(name: str) -> str:
    """``name`` as a DNS-1035 label (what a Service and a KServe InferenceService need):
    lower case letters, digits and ``-``, starting with a letter, at most 63 characters.
    ``Churn API.v2`` becomes ``churn-api-v2``; a name cut to fit keeps a hash of the whole."""
    label = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not label:
        raise InvalidInput(f"deployment name {name!r} has no letter or digit to name Kubernetes objects after")
    if not label[0].isalpha():
        label = f"d-{label}"
    if len(label) > _LABEL_MAX:
        digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        label = f"{label[:_LABEL_MAX - len(digest) - 1].rstrip('-')}-{digest}"
    return label


def _labels(target: Target) -> dict[str, str]:
    return {"app.kubernetes.io/name": target.name, "app.kubernetes.io/component": "model-serving",
            "app.kubernetes.io/part-of": "shipyard", "app.kubernetes.io/managed-by": "shipyard"}


def _selector(target: Target) -> dict[str, str]:
    return {"app.kubernetes.io/name": target.name, "app.kubernetes.io/component": "model-serving"}


def _annotations(target: Target) -> dict[str, str]:
    d = target.deployment
    return {"shipyard.dev/deployment": d.name, "shipyard.dev/environment": d.environment,
            "shipyard.dev/revision": str(d.revision),
            "shipyard.dev/models": ",".join(ref.uri for ref in d.versions)}


def _metadata(target: Target) -> dict[str, Any]:
    return {"name": target.name, "labels": _labels(target), "annotations": _annotations(target)}


def _env(target: Target) -> list[dict[str, Any]]:
    return [
        {"name": "SHIPYARD_TRACKING_URI",
         "valueFrom": {"secretKeyRef": {"name": target.secret, "key": TRACKING_URI_KEY}}},
        {"name": "SHIPYARD_ARTIFACT_URI",
         "valueFrom": {"secretKeyRef": {"name": target.secret, "key": ARTIFACT_URI_KEY, "optional": True}}},
    ]


def _resources(target: Target) -> dict[str, Any]:
    """Requests equal to limits for what the deployment sets (the Guaranteed class when both
    are set); what it leaves empty is left to the platform."""
    r = target.deployment.resources
    amounts = {key: value for key, value in (("cpu", r.cpu), ("memory", r.memory)) if value}
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _probes(port: int | str) -> dict[str, Any]:
    return {
        # Live as soon as the process answers: models load in the background.
        "livenessProbe": {"httpGet": {"path": HEALTH_LIVE, "port": port}, "initialDelaySeconds": 5,
                          "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
        # Ready once every model is in memory; large models may take a while.
        "readinessProbe": {"httpGet": {"path": HEALTH_READY, "port": port}, "initialDelaySeconds": 2,
                           "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
    }


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def _container(target: Target, name: str, port_name: str, *, extra_env: Sequence[dict[str, Any]] = ()
               ) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": target.image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": port_name, "containerPort": PORT, "protocol": "TCP"}],
        "env": [*extra_env, *_env(target)],
    }
    if resources := _resources(target):
        container["resources"] = resources
    return {**container, **_probes(PORT), "securityContext": _container_security()}


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _scrape_annotations() -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT), "prometheus.io/path": METRICS_PATH}


def kubernetes_objects(target: Target) -> list[dict[str, Any]]:
    """The Deployment, the Service and (with at least one replica) the HorizontalPodAutoscaler."""
    replicas = target.deployment.resources.replicas
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(target),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(target)},
            # Never below the replicas asked for while a new image rolls out.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": _labels(target), "annotations": _scrape_annotations()},
                "spec": {
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "securityContext": _pod_security(),
                    "containers": [_container(target, "serving", "http")],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": _metadata(target),
        "spec": {"type": "ClusterIP", "selector": _selector(target),
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    }
    if replicas < 1:  # autoscaling/v2 cannot scale from zero; a deployment at 0 replicas stays there
        return [deployment, service]
    autoscaler = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _metadata(target),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target.name},
            "minReplicas": replicas, "maxReplicas": target.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target.cpu_target_percent}}}],
        },
    }
    return [deployment, service, autoscaler]


def inference_service(target: Target) -> dict[str, Any]:
    """A KServe ``InferenceService`` whose predictor is the image itself (a custom predictor).

    KServe reads a custom predictor's protocol from the ``PROTOCOL`` environment variable of its
    container (``protocolVersion`` exists only on model and framework predictors and would be
    pruned here); ``v2`` is the Open Inference Protocol the app speaks. Scaling follows the
    same replicas, maximum and CPU target as :func:`kubernetes_objects`."""
    metadata = _metadata(target)
    metadata["annotations"] = {**metadata["annotations"], "serving.kserve.io/enable-prometheus-scraping": "true",
                               "prometheus.kserve.io/port": str(PORT), "prometheus.kserve.io/path": METRICS_PATH}
    replicas = target.deployment.resources.replicas
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": metadata,
        "spec": {"predictor": {
            "minReplicas": replicas, "maxReplicas": target.max_replicas,
            "scaleMetric": "cpu", "scaleTarget": target.cpu_target_percent,
            "terminationGracePeriodSeconds": GRACE_SECONDS,
            "securityContext": _pod_security(),
            # Knative names the one serving port http1 (h2c is for gRPC).
            "containers": [_container(target, "kserve-container", "http1",
                                      extra_env=[{"name": "PROTOCOL", "value": "v2"}])],
        }},
    }


def dump_yaml(documents: Sequence[dict[str, Any]], header: str = "") -> str:
    """``documents`` as one YAML stream in the order they were built (``apiVersion``, ``kind``,
    ``metadata``, ``spec``), with ``header`` as a leading comment."""
    import yaml

    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, explicit_start=True,
                                        width=1_000_000, allow_unicode=True)
