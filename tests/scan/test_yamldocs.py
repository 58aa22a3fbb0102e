"""Splitting YAML text into documents, and key paths over composed nodes."""
from __future__ import annotations

from bot.scan import keypaths
from bot.scan.yamldocs import compose_all, split_documents


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
