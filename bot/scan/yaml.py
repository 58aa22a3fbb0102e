"""The generic YAML extractor: image values at the key paths a rule lists."""
from __future__ import annotations

import dataclasses
import functools
import posixpath
import re

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot import imageref
from bot.rules import Rule
from bot.scan import keypaths
from bot.scan.base import ExtractError, Extraction, FileContext
from bot.scan.files import inside
from bot.scan.model import Found
from bot.scan.yamldocs import (anchor_name, content_start, documents, effective_get, is_merge_key, mapping_get,
                                 merged_get, scalar_text, value_offset)


def _document_selected(root: Node, rule: Rule) -> bool:
    if rule.document_keys and not isinstance(root, MappingNode):
        return False
    if any(mapping_get(root, key) is None for key in rule.document_keys):
        return False
    for key, pattern in rule.document_match:
        value = scalar_text(mapping_get(root, key))
        if value is None or not pattern.match(value):
            return False
    return True


def found_at(node: ScalarNode, text: str, base: int, *, prefix: str = "", **edit: object) -> Found:
    """A Found for a string scalar, positioned after `prefix` (e.g. `docker://`)."""
    value_start, scalar_span, exact = value_offset(node, text, base)
    raw = node.value[len(prefix):]
    if node.style in ("|", ">"):
        raw = raw.rstrip("\n")
    if exact:
        offset = value_start + len(prefix)
        span = (offset, offset + len(raw))
    else:
        # Escapes or folding: the value is not written as-is; a rewrite re-emits the scalar.
        offset, span = value_start, scalar_span
    suffix = node.value[len(prefix) + len(raw):]  # the line ends a block scalar's value keeps
    return Found(
        offset=offset,
        raw=raw,
        span=span,
        edit={"style": node.style or "", "scalar": scalar_span, "exact": exact, "prefix": prefix, "suffix": suffix,
              **edit},
    )


def _paths(rule: Rule) -> list[tuple[str, str, str]]:
    """(key path, prefix, role) for everything the rule asks for. `not_images` come first: where
    several paths reach a value, the first says what it is there."""
    paths = [(p, "", "not-image") for p in rule.not_images]
    paths += [(p, "", "image") for p in rule.images]
    paths += [(p, prefix, "image") for prefix, p in rule.prefixed_images]
    paths += [(p, "", "service") for p in rule.services]
    paths += [(p, "", "build") for p in rule.builds]
    return paths


# Where a document gives variables values: `variables:` mappings, and `parallel: matrix:` entries,
# which run the job once for each value they list. A service's own `variables:` are its container's
# environment, not the job's variables its name is read with: they come first, to be left out.
_VARIABLE_PATHS = ("**.services[].variables.*", "**.variables.*", "**.parallel.matrix[].*")
_SERVICE, _MATRIX = 0, 2


@dataclasses.dataclass(frozen=True)
class _Place:
    """One place a document holds an image value: what the rule's paths make it there (the
    first of them, `anchor_holders` aside), whether an `anchor_holders` key holds it, the
    mapping that holds it as a value, for a list item, the list and its index there, the
    `!reference` it stands there through, if any (naming it, or a node holding it), and the key it
    is held under there."""

    role: str | None
    held: bool
    parent: MappingNode | None
    item_of: tuple[SequenceNode, int] | None = None
    via: SequenceNode | None = None
    key: str | None = None

    @property
    def is_service_item(self) -> bool:
        return self.role == "service" and self.parent is None

    def names_by_reference(self, node: Node) -> bool:
        """Whether this place of a service holds a `!reference` naming `node`, not `node` itself
        (written there, an alias of it, merged in, or in a value a `!reference` names)."""
        if self.via is None:
            return False
        if self.item_of is not None:
            sequence, index = self.item_of
            return sequence.value[index] is not node
        return self.parent is not None and effective_get(self.parent, "name") is not node


def _places(root: Node, hits: list[keypaths.Hit], watched: set[int], rule: Rule) -> dict[int, list[_Place]]:
    """Every place each hit's node is held (by node id), in document order: where it is written,
    then, for a `watched` node (anchored, a service `name:`, or any, in a document with `!reference`s),
    each alias of it, each mapping that merges the mapping holding it, and each `!reference` naming it."""
    paths = _paths(rule) + [(f"{p}.**", "", "holder") for p in rule.anchor_holders]
    if rule.services:  # GitLab: which variables the value is given to, for services of other files
        paths += [(p, "", "service variable" if i == _SERVICE else "variable") for i, p in enumerate(_VARIABLE_PATHS)]
    roles = [role for _, _, role in paths]
    uses = {id(hit.node): [keypaths.Use((hit.pattern,), hit.parent)] for hit in hits}
    if watched:
        uses |= keypaths.uses(root, [p for p, _, _ in paths], watched)
    return {node: [_place(use, roles) for use in node_uses] for node, node_uses in uses.items()}


# Roles that say where a value is held, not what it is there.
_VARIABLE_ROLES = ("service variable", "variable")
_HOLDING_ROLES = ("holder", *_VARIABLE_ROLES)


def _place(use: keypaths.Use, roles: list[str]) -> _Place:
    role = next((roles[p] for p in use.patterns if roles[p] not in _HOLDING_ROLES), None)
    return _Place(role, any(roles[p] == "holder" for p in use.patterns), use.parent, use.item_of, use.via, use.key)


def _unexpected_place(places: list[_Place]) -> _Place | None:
    """The first place that holds the value where no image is expected (an annotation, a label, a
    key), if any: moving it would change that value too. The rule's `anchor_holders` (keys the tool
    never reads as images) and everything under them do not count."""
    return next((place for place in places if not place.held and place.role not in ("image", "service")), None)


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _reference_line(reference: SequenceNode, text: str, base: int) -> int:
    return line_at(text, base + reference.start_mark.index)


