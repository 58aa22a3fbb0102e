"""Dockerfile extractor: base images, `COPY --from`, `RUN --mount=…,from=`, the `# syntax=` directive.

dockerfile-parse tells where each instruction starts. Everything positional is read on the
original text, with Docker's (BuildKit's) rules, because the parser only knows lines, keeps
a leading BOM in the first instruction, reads heredoc bodies as instructions and ends an
instruction at an empty continuation line.
"""
from __future__ import annotations

import bisect
import dataclasses
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

from dockerfile_parse import DockerfileParser
from dockerfile_parse.constants import COMMENT_INSTRUCTION

from bot.rules import Rule
from bot.scan.base import ExtractError, Extraction, FileContext
from bot.scan.model import Found

BOM = "\ufeff"
INSTRUCTIONS = frozenset((
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
))
HEREDOC_INSTRUCTIONS = frozenset(("ADD", "COPY", "RUN"))
# Set by the builder itself, never by an ARG default.
PLATFORM_ARGS = frozenset((
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
))

# BuildKit's parser directive, matched on the line without leading whitespace and newline.
DIRECTIVE_RE = re.compile(r"#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*\Z")
DIRECTIVES = frozenset(("syntax", "escape", "check"))
HEREDOC_RE = re.compile(r"\d*<<(-?)([^<]*)\Z")
CONTINUATION_RE = {"\\": re.compile(r"\\[ \t]*\Z"), "`": re.compile(r"`[ \t]*\Z")}
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SUBSTITUTION_OPERATORS = (":-", ":+", ":?", "-", "+", "?")
# What separates words in an instruction (Go's ASCII `\s`, not Python's Unicode whitespace).
WORD_SEPARATORS = frozenset(" \t\v\f\r")


# --- Reading the text ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
    """The file's text cut at `\\n` (the only line break the contract counts)."""

    text: str
    lines: list[str]  # without the `\n`
    starts: list[int]  # offset of each line's first character

    @classmethod
    def of(cls, text: str) -> Source:
        lines = text.split("\n")
        starts = [0] * len(lines)
        offset = 0
        for i, line in enumerate(lines):
            starts[i] = offset
            offset += len(line) + 1
        return cls(text, lines, starts)

    def content(self, index: int) -> tuple[int, str]:
        """A line without its line end (and without the BOM on the first line), and its offset."""
        line = self.lines[index].rstrip("\r")
        start = self.starts[index]
        if index == 0 and line.startswith(BOM):
            return start + 1, line[1:]
        return start, line


@dataclasses.dataclass(frozen=True)
class Directive:
    name: str  # lower case
    value: str
    offset: int


def read_directives(source: Source) -> list[Directive]:
    """The parser directives: the leading lines of the form `# name=value` (BuildKit's rules)."""
    found: list[Directive] = []
    for index in range(len(source.lines)):
        start, line = source.content(index)
        stripped = line.lstrip()
        match = DIRECTIVE_RE.match(stripped)
        if match is None:
            break
        name = match.group(1).lower()
        if name not in DIRECTIVES or any(d.name == name for d in found):
            break
        offset = start + (len(line) - len(stripped)) + match.start(2)
        found.append(Directive(name, match.group(2), offset))
    return found


