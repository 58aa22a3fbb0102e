"""The sweep's reports: `report.json` (the data), `report.md` (for humans), `report.csv` (one row
per repository) and `images.csv` (one row per image and target); shards' `report.json` files merge
into the same four."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bot import jsontext, render, textfile
from bot.errors import UsageError
from bot.output import WriteError, plural, write_together

VERSION = 1
# Repository statuses: a sweep's journal statuses, plus `scanned` for an inventory.
ORDER = ("done", "partial", "nothing-to-do", "declined", "scanned", "failed")
# Each mode's repository statuses.
MODES = {"inventory": ("scanned", "failed"), "sweep": ("done", "partial", "nothing-to-do", "declined", "failed"),
         "dry-run": ("done", "partial", "nothing-to-do", "failed")}
CSV_FIELDS = ("repo", "status", "pr_url", "head", "third_party", "internal", "unresolved", "error")
# The columns of report.md's Images table and of images.csv: `repositories` is how many move the image there.
IMAGE_COLUMNS = ("image", "pulls", "repositories", "status", "target")
# Which of the statuses repositories give one image and target the report shows (shards differ: one
# copies an image another then finds present): a failure from any of them, else `copied` (the sweep
# copied it, as a single sweep would say), else the first that is not null.
_STATUS_WEIGHT = {"failed": 2, "differs": 2, "copied": 1}


def _weight(status: str | None) -> int:
    return _STATUS_WEIGHT.get(status or "", 0)


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
    # The repositories an interrupted sweep never started; None: not known, it was interrupted while listing them.
    not_reached: int | None = 0

    def totals(self) -> dict[str, int]:
        counts = {status: sum(1 for r in self.repositories if r.status == status) for status in ORDER}
        return {"repositories": len(self.repositories), **counts,
                "third_party": sum(r.third_party or 0 for r in self.repositories),
                "internal": sum(r.internal or 0 for r in self.repositories),
                "unresolved": sum(r.unresolved or 0 for r in self.repositories),
                "images": len({use.image for r in self.repositories for use in r.images})}

    def images(self) -> list[dict[str, Any]]:
        """Per image and target (a repository whose own `mapping` moves an image elsewhere makes
        another entry for it): pulls, mirror status, and each repository moving it there with its files."""
        by_move: dict[tuple[str, str], dict[str, Any]] = {}
        for repo in self.repositories:
            for use in repo.images:
                entry = by_move.setdefault((use.image, use.target), {
                    "image": use.image, "target": use.target, "pulls": use.pulls, "status": use.status,
                    "repositories": []})
                if entry["pulls"] is None:
                    entry["pulls"] = use.pulls
                if entry["status"] is None or _weight(use.status) > _weight(entry["status"]):
                    entry["status"] = use.status
                entry["repositories"].append({"repo": repo.repo, "files": list(use.files)})
        for entry in by_move.values():
            entry["repositories"].sort(key=lambda r: r["repo"].lower())
        return [by_move[key] for key in sorted(by_move)]

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "mode": self.mode, "destination": self.destination,
                "interrupted": self.interrupted, "not_reached": self.not_reached, "totals": self.totals(),
                "repositories": [r.to_json() for r in self.repositories], "images": self.images()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> SweepReport:
        if not isinstance(data, dict):
            raise UsageError(f"{where}: not a rehome sweep report (version {VERSION})")
        try:
            _check_version(data)
            _checked(data, _REPORT_FIELDS)
            if data["mode"] not in MODES:
                raise ValueError(f'"mode" is {render.clip(repr(data["mode"]), 80)}, not one of {", ".join(MODES)}')
            repos = _repositories(data["repositories"], data["mode"])
            uses = _image_uses(data["images"], repos)
        except ValueError as exc:
            raise UsageError(f"{where}: not a rehome sweep report: {exc}") from None
        # Reports written before `interrupted` was a field are of sweeps that went through.
        interrupted, not_reached = data.get("interrupted", False), data.get("not_reached", 0)
        if not isinstance(interrupted, bool) or not (_is_count(not_reached) or not_reached is None):
            raise UsageError(f"{where}: not a rehome sweep report: \"interrupted\" must be true or false and "
                             f"\"not_reached\" a count or null, not {interrupted!r} and {not_reached!r}")
        if not interrupted and not_reached != 0:
            raise UsageError(f"{where}: not a rehome sweep report: {_not_reached_but_not_interrupted(not_reached)}")
        entries = tuple(RepoEntry(**fields, images=tuple(uses.get(name, ()))) for name, fields in repos.items())
        report = cls(data["mode"], data["destination"], entries, interrupted, not_reached)
        problem = _totals_problem(data["totals"], report.totals())
        if problem is not None:
            raise UsageError(f"{where}: not a rehome sweep report: {problem}")
        return report


_TEXT, _MAYBE_TEXT, _MAYBE_COUNT, _LIST, _OBJECT = (str,), (str, type(None)), (int, type(None)), (list,), (dict,)
_KINDS = {_TEXT: "text", _MAYBE_TEXT: "text or null", _MAYBE_COUNT: "a count or null", _LIST: "a list",
          _OBJECT: "an object"}
# The report's own fields (`totals` must add up); others (the sweep's `left_out`) are beside the point here.
_REPORT_FIELDS = {"mode": _TEXT, "destination": _TEXT, "totals": _OBJECT, "repositories": _LIST, "images": _LIST}
_REPO_FIELDS = {"repo": _TEXT, "status": _TEXT, "pr_url": _MAYBE_TEXT, "head": _MAYBE_TEXT, "error": _MAYBE_TEXT,
                "third_party": _MAYBE_COUNT, "internal": _MAYBE_COUNT, "unresolved": _MAYBE_COUNT}
_IMAGE_FIELDS = {"image": _TEXT, "target": _TEXT, "pulls": _MAYBE_COUNT, "status": _MAYBE_TEXT, "repositories": _LIST}
_USER_FIELDS = {"repo": _TEXT, "files": _LIST}


def _check_version(data: dict[str, Any]) -> None:
    if "version" not in data:
        raise ValueError('"version" is missing')
    if not (_is_count(data["version"]) and data["version"] == VERSION):
        raise ValueError(f'"version" is {render.clip(repr(data["version"]), 80)}, not {VERSION}')


def _repositories(items: list[Any], mode: str) -> dict[str, dict[str, Any]]:
    """The entries of "repositories" by name, each of a status of the report's mode and listed once."""
    repos: dict[str, dict[str, Any]] = {}
    for what, entry in _entries(items, "repositories", _REPO_FIELDS, "repo"):
        if entry["status"] not in ORDER:
            raise ValueError(f"{what}: unknown status {entry['status']!r}")
        if entry["status"] not in MODES[mode]:
            raise ValueError(f"{what}: status {entry['status']!r} in a report of mode {mode!r} (whose statuses are "
                             f"{', '.join(MODES[mode])})")
        _record_once(entry["repo"], entry, repos, what)
    return repos


