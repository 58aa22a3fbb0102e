from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from bot.rules import Rule, load_rules
from bot.scan.base import ExtractError, FileContext
from bot.scan.dockerfile import extract
from bot.scan.files import DiskTree
from bot.scan.model import Found
from tests.helpers import run_cli, write_tree

FIXTURES = Path(__file__).parent / "fixtures" / "dockerfile"
RULE = Rule(kind="dockerfile", source=Path("rules/dockerfile.yaml"), extractor="dockerfile", files=("**/Dockerfile*",))
DIGEST = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def position(text: str, offset: int) -> tuple[int, int]:
    """Line and column as the scan contract counts them: `\\n` only, a BOM is not a column."""
    line_start = text.rfind("\n", 0, offset) + 1
    column = offset - line_start + 1
    if line_start == 0 and text.startswith("\ufeff"):
        column -= 1
    return text.count("\n", 0, offset) + 1, column


def found_in(text: str, tmp_path: Path) -> list[Found]:
    return extract(text, RULE, FileContext(DiskTree(tmp_path), "Dockerfile")).found


def rows(text: str, found: list[Found]) -> list[tuple[object, ...]]:
    out = []
    for item in found:
        start, end = item.region
        assert text[start:end] == item.raw, f"{item.raw!r} is not at its offset"
        out.append((*position(text, item.offset), item.raw, item.resolve_as, item.unresolved, item.note))
    return out


def fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def scan(name: str, tmp_path: Path) -> list[tuple[object, ...]]:
    text = fixture(name)
    return rows(text, found_in(text, tmp_path))


def test_from_forms(tmp_path):
    assert scan("from-forms.Dockerfile", tmp_path) == [
        (1, 6, "alpine:3.19", None, None, None),
        (2, 32, "golang:1.22", None, None, None),
        (3, 7, f"nginx@{DIGEST}", None, None, None),
        (4, 7, f"registry.example.com:5000/team/app:1.0@{DIGEST}", None, None, None),
        (5, 6, "ubuntu", None, None, None),
    ]
    assert [f.edit for f in found_in(fixture("from-forms.Dockerfile"), tmp_path)] == [{"instruction": "FROM"}] * 5


def test_stage_names_indexes_and_scratch_are_not_images(tmp_path):
    assert scan("multi-stage.Dockerfile", tmp_path) == [
        (1, 6, "golang:1.22", None, None, None),
        (8, 20, "busybox:1.36", None, None, None),
        (13, 6, "debian:12", None, None, None),
    ]


def test_arg_naming_a_stage_is_not_an_image(tmp_path):
    assert scan("arg-stage.Dockerfile", tmp_path) == [(2, 6, "golang:1.22", None, None, None)]


def test_run_mount_from_in_any_position(tmp_path):
    text = fixture("mount.Dockerfile")
    found = found_in(text, tmp_path)
    assert rows(text, found) == [
        (1, 6, "alpine:3.19", None, None, None),
        (2, 28, "node:20-alpine", None, None, None),
        (3, 67, "python:3.12", None, None, None),
        (5, 29, "ghcr.io/org/tool:1", None, None, None),
        (6, 29, "quay.io/org/other:2", None, None, None),
    ]
    assert [f.edit for f in found[1:]] == [{"instruction": "RUN", "flag": "mount"}] * 4


def test_line_continuations_skip_comment_and_empty_lines(tmp_path):
    text = fixture("continuation.Dockerfile")
    found = found_in(text, tmp_path)
    assert rows(text, found) == [
        (5, 5, "python:3.12-slim", None, None, None),
        (8, 10, "ghcr.io/astral-sh/uv:0.4", None, None, None),
    ]
    assert found[1].edit == {"instruction": "COPY", "flag": "from"}


def test_escape_directive_changes_the_continuation_character(tmp_path):
    # `RUN dir C:\` does not continue onto the next FROM; the backtick does continue.
    assert scan("escape.Dockerfile", tmp_path) == [
        (4, 6, "mcr.microsoft.com/windows/servercore:ltsc2022", None, None, None),
        (7, 6, "mcr.microsoft.com/windows/nanoserver:ltsc2022", None, None, None),
        (10, 10, "mcr.microsoft.com/powershell:lts", None, None, None),
    ]


def test_nothing_inside_heredocs_is_an_instruction(tmp_path):
    assert scan("heredoc.Dockerfile", tmp_path) == [
        (1, 10, "docker/dockerfile:1.7", None, None, None),
        (2, 6, "alpine:3.19", None, None, None),
        (16, 28, "busybox:1.36", None, None, None),
        (20, 6, "nginx:1.27", None, None, None),
    ]


