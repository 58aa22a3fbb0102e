"""A sweep scans repositories in threads: the YAML scanner must give each thread its own parser."""
from __future__ import annotations

import threading

from bot.scan.yamldocs import compose_all


def _text(n: int) -> str:
    # `{image: redis:7}` is YAML 1.2 that libyaml refuses: odd texts take the pure parser too.
    extra = "    - {image: redis:7}\n" if n % 2 else ""
    docs = [f"kind: Pod{n}\nspec:\n  containers:\n" + "".join(f"    - name: c{i}\n      image: img{n}-{i}:1\n"
                                                              for i in range(20)) + extra for _ in range(3)]
    return "---\n".join(docs)


def _values(text: str) -> list[str]:
    def walk(node) -> list[str]:
        if isinstance(node.value, list):
            return [v for item in node.value for v in walk(item[1] if isinstance(item, tuple) else item)]
        return [node.value]
    return [v for root in compose_all(text) for v in walk(root)]


def test_yaml_documents_parse_the_same_in_many_threads_at_once() -> None:
    texts = [_text(n) for n in range(8)]
    expected = [_values(text) for text in texts]
    found: dict[int, list[list[str]]] = {n: [] for n in range(8)}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(20):
                found[n].append(_values(texts[n]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert all(result == expected[n] for n in range(8) for result in found[n])


def test_scans_in_threads_each_see_their_own_tree(tmp_path, monkeypatch) -> None:
    from bot.rules import load_rules
    from bot.policy import DEFAULT_INTERNAL, Policy
    from bot.scan import core
    from tests.helpers import write_tree

    monkeypatch.setattr(core, "PARALLEL_THRESHOLD", 4)  # many files: the scan would fork workers
    trees = {name: write_tree(tmp_path / name, {f"svc{i}/Dockerfile": f"FROM {name}/img{i}:1\n" for i in range(12)})
             for name in ("alpha.example", "beta.example", "gamma.example")}
    options = core.ScanOptions(rules=tuple(load_rules([])), policy=Policy(internal=DEFAULT_INTERNAL), untracked=True)
    found: dict[str, list[set[str]]] = {name: [] for name in trees}

    def work(name: str) -> None:
        for _ in range(3):
            found[name].append({ref.image for ref in core.scan(trees[name], options).references})

    threads = [threading.Thread(target=work, args=(name,)) for name in trees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for name in trees:
        assert found[name] == [{f"{name}/img{i}:1" for i in range(12)}] * 3
