"""The shape rules of tracking data, checked before anything reaches a store.

Each rule's error message says what was wrong and what is allowed. Metric keys are checked
once per distinct key (cached), since ``log_metric`` is the hot path.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Any, cast

from shipyard.errors import InvalidInput

MAX_NAME_LENGTH = 256
MAX_RUN_NAME_LENGTH = 250
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000

_KEY = re.compile(r"[A-Za-z0-9_\-. /:]+")
_MODEL_NAME = re.compile(r"[A-Za-z0-9_\-. ]+")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_valid_metric_keys: set[str] = set()


def check_name(kind: str, value: Any, max_length: int = MAX_NAME_LENGTH) -> str:
    """An experiment or run name: a non-blank string of at most ``max_length`` characters
    without control characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{kind} must be a string, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise InvalidInput(f"{kind} must not be empty or blank")
    if len(value) > max_length:
        raise InvalidInput(f"{kind} is {len(value)} characters long; at most {max_length} are allowed")
    if _CONTROL.search(value):
        raise InvalidInput(f"{kind} {value!r} contains a control character (tab, newline, ...); "
                           "use printable characters only")
    return value


def check_key(kind: str, key: Any) -> str:
    """A metric, param or tag key: 1-250 of letters, digits, ``_ - . / :`` and spaces, not
    starting with ``/`` and without ``..`` (keys double as artifact-like paths)."""
    if not isinstance(key, str):
        raise InvalidInput(f"{kind} key must be a string, got {type(key).__name__} {key!r}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"{kind} key {key!r} must be 1 to {MAX_KEY_LENGTH} characters long")
    if not _KEY.fullmatch(key) or key.startswith("/") or ".." in key:
        raise InvalidInput(f"{kind} key {key!r} is not valid: use letters, digits, spaces and _ - . / : "
                           "only, not starting with '/' and without '..'")
    return key


def check_metric_key(key: Any) -> str:
    if key in _valid_metric_keys:
        return cast(str, key)  # a member of a set of str
    checked = check_key("metric", key)
    _valid_metric_keys.add(checked)
    return checked


def metric_value(key: str, value: Any) -> float:
    """A number (NaN and ±inf allowed); bools count as 0/1, anything else is an error."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"metric {key!r} must be a number, got {type(value).__name__} {value!r}") from None


def metric_step(key: str, step: Any) -> int:
    if step is None:
        return 0
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if not isinstance(step, int):
        raise InvalidInput(f"step of metric {key!r} must be a whole number, got {step!r}")
    return step


def _bounded_text(kind: str, key: str, value: Any, limit: int, hint: str = "") -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r} has a value of {len(text)} characters; at most {limit} are allowed{hint}")
    return text


def param_value(key: str, value: Any) -> str:
    return _bounded_text("param", key, value, MAX_PARAM_VALUE_LENGTH, " (log long values as an artifact)")


def tag_value(key: str, value: Any) -> str:
    return _bounded_text("tag", key, value, MAX_TAG_VALUE_LENGTH)


def check_model_name(name: Any) -> str:
    """A registered model name: a name (1-256 characters) of letters, digits, spaces and
    ``_ - .``; no ``/`` or ``@``, which separate versions and aliases in ``models:/`` URIs."""
    return _check_registry_name("model name", name)


def check_dataset_name(name: Any) -> str:
    """A dataset name: the registered model name rule (:func:`check_model_name`), since
    ``dataset:<name>@<version>`` lineage nodes and URL path segments need the same care."""
    return _check_registry_name("dataset name", name)


def check_deployment_name(name: Any) -> str:
    """A deployment name: the registered model name rule (:func:`check_model_name`), for the
    same reasons (``deployment:<name>`` lineage nodes, URL path segments)."""
    return _check_registry_name("deployment name", name)


def _check_registry_name(kind: str, value: Any) -> str:
    name = check_name(kind, value)
    if not _MODEL_NAME.fullmatch(name) or name.strip() != name or not name.strip("."):
        raise InvalidInput(f"{kind} {name!r} is not valid: use letters, digits, spaces and _ - . "
                           "(no '/' or '@'), without leading or trailing spaces")
    return name


def check_project(project: Any) -> str:
    """The project an object is created in: a name (1-256 characters, no control characters).
    Whether it exists, and who may use it, is access control's business, not a shape rule."""
    return check_name("project", project)


def check_projects(projects: Any) -> tuple[str, ...] | None:
    """A ``projects`` filter: ``None`` (every project) or a sequence of project names (an empty
    one matches nothing). A bare string is refused rather than read as its letters."""
    if projects is None:
        return None
    if isinstance(projects, str | bytes) or not isinstance(projects, Sequence | set | frozenset):
        raise InvalidInput(f"projects must be a list of project names (e.g. ['default']) or None for every "
                           f"project, got {type(projects).__name__} {projects!r}", field="projects")
    names = tuple(projects)
    for name in names:
        if not isinstance(name, str):
            raise InvalidInput(f"projects must hold project names (strings), got {type(name).__name__} {name!r}",
                               field="projects")
    return names


def check_alias(alias: Any) -> str:
    """An alias: a letter, then letters, digits, ``_`` and ``-`` (at most 256); not ``latest``,
    which always means the newest version."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or len(alias) > MAX_NAME_LENGTH:
        raise InvalidInput(f"alias {alias!r} is not valid: start with a letter, then letters, digits, _ or -")
    if alias.lower() == "latest":
        raise InvalidInput("alias 'latest' is reserved: models:/<name>/latest always means the newest version")
    return alias


def check_whole(field: str, value: Any, low: int, high: int) -> int:
    """``value`` when it is an int (not a bool) from ``low`` to ``high``; the error names ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{field}: must be a whole number from {low} to {high}, got {value!r}", field=field)
    return value


def check_max_results(max_results: Any, limit: int = 50_000) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise InvalidInput(f"max_results must be a whole number from 1 to {limit}, got {max_results!r}")
    return max_results


def check_choice(kind: str, value: Any, choices: type[enum.Enum]) -> Any:
    """``value`` as a member of the enum ``choices`` (given as a member or its value)."""
    try:
        return choices(value.upper() if isinstance(value, str) else value)
    except ValueError:
        raise InvalidInput(f"{kind} {value!r} is not valid; use one of "
                           + ", ".join(str(c.value) for c in choices)) from None