def parser_start_lines(source: Source, directives: list[Directive], escape: str) -> list[int]:
    """The 0-based lines where dockerfile-parse sees an instruction start.

    It is fed the text without a BOM, and with the directive lines it does not know
    (`# check=`) replaced, so that it applies the same escape character as Docker.
    """
    lines = list(source.lines)
    if lines and lines[0].startswith(BOM):
        lines[0] = lines[0][1:]
    for index, directive in enumerate(directives):
        lines[index] = f"# escape={escape}" if directive.name == "escape" else "# syntax=x"
    # The extra empty line ends an instruction continued up to the end of the file, which
    # dockerfile-parse would otherwise drop.
    data = ("\n".join(lines) + "\n\n").encode("utf-8", "replace")
    parser = DockerfileParser(fileobj=io.BytesIO(data))
    return [entry["startline"] for entry in parser.structure if entry["instruction"] != COMMENT_INSTRUCTION]


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One instruction with its continuation lines joined, as Docker reads it."""

    keyword: str  # upper case
    text: str  # the whole logical line, keyword included
    args_start: int  # index in `text` where the arguments start
    last_line: int
    piece_starts: tuple[int, ...]  # index in `text` where each joined piece starts
    piece_offsets: tuple[int, ...]  # offset in the file of each piece's first character

    def offset(self, index: int) -> int:
        piece = bisect.bisect_right(self.piece_starts, index) - 1
        return self.piece_offsets[piece] + index - self.piece_starts[piece]

    def same_piece(self, start: int, end: int) -> bool:
        return bisect.bisect_right(self.piece_starts, start) == bisect.bisect_right(self.piece_starts, end - 1)


def read_instruction(source: Source, first: int, escape: str) -> Instruction | None:
    """Join the instruction starting at line `first`: continuation lines, skipping comment and
    empty lines inside it (Docker does)."""
    continuation = CONTINUATION_RE[escape]
    pieces: list[str] = []
    piece_starts: list[int] = []
    piece_offsets: list[int] = []
    length = 0
    index = first
    while index < len(source.lines):
        start, line = source.content(index)
        if index == first:
            stripped = line.lstrip()
            start += len(line) - len(stripped)
            line = stripped
            if not line or line.startswith("#"):
                return None
        elif not line.strip() or line.lstrip().startswith("#"):
            index += 1
            continue
        match = continuation.search(line)
        piece = line[: match.start()] if match else line
        pieces.append(piece)
        piece_starts.append(length)
        piece_offsets.append(start)
        length += len(piece)
        if match is None:
            break
        index += 1
    last = min(index, len(source.lines) - 1)
    text = "".join(pieces)
    keyword_end = 0
    while keyword_end < len(text) and text[keyword_end] not in WORD_SEPARATORS:
        keyword_end += 1
    args_start = keyword_end
    while args_start < len(text) and text[args_start] in WORD_SEPARATORS:
        args_start += 1
    return Instruction(
        keyword=text[:keyword_end].upper(),
        text=text,
        args_start=args_start,
        last_line=last,
        piece_starts=tuple(piece_starts),
        piece_offsets=tuple(piece_offsets),
    )


def iter_words(text: str, start: int, escape: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each whitespace-separated word from `start`; quotes keep spaces in a word."""
    length = len(text)
    i = start
    while True:
        while i < length and text[i] in WORD_SEPARATORS:
            i += 1
        if i >= length:
            return
        word_start = i
        quote = ""
        while i < length:
            char = text[i]
            if quote:
                if char == quote:
                    quote = ""
                elif char == escape and quote == '"' and i + 1 < length:
                    i += 1
            elif char == '"' or char == "'":
                quote = char
            elif char == escape and i + 1 < length:
                i += 1
            elif char in WORD_SEPARATORS:
                break
            i += 1
        yield word_start, i


def unquote(word: str) -> str:
    """The word with its quotes and backslash escapes removed (a heredoc's name)."""
    out = []
    quote = ""
    i = 0
    while i < len(word):
        char = word[i]
        if quote and char == quote:
            quote = ""
        elif not quote and char in "\"'":
            quote = char
        elif char == "\\" and quote != "'" and i + 1 < len(word):
            i += 1
            out.append(word[i])
        else:
            out.append(char)
        i += 1
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class Heredoc:
    name: str
    strip_tabs: bool  # `<<-`


def heredocs_of(instruction: Instruction) -> list[Heredoc]:
    """The heredocs an ADD/COPY/RUN opens, in order (BuildKit: each word of the form `[n]<<[-]NAME`)."""
    if instruction.keyword not in HEREDOC_INSTRUCTIONS or "<<" not in instruction.text:
        return []
    found = []
    for start, end in iter_words(instruction.text, instruction.args_start, "\\"):
        match = HEREDOC_RE.fullmatch(instruction.text, start, end)
        if match is None or not match.group(2):
            continue
        name = unquote(match.group(2))
        if name and not any(c in WORD_SEPARATORS for c in name):
            found.append(Heredoc(name, strip_tabs=match.group(1) == "-"))
    return found


def skip_heredoc(source: Source, after_line: int, heredoc: Heredoc) -> int:
    """The line of the heredoc's terminator (the last line when it is never terminated)."""
    for index in range(after_line + 1, len(source.lines)):
        line = source.lines[index].rstrip("\r")
        if index == 0 and line.startswith(BOM):
            line = line[1:]
        if heredoc.strip_tabs:
            line = line.lstrip("\t")
        if line == heredoc.name:
            return index
    return len(source.lines) - 1


