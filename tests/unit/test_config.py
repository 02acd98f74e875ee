from __future__ import annotations

import pytest

from shipyard.config import SETTINGS, Settings
from shipyard.errors import InvalidInput


def test_defaults() -> None:
    settings = Settings.resolve(env={})
    assert settings.tracking_uri == "sqlite:///./.shipyard/shipyard.db"
    assert settings.artifact_uri == "./.shipyard/artifacts"
    assert set(settings.sources.values()) == {"default"}


def test_precedence_argument_over_env_over_default() -> None:
    env = {"SHIPYARD_TRACKING_URI": "sqlite:///env.db", "SHIPYARD_CAPTURE_GIT": "off"}
    settings = Settings.resolve(env=env, tracking_uri="sqlite:///arg.db")
    assert settings.tracking_uri == "sqlite:///arg.db"
    assert settings.sources["tracking_uri"] == "argument"
    assert settings.capture_git is False
    assert settings.sources["capture_git"] == "env"
    assert settings.sources["artifact_uri"] == "default"


@pytest.mark.parametrize(("var", "raw"), [("SHIPYARD_CAPTURE_GIT", "maybe"),
                                          ("SHIPYARD_WRITER_BATCH_SIZE", "-3"),
                                          ("SHIPYARD_WRITER_LINGER_SECONDS", "soon")],
                         ids=["bool", "negative-int", "float"])
def test_bad_env_value_names_the_variable(var: str, raw: str) -> None:
    with pytest.raises(InvalidInput, match=var):
        Settings.resolve(env={var: raw})


def test_unknown_argument() -> None:
    with pytest.raises(InvalidInput, match="unknown setting"):
        Settings.resolve(env={}, tracking_url="x")


def test_every_setting_is_a_field_and_documented() -> None:
    from pathlib import Path

    fields = set(Settings.__dataclass_fields__) - {"sources"}
    assert fields == {s.name for s in SETTINGS}
    docs = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert setting.env_var in docs, f"{setting.env_var} is missing from docs/configuration.md"


def test_describe_reports_sources() -> None:
    rows = Settings.resolve(env={"SHIPYARD_WRITER_BATCH_SIZE": "7"}).describe()
    assert rows[[r[0] for r in rows].index("writer_batch_size")][:3] == ("writer_batch_size", 7, "env")


def test_cli_option_help_reads_the_settings_table() -> None:
    from shipyard.cli.context import setting_help
    from shipyard.config import SETTINGS

    hosts = next(s for s in SETTINGS if s.name == "server_allowed_hosts")
    assert setting_help("Hosts.", "server_allowed_hosts") == \
        f"Hosts. \\[default: ${hosts.env_var}, else {hosts.default}]"
    assert setting_help("Store.", "tracking_uri", via="the global --tracking-uri", otherwise="./.shipyard") == \
        "Store. \\[default: the global --tracking-uri, $SHIPYARD_TRACKING_URI, else ./.shipyard]"
    with pytest.raises(StopIteration):
        setting_help("Nothing.", "no_such_setting")
