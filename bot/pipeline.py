"""One repository end to end: scan → plan → mirror → rewrite (verified moves only) → commit on the
bot's branch → push → open or update the one pull request.

`run_repository` is what `rehome run` calls, and what a sweep calls once per repository.
It is idempotent: with nothing new it commits, pushes and edits nothing (it only adds to the open
pull request the labels, reviewers and assignees it lacks).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot import git, mirror, options, render
from bot.commands import plan as plan_command
from bot.config import CONFIG_NAME, Config, config_folder, written_as
from bot.errors import ConfigError, RehomeError, UsageError
from bot.forge.base import Forge, PullRequest, PullRequestRequest
from bot.git import Checkout, Identity
from bot.gitcmd import GitError
from bot.mirror import MirrorImage, MirrorOptions
from bot.output import plural
from bot.plan import Plan
from bot.pulls import PullCounts
from bot.report import MovedImage, NotMoved, PullWindow, RunReport
from bot.rewrite import FileRewrite, rewrite_tree, unified_diff
from bot.scan.model import INTERNAL, Reference, ScanResult

log = logging.getLogger("rehome")

DEFAULT_LABELS = ("rehome",)
# Mirror statuses whose references move: verified copies, or (dry run only) what would be copied.
VERIFIED = frozenset({"present", "copied"})
DRY_RUN_MOVES = VERIFIED | {"missing", "unknown"}

Ensure = Callable[..., list[MirrorImage]]
OnPlanned = Callable[[plan_command.Planned, str], None]  # the scan and plan, the base commit


@dataclasses.dataclass(frozen=True)
class PullRequestSettings:
    """What the flags and `rehome.yaml` say about the branch and the pull request."""

    branch: str
    author: Identity
    title: str | None
    labels: tuple[str, ...]
    reviewers: tuple[str, ...]
    assignees: tuple[str, ...]
    draft: bool
    templates: Path | None
    recreate_closed: bool = False  # open a new pull request even for the change of one closed unmerged


@dataclasses.dataclass
class RunResult:
    """What one repository's run did. `status`: opened, updated, unchanged, nothing-to-do,
    dry-run, stopped (the bot's branch holds someone else's commits), or declined (the same change's
    pull request was closed without merging: not proposed again)."""

    repository: str
    status: str
    message: str
    changed: bool = False
    report: RunReport | None = None
    plan: Plan | None = None
    images: list[MirrorImage] = dataclasses.field(default_factory=list)
    rewrites: list[FileRewrite] = dataclasses.field(default_factory=list)
    pull_request: PullRequest | None = None
    title: str = ""
    body: str = ""
    commit_message: str = ""  # rendered when files change
    templates: Path | None = None  # the template folder the text was rendered with
    retargeted_from: str | None = None  # the open pull request's base before this run changed it
    closed_branch_gone: bool = False  # declined: the closed pull request's branch is deleted

    @property
    def reopen_advice(self) -> str:
        """How to have a declined change's pull request updated: GitHub reopens none whose branch is gone."""
        return "restore its branch and reopen it" if self.closed_branch_gone else "reopen it"

    @property
    def diff(self) -> str:
        return "".join(unified_diff(r) for r in self.rewrites if r.changed)

    @property
    def failed(self) -> list[MirrorImage]:
        return [image for image in self.images if image.status in mirror.NEEDS_ATTENTION]

    @property
    def warnings(self) -> list[str]:
        """What could not be set on the pull request (labels, reviewers, assignees)."""
        return list(self.pull_request.warnings) if self.pull_request is not None else []

    @property
    def exit_code(self) -> int:
        untouched = any(r.new_text is None for r in self.rewrites)
        return 1 if self.status == "stopped" or self.failed or untouched or self.warnings else 0

    def to_json(self) -> dict[str, Any]:
        """`rehome run --format json`: the fields issue 6 defines, `moved` counting images."""
        pull = self.pull_request
        return {
            "version": 1,
            "status": self.status,
            "pr_url": pull.url if pull and pull.number is not None else None,
            "pr_number": pull.number if pull else None,
            "changed": self.changed,
            "moved": len(self.report.moved) if self.report else 0,
            "unresolved": len(self.plan.unresolved) if self.plan else 0,
            "failed": len(self.failed),
            "warnings": self.warnings,
            "images": [image.to_json() for image in self.images],
        }


