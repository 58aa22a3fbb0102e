"""A sweep's reports: an interrupted sweep says so in each of them, and shards merge with it."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from bot.commands.sweep import render
from bot.errors import UsageError
from bot.output import WriteError
from bot.sweep import report as sweep_report
from bot.sweep.report import ImageUse, RepoEntry
from tests.helpers import run_cli

DESTINATION = "mirror.example/acme"
SHOP = RepoEntry("acme/shop", "done", "https://github.com/acme/shop/pull/7", "a" * 40, None, 3, 1, 0)
WEB = RepoEntry("acme/web", "failed", None, "b" * 40, "git push failed: rejected", 2, 0, 1)

# The totals of a report of the two, but for the images.
SHOP_AND_WEB = {"repositories": 2, "done": 1, "partial": 0, "nothing-to-do": 0, "declined": 0, "scanned": 0,
                "failed": 1, "third_party": 5, "internal": 1, "unresolved": 1}


def merged_json(capsys, tmp_path) -> dict:
    """`report merge --format json` of shard-0 and shard-1 into merged."""
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "merged"), str(tmp_path / "shard-0"),
                             str(tmp_path / "shard-1"), "--format", "json")
    assert code == 0, err
    return json.loads(out)


def images_table(markdown: str) -> str:
    """The table (or sentence) under report.md's "## Images"."""
    return markdown.split("\n## Images\n\n", 1)[1].split("\n\n", 1)[0]


def test_shards_merge_into_an_interrupted_report_when_one_was_interrupted(capsys, tmp_path) -> None:
    # Shard 0 went through, and was written before reports said whether they were interrupted.
    (tmp_path / "shard-0").mkdir()
    (tmp_path / "shard-0" / "report.json").write_text(json.dumps({
        "version": 1, "mode": "sweep", "destination": DESTINATION,
        "totals": sweep_report.make_report("sweep", DESTINATION, [SHOP]).totals(), "repositories": [SHOP.to_json()],
        "images": []}))
    interrupted = sweep_report.make_report("sweep", DESTINATION, [WEB], interrupted=True, not_reached=3)
    sweep_report.write(interrupted, tmp_path / "shard-1")
    out = merged_json(capsys, tmp_path)
    merged = {
        "version": 1, "mode": "sweep", "destination": DESTINATION, "interrupted": True, "not_reached": 3,
        "totals": {**SHOP_AND_WEB, "images": 0},
        "repositories": [SHOP.to_json(), WEB.to_json()], "images": []}
    assert out == merged
    assert json.loads((tmp_path / "merged" / "report.json").read_text()) == merged
    assert (tmp_path / "merged" / "report.md").read_text() == f"""# rehome sweep

Destination: `{DESTINATION}`

Interrupted: the sweep was stopped before it finished; not reached, and not in this report: 3 repositories.

| repositories | done | failed | images | third-party references | internal | unresolved |
|---:|---:|---:|---:|---:|---:|---:|
| 2 | 1 | 1 | 0 | 5 | 1 | 1 |

## Images

No third-party images.

## Repositories

| repository | status | pull request | third-party | error |
|---|---|---|---:|---|
| `acme/shop` | done | <https://github.com/acme/shop/pull/7> | 3 |  |
| `acme/web` | failed |  | 2 | git push failed\\: rejected |
"""
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "merged-table"), str(tmp_path / "shard-0"),
                             str(tmp_path / "shard-1"))
    assert (code, out) == (0, f"2 reports merged into {tmp_path / 'merged-table'}: 2 repositories, 0 images\n"
                              "Interrupted: the sweep was stopped before it finished; not reached, and not in "
                              "this report: 3 repositories.\n")
    # Shards that all went through merge into a report that did too.
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "whole"), str(tmp_path / "shard-0"),
                             "--format", "json")
    assert code == 0, err
    assert (json.loads(out)["interrupted"], json.loads(out)["not_reached"]) == (False, 0)
    assert "Interrupted" not in (tmp_path / "whole" / "report.md").read_text()


