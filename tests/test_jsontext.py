from __future__ import annotations

import pytest

from bot.jsontext import loads
from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP


def test_a_whole_document_nested_deeper_than_the_decoder_goes_is_not_json() -> None:
    assert loads('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert loads(b'{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError) as caught:
        loads('{"a": ' + DEEP_JSON + "}")
    assert str(caught.value) == NESTED_TOO_DEEP
