from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.pulls.logdata import kube_event, log_entry, write_gzip, write_ndjson

MIRROR = "us-docker.pkg.dev/acme/mirror"
SOURCE = "pulls.ndjson (Cloud Logging export, one JSON entry per line)"


@pytest.fixture()
def export(tmp_path: Path) -> Path:
    return write_ndjson(tmp_path / "pulls.ndjson", [
        log_entry("2024-05-01T01:00:00Z", "nginx:1.14.2"),
        log_entry("2024-05-01T02:00:00Z", "index.docker.io/library/nginx:1.14.2", cluster="dev"),
        log_entry("2024-05-01T03:00:00Z", "quay.io/jetstack/cert-manager-controller:v1.14.4"),
        log_entry("2024-05-01T04:00:00Z", "gcr.io/acme/internal-tool:3"),
        log_entry("2024-05-02T05:00:00Z", "nginx:1.14.2", reason="Pulled"),
        "{broken",
        log_entry("2024-05-02T06:00:00Z", f"{MIRROR}/docker.io/library/nginx:1.14.2"),
        log_entry("2024-05-03T07:00:00Z", f"{MIRROR}/docker.io/library/nginx:1.14.2"),
        log_entry("2024-05-03T08:00:00Z", "nginx:1.14.2", reason="BackOff"),
    ])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "pulls", str(export), "--since", "2024-05-01T02:00:00Z", "--limit", "1") == (0, """\
IMAGE                                                         PULLS  REPOSITORY PULLS  PEAK 6H  AT LIMIT
------------------------------------------------------------  -----  ----------------  -------  --------
us-docker.pkg.dev/acme/mirror/docker.io/library/nginx:1.14.2  2      2                 1        yes
docker.io/library/nginx:1.14.2                                1      1                 1        yes
gcr.io/acme/internal-tool:3                                   1      1                 1        yes
quay.io/jetstack/cert-manager-controller:v1.14.4              1      1                 1        yes

source: pulls.ndjson (Cloud Logging export, one JSON entry per line)
window: 2024-05-01T02:00:00Z to 2024-05-03T08:00:00Z
4 image(s) reach the limit of 1 pulls per 6h in some stretch of the window
malformed entries: 1 (at 6)
""", "")


def test_json(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "pulls", str(export), "--format", "json", "--until", "2024-05-01T23:59:59Z",
                         "--since", "1d")
    cluster = {"peak_6h": 1, "at_risk": False, "pulls": 1}
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "version": 1,
        "source": "pulls.ndjson (Cloud Logging export, one JSON entry per line)",
        "window": {"since": "2024-04-30T23:59:59Z", "until": "2024-05-01T23:59:59Z"},
        "limit": {"pulls": 100, "per": "6h"},
        "malformed": 1,
        "malformed_lines": [6],
        "images": [
            {"image": "docker.io/library/nginx:1.14.2", "repository": "docker.io/library/nginx", "pulls": 2,
             "repository_pulls": 2, "peak_6h": 2, "at_risk": False, "clusters": [
                 {"cluster": "acme/us-central1/dev", **cluster}, {"cluster": "acme/us-central1/prod", **cluster}]},
            {"image": "gcr.io/acme/internal-tool:3", "repository": "gcr.io/acme/internal-tool", "pulls": 1,
             "repository_pulls": 1, "peak_6h": 1, "at_risk": False,
             "clusters": [{"cluster": "acme/us-central1/prod", **cluster}]},
            {"image": "quay.io/jetstack/cert-manager-controller:v1.14.4",
             "repository": "quay.io/jetstack/cert-manager-controller", "pulls": 1, "repository_pulls": 1,
             "peak_6h": 1, "at_risk": False, "clusters": [{"cluster": "acme/us-central1/prod", **cluster}]},
        ],
    }


def test_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "query.csv"
    source.write_text("imageName,numberOfPulls\nnginx:1.14.2,120\nredis,3\n")
    assert run(capsys, "pulls", str(source), "--format", "csv") == (0, """\
image,repository,pulls,repository_pulls,peak_6h,at_risk
docker.io/library/nginx:1.14.2,docker.io/library/nginx,120,120,,
docker.io/library/redis,docker.io/library/redis,3,3,,
""", "")
    code, _, err = run(capsys, "pulls", str(source), "--since", "1d")
    assert (code, err) == (0, "query.csv (CSV of the guide's query (imageName,numberOfPulls)) has no times: "
                              "--since and --until do not apply to it\n")
    # The output has no place for malformed rows: stderr says how many and where.
    source.write_text("imageName,numberOfPulls\nnginx:1.14.2,120\nredis,many\n\"busybox,3\nalpine,1\n")
    code, out, err = run(capsys, "pulls", str(source), "--format", "csv")
    assert (code, out.splitlines()[1:], err) == (0, [
        "docker.io/library/nginx:1.14.2,docker.io/library/nginx,120,120,,",
        "docker.io/library/alpine,docker.io/library/alpine,1,1,,",
    ], "query.csv (CSV of the guide's query (imageName,numberOfPulls)): malformed entries skipped: 2 (at 3, 4)\n")


