"""Helm charts: image values in `values.yaml`, and `image:` lines in `templates/`.

Values: an `image` (or `*Image` / `*image`) key holds either a reference string or a
map of split keys (`registry`, `repository`, `tag`, `digest`) that the chart's
templates join into one reference; an empty or absent tag means the chart's
`appVersion`. A values file with no `Chart.yaml` beside or above it is read too: it is
passed to a chart installed from elsewhere (`helm install repo/chart -f values.yaml`, an
Argo CD or Flux release), so a tagless split entry there stays unresolved.
Templates are Go templates, not YAML: they are read line by line.
"""
from __future__ import annotations

import dataclasses
import decimal
import math
import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.rules import Rule
from bot.scan import keypaths
from bot.scan.base import ExtractError, Extraction, FileContext
from bot.scan.model import Found
from bot.scan.yaml import (BLOCK_SCALAR_NEWLINE, NULL_TAG, found_at, keeps_final_newline, line_at, scalar_part,
                           use_line)
from bot.scan.yamldocs import anchor_name, documents, effective_get, mapping_get, merged_get, scalar_text

SPLIT_KEYS = ("registry", "repository", "tag", "digest")
NUMBER_TAG = "tag:yaml.org,2002:float"  # the scan's resolver gives every YAML number this tag
_OCTAL_RE = re.compile(r"[-+]?0[0-7]+")  # YAML 1.1, which Helm's parser reads: `010` is 8
_EDITED_KEYS = ("registry", "repository", keypaths.MERGE_KEY)  # `<<`: a merge key that gives a split entry these
_IMAGE_KEY_RE = re.compile(r".*[iI]mage\Z")

# `image: value` or `- image: value` at the start of a line; the value runs to the end
# of the line (a trailing comment is cut off afterwards).
_TEMPLATE_IMAGE_RE = re.compile(r"^[ \t]*(?:-[ \t]+)?image[ \t]*:[ \t]+(?P<value>[^ \t\r\n#][^\r\n]*)", re.MULTILINE)
_PLAIN_END_RE = re.compile(r"[ \t]+#|[ \t]+\Z")


# --- values -----------------------------------------------------------------

def _image_entries(node: Node, walked: set[int], reported: set[int]) -> Iterator[tuple[ScalarNode, Node]]:
    """The image keys and their values, in document order; an aliased value is reported once, at
    its anchor (with the first image key holding it), even when the anchor itself sits under another key."""
    if id(node) in walked:
        return
    walked.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and _IMAGE_KEY_RE.match(str(key.value)):
                if id(value) not in reported:
                    reported.add(id(value))
                    yield key, value
            else:
                yield from _image_entries(value, walked, reported)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _image_entries(item, walked, reported)


def _part(node: Node | None, text: str, base: int) -> dict[str, Any] | None:
    return scalar_part(node, text, base) if isinstance(node, ScalarNode) else None


def _compose(registry: str, repository: str, tag: str, digest: str) -> str:
    name = f"{registry.rstrip('/')}/{repository}" if registry else repository
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _nearest_chart(context: FileContext) -> tuple[str, str | None] | None:
    """(Chart.yaml path, its appVersion if any) of the nearest chart above the values file."""
    for directory in (context.directory, *context.directory.parents):
        chart_path = (directory / "Chart.yaml").as_posix()
        chart = context.read_text(chart_path)
        if chart is not None:
            return chart_path, _chart_app_version(chart)
    return None


def _chart_app_version(chart: str) -> str | None:
    try:
        roots = [node for _, node in documents(chart)]
    except ExtractError:
        return None
    value = mapping_get(roots[0], "appVersion") if roots else None
    if isinstance(value, ScalarNode) and value.tag != NULL_TAG and str(value.value):
        return str(value.value)
    return None


@dataclasses.dataclass(frozen=True)
class _Entry:
    """The value under an image key, with what is looked up in it once: for a split entry, each
    split key's value and the mappings merge keys (`<<: *base`, at any depth) give it through
    (none for its own)."""

    key: ScalarNode
    node: Node
    keys: dict[str, tuple[Node | None, tuple[MappingNode, ...]]]
    # The nodes a rewrite of the entry replaces: the reference, or a split entry's `registry` and
    # `repository`, or the mappings merge keys take them through (each holds the new value too).
    edited: list[Node]


def _entry(key: ScalarNode, node: Node) -> _Entry:
    if not isinstance(node, MappingNode):
        return _Entry(key, node, {}, [node])
    keys = {key: merged_get(node, key) for key in SPLIT_KEYS}
    edited = [edited for value, through in (keys["registry"], keys["repository"]) if value is not None
              for edited in (through or [value])]
    return _Entry(key, node, keys, list({id(node): node for node in edited}.values()))


