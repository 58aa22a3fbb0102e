"""`rehome check` findings as SARIF 2.1.0, the format GitHub code scanning reads."""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from bot import __version__
from bot.check import THIRD_PARTY_RULE, UNRESOLVED_RULE, Finding, Report, skipped_message
from bot.scan.model import Skipped

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

THIRD_PARTY_HELP = (
    "Copy the image into your own registry and use the copy: `rehome plan --to DEST` shows the mirror "
    "name, `rehome mirror --to DEST` copies the image and `rehome rewrite --to DEST` changes the reference. "
    "If the reference must stay as it is, put a `# rehome: ignore` comment on its line, or list the image "
    "under `exclude_images` in rehome.yaml."
)
UNRESOLVED_HELP = (
    "The reference holds a variable, a template expression or a parameter, or is not a valid image name, "
    "so rehome cannot tell which registry it is pulled from. Check by hand what it becomes; if that is a "
    "third-party image, point it at your registry's copy. A `# rehome: ignore` comment on its line hides it."
)

SKIPPED_RULE = "rehome/skipped-file"
SKIPPED_HELP = (
    "A rule selects the file, but it could not be read whole (not UTF-8, binary, larger than "
    "`max_file_size`, not valid YAML, a symlink), or the file was named on the command line but is not "
    "a regular file or is ignored by git, so the images it may name are not checked. Fix the file, "
    "raise `max_file_size`, or, if it holds no images, leave it out with `exclude` in rehome.yaml."
)

def _rule(rule_id: str, name: str, short: str, full: str, help_text: str, level: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": level},
    }


RULES: list[dict[str, Any]] = [
    _rule(THIRD_PARTY_RULE, "ThirdPartyImage", "Container image pulled from a third-party registry",
          "The reference names an image on a registry outside your control (Docker Hub, quay.io, ghcr.io, ...): "
          "its pulls are rate-limited, and it can change or disappear upstream.", THIRD_PARTY_HELP, "error"),
    _rule(UNRESOLVED_RULE, "UnresolvedImage", "Container image reference that cannot be resolved",
          "rehome cannot tell which image this reference names.", UNRESOLVED_HELP, "warning"),
    _rule(SKIPPED_RULE, "SkippedFile", "File that could not be read, so it was not checked",
          "rehome could not read this file whole: its image references are not checked.", SKIPPED_HELP, "warning"),
]
_RULE_INDEX = {rule["id"]: index for index, rule in enumerate(RULES)}


def _result(rule: str, level: str, message: str, uri: str, region: dict[str, int]) -> dict[str, Any]:
    return {
        "ruleId": rule,
        "ruleIndex": _RULE_INDEX[rule],
        "level": level,
        "message": {"text": message},
        "locations": [{
            "physicalLocation": {
                # The name's bytes, percent-encoded: a name that is not UTF-8 keeps its own bytes.
                "artifactLocation": {"uri": quote(os.fsencode(uri), safe="/")},
                "region": region,
            },
        }],
    }


def _finding_result(finding: Finding, uri_prefix: str) -> dict[str, Any]:
    ref = finding.reference
    region = {"startLine": ref.line, "startColumn": ref.column}
    return _result(finding.rule, finding.level, finding.message, uri_prefix + ref.path, region)


def _skipped_result(skipped: Skipped, level: str, uri_prefix: str) -> dict[str, Any]:
    # The whole file; code scanning places a result only where it has a start line.
    return _result(SKIPPED_RULE, level, skipped_message(skipped), uri_prefix + skipped.path, {"startLine": 1})


def to_sarif(report: Report, uri_prefix: str = "") -> dict[str, Any]:
    """One run of the `rehome` tool; URIs are the findings' and skipped files' paths under
    `uri_prefix` (the scanned folder within its repository, so code scanning finds the files)."""
    results = [_finding_result(f, uri_prefix) for f in report.findings]
    results += [_skipped_result(s, report.skipped_level, uri_prefix) for s in report.skipped]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "rehome", "version": __version__, "rules": RULES}},
            # Columns count characters, as `rehome scan` reports them, not UTF-16 code units.
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
