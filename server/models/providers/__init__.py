"""Embedding providers: one module per wire protocol, each answering `embed(texts, timeout)`
with a float32 (n, d) array in input order, whatever shape its server answers in."""

from __future__ import annotations

from citadel.server.models.catalog import BackendSpec
from citadel.server.models.providers.base import Provider


def make_provider(spec: BackendSpec) -> Provider:
    if spec.provider == "local":
        from citadel.server.models.providers.local import LocalProvider

        return LocalProvider()
    if spec.provider == "ollama":
        from citadel.server.models.providers.ollama import OllamaProvider

        return OllamaProvider(spec)
    if spec.provider == "openai":
        from citadel.server.models.providers.openai import OpenAIProvider

        return OpenAIProvider(spec)
    if spec.provider == "tei":
        from citadel.server.models.providers.tei import TeiProvider

        return TeiProvider(spec)
    raise ValueError(f"provider: {spec.provider!r} is not known")