def use_line(node: Node, parent: MappingNode | None, key: str | None, item_of: tuple[SequenceNode, int] | None,
             anchor: str, text: str, base: int) -> int | None:
    """The line of a place `keypaths.walk` gives for an anchored node: that of the key holding it (for a
    key a mapping merged in brings, that of the merge key of the mapping it counts for), or of its list
    item. (An alias has no marks of its own: it is the anchored node.)"""
    if parent is not None:
        holding = next((k for k, _ in parent.value if k.value == key), None)
        if holding is None:  # a key a mapping merged in brings
            holding = next((k for k, _ in parent.value if is_merge_key(k)), None)
        return None if holding is None else line_at(text, base + holding.start_mark.index)
    if item_of is not None:
        return _item_line(*item_of, node, anchor, text, base)
    return None


def _item_line(sequence: SequenceNode, index: int, node: Node, anchor: str, text: str, base: int) -> int:
    """The line of a list item: where it is written, or for an alias, that of the first `*anchor` after
    the items written before it. (An anchor comes before its aliases: an item that starts before the
    end of the last item written before it is an alias.)"""
    after = sequence.start_mark.index
    for item in sequence.value[:index]:
        if item.start_mark.index >= after:
            after = item.end_mark.index
    if node.start_mark.index >= after:
        return line_at(text, base + node.start_mark.index)
    alias = _aliases_re([anchor]).search(text, base + after, base + sequence.end_mark.index)
    return line_at(text, alias.start() if alias else base + after)


def _flow_list_items(root: Node) -> set[int]:
    """The ids of the items written in a flow list (`[a, b]`, on one line or over several), not
    those only aliased there (`[*db]`). A merge key's list (`<<: [*a, *b]`) is one too: the walk
    gives the mappings it merges, not the list."""
    nodes = [node for node, *_ in keypaths.walk(root)]
    lists = [node for node in nodes if isinstance(node, SequenceNode)]
    lists += [value for node in nodes if isinstance(node, MappingNode) for key, value in node.value
              if is_merge_key(key) and isinstance(value, SequenceNode)]
    return {id(item) for node in lists if node.flow_style
            for item in node.value if item.start_mark.index > node.start_mark.index}


# A registry port in an image name: gitlab-runner leaves it out of a service's host names.
_REGISTRY_PORT_RE = re.compile(r":[0-9]+(?=/)")
# A host name the Kubernetes executor takes as a service alias: a lowercase RFC 1123 subdomain.
_HOST_NAME_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_HOST_NAME_MAX = 253


def gitlab_host_names(raw: str) -> list[str]:
    """Host names gitlab-runner derives for a service from its image name, as written: the name
    without tag, digest or registry port (`registry.example.com:5000/group/postgres:11` gives
    `registry.example.com/group/postgres`), with `/` as `__`, then with `/` as `-`."""
    name = _REGISTRY_PORT_RE.sub("", imageref.written_name(raw) or raw, count=1)
    return list(dict.fromkeys([name.replace("/", "__"), name.replace("/", "-")]))


def is_alias(name: str) -> bool:
    """Whether a host name can be a service `alias`: the Kubernetes executor fails a job whose
    alias is not a lowercase RFC 1123 host name (so never one with `_`, like the `__` names)."""
    return len(name) <= _HOST_NAME_MAX and _HOST_NAME_RE.fullmatch(name) is not None


def _service_facts(node: ScalarNode, raw: str, places: list[_Place], anchor: str | None, text: str, base: int,
                   flow_items: set[int]) -> dict[str, object]:
    """What a rewrite needs to keep a GitLab service's host names: those that can be an `alias`,
    and where it goes. A plain string written as an item becomes a mapping with the `alias`
    (anchored, with every alias of it). Written elsewhere (a variable, a hidden key, a `name:`),
    it stays a string: a `name:` gets the `alias` in each mapping that holds it (its own or
    through a merge key), and an alias of it used as an item (`*db`) becomes `{name: *db, alias: ...}`."""
    host_names = gitlab_host_names(raw)
    facts: dict[str, object] = {"service": True, "host_names": host_names,
                                "aliases": [name for name in host_names if is_alias(name)]}
    through = next((place.via for place in places if place.role == "service" and place.names_by_reference(node)),
                   None)
    if through is not None:  # the rewrite does not make a `name:`/`alias:` mapping of a reference
        return {**facts, "reference_service": _reference_line(through, text, base)}
    if places[0].is_service_item:
        if not all(place.is_service_item for place in places):
            return {**facts, "mixed_service_anchor": anchor}
        if keeps_final_newline(node):  # a `name:` cannot hold its value on one line
            return {**facts, "block_item": True}
        facts |= {"service_item": True, "flow": id(node) in flow_items, "item_start": base + node.start_mark.index,
                  "anchored": anchor is not None}
        return facts | _lost_host_name(host_names, text, [])
    parents = {id(place.parent): place.parent for place in places if place.role == "service"
               and place.parent is not None and effective_get(place.parent, "name") is node}
    in_image = next((place for place in places if place.role == "service"
                     and _is_image_mapping(place.parent, places)), None)
    if in_image is not None and in_image.via is not None:  # GitLab takes no `alias:` in an image
        return {**facts, "reference_service": _reference_line(in_image.via, text, base)}
    if in_image is not None:  # only an alias of the mapping puts it in two places
        return {**facts, "image_mapping_anchor": anchor_name(in_image.parent, text, base)}
    mappings = [_mapping_facts(parent, node, text, base) for parent in parents.values()]
    items = [_aliased_item(place.item_of, text, base) for place in places if place.is_service_item]
    if any(item is None or item["token"] != f"*{anchor}" for item in items):
        return {**facts, "mixed_service_anchor": anchor}
    kept = [alias[:2] for m in mappings if (alias := m.get("alias") or m.get("merged_alias"))]
    return facts | {"mappings": mappings, "aliased_items": items} | _lost_host_name(host_names, text, kept)


