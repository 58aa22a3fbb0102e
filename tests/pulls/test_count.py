from __future__ import annotations

import json
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from bot.errors import UsageError
from bot.pulls import FORMATS, Limit, SourceError, detect, load_counts
from bot.pulls.count import MAX_BUCKETS, MAX_WINDOW, bucket_width, dense_slots, sliding_max
from bot.pulls.model import Window
from bot.pulls.times import DAY, HOUR, MINUTE, format_time, parse_time
from bot.pulls.source import MAX_PULLS
from tests.helpers import logged
from tests.pulls.logdata import kube_event, log_entry, write_gzip, write_ndjson

SPELLINGS = [
    "nginx:1.14.2", "docker.io/library/nginx:1.14.2", "index.docker.io/library/nginx:1.14.2", "library/nginx:1.14.2",
]


def image_row(image: str, repository: str, pulls: int, repository_pulls: int, peak: int | None,
              at_risk: bool | None = False, clusters: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"image": image, "repository": repository, "pulls": pulls, "repository_pulls": repository_pulls,
            "peak_6h": peak, "at_risk": at_risk, "clusters": clusters or []}


def test_every_spelling_joins_and_untagged_is_latest(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "pulls.ndjson", [
        *(log_entry("2024-05-01T10:00:00Z", name) for name in SPELLINGS),
        log_entry("2024-05-01T10:00:00Z", "nginx"),
        log_entry("2024-05-01T10:00:00Z", "docker.io/library/nginx:latest"),
        log_entry("2024-05-01T10:00:00Z", "nginx@sha256:" + "a" * 64),
        log_entry("2024-05-01T10:00:00Z", "nginx:1.14.2", reason="Pulled"),
        log_entry("2024-05-01T10:00:00Z", "nginx:1.14.2", reason="Failed"),
        log_entry("2024-05-01T10:00:00Z", "nginx:1.14.2", reason="BackOff"),
        log_entry("2024-05-01T10:00:00Z", "Not/A/Valid:Name!"),
    ])
    counts = load_counts(str(path))
    prod = {"cluster": "acme/us-central1/prod", "peak_6h": 4, "at_risk": False}
    assert counts.to_json() == {
        "version": 1,
        "source": "pulls.ndjson (Cloud Logging export, one JSON entry per line)",
        "window": {"since": "2024-04-24T10:00:00Z", "until": "2024-05-01T10:00:00Z"},
        "limit": {"pulls": 100, "per": "6h"},
        "malformed": 0,
        "malformed_lines": [],
        "images": [
            image_row("docker.io/library/nginx:1.14.2", "docker.io/library/nginx", 4, 7, 4,
                      clusters=[{**prod, "pulls": 4}]),
            image_row("docker.io/library/nginx", "docker.io/library/nginx", 2, 7, 2,
                      clusters=[{**prod, "pulls": 2, "peak_6h": 2}]),
            image_row("Not/A/Valid:Name!", "Not/A/Valid:Name!", 1, 1, 1, clusters=[{**prod, "pulls": 1, "peak_6h": 1}]),
            image_row("docker.io/library/nginx@sha256:" + "a" * 64, "docker.io/library/nginx", 1, 7, 1,
                      clusters=[{**prod, "pulls": 1, "peak_6h": 1}]),
        ],
    }
    assert [counts.lookup(name) for name in SPELLINGS] == [(4, 7)] * 4
    assert counts.lookup("nginx") == counts.lookup("nginx:latest") == (2, 7)
    assert counts.lookup("nginx:1.25") == (None, 7)
    assert counts.lookup("redis:7") == (None, None)
    assert counts.describe() == ("pull counts from pulls.ndjson (Cloud Logging export, one JSON entry per line), "
                                 "2024-04-24T10:00:00Z to 2024-05-01T10:00:00Z")


def test_window_is_inclusive_and_ends_at_the_newest_entry_by_default(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "pulls.ndjson", [
        log_entry("2024-04-24T09:59:59.999999Z", "redis:7"),  # just before since
        log_entry("2024-04-24T10:00:00Z", "redis:7"),         # since itself
        log_entry("2024-04-30T10:00:00Z", "redis:7"),
        log_entry("2024-05-01T10:00:00Z", "redis:7", reason="Pulled"),  # the newest entry is not a pull
    ])
    assert load_counts(str(path)).window == Window(parse_time("2024-04-24T10:00:00Z"), parse_time("2024-05-01T10:00:00Z"))
    assert load_counts(str(path)).lookup("redis:7") == (2, 2)
    assert load_counts(str(path), since="1d").lookup("redis:7") == (1, 1)
    assert load_counts(str(path), since="23h").lookup("redis:7") == (None, None)
    assert load_counts(str(path), since="2024-04-01").lookup("redis:7") == (3, 3)
    assert load_counts(str(path), until="2024-04-30T10:00:00Z", since="6d").lookup("redis:7") == (2, 2)
    assert load_counts(str(path), until="2024-04-30T09:59:59Z").to_json()["window"] == {
        "since": "2024-04-23T09:59:59Z", "until": "2024-04-30T09:59:59Z",
    }


