"""The sweep's reports: `report.json` (the data), `report.md` (for humans), `report.csv` (one row
per repository); shards' `report.json` files merge into the same three."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bot import render
from bot.errors import UsageError
from bot.output import WriteError, plural, write_together
from bot.pulls import jsonstream

VERSION = 1
# Repository statuses: a sweep's journal statuses, plus `scanned` for an inventory.
ORDER = ("done", "partial", "nothing-to-do", "scanned", "failed")
CSV_FIELDS = ("repo", "status", "pr_url", "head", "third_party", "internal", "unresolved", "error")


@dataclasses.dataclass(frozen=True)
class ImageUse:
    """One image in one repository: the files that reference it."""

    image: str
    target: str
    pulls: int | None
    status: str | None  # the mirror step's status; None in an inventory
    files: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RepoEntry:
    repo: str
    status: str
    pr_url: str | None = None
    head: str | None = None
    error: str | None = None
    third_party: int | None = None  # None: not known (failed before the scan, or skipped as done)
    internal: int | None = None
    unresolved: int | None = None
    images: tuple[ImageUse, ...] = ()
    from_state: bool = dataclasses.field(default=False, compare=False)  # skipped: done at this head before

    def to_json(self) -> dict[str, Any]:
        return {"repo": self.repo, "status": self.status, "pr_url": self.pr_url, "head": self.head,
                "error": self.error, "third_party": self.third_party, "internal": self.internal,
                "unresolved": self.unresolved}


@dataclasses.dataclass(frozen=True)
class SweepReport:
    mode: str  # inventory, sweep, or dry-run
    destination: str
    repositories: tuple[RepoEntry, ...]
    interrupted: bool = False  # SIGINT or SIGTERM stopped the sweep: only the repositories that finished are here
    not_reached: int = 0  # the repositories an interrupted sweep never started

    def totals(self) -> dict[str, int]:
        counts = {status: sum(1 for r in self.repositories if r.status == status) for status in ORDER}
        return {"repositories": len(self.repositories), **counts,
                "third_party": sum(r.third_party or 0 for r in self.repositories),
                "internal": sum(r.internal or 0 for r in self.repositories),
                "unresolved": sum(r.unresolved or 0 for r in self.repositories),
                "images": len(self.images())}

    def images(self) -> list[dict[str, Any]]:
        """Per image: its target, pulls, mirror status, and each repository using it with its files."""
        by_image: dict[str, dict[str, Any]] = {}
        for repo in self.repositories:
            for use in repo.images:
                entry = by_image.setdefault(use.image, {"image": use.image, "target": use.target, "pulls": use.pulls,
                                                        "status": use.status, "repositories": []})
                if entry["pulls"] is None:
                    entry["pulls"] = use.pulls
                if entry["status"] is None or use.status in ("failed", "differs"):
                    entry["status"] = use.status
                entry["repositories"].append({"repo": repo.repo, "files": list(use.files)})
        for entry in by_image.values():
            entry["repositories"].sort(key=lambda r: r["repo"].lower())
        return [by_image[key] for key in sorted(by_image)]

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "mode": self.mode, "destination": self.destination,
                "interrupted": self.interrupted, "not_reached": self.not_reached, "totals": self.totals(),
                "repositories": [r.to_json() for r in self.repositories], "images": self.images()}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> SweepReport:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise UsageError(f"{where}: not a rehome sweep report (version {VERSION})")
        try:
            uses: dict[str, list[ImageUse]] = {}
            for image in _listed(data, "images", _IMAGE_FIELDS):
                for user in _listed(image, "repositories", _USER_FIELDS):
                    if not all(isinstance(f, str) for f in user["files"]):
                        raise ValueError(f"the files of {user['repo']} are not all paths")
                    uses.setdefault(user["repo"], []).append(ImageUse(
                        image["image"], image["target"], image["pulls"], image["status"], tuple(user["files"])))
            repos = tuple(RepoEntry(**r, images=tuple(uses.get(r["repo"], ())))
                          for r in _listed(data, "repositories", _REPO_FIELDS))
            bad_status = next((r for r in repos if r.status not in ORDER), None)
            if bad_status is not None:
                raise ValueError(f"{bad_status.repo}: unknown status {bad_status.status!r}")
            _checked(data, {"mode": (str,), "destination": (str,)}, "the report")
            # Reports written before `interrupted` was a field are of sweeps that went through.
            interrupted, not_reached = data.get("interrupted", False), data.get("not_reached", 0)
            if not isinstance(interrupted, bool) or not isinstance(not_reached, int) or isinstance(not_reached, bool):
                raise UsageError(f"{where}: not a rehome sweep report: \"interrupted\" must be true or false and "
                                 f"\"not_reached\" a count, not {interrupted!r} and {not_reached!r}")
            return cls(data["mode"], data["destination"], repos, interrupted, not_reached)
        except KeyError as exc:
            raise UsageError(f"{where}: not a rehome sweep report: {exc} is missing") from None
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: not a rehome sweep report: {exc}") from None


_TEXT, _MAYBE_TEXT, _MAYBE_COUNT = (str,), (str, type(None)), (int, type(None))
_REPO_FIELDS = {"repo": _TEXT, "status": _TEXT, "pr_url": _MAYBE_TEXT, "head": _MAYBE_TEXT, "error": _MAYBE_TEXT,
                "third_party": _MAYBE_COUNT, "internal": _MAYBE_COUNT, "unresolved": _MAYBE_COUNT}
_IMAGE_FIELDS = {"image": _TEXT, "target": _TEXT, "pulls": _MAYBE_COUNT, "status": _MAYBE_TEXT, "repositories": (list,)}
_USER_FIELDS = {"repo": _TEXT, "files": (list,)}


def _listed(data: dict[str, Any], key: str, fields: dict[str, tuple[type, ...]]) -> list[dict[str, Any]]:
    """The objects listed under `key`, each with `fields` of the given types (a count is never true or false)."""
    items = data[key]
    if not isinstance(items, list):
        raise ValueError(f'"{key}" is not a list')
    return [_checked(item, fields, f'an entry of "{key}"') for item in items]


def _checked(item: Any, fields: dict[str, tuple[type, ...]], what: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError(f"{what} is not an object: {item!r}")
    for name, types in fields.items():
        value = item[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f'{what}: "{name}" is {value!r}')
    return item


def make_report(mode: str, destination: str, repositories: Iterable[RepoEntry], *, interrupted: bool = False,
                not_reached: int = 0) -> SweepReport:
    return SweepReport(mode, destination, tuple(sorted(repositories, key=lambda r: r.repo.lower())), interrupted,
                       not_reached)


def merge(reports: Sequence[SweepReport]) -> SweepReport:
    """The shards' reports as one; a repository in two shards is an error (shards never overlap)."""
    if not reports:
        raise UsageError("report merge: no reports given")
    modes = {r.mode for r in reports}
    destinations = {r.destination for r in reports}
    if len(modes) > 1 or len(destinations) > 1:
        raise UsageError(f"report merge: the reports are of different sweeps ({', '.join(sorted(modes))}; "
                         f"{', '.join(sorted(destinations))})")
    seen: dict[str, RepoEntry] = {}
    for report in reports:
        for repo in report.repositories:
            if repo.repo in seen:
                raise UsageError(f"report merge: {repo.repo} is in two reports; shards never overlap")
            seen[repo.repo] = repo
    return make_report(reports[0].mode, reports[0].destination, seen.values(),
                       interrupted=any(r.interrupted for r in reports), not_reached=sum(r.not_reached for r in reports))