def _is_image_mapping(mapping: MappingNode | None, places: list[_Place]) -> bool:
    """Whether the mapping holding a service's name is also where the name is an image (`image: {name: ...}`),
    or merged into one (`image: {<<: *db}`): an `alias:` it gets would be the image's too."""
    return mapping is not None and any(place.role == "image" and place.parent is not None
                                       and _name_holder(place.parent) is mapping for place in places)


def _name_holder(mapping: MappingNode) -> MappingNode:
    """The mapping that holds a mapping's `name:`: itself, or one it merges."""
    _, through = merged_get(mapping, "name")
    return through[-1] if through else mapping


def _lost_host_name(host_names: list[str], text: str, kept: list[tuple[int, int]]) -> dict[str, str]:
    """The first host name of the service that no alias can keep but the file mentions (jobs may
    reach the service by it), outside the `kept` spans (aliases the service has already)."""
    for name in host_names:
        if is_alias(name):
            continue
        for mention in re.finditer(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text):
            if not any(start <= mention.start() < end for start, end in kept):
                return {"lost_host_name": name}
    return {}


# After a key: the colon, then spaces, line ends and comments up to the value.
_AFTER_KEY_RE = re.compile(r"[ \t]*:(?:\s|#.*)*")
# Between a list's start or an item and the next item: indicators, spaces, line ends, comments.
_BETWEEN_ITEMS_RE = re.compile(r"(?:[\s,\[-]|#.*)*")
# An alias `*name`: an anchor name ends at a space or a flow indicator.
_ALIAS_RE = re.compile(r"\*[^\s,\[\]{}]+")


def _aliased_item(item_of: tuple[SequenceNode, int] | None, text: str, base: int) -> dict[str, object] | None:
    """Where the alias an item of a list is written as stands (`- *db`, `[*db]`), and how the
    list is written; None if the item is not an alias there."""
    if item_of is None:
        return None
    sequence, index = item_of
    cursor = content_start(sequence, text, base)
    for position, item in enumerate(sequence.value[: index + 1]):
        written_here = base + item.start_mark.index >= cursor  # an alias names a node written before it
        cursor = _BETWEEN_ITEMS_RE.match(text, cursor).end()  # type: ignore[union-attr]
        alias = None if written_here else _ALIAS_RE.match(text, cursor)
        if position == index:
            return None if alias is None else {"span": alias.span(), "token": alias.group(),
                                               "flow": bool(sequence.flow_style)}
        cursor = base + item.end_mark.index if alias is None else alias.end()
    return None


def _mapping_facts(parent: MappingNode, node: ScalarNode, text: str, base: int) -> dict[str, object]:
    """Where a service mapping gets its `alias` (after `name:`, or after the merge key that brings
    the name in), how the mapping is written, and its `alias`: its own, or one a merge key gives it."""
    key, value = next(((k, v) for k, v in parent.value if v is node), None) or _merge_entry(parent)
    facts: dict[str, object] = {"flow": bool(parent.flow_style), "indent": key.start_mark.column,
                                "value_end": _value_end(key, value, text, base)}
    alias = mapping_get(parent, "alias")
    merged_alias = effective_get(parent, "alias") if alias is None else None
    if isinstance(alias, ScalarNode):
        facts["alias"] = _scalar_facts(alias, base)
    elif isinstance(merged_alias, ScalarNode):
        facts["merged_alias"] = _scalar_facts(merged_alias, base)
    return facts


def _merge_entry(mapping: MappingNode) -> tuple[Node, Node]:
    return next((k, v) for k, v in mapping.value if is_merge_key(k))


def _value_end(key: Node, value: Node, text: str, base: int) -> int:
    """Where a key's value ends in the text: an alias of a node (`*pg`) ends where its name does."""
    after_key = _AFTER_KEY_RE.match(text, base + key.end_mark.index)
    alias = _ALIAS_RE.match(text, after_key.end()) if after_key else None
    return alias.end() if alias else base + value.end_mark.index


def _scalar_facts(node: ScalarNode, base: int) -> tuple[int, int, str, str]:
    return base + node.start_mark.index, base + node.end_mark.index, node.value, node.style or ""


def _names_held_elsewhere(images: list[tuple[keypaths.Hit, str]], paths: list[tuple[str, str, str]], text: str,
                          base: int) -> set[int]:
    """The values written as a `name:` (by node id) that other places may hold: a service's (other
    mappings may merge the mapping holding it), and an image's whose mapping is anchored (`services:
    [*py]` may use it)."""
    return {id(hit.node) for hit, _ in images if hit.parent is not None and (
        paths[hit.pattern][2] == "service" or anchor_name(hit.parent, text, base) is not None)}