@pytest.mark.parametrize(("since", "until", "message"), [
    ("soon", None, "--since: 'soon' is neither a duration (30m, 6h, 7d, 2w) nor an ISO 8601 time"),
    (None, "tomorrow", "--until: 'tomorrow' is not an ISO 8601 time"),
    ("2024-06-01", None, "--since 2024-06-01 is after --until (the newest entry)"),
    ("100000d", None, "--since 100000d: the window would be 100000 days long; rehome counts at most 10950 days "
                      "(30 years)"),
    ("0001-01-01", None, "--since 0001-01-01: the window would be 739006 days long; rehome counts at most "
                         "10950 days (30 years)"),
    ("2024-04-01", "9999-12-31", "--since 2024-04-01: the window would be 2913082 days long; rehome counts at "
                                 "most 10950 days (30 years)"),
    (None, "0001-01-03", "--since 7d: the window would start before the year 1"),
    (None, "0001-01-01T00:00:00+01:00", "--until: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999"),
])
def test_bad_windows_are_usage_errors(tmp_path: Path, since: str | None, until: str | None, message: str) -> None:
    path = write_ndjson(tmp_path / "pulls.ndjson", [log_entry("2024-05-01T10:00:00Z", "redis:7")])
    with pytest.raises(UsageError) as caught:
        load_counts(str(path), since=since, until=until)
    assert str(caught.value) == message


def test_peak_6h_is_a_sliding_window_per_image_and_per_cluster(tmp_path: Path) -> None:
    times = ["2024-05-01T00:00:00Z", "2024-05-01T03:00:00Z", "2024-05-01T05:59:00Z",  # 3 within 6h
             "2024-05-01T08:00:00Z", "2024-05-01T12:00:00Z"]                        # 08-12: 2 (+05:59 → 3)
    path = write_ndjson(tmp_path / "pulls.ndjson", [
        *(log_entry(t, "nginx:1.14.2", cluster="prod") for t in times),
        log_entry("2024-05-01T05:00:00Z", "nginx:1.14.2", cluster="dev"),
        log_entry("2024-05-01T20:00:00Z", "redis:7", cluster=None),
    ])
    counts = load_counts(str(path), limit=Limit(pulls=4, per=6 * HOUR))
    assert [row.to_json() for row in counts.images] == [
        image_row("docker.io/library/nginx:1.14.2", "docker.io/library/nginx", 6, 6, 4, at_risk=True, clusters=[
            {"cluster": "acme/us-central1/dev", "pulls": 1, "peak_6h": 1, "at_risk": False},
            {"cluster": "acme/us-central1/prod", "pulls": 5, "peak_6h": 3, "at_risk": False},
        ]),
        image_row("docker.io/library/redis:7", "docker.io/library/redis", 1, 1, 1),
    ]
    per_hour = load_counts(str(path), limit=Limit(pulls=2, per=HOUR))
    assert [(row.image, row.peak_6h, row.at_risk) for row in per_hour.images] == [
        ("docker.io/library/nginx:1.14.2", 4, True), ("docker.io/library/redis:7", 1, False),
    ]


def test_long_windows_use_wider_buckets_that_divide_six_hours() -> None:
    assert bucket_width(Window(0, 7 * DAY)) == MINUTE
    assert bucket_width(Window(0, 365 * DAY)) == 12 * MINUTE
    assert (365 * DAY) // (12 * MINUTE) < MAX_BUCKETS
    # The longest window rehome takes still fits: memory per image never grows with the window.
    assert MAX_WINDOW // bucket_width(Window(0, MAX_WINDOW)) < MAX_BUCKETS


def test_the_longest_window_counts(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "pulls.ndjson", [log_entry("2024-05-01T10:00:00Z", "redis:7")])
    counts = load_counts(str(path), since="10950d")
    assert (counts.window, counts.lookup("redis:7")) == (Window(parse_time("2024-05-01T10:00:00Z") - MAX_WINDOW,
                                                                parse_time("2024-05-01T10:00:00Z")), (1, 1))


def test_sums_beyond_64_bits_are_counted_exactly(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"timeOfImagePull,imageName,numberOfPulls\n2024-05-01T10:00:00Z,nginx,{MAX_PULLS}\n"
                    f"2024-05-01T10:00:00Z,nginx,{MAX_PULLS}\n2024-05-01T10:00:00Z,nginx:latest,{MAX_PULLS}\n")
    [row] = load_counts(str(path)).images
    assert (row.pulls, row.repository_pulls, row.peak_6h) == (3 * MAX_PULLS, 3 * MAX_PULLS, 3 * MAX_PULLS)


