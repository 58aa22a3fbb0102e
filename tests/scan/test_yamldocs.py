"""Splitting YAML text into documents, and key paths over composed nodes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bot.scan import keypaths
from bot.scan.yamldocs import anchor_name, compose_all, merged_get, split_documents

ROOT = Path(__file__).resolve().parents[2]


def test_documents_split_at_marker_lines_only():
    text = ("a: 1\n---\nb: 2\n--- # c\nc: 3\n----\nd: '\n--- inside a scalar? no: a marker'\n...\n"
            "e: 5\n---\t\nf: 6\n---x\ng: 7\n---")
    chunks = split_documents(text)
    assert "".join(chunk for _, chunk in chunks) == text
    assert all(text[offset:offset + len(chunk)] == chunk for offset, chunk in chunks)
    assert [chunk for _, chunk in chunks] == [
        "a: 1\n", "---\nb: 2\n", "--- # c\nc: 3\n----\nd: '\n", "--- inside a scalar? no: a marker'\n",
        "...\ne: 5\n", "---\t\nf: 6\n---x\ng: 7\n", "---"]


def test_a_directive_keeps_the_text_whole():
    for text in ("%YAML 1.2\n---\na: 1\n---\nb: 2\n", "a: 1\n...\n%TAG ! tag:x,2000:\n---\nb: 2\n"):
        assert split_documents(text) == [(0, text)]


def test_key_paths_report_in_document_order_once_per_node_with_their_parent():
    (root,) = compose_all(
        "base: &b {image: base:1}\n"
        "jobs:\n"
        "  one: {<<: *b, services: [{image: svc:1}, {name: x}]}\n"
        "  two: {image: two:1}\n"
        "deep: {x: [{y: {image: deep:1}}]}\n")
    hits = list(keypaths.select(root, ["jobs.*.image", "jobs.*.services[].image", "**.image"]))
    assert [(h.pattern, h.node.value, h.parent is not None) for h in hits] == [
        (2, "base:1", True), (1, "svc:1", True), (0, "two:1", True), (2, "deep:1", True)]


def test_a_dot_inside_a_key_name_is_written_escaped():
    (root,) = compose_all(".hidden: {image: a:1}\nvisible: {image: b:1}\napp.kubernetes.io: {image: c:1}\n")
    hits = list(keypaths.select(root, [r"\.*.image", r"app\.kubernetes\.io.image"]))
    assert [(h.pattern, h.node.value) for h in hits] == [(0, "a:1"), (1, "c:1")]


def test_every_place_that_holds_an_anchored_value_in_document_order(tmp_path):
    text = ("x-held: &held held:1\n"
            "labels: {a: &label label:1}\n"
            "jobs:\n"
            "  one: {image: *held, tool: &tool tool:1, keyed: &key key:1}\n"
            "  two: {image: *label, helper: *tool, *key : v}\n"
            "  three: {<<: {image: &merged merged:1}, extra: [*merged]}\n")
    (root,) = compose_all(text)
    paths = ["jobs.*.image", "jobs.*.tool", "jobs.*.helper", "jobs.*.keyed", "x-*"]
    hits = list(keypaths.select(root, paths[:4]))
    assert [anchor_name(h.node, text, 0) for h in hits] == ["held", "tool", "key", "label", "merged"]
    watched = {id(h.node): h.node.value for h in hits}
    places = keypaths.uses(root, paths, set(watched))
    # (the paths that reach it there, the line of the mapping holding it): first where it is
    # written; `labels.a`, a key and a list item are reached by no path.
    assert {watched[node]: [(use.patterns, use.parent and use.parent.start_mark.line + 1) for use in node_uses]
            for node, node_uses in places.items()} == {
        "held:1": [((4,), 1), ((0,), 4)],
        "label:1": [((), 2), ((0,), 5)],
        "tool:1": [((1,), 4), ((2,), 5)],
        "key:1": [((3,), 4), ((), None)],
        "merged:1": [((0,), 6), ((), None)],
    }


def test_a_node_skipped_where_first_reached_is_reported_where_an_alias_of_it_is_reached():
    (root,) = compose_all("variables: {image: &img python:3.12, other: &o go:1}\njob: {image: *img}\n")
    hits = list(keypaths.select(root, ["variables.**", "*.image"], skip=frozenset({0})))
    assert [(h.pattern, h.node.value, h.parent.start_mark.line + 1) for h in hits] == [(1, "python:3.12", 2)]


def test_a_merged_key_is_found_at_any_depth_first_merged_first_and_through_each_mapping_once():
    (root,) = compose_all("c: &c {registry: c.io, tag: '1'}\n"
                          "b: &b {<<: *c, registry: b.io}\n"
                          "a: &a {<<: [*a, *c], repository: app}\n"  # merges itself
                          "entry: {<<: [*a, *b], tag: '2'}\n")
    entry = root.value[3][1]

    def where(key: str) -> tuple[str | None, list[str]]:
        value, through = merged_get(entry, key)
        return value and value.value, [str(mapping.start_mark.line + 1) for mapping in through]

    # `a` with what it merges (`c`, after itself) before `b`: `c`'s registry, two merges down.
    assert {key: where(key) for key in ("tag", "repository", "registry", "digest")} == {
        "tag": ("2", []), "repository": ("app", ["3"]), "registry": ("c.io", ["3", "1"]), "digest": (None, [])}


def test_an_anchor_name_used_twice_reads_without_a_warning_on_the_terminal(tmp_path):
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: &n a, labels: {x: &n b}}\n"
                                       "spec:\n  containers:\n    - {name: *n, image: redis:7}\n")
    # A process of its own: pytest sets its own warning filters for each test.
    done = subprocess.run([sys.executable, "-m", "bot", "scan", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert [r["image"] for r in json.loads(done.stdout)["references"]] == ["docker.io/library/redis:7"]