@dataclasses.dataclass
class _Document:
    """One YAML document being read: what the facts of its services are found from. `lone`: the images and
    services named by a variable alone (`$IMG`, `${IMG}`), each with the variable (by node id). `path`: the
    file's, relative to the tree's root."""

    root: Node
    text: str
    base: int
    places: dict[int, list[_Place]]
    anchors: dict[int, str]
    lone: dict[int, str] = dataclasses.field(default_factory=dict)
    path: str = ""

    @functools.cached_property
    def flow_items(self) -> set[int]:
        """Found only for a document with services."""
        return _flow_list_items(self.root)

    def service_facts(self, node: ScalarNode, raw: str) -> dict[str, object]:
        """The facts of the service `node` holds, named `raw` (its value, or the value a variable in it gives)."""
        return _service_facts(node, raw, self.places[id(node)], self.anchors.get(id(node)), self.text, self.base,
                              self.flow_items)

    @functools.cached_property
    def variables(self) -> _Variables:
        return _variables(self.root)

    def variables_holding(self, node: Node) -> set[str]:
        """The variables the document gives the value `node` (of a job or the file, not a service's own), also
        as an option equal to the variable's value."""
        held = {id(node), *(id(choice) for choice in self._equal_choices(node))}
        return {name for name, values in self.variables.values.items() if held & values.keys()}

    def equal_options(self, node: ScalarNode) -> list[dict[str, object]]:
        """Where the variable value `node` is written again among its `options:`, or an option `node` is its
        variable's value and the other options listing it (GitLab requires the value to be one of the
        options: they move together)."""
        return [scalar_part(choice, self.text, self.base) for choice in self._equal_choices(node)]

    def _equal_choices(self, node: Node) -> list[ScalarNode]:
        if not isinstance(node, ScalarNode):
            return []
        choices = {id(choice): choice for choice in self.variables.choices.get(id(node), ())}
        return [choice for choice in choices.values()
                if isinstance(choice, ScalarNode) and choice is not node and choice.value == node.value]

    def variable_service(self, node: ScalarNode, service: Found, variable: str, alone: bool,
                         raw: str) -> dict[str, object]:
        """The facts of a service named by `variable` (its whole name when `alone`), which gives it the
        image written `raw`: those that keep its host names, or why they cannot be kept."""
        use: dict[str, object] = {"raw": service.raw, "line": line_at(self.text, service.offset), "variable": variable}
        values = self.variables.values[variable].values()
        if len(values) > 1:
            return {**use, "redefined": sorted({line_at(self.text, self.base + v.start_mark.index) for v in values})}
        if not alone:
            return {**use, "not_alone": True}
        start, end = service.edit["scalar"]
        return {**use, "scalar": service.edit["scalar"], "token": self.text[start:end], **self.service_facts(node, raw)}

    def line(self, node: Node) -> int:
        return line_at(self.text, self.base + node.start_mark.index)

    def variable_value(self, node: ScalarNode, name: str) -> ScalarNode | str | None:
        """Where an image or service named by the variable `name` alone (`node`, `$IMG`) is written for a
        rewrite to move it: the one value the file gives the variable, in its own `variables:` or in those of
        the job the image is in, a valid image reference that nothing but images and services names the
        variable for. Or why it cannot move there; None when the file gives the variable no value."""
        given = self.variables.values.get(name)
        if not given:
            return None
        include = next((key for key, _ in self._top_level if scalar_text(key) == "include"), None)
        if include is not None:
            return (f"the file includes other files (line {self.line(include)}), which may give {name} a value "
                    "or use it")
        why = self._file_problem(name)
        if why is not None:
            return why
        lines = sorted({self.line(value) for value in given.values()})
        matrix = next((value for key, value in given.items() if key in self.variables.in_matrix), None)
        if matrix is not None:
            return (f"{name} is given its values at line {self.line(matrix)} by parallel: matrix:, which runs the "
                    "job once for each value it lists")
        if len(given) > 1:
            return f"{name} is given a value at lines {', '.join(map(str, lines))}"
        value = next(iter(given.values()))
        where = f"{name} is given its value at line {lines[0]}"
        if id(value) in self.variables.not_expanded:
            return f"{where} with expand: false"
        why = self._scope_problem(node, value, where) or self._pipeline_problem(name, value)
        if why is not None or id(value) in self.places:  # an image itself (an alias of it is one): found there
            return why or value
        return self._other_use(name) or _value_problem(value, where) or self._anchor_use(value, where) or value

    @property
    def _top_level(self) -> list[tuple[Node, Node]]:
        """The keys and values of the document as written, if it is a mapping."""
        return self.root.value if isinstance(self.root, MappingNode) else []

    @functools.cached_property
    def _written_values(self) -> dict[int, tuple[Node, Node] | None]:
        """The values given in the file's `variables:` (None) or a job's own (its key and mapping), by node id:
        where each is first given."""
        owners: dict[int, tuple[Node, Node] | None] = {}
        for key, job in self._top_level:
            is_global = scalar_text(key) == "variables"
            variables = job if is_global else mapping_get(job, "variables")
            for _, entry in variables.value if isinstance(variables, MappingNode) else ():
                for value in _given_values(self.root, entry, in_matrix=False):
                    owners.setdefault(id(value), None if is_global else (key, job))  # an alias comes later
        return owners

    def _scope_problem(self, node: ScalarNode, value: Node, where: str) -> str | None:
        """Why the image `node` may not read the variable's `value` (written elsewhere than the file's
        `variables:` or the job's own), or None."""
        if id(value) not in self._written_values:
            return f"{where}, not in the file's variables: nor in a job's own"
        job = self._written_values[id(value)]
        if job is None:
            return None
        key, mapping = job
        where += f" in the variables: of {key.value}"
        if self.outside_job(node, value):
            return f"{where}, not of the job this image is in"
        outside = self._used_outside(key, mapping)
        return None if outside is None else f"{where}, whose content is also used outside it (line {outside})"

    def outside_job(self, node: Node, value: Node) -> bool:
        """Whether the image `node` is written outside the job whose own `variables:` give `value`."""
        job = self._written_values.get(id(value))
        return job is not None and not job[0].start_mark.index <= node.start_mark.index < job[1].end_mark.index

    def _used_outside(self, key: Node, job: Node) -> int | None:
        """The line where something written in the job is used outside it (an alias of an anchor in it, a
        `!reference` naming it), if any."""
        start, end = self.base + key.start_mark.index, self.base + job.end_mark.index
        names = _ANCHOR_RE.findall(self.text, start, end)
        uses = [_aliases_re(names).pattern] if names else []
        uses.append(rf"!reference\s*\[\s*[\"']?{re.escape(str(key.value))}[\"']?\s*[,\]]")
        pattern = re.compile("|".join(uses))
        document_end = self.base + self.root.end_mark.index
        use = pattern.search(self.text, self.base, start) or pattern.search(self.text, end, document_end)
        return None if use is None else line_at(self.text, use.start())

    def _file_problem(self, name: str) -> str | None:
        """Why what the file says of the variable `name` may not be all a pipeline does with it, or None: another
        file may include this one, or another YAML document of it (a `spec:` header) may use it."""
        if self.path not in _PIPELINE_FILES:
            return (f"{self.path} is not a project's top .gitlab-ci.yml: a file including it may give {name} a "
                    "value or use it")
        start = self.base + self.root.start_mark.index
        other = next((base + root.start_mark.index for base, root in documents(self.text)
                      if base + root.start_mark.index != start), None)
        if other is None:
            return None
        return f"the file has another YAML document at line {line_at(self.text, other)}, which may use {name}"

    def _pipeline_problem(self, name: str, value: Node) -> str | None:
        """Why jobs may read the variable `name` other than where the file gives it `value`, or None: a trigger job
        passes it to another pipeline, or a job does not inherit it from the file's `variables:`."""
        is_global = self._written_values.get(id(value)) is None
        for key, job in self._top_level:
            if scalar_text(key) in _GLOBAL_KEYWORDS:
                continue
            if mapping_get(job, "trigger") is not None:
                return (f"the job {key.value} at line {self.line(key)} triggers another pipeline, and passes it "
                        f"{name}, which may use it")
            inherited = mapping_get(mapping_get(job, "inherit"), "variables")
            if is_global and inherited is not None and not _inherits(inherited, name):
                return (f"the job {key.value} does not inherit {name} from the file's variables: (inherit: at line "
                        f"{self.line(inherited)})")
        return None

    def _other_use(self, name: str) -> str | None:
        """Where the document names the variable other than as an image or a service's whole name, if anywhere:
        `$IMG`, `${IMG}`, a Windows shell's `%IMG%` or `$env:IMG`, or the name as a word (`printenv IMG`)."""
        use = re.compile(rf"(?<!\w){name}(?!\w)|(?i:%{name}%|\$env:{name}(?!\w))")
        lines = [self.line(node) for node in self._scalars
                 if self.lone.get(id(node)) != name and (node.value != name or id(node) in self._referenced)
                 and use.search(str(node.value))]
        return f"the variable {name} is also used at line {min(lines)}" if lines else None

    @functools.cached_property
    def _scalars(self) -> list[ScalarNode]:
        """The document's scalars (keys too), each once."""
        scalars = {id(node): node for node, *_ in keypaths.walk(self.root) if isinstance(node, ScalarNode)}
        return list(scalars.values())

    @functools.cached_property
    def _referenced(self) -> set[int]:
        """The scalars naming what a `!reference` copies (`!reference [variables, IMG]`), by node id."""
        return {id(item) for node, *_ in keypaths.walk(self.root)
                if isinstance(node, SequenceNode) and node.tag == keypaths.REFERENCE_TAG for item in node.value}

    def _anchor_use(self, value: Node, where: str) -> str | None:
        """Why a value anchored and used elsewhere by an alias cannot move through the variable, or None. (An
        alias of it where an image is expected makes it an image itself, found there.)"""
        anchor = anchor_name(value, self.text, self.base)
        alias = None if anchor is None else _aliases_re([anchor]).search(
            self.text, self.base + value.end_mark.index, self.base + self.root.end_mark.index)
        if alias is None:
            return None
        return f"{where} as the YAML anchor &{anchor}, also used at line {line_at(self.text, alias.start())}"