def test_track_json_and_table(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "pulls", str(export), "--track", "--to", MIRROR, "--format", "json", "--since", "3d")
    assert (code, err) == (0, f"{SOURCE}: malformed entries skipped: 1 (at 6)\n")
    assert json.loads(out) == {"version": 1, "days": [
        {"day": "2024-04-30", "third_party": 0, "mirror": 0, "moved_share": None},
        {"day": "2024-05-01", "third_party": 3, "mirror": 0, "moved_share": 0.0},
        {"day": "2024-05-02", "third_party": 0, "mirror": 1, "moved_share": 1.0},
        {"day": "2024-05-03", "third_party": 0, "mirror": 1, "moved_share": 1.0},
    ]}
    assert run(capsys, "pulls", str(export), "--track", "--to", MIRROR, "--since", "2d") == (0, """\
DAY         THIRD-PARTY  MIRROR  MOVED
----------  -----------  ------  ------
2024-05-01  0            0
2024-05-02  0            1       100.0%
2024-05-03  0            1       100.0%
""", f"{SOURCE}: malformed entries skipped: 1 (at 6)\n")


def test_track_takes_the_destination_and_internal_patterns_from_the_config(
        export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "rehome.yaml"
    config.write_text(f"destination: {MIRROR}\ninternal: ['quay.io']\n")
    code, out, _ = run(capsys, "pulls", str(export), "--track", "--config", str(config), "--format", "csv",
                       "--since", "2024-05-01")
    assert (code, out) == (0, "day,third_party,mirror,moved_share\n"
                              "2024-05-01,3,0,0.0\n2024-05-02,0,1,1.0\n2024-05-03,0,1,1.0\n")


def test_plot_writes_a_png(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "moved.png"
    code, _, _ = run(capsys, "pulls", str(export), "--track", "--to", MIRROR, "--plot", str(png), "--format", "json")
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--track"], 2, "rehome: error: --track needs --to DEST (or `destination` in rehome.yaml)\n"),
    (["--plot", "x.png"], 2, "rehome: error: --plot draws the --track view: add --track\n"),
    (["--since", "soon"], 2,
     "rehome: error: --since: 'soon' is neither a duration (30m, 6h, 7d, 2w) nor an ISO 8601 time\n"),
])
def test_usage_errors(export: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                      tmp_path: Path, argv: list[str], code: int, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "pulls", str(export), *argv) == (code, "", message)


def test_unknown_file_and_csv_track(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    code, out, err = run(capsys, "pulls", str(notes))
    assert (code, out) == (1, "")
    assert err.startswith(f"rehome: error: {notes}: not a format rehome reads pull counts from\nhint: expected ")
    query = tmp_path / "query.csv"
    query.write_text("imageName,numberOfPulls\nnginx,1\n")
    assert run(capsys, "pulls", str(query), "--track", "--to", MIRROR) == (
        2, "", "rehome: error: query.csv (CSV of the guide's query (imageName,numberOfPulls)): "
               "--track needs pull times, and this source has none\n")


@pytest.mark.parametrize("flag", [["--limit", "0"], ["--per", "30s"], ["--format", "yaml"]])
def test_bad_flags(export: Path, capsys: pytest.CaptureFixture[str], flag: list[str]) -> None:
    assert main(["pulls", str(export), *flag]) == 2


def test_kubectl_events_gzipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        kube_event("2024-05-01T10:00:00Z", "nginx:1.14.2", count=3),
        kube_event("2024-05-01T10:05:00Z", "nginx:1.14.2", reason="Pulled", count=3),
        kube_event("2024-05-01T10:06:00Z", "nginx:1.14.2", reason="Failed"),
        {"kind": "Event", "message": "no reason"},
        kube_event("2024-05-01T10:07:00Z", "ghcr.io/acme/api:2.0"),
    ]}
    source = write_gzip(tmp_path / "events.json.gz", json.dumps(events, indent=4))
    code, out, err = run(capsys, "pulls", str(source), "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "version": 1, "source": "events.json.gz (Kubernetes events (kubectl get events -A -o json))",
        "window": {"since": "2024-04-24T10:07:00Z", "until": "2024-05-01T10:07:00Z"},
        "limit": {"pulls": 100, "per": "6h"}, "malformed": 1, "malformed_lines": [4],
        "images": [
            {"image": "docker.io/library/nginx:1.14.2", "repository": "docker.io/library/nginx", "pulls": 3,
             "repository_pulls": 3, "peak_6h": 3, "at_risk": False, "clusters": []},
            {"image": "ghcr.io/acme/api:2.0", "repository": "ghcr.io/acme/api", "pulls": 1,
             "repository_pulls": 1, "peak_6h": 1, "at_risk": False, "clusters": []},
        ],
    }