def load(path: Path) -> SweepReport:
    try:
        data = jsonstream.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the report: {exc}") from None
    return SweepReport.from_json(data, str(path))


# --- writing ------------------------------------------------------------------------------------

def to_csv(report: SweepReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for repo in report.repositories:
        writer.writerow({k: "" if v is None else v for k, v in repo.to_json().items()})
    return out.getvalue()


def _link(url: str | None) -> str:
    if not url:
        return ""
    if url.startswith(("https://", "http://")):
        return f"<{render.one_line(url).replace('>', '%3E').replace(' ', '%20')}>"
    return render.code_span(url)


def to_markdown(report: SweepReport) -> str:
    totals = report.totals()
    title = {"inventory": "rehome inventory", "dry-run": "rehome sweep (dry run)"}.get(report.mode, "rehome sweep")
    lines = [f"# {title}", "", f"Destination: {render.code_span(report.destination, table=False)}", "",
             *([interrupted_line(report), ""] if report.interrupted else []),
             "| repositories | " + " | ".join(s for s in ORDER if totals[s]) + " | images | third-party references |"
             " internal | unresolved |",
             "|---:|" + "---:|" * (sum(1 for s in ORDER if totals[s]) + 4),
             f"| {totals['repositories']} | " + " | ".join(str(totals[s]) for s in ORDER if totals[s])
             + f" | {totals['images']} | {totals['third_party']} | {totals['internal']} | {totals['unresolved']} |",
             "", "## Images", ""]
    images = report.images()
    if images:
        lines += ["| image | pulls | repositories | status | target |", "|---|---:|---:|---|---|"]
        for image in sorted(images, key=lambda i: (-(i["pulls"] or 0), i["image"])):
            lines.append(f"| {render.code_span(image['image'])} | {render.count_text(image['pulls'])} "
                         f"| {len(image['repositories'])} | {image['status'] or ''} "
                         f"| {render.code_span(image['target'])} |")
    else:
        lines.append("No third-party images.")
    lines += ["", "## Repositories", "", "| repository | status | pull request | third-party | error |",
              "|---|---|---|---:|---|"]
    for repo in report.repositories:
        error = render.markdown_text(render.clip(repo.error, 500)) if repo.error else ""
        third = "" if repo.third_party is None else str(repo.third_party)
        lines.append(f"| {render.code_span(repo.repo)} | {repo.status} | {_link(repo.pr_url)} | {third} | {error} |")
    return "\n".join(lines) + "\n"


def interrupted_line(report: SweepReport) -> str:
    not_reached = plural(report.not_reached, "repository", "repositories")
    return f"Interrupted: the sweep was stopped before it finished; not reached, and not in this report: {not_reached}."


def write(report: SweepReport, folder: Path) -> None:
    """`report.json`, `report.md` and `report.csv` in `folder`, all three or none (a `WriteError` naming the
    file that could not be written)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot make the folder for the reports: {exc.strerror or exc}") from None
    texts = {"report.json": json.dumps(report.to_json(), indent=2) + "\n", "report.md": to_markdown(report),
             "report.csv": to_csv(report)}
    write_together([(folder / name, _old_text(folder / name), text) for name, text in texts.items()])


def _old_text(path: Path) -> str | None:
    """What a report file holds now, to put back should another not be written; None where there is none."""
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WriteError(f"{path}: cannot read it, to put it back should another report fail: {exc}; "
                         "nothing was changed") from None