# The files GitLab runs a project's pipeline from; any other it reads only as included by one.
_PIPELINE_FILES = frozenset({".gitlab-ci.yml", ".gitlab-ci.yaml"})

# GitLab's top-level keys that are not jobs.
_GLOBAL_KEYWORDS = frozenset({"default", "include", "stages", "variables", "workflow"})


def _inherits(inherited: Node, name: str) -> bool:
    """Whether a job's `inherit: variables:` lets it read the variable `name` from the file's `variables:`."""
    if isinstance(inherited, SequenceNode):
        return any(scalar_text(item) == name for item in inherited.value)
    text = scalar_text(inherited)
    return text is not None and text.lower() not in _FALSE


# An anchor's name where a node is written: `&name`.
_ANCHOR_RE = re.compile(r"&([^\s,\[\]{}]+)")


def _aliases_re(names: list[str]) -> re.Pattern[str]:
    """An alias of any of the anchors `names`: `*name`."""
    return re.compile(rf"\*(?:{'|'.join(map(re.escape, names))})(?![^\s,\[\]{{}}])")


def lone_variable(value: str) -> str | None:
    """The variable a value is, if it is one alone (`$IMG`, `${IMG}`; `$$` names none)."""
    match = _VARIABLE_RE.fullmatch(value)
    return None if match is None else match.group(1) or match.group(2)


BLOCK_SCALAR_NEWLINE = ("not a valid image reference: a block scalar keeps its final newline: write the value on "
                        "the key's line, or use `|-`/`>-`")


def keeps_final_newline(node: Node | None) -> bool:
    """A block scalar written `|` or `>` (not `|-`, `>-`): its value ends in a newline, which no image name has."""
    return isinstance(node, ScalarNode) and node.style in ("|", ">") and node.value.endswith("\n")


def _value_problem(value: Node, where: str) -> str | None:
    """Why a variable's value cannot name an image, or None."""
    text = scalar_text(value)
    if text is None:
        return f"{where}, which is not a string"
    if "$" in text:
        return f"{where} with a variable in it: {text}"
    if keeps_final_newline(value):
        return f"{where}, which is {BLOCK_SCALAR_NEWLINE}"
    try:
        imageref.parse(text)
    except imageref.InvalidReference as exc:
        return f"{where}, which is not a valid image reference: {exc}"
    return None


# A variable in a value: `$NAME` or `${NAME}`; `$$` is a `$` written out (`$$NAME` names no variable).
_VARIABLE_RE = re.compile(r"\$\$|\$(?:\{(\w+)\}|(\w+))")


def mentioned_variables(value: str) -> set[str]:
    """The variables a value names."""
    return {braced or plain for braced, plain in _VARIABLE_RE.findall(value)} - {""}


# A `$` written out, with the name after it that it keeps from being read as a variable.
_LITERAL_DOLLAR_RE = re.compile(r"\$\$(?:\{\w+\}|\w+)?")


