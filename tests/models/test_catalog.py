"""The [models] settings: the default nine-model catalog, and mistakes named by their key."""

from __future__ import annotations

import pytest

from citadel.server.config import ConfigError, Settings
from citadel.server.models.catalog import (
    BULK_ONLY,
    HYBRID,
    REALTIME,
    SEED_MODELS,
    catalog_from_settings,
    parse_catalog,
)


def test_default_catalog_is_nine_models_on_the_local_model():
    catalog = catalog_from_settings(Settings())
    assert catalog.default == "general"
    patterns = {name: m.pattern for name, m in catalog.models.items()}
    assert patterns == {
        "phi3": REALTIME,
        "general": REALTIME,
        "openchat": HYBRID,  # the seed lists it twice; hybrid serves small requests in real time
        "hermes": HYBRID,
        "mixtral": BULK_ONLY,
        "yi34": BULK_ONLY,
        "deepcoder": BULK_ONLY,
        "imp": BULK_ONLY,
        "deepseek": BULK_ONLY,
    }
    for m in catalog.models.values():
        assert [b.provider for b in m.backends] == ["local"] and m.dimensions == 384 and m.strategy == "p2c"


def test_example_ollama_config_loads():
    from pathlib import Path

    import citadel.server.models as models_package

    example = Path(models_package.__file__).parent / "examples" / "models.ollama.toml"
    catalog = catalog_from_settings(Settings.load(example, env={}))
    assert len(catalog.models) == 9
    urls = {b.url for m in catalog.models.values() for b in m.backends}
    assert urls == {f"http://127.0.0.1:{port}" for port in range(11400, 11409)}


def test_toml_catalog(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        """
[models]
default = "fast"
realtime_budget = 4

[models.resilience]
breaker_failures = 2

[models.catalog.fast]
strategy = "weighted"
backends = [
  { id = "a", provider = "ollama", url = "http://127.0.0.1:11400/", weight = 3, max_concurrency = 2 },
  { id = "b", provider = "tei", url = "http://127.0.0.1:11401", max_queue = 0 },
]

[models.catalog.big]
pattern = "hybrid"
realtime_budget = 2

[[models.catalog.big.backends]]
provider = "local"
"""
    )
    catalog = catalog_from_settings(Settings.load(path, env={}))
    fast, big = catalog.models["fast"], catalog.models["big"]
    assert fast.pattern == REALTIME and fast.strategy == "weighted" and fast.realtime_budget == 4
    a, b = fast.backends
    assert (a.url, a.weight, a.max_concurrency, a.max_queue, a.model) == (
        "http://127.0.0.1:11400",
        3,
        2,
        8,
        "fast",
    )
    assert (b.provider, b.max_queue, b.max_batch) == ("tei", 0, 32)
    assert big.pattern == HYBRID and big.realtime_budget == 2 and big.dimensions == 384
    assert catalog.resilience.breaker_failures == 2


@pytest.mark.parametrize(
    ("catalog", "extra", "message"),
    [
        ({"m": {"backends": []}}, {}, "models.catalog.m.backends: list at least one backend"),
        (
            {"m": {"pattern": "sometimes", "backends": [{"provider": "local"}]}},
            {},
            "models.catalog.m.pattern",
        ),
        ({"m": {"strategy": "random", "backends": [{"provider": "local"}]}}, {}, "models.catalog.m.strategy"),
        ({"m": {"backends": [{"provider": "grpc"}]}}, {}, "models.catalog.m.backends[0].provider"),
        (
            {"m": {"backends": [{"provider": "tei", "url": "127.0.0.1:1"}]}},
            {},
            "models.catalog.m.backends[0].url",
        ),
        ({"m": {"backends": [{"provider": "local", "url": "http://127.0.0.1:1"}]}}, {}, "backends[0].url"),
        (
            {"m": {"backends": [{"provider": "tei", "url": "http://127.0.0.1:1", "weight": 0}]}},
            {},
            "models.catalog.m.backends[0].weight: expected a positive integer, got 0",
        ),
        (
            {"m": {"backends": [{"provider": "tei", "url": "http://127.0.0.1:1", "colour": "red"}]}},
            {},
            "models.catalog.m.backends[0].colour: unknown setting",
        ),
        (
            {"m": {"backends": [{"provider": "local"}, {"provider": "local"}]}},
            {},
            "models.catalog.m.backends[1].id: 'local' repeats backends[0].id",
        ),
        ({"m": {"backends": [{"provider": "local"}]}}, {"default": "x"}, "models.default: 'x' is not in"),
        ({}, {"resilience": {"bulk_share": 2}}, "models.resilience.bulk_share: must be at most 1"),
        ({}, {"resilience": {"retries": 2}}, "models.resilience.retries: unknown setting"),
        ({}, {"realtime_budget": 0}, "models.realtime_budget: expected a positive integer"),
        (
            {
                "m": {
                    "backends": [
                        {"provider": "openai", "url": "http://127.0.0.1:1", "api_key_env": "NO_SUCH_VAR_X"}
                    ]
                }
            },
            {},
            "models.catalog.m.backends[0].api_key_env: environment variable NO_SUCH_VAR_X is not set",
        ),
    ],
)
def test_mistakes_name_the_key(catalog, extra, message):
    default = extra.pop("default", "m" if catalog else "general")
    with pytest.raises(ValueError) as e:
        parse_catalog(default, catalog, resilience=extra.pop("resilience", None), **extra)
    assert message in str(e.value)


def test_settings_report_catalog_mistakes_as_config_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[models.catalog.m]\nbackends = [{ provider = "openai" }]\n[models]\ndefault = "m"\n')
    with pytest.raises(ConfigError, match=r"models.catalog.m.backends\[0\].url"):
        Settings.load(path, env={})


def test_a_catalog_entry_adds_a_model_or_replaces_that_one_builtin():
    custom = {"backends": [{"provider": "tei", "url": "http://127.0.0.1:11401"}]}
    added = parse_catalog("general", {"custom": custom})
    assert set(added.models) == set(SEED_MODELS) | {"custom"}
    assert [b.provider for b in added.models["general"].backends] == ["local"]

    replaced = parse_catalog("general", {"general": custom})
    assert set(replaced.models) == set(SEED_MODELS)
    assert [b.provider for b in replaced.models["general"].backends] == ["tei"]
    assert [b.provider for b in replaced.models["phi3"].backends] == ["local"]

    only = parse_catalog("custom", {"custom": custom}, builtin=False)
    assert set(only.models) == {"custom"}
    with pytest.raises(ValueError, match="models.default: 'general' is not in models.catalog"):
        parse_catalog("general", {"custom": custom}, builtin=False)
    with pytest.raises(ValueError, match="models.catalog: no models"):
        parse_catalog("general", {}, builtin=False)


def test_config_check_says_which_models_are_served_from_where(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "c.toml"
    path.write_text(
        '[auth]\nenabled = false\n\n[models.catalog.custom]\nbackends = [{ provider = "tei", url = "http://127.0.0.1:11401" }]\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "models: 10 models (default general); on the local model: " in out
    assert "on model servers: custom" in out