def _record_once(name: str, entry: dict[str, Any], seen: dict[str, dict[str, Any]], what: str) -> None:
    """Records `entry` in `seen` under `name`, which must not be there yet."""
    if name in seen:
        raise ValueError(f"{what}: {name} is listed twice")
    seen[name] = entry


def _image_uses(items: list[Any], repos: dict[str, dict[str, Any]]) -> dict[str, list[ImageUse]]:
    """Each repository's images, from the entries of "images" (each image and target listed once,
    each repository under an image once), whose repositories must all be listed."""
    uses: dict[str, list[ImageUse]] = {}
    moves: dict[str, dict[str, Any]] = {}
    used: dict[str, dict[str, Any]] = {}
    for image_what, image in _entries(items, "images", _IMAGE_FIELDS, "image"):
        move = f"{image['image']} to {image['target']}"
        _record_once(move, image, moves, image_what)
        for what, user in _entries(image["repositories"], "repositories", _USER_FIELDS, "repo", f"{image_what}, "):
            if not all(isinstance(f, str) for f in user["files"]):
                raise ValueError(f'{what}: "files" are not all paths')
            if user["repo"] not in repos:
                raise ValueError(f'{what}: {user["repo"]} is not in the report\'s "repositories"')
            # A repository moves each of its images to one target.
            use = f"{user['repo']}'s {image['image']}"
            _record_once(use, user, used, what)
            uses.setdefault(user["repo"], []).append(ImageUse(
                image["image"], image["target"], image["pulls"], image["status"], tuple(user["files"])))
    return uses