@dataclasses.dataclass(frozen=True)
class Dockerfile:
    escape: str
    directives: list[Directive]
    instructions: list[Instruction]
    heredoc_bodies: list[str]


def read_dockerfile(text: str) -> Dockerfile:
    if "\x00" in text:
        raise ExtractError("not a Dockerfile: binary content (NUL characters)")
    source = Source.of(text)
    directives = read_directives(source)
    escape = next((d.value for d in directives if d.name == "escape"), "\\")
    if escape not in CONTINUATION_RE:
        raise ExtractError(f"not a Dockerfile: invalid escape directive {escape!r} (only \\ or `)")
    instructions: list[Instruction] = []
    bodies: list[str] = []
    read_through = len(directives) - 1
    for first in parser_start_lines(source, directives, escape):
        if first <= read_through:
            continue  # inside an instruction joined here, or inside a heredoc body
        instruction = read_instruction(source, first, escape)
        if instruction is None:
            continue
        read_through = instruction.last_line
        if not instruction.keyword:
            continue  # only continuation characters
        if not instructions and instruction.keyword not in INSTRUCTIONS:
            word = instruction.text[: len(instruction.keyword)]
            raise ExtractError(f"not a Dockerfile: line {first + 1} starts with {word[:40]!r}, not an instruction")
        instructions.append(instruction)
        for heredoc in heredocs_of(instruction):
            end = skip_heredoc(source, read_through, heredoc)
            bodies.append("\n".join(source.lines[read_through + 1 : end]))
            read_through = end
    return Dockerfile(escape, directives, instructions, bodies)


# --- Variables -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Arg:
    """An ARG declaration; `value` is its default after substitution, None without default."""

    name: str
    default: str | None  # as written (inside the quotes when it is quoted whole)
    offset: int  # of the default's first character
    quote: str  # the quote around the default, or ""
    value: str | None
    problem: str | None  # why the default cannot be worked out
    span: tuple[int, int] | None = None  # set when a line continuation cuts the default
    uses: tuple[str, ...] = ()  # the variables the default reads


@dataclasses.dataclass(frozen=True)
class Use:
    """One variable a substitution read, and where its text starts in the result."""

    name: str
    value: str
    position: int
    expression: str | None = None  # the `${NAME:-word}` text when its operator decided the value
    why: str | None = None  # why the operator chose what it did


class Unresolvable(Exception):
    pass


class Scope:
    """The variables a word can use. A value is a string, None for an ARG declared without a
    value, or an Unresolvable when only the build knows it."""

    def __init__(self, missing: Callable[[str], str]) -> None:
        self.values: dict[str, str | None | Unresolvable] = {
            name: Unresolvable(f"{name} is set by the builder for the target platform") for name in PLATFORM_ARGS
        }
        self.missing = missing  # why an undeclared name has no value

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        if isinstance(value, Unresolvable):
            raise value
        return value

    def unset_reason(self, name: str) -> str:
        if name in self.values:
            return f"ARG {name} has no default value"
        return self.missing(name)

    def declare(self, arg: Arg) -> None:
        if arg.name in PLATFORM_ARGS:
            return
        self.values[arg.name] = Unresolvable(arg.problem) if arg.problem else arg.value


