"""The sweep's mirror step: each unique (source, target) is ensured once per sweep, however many
repositories use it; a repository that needs an image another one is copying waits for that copy.
A target belongs to the first source asked for it: another source that a repository's mapping sends
there fails in that repository, naming the first one, instead of overwriting it or being told `differs`."""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence

from bot import imageref, mirror
from bot.mirror import MirrorImage, MirrorOptions

Key = tuple[str, str]


class SharedMirror:
    """An `ensure` for `run_repository` that remembers every result (thread-safe)."""

    def __init__(self, ensure: Callable[..., list[MirrorImage]] | None = None) -> None:
        self._given = ensure
        self._lock = threading.Lock()
        self._done: dict[Key, MirrorImage] = {}
        self._pending: dict[Key, threading.Event] = {}
        # The mirror tag a copy writes → (its source, the repository that asked first).
        self._claims: dict[str, tuple[str, str | None]] = {}
        self.calls = 0  # how many times the real mirror step ran (for reports and tests)

    def _ensure(self, moves: Sequence[Key], options: MirrorOptions, *,
                pulls: Mapping[str, int | None] | None) -> list[MirrorImage]:
        return (self._given or mirror.ensure_images)(moves, options, pulls=pulls)

    @property
    def images(self) -> list[MirrorImage]:
        with self._lock:
            return sorted(self._done.values(), key=lambda image: (image.source, image.target))

    def __call__(self, moves: Sequence[tuple[str, str]], options: MirrorOptions, *,
                 pulls: Mapping[str, int | None] | None = None, repo: str | None = None) -> list[MirrorImage]:
        """One result per move; `repo` is the repository asking, which a clash with its target names."""
        mine: list[Key] = []
        theirs: list[threading.Event] = []
        with self._lock:
            wanted, clashes = self._claim(moves, repo)
            for key in wanted:
                if key in self._done:
                    continue
                if key in self._pending:
                    theirs.append(self._pending[key])
                else:
                    self._pending[key] = threading.Event()
                    mine.append(key)
        if mine:
            try:
                with self._lock:
                    self.calls += 1
                found = self._ensure(mine, options, pulls=pulls)
                with self._lock:
                    for image in found:
                        self._done[(image.source, image.target)] = image
            finally:
                with self._lock:
                    for key in mine:
                        self._pending.pop(key).set()
        for event in theirs:
            event.wait()
        pulls = pulls or {}
        with self._lock:
            results = [self._done[key] for key in wanted if key in self._done]
        missing = [key for key in wanted if key not in {(i.source, i.target) for i in results}]
        # A copy that raised in another repository's run: ensured again here, so this one gets its own result.
        if missing:
            results += self._ensure(missing, options, pulls=pulls)
        results = [dataclasses.replace(image, pulls=pulls.get(image.source, image.pulls))
                   for image in results + clashes]
        return sorted(results, key=lambda image: (image.source, image.target))

    def _claim(self, moves: Sequence[Key], repo: str | None) -> tuple[list[Key], list[MirrorImage]]:
        """Claims the tag each move's copy writes for its source (under the lock): the moves (once each)
        whose tag is their source's, or that write none (a copy by digest overwrites nothing), and a
        failed result for each whose tag another source has."""
        wanted: list[Key] = []
        clashes: list[MirrorImage] = []
        for source, target in dict.fromkeys(moves):
            written = imageref.tag_written(source, target)
            first, first_repo = self._claims.setdefault(written, (source, repo)) if written else (source, repo)
            if imageref.same_image(first, source):
                wanted.append((source, target))
            else:
                clashes.append(MirrorImage(source, target, None, (), "failed", 0, None, (
                    f"the mappings give {source} and {first} (moved by {first_repo or 'another repository'}) one "
                    f"mirror name, {target}; change one of the mappings to keep them apart")))
        return wanted, clashes

