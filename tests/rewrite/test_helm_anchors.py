"""Helm split entries sharing an anchored `repository`: moving the anchored value once moves them all, when
their images map to one mirror repository; otherwise the file stays as it is, and says why."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ref, run_cli, scan_json, shared_anchor, write_tree

DEST = "mirror.example.com/m"
HUB = "docker.io/library/nginx"
MIRROR = f"{DEST}/{HUB}"
CHART = "apiVersion: v2\nname: c\nversion: 1.0.0\n"
FLOW = 'app: {{image: {{repository: &repo {name}, tag: "1.25"}}}}\nsidecar: {{image: {{repository: *repo, tag: "{tag}"}}}}\n'
SPLIT = ('app:\n  image:\n    registry: {registry}\n    repository: &repo {path}\n    tag: "1.25"\n'
         'sidecar:\n  image:\n    registry: {other}\n    repository: *repo\n    tag: "1.26"\n')


def _chart(root: Path, values: str) -> Path:
    return write_tree(root, {"Chart.yaml": CHART, "values.yaml": values})


def _scanned(capsys, root: Path, at: tuple[int, int], images: list[tuple[str, str]]) -> None:
    """values.yaml's references as the scan must report them: each (raw, image), all at the anchor."""
    assert scan_json(capsys, root)["references"] == [ref("values.yaml", *at, "helm-values", raw, image)
                                                     for raw, image in images]


def _mirrored(*tags: str) -> list[tuple[str, str]]:
    return [(f"{MIRROR}:{tag}", f"{MIRROR}:{tag}") for tag in tags]


@pytest.mark.parametrize(("values", "rewritten", "at", "before", "after"), [
    pytest.param(FLOW.format(name="nginx", tag="1.25"), FLOW.format(name=MIRROR, tag="1.25"), (1, 33),
                 [("nginx:1.25", f"{HUB}:1.25")] * 2, _mirrored("1.25", "1.25"), id="one image"),
    pytest.param(FLOW.format(name="nginx", tag="1.26"), FLOW.format(name=MIRROR, tag="1.26"), (1, 33),
                 [("nginx:1.25", f"{HUB}:1.25"), ("nginx:1.26", f"{HUB}:1.26")], _mirrored("1.25", "1.26"),
                 id="two tags"),
    pytest.param(SPLIT.format(registry="docker.io", other="index.docker.io", path="library/nginx"),
                 SPLIT.format(registry="mirror.example.com", other="mirror.example.com", path="m/docker.io/library/nginx"),
                 (4, 23), [(f"{HUB}:1.25", f"{HUB}:1.25"), (f"index.{HUB}:1.26", f"{HUB}:1.26")],
                 _mirrored("1.25", "1.26"), id="two spellings of one registry"),
])
def test_entries_whose_images_share_a_mirror_repository_move_together(tmp_path: Path, capsys, values: str,
                                                                     rewritten: str, at: tuple[int, int],
                                                                     before: list[tuple[str, str]],
                                                                     after: list[tuple[str, str]]) -> None:
    _chart(tmp_path, values)
    _scanned(capsys, tmp_path, at, before)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert out == ("FILE         REFERENCES\n-----------  ----------\nvalues.yaml  2\n"
                   "1 file rewritten, 2 references moved\n")
    assert (tmp_path / "values.yaml").read_text() == rewritten
    _scanned(capsys, tmp_path, at, after)


def test_entries_that_would_need_two_mirror_repositories_are_left_as_they_are(tmp_path: Path, capsys) -> None:
    values = ('app: {image: {registry: docker.io, repository: &repo library/nginx, tag: "1.25"}}\n'
              'sidecar: {image: {registry: ghcr.io, repository: *repo, tag: "1.26"}}\n')
    _chart(tmp_path, values)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (1, "")
    assert out == ("0 files rewritten, 0 references moved\n"
                   "left untouched: values.yaml: line 1: references sharing 'library/nginx' (an anchor) would need it "
                   "to read 'm/docker.io/library/nginx' and 'm/ghcr.io/library/nginx'; change it by hand\n")
    assert (tmp_path / "values.yaml").read_text() == values


def test_entries_with_and_without_a_registry_key_are_left_as_they_are(tmp_path: Path, capsys) -> None:
    """As the README says: no registry key is added to the one, nor emptied in the other."""
    values = ('app: {image: {repository: &repo nginx, tag: "1.25"}}\n'
              'sidecar: {image: {registry: docker.io, repository: *repo, tag: "1.26"}}\n')
    _chart(tmp_path, values)
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (1, (
        "0 files rewritten, 0 references moved\n"
        "left untouched: values.yaml: line 1: references sharing 'nginx' (an anchor) would need it to read "
        f"'m/{HUB}' and '{MIRROR}'; change it by hand\n"), "")
    assert (tmp_path / "values.yaml").read_text() == values