def test_unterminated_heredoc_runs_to_the_end(tmp_path):
    assert scan("heredoc-unterminated.Dockerfile", tmp_path) == [(1, 6, "alpine:3.19", None, None, None)]


def test_syntax_directive_after_a_bom(tmp_path):
    text = fixture("syntax.Dockerfile")
    found = found_in(text, tmp_path)
    assert rows(text, found) == [
        (1, 13, "docker/dockerfile:1.7-labs", None, None, None),
        (3, 6, "alpine:3.19", None, None, None),
    ]
    assert found[0].edit == {"directive": "syntax"}


def test_syntax_is_a_directive_only_at_the_top(tmp_path):
    assert scan("syntax-not-leading.Dockerfile", tmp_path) == [(3, 6, "alpine:3.19", None, None, None)]


def test_arg_defaults_used_by_from(tmp_path):
    text = fixture("arg-base.Dockerfile")
    found = found_in(text, tmp_path)
    assert rows(text, found) == [
        (1, 10, "node:20-alpine", None, None, "default of ARG BASE, used by FROM"),
        (2, 14, "gcr.io/distroless/nodejs20-debian12:nonroot", None, None, "default of ARG RUNTIME, used by FROM"),
        (4, 19, "redis:7", None, None, "default of ARG WITH_FALLBACK, used by FROM"),
        (9, 6, "python:${TAG}-slim", "python:3.12-slim", None, 'tag from ARG TAG default "3.12"'),
        (13, 13, "${HELPER}", "busybox:1.36", None, 'name from ARG HELPER default "busybox:1.36"'),
        (15, 28, "python:${TAG}", "python:3.12", None, 'tag from ARG TAG default "3.12"'),
    ]
    assert [f.edit for f in found] == [
        {"instruction": "ARG", "arg": "BASE", "arg_used_elsewhere": True, "quote": ""},
        {"instruction": "ARG", "arg": "RUNTIME", "arg_used_elsewhere": False, "quote": '"'},
        {"instruction": "ARG", "arg": "WITH_FALLBACK", "arg_used_elsewhere": False, "quote": ""},
        {"instruction": "FROM", "args": ["TAG"]},
        {"instruction": "COPY", "flag": "from"},
        {"instruction": "RUN", "flag": "mount"},
    ]


def test_args_without_a_usable_default_are_unresolved(tmp_path):
    assert scan("arg-unresolved.Dockerfile", tmp_path) == [
        (2, 6, "alpine:3.19", None, None, None),
        (4, 6, "${NODEFAULT}", None, "ARG NODEFAULT has no default value", None),
        (5, 6, "python:${LATE}", None,
         "ARG LATE is declared after the first FROM; FROM only sees ARGs declared before it", None),
        (6, 6, "${UNDECLARED}/app:1", None, "UNDECLARED is not declared by an ARG before the first FROM", None),
        (7, 6, "${TARGETARCH}/busybox:1.36", None, "TARGETARCH is set by the builder for the target platform", None),
        (8, 13, "${LATE}", None, "LATE is not an ARG of this stage", None),
    ]


def test_substitution_forms(tmp_path):
    assert scan("arg-substitution.Dockerfile", tmp_path) == [
        (2, 11, "${REGISTRY}/library/redis:7", "docker.io/library/redis:7", None, "default of ARG IMAGE, used by FROM"),
        (6, 6, "${DISTRO:-debian}:${DEB-12}-slim", "debian:12-slim", None,
         'name from ${DISTRO:-debian}: "debian" (DISTRO is not set); tag from ${DEB-12}: "12" (DEB is not set)'),
        (7, 6, "${EMPTY:-alpine}:3.20", "alpine:3.20", None, 'name from ${EMPTY:-alpine}: "alpine" (EMPTY is empty)'),
        (8, 6, "busybox${SUFFIX:+-musl}:1.36", "busybox:1.36", None, 'name from ${SUFFIX:+-musl}: "" (SUFFIX is empty)'),
        (9, 6, "${REGISTRY}/library/postgres:16${SUFFIX}", "docker.io/library/postgres:16", None,
         'name from ARG REGISTRY default "docker.io"; tag from ARG SUFFIX default ""'),
        (10, 6, "quay.io/${PROJECT:?required}/app:1", None,
         "${PROJECT:?required}: PROJECT is not declared by an ARG before the first FROM", None),
        (11, 6, "img:${TAG#v}", None, "unsupported substitution ${TAG#v}", None),
        (12, 6, "mcr.microsoft.com/windows/servercore:${WINDOWS_VERSION}", None,
         "ARG WINDOWS_VERSION is empty, which leaves the tag empty", None),
    ]


