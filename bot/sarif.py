"""`rehome check` findings as SARIF 2.1.0, the format GitHub code scanning reads."""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from bot import __version__
from bot.check import THIRD_PARTY_RULE, UNRESOLVED_RULE, Finding

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

RULES: list[dict[str, Any]] = [
    {
        "id": THIRD_PARTY_RULE,
        "name": "ThirdPartyImage",
        "shortDescription": {"text": "Container image pulled from a third-party registry"},
        "fullDescription": {
            "text": "The reference names an image on a registry outside your control (Docker Hub, quay.io, "
                    "ghcr.io, ...): its pulls are rate-limited, and it can change or disappear upstream.",
        },
        "help": {"text": THIRD_PARTY_HELP, "markdown": THIRD_PARTY_HELP},
        "defaultConfiguration": {"level": "error"},
    },
    {
        "id": UNRESOLVED_RULE,
        "name": "UnresolvedImage",
        "shortDescription": {"text": "Container image reference that cannot be resolved"},
        "fullDescription": {"text": "rehome cannot tell which image this reference names."},
        "help": {"text": UNRESOLVED_HELP, "markdown": UNRESOLVED_HELP},
        "defaultConfiguration": {"level": "warning"},
    },
]
_RULE_INDEX = {rule["id"]: index for index, rule in enumerate(RULES)}


def _result(finding: Finding, uri_prefix: str) -> dict[str, Any]:
    ref = finding.reference
    return {
        "ruleId": finding.rule,
        "ruleIndex": _RULE_INDEX[finding.rule],
        "level": finding.level,
        "message": {"text": finding.message},
        "locations": [{
            "physicalLocation": {
                # The name's bytes, percent-encoded: a name that is not UTF-8 keeps its own bytes.
                "artifactLocation": {"uri": quote(os.fsencode(uri_prefix + ref.path), safe="/")},
                "region": {"startLine": ref.line, "startColumn": ref.column},
            },
        }],
    }


def to_sarif(findings: list[Finding], uri_prefix: str = "") -> dict[str, Any]:
    """One run of the `rehome` tool; URIs are the findings' paths under `uri_prefix` (the
    scanned folder within its repository, so code scanning finds the files)."""
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "rehome", "version": __version__, "rules": RULES}},
            # Columns count characters, as `rehome scan` reports them, not UTF-16 code units.
            "columnKind": "unicodeCodePoints",
            "results": [_result(f, uri_prefix) for f in findings],
        }],
    }