def test_an_anchor_also_used_where_no_image_is_expected_stays(tmp_path: Path, capsys) -> None:
    values = FLOW.format(name="nginx", tag="1.26") + "podLabels: {app: *repo}\n"
    _chart(tmp_path, values)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, err) == (0, "")
    assert out == ("0 files rewritten, 0 references moved\n"
                   f"unresolved: values.yaml:1:33: nginx:1.25: {shared_anchor('repo', 3)}\n"
                   f"unresolved: values.yaml:1:33: nginx:1.26: {shared_anchor('repo', 3)}\n")
    assert (tmp_path / "values.yaml").read_text() == values


MERGED = ('app:\n  image: &base\n    registry: {registry}\n    repository: {path}\n    tag: "1.25"\n'
          'sidecar:\n  image:\n    <<: *base\n    tag: "1.26"\n')
# `sidecar` merges `app`'s image, which merges `&b`: its registry and repository come two merges down.
TWO_DEEP = ('app:\n  image: &a\n    <<: &b\n      registry: {registry}\n      repository: {path}\n    tag: "1.25"\n'
            'sidecar:\n  image:\n    <<: *a\n    tag: "1.26"\n')


@pytest.mark.parametrize(("values", "at"), [pytest.param(MERGED, (4, 17), id="one merge key"),
                                            pytest.param(TWO_DEEP, (5, 19), id="two merge keys")])
def test_an_entry_whose_keys_come_through_merge_keys_moves_with_the_entries_it_merges(tmp_path: Path, capsys,
                                                                                       values: str,
                                                                                       at: tuple[int, int]) -> None:
    _chart(tmp_path, values.format(registry="docker.io", path="library/nginx"))
    _scanned(capsys, tmp_path, at, [(f"{HUB}:1.25", f"{HUB}:1.25"), (f"{HUB}:1.26", f"{HUB}:1.26")])
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, out, err) == (0, "FILE         REFERENCES\n-----------  ----------\nvalues.yaml  2\n"
                                   "1 file rewritten, 2 references moved\n", "")
    assert (tmp_path / "values.yaml").read_text() == values.format(registry="mirror.example.com",
                                                                    path="m/docker.io/library/nginx")
    _scanned(capsys, tmp_path, at, _mirrored("1.25", "1.26"))


# The reason an entry stays whose `registry` or `repository` comes from an anchored mapping also used where
# no image is expected: the keys it gives, the anchor and the line of that use.
MERGED_SHARED = ("the {} from the mapping anchored &{}, also used at line {}, where no image is expected: moving it "
                 "would change that mapping too; change it by hand")


@pytest.mark.parametrize(("values", "unresolved"), [
    pytest.param('base: &base {registry: docker.io, repository: library/nginx}\n'
                 'app: {image: {<<: *base, tag: "1.25"}}\n',
                 [f"1:47: {HUB}:1.25: {MERGED_SHARED.format('registry and repository come', 'base', 1)}"],
                 id="registry and repository"),
    pytest.param('base: &y {registry: docker.io}\napp:\n  image: {<<: *y, repository: library/nginx, tag: "1.25"}\n',
                 [f"3:31: {HUB}:1.25: {MERGED_SHARED.format('registry comes', 'y', 1)}"], id="registry"),
    # Both entries would move alike, but so would `base.registry`, which a template may read.
    pytest.param('base: &y {registry: docker.io}\napp: {image: {<<: *y, repository: library/nginx, tag: "1.25"}}\n'
                 'sidecar: {image: {<<: *y, repository: library/nginx, tag: "1.26"}}\n',
                 [f"2:35: {HUB}:1.25: {MERGED_SHARED.format('registry comes', 'y', 1)}",
                  f"3:39: {HUB}:1.26: {MERGED_SHARED.format('registry comes', 'y', 1)}"], id="registry of two entries"),
])
def test_keys_merged_from_a_value_no_image_key_holds_stay(tmp_path: Path, capsys, values: str,
                                                          unresolved: list[str]) -> None:
    _chart(tmp_path, values)
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, out, err) == (0, "0 files rewritten, 0 references moved\n"
                                + "".join(f"unresolved: values.yaml:{line}\n" for line in unresolved), "")
    assert (tmp_path / "values.yaml").read_text() == values