def split_list(value: str | None) -> tuple[str, ...] | None:
    """`a,b` → ("a", "b"); None when the flag was not given; `""` → () (explicitly none)."""
    if value is None:
        return None
    return tuple(item.strip() for item in value.split(",") if item.strip())


def default_author(environ: Mapping[str, str]) -> Identity:
    return git.ACTIONS_BOT if environ.get("GITHUB_ACTIONS") == "true" else git.BOT


def pull_request_settings(args: argparse.Namespace, config: Config,
                          environ: Mapping[str, str] = os.environ) -> PullRequestSettings:
    labels = split_list(getattr(args, "labels", None))
    reviewers = split_list(getattr(args, "reviewers", None))
    assignees = split_list(getattr(args, "assignees", None))
    templates = getattr(args, "templates", None)
    return PullRequestSettings(
        branch=_bot_branch(args, config),
        author=Identity.parse(config.author) if config.author else default_author(environ),
        title=getattr(args, "title", None) or config.title,
        labels=labels if labels is not None else config.labels if config.labels is not None else DEFAULT_LABELS,
        reviewers=reviewers if reviewers is not None else config.reviewers,
        assignees=assignees if assignees is not None else config.assignees,
        draft=bool(getattr(args, "draft", False)) or config.draft,
        templates=Path(templates) if templates else config_folder(config, "templates"),
        recreate_closed=bool(getattr(args, "recreate_closed", False)),
    )


def _bot_branch(args: argparse.Namespace, config: Config) -> str:
    """The bot's branch (`--branch`, else rehome.yaml's, else the default); a name git would refuse
    is refused naming where it was given: the flag (or the Action's input), or rehome.yaml's key."""
    given = getattr(args, "branch", None)
    try:
        return git.check_branch_name(given or config.branch or git.DEFAULT_BRANCH)
    except UsageError as exc:
        if given:
            raise UsageError(f"{options.flag_name(args, '--branch')}: {exc.message}", exc.hint) from None
        raise ConfigError(f"{config.path}: key 'branch': {exc.message}", exc.hint) from None


def run_repository(forge: Forge, args: argparse.Namespace, *, ensure: Ensure = mirror.ensure_images,
                   mirror_options: MirrorOptions | None = None,
                   on_planned: OnPlanned = lambda planned, base_sha: None) -> RunResult:
    """Run the whole pipeline for the repository `forge` names. `args` are `rehome run`'s flags
    (scan, plan, mirror and pull request settings); `ensure` may be a sweep's shared mirror step.
    `on_planned` is given the scan and plan, and the commit they are of, as soon as they are made,
    so a caller keeps them even when a later step (push, pull request) raises."""
    dry_run = bool(args.dry_run)
    try:
        with forge.checkout(dry_run=dry_run) as checkout, files_named_in_repository(checkout, forge.repository):
            return _run_checkout(forge, checkout, args, ensure, mirror_options, dry_run, on_planned)
    except git.NoCommits:  # an empty repository: nothing to clone, scan or change
        return RunResult(forge.repository, "nothing-to-do", f"{forge.repository}: {git.NO_COMMITS}")


@contextlib.contextmanager
def files_named_in_repository(checkout: Checkout, repository: str) -> Iterator[None]:
    """An error about a file of the checkout (a bad `rehome.yaml`, rules or templates) names it as
    `repository: path`, not by the temporary folder it was read from."""
    try:
        yield
    except RehomeError as exc:
        exc.message = checkout.name_in_repository(exc.message, repository)
        exc.args = (exc.message,)
        raise


def plan_checkout(checkout: Checkout, args: argparse.Namespace) -> plan_command.Planned:
    """Scan and plan the checkout's files. `rehome.yaml` and the rules and templates it names
    inside the repository are written to disk first: the only files read from there."""
    args = argparse.Namespace(**{**vars(args), "path": str(checkout.root)})
    if getattr(args, "config", None) is None:
        checkout.materialize([CONFIG_NAME])
    config = options.load_config(args, checkout.root)
    root = checkout.root.resolve()
    named = {key: path for key, path in (("rules", config.rules), ("templates", config.templates)) if path is not None}
    if config.path is not None and config.path.resolve().is_relative_to(root):
        _check_inside(config.path, named, root)
    inside = {key: path for key, path in named.items() if path.is_relative_to(root)}
    checkout.materialize([path.relative_to(root).as_posix() for path in inside.values()])
    _check_committed(checkout, config, {key: path for key, path in inside.items() if not getattr(args, key, None)})
    return plan_command.build(args, checkout.objects, config)