@pytest.mark.parametrize(("argv", "message"), [
    (["--since", "100000d"], "--since 100000d: the window would be 100000 days long; rehome counts at most 10950 days "
                             "(30 years)"),
    (["--since", "0001-01-01"], "--since 0001-01-01: the window would be 739008 days long; rehome counts at most "
                                "10950 days (30 years)"),
    (["--until", "0001-01-01"], "--since 7d: the window would start before the year 1"),
    (["--until", "9999-12-31T23:59:59-01:00"], "--until: '9999-12-31T23:59:59-01:00' is outside the years 1 to 9999"),
    (["--since", "0001-01-01T00:00:00+01:00"], "--since: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999"),
    (["--since", "9" * 40 + "d"],
     f"--since: '{'9' * 40}d' is neither a duration (30m, 6h, 7d, 2w) nor an ISO 8601 time"),
    (["--track", "--to", "us-docker.pkg.dev/acme/mirror:v1"],
     "--to: destination 'us-docker.pkg.dev/acme/mirror:v1' must be a registry path without tag or digest"),
    (["--track", "--to", "mirror"],
     "--to: destination 'mirror' must start with a registry host, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY"),
    (["--track", "--to", " "], "--to is empty: give the mirror prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY"),
])
def test_windows_out_of_range_and_bad_mirrors_are_usage_errors(export: Path, capsys: pytest.CaptureFixture[str],
                                                                 argv: list[str], message: str) -> None:
    assert run(capsys, "pulls", str(export), *argv) == (2, "", f"rehome: error: {message}\n")


def test_a_bad_mirror_is_refused_before_the_source_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "pulls", str(tmp_path / "absent.ndjson"), "--track", "--to", "Mirror/UPPER") == (
        2, "", "rehome: error: --to: destination 'Mirror/UPPER' is not a registry path: "
               "invalid reference 'Mirror/UPPER': repository name must be lowercase\n")


def test_a_future_dated_entry_is_named_and_leaves_the_window_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("time.time", lambda: 1_714_608_000.0)  # 2024-05-02T00:00:00Z
    export = write_ndjson(tmp_path / "pulls.ndjson", [
        log_entry("2024-05-01T01:00:00Z", "nginx:1.14.2"),
        log_entry("2094-05-01T01:00:00Z", "nginx:1.14.2"),
    ])
    assert run(capsys, "pulls", str(export)) == (0, """\
IMAGE                           PULLS  REPOSITORY PULLS  PEAK 6H  AT LIMIT
------------------------------  -----  ----------------  -------  --------
docker.io/library/nginx:1.14.2  1      1                 1

source: pulls.ndjson (Cloud Logging export, one JSON entry per line)
window: 2024-04-24T01:00:00Z to 2024-05-01T01:00:00Z
""", f"{SOURCE}: entries dated in the future left out: 1 (the first at 2: 2094-05-01T01:00:00Z); the window ends "
     "at the newest entry up to now (--until sets another end)\n")


def test_json_array_and_kubectl_events_with_a_byte_order_mark(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    array = tmp_path / "pulls.json"
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps([log_entry("2024-05-01T01:00:00Z", "nginx")]).encode())
    events = tmp_path / "events.json"
    events.write_bytes(b"\xef\xbb\xbf" + json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        kube_event("2024-05-01T01:00:00Z", "nginx")]}).encode())
    for path in (array, events):
        code, out, err = run(capsys, "pulls", str(path), "--format", "json")
        assert (code, err) == (0, "")
        assert [(row["image"], row["pulls"]) for row in json.loads(out)["images"]] == [("docker.io/library/nginx", 1)]


def test_a_bad_bigquery_project_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "pulls", "bigquery://Acme.x") == (
        2, "", "rehome: error: bigquery://Acme.x: project 'Acme': not a project ID (6 to 30 lowercase letters, "
               "digits and hyphens, starting with a letter; for example acme-prod)\n")


def test_a_source_that_is_no_file_is_a_usage_error_naming_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "pulls.ndjson"
    assert run(capsys, "pulls", str(tmp_path)) == (2, "", f"rehome: error: {tmp_path}: a folder, not a file\n")
    assert run(capsys, "pulls", str(missing)) == (2, "", f"rehome: error: {missing}: no such file\n")
    assert run(capsys, "pulls", "/dev/zero") == (
        2, "", "rehome: error: /dev/zero: a device or socket, not a file (rehome reads the source twice)\n"
               "hint: save it to a file first\n")


def test_a_document_nested_too_deep_counts_as_a_malformed_entry(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    code, out, err = run(capsys, "pulls", str(deep), "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "version": 1, "source": "deep.json (Cloud Logging export, a JSON array (gcloud logging read --format=json))",
        "window": None, "limit": {"pulls": 100, "per": "6h"}, "malformed": 1, "malformed_lines": [1], "images": [],
    }
