"""Fixtures of the simulator tests: small seeded populations."""

from __future__ import annotations

import pytest

from carecircle.common.contract.provisioning import Provisioning
from carecircle.device_sim.population.generate import PopulationParams, generate_population


@pytest.fixture(scope="session")
def small_population() -> Provisioning:
    """Six households, a day-care centre and a nursing home (seed 11)."""
    return generate_population(PopulationParams(6, 1, 1, seed=11))
