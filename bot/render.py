"""The pull request title and body, the commit message and the step summary, from a `RunReport`.

A plain version: the full one renders `templates/*.j2` with Jinja2.
"""
from __future__ import annotations

import html
from pathlib import Path

from bot.report import RunReport


def _cell(text: str) -> str:
    """Text from the repository: no HTML, links, mentions or table breaks."""
    escaped = html.escape(text, quote=True)
    for char, entity in (("|", "&#124;"), ("@", "&#64;"), ("`", "&#96;"), ("[", "&#91;"), ("]", "&#93;")):
        escaped = escaped.replace(char, entity)
    return escaped


def render_title(report: RunReport, template_dir: Path | None = None) -> str:
    count = len(report.moved)
    return f"Move {count} container image{'s' if count != 1 else ''} to {report.destination}"


def render_body(report: RunReport, template_dir: Path | None = None) -> str:
    files = len(report.files_changed)
    lines = [
        f"{len(report.moved)} images from {len(report.registries)} registries moved to "
        f"{_cell(report.destination)}, in {files} files.",
        "",
    ]
    if report.moved:
        lines += ["| image | mirror | digest | platforms |", "|---|---|---|---|"]
        for image in report.moved:
            lines.append(f"| {_cell(image.source)} | {_cell(image.target)} | {image.digest or 'unknown'} "
                         f"| {', '.join(image.platforms)} |")
        lines.append("")
    if report.not_moved:
        lines += ["Not moved:", ""]
        for item in report.not_moved:
            lines.append(f"- {_cell(item.path)}:{item.line}: {_cell(item.raw)}: {item.category}: {_cell(item.reason)}")
        lines.append("")
    return "\n".join(lines)


def render_commit_message(report: RunReport, template_dir: Path | None = None) -> str:
    lines = [render_title(report, template_dir), ""]
    lines += [f"{image.source} -> {image.target} ({image.digest})" for image in report.moved]
    return "\n".join(lines) + "\n"


def render_step_summary(report: RunReport, template_dir: Path | None = None) -> str:
    return f"## {render_title(report, template_dir)}\n\n{render_body(report, template_dir)}"
