"""The [tracing] settings: TOML keys and CITADEL_TRACING_* variables, validated with the key named."""

from __future__ import annotations

import pytest

from citadel.server.config import ConfigError, Settings


def load(tmp_path, toml: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "citadel.toml"
    path.write_text(toml)
    return Settings.load(path, env or {})


def test_defaults_are_off_and_loopback():
    s = Settings.from_env({})
    assert s.tracing_enabled is False
    assert (s.tracing_exporter, s.tracing_endpoint) == ("otlp", "http://127.0.0.1:4318/v1/traces")
    assert (s.tracing_service_name, s.tracing_sample_ratio) == ("citadel", 1.0)


def test_toml_keys_and_environment_override(tmp_path):
    s = load(
        tmp_path,
        '[tracing]\nenabled = true\nexporter = "console"\nservice_name = "edge-7"\nsample_ratio = 0.25\n',
        {"CITADEL_TRACING_SAMPLE_RATIO": "0.5", "CITADEL_TRACING_ENDPOINT": "http://[::1]:4318/v1/traces"},
    )
    assert (s.tracing_enabled, s.tracing_exporter, s.tracing_service_name) == (True, "console", "edge-7")
    assert s.tracing_sample_ratio == 0.5 and s.tracing_endpoint == "http://[::1]:4318/v1/traces"


@pytest.mark.parametrize(
    "toml, message",
    [
        ('exporter = "jaeger"', "tracing.exporter: 'jaeger' is not one of otlp, console, none"),
        ('endpoint = "127.0.0.1:4318"', "tracing.endpoint: '127.0.0.1:4318' is not an http(s) URL"),
        (
            'endpoint = "grpc://127.0.0.1:4317"',
            "tracing.endpoint: 'grpc://127.0.0.1:4317' is not an http(s) URL",
        ),
        ("sample_ratio = 1.5", "tracing.sample_ratio: must be between 0 and 1, got 1.5"),
        ("sample_ratio = -0.1", "tracing.sample_ratio: must be between 0 and 1"),
        ('service_name = " "', "tracing.service_name: must not be empty"),
        ('enabled = "yes"', "tracing.enabled: expected a boolean"),
        ('sampler = "always"', "tracing.sampler: unknown setting"),
    ],
)
def test_bad_values_name_the_key(tmp_path, toml, message):
    # Checked even while tracing is off, so a mistake shows before the day it is switched on.
    with pytest.raises(ConfigError) as e:
        load(tmp_path, f"[tracing]\n{toml}\n")
    assert message in str(e.value)