def _check_inside(config_path: Path, named: Mapping[str, Path], root: Path) -> None:
    """The repository's rehome.yaml may name only the repository's own rules and templates: the
    checkout is a temporary folder, and what lies beside it is not the repository's."""
    for key, path in named.items():
        if not path.is_relative_to(root):
            raise ConfigError(f"{config_path}: key {key!r}: {written_as(config_path, path)} is outside the repository; "
                              "only the repository's own files are read")


def _check_committed(checkout: Checkout, config: Config, named: Mapping[str, Path]) -> None:
    """The folders rehome.yaml names (and no flag replaces) are read from the base commit: one it
    does not hold is said to be so, not to be missing (it may well be in the working tree, uncommitted)."""
    for key, path in named.items():
        if not path.exists():
            assert config.path is not None  # only a rehome.yaml names folders
            raise ConfigError(f"{config.path}: key {key!r}: {written_as(config.path, path)} is not in the commit "
                              f"being read (the tip of {checkout.base}, {checkout.base_sha[:12]})",
                              hint="only committed files are read: commit the folder (or correct the key), "
                                   "then run again")


def _run_checkout(forge: Forge, checkout: Checkout, args: argparse.Namespace, ensure: Ensure,
                  mirror_options: MirrorOptions | None, dry_run: bool, on_planned: OnPlanned) -> RunResult:
    planned = plan_checkout(checkout, args)
    on_planned(planned, checkout.base_sha)
    settings = pull_request_settings(args, planned.config)
    if checkout.base == settings.branch:
        raise _same_branch(args, planned.config, settings.branch, not checkout.remote)
    head = git.branch_head(checkout, settings.branch)
    if head is not None:
        foreign = git.foreign_commits(checkout, head, (settings.author, *git.DEFAULT_AUTHORS))
        if foreign:
            return _stopped(forge, checkout.base, settings, foreign, args, dry_run)
    copy_options = mirror_options or mirror.options_from_args(
        args, planned.config.insecure_registries, mirror.registry_host(planned.plan.destination, "destination"))
    plan = planned.plan
    images = ensure([(m.source, m.target) for m in plan.moves], copy_options,
                    pulls={m.source: m.pulls for m in plan.moves})
    moving = verified_plan(plan, images, DRY_RUN_MOVES if dry_run else VERIFIED)
    rules = {rule.kind: rule for rule in planned.scan_options.rules}
    rewrites = rewrite_tree(planned.tree, moving, rules, planned.scan_options.policy, planned.scanned.references,
                            pins(plan, images))
    report = build_report(forge.repository, checkout.base, settings.branch, plan, moving, images, rewrites,
                          planned.scanned, dry_run, pull_window(planned.pulls))
    result = RunResult(forge.repository, "", "", report=report, plan=plan, images=images, rewrites=rewrites,
                       title=_title(report, settings), body=render.render_body(report, settings.templates),
                       templates=settings.templates)
    changed = [r for r in rewrites if r.changed]
    if changed:  # a dry run too: a template that cannot render fails it as it would fail the real run
        result.commit_message = render.render_commit_message(report, settings.templates)
    if dry_run:
        _refuse_as_the_real_run_would(checkout, settings.branch, head, changed)
        result.status, result.changed = "dry-run", bool(changed)
        result.message = _dry_run_message(len(report.moved), len(changed), len(result.failed))
        if changed and checkout.remote and forge.reads_pull_requests:
            result.message += _pull_request_preview(forge, checkout, settings, head, result, changed,
                                                    options.flag_name(args, "--recreate-closed"))
        return result
    _publish(forge, checkout, settings, head, result, changed, options.flag_name(args, "--recreate-closed"))
    for warning in result.warnings:
        log.warning("%s: %s", forge.repository, warning)
    return result