def test_a_registry_two_merges_down_shared_with_an_image_that_stays_leaves_the_file_as_it_is(tmp_path: Path,
                                                                                            capsys) -> None:
    values = TWO_DEEP.format(registry="docker.io", path="library/nginx").replace(
        "sidecar:", "tool:").replace('    tag: "1.26"', '    repository: acme/tool\n    tag: "2"')
    _chart(tmp_path, values)
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST, "--internal", "docker.io/acme/*") == (1, (
        "0 files rewritten, 0 references moved\n"
        "left untouched: values.yaml: line 10: docker.io/acme/tool:2 changed to mirror.example.com/acme/tool:2, "
        "which was not planned\n"), "")
    assert (tmp_path / "values.yaml").read_text() == values


def test_keys_merged_through_a_mapping_no_image_key_holds_stay(tmp_path: Path, capsys) -> None:
    # `defaults` merges app's image and a template may read it: neither app nor sidecar, merging `defaults`,
    # can move without changing it.
    values = ('app:\n  image: &b {registry: docker.io, repository: library/nginx, tag: "1.25"}\n'
              'defaults: &a {<<: *b, pullPolicy: Always}\n'
              'sidecar:\n  image: {<<: *a, tag: "1.26"}\n')
    _chart(tmp_path, values)
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, (
        "0 files rewritten, 0 references moved\n"
        f"unresolved: values.yaml:2:47: {HUB}:1.25: {shared_anchor('b', 3)}\n"
        f"unresolved: values.yaml:2:47: {HUB}:1.26: {MERGED_SHARED.format('registry and repository come', 'a', 3)}\n"),
        "")
    assert (tmp_path / "values.yaml").read_text() == values


ENTRY = 'app:\n  image: &b\n    registry: docker.io\n    repository: library/nginx\n    tag: "1.27"\n'
LISTED = ('workers:\n  - image: &b\n      registry: docker.io\n      repository: library/nginx\n'
          '      tag: "1.27"\n')


@pytest.mark.parametrize(("values", "at", "line"), [
    pytest.param(ENTRY + "defaults:\n  <<: *b\n", (4, 17), 7, id="merged"),
    pytest.param(ENTRY + "defaults:\n  pullPolicy: Always\n  <<: [*b]\n", (4, 17), 8, id="merged from a list"),
    pytest.param(ENTRY + "defaults: *b\n", (4, 17), 6, id="aliased"),
    pytest.param(LISTED + "  - image: *b\nextra:\n  - pullPolicy: Always\n  - *b\n", (4, 19), 9, id="a list item"),
    pytest.param('extra:\n  - &b {registry: docker.io, repository: library/nginx, tag: "1.27"}\napp:\n  image: *b\n',
                 (2, 42), 2, id="written as a list item"),
    pytest.param('defaults: &b {registry: docker.io, repository: library/nginx, tag: "1.27"}\napp:\n  image: *b\n',
                 (1, 48), 1, id="written where no image is expected"),
])
def test_an_entry_anchored_as_a_whole_and_used_where_no_image_is_expected_stays(tmp_path: Path, capsys, values: str,
                                                                                at: tuple[int, int],
                                                                                line: int) -> None:
    _chart(tmp_path, values)
    _scanned(capsys, tmp_path, at, [(f"{HUB}:1.27", f"{HUB}:1.27")])
    assert run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST) == (0, (
        "0 files rewritten, 0 references moved\n"
        f"unresolved: values.yaml:{at[0]}:{at[1]}: {HUB}:1.27: {shared_anchor('b', line)}\n"), "")
    assert (tmp_path / "values.yaml").read_text() == values


@pytest.mark.parametrize(("values", "at"), [
    pytest.param(ENTRY + 'sidecar:\n  image: *b\ntool:\n  image: {<<: *b, tag: "2"}\n', (4, 17), id="under image keys"),
    pytest.param(LISTED + '  - image: *b\n  - image: {<<: *b, tag: "2"}\n', (4, 19), id="in a list"),
])
def test_an_entry_anchored_as_a_whole_and_used_only_where_an_image_is_expected_moves(tmp_path: Path, capsys,
                                                                                     values: str,
                                                                                     at: tuple[int, int]) -> None:
    _chart(tmp_path, values)
    _scanned(capsys, tmp_path, at, [(f"{HUB}:1.27", f"{HUB}:1.27"), (f"{HUB}:2", f"{HUB}:2")])
    code, out, err = run_cli(capsys, "rewrite", str(tmp_path), "--to", DEST)
    assert (code, out, err) == (0, "FILE         REFERENCES\n-----------  ----------\nvalues.yaml  2\n"
                                   "1 file rewritten, 2 references moved\n", "")
    assert (tmp_path / "values.yaml").read_text() == values.replace(
        "registry: docker.io", "registry: mirror.example.com").replace("library/nginx", "m/docker.io/library/nginx")
    _scanned(capsys, tmp_path, at, _mirrored("1.27", "2"))
