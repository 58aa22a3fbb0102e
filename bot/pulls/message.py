"""The image named in a kubelet event message, as the guide's `REGEXP_EXTRACT(message, r'"(.*?)"')`."""
from __future__ import annotations

PULLING = "Pulling"


def quoted_image(message: str) -> str | None:
    """The text between the first pair of double quotes: `Pulling image "nginx:1.14.2"` → `nginx:1.14.2`."""
    start = message.find('"')
    if start < 0:
        return None
    end = message.find('"', start + 1)
    if end < 0:
        return None
    return message[start + 1:end]