def test_a_shard_interrupted_while_listing_makes_the_merged_count_not_reached_unknown(capsys, tmp_path) -> None:
    listing = sweep_report.make_report("sweep", DESTINATION, [], interrupted=True, not_reached=None)
    sweep_report.write(listing, tmp_path / "shard-0")
    sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [WEB], interrupted=True, not_reached=3),
                       tmp_path / "shard-1")
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "merged"), str(tmp_path / "shard-0"),
                             str(tmp_path / "shard-1"))
    assert (code, out, err) == (0, f"2 reports merged into {tmp_path / 'merged'}: 1 repository, 0 images\n"
                                   "Interrupted: the sweep was stopped before it finished; not reached, and not in "
                                   "this report: an unknown number of repositories (it was stopped before they were "
                                   "all listed).\n", "")
    merged = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert (merged["interrupted"], merged["not_reached"], merged["repositories"]) == (True, None, [WEB.to_json()])


def test_the_summary_table_says_the_sweep_was_interrupted() -> None:
    result = sweep_report.make_report("sweep", DESTINATION, [SHOP, WEB], interrupted=True, not_reached=4)
    assert render(result, left_out=1) == (
        "REPOSITORY  STATUS  PULL REQUEST                         THIRD-PARTY  ERROR\n"
        "----------  ------  -----------------------------------  -----------  -------------------------\n"
        "acme/shop   done    https://github.com/acme/shop/pull/7  3\n"
        "acme/web    failed                                       2            git push failed: rejected\n"
        "2 repositories (1 done, 1 failed), 1 left out; 0 third-party images\n"
        "Interrupted: the sweep was stopped before it finished; not reached, and not in this report: "
        "4 repositories.")


def test_the_summary_says_one_of_each_in_the_singular() -> None:
    result = sweep_report.make_report("sweep", DESTINATION, [WEB], interrupted=True, not_reached=1)
    assert render(result, left_out=0).splitlines()[-2:] == [
        "1 repository (1 failed), 0 left out; 0 third-party images",
        "Interrupted: the sweep was stopped before it finished; not reached, and not in this report: 1 repository."]


@pytest.mark.parametrize(("fields", "values"), [({"interrupted": "false"}, "'false' and 0"),
                                               ({"not_reached": -2}, "False and -2")])
def test_a_report_whose_interrupted_or_not_reached_field_is_of_the_wrong_kind_is_refused(capsys, tmp_path, fields, values) -> None:
    report = sweep_report.make_report("sweep", DESTINATION, [SHOP]).to_json() | fields
    (tmp_path / "shard-0").mkdir()
    (tmp_path / "shard-0" / "report.json").write_text(json.dumps(report))
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "merged"), str(tmp_path / "shard-0"))
    assert (code, out) == (2, "")
    assert err == (f"rehome: error: {tmp_path / 'shard-0' / 'report.json'}: not a rehome sweep report: "
                   f"\"interrupted\" must be true or false and \"not_reached\" a count or null, not {values}\n")
    assert not (tmp_path / "merged").exists()


def test_a_shard_report_that_is_not_a_file_is_refused(capsys, tmp_path) -> None:
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "merged"), os.devnull)
    assert (code, out, err) == (2, "", f"rehome: error: {os.devnull}: cannot read the report: a device or socket, "
                                       "not a file\n")
    assert not (tmp_path / "merged").exists()


SHOP_ENTRY = 'entry 1 of "repositories" (acme/shop)'
NGINX_USER = 'entry 1 of "images" (docker.io/library/nginx:1.27), entry 1 of "repositories"'
NGINX_TARGET = f"{DESTINATION}/docker.io/library/nginx:1.27"
NGINX_FLAT = f"{DESTINATION}/flat/library/nginx:1.27"  # where a repository's own mapping may move it


