"""JSON from files, programs and servers, read whole.

Python's decoder recurses: a document nested about a thousand levels deep makes it raise RecursionError,
which no caller takes for bad input. `loads` gives a ValueError for it instead, like any other text that
is not JSON, so each reader's message for bad JSON (naming its file, registry or server) covers it too.
"""
from __future__ import annotations

import json
from typing import Any

TOO_DEEP = "nested deeper than JSON can be read (about a thousand levels of arrays or objects)"


def loads(text: str | bytes) -> Any:
    """One whole JSON document, as `json.loads` reads it; one nested too deep is a ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