def _literal_dollar_reason(value: str) -> str | None:
    """Why a value with a `$$` (a `$` written out, passed on as `$`) names no image:
    the first variable it names after all, or else the literal `$`; None without `$$`."""
    literal = _LITERAL_DOLLAR_RE.search(value)
    if literal is None:
        return None
    variable = next((m.group() for m in _VARIABLE_RE.finditer(value) if m.group() != "$$"), None)
    if variable is not None:
        return f"contains a variable: {variable}"
    return f"contains a literal $ (written $$, not a variable): {literal.group()}"


@dataclasses.dataclass
class _Variables:
    """The values a document gives variables (each by name, then node id), and of those written in the
    expanded form (`NAME: {value: ..., options: [...], expand: false}`), the choices of each value and
    option (by its node id: the value and the options beside it, of every variable listing it), and the
    values not expanded (node ids): a `$` in them is a `$`, naming no variable."""

    values: dict[str, dict[int, Node]] = dataclasses.field(default_factory=dict)
    choices: dict[int, list[Node]] = dataclasses.field(default_factory=dict)
    not_expanded: set[int] = dataclasses.field(default_factory=set)
    in_matrix: set[int] = dataclasses.field(default_factory=set)


# `false` as GitLab's YAML parser reads a plain scalar (YAML 1.1 booleans).
_FALSE = ("false", "no", "off")


def _variables(root: Node) -> _Variables:
    """The variables of the document's jobs and of the file (not a service's own)."""
    variables = _Variables()
    for path, name, node in keypaths.keyed(root, _VARIABLE_PATHS):
        if name is None or path == _SERVICE:
            continue
        values = _given_values(root, node, in_matrix=path == _MATRIX)
        for value in values:
            variables.values.setdefault(name, {})[id(value)] = value
        if path == _MATRIX:
            variables.in_matrix.update(id(value) for value in values)
        if path != _MATRIX and isinstance(node, MappingNode):
            options = effective_get(node, "options")
            expand = effective_get(node, "expand")
            not_expanded = isinstance(expand, ScalarNode) and not expand.style and expand.value.lower() in _FALSE
            for value in values:
                if isinstance(options, SequenceNode):
                    choices = [value, *options.value]
                    for choice in choices:
                        variables.choices.setdefault(id(choice), []).extend(choices)
                if not_expanded:
                    variables.not_expanded.add(id(value))
    return variables


def _given_values(root: Node, node: Node, *, in_matrix: bool) -> list[Node]:
    """The values an entry gives its variable: `NAME: value` or `NAME: {value: ...}` in `variables:`,
    `NAME: value` or `NAME: [value, ...]` in a matrix (merge keys and `!reference`s followed)."""
    if in_matrix:
        listed = keypaths.referenced(root, node)
        values = listed.value if isinstance(listed, SequenceNode) else [node]
    else:
        values = [effective_get(node, "value") if isinstance(node, MappingNode) else node]
    resolved = (keypaths.referenced(root, value) for value in values if value is not None)
    return [value for value in resolved if value is not None]


def _carriers(variables: _Variables, names: set[str]) -> set[str]:
    """`names`, with every variable whose value names one of them, in turn (GitLab expands those,
    unless written with `expand: false`)."""
    carriers = set(names)
    while True:
        more = {name for name, values in variables.values.items() if name not in carriers
                and any(mentioned_variables(scalar_text(value) or "") & carriers
                        for key, value in values.items() if key not in variables.not_expanded)}
        if not more:
            return carriers
        carriers |= more


def _add_variable_services(document: _Document, found: list[tuple[ScalarNode, Found]]) -> None:
    """A GitLab service named by a variable (`name: $IMG`) that holds an image that may move: the image's
    facts get the service's, as `variable_services`, so a rewrite keeps the host names gitlab-runner
    derives from the value (the service's name stays `$IMG`)."""
    services = [(node, service) for node, service in found
                if "$" in service.raw and any(place.role == "service" for place in document.places.get(id(node), ()))]
    if not services:
        return
    for node, image in found:
        names = document.variables_holding(node)
        carriers = _carriers(document.variables, names) if names else set()
        for service_node, service in services:
            mentioned = sorted(mentioned_variables(service.raw) & carriers)
            if mentioned and not document.outside_job(service_node, node):
                variable = mentioned[0]
                alone = variable in names and service.raw in (f"${variable}", f"${{{variable}}}")
                use = document.variable_service(service_node, service, variable, alone, image.raw)
                image.edit.setdefault("variable_services", []).append(use)


def _add_variable_facts(document: _Document, node: ScalarNode, found: Found) -> None:
    """The variables the image is the value of (a service of another file may be named by them), and
    where the value and its `options:` list it again, which a rewrite changes with it."""
    given = sorted(document.variables_holding(node))
    if given:
        found.edit["variables"] = given
        options = document.equal_options(node)
        if options:
            found.edit["options"] = options


def _add_variable_images(document: _Document, uses: list[tuple[ScalarNode, Found, ScalarNode]],
                         found: list[tuple[ScalarNode, Found]], result: Extraction) -> None:
    """GitLab images and services named by a variable alone (`$IMG`) whose value can move (`uses`: each with
    its value): the value is the reference, once however many name it (not again when an alias makes it an
    image itself), and a service named by the variable keeps its host names as the value's `variable_services`."""
    by_value: dict[int, tuple[ScalarNode, list[tuple[ScalarNode, Found]]]] = {}
    for node, use, value in uses:
        by_value.setdefault(id(value), (value, []))[1].append((node, use))
    found_nodes = {id(node) for node, _ in found}
    for value, named in by_value.values():
        if id(value) not in found_nodes:
            lines = sorted({line_at(document.text, use.offset) for _, use in named})
            note = (f"value of the variable {document.lone[id(named[0][0])]}, used by the "
                    f"image{'s' if len(lines) > 1 else ''} at line{'s' if len(lines) > 1 else ''} "
                    f"{', '.join(map(str, lines))}")
            image = dataclasses.replace(found_at(value, document.text, document.base), note=note)
            _add_variable_facts(document, value, image)
            result.found.append(image)
            found.append((value, image))
        found += named