@pytest.mark.parametrize(("change", "problem"), [
    (lambda r: r["repositories"][0].update(third_party="3"), f'{SHOP_ENTRY}: "third_party" is \'3\', not a count or null'),
    (lambda r: r["repositories"][0].update(third_party=True), f'{SHOP_ENTRY}: "third_party" is True, not a count or null'),
    (lambda r: r["repositories"][0].update(third_party=-4), f'{SHOP_ENTRY}: "third_party" is -4, not a count or null'),
    (lambda r: r["repositories"][0].update(extra=1), f'{SHOP_ENTRY}: unknown field "extra"'),
    (lambda r: r["repositories"][0].update(repo=5), 'entry 1 of "repositories": "repo" is 5, not text'),
    (lambda r: r["repositories"][0].update(status="merged"), f"{SHOP_ENTRY}: unknown status 'merged'"),
    (lambda r: r["repositories"][0].pop("head"), f'{SHOP_ENTRY}: "head" is missing'),
    (lambda r: r["repositories"].append(dict(r["repositories"][0])),
     'entry 2 of "repositories" (acme/shop): acme/shop is listed twice'),
    (lambda r: r.update(repositories={}), '"repositories" is {}, not a list'),
    (lambda r: r["repositories"].append("acme/web"), "entry 2 of \"repositories\" is not an object: 'acme/web'"),
    (lambda r: r["images"][0].update(pulls="many"),
     'entry 1 of "images" (docker.io/library/nginx:1.27): "pulls" is \'many\', not a count or null'),
    (lambda r: r["images"][0].update(pulls=-1),
     'entry 1 of "images" (docker.io/library/nginx:1.27): "pulls" is -1, not a count or null'),
    (lambda r: r["images"][0]["repositories"][0].update(files="Dockerfile"),
     f'{NGINX_USER} (acme/shop): "files" is \'Dockerfile\', not a list'),
    (lambda r: r["images"][0]["repositories"][0].update(files=[7]), f'{NGINX_USER} (acme/shop): "files" are not all paths'),
    (lambda r: r["images"][0]["repositories"][0].update(repo="acme/gone"),
     f'{NGINX_USER} (acme/gone): acme/gone is not in the report\'s "repositories"'),
    (lambda r: r["images"][0]["repositories"][0].update(extra=1), f'{NGINX_USER} (acme/shop): unknown field "extra"'),
    (lambda r: r.update(destination=None), '"destination" is None, not text'),
    (lambda r: r["images"].append(dict(r["images"][0])),
     f'entry 2 of "images" (docker.io/library/nginx:1.27): docker.io/library/nginx:1.27 to {NGINX_TARGET} is listed '
     'twice'),
    (lambda r: r["images"].append(dict(r["images"][0], target=NGINX_FLAT)),
     'entry 2 of "images" (docker.io/library/nginx:1.27), entry 1 of "repositories" (acme/shop): '
     "acme/shop's docker.io/library/nginx:1.27 is listed twice"),
    (lambda r: r["images"][0]["repositories"].append(r["images"][0]["repositories"][0]),
     'entry 1 of "images" (docker.io/library/nginx:1.27), entry 2 of "repositories" (acme/shop): '
     "acme/shop's docker.io/library/nginx:1.27 is listed twice"),
    (lambda r: r.update(version=True), '"version" is True, not 1'),
    (lambda r: r.pop("version"), '"version" is missing'),
    (lambda r: r.update(mode="census"), "\"mode\" is 'census', not one of inventory, sweep, dry-run"),
    (lambda r: r.update(mode="inventory"),
     f"{SHOP_ENTRY}: status 'done' in a report of mode 'inventory' (whose statuses are scanned, failed)"),
    (lambda r: r["totals"].update(repositories=3),
     '"totals": "repositories" is 3, but the report\'s repositories and images make 1'),
    (lambda r: r["totals"].update(done=True), '"totals": "done" is True, not a count'),
    (lambda r: r["totals"].update(repositories=1.0), '"totals": "repositories" is 1.0, not a count'),
    (lambda r: r.update(interrupted=False, not_reached=None),
     '"not_reached" is null, but "interrupted" is false: null means the sweep was interrupted while listing the '
     'repositories'),
    (lambda r: r.update(not_reached=2),
     '"not_reached" is 2, but "interrupted" is false: a sweep that was not interrupted started every repository'),
    (lambda r: r["totals"].pop("images"), '"totals": "images" is missing'),
    (lambda r: r["totals"].update(merged=0), '"totals": unknown field "merged"'),
    (lambda r: r.update(totals=[]), '"totals" is [], not an object'),
])
def test_a_report_with_fields_of_the_wrong_kind_is_refused(capsys, tmp_path, change, problem: str) -> None:
    nginx = ImageUse("docker.io/library/nginx:1.27", NGINX_TARGET, 5, "copied", ("Dockerfile",))
    report = sweep_report.make_report("sweep", DESTINATION, [dataclasses.replace(SHOP, images=(nginx,))]).to_json()
    change(report)
    (tmp_path / "shard-0").mkdir()
    (tmp_path / "shard-0" / "report.json").write_text(json.dumps(report))
    code, out, err = run_cli(capsys, "report", "merge", str(tmp_path / "merged"), str(tmp_path / "shard-0"))
    assert (code, out) == (2, "")
    assert err == f"rehome: error: {tmp_path / 'shard-0' / 'report.json'}: not a rehome sweep report: {problem}\n"
    assert not (tmp_path / "merged").exists()