def test_a_default_word_that_gave_the_image_is_the_reference(tmp_path):
    # A rewrite replaces the word and keeps the substitution; quotes or escapes in the word, or
    # an image only partly from the word, keep the whole text (the name comes from a variable).
    text = ("ARG TAG=3.12\nFROM ${NOPE:-nginx:1.25}\nFROM ${PY:-python:${TAG}-slim}\nCOPY --from=${H-busybox:1.36} / /\n"
            "FROM ${Q:-\"redis:7\"}\nFROM ${D:-debian}:12\n")
    assert rows(text, found_in(text, tmp_path)) == [
        (2, 14, "nginx:1.25", None, None, 'name from ${NOPE:-nginx:1.25}: "nginx:1.25" (NOPE is not set)'),
        (3, 12, "python:${TAG}-slim", "python:3.12-slim", None,
         'tag from ARG TAG default "3.12"; name from ${PY:-python:${TAG}-slim}: "python:3.12-slim" (PY is not set)'),
        (4, 17, "busybox:1.36", None, None, 'name from ${H-busybox:1.36}: "busybox:1.36" (H is not set)'),
        (5, 6, '${Q:-"redis:7"}', "redis:7", None, 'name from ${Q:-"redis:7"}: "redis:7" (Q is not set)'),
        (6, 6, "${D:-debian}:12", "debian:12", None, 'name from ${D:-debian}: "debian" (D is not set)'),
    ]


def test_substituted_arg_default_records_the_args_it_reads(tmp_path):
    found = found_in(fixture("arg-substitution.Dockerfile"), tmp_path)
    assert found[0].edit == {
        "instruction": "ARG", "arg": "IMAGE", "arg_used_elsewhere": False, "quote": "", "args": ["REGISTRY"],
    }


def test_heredoc_terminator_in_a_crlf_file(tmp_path):
    text = "FROM alpine:3.19\r\nRUN <<EOF\r\nFROM inside:1\r\nEOF\r\nFROM nginx:1.27\r\n"
    assert rows(text, found_in(text, tmp_path)) == [
        (1, 6, "alpine:3.19", None, None, None),
        (5, 6, "nginx:1.27", None, None, None),
    ]


def test_positions_with_crlf_bom_tabs_and_trailing_comment(tmp_path):
    assert scan("positions-crlf-bom.Dockerfile", tmp_path) == [
        (1, 10, "nginx:1.27", None, None, "default of ARG IMG, used by FROM"),
        (2, 6, "alpine:3.19", None, None, None),
        (4, 13, "busybox:1.36", None, None, None),
        (7, 3, "python:3.12", None, None, None),
    ]


def test_bom_is_not_a_column(tmp_path):
    text = fixture("bom-from.Dockerfile")
    found = found_in(text, tmp_path)
    assert rows(text, found) == [(1, 9, "alpine:3.19", None, None, None)]
    assert found[0].offset == 9  # the BOM is character 0


def test_reference_cut_by_a_continuation_replaces_the_whole_region(tmp_path):
    text = "FROM alpi\\\nne:3.19\n"
    assert found_in(text, tmp_path) == [Found(5, "alpine:3.19", span=(5, 18), edit={"instruction": "FROM"})]


def test_from_continued_to_the_end_of_the_file(tmp_path):
    text = "FROM alpine:3.19 \\"
    assert rows(text, found_in(text, tmp_path)) == [(1, 6, "alpine:3.19", None, None, None)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ufeff",
        "# only\n# comments\n",
        "FROM",
        "FROM\nRUN\n\n",
        "FROM --platform=linux/amd64\n",
        "COPY --from= /a /b\n",
        "\\\n",
        "FROM \\\n\n\n",
        "ONBUILD COPY --from=ignored:1 / /\n",
    ],
)
def test_odd_input_finds_nothing(text, tmp_path):
    assert found_in(text, tmp_path) == []


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("FROM alpine:3.19\n}}{{\n\x85\u2028\n", [(1, 6, "alpine:3.19", None, None, None)]),
        ("FROM ${\n", [(1, 6, "${", None, "unterminated variable '${'", None)]),
        ("RUN <<\nFROM b:1\n", [(2, 6, "b:1", None, None, None)]),
    ],
)
def test_odd_input_never_crashes(text, want, tmp_path):
    assert rows(text, found_in(text, tmp_path)) == want


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("FROM alpine\x00", "not a Dockerfile: binary content (NUL characters)"),
        ("\x89PNG\r\n\x1a\n", "not a Dockerfile: line 1 starts with '\\x89PNG', not an instruction"),
        ("hello world\nFROM alpine\n", "not a Dockerfile: line 1 starts with 'hello', not an instruction"),
        ("# escape=x\nFROM alpine\n", "not a Dockerfile: invalid escape directive 'x' (only \\ or `)"),
    ],
)
def test_not_a_dockerfile(text, reason, tmp_path):
    with pytest.raises(ExtractError) as excinfo:
        found_in(text, tmp_path)
    assert str(excinfo.value) == reason


