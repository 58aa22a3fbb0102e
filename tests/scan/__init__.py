"""Trees more than one of the scan's test modules read."""
from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import write_tree

FOLDER_LINKS_TREE = {
    "ci/workflows/build.yml": "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    container: node:20\n",
    "ci/workflows/notes/old.yml": "jobs:\n  build:\n    container: node:16\n",
    "compose/docker-compose.yml": "services:\n  db:\n    image: postgres:16\n",
    "private/docker-compose.yml": "services:\n  vault:\n    image: vault:1.13\n",
}
FOLDER_LINKS = {".github/workflows": "../ci/workflows", "deploy": "compose", "secrets": "private", "self": ".",
                "ci/workflows/up": "..", "away": "../elsewhere"}


def make_folder_links(tmp_path: Path) -> Path:
    """A repository whose symlinks lead to folders: inside it, to its root, to a folder holding them, outside it."""
    write_tree(tmp_path / "elsewhere", {"docker-compose.yml": "services:\n  o:\n    image: traefik:3\n"})
    root = write_tree(tmp_path / "repo", FOLDER_LINKS_TREE)
    for name, target in FOLDER_LINKS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)
    return root