def test_the_reports_are_written_all_four_or_none(tmp_path) -> None:
    folder = tmp_path / "reports"
    sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [SHOP]), folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    (folder / "report.csv").unlink()
    (folder / "report.csv").mkdir()
    nginx = ImageUse("docker.io/library/nginx:1.27", NGINX_TARGET, 5, "copied", ("Dockerfile",))
    with pytest.raises(UsageError) as failed:
        sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [dataclasses.replace(SHOP, images=(nginx,)),
                                                                           WEB]), folder)
    assert str(failed.value) == f"{folder / 'report.csv'}: is a folder, not a file; nothing was written"
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == {
        "report.json": before["report.json"], "report.md": before["report.md"], "images.csv": before["images.csv"]}


def test_a_report_that_cannot_be_read_back_is_not_replaced(tmp_path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "report.md").write_bytes(b"\xff old\n")
    with pytest.raises(WriteError) as failed:
        sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [SHOP]), folder)
    assert str(failed.value) == (
        f"{folder / 'report.md'}: cannot read it, to put it back should another report fail: 'utf-8' codec can't "
        "decode byte 0xff in position 0: invalid start byte; nothing was changed")
    assert sorted(path.name for path in folder.iterdir()) == ["report.md"]


def test_shards_that_move_an_image_to_different_targets_merge_into_an_entry_per_target(capsys, tmp_path) -> None:
    # acme/web's own rehome.yaml maps images elsewhere than acme/shop's does.
    nginx = ImageUse("docker.io/library/nginx:1.27", NGINX_TARGET, 5, "copied", ("Dockerfile",))
    flat = dataclasses.replace(nginx, target=NGINX_FLAT, status="present", files=("deploy/web.yaml",))
    shop, web = dataclasses.replace(SHOP, images=(nginx,)), dataclasses.replace(WEB, images=(flat,))
    for shard, entry in (("shard-0", shop), ("shard-1", web)):
        sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [entry]), tmp_path / shard)
    out = merged_json(capsys, tmp_path)
    merged = {
        "version": 1, "mode": "sweep", "destination": DESTINATION, "interrupted": False, "not_reached": 0,
        "totals": {**SHOP_AND_WEB, "images": 1},
        "repositories": [SHOP.to_json(), WEB.to_json()],
        "images": [{"image": "docker.io/library/nginx:1.27", "target": NGINX_TARGET, "pulls": 5, "status": "copied",
                    "repositories": [{"repo": "acme/shop", "files": ["Dockerfile"]}]},
                   {"image": "docker.io/library/nginx:1.27", "target": NGINX_FLAT, "pulls": 5, "status": "present",
                    "repositories": [{"repo": "acme/web", "files": ["deploy/web.yaml"]}]}]}
    assert out == merged
    single = sweep_report.make_report("sweep", DESTINATION, [shop, web])
    assert single.to_json() == merged
    sweep_report.write(single, tmp_path / "single")
    for name in ("report.json", "report.md", "report.csv", "images.csv"):
        assert (tmp_path / "merged" / name).read_text() == (tmp_path / "single" / name).read_text()
    assert (tmp_path / "merged" / "images.csv").read_text() == (
        "image,pulls,repositories,status,target\n"
        f"docker.io/library/nginx:1.27,5,1,copied,{NGINX_TARGET}\n"
        f"docker.io/library/nginx:1.27,5,1,present,{NGINX_FLAT}\n")
    assert images_table((tmp_path / "merged" / "report.md").read_text()) == (
        "| image | pulls | repositories | status | target |\n"
        "|---|---:|---:|---|---|\n"
        f"| `docker.io/library/nginx:1.27` | 5 | 1 | copied | `{NGINX_TARGET}` |\n"
        f"| `docker.io/library/nginx:1.27` | 5 | 1 | present | `{NGINX_FLAT}` |")
    assert sweep_report.load(tmp_path / "merged" / "report.json") == single