def test_entries_dated_in_the_future_do_not_move_the_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: parse_time("2024-05-02T00:00:00Z") / 1e6)
    path = write_ndjson(tmp_path / "pulls.ndjson", [
        log_entry("2024-05-01T10:00:00Z", "redis:7"),
        log_entry("2099-05-01T10:00:00Z", "redis:7"),            # 2: a clock gone wrong
        log_entry("2024-05-02T00:59:00Z", "redis:7"),            # 3: within the hour clocks may disagree
        log_entry("2099-06-01T10:00:00Z", "redis:7", reason="Pulled"),
    ])
    source = "pulls.ndjson (Cloud Logging export, one JSON entry per line)"
    with logged() as messages:
        counts = load_counts(str(path))
    assert messages == [f"{source}: entries dated in the future left out: 2 (the first at 2: 2099-05-01T10:00:00Z); "
                        "the window ends at the newest entry up to now (--until sets another end)"]
    assert (counts.window, counts.lookup("redis:7")) == (
        Window(parse_time("2024-04-25T00:59:00Z"), parse_time("2024-05-02T00:59:00Z")), (2, 2))
    with logged() as messages:
        counts = load_counts(str(path), until="2099-05-01T10:00:00Z", since="1d")
    assert (messages, counts.lookup("redis:7")) == ([], (1, 1))


def test_only_entries_dated_in_the_future_leave_a_window_ending_now(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: parse_time("2024-05-02T00:00:00Z") / 1e6)
    path = write_ndjson(tmp_path / "pulls.ndjson", [log_entry("2099-05-01T10:00:00Z", "redis:7")])
    with logged() as messages:
        counts = load_counts(str(path))
    assert len(messages) == 1
    assert (counts.window, counts.images) == (
        Window(parse_time("2024-04-25T00:00:00Z"), parse_time("2024-05-02T00:00:00Z")), ())


def test_malformed_entries_are_counted_with_the_first_positions(tmp_path: Path) -> None:
    lines = [log_entry("2024-05-01T10:00:00Z", "redis:7")] + ["{not json"] * 12
    counts = load_counts(str(write_ndjson(tmp_path / "p.ndjson", lines)))
    assert (counts.malformed, counts.malformed_lines) == (12, tuple(range(2, 12)))


def test_gzip_is_read_directly_and_detected_by_content(tmp_path: Path) -> None:
    text = "".join(json.dumps(log_entry("2024-05-01T10:00:00Z", name)) + "\n" for name in SPELLINGS)
    path = write_gzip(tmp_path / "export", text)
    assert detect(path) is FORMATS["log-ndjson"]
    assert load_counts(str(path)).lookup("nginx:1.14.2") == (4, 4)


def test_the_formats_registry_names_each_format_by_its_own_name() -> None:
    assert {name: fmt.name for name, fmt in FORMATS.items()} == {name: name for name in FORMATS}


def test_detection(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text(json.dumps([log_entry("2024-05-01T10:00:00Z", "nginx")], indent=2))
    events = tmp_path / "e.json"
    events.write_text(json.dumps({"apiVersion": "v1", "items": [kube_event("2024-05-01T10:00:00Z", "nginx")]}, indent=4))
    first = tmp_path / "q.csv"
    first.write_text("imageName,numberOfPulls\nnginx,3\n")
    tracking = tmp_path / "t.csv"
    tracking.write_text("timeOfImagePull,imageName,numberOfPulls\n2024-05-01,nginx,3\n")
    assert [detect(p).name for p in (array, events, first, tracking)] == ["log-json", "kubectl-events", "csv", "csv-times"]


@pytest.mark.parametrize("content", [b"hello world\n", b"", b"\x00\x01\x02", b"{}\n"])
def test_unknown_formats_are_an_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mystery.txt"
    path.write_bytes(content)
    with pytest.raises(SourceError) as caught:
        load_counts(str(path))
    assert caught.value.message == f"{path}: not a format rehome reads pull counts from"


def test_missing_file_and_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        load_counts(str(tmp_path / "absent.ndjson"))
    text = "".join(json.dumps(log_entry("2024-05-01T10:00:00Z", "nginx")) + "\n" for _ in range(200))
    whole = write_gzip(tmp_path / "whole.gz", text).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match=r"cut\.gz: cannot read: "):
        load_counts(str(cut))


