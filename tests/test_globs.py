"""Path globs, and the base-name filter that rules paths out before any rule's globs are tried."""
from __future__ import annotations

from pathlib import Path

from bot.globs import compile_globs, name_filter
from bot.rules import load_rules

TRICKY = [
    "Dockerfile", "web/Dockerfile.prod", "web/prod.Dockerfile", "a/b/Containerfile-dev", "dockerfile",
    "charts/x/templates/deploy.yaml", "charts/x/templates/_helpers.tpl", "charts/x/templates/NOTES.txt",
    ".github/workflows/ci.yml", "sub/.github/workflows/ci.yml", ".gitlab/ci/a/b.yml", "ci/prod-values.yaml",
    "values.yaml", "values.prod.yml", "values-dev.yaml", "kustomization.yaml", "Kustomization",
    "k8s/app.yaml.tpl", "main.go", "README.md", "src/app.py", "docker-compose.override.yml", "x/compose.yaml",
    "cloudbuild-delivery.yaml", "deploy/cloudbuild.yaml", "skaffold.yaml", "a.docker-compose.yml",
]


def _kept(names, paths: list[str]) -> list[str]:
    return [path for path in paths if names.match(path.rpartition("/")[2])]


def test_the_name_filter_keeps_every_path_the_rules_select(shared_dir: Path) -> None:
    patterns = tuple(pattern for rule in load_rules() for pattern in rule.files)
    names, selects = name_filter(patterns), compile_globs(patterns)
    corpus = shared_dir / "corpus"
    paths = TRICKY + sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*") if p.is_file())
    assert len(paths) > 1000
    kept = _kept(names, paths)
    assert [path for path in paths if selects.match(path) and path not in kept] == []
    # What it rules out; and what it lets through for the rules' globs to refuse (a `.tpl` outside `templates/`).
    assert [path for path in TRICKY if path not in kept] == ["charts/x/templates/NOTES.txt", "main.go", "README.md",
                                                             "src/app.py"]
    assert [path for path in kept if not selects.match(path)] == ["k8s/app.yaml.tpl"]


def test_the_name_filter_declines_what_a_base_name_cannot_decide() -> None:
    assert name_filter(("docs/**",)) is None  # any name below docs/
    assert name_filter(("k8s/app**",)) is None  # `**` inside a segment reaches across folders
    assert name_filter(("x/[a/b]c.yaml",)) is None  # a bracket expression holding a `/`
    braces = name_filter(("{deploy/app,base}.yaml",))
    assert braces is not None and _kept(braces, ["x/app.yaml", "base.yaml", "x/deploy.yaml"]) == ["x/app.yaml",
                                                                                                  "base.yaml"]
    nothing = name_filter(())
    assert nothing is not None and _kept(nothing, ["a.yaml"]) == []
