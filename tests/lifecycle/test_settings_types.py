"""Every setting keeps its type whichever way it arrives: as text from a CITADEL_* variable or
as a TOML value. (A data dir from the environment once stayed a str and broke start-up.)"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from citadel.server.config import Settings

DEFAULTS = Settings()
SETTINGS = [f for f in fields(Settings) if getattr(DEFAULTS, f.name) is not None]


def as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def as_toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a basic TOML string


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda f: f.name)
def test_a_variable_keeps_the_type(setting) -> None:
    default = getattr(DEFAULTS, setting.name)
    loaded = Settings.from_env({f"CITADEL_{setting.name.upper()}": as_text(default)})
    assert type(getattr(loaded, setting.name)) is type(default)
    assert getattr(loaded, setting.name) == default


@pytest.mark.parametrize(
    "setting",
    [f for f in SETTINGS if not isinstance(getattr(DEFAULTS, f.name), (list, dict))],
    ids=lambda f: f.name,
)
def test_a_toml_value_keeps_the_type(setting, tmp_path: Path) -> None:
    default = getattr(DEFAULTS, setting.name)
    section, _, key = setting.metadata["key"].rpartition(".")
    config = tmp_path / "citadel.toml"
    config.write_text(f"[{section}]\n{key} = {as_toml(default)}\n")
    loaded = Settings.load(config, env={})
    assert type(getattr(loaded, setting.name)) is type(default)
    assert getattr(loaded, setting.name) == default
