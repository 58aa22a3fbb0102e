"""Path globs: `*` within one path segment, `**` across segments, `?`, `[...]`, `{a,b}`."""
from __future__ import annotations

import re
from functools import lru_cache


def _expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end():]
    return [x for option in match.group(1).split(",") for x in _expand_braces(head + option + tail)]


def _translate(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regex matching whole POSIX relative paths. A pattern without `/` matches the base name anywhere."""
    patterns = _expand_braces(pattern)
    parts = []
    for p in patterns:
        p = p.lstrip("/") if p.startswith("/") else (p if "/" in p else "**/" + p)
        parts.append(_translate(p))
    return re.compile("(?:" + "|".join(parts) + r")\Z")


def matches_any(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(compile_glob(p).match(path) for p in patterns)