def test_images_csv_has_a_row_per_image_and_target_with_the_columns_of_the_markdown_images_table(tmp_path) -> None:
    nginx = ImageUse("docker.io/library/nginx:1.27", NGINX_TARGET, 5, "copied", ("Dockerfile",))
    redis = ImageUse("docker.io/library/redis:7", f"{DESTINATION}/docker.io/library/redis:7", 1234, "failed",
                     ("compose.yaml",))
    quay = ImageUse("quay.io/acme/tool:1", f"{DESTINATION}/quay.io/acme/tool:1", None, None, ("ci.yaml",))
    report = sweep_report.make_report("sweep", DESTINATION, [
        dataclasses.replace(SHOP, images=(nginx, redis, quay)), dataclasses.replace(WEB, images=(nginx,))])
    sweep_report.write(report, tmp_path)
    assert (tmp_path / "images.csv").read_text() == (
        "image,pulls,repositories,status,target\n"
        f"docker.io/library/redis:7,1234,1,failed,{DESTINATION}/docker.io/library/redis:7\n"
        f"docker.io/library/nginx:1.27,5,2,copied,{NGINX_TARGET}\n"
        f"quay.io/acme/tool:1,,1,,{DESTINATION}/quay.io/acme/tool:1\n")
    assert images_table((tmp_path / "report.md").read_text()) == (
        "| image | pulls | repositories | status | target |\n"
        "|---|---:|---:|---|---|\n"
        f"| `docker.io/library/redis:7` | 1,234 | 1 | failed | `{DESTINATION}/docker.io/library/redis:7` |\n"
        f"| `docker.io/library/nginx:1.27` | 5 | 2 | copied | `{NGINX_TARGET}` |\n"
        f"| `quay.io/acme/tool:1` | — | 1 |  | `{DESTINATION}/quay.io/acme/tool:1` |")


def test_images_csv_of_a_report_without_images_is_its_header_alone(tmp_path) -> None:
    sweep_report.write(sweep_report.make_report("inventory", DESTINATION, []), tmp_path)
    assert (tmp_path / "images.csv").read_text() == "image,pulls,repositories,status,target\n"


def test_an_image_one_shard_copied_and_another_then_found_present_merges_as_copied(capsys, tmp_path) -> None:
    # Shard 0 (acme/web) copied nginx; shard 1 (acme/shop, first by name) ran later and found it there.
    copied = ImageUse("docker.io/library/nginx:1.27", NGINX_TARGET, 5, "copied", ("deploy/web.yaml",))
    present = dataclasses.replace(copied, status="present", files=("Dockerfile",))
    shop, web = dataclasses.replace(SHOP, images=(present,)), dataclasses.replace(WEB, images=(copied,))
    sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [web]), tmp_path / "shard-0")
    sweep_report.write(sweep_report.make_report("sweep", DESTINATION, [shop]), tmp_path / "shard-1")
    out = merged_json(capsys, tmp_path)
    # What a single sweep says: it copied the image once, for both repositories.
    assert out["images"] == [{"image": "docker.io/library/nginx:1.27", "target": NGINX_TARGET, "pulls": 5,
                              "status": "copied", "repositories": [{"repo": "acme/shop", "files": ["Dockerfile"]},
                                                                   {"repo": "acme/web", "files": ["deploy/web.yaml"]}]}]
    assert (tmp_path / "merged" / "images.csv").read_text() == (
        "image,pulls,repositories,status,target\n"
        f"docker.io/library/nginx:1.27,5,2,copied,{NGINX_TARGET}\n")
