"""Read a large JSON document value by value, holding only a chunk of it in memory.

`json.JSONDecoder.raw_decode` decodes one value from a buffer; when the value runs past the end of
what has been read so far, read more and try again. A value nested deeper than the decoder goes
(it recurses) is read past instead, and given as TOO_DEEP: no caller takes it for an entry.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

_CHUNK = 1 << 16
_WHITESPACE = " \t\n\r"
_INT_DIGITS = 20
_STRUCTURE_RE = re.compile(r'["\[\]{}]')
_STRING_REST_RE = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # after the opening quote

TOO_DEEP = object()


def _int(text: str) -> int | float:
    """A longer integer than any count is read as a float, never a valid count (and never Python's
    error for converting thousands of digits)."""
    return int(text) if len(text) <= _INT_DIGITS else float(text)


class JsonStreamError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (character {offset + 1})")
        self.offset = offset


class JsonStream:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._buffer = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the buffer
        self._eof = False
        self._decoder = json.JSONDecoder(parse_int=_int)

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._stream.read(_CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._consumed += self._pos
        self._buffer = self._buffer[self._pos:] + chunk
        self._pos = 0
        return True

    def _error(self, message: str) -> JsonStreamError:
        return JsonStreamError(message, self._consumed + self._pos)

    def peek(self) -> str | None:
        """The next character that is not whitespace (not consumed), or None at the end."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._fill():
                return None

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"expected {char!r}")
        self._pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue
                raise JsonStreamError(exc.msg, self._consumed + exc.pos) from None
            except RecursionError:
                self._skip_nested()
                return TOO_DEEP
            # A number or literal that ends where the buffer ends may continue in the next chunk.
            if end == len(self._buffer) and self._fill():
                continue
            self._pos = end
            return value

    def _skip_nested(self) -> None:
        """Read past the array or object that starts here by counting its brackets (strings aside)."""
        depth = 0
        while True:
            found = _STRUCTURE_RE.search(self._buffer, self._pos)
            if found is None:
                self._pos = len(self._buffer)
                self._more_of_the_nested_value()
                continue
            if found.group() == '"':
                string = _STRING_REST_RE.match(self._buffer, found.end())
                if string is None:  # the string goes on in the next chunk
                    self._pos = found.start()
                    self._more_of_the_nested_value()
                    continue
                self._pos = string.end()
                continue
            self._pos = found.end()
            depth += 1 if found.group() in "[{" else -1
            if depth == 0:
                return

    def _more_of_the_nested_value(self) -> None:
        if not self._fill():
            raise self._error("the document ends inside a nested value")

    def array_items(self) -> Iterator[Any]:
        """The values of the array that starts here."""
        self.expect("[")
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            following = self.peek()
            if following == ",":
                self._pos += 1
            elif following == "]":
                self._pos += 1
                return
            else:
                raise self._error("expected ',' or ']' after an array element")

    def object_members(self) -> Iterator[str]:
        """The keys of the object that starts here; the caller reads each key's value
        (with `value()` or `array_items()`) before asking for the next key."""
        self.expect("{")
        if self.peek() == "}":
            self._pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise self._error("expected an object key")
            self.expect(":")
            yield key
            following = self.peek()
            if following == ",":
                self._pos += 1
            elif following == "}":
                self._pos += 1
                return
            else:
                raise self._error("expected ',' or '}' after an object member")

    def end(self) -> None:
        if self.peek() is not None:
            raise self._error("unexpected data after the JSON document")
