"""The text a run produces for people: the pull request title and body, the commit message and
the GitHub Actions step summary, rendered from a `RunReport` with the Jinja2 templates in
`templates/` (or a user's directory that overrides some of them by file name).

Every string that comes from the scanned repository reaches the text only through the escaping
filters below (`code`, `md`, `shell`, `attr`, `one_line`), so a repository cannot inject links,
images, mentions, HTML or table breaks (docs/templates.md).
"""
from __future__ import annotations

import dataclasses
import functools
import re
import shlex
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from bot.errors import ConfigError
from bot.output import plural, visible_controls
from bot.report import MovedImage, NotMoved, RunReport
from bot.resources import data_dir

TITLE_TEMPLATE = "pr_title.j2"
BODY_TEMPLATE = "pr_body.md.j2"
COMMIT_TEMPLATE = "commit_message.j2"
SUMMARY_TEMPLATE = "step_summary.md.j2"

# GitHub refuses a pull request body of 65,536 characters or more. Sizes are measured in UTF-8
# bytes, which is never less than the characters GitHub counts.
MAX_BODY_SIZE = 65_536
# GitHub rejects a step summary larger than 1 MiB.
MAX_SUMMARY_SIZE = 1024 * 1024

# Lists longer than these collapse into <details>.
COLLAPSE_ROWS = 10
COLLAPSE_PLACES = 5

# Category of a reference that was not moved → its heading, in the order the body lists them.
CATEGORY_TITLES = {
    "unresolved": "Unresolved (a variable, template or parameter)",
    "failed": "Copy failed",
    "differs": "The mirror already holds a different image under this tag",
    "internal": "Already in an internal registry",
    "covered": "Covered elsewhere, left as written on purpose",
    "untouched": "Left untouched by a safety check",
}

