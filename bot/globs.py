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


def _glob_regex(pattern: str) -> str:
    parts = []
    for p in _expand_braces(pattern):
        p = p.lstrip("/") if p.startswith("/") else (p if "/" in p else "**/" + p)
        parts.append(_translate(p))
    return "(?:" + "|".join(parts) + ")"


@lru_cache(maxsize=512)
def compile_globs(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex matching whole POSIX relative paths that any pattern matches.
    A pattern without `/` matches the base name anywhere."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("(?:" + "|".join(_glob_regex(p) for p in patterns) + r")\Z")


def matches_any(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return compile_globs(tuple(patterns)).match(path) is not None


@lru_cache(maxsize=64)
def name_filter(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """A regex on a path's base name that the base name of every path some pattern matches also
    matches (the patterns' last segments): one cheap first test that rules out most of a large tree's
    paths. None when a last segment may reach across folders (`**`) or cannot be told apart."""
    names = set()
    for pattern in patterns:
        for expanded in _expand_braces(pattern):
            name = expanded.rsplit("/", 1)[-1]
            if "**" in name or ("]" in name and "[" not in name):  # `a**`, or a `[...]` holding a `/`
                return None
            names.add(name)
    if not names:
        return re.compile(r"(?!)")
    return re.compile("(?:" + "|".join(_translate(name) for name in sorted(names)) + r")\Z")