@dataclasses.dataclass
class _Builds:
    """What the document builds: the image values (by node id) that a mapping holding them builds, at any
    of their places: one with a `skip_if_sibling` key (compose `build:`), its own, one a merge key gives it,
    or one the entry it extends has (`entry_extends`); for values whose holder extends an entry that cannot
    be read, why not (by node id); the names of the `folder_merges` entries that build; and for the other
    values, the names of those entries holding them."""

    built: set[int] = dataclasses.field(default_factory=set)
    unread: dict[int, str] = dataclasses.field(default_factory=dict)
    building: list[str] = dataclasses.field(default_factory=list)
    entries: dict[int, tuple[str, ...]] = dataclasses.field(default_factory=dict)


def _builds(root: Node, hits: list[keypaths.Hit], paths: list[tuple[str, str, str]], rule: Rule,
            context: FileContext) -> _Builds:
    if not rule.skip_if_sibling or not (hits or rule.folder_merges):
        return _Builds()
    found = keypaths.uses(root, [p for p, _, _ in paths], {id(hit.node) for hit in hits}) if hits else {}
    holders_of = {node_id: [place.parent for place in places if place.patterns and place.parent is not None]
                  for node_id, places in found.items()}
    entries = _entries(root, rule)
    mappings = {id(holder): holder for holders in holders_of.values() for holder in holders}
    mappings |= {id(entry): entry for entry, _ in entries}
    building, unread = _building(root, list(mappings.values()), rule, context)
    names: dict[int, set[str]] = {}
    for entry, name in entries:
        names.setdefault(id(entry), set()).add(name)
    result = _Builds(building=sorted({name for entry, name in entries if id(entry) in building}))
    for node_id, holders in holders_of.items():
        if any(id(holder) in building for holder in holders):
            result.built.add(node_id)
            continue
        why = next((unread[id(holder)] for holder in holders if id(holder) in unread), None)
        if why is not None:
            result.unread[node_id] = why
        result.entries[node_id] = tuple(sorted({name for holder in holders for name in names.get(id(holder), ())}))
    return result


def _entries(root: Node, rule: Rule) -> list[tuple[MappingNode, str]]:
    """Each entry `rule.folder_merges` reaches, with the name it is held under there."""
    if not rule.folder_merges:
        return []
    return [(node, key) for _, key, node in keypaths.keyed(root, list(rule.folder_merges))
            if key is not None and isinstance(node, MappingNode)]


def _building(root: Node, holders: list[MappingNode], rule: Rule,
              context: FileContext) -> tuple[set[int], dict[int, str]]:
    """The `holders` (by id) that build what they name: with a `skip_if_sibling` key, or extending
    (`rule.entry_extends`, in turn) an entry that has one; and for those extending an entry that
    cannot be read, why not (by id)."""
    extends = _Extends(rule, context, root)
    building = {id(holder) for holder in holders if extends.builds(holder)}
    key = rule.entry_extends
    extending = [] if key is None else [holder for holder in holders
                                        if id(holder) not in building and effective_get(holder, key) is not None]
    if not extending:
        return building, {}
    located = {id(node): (parent, held_as) for node, _, parent, held_as, *_ in keypaths.walk(root)
               if parent is not None and isinstance(node, MappingNode)}
    unread = {}
    for holder in extending:
        container = located.get(id(holder), (None, None))[0]
        if container is None:
            continue
        entry = _Entry(holder, container, context.path, _keys_to(container, root, located))
        builds, why_not = extends.follow(entry)
        if builds:
            building.add(id(holder))
        elif why_not is not None:
            unread[id(holder)] = why_not
    return building, unread


def _keys_to(mapping: MappingNode, root: Node, located: dict[int, tuple[MappingNode, str | None]]
             ) -> tuple[str, ...] | None:
    """The keys leading from the root to a mapping, as written; None when a list item or a merge key
    is on the way."""
    keys: list[str] = []
    node: Node = mapping
    while node is not root:
        parent, key = located.get(id(node), (None, None))
        if parent is None or key is None or key == keypaths.MERGE_KEY:
            return None
        keys.append(key)
        node = parent
    return tuple(reversed(keys))


# How many files an `extends` chain is followed into: a loop ends it anyway (Compose refuses one);
# this bounds what a long chain of files costs a scan.
EXTENDS_FILES = 32


@dataclasses.dataclass(frozen=True)
class _Entry:
    """An entry an `extends` chain reaches: the mapping, the mapping holding it, the file it is in, and the
    keys leading to that mapping there (None when no key path does): where another file holds the entry named."""

    mapping: Node
    container: MappingNode
    path: str
    place: tuple[str, ...] | None