STATUS_WORDS = {
    "copied": "copied",
    "present": "already there",
    "missing": "would be copied",
    "unknown": "not checked",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much of each list the body shows; the rest is counted, not listed."""

    rows: int | None  # rows per table (None: all)
    places: int  # places listed per image


# Tried in order until the rendered text fits its size limit.
LIMIT_STEPS = (
    Limits(rows=None, places=50),
    Limits(rows=500, places=20),
    Limits(rows=200, places=10),
    Limits(rows=100, places=5),
    Limits(rows=50, places=5),
    Limits(rows=20, places=3),
    Limits(rows=5, places=1),
    Limits(rows=0, places=0),
)


# --- escaping -----------------------------------------------------------------------------------

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\](){}#!|~:+\-.])")
_BACKTICK_RUN = re.compile(r"`+")
NEWLINE = "\n"
_WHITESPACE = re.compile(r"\s+")
_MENTION_SIGN = "@\u200b"  # a zero-width space after "@": GitHub sees no mention, readers see "@"


def escape_table_pipes(text: str) -> str:
    """`|` as `\\|`, so a table cell does not end there. GitHub splits a row at every pipe that
    has no backslash right before it, then drops that one backslash, inside code spans too."""
    return text.replace("|", "\\|")


def code_span(value: object, table: bool = True) -> str:
    """`value` as a Markdown code span: nothing inside is Markdown, HTML, a link or a mention.

    The fence is one backtick longer than the longest run of backticks inside, with a space of
    padding when the text starts or ends with a backtick or a space. With `table=True` (the
    default) pipes are escaped too, as a table cell needs; outside tables use `table=False`.
    """
    text = visible_controls(str(value))
    if not text:
        return ""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * (longest + 1)
    if text[0] in "` " or text[-1] in "` ":
        text = f" {text} "
    if table:
        text = escape_table_pipes(text)
    return f"{fence}{text}{fence}"


def markdown_text(value: object) -> str:
    """`value` as plain Markdown text, safe anywhere (table cells, lists, headings).

    Line breaks become spaces; `&`, `<`, `>` become entities; Markdown punctuation (including `|`
    and `:`, so `https://` and `www.` never autolink) is backslash-escaped; `@` is followed by a
    zero-width space, so `@user` and `@org/team` mention nobody and `a@b.c` is not an email link.
    """
    text = visible_controls(_WHITESPACE.sub(" ", str(value)))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return text.replace("@", _MENTION_SIGN)


def one_line(value: object) -> str:
    """Plain text (a title, a commit message line) kept on one line."""
    return visible_controls(str(value))


def html_attribute(value: object) -> str:
    """`value` for a double-quoted HTML attribute."""
    text = one_line(value)
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def shell_word(value: object) -> str:
    """`value` as one shell word: safe to paste into a shell, whatever it holds."""
    return shlex.quote(one_line(value))


def fenced(text: str, info: str = "") -> str:
    """`text` as a fenced code block whose fence no line of `text` can close."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.strip(NEWLINE)}\n{fence}"


def clip(value: object, limit: int = 200) -> str:
    """At most `limit` characters of `value`, with `…` where it was cut."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- small formatting helpers -------------------------------------------------------------------


def count_text(number: int | None) -> str:
    """A count for a table cell: `1,234`, or `—` when unknown (never 0 for unknown)."""
    return "—" if number is None else f"{number:,}"


def short_digest(digest: str | None) -> str:
    """The first 12 hex characters after the algorithm: `sha256:9a4f…` → `9a4f8b2c71d0`."""
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:12]


def place(path: str, line: int) -> str:
    return f"{path}:{line}"


# --- what the templates see ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shown:
    """The first rows of a list that the body shows, and how many more there are."""

    rows: tuple[Any, ...]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)

    @property
    def collapsed(self) -> bool:
        return len(self.rows) > COLLAPSE_ROWS


def shown(items: Sequence[Any], limit: int | None) -> Shown:
    rows = tuple(items) if limit is None else tuple(items[:limit])
    return Shown(rows=rows, total=len(items))


@dataclasses.dataclass(frozen=True)
class NotMovedGroup:
    category: str
    title: str  # Markdown, ready to print
    references: Shown


def group_not_moved(not_moved: Iterable[NotMoved], limit: int | None) -> list[NotMovedGroup]:
    """References not moved, grouped by category in `CATEGORY_TITLES` order (others after)."""
    by_category: dict[str, list[NotMoved]] = {}
    for item in sorted(not_moved, key=lambda n: (n.path, n.line, n.column)):
        by_category.setdefault(item.category, []).append(item)
    order = [c for c in CATEGORY_TITLES if c in by_category]
    order += sorted(c for c in by_category if c not in CATEGORY_TITLES)
    return [
        NotMovedGroup(
            category=category,
            title=CATEGORY_TITLES.get(category) or markdown_text(category),
            references=shown(by_category[category], limit),
        )
        for category in order
    ]


def template_context(report: RunReport, limits: Limits = LIMIT_STEPS[0]) -> dict[str, Any]:
    """The variables every template gets (listed in docs/templates.md)."""
    moved = sorted(report.moved, key=lambda m: m.source)
    files = {o.path for m in report.moved for o in m.occurrences}
    return {
        "report": report,
        "repository": report.repository,
        "destination": report.destination,
        "base": report.base,
        "branch": report.branch,
        "dry_run": report.dry_run,
        "moved": moved,
        "moved_count": len(moved),
        "registries": report.registries,
        "files_changed": report.files_changed,
        "files_count": len(report.files_changed) or len(files),
        "pull_window": report.pull_window,
        "images": shown(moved, limits.rows),
        "not_moved": group_not_moved(report.not_moved, limits.rows),
        "not_moved_count": len(report.not_moved),
        "skipped": shown(report.skipped, limits.rows),
        "max_places": limits.places,
        "collapse_places": COLLAPSE_PLACES,
    }


# --- the environment ----------------------------------------------------------------------------


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status, status)


def places_of(image: MovedImage) -> list[str]:
    return [place(o.path, o.line) for o in sorted(image.occurrences, key=lambda o: (o.path, o.line, o.column))]


FILTERS = {
    "code": code_span,
    "md": markdown_text,
    "one_line": one_line,
    "attr": html_attribute,
    "shell": shell_word,
    "fenced": fenced,
    "clip": clip,
    "count": count_text,
    "short_digest": short_digest,
    "status_word": status_word,
    "places": places_of,
}
GLOBALS = {"plural": plural}


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """Templates from `template_dir` first, then the built-in ones."""
    if template_dir is None:
        return _builtin_environment()
    user_dir = Path(template_dir)
    if not user_dir.is_dir():
        raise ConfigError(f"templates directory {user_dir} does not exist or is not a directory")
    return _new_environment([user_dir, data_dir("templates")])


@functools.lru_cache(maxsize=1)
def _builtin_environment() -> jinja2.Environment:
    # One for the process: it keeps the compiled templates (a sweep renders them for every repository).
    return _new_environment([data_dir("templates")])


def _new_environment(paths: list[Path]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in paths]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def _template_frames(error: BaseException) -> list[traceback.FrameSummary]:
    """The traceback's frames in template files, innermost last."""
    return [f for f in traceback.extract_tb(error.__traceback__) if f.filename.endswith(".j2")]


def _template_error(name: str, error: jinja2.TemplateError) -> ConfigError:
    """A `ConfigError` naming the template file (and line) a Jinja error came from."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        where = error.filename or error.name or name
        return ConfigError(f"{where}:{error.lineno}: template syntax error: {error.message}")
    if isinstance(error, jinja2.TemplateNotFound):
        return ConfigError(f"template {error.name} not found (needed while rendering {name})")
    frames = _template_frames(error)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else name
    return ConfigError(f"{where}: template error: {error}")


def _user_template_failure(error: Exception) -> ConfigError | None:
    """A `ConfigError` when `error` (not a Jinja error) was raised by a user's template, say
    `{{ moved_count + "x" }}`; None when it came from a built-in one (a bug)."""
    frames = _template_frames(error)
    if not frames or Path(frames[-1].filename).resolve().parent == data_dir("templates").resolve():
        return None
    where = f"{frames[-1].filename}:{frames[-1].lineno}"
    return ConfigError(f"{where}: template error: {type(error).__name__}: {error}")


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as error:
        raise _template_error(name, error) from None
    except Exception as error:
        user_error = _user_template_failure(error)
        if user_error is None:
            raise
        raise user_error from None


_BLANK_LINES = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)) + "\n"


def _render_fitting(name: str, report: RunReport, template_dir: str | Path | None, max_size: int) -> str:
    """The template rendered with the longest lists that keep it under `max_size` bytes."""
    env = environment(template_dir)
    text = ""
    for limits in LIMIT_STEPS:
        text = tidy(_render(env, name, template_context(report, limits)))
        if len(text.encode("utf-8")) < max_size:
            return text
    raise ConfigError(
        f"{name} renders {len(text.encode('utf-8')):,} bytes even with no lists (limit {max_size:,})"
    )


# --- public -------------------------------------------------------------------------------------


def render_title(report: RunReport, template_dir: str | Path | None = None) -> str:
    """The pull request title: one line."""
    env = environment(template_dir)
    text = _render(env, TITLE_TEMPLATE, template_context(report))
    return " ".join(text.split())


def render_body(report: RunReport, template_dir: str | Path | None = None) -> str:
    """The pull request body (GitHub Markdown), under GitHub's 65,536-character limit."""
    return _render_fitting(BODY_TEMPLATE, report, template_dir, MAX_BODY_SIZE)


def render_step_summary(report: RunReport, template_dir: str | Path | None = None) -> str:
    """The same content as the body, for `$GITHUB_STEP_SUMMARY`."""
    return _render_fitting(SUMMARY_TEMPLATE, report, template_dir, MAX_SUMMARY_SIZE)


def render_commit_message(report: RunReport, template_dir: str | Path | None = None) -> str:
    """Subject, blank line, one `source -> target` line per moved image."""
    env = environment(template_dir)
    return tidy(_render(env, COMMIT_TEMPLATE, template_context(report)))
