from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml.nodes import Node

from bot.cli import main
from bot.rules import load_rules
from bot.scan import helm
from bot.scan.core import ScanOptions, scan
from bot.scan.yamldocs import merged_get
from tests.helpers import scan_json, write_tree
from tests.helpers import ref as _ref

FIXTURES = Path(__file__).parent / "fixtures" / "helm"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    # A copy outside the git checkout, so untracked fixture files are scanned too.
    root = tmp_path / "helm"
    shutil.copytree(FIXTURES, root)
    return root


SHA1 = "sha256:" + "1" * 64
SHA2 = "sha256:" + "2" * 64
APP_VERSION = 'tag from Chart.yaml appVersion "1.2.3"'

EXPECTED = [
    # values for a chart installed from elsewhere: read all the same; a missing tag is the chart's to pick
    _ref("helm-release-values/values.yaml", 2, 15, "helm-release-values", "not-a-chart/app:1", "docker.io/not-a-chart/app:1"),
    _ref("helm-release-values/values.yaml", 5, 10, "helm-release-values", "envoyproxy/envoy:v1.30.1", "docker.io/envoyproxy/envoy:v1.30.1"),
    _ref("helm-release-values/values.yaml", 8, 17, "helm-release-values", "acme/worker", None, "unresolved",
         "no tag, and no Chart.yaml here: the chart installed from elsewhere picks the tag"),
    _ref("helm-template/templates/_helpers.tpl", 3, 10, "helm-template", "alpine:3.19", "docker.io/library/alpine:3.19"),
    _ref("helm-template/templates/deployment.yaml", 10, 19, "helm-template", "busybox:1.36", "docker.io/library/busybox:1.36"),
    _ref("helm-template/templates/deployment.yaml", 14, 19, "helm-template",
         '{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag | default "latest" }}',
         None, "unresolved", "contains a template expression: {{ .Values.image.registry }}"),
    _ref("helm-template/templates/deployment.yaml", 16, 18, "helm-template", "nginx:1.25", "docker.io/library/nginx:1.25"),
    _ref("helm-template/templates/deployment.yaml", 19, 19, "helm-template", "quay.io/acme/tool:1.0", "quay.io/acme/tool:1.0"),
    _ref("helm-template/templates/deployment.yaml", 21, 18, "helm-template", "{{ .Values.sidecarImage | quote }}",
         None, "unresolved", "contains a template expression: {{ .Values.sidecarImage | quote }}"),
    _ref("helm-template/templates/deployment.yaml", 23, 18, "helm-template", "registry.example.com/app:{{ .Chart.AppVersion }}",
         None, "unresolved", "contains a template expression: {{ .Chart.AppVersion }}"),
    _ref("helm-template/templates/odd.yaml", 10, 12, "helm-template", "nginx:1.27", "docker.io/library/nginx:1.27"),
    _ref("helm-template/templates/tests/test-pod.yml", 8, 14, "helm-template", "busybox", "docker.io/library/busybox"),
    _ref("helm-values/ci/default-values.yaml", 2, 15, "helm-values", "mirror.example.com/nginx",
         "mirror.example.com/nginx:1.2.3", reason=APP_VERSION),
    _ref("helm-values/values-prod.yaml", 2, 15, "helm-values", "nginx:1.26", "docker.io/library/nginx:1.26"),
    _ref("helm-values/values.yaml", 6, 15, "helm-values", "docker.io/bitnami/nginx:1.25.3", "docker.io/bitnami/nginx:1.25.3"),
    _ref("helm-values/values.yaml", 11, 15, "helm-values", "busybox", "docker.io/library/busybox:1.2.3", reason=APP_VERSION),
    _ref("helm-values/values.yaml", 14, 16, "helm-values", "quay.io/prometheus/node-exporter:v1.7.0",
         "quay.io/prometheus/node-exporter:v1.7.0"),
    _ref("helm-values/values.yaml", 18, 17, "helm-values", f"prom/statsd-exporter:0.26@{SHA1}",
         f"docker.io/prom/statsd-exporter:0.26@{SHA1}"),
    _ref("helm-values/values.yaml", 23, 42, "helm-values", f"ghcr.io/acme/app@{SHA2}", f"ghcr.io/acme/app@{SHA2}"),
    _ref("helm-values/values.yaml", 26, 11, "helm-values", "{{ .Values.global.imageRegistry }}/app:1",
         None, "unresolved", "contains a template expression: {{ .Values.global.imageRegistry }}"),
    _ref("helm-values/values.yaml", 29, 10, "helm-values", "gcr.io/acme/app:2", "gcr.io/acme/app:2", "internal"),
    _ref("helm-values/values.yaml", 35, 12, "helm-values", "memcached:1.6", "docker.io/library/memcached:1.6"),
    # an anchored map used by two image keys: one reference, at the anchor
    _ref("helm-values/values.yaml", 41, 15, "helm-values", "envoyproxy/envoy:v1.29.0", "docker.io/envoyproxy/envoy:v1.29.0"),
    _ref("no-app-version/values.yaml", 2, 15, "helm-values", "nginx", None, "unresolved",
         "no tag, and no appVersion in the chart's Chart.yaml to default to"),
]