class Substitution:
    """Docker's word processing (quotes, escapes, `$X`, `${X}`, `${X:-word}` …) for one word."""

    def __init__(self, scope: Scope, escape: str) -> None:
        self.scope = scope
        self.escape = escape
        self.uses: list[Use] = []

    def process(self, word: str, base: int = 0) -> str:
        out: list[str] = []
        length = 0
        quote = ""
        i = 0
        while i < len(word):
            char = word[i]
            if quote == "'":
                if char == "'":
                    quote = ""
                else:
                    out.append(char)
                    length += 1
                i += 1
                continue
            if char == '"' or (char == "'" and not quote):
                quote = "" if quote == char else char
                i += 1
                continue
            if char == self.escape and i + 1 < len(word):
                out.append(word[i + 1])
                length += 1
                i += 2
                continue
            if char == "$":
                value, i = self._variable(word, i, base + length)
                out.append(value)
                length += len(value)
                continue
            out.append(char)
            length += 1
            i += 1
        return "".join(out)

    def _variable(self, word: str, i: int, position: int) -> tuple[str, int]:
        if word.startswith("${", i):
            end = closing_brace(word, i + 2)
            if end < 0:
                raise Unresolvable(f"unterminated variable {word[i:]!r}")
            return self._braced(word[i : end + 1], word[i + 2 : end], position), end + 1
        match = NAME_RE.match(word, i + 1)
        if match is None:
            return "$", i + 1
        name = match.group()
        value = self.scope.get(name)
        if value is None:
            raise Unresolvable(self.scope.unset_reason(name))
        self.uses.append(Use(name, value, position))
        return value, match.end()

    def _braced(self, expression: str, inner: str, position: int) -> str:
        match = NAME_RE.match(inner)
        rest = inner[match.end():] if match else ""
        operator = next((op for op in SUBSTITUTION_OPERATORS if rest.startswith(op)), None)
        if match is None or (rest and operator is None):
            raise Unresolvable(f"unsupported substitution {expression}")
        name = match.group()
        value = self.scope.get(name)
        if operator is None:
            if value is None:
                raise Unresolvable(self.scope.unset_reason(name))
            self.uses.append(Use(name, value, position))
            return value
        word = rest[len(operator):]
        is_set = value is not None and (value != "" or not operator.startswith(":"))
        state = f"{name} is set" if is_set else f"{name} is {'empty' if value == '' else 'not set'}"
        if operator in (":-", "-"):
            if is_set:
                assert value is not None
                self.uses.append(Use(name, value, position))
                return value
            result = self.process(word, position)
            self.uses.append(Use(name, result, position, expression, state))
            return result
        if operator in (":+", "+"):
            result = self.process(word, position) if is_set else ""
            self.uses.append(Use(name, result, position, expression, state))
            return result
        if not is_set:  # `:?` and `?`: the build fails without a value
            raise Unresolvable(f"{expression}: {self.scope.unset_reason(name)}")
        assert value is not None
        self.uses.append(Use(name, value, position))
        return value


