"""rehome: move container images off third-party registries, by pull request."""
from __future__ import annotations

__version__ = "0.1.0"
