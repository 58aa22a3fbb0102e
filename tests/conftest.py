from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared test data is missing: expected {SHARED} beside the repository")
    return SHARED

# Loopback registries (docker-registry, token server, proxies) for the registry, mirror and command tests.
pytest_plugins = ["tests.oci.fixtures"]