def dockerfile_rule() -> Rule:
    return next(rule for rule in load_rules() if rule.kind == "dockerfile")


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ("Dockerfile", True),
        ("src/app/Dockerfile.debug", True),
        ("Dockerfile_arm", True),
        ("windows/Dockerfile-WINDOWS_LTSC2022", True),
        ("src/android.Dockerfile", True),
        ("build/dockerfile", True),
        ("Containerfile", True),
        ("images/base.Containerfile", True),
        ("Dockerfile.dockerignore", False),
        (".github/workflows/dockerfile-lint.yml", False),
        ("hack/update-dockerfile.sh", False),
        ("docs/Dockerfile.md", False),
    ],
)
def test_rule_selects_dockerfiles(path, selected):
    assert dockerfile_rule().selects(path) is selected


def test_rule_guard_admits_every_fixture_with_references(tmp_path):
    rule = dockerfile_rule()
    for path in sorted(FIXTURES.glob("*.Dockerfile")):
        text = fixture(path.name)
        assert rule.text_may_hold_references(text) or not found_in(text, tmp_path), path.name
    assert not rule.text_may_hold_references("LABEL a=b\nCMD [\"x\"]\n")


# Where rehome and Renovate deliberately differ on the corpus (see the module's docs).
RENOVATE_ONLY = {
    # Two FROM lines use the same ARG: Renovate counts it twice, rehome reports the ARG line once.
    ("GoogleCloudPlatform+kubernetes-engine-samples", "ai-ml/t5-model-serving/model/Dockerfile", "pytorch/torchserve:0.12.0-cpu"),
    # `ARG WINDOWS_VERSION=` is empty: Renovate lists an empty tag, rehome an unresolved reference.
    ("GoogleCloudPlatform+kubernetes-engine-samples", "windows/windows-multi-arch/Dockerfile",
     "ARG WINDOWS_VERSION=\nFROM mcr.microsoft.com/windows/servercore:${WINDOWS_VERSION}\n"),
}
REHOME_ONLY = {
    ("GoogleCloudPlatform+kubernetes-engine-samples", "windows/windows-multi-arch/Dockerfile",
     "mcr.microsoft.com/windows/servercore:${WINDOWS_VERSION}"),
}


def renovate_text(replace: str) -> str:
    """Renovate's `replace` for an ARG-held image is the whole ARG line: keep its value."""
    if replace.startswith("ARG ") and "\nFROM" not in replace:
        return replace.split("=", 1)[1].strip().strip('"')
    return replace


def test_corpus_agrees_with_renovate(shared_dir, tmp_path):
    corpus = shared_dir / "corpus"
    rule = dockerfile_rule()
    ours: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for repo in sorted(p for p in corpus.iterdir() if p.is_dir() and p.name != "peer"):
        for path in sorted(repo.rglob("*")):
            relative = path.relative_to(repo).as_posix()
            if path.is_file() and rule.selects(relative):
                text = path.read_bytes().decode("utf-8")
                for item in found_in(text, tmp_path):
                    ours[(repo.name, relative, item.raw)] += 1
    theirs: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for peer in sorted((corpus / "peer" / "renovate").glob("*.jsonl")):
        for line in peer.read_text().splitlines():
            entry = json.loads(line)
            if entry["manager"] == "dockerfile":
                theirs[(peer.stem, entry["file"], renovate_text(entry["replace"]))] += 1
    assert sum((ours & theirs).values()) == 305
    assert set(theirs - ours) == RENOVATE_ONLY
    assert set(ours - theirs) == REHOME_ONLY


def test_variables_nested_too_deeply_skip_the_file_and_the_scan_goes_on(tmp_path, capsys):
    depth = 600
    write_tree(tmp_path, {"Dockerfile": "FROM " + "${A:-" * depth + "node:20" + "}" * depth + "\nFROM alpine:3.19\n",
                          "app/Dockerfile": "FROM redis:7\n"})
    code, out, err = run_cli(capsys, "scan", str(tmp_path))
    assert (code, err) == (0, "")
    assert out == (
        "IMAGE                      STATUS       REFS  FILES           KINDS       REASON\n"
        "-------------------------  -----------  ----  --------------  ----------  ------\n"
        "docker.io/library/redis:7  third-party  1     app/Dockerfile  dockerfile\n"
        "1 reference in 1 file: 1 third-party, 0 internal, 0 unresolved; 0 ignored\n"
        "skipped Dockerfile: not parseable: variables nested too deeply (${A:-${B:-...}})\n"
    )
