"""The one walk over composed YAML nodes that key paths, Helm values and flow lists share."""
from __future__ import annotations

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from bot.scan import keypaths
from bot.scan.yamldocs import compose_all

TEXT = ("base: &base {registry: r.io}\n"
        "job:\n"
        "  <<: *base\n"
        "  image: *base\n"
        "  tags: !reference [.defaults, tags]\n"
        "  [k]: v\n")

# A mapping merged in (`mid`) that merges another (`base`), a list, a GitLab `!reference`.
MERGES = ("base: &base {registry: r.io}\n"
          "mid: &mid {tag: '1', <<: *base}\n"
          "job:\n"
          "  image: {<<: *mid}\n"
          "  services: [*base, pg]\n"
          "  tags: !reference [.defaults, tags]\n")
MERGES_PATHS = ["job.*.registry", "job.services[]"]


def _named(node: Node | None) -> str | None:
    """A scalar by its value, a mapping by its first key, a list by its first item."""
    if node is None:
        return None
    if isinstance(node, ScalarNode):
        return node.value
    if isinstance(node, MappingNode):
        return f"{{{node.value[0][0].value}}}"
    return f"[{_named(node.value[0])}]"


def _places(paths: list[str] | None, everywhere: bool = True) -> list[tuple[str | None, str | None, str | None]]:
    (root,) = compose_all(TEXT)
    return [(_named(node), _named(parent), key)
            for node, _, parent, key, *_ in keypaths.walk(root, paths, everywhere=everywhere)]


def test_a_walk_without_paths_takes_every_place_as_written_and_reads_an_aliased_node_once():
    assert _places(None) == [
        ("{base}", None, None), ("base", None, None), ("{registry}", "{base}", "base"),
        ("registry", None, None), ("r.io", "{registry}", "registry"),
        ("job", None, None), ("{<<}", "{base}", "job"),
        ("<<", None, None), ("{registry}", "{<<}", "<<"),  # merged in: held under `<<`
        ("image", None, None), ("{registry}", "{<<}", "image"),
        ("tags", None, None), ("[.defaults]", "{<<}", "tags"), (".defaults", None, None), ("tags", None, None),
        ("[k]", None, None), ("k", None, None), ("v", "{<<}", None),
    ]


def test_along_key_paths_a_merged_mapping_stands_where_the_one_merging_it_stands_and_its_keys_count_for_that_one():
    (root,) = compose_all(MERGES)
    places = [(_named(node), _named(parent), key, _named(holder), _named(merged_into),
               item_of and (_named(item_of[0]), item_of[1]))
              for node, _, parent, key, holder, merged_into, item_of, _ in keypaths.walk(root, MERGES_PATHS,
                                                                                     everywhere=False)]
    # {base}: the document, {image}: job, {<<}: job.image, {tag}: mid, {registry}: base.
    assert places == [
        ("{base}", None, None, None, None, None),
        ("{image}", "{base}", "job", "{base}", None, None),
        ("{<<}", "{image}", "image", "{image}", None, None),
        ("{tag}", "{image}", "image", "{image}", "{<<}", None),  # mid, merged into job.image
        ("{registry}", "{image}", "image", "{image}", "{<<}", None),  # base, through mid: into job.image too
        ("r.io", "{registry}", "registry", "{<<}", None, None),  # written in base, a key of job.image
        ("[{registry}]", "{image}", "services", "{image}", None, None),
        ("{registry}", None, None, None, None, ("[{registry}]", 0)),
        ("pg", None, None, None, None, ("[{registry}]", 1)),
        ("[.defaults]", "{image}", "tags", "{image}", None, None),  # a `!reference`: not entered
    ]


def test_select_gives_the_mapping_a_value_is_written_in_and_uses_each_mapping_it_is_a_value_of():
    (root,) = compose_all(MERGES)
    assert [(hit.pattern, _named(hit.node), _named(hit.parent)) for hit in keypaths.select(root, MERGES_PATHS)] == [
        (0, "r.io", "{registry}"), (1, "{registry}", None), (1, "pg", None)]
    r_io = root.value[0][1].value[0][1]
    assert [(use.patterns, _named(use.parent), use.item_of) for use in keypaths.uses(root, MERGES_PATHS,
                                                                                    {id(r_io)})[id(r_io)]] == [
        ((), "{registry}", None), ((), "{tag}", None), ((0,), "{<<}", None)]  # base, mid, job.image


def test_uses_take_a_reference_for_what_it_names_in_the_document_after_the_other_places():
    # A reference may come before what it names; one naming itself, or a key the document lacks, names nothing.
    (root,) = compose_all("job:\n  stage: test\n  image: !reference [.a, image]\n  tags: !reference [.missing, tags]\n"
                          ".loop: !reference [.loop]\n"
                          ".a: {image: python:3.12, again: !reference [.a], loop: !reference [.loop]}\n")
    python = root.value[2][1].value[0][1]
    assert keypaths.referenced(root, root.value[1][1]) is None
    assert [(use.patterns, _named(use.parent), use.via and use.via.start_mark.line + 1)
            for use in keypaths.uses(root, ["*.image"], {id(python)})[id(python)]] == [
        ((0,), "{image}", None),  # written in .a
        ((0,), "{stage}", 3),  # job.image
        ((), "{image}", 6),  # in .a, which `again` names: where no path leads
    ]


def test_along_key_paths_only_is_a_scalar_reached_where_a_path_ends():
    (root,) = compose_all("spec:\n  image: a\n  name: b\n  args: [x, y]\n  images: [c, d]\n")
    assert [(_named(node), key) for node, _, _, key, *_ in keypaths.walk(root, ["**.image", "**.images[]"],
                                                                      everywhere=False)] == [
        ("{spec}", None), ("{image}", "spec"), ("a", "image"), ("[x]", "args"), ("[c]", "images"), ("c", None),
        ("d", None)]


def test_equal_sets_of_states_are_one_object():
    # The walk's memos then find a set by identity: comparing equal sets was most of a scan's key path cost.
    automaton = keypaths._automaton(("**.image", "spec.image"))
    from_spec = automaton.step(automaton.step(automaton.start, "spec"), "x")
    from_other = automaton.step(automaton.step(automaton.start, "other"), "y")
    assert from_spec == from_other and from_spec is from_other
