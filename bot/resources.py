"""Where the built-in `rules/` and `templates/` directories are."""
from __future__ import annotations

import sys
from pathlib import Path


def data_dir(name: str) -> Path:
    """The built-in directory `name` (`rules` or `templates`).

    A source checkout (or editable install) has it at the top of the repository;
    an installed wheel has it under `<prefix>/share/rehome/`.
    """
    top = Path(__file__).resolve().parent.parent
    if (top / "pyproject.toml").is_file() and (top / name).is_dir():
        return top / name
    return Path(sys.prefix) / "share" / "rehome" / name