def test_scan_helm_chart(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tree), "--format", "json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output == {"version": 1, "references": EXPECTED, "ignored": 1, "skipped": []}


def _found(root: Path, path: str, line: int):
    result = scan(root, ScanOptions(rules=tuple(load_rules())))
    [ref] = [r for r in result.references if r.path == path and r.line == line]
    return ref.found


def _at(text: str, span: list[int]) -> str:
    return text[span[0]:span[1]]


def test_split_keys_record_what_the_rewrite_needs(tree: Path) -> None:
    text = (tree / "helm-values/values.yaml").read_text()
    edit = _found(tree, "helm-values/values.yaml", 6).edit["helm"]
    assert (edit["indent"], edit["flow"], edit["digest"]) == (2, False, None)
    assert [_at(text, edit[k]["span"]) for k in ("registry", "repository", "tag")] == [
        "docker.io", "bitnami/nginx", "1.25.3",
    ]
    assert [_at(text, edit[k]["scalar"]) for k in ("registry", "repository", "tag")] == [
        "docker.io", "bitnami/nginx", '"1.25.3"',
    ]
    assert [edit[k]["style"] for k in ("registry", "repository", "tag")] == ["", "", '"']


def test_empty_tag_defaults_to_app_version(tree: Path) -> None:
    found = _found(tree, "helm-values/values.yaml", 11)
    edit = found.edit["helm"]
    assert (found.raw, found.resolve_as) == ("busybox", "busybox:1.2.3")
    assert edit["tag"]["value"] == "" and edit["registry"] is None
    assert edit["app_version"] == {"path": "helm-values/Chart.yaml", "value": "1.2.3"}


def test_flow_mapping_split_keys(tree: Path) -> None:
    text = (tree / "helm-values/values.yaml").read_text()
    edit = _found(tree, "helm-values/values.yaml", 23).edit["helm"]
    assert edit["flow"] is True and edit["tag"] is None
    assert _at(text, edit["digest"]["scalar"]) == f'"{SHA2}"'


def test_template_reader_never_fails_on_broken_lines(tmp_path: Path) -> None:
    (tmp_path / "Chart.yaml").write_text("name: x\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates/broken.yaml").write_text('image: "\nimage: \'\nimage: "{{ "a\n- image:x\n  - image: a:1\n')
    result = scan(tmp_path, ScanOptions(rules=tuple(load_rules())))
    assert [(r.line, r.raw) for r in result.references] == [(5, "a:1")]
    assert result.skipped == []