@dataclasses.dataclass(frozen=True)
class _SharedAnchor:
    name: str
    line: int | None  # the first place the document uses the value where no image is expected


def _shared_anchors(root: Node, entries: list[_Entry], text: str, base: int) -> dict[int, _SharedAnchor]:
    """The anchored values a rewrite would change that the document also holds where no image is
    expected (a label, `global.imageRegistry`, a mapping merging a whole split entry), by node id."""
    watched = [node for entry in entries for node in (*entry.edited, entry.node)]
    anchors = {id(node): name for node in watched if (name := anchor_name(node, text, base)) is not None}
    if not anchors:
        return {}
    split_entries = {id(entry.node) for entry in entries if isinstance(entry.node, MappingNode)}

    def holds_an_image(parent: MappingNode | None, key: str | None) -> bool:
        if parent is None or key is None:
            return False
        return bool(_IMAGE_KEY_RE.match(key)) or (id(parent) in split_entries and key in _EDITED_KEYS)

    shared: dict[int, _SharedAnchor] = {}
    for node, _, parent, key, _, _, item_of, _ in keypaths.walk(root):
        name = anchors.get(id(node))
        if name is not None and id(node) not in shared and not holds_an_image(parent, key):
            line = use_line(node, parent, key, item_of, name, text, base)
            shared[id(node)] = _SharedAnchor(name, line)
    return shared


def _shared_anchor_facts(entry: _Entry, shared: dict[int, _SharedAnchor]) -> dict[str, Any]:
    """`shared_anchor`: the anchor of a value the rewrite replaces, or of a mapping merged in that
    gives it (`shared_anchor_keys`: the split keys it gives), that is also used where no image is
    expected, else that of the whole split entry; `shared_anchor_line`: the line of that use."""
    node = next((node for node in (*entry.edited, entry.node) if id(node) in shared), None)
    if node is None:
        return {}
    anchor = shared[id(node)]
    facts: dict[str, Any] = {"shared_anchor": anchor.name, "shared_anchor_line": anchor.line}
    given = [key for key, (_, through) in entry.keys.items()
             if key in _EDITED_KEYS and any(mapping is node for mapping in through)]
    return (facts | {"shared_anchor_keys": given}) if given else facts


def _global_registry_reason(root: Node, text: str, base: int) -> str | None:
    """Why no split entry of the document can move alone when it sets `global.imageRegistry`: charts
    built on Bitnami's common library pull every split entry from that registry, not from the entry's
    own `registry` (Helm's `default`: the global wins when not empty)."""
    settings = effective_get(root, "global")
    node = None if settings is None else effective_get(settings, "imageRegistry")
    registry = scalar_text(node)
    if not registry or node is None:
        return None
    line = line_at(text, base + node.start_mark.index)
    return (f"global.imageRegistry ({registry}, line {line}) is set, and charts that read it (Bitnami's) pull this "
            "image from there, not from the entry's own registry: move it by hand, or empty global.imageRegistry "
            "first")


def helm_number_text(written: str) -> str | None:
    """How a chart's template prints a value written as a YAML number: Helm's values reach the templates as
    float64 (through JSON), which Go prints in its shortest form, with an exponent from 1e+06 on (`1.10` is
    `1.1`, `20240101` is `2.0240101e+07`). None when it is no number Python reads."""
    plain = written.replace("_", "")
    try:
        number = float(int(plain, 8)) if _OCTAL_RE.fullmatch(plain) else float(int(plain, 0))
    except ValueError:
        try:
            number = float(plain)
        except ValueError:
            return None
    return _go_shortest(number)