def _entries(items: list[Any], key: str, fields: dict[str, tuple[type, ...]], name: str,
             within: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects listed under `key`, each with exactly `fields`, and what an error calls each: its
    place in the list and, where it has one, its `name`."""
    for number, item in enumerate(items, 1):
        what = f'{within}entry {number} of "{key}"'
        if isinstance(item, dict) and isinstance(item.get(name), str):
            what += f" ({render.clip(item[name], 80)})"
        _checked(item, fields, what)
        unknown = sorted(set(item) - set(fields))
        if unknown:
            raise ValueError(f'{what}: unknown field "{render.clip(unknown[0], 80)}"')
        yield what, item


def _checked(item: Any, fields: dict[str, tuple[type, ...]], what: str = "") -> None:
    """`item` is an object with `fields` of their kinds; `what` names it in an error (nothing: the report)."""
    if not isinstance(item, dict):
        raise ValueError(f"{what} is not an object: {render.clip(repr(item), 80)}")
    where = f"{what}: " if what else ""
    for name, types in fields.items():
        if name not in item:
            raise ValueError(f'{where}"{name}" is missing')
        value = item[name]
        if not (_is_count(value) if int in types and isinstance(value, int) else isinstance(value, types)):
            raise ValueError(f'{where}"{name}" is {render.clip(repr(value), 80)}, not {_KINDS[types]}')


def _not_reached_but_not_interrupted(not_reached: int | None) -> str:
    why = ("null means the sweep was interrupted while listing the repositories" if not_reached is None
           else "a sweep that was not interrupted started every repository")
    return f'"not_reached" is {json.dumps(not_reached)}, but "interrupted" is false: {why}'


def _totals_problem(given: dict[str, Any], made: dict[str, int]) -> str | None:
    """What is wrong with a report's "totals", which must be what its repositories and images make."""
    for key in [*made, *sorted(set(given) - set(made))]:
        if key not in made:
            return f'"totals": unknown field "{render.clip(key, 80)}"'
        if key not in given:
            return f'"totals": "{key}" is missing'
        if not _is_count(given[key]):
            return f'"totals": "{key}" is {render.clip(repr(given[key]), 80)}, not a count'
        if given[key] != made[key]:
            return (f'"totals": "{key}" is {render.clip(given[key], 80)}, but the report\'s repositories and images '
                    f"make {made[key]}")
    return None


def _is_count(value: Any) -> bool:
    """A whole number from 0 up (JSON's true and false are not counts, though Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def make_report(mode: str, destination: str, repositories: Iterable[RepoEntry], *, interrupted: bool = False,
                not_reached: int | None = 0) -> SweepReport:
    return SweepReport(mode, destination, tuple(sorted(repositories, key=lambda r: r.repo.lower())), interrupted,
                       not_reached)


def merge(reports: Sequence[tuple[str, SweepReport]]) -> SweepReport:
    """The shards' reports, each with the file it was read from, as one; a repository in two shards
    is an error (shards never overlap). Shards may move one image to different targets: each
    repository's own `mapping` says where."""
    if not reports:
        raise UsageError("report merge: no reports given")
    first_where, first = reports[0]
    for where, report in reports[1:]:
        if (report.mode, report.destination) != (first.mode, first.destination):
            raise UsageError(f"report merge: {where} is of another sweep than {first_where} ({report.mode} to "
                             f"{report.destination}, not {first.mode} to {first.destination}); nothing was written")
    seen: dict[str, tuple[str, RepoEntry]] = {}
    for where, report in reports:
        for repo in report.repositories:
            if repo.repo in seen:
                raise UsageError(f"report merge: {repo.repo} is in two reports, {seen[repo.repo][0]} and {where}; "
                                 "shards never overlap; nothing was written")
            seen[repo.repo] = (where, repo)
    not_reached = [r.not_reached for _where, r in reports]
    return make_report(first.mode, first.destination, [repo for _where, repo in seen.values()],
                       interrupted=any(r.interrupted for _where, r in reports),
                       not_reached=None if None in not_reached else sum(n or 0 for n in not_reached))


def load(path: Path) -> SweepReport:
    try:
        data = jsontext.loads(textfile.read_text(path))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the report: {exc}") from None
    return SweepReport.from_json(data, str(path))


# --- writing ------------------------------------------------------------------------------------

def _csv_text(fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def to_csv(report: SweepReport) -> str:
    return _csv_text(CSV_FIELDS, (repo.to_json() for repo in report.repositories))


def image_rows(report: SweepReport) -> list[dict[str, Any]]:
    """The rows of report.md's Images table and of images.csv, most pulled first."""
    return [{**image, "repositories": len(image["repositories"])}
            for image in sorted(report.images(), key=lambda i: (-(i["pulls"] or 0), i["image"]))]


def images_to_csv(report: SweepReport) -> str:
    return _csv_text(IMAGE_COLUMNS, image_rows(report))


def _link(url: str | None) -> str:
    if not url:
        return ""
    if url.startswith(("https://", "http://")):
        return f"<{render.one_line(url).replace('>', '%3E').replace(' ', '%20')}>"
    return render.code_span(url)


_IMAGE_CELLS: dict[str, Callable[[Any], str]] = {
    "image": render.code_span, "pulls": render.count_text, "repositories": str, "status": lambda status: status or "",
    "target": render.code_span}


def to_markdown(report: SweepReport) -> str:
    totals = report.totals()
    title = {"inventory": "rehome inventory", "dry-run": "rehome sweep (dry run)"}.get(report.mode, "rehome sweep")
    # The statuses no repository has are left out (all of them when there is no repository).
    counted = {"repositories": "repositories", **{s: s for s in ORDER if totals[s]}, "images": "images",
               "third_party": "third-party references", "internal": "internal", "unresolved": "unresolved"}
    lines = [f"# {title}", "", f"Destination: {render.code_span(report.destination, table=False)}", "",
             *([interrupted_line(report), ""] if report.interrupted else []),
             "| " + " | ".join(counted.values()) + " |", "|" + "---:|" * len(counted),
             "| " + " | ".join(str(totals[key]) for key in counted) + " |",
             "", "## Images", ""]
    images = image_rows(report)
    if images:
        lines += ["| " + " | ".join(IMAGE_COLUMNS) + " |", "|---|---:|---:|---|---|"]
        lines += ["| " + " | ".join(_IMAGE_CELLS[column](image[column]) for column in IMAGE_COLUMNS) + " |"
                  for image in images]
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
    if report.not_reached is None:
        not_reached = "an unknown number of repositories (it was stopped before they were all listed)"
    else:
        not_reached = plural(report.not_reached, "repository", "repositories")
    return f"Interrupted: the sweep was stopped before it finished; not reached, and not in this report: {not_reached}."


def write(report: SweepReport, folder: Path) -> None:
    """`report.json`, `report.md`, `report.csv` and `images.csv` in `folder`, all four or none (a `WriteError`
    naming the file that could not be written)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot make the folder for the reports: {exc.strerror or exc}") from None
    texts = {"report.json": json.dumps(report.to_json(), indent=2) + "\n", "report.md": to_markdown(report),
             "report.csv": to_csv(report), "images.csv": images_to_csv(report)}
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
