"""The first of the fork server's preload when the sweep is held at `fork-server`: it holds it there."""
from __future__ import annotations

import os
from pathlib import Path

from tests.sweep.held import FOLDER_ENV, hold

if FOLDER_ENV in os.environ:
    hold(Path(os.environ[FOLDER_ENV]))