def _pull_request_preview(forge: Forge, checkout: Checkout, settings: PullRequestSettings, head: str | None,
                          result: RunResult, changed: list[FileRewrite], recreate_flag: str) -> str:
    """What the real run would do besides opening a pull request: not open it (the same change's
    was closed without merging), or change the open one's base. The clone is a temporary one: the
    commit made to compare is not kept. GitHub refusing to answer leaves the preview as it is."""
    try:
        existing = forge.find_pull_request(settings.branch, checkout.base)
    except RehomeError as exc:
        log.warning("%s: cannot tell what the real run would do with its pull request: %s", forge.repository,
                    exc.message)
        return ""
    if _may_be_declined(existing, settings):  # the commit to compare is made only then
        new = git.commit_files(checkout, _new_texts(changed), result.commit_message, settings.author)
        declined = _declined_change(forge, checkout, settings, head, new, existing, result)
        if declined is not None:
            return (f"; {declined.url} was closed without merging with this same change: the real run would not "
                    f"open a pull request ({result.reopen_advice}, or run with {recreate_flag} for a new one)")
    stale = _stale_base(existing, checkout)
    if existing is not None and stale is not None:
        return (f"; the real run would change the base of {existing.url} to {checkout.base}, the default branch, "
                f"not {stale}")
    return ""


def _refuse_as_the_real_run_would(checkout: Checkout, branch: str, head: str | None,
                                  changed: list[FileRewrite]) -> None:
    """A dry run refuses what the real run would refuse once it is about to move the branch: a
    local branch checked out in another worktree (unless the branch already holds the change)."""
    if not changed:
        return
    refusal = git.checked_out_elsewhere(checkout, branch)
    if refusal is not None and not git.holds_files(checkout, head, _new_texts(changed)):
        raise refusal


def _new_texts(changed: list[FileRewrite]) -> dict[str, str]:
    return {r.path: r.new_text for r in changed if r.new_text is not None}


def _dry_run_message(moved: int, files: int, failed: int) -> str:
    """What the dry run found; the images the real run would fail on are counted apart, never as moving."""
    failing = f" ({plural(failed, 'image')} cannot be copied)" if failed else ""
    if files:
        return f"dry run: {plural(moved, 'image')} would move, in {plural(files, 'file')}{failing}; nothing written"
    return f"dry run: nothing would change{failing}, so no pull request would be opened; nothing written"


def _same_branch(args: argparse.Namespace, config: Config, branch: str, local: bool) -> UsageError:
    """The bot's branch is the base: said where the name came from, with the fixes that fit (a
    local checkout may just have the bot's branch checked out; a clone's base is the default branch)."""
    same = f"{branch!r} is the base branch itself; the bot's branch must be another one"
    check_out = ", or check out the branch the pull request should target" if local else ""
    if getattr(args, "branch", None):
        option = options.flag_name(args, "--branch")
        return UsageError(f"{option}: {same}",
                          hint=f"choose another branch with {option}, or leave it out ({git.DEFAULT_BRANCH}){check_out}")
    if config.branch:
        return ConfigError(f"{config.path}: key 'branch': {same}",
                           hint=f"name another branch there, or remove the key ({git.DEFAULT_BRANCH}){check_out}")
    return UsageError(f"the base branch is the bot's own branch {branch}",
                      hint="check out (or make default) the branch the pull request should target")


def _title(report: RunReport, settings: PullRequestSettings) -> str:
    if settings.title:
        return settings.title.replace("{count}", str(len(report.moved))).replace("{destination}", report.destination)
    return render.render_title(report, settings.templates)


def _stopped(forge: Forge, base: str, settings: PullRequestSettings, foreign: Sequence[git.Commit],
             args: argparse.Namespace, dry_run: bool) -> RunResult:
    """Nothing is done to the branch; its open pull request, if any, is named all the same (a dry run
    asks the forge nothing)."""
    who = ", ".join(f"{c.sha[:12]} by {c.author}" for c in foreign[:3]) + (" …" if len(foreign) > 3 else "")
    message = (f"{forge.repository}: stopped: the branch {settings.branch} holds commits by someone other than "
               f"{settings.author} ({who}); it is not overwritten. Merge or delete that branch, or choose "
               f"another with {options.flag_name(args, '--branch')}")
    result = RunResult(forge.repository, "stopped", message)
    if not dry_run:
        forge.no_pull_request()
        result.pull_request = forge.find_pull_request(settings.branch, base)
    return result


