from __future__ import annotations

import io
import json

import pytest

from bot.pulls.jsonstream import JsonStream, JsonStreamError


class Trickle(io.StringIO):
    """Hands out a few characters per read, so every value crosses chunk boundaries."""

    def read(self, size: int | None = -1) -> str:
        return super().read(3)


DOCUMENT = {"apiVersion": "v1", "count": 12345678, "flag": True, "none": None, "nested": {"a": [1, "]", {"b": "}"}]},
            "items": [{"n": 1}, 2.5, "three", [4], False, {"é": "\u2028"}], "kind": "List"}


def test_members_and_items_read_in_small_pieces() -> None:
    reader = JsonStream(Trickle(json.dumps(DOCUMENT, indent=1)))
    seen: dict[str, object] = {}
    for key in reader.object_members():
        seen[key] = list(reader.array_items()) if key == "items" else reader.value()
    reader.end()
    assert seen == DOCUMENT


def test_arrays_and_empties() -> None:
    reader = JsonStream(Trickle(" [ ] "))
    assert list(reader.array_items()) == []
    reader = JsonStream(Trickle("{}"))
    assert list(reader.object_members()) == []
    reader = JsonStream(Trickle("[10, 200]"))
    assert list(reader.array_items()) == [10, 200]


@pytest.mark.parametrize(("text", "message"), [
    ('[{"a": 1} {"b": 2}]', "expected ',' or ']' after an array element (character 11)"),
    ('[{"a": 1}, {"b": ', "Expecting value (character 18)"),
    ('[1] [2]', "unexpected data after the JSON document (character 5)"),
    ('{"a" 1}', "expected ':' (character 6)"),
])
def test_errors_say_where(text: str, message: str) -> None:
    reader = JsonStream(Trickle(text))
    with pytest.raises(JsonStreamError) as caught:
        if text.startswith("["):
            list(reader.array_items())
        else:
            for _ in reader.object_members():
                reader.value()
        reader.end()
    assert str(caught.value) == message