def test_csv_without_times_has_no_window_and_no_peaks(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text("imageName,numberOfPulls\nnginx:1.14.2,120\ndocker.io/library/nginx:1.14.2,5\nnginx:1.25,7\n")
    counts = load_counts(str(path))
    assert counts.to_json() == {
        "version": 1, "source": "q.csv (CSV of the guide's query (imageName,numberOfPulls))", "window": None,
        "limit": {"pulls": 100, "per": "6h"}, "malformed": 0, "malformed_lines": [],
        "images": [
            image_row("docker.io/library/nginx:1.14.2", "docker.io/library/nginx", 125, 132, None, at_risk=None),
            image_row("docker.io/library/nginx:1.25", "docker.io/library/nginx", 7, 132, None, at_risk=None),
        ],
    }
    assert counts.describe() == "pull counts from q.csv (CSV of the guide's query (imageName,numberOfPulls))"


def test_ndjson_whose_first_entry_is_longer_than_what_detection_reads(tmp_path: Path) -> None:
    first = log_entry("2024-05-01T10:00:00Z", "nginx")
    first["jsonPayload"]["note"] = "x" * 100_000
    path = write_ndjson(tmp_path / "pulls.ndjson", [first, log_entry("2024-05-01T10:00:00Z", "redis")])
    assert detect(path) is FORMATS["log-ndjson"]
    assert [(row.image, row.pulls) for row in load_counts(str(path)).images] == [
        ("docker.io/library/nginx", 1), ("docker.io/library/redis", 1)]


def test_a_folder_or_a_named_pipe_is_named_as_such(tmp_path: Path) -> None:
    pipe = tmp_path / "pulls.fifo"
    os.mkfifo(pipe)
    with pytest.raises(SourceError) as caught:
        load_counts(str(tmp_path))
    assert (caught.value.message, caught.value.hint) == (f"{tmp_path}: a folder, not a file", None)
    with pytest.raises(SourceError) as caught:
        load_counts(str(pipe))
    assert (caught.value.message, caught.value.hint) == (
        f"{pipe}: a named pipe, not a file (rehome reads the source twice)", "save it to a file first")


@pytest.mark.parametrize(("since", "until", "message"), [
    ("soon", None, "--since: 'soon' is neither a duration (30m, 6h, 7d, 2w) nor an ISO 8601 time"),
    (None, "later", "--until: 'later' is not an ISO 8601 time"),
    ("1d", "10000-01-01", "--until: '10000-01-01' is not an ISO 8601 time"),
])
def test_window_flags_are_checked_before_the_source_is_read(tmp_path: Path, since: str | None, until: str | None,
                                                            message: str) -> None:
    no_entries = tmp_path / "t.csv"
    no_entries.write_text("timeOfImagePull,imageName,numberOfPulls\n")
    for source in (no_entries, tmp_path / "absent.ndjson"):
        with pytest.raises(UsageError) as caught:
            load_counts(str(source), since=since, until=until)
        assert str(caught.value) == message


def test_images_pulled_now_and_then_take_little_memory_whatever_the_window(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "pulls.ndjson", [
        log_entry(f"2024-05-{1 + n % 30:02d}T10:00:00Z", f"app@sha256:{n:064x}") for n in range(500)])
    tracemalloc.start()
    try:
        counts = load_counts(str(path), since="30d")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(counts.images) == 500
    assert peak < 10 * 2**20  # a list of every minute of 30 days for each would take 170 MB


def test_peaks_are_the_same_from_the_buckets_with_pulls_as_from_all_of_them() -> None:
    spread = random.Random(3)
    for _ in range(200):
        length = spread.randint(1, 400)
        slots = {spread.randrange(length): spread.randint(0, 5) for _ in range(spread.randint(1, 30))}
        periods = [spread.randint(1, 500) * MINUTE for _ in range(3)]
        assert sliding_max(slots, MINUTE, periods) == sliding_max(dense_slots(slots, length), MINUTE, periods)


def test_an_image_pulled_every_minute_and_now_and_then(tmp_path: Path) -> None:
    start = parse_time("2024-05-01T00:00:00Z")
    path = write_ndjson(tmp_path / "pulls.ndjson", [
        *(log_entry(format_time(start + n * MINUTE), "nginx", cluster="prod") for n in range(24 * 60)),
        *(log_entry(f"2024-05-01T{hour:02d}:30:00Z", "nginx", cluster="dev") for hour in (1, 5, 20)),
    ])
    [row] = load_counts(str(path), since="1d").images
    assert row.to_json() == image_row("docker.io/library/nginx", "docker.io/library/nginx", 1443, 1443, 362,
                                      at_risk=True, clusters=[
        {"cluster": "acme/us-central1/dev", "pulls": 3, "peak_6h": 2, "at_risk": False},
        {"cluster": "acme/us-central1/prod", "pulls": 1440, "peak_6h": 360, "at_risk": True},
    ])