def _go_shortest(number: float) -> str:
    """Go's `%v` of a float64: the shortest digits that read back as it, as `%e` when the exponent is below
    -4 or from 6 on, else as `%f`."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    _, digits_tuple, exponent = decimal.Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_tuple)).rstrip("0") or "0"
    point = len(digits_tuple) + exponent  # the decimal point after this many digits
    minus = "-" if number < 0 else ""
    if digits == "0":
        return minus + "0"
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
    return minus + whole + ("." + fraction if fraction else "")


def _number_tag_reason(tag: Node | None) -> str | None:
    """Why a tag written as a YAML number cannot be read as written, when the chart prints it otherwise."""
    if not isinstance(tag, ScalarNode) or tag.tag != NUMBER_TAG or tag.style:
        return None
    printed = helm_number_text(str(tag.value))
    if printed is None or printed == tag.value:
        return None
    return (f"the tag {tag.value} is a YAML number, which Helm prints as {printed}: the chart pulls that tag; "
            f'quote it (tag: "{tag.value}") to keep it as written')


def _split_reference(entry: _Entry, text: str, base: int, context: FileContext,
                     shared: dict[int, _SharedAnchor]) -> Found | None:
    mapping = entry.node
    assert isinstance(mapping, MappingNode)
    repository_node, _ = entry.keys["repository"]
    repository = scalar_text(repository_node)
    if not repository or repository_node is None:
        return None
    parts = {key: _part(node, text, base) for key, (node, _) in entry.keys.items()}
    values = {key: part["value"] if part else "" for key, part in parts.items()}
    raw = _compose(values["registry"], values["repository"], values["tag"], values["digest"])
    at = found_at(repository_node, text, base)
    edit: dict[str, Any] = {"helm": {**parts, "indent": mapping.value[0][0].start_mark.column,
                                     "flow": bool(mapping.flow_style),
                                     "merged": [key for key, (_, through) in entry.keys.items() if through],
                                     "image_key_start": base + entry.key.start_mark.index}}
    edit.update(_shared_anchor_facts(entry, shared))
    if any(keeps_final_newline(node) for node, _ in entry.keys.values()):
        return Found(offset=at.offset, raw=raw, span=at.region, edit=edit, unresolved=BLOCK_SCALAR_NEWLINE)
    number_tag = _number_tag_reason(entry.keys["tag"][0])
    if number_tag is not None:
        return Found(offset=at.offset, raw=raw, span=at.region, edit=edit, unresolved=number_tag)
    if values["tag"] or values["digest"]:
        return Found(offset=at.offset, raw=raw, span=at.region, edit=edit)
    chart = _nearest_chart(context)
    if chart is None:
        why = "no tag, and no Chart.yaml here: the chart installed from elsewhere picks the tag"
        return Found(offset=at.offset, raw=raw, span=at.region, edit=edit, unresolved=why)
    chart_path, app_version = chart
    if app_version is None:
        why = "no tag, and no appVersion in the chart's Chart.yaml to default to"
        return Found(offset=at.offset, raw=raw, span=at.region, edit=edit, unresolved=why)
    edit["helm"]["app_version"] = {"path": chart_path, "value": app_version}
    return Found(
        offset=at.offset,
        raw=raw,
        span=at.region,
        resolve_as=_compose(values["registry"], values["repository"], app_version, ""),
        note=f'tag from Chart.yaml appVersion "{app_version}"',
        edit=edit,
    )


def extract_values(text: str, rule: Rule, context: FileContext) -> Extraction:
    result = Extraction()
    for base, root in documents(text, rule.document_contains):
        try:
            entries = [_entry(key, value) for key, value in _image_entries(root, set(), set())]
        except RecursionError:
            raise ExtractError("not parseable: YAML nested too deeply") from None
        shared = _shared_anchors(root, entries, text, base)
        overridden = _global_registry_reason(root, text, base)
        for entry in entries:
            value = entry.node
            if isinstance(value, MappingNode):
                found = _split_reference(entry, text, base, context, shared)
                if found is not None:
                    result.found.append(found if overridden is None
                                        else dataclasses.replace(found, unresolved=overridden))
            elif isinstance(value, ScalarNode) and scalar_text(value):
                result.found.append(found_at(value, text, base, **_shared_anchor_facts(entry, shared)))
    return result


# --- templates --------------------------------------------------------------

def _quoted_length(value: str) -> int | None:
    """Length of the text inside a quoted value, skipping quotes inside `{{ }}`; None when unclosed."""
    quote = value[0]
    i = 1
    while i < len(value):
        if value.startswith("{{", i):
            close = value.find("}}", i + 2)
            if close == -1:
                return None
            i = close + 2
        elif value[i] == "\\" and quote == '"':
            i += 2
        elif value[i] == quote:
            return i - 1
        else:
            i += 1
    return None


def _template_value(value: str) -> tuple[int, str, str] | None:
    """(offset in `value`, reference text, quote style) of an `image:` line's value."""
    if value[0] in "\"'":
        length = _quoted_length(value)
        if length is None:
            return None
        return 1, value[1 : 1 + length], value[0]
    if value[0] in "|>&*!":
        return None  # block scalars, anchors, aliases, tags: not a one-line value
    end = _PLAIN_END_RE.search(value)
    plain = value[: end.start()] if end else value
    return 0, plain, ""


def extract_template(text: str, rule: Rule, context: FileContext) -> Extraction:
    result = Extraction()
    for match in _TEMPLATE_IMAGE_RE.finditer(text):
        parsed = _template_value(match.group("value"))
        if parsed is None or not parsed[1]:
            continue
        shift, raw, style = parsed
        offset = match.start("value") + shift
        exact = not (style == '"' and "\\" in raw)  # an escape: the text is not the value as written
        result.found.append(
            Found(offset=offset, raw=raw, span=(offset, offset + len(raw)), edit={"style": style, "exact": exact})
        )
    return result