def _publish(forge: Forge, checkout: Checkout, settings: PullRequestSettings, head: str | None,
             result: RunResult, changed: list[FileRewrite], recreate_flag: str) -> None:
    existing = forge.find_pull_request(settings.branch, checkout.base)
    result.pull_request = existing
    if not changed:
        forge.no_pull_request()
        result.status = "nothing-to-do"
        failed = len(result.failed)
        state = (f"nothing more can move ({plural(failed, 'image')} could not be copied)" if failed
                 else "everything is already moved")
        if existing is not None:
            result.message = f"{forge.repository}: {state}; the pull request {existing.url} is left as it is"
        else:
            result.message = f"{forge.repository}: {state}" if failed else f"{forge.repository}: nothing to move"
        return
    new = git.commit_files(checkout, _new_texts(changed), result.commit_message, settings.author)
    declined = _declined_change(forge, checkout, settings, head, new, existing, result)
    if declined is not None:
        forge.no_pull_request()
        result.pull_request, result.status = declined, "declined"
        result.message = (f"{forge.repository}: {declined.url} was closed without merging, and this change is "
                          f"the same: it is not proposed again ({result.reopen_advice}, or run with "
                          f"{recreate_flag} for a new pull request)")
        return
    stale = _stale_base(existing, checkout)
    if existing is not None and stale is not None:
        # Before the push: the pull request never shows the commits of the new base as the bot's.
        result.retargeted_from = stale
        existing = forge.retarget_pull_request(existing, checkout.base)
    retargeted = _retargeted(checkout, result)
    try:
        _propose(forge, checkout, settings, head, new, existing, result)
    except GitError as exc:  # the push: said with the repository, and what was already done to its pull request
        done = f"{existing.url} was retargeted ({retargeted}), but " if existing and retargeted else ""
        raise GitError(f"{forge.repository}: {done}{exc.message}", hint=exc.hint) from None
    if retargeted:
        result.message += f"; {retargeted}"


def _retargeted(checkout: Checkout, result: RunResult) -> str:
    if result.retargeted_from is None:
        return ""
    return f"its base is now {checkout.base}, the default branch, not {result.retargeted_from}"


def _stale_base(existing: PullRequest | None, checkout: Checkout) -> str | None:
    """The base of the bot's open pull request when it is not the branch scanned (the default branch
    changed since it was opened): the real run changes it."""
    if existing is None or existing.base in (None, checkout.base):
        return None
    return existing.base


def _declined_change(forge: Forge, checkout: Checkout, settings: PullRequestSettings, head: str | None, new: str,
                     existing: PullRequest | None, result: RunResult) -> PullRequest | None:
    """The pull request that declined the change `new` makes, when it may be declined; notes in
    `result` whether its branch is gone (`head` None)."""
    if not _may_be_declined(existing, settings):
        return None
    declined = _declined(forge, checkout, settings.branch, head, new)
    if declined is not None:
        result.closed_branch_gone = head is None
    return declined


def _may_be_declined(existing: PullRequest | None, settings: PullRequestSettings) -> bool:
    """Whether a closed pull request can decline the change: there is no open one, and no flag asks
    for a new one anyway."""
    return existing is None and not settings.recreate_closed


def _declined(forge: Forge, checkout: Checkout, branch: str, head: str | None, new: str) -> PullRequest | None:
    """The bot's last pull request from `branch`, when it was closed without merging and held the
    change `new` makes: a person said no to that change, so it is not proposed again."""
    closed = forge.closed_pull_request(branch)
    if closed is None or closed.head_ref is None:
        return None
    try:
        commit = head if head is not None and head == closed.head_sha else git.fetch_commit(checkout, closed.head_ref)
        held = git.holds_change(checkout, commit, new)
    except GitError as exc:  # its last commit gone from the remote: nothing says this change was refused
        log.warning("%s: cannot read closed pull request #%s's last commit: %s; proposing the change",
                    forge.repository, closed.number, exc.message)
        return None
    return closed if held else None