def closing_brace(word: str, start: int) -> int:
    depth = 1
    for i in range(start, len(word)):
        if word[i] == "{":
            depth += 1
        elif word[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def substitute(word: str, scope: Scope, escape: str) -> tuple[str, list[Use]]:
    """The word's value, and the variables it read; raises Unresolvable."""
    substitution = Substitution(scope, escape)
    return substitution.process(word), substitution.uses


def has_variable(word: str) -> bool:
    return "$" in word


# --- What each instruction holds -------------------------------------------------------


def parse_args(instruction: Instruction, escape: str, scope: Scope, declare: Callable[[Arg], None]) -> None:
    """Each declaration of an `ARG A=1 B="2" C` instruction, in order: a default is substituted
    with what `scope` holds, which `declare` updates (later ones see earlier ones)."""
    text = instruction.text
    for start, end in iter_words(text, instruction.args_start, escape):
        name, equals, default = text[start:end].partition("=")
        if not NAME_RE.fullmatch(name):
            continue
        if not equals:
            declare(Arg(name, None, instruction.offset(start), "", None, None))
            continue
        default_start = start + len(name) + 1
        quote = ""
        written = default
        if len(default) >= 2 and default[0] in "\"'" and default[-1] == default[0]:
            quote = default[0]
            written = default[1:-1]
            default_start += 1
        default_end = default_start + len(written)
        span = None
        if written and not instruction.same_piece(default_start, default_end):
            span = (instruction.offset(default_start), instruction.offset(default_end - 1) + 1)
        uses: tuple[str, ...] = ()
        try:
            value, used = substitute(default, scope, escape)
            problem = None
            uses = tuple(sorted({use.name for use in used}))
        except Unresolvable as exc:
            value, problem = None, str(exc)
        declare(Arg(name, written, instruction.offset(default_start), quote, value, problem, span, uses))


@dataclasses.dataclass(frozen=True)
class Flag:
    name: str  # without the leading `--`, lower case
    value: str  # as written, without the quotes around it
    value_start: int  # index in the instruction text


def leading_flags(instruction: Instruction, escape: str) -> tuple[list[Flag], list[tuple[int, int]]]:
    """The `--name=value` words at the start of the arguments, and the words after them
    (up to three: enough for `image AS name`)."""
    flags: list[Flag] = []
    rest: list[tuple[int, int]] = []
    text = instruction.text
    for start, end in iter_words(text, instruction.args_start, escape):
        if not rest and text.startswith("--", start) and end - start > 2:
            name, _, value = text[start + 2 : end].partition("=")
            value_start = start + 3 + len(name)
            if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
                value, value_start = value[1:-1], value_start + 1
            flags.append(Flag(name.lower(), value, value_start))
            continue
        rest.append((start, end))
        if len(rest) == 3:
            break
    return flags, rest


def mount_from(flag: Flag) -> tuple[str, int] | None:
    """The `from=` field of a `--mount` value (CSV: any position, any key case) and its index."""
    position = flag.value_start
    for field in split_csv(flag.value):
        value_start = position
        inner = field
        if len(inner) >= 2 and inner[0] == '"' and inner[-1] == '"':
            inner = inner[1:-1]
            value_start += 1
        key, equals, value = inner.partition("=")
        if equals and key.strip().lower() == "from":
            value_start += len(key) + 1
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value, value_start = value[1:-1], value_start + 1
            return value, value_start
        position += len(field) + 1
    return None


def split_csv(value: str) -> list[str]:
    fields = []
    start = 0
    quoted = False
    for i, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            fields.append(value[start:i])
            start = i + 1
    fields.append(value[start:])
    return fields


# --- The extractor ---------------------------------------------------------------------


class Extractor:
    """Walks the instructions in order, with Docker's scoping of ARGs and stage names."""

    def __init__(self, dockerfile: Dockerfile) -> None:
        self.dockerfile = dockerfile
        self.escape = dockerfile.escape
        self.found: dict[int, Found] = {}
        self.meta_args: dict[str, Arg] = {}
        self.meta_scope = Scope(self._undeclared_reason)
        self.stage_scope = Scope(lambda name: f"{name} is not an ARG of this stage")
        self.stages: list[str] = []  # stage names so far ("" for an unnamed stage)
        self.all_stages, self.late_args = self._survey()
        self.seen_from = False

    def run(self) -> list[Found]:
        for directive in self.dockerfile.directives:
            if directive.name == "syntax":
                self._add(Found(directive.offset, directive.value, edit={"directive": "syntax"}))
        for instruction in self.dockerfile.instructions:
            handler = self.HANDLERS.get(instruction.keyword)
            if handler is not None:
                handler(self, instruction)
        return sorted(self.found.values(), key=lambda f: f.offset)

    def _add(self, found: Found) -> None:
        self.found.setdefault(found.offset, found)

    def _survey(self) -> tuple[set[str], set[str]]:
        """All stage names (`COPY --from` may name a later stage) and the ARGs declared after the first FROM."""
        stages: set[str] = set()
        late_args: set[str] = set()
        seen_from = False
        for instruction in self.dockerfile.instructions:
            if instruction.keyword == "FROM":
                seen_from = True
                stage = stage_name(instruction, self.escape)
                if stage:
                    stages.add(stage)
            elif instruction.keyword == "ARG" and seen_from:
                for start, end in iter_words(instruction.text, instruction.args_start, self.escape):
                    late_args.add(instruction.text[start:end].partition("=")[0])
        return stages, late_args

    def _undeclared_reason(self, name: str) -> str:
        if name in self.late_args:
            return f"ARG {name} is declared after the first FROM; FROM only sees ARGs declared before it"
        return f"{name} is not declared by an ARG before the first FROM"

    # ARG ----------------------------------------------------------------------------

    def _on_arg(self, instruction: Instruction) -> None:
        if self.seen_from:
            parse_args(instruction, self.escape, self.stage_scope, self._declare_stage_arg)
        else:
            parse_args(instruction, self.escape, self.meta_scope, self._declare_meta_arg)

    def _declare_meta_arg(self, arg: Arg) -> None:
        self.meta_args[arg.name] = arg
        self.meta_scope.declare(arg)

    def _declare_stage_arg(self, arg: Arg) -> None:
        if arg.default is None and arg.name in self.meta_scope.values:
            # `ARG NAME` in a stage brings in the global ARG's value.
            self.stage_scope.values[arg.name] = self.meta_scope.values[arg.name]
        else:
            self.stage_scope.declare(arg)

    # FROM ---------------------------------------------------------------------------

    def _on_from(self, instruction: Instruction) -> None:
        self.seen_from = True
        self.stage_scope = Scope(self.stage_scope.missing)
        _, rest = leading_flags(instruction, self.escape)
        if rest:
            self._from_image(instruction, *strip_quotes(instruction.text, *rest[0]))
        self.stages.append(stage_name(instruction, self.escape) or "")

    def _from_image(self, instruction: Instruction, start: int, end: int) -> None:
        raw = instruction.text[start:end]
        edit: dict[str, object] = {"instruction": "FROM"}
        if not has_variable(raw):
            if is_image(raw, self.stages):
                self._add(self._found(instruction, start, end, edit=edit))
            return
        arg = self._whole_arg(raw)
        if arg is not None:
            if arg.problem or is_image(arg.value or "", self.stages):
                self._add(self._from_arg(arg))
            return
        try:
            value, uses = substitute(raw, self.meta_scope, self.escape)
        except Unresolvable as exc:
            self._add(self._found(instruction, start, end, unresolved=str(exc), edit=edit))
            return
        edit["args"] = sorted({use.name for use in uses})
        problem = empty_part(raw, value, uses)
        if problem:
            self._add(self._found(instruction, start, end, unresolved=problem, edit=edit))
        elif is_image(value, self.stages):
            self._add(self._substituted(instruction, start, end, value, uses, edit))

    def _whole_arg(self, raw: str) -> Arg | None:
        """The global ARG whose default is the whole image: `FROM $NAME`, `${NAME}`, or
        `${NAME:-x}` / `${NAME-x}` when NAME has a default."""
        name = None
        if raw.startswith("${") and closing_brace(raw, 2) == len(raw) - 1:
            inner = raw[2:-1]
            match = NAME_RE.match(inner)
            if match and (match.end() == len(inner) or inner.startswith((":-", "-"), match.end())):
                name = match.group()
        elif raw.startswith("$") and NAME_RE.fullmatch(raw, 1):
            name = raw[1:]
        arg = self.meta_args.get(name) if name else None
        if arg is None or not arg.default or name in PLATFORM_ARGS or arg.value == "":
            return None
        return arg

    def _from_arg(self, arg: Arg) -> Found:
        written = arg.default or ""
        edit: dict[str, object] = {
            "instruction": "ARG",
            "arg": arg.name,
            "arg_used_elsewhere": self._used_outside_from(arg.name),
            "quote": arg.quote,
        }
        if arg.uses:
            edit["args"] = list(arg.uses)  # the default itself reads these ARGs
        note = f"default of ARG {arg.name}, used by FROM"
        if arg.problem:
            return Found(arg.offset, written, span=arg.span, unresolved=arg.problem, note=note, edit=edit)
        resolve_as = arg.value if arg.value != written else None
        return Found(arg.offset, written, span=arg.span, resolve_as=resolve_as, note=note, edit=edit)

    def _used_outside_from(self, name: str) -> bool:
        pattern = re.compile(rf"\$(?:{name}\b|\{{{name}\b)")
        texts = [i.text for i in self.dockerfile.instructions if i.keyword != "FROM"]
        return any(pattern.search(t) for t in texts + self.dockerfile.heredoc_bodies)

    # COPY --from, RUN --mount=…,from= --------------------------------------------------

    def _on_copy(self, instruction: Instruction) -> None:
        flags, _ = leading_flags(instruction, self.escape)
        for flag in flags:
            if flag.name == "from":
                self._from_flag(instruction, flag.value, flag.value_start, {"instruction": "COPY", "flag": "from"})

    def _on_run(self, instruction: Instruction) -> None:
        if "from" not in instruction.text.lower():
            return
        flags, _ = leading_flags(instruction, self.escape)
        for flag in flags:
            if flag.name == "mount":
                found = mount_from(flag)
                if found is not None:
                    self._from_flag(instruction, found[0], found[1], {"instruction": "RUN", "flag": "mount"})

    def _from_flag(self, instruction: Instruction, value: str, start: int, edit: dict[str, object]) -> None:
        end = start + len(value)
        if not value or value.isdigit() or value == "context":
            return  # a stage index, or BuildKit's name for the build context
        if not has_variable(value):
            if is_image(value, self.all_stages):
                self._add(self._found(instruction, start, end, edit=edit))
            return
        try:
            resolved, uses = substitute(value, self.stage_scope, self.escape)
        except Unresolvable as exc:
            self._add(self._found(instruction, start, end, unresolved=str(exc), edit=edit))
            return
        problem = empty_part(value, resolved, uses)
        if problem:
            self._add(self._found(instruction, start, end, unresolved=problem, edit=edit))
        elif not resolved.isdigit() and is_image(resolved, self.all_stages):
            self._add(self._substituted(instruction, start, end, resolved, uses, edit))

    def _substituted(self, instruction: Instruction, start: int, end: int, value: str, uses: list[Use],
                     edit: dict[str, object]) -> Found:
        """A reference that variables gave. One that is wholly `${NAME:-word}` and took its word
        is located at the word: a rewrite replaces that text and keeps the substitution around it."""
        note = "; ".join(use_note(value, use) for use in uses) or None
        start, end = chosen_word(instruction.text, start, end, uses, self.escape) or (start, end)
        resolve_as = None if value == instruction.text[start:end] else value
        return self._found(instruction, start, end, resolve_as=resolve_as, note=note, edit=edit)

    def _found(self, instruction: Instruction, start: int, end: int, **fields: Any) -> Found:
        raw = instruction.text[start:end]
        offset = instruction.offset(start)
        if not instruction.same_piece(start, end):
            # The reference is cut by a line continuation: a rewrite must replace the whole region.
            fields["span"] = (offset, instruction.offset(end - 1) + 1)
        return Found(offset, raw, **fields)

    HANDLERS: dict[str, Callable[[Extractor, Instruction], None]] = {
        "ARG": _on_arg,
        "FROM": _on_from,
        "COPY": _on_copy,
        "RUN": _on_run,
    }


def stage_name(instruction: Instruction, escape: str) -> str | None:
    """The `AS name` of a FROM, lower case (Docker matches stage names case-insensitively)."""
    _, rest = leading_flags(instruction, escape)
    if len(rest) == 3 and instruction.text[rest[1][0] : rest[1][1]].lower() == "as":
        return instruction.text[rest[2][0] : rest[2][1]].lower()
    return None


def is_image(value: str, stage_names: set[str] | list[str]) -> bool:
    lowered = value.lower()
    return lowered != "scratch" and lowered not in stage_names


def strip_quotes(text: str, start: int, end: int) -> tuple[int, int]:
    if end - start >= 2 and text[start] in "\"'" and text[end - 1] == text[start]:
        return start + 1, end - 1
    return start, end


def reference_part(value: str, position: int) -> str:
    """Which part of the reference `value` the text at `position` belongs to."""
    before = value[:position]
    if "@" in before:
        return "digest"
    if ":" in before[before.rfind("/") + 1 :]:
        return "tag"
    return "name"


def chosen_word(text: str, start: int, end: int, uses: list[Use], escape: str) -> tuple[int, int] | None:
    """Where the word of `text[start:end]` is when that text is one `${NAME:-word}` (or `-`, `:+`,
    `+`) whose word gave the value, written without quotes or escapes; else None."""
    raw = text[start:end]
    if not raw.startswith("${") or closing_brace(raw, 2) != len(raw) - 1:
        return None
    if not any(use.expression == raw and use.value for use in uses):
        return None  # the variable's own value, not the word
    name = NAME_RE.match(raw, 2)
    assert name is not None  # the substitution accepted the expression
    operator = next(op for op in SUBSTITUTION_OPERATORS if raw.startswith(op, name.end()))
    word_start = start + name.end() + len(operator)
    if any(char in "\"'" + escape for char in text[word_start : end - 1]):
        return None
    return word_start, end - 1


def empty_part(raw: str, value: str, uses: list[Use]) -> str | None:
    """Why a substituted reference is unusable because a variable is empty (`img:${TAG}` with `ARG TAG=`)."""
    if not value:
        return f"{raw} is empty"
    for use in uses:
        if use.value:
            continue
        at_end = use.position == len(value) or value[use.position] == "@"
        if at_end and value[use.position - 1 : use.position] in (":", "@"):
            return f"ARG {use.name} is empty, which leaves the {reference_part(value, use.position)} empty"
    return None


def use_note(value: str, use: Use) -> str:
    """`tag from ARG TAG default "3.12"`: which part of the reference a variable gave."""
    part = reference_part(value, use.position)
    if use.expression is not None:
        return f'{part} from {use.expression}: "{use.value}" ({use.why})'
    return f'{part} from ARG {use.name} default "{use.value}"'


def extract(text: str, rule: Rule, context: FileContext) -> Extraction:
    try:
        return Extraction(found=Extractor(read_dockerfile(text)).run())
    except RecursionError:
        raise ExtractError("not parseable: variables nested too deeply (${A:-${B:-...}})") from None
