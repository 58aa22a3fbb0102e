"""Which registries are internal, and which images a user chose to leave alone."""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from functools import lru_cache

from bot.imageref import ImageRef

# The guide treats Google's registries as already internal.
DEFAULT_INTERNAL = ("gcr.io", "*.gcr.io", "*.pkg.dev")


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    # fnmatch's `*` already crosses `/`, which is what the patterns want.
    return re.compile(fnmatch.translate(pattern))


def matches(pattern: str, ref: ImageRef) -> bool:
    """A pattern without `/` matches the domain alone; otherwise `domain[:port]/path`."""
    subject = ref.name if "/" in pattern else ref.domain
    return _compile(pattern).match(subject) is not None


@dataclasses.dataclass(frozen=True)
class Policy:
    internal: tuple[str, ...] = DEFAULT_INTERNAL
    exclude_images: tuple[str, ...] = ()
    destination: str | None = None

    def is_internal(self, ref: ImageRef) -> bool:
        if self.destination is not None and _under_destination(ref, self.destination):
            return True
        return any(matches(p, ref) for p in self.internal)

    def is_excluded(self, ref: ImageRef) -> bool:
        return any(matches(p, ref) for p in self.exclude_images)


def _under_destination(ref: ImageRef, destination: str) -> bool:
    prefix = destination.rstrip("/")
    return ref.name == prefix or ref.name.startswith(prefix + "/") or (
        "/" not in prefix and ref.domain == prefix
    )