def test_each_key_of_a_split_entry_is_looked_up_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {"Chart.yaml": "name: c\n", "values.yaml": (
        "base: &base {registry: docker.io}\n"
        "image:\n  <<: *base\n  repository: &repo library/nginx\n  tag: '1.25'\n"
        "podLabels: {app: *repo}\n")})
    looked_up: list[str] = []

    def counted(node: Node, key: str) -> tuple[Node | None, Node | None]:
        looked_up.append(key)
        return merged_get(node, key)

    monkeypatch.setattr(helm, "merged_get", counted)
    assert scan_json(capsys, tmp_path)["references"] == [
        _ref("values.yaml", 4, 21, "helm-values", "docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25")]
    assert looked_up == ["registry", "repository", "tag", "digest"]


def test_a_split_key_written_as_a_block_scalar_keeping_its_final_newline_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"Chart.yaml": "name: c\n", "values.yaml": (
        "image:\n  repository: |\n    nginx\n  tag: '1.25'\n"
        "sidecar:\n  image:\n    repository: |-\n      redis\n    tag: >-\n      7\n")})
    assert scan_json(capsys, tmp_path) == {"version": 1, "references": [
        _ref("values.yaml", 3, 5, "helm-values", "nginx\n:1.25", None, "unresolved",
             "not a valid image reference: a block scalar keeps its final newline: write the value on the key's "
             "line, or use `|-`/`>-`"),
        _ref("values.yaml", 8, 7, "helm-values", "redis:7", "docker.io/library/redis:7"),
    ], "ignored": 0, "skipped": []}


def test_a_tag_written_as_a_number_the_chart_prints_otherwise_says_what_it_pulls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Helm's values reach the templates as float64, printed in Go's shortest form: `1.10` pulls `1.1`,
    `20240101` pulls `2.0240101e+07`. A number printed as written (`7`, `1.5`) and a quoted one are read."""
    write_tree(tmp_path, {"Chart.yaml": "name: c\n", "values.yaml": (
        "image: {repository: nginx, tag: 1.10}\n"
        "batchImage: {repository: acme/batch, tag: 20240101}\n"
        "redisImage: {repository: redis, tag: 7}\n"
        "proxyImage: {repository: envoyproxy/envoy, tag: \"1.10\"}\n"
        "toolsImage: {repository: acme/tools, tag: 1.5}\n")})
    assert scan_json(capsys, tmp_path) == {"version": 1, "references": [
        _ref("values.yaml", 1, 21, "helm-values", "nginx:1.10", None, "unresolved",
             'the tag 1.10 is a YAML number, which Helm prints as 1.1: the chart pulls that tag; quote it '
             '(tag: "1.10") to keep it as written'),
        _ref("values.yaml", 2, 26, "helm-values", "acme/batch:20240101", None, "unresolved",
             'the tag 20240101 is a YAML number, which Helm prints as 2.0240101e+07: the chart pulls that tag; '
             'quote it (tag: "20240101") to keep it as written'),
        _ref("values.yaml", 3, 26, "helm-values", "redis:7", "docker.io/library/redis:7"),
        _ref("values.yaml", 4, 26, "helm-values", "envoyproxy/envoy:1.10", "docker.io/envoyproxy/envoy:1.10"),
        _ref("values.yaml", 5, 26, "helm-values", "acme/tools:1.5", "docker.io/acme/tools:1.5"),
    ], "ignored": 0, "skipped": []}


@pytest.mark.parametrize(("written", "printed"), [
    ("1.10", "1.1"), ("7", "7"), ("3.0", "3"), ("123456", "123456"), ("1234567", "1.234567e+06"),
    ("010", "8"), ("0x1A", "26"), ("1_000", "1000"), ("1e3", "1000"), ("0.0001", "0.0001"), ("0.00001", "1e-05"),
    ("-2.50", "-2.5"), ("1e400", "+Inf"), ("-1e400", "-Inf"), ("v1", None),
])
def test_helm_prints_a_yaml_number_as_go_prints_a_float64(written: str, printed: str | None) -> None:
    assert helm.helm_number_text(written) == printed