def _propose(forge: Forge, checkout: Checkout, settings: PullRequestSettings, head: str | None, new: str,
             existing: PullRequest | None, result: RunResult) -> None:
    """Push the branch at `new` (unless it is there already) and open or edit its pull request."""
    assert result.report is not None
    request = PullRequestRequest(settings.branch, checkout.base, result.title, result.body, settings.labels,
                                 settings.reviewers, settings.assignees, settings.draft)
    if git.same_change(checkout, head, new):
        if existing is not None or not checkout.remote:
            result.pull_request = forge.complete_pull_request(request, existing)
            result.status = "unchanged"
            where = existing.url if existing is not None else f"the branch {settings.branch}"
            result.message = f"{forge.repository}: nothing new; {where} already holds this change"
            return
        result.pull_request = forge.open_pull_request(request, None)  # the branch is there, its PR is not
        result.status = "opened"
        result.message = f"{forge.repository}: opened {result.pull_request.url}"
        return
    git.publish_branch(checkout, settings.branch, new, head)
    result.changed = True
    result.pull_request = forge.open_pull_request(request, existing)
    result.status = "updated" if existing is not None else "opened"
    where = result.pull_request.url or settings.branch
    result.message = f"{forge.repository}: {result.status} {where} ({plural(len(result.report.moved), 'image')} moved)"


def verified_plan(plan: Plan, images: Sequence[MirrorImage], statuses: frozenset[str]) -> Plan:
    """The plan with only the moves whose mirror copy has one of `statuses` (verified, normally)."""
    by_source = {image.source: image for image in images}
    moves = [m for m in plan.moves if (image := by_source.get(m.source)) is not None and image.status in statuses]
    return dataclasses.replace(plan, moves=moves)


def pins(plan: Plan, images: Sequence[MirrorImage]) -> dict[str, str] | None:
    """With `pin_digest`: each source's verified mirror digest, for the rewrite to pin."""
    if not plan.pin_digest:
        return None
    return {image.source: image.verified_digest for image in images if image.verified_digest}


def _not_moved(ref: Reference, category: str, reason: str | None) -> NotMoved:
    return NotMoved(ref.path, ref.line, ref.column, ref.raw, category, reason or category)


def pull_window(counts: PullCounts | None) -> PullWindow | None:
    if counts is None:
        return None
    window = counts.window.to_json() if counts.window is not None else {"since": None, "until": None}
    return PullWindow(counts.source, window["since"], window["until"])


def build_report(repository: str, base: str, branch: str, plan: Plan, moving: Plan, images: Sequence[MirrorImage],
                 rewrites: Sequence[FileRewrite], scanned: ScanResult, dry_run: bool,
                 window: PullWindow | None = None) -> RunReport:
    by_source = {image.source: image for image in images}
    untouched = {r.path: r.reason or "a safety check failed" for r in rewrites if r.new_text is None}
    moved: list[MovedImage] = []
    not_moved: list[NotMoved] = []
    for move in moving.moves:
        image = by_source[move.source]
        kept = [ref for ref in move.references if ref.path not in untouched]
        not_moved += [_not_moved(ref, "untouched", f"file left as it is: {untouched[ref.path]}")
                      for ref in move.references if ref.path in untouched]
        if kept:
            moved.append(MovedImage(move.source, move.target, image.digest, image.platforms, image.status,
                                    move.pulls, move.repository_pulls,
                                    tuple(dataclasses.replace(move, references=kept).occurrences)))
    moving_sources = {m.source for m in moving.moves}
    for move in plan.moves:
        if move.source in moving_sources:
            continue
        image = by_source.get(move.source)
        status = image.status if image is not None else "failed"
        reason = (image.problem if image is not None and image.error else
                  f"the mirror copy is {status}; only verified copies are used")
        not_moved += [_not_moved(ref, status, reason) for ref in move.references]
    not_moved += [_not_moved(ref, "unresolved", ref.reason) for ref in plan.unresolved]
    not_moved += [_not_moved(ref, "covered", ref.reason) for ref in plan.covered]
    not_moved += [_not_moved(ref, "internal", ref.reason or "already in an internal registry")
                  for ref in scanned.references if ref.status == INTERNAL]
    not_moved.sort(key=lambda n: (n.path, n.line, n.column, n.raw))
    files = tuple(sorted(r.path for r in rewrites if r.changed))
    return RunReport(repository, plan.destination, base, branch, tuple(moved), tuple(not_moved), files,
                     pull_window=window, dry_run=dry_run, skipped=tuple(scanned.skipped))


__all__ = ["PullRequestSettings", "RunResult", "build_report", "files_named_in_repository", "pins",
           "pull_request_settings", "pull_window", "run_repository", "verified_plan"]
