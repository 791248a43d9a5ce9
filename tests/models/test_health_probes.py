"""Active health checks on the default catalog: the nine seed models all run on the one
in-process local model, so one probe embedding a round answers for all nine backends."""

from __future__ import annotations

import numpy as np
import pytest

from citadel.server.models.catalog import SEED_MODELS, Catalog, local_catalog
from citadel.server.models.router import ModelRouter


@pytest.mark.asyncio
async def test_one_probe_a_round_answers_for_every_local_backend() -> None:
    router = ModelRouter(Catalog(default="general", models=local_catalog()))
    try:
        backends = [b for pool in router.pools.values() for b in pool.backends]
        assert len(backends) == len(SEED_MODELS) == 9

        await router.health.check_all()
        first = backends[0].probe
        assert first is not None and first.shape == (384,)
        assert all(b.healthy for b in backends)
        # One array underneath: one embed call answered every backend's probe.
        assert all(np.shares_memory(b.probe, first) for b in backends)
        assert all(pool.dimension == 384 for pool in router.pools.values())

        await router.health.check_all()  # a new round embeds again
        second = backends[0].probe
        assert not np.shares_memory(second, first)
        assert np.allclose(second, first, atol=1e-5)
        assert all(np.shares_memory(b.probe, second) for b in backends)
    finally:
        await router.close()
