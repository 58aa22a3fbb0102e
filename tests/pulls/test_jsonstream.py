from __future__ import annotations

import io
import json

import pytest

from bot.pulls.jsonstream import TOO_DEEP, JsonStream, JsonStreamError


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


def test_a_value_nested_deeper_than_the_decoder_goes_is_read_past() -> None:
    deep_object = '{"a": "x]}\\\\\\"{[", "b": ' * 1500 + "[]" + "}" * 1500  # brackets in strings do not count
    deep_array = "[" * 5000 + "]" * 5000
    reader = JsonStream(Trickle(f'[1, {deep_object}, 2, {deep_array}, {{"c": 3}}]'))
    assert list(reader.array_items()) == [1, TOO_DEEP, 2, TOO_DEEP, {"c": 3}]
    reader.end()


def test_a_document_that_ends_inside_a_deep_value_is_an_error() -> None:
    reader = JsonStream(Trickle("[1, " + "[" * 5000 + '"]]'))
    with pytest.raises(JsonStreamError) as caught:
        list(reader.array_items())
    assert str(caught.value) == "the document ends inside a nested value (character 5005)"