class _Extends:
    """Follows `rule.entry_extends` from an entry to the one it takes on: in the same mapping (`base`,
    `{service: base}`), or in the mapping at the same place of another file (`{file: common.yml, service:
    base}`, relative to the folder of the file naming it; each file read once, through the scan's tree)."""

    def __init__(self, rule: Rule, context: FileContext, root: Node) -> None:
        self.rule = rule
        self.context = context
        # The files read, by path: the document being scanned stands for its own file (a rewrite checks
        # its new text), the others are their first document, or why they cannot be read.
        self.roots: dict[str, Node | None | str] = {context.path: root}

    def builds(self, mapping: Node) -> bool:
        return any(effective_get(mapping, key) is not None for key in self.rule.skip_if_sibling)

    def follow(self, entry: _Entry) -> tuple[bool, str | None]:
        """Whether the entry builds what it names, through the entries it extends in turn; if not,
        why an entry the chain names was not read (None when the chain ends or loops)."""
        seen: set[int] = set()
        files = 0
        while not self.builds(entry.mapping):
            if id(entry.mapping) in seen:
                return False, None
            seen.add(id(entry.mapping))
            extended = self._extended(entry)
            if not isinstance(extended, _Entry):
                return False, extended
            if extended.path != entry.path:
                files += 1
            if files > EXTENDS_FILES:
                return False, f"extends through more than {EXTENDS_FILES} files: the rest is not read"
            entry = extended
        return True, None

    def _extended(self, entry: _Entry) -> _Entry | str | None:
        """The entry this one extends, why it cannot be read, or None when it names none."""
        assert self.rule.entry_extends is not None
        value = effective_get(entry.mapping, self.rule.entry_extends)
        if not isinstance(value, MappingNode):
            written, name = None, scalar_text(value)
        else:
            written, name = effective_get(value, "file"), scalar_text(effective_get(value, "service"))
        if name is None:
            return None
        if written is None:
            found = effective_get(entry.container, name)
            return None if found is None else dataclasses.replace(entry, mapping=found)
        file = scalar_text(written)
        if file is None or entry.place is None:
            return None
        path = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), file))
        container = self._container(path, entry.place)
        if isinstance(container, str):
            return f"extends {name} of {path}, {container}"
        found = effective_get(container, name) if isinstance(container, MappingNode) else None
        if found is None:
            return f"extends {name} of {path}, which has no such service"
        return _Entry(found, container, path, entry.place)

    def _container(self, path: str, place: tuple[str, ...]) -> Node | str | None:
        """The mapping at `place` in a file's first document, or why the file cannot be read."""
        if path not in self.roots:
            self.roots[path] = self._read(path)
        node = self.roots[path]
        if isinstance(node, str):
            return node
        for key in place:
            node = None if node is None else effective_get(node, key)
        return node

    def _read(self, path: str) -> Node | None | str:
        if inside(path) is None:
            return "which is outside the scanned root"
        text = self.context.read_text(path)
        if text is None:
            return "which cannot be read" if self.context.is_file(path) else "which is missing"
        try:
            return next((root for _, root in documents(text)), None)
        except ExtractError as exc:
            return f"which cannot be read: {exc}"


def _files_it_names(root: Node, rule: Rule) -> list[str]:
    """The files the document names where the rule's `names_files` paths reach, as written."""
    if not rule.names_files:
        return []
    return [name for hit in keypaths.select(root, list(rule.names_files)) if (name := scalar_text(hit.node))]


def extract(text: str, rule: Rule, context: FileContext) -> Extraction:
    result = Extraction()
    paths = _paths(rule)
    not_images = frozenset(i for i, (_, _, role) in enumerate(paths) if role == "not-image")
    for base, root in documents(text, rule.document_contains):
        if not _document_selected(root, rule):
            continue
        result.names_files += _files_it_names(root, rule)
        images: list[tuple[keypaths.Hit, str]] = []
        hits = list(keypaths.select(root, [p for p, _, _ in paths], skip=not_images))
        builds = _builds(root, hits, paths, rule, context)
        result.building += builds.building
        for hit in hits:
            _, prefix, role = paths[hit.pattern]
            value = scalar_text(hit.node)
            if not value or not value.startswith(prefix) or len(value) == len(prefix):
                continue
            if role == "build" or id(hit.node) in builds.built:
                # What the repository builds: other uses of that name are not references.
                result.builds.append(value)
                continue
            images.append((hit, prefix))
        anchors = {id(hit.node): name for hit, _ in images if (name := anchor_name(hit.node, text, base)) is not None}
        watched = set(anchors) | _names_held_elsewhere(images, paths, text, base)
        if keypaths.REFERENCE_TAG in text:
            watched |= {id(hit.node) for hit, _ in images}
        places = _places(root, [hit for hit, _ in images], watched, rule)
        lone = {id(hit.node): name for hit, _ in images if rule.services and (name := lone_variable(hit.node.value))}
        document = _Document(root, text, base, places, anchors, lone, context.path)
        found_here = []
        through_variables = []
        for hit, prefix in images:
            assert isinstance(hit.node, ScalarNode)
            node_places, anchor = places[id(hit.node)], anchors.get(id(hit.node))
            found = found_at(hit.node, text, base, prefix=prefix)
            found = dataclasses.replace(found, note=builds.unread.get(id(hit.node)),
                                        entries=builds.entries.get(id(hit.node), ()))
            if rule.literal_dollar and (literal := _literal_dollar_reason(found.raw)) is not None:
                found = dataclasses.replace(found, unresolved=literal)
            if any(place.role == "service" for place in node_places):
                found.edit.update(document.service_facts(hit.node, found.raw))
            # Held elsewhere only when anchored, or named by a `!reference` (a second place).
            unexpected = _unexpected_place(node_places) if anchor is not None or len(node_places) > 1 else None
            if unexpected is not None and unexpected.via is not None:
                found.edit["shared_reference"] = _reference_line(unexpected.via, text, base)
            elif unexpected is not None and anchor is not None:
                found.edit["shared_anchor"] = anchor
                found.edit["shared_anchor_line"] = use_line(hit.node, unexpected.parent, unexpected.key,
                                                            unexpected.item_of, anchor, text, base)
            # GitLab: an image a variable holds is found through an alias or a `!reference`, so in two places.
            if rule.services and len(node_places) > 1:
                _add_variable_facts(document, hit.node, found)
            value = document.variable_value(hit.node, lone[id(hit.node)]) if id(hit.node) in lone else None
            if isinstance(value, ScalarNode) and unexpected is None:
                through_variables.append((hit.node, found, value))
                continue
            if isinstance(value, str):
                found = dataclasses.replace(found, unresolved=value)
            result.found.append(found)
            found_here.append((hit.node, found))
        _add_variable_images(document, through_variables, found_here, result)
        _add_variable_services(document, found_here)
    return result


NULL_TAG = "tag:yaml.org,2002:null"


def scalar_part(node: ScalarNode, text: str, base: int) -> dict[str, object]:
    """A scalar's value and where and how it is written, for a rewrite that edits one key of
    a composed reference (Helm split keys, Kustomize `images:` entries)."""
    found = found_at(node, text, base)
    return {
        "value": "" if node.tag == NULL_TAG else str(node.value),
        "span": list(found.region),
        "scalar": list(found.edit["scalar"]),
        "style": found.edit["style"],
        "exact": found.edit["exact"],
    }
