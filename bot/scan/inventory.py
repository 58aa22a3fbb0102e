"""A live cluster's images, from `kubectl get pods,deployments,... -A -o json` output."""
from __future__ import annotations

import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bot import imageref, jsontext, textfile
from bot.errors import UsageError
from bot.output import render_table
from bot.policy import Policy
from bot.scan.model import INTERNAL, THIRD_PARTY, UNRESOLVED

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclasses.dataclass(frozen=True, order=True)
class Workload:
    namespace: str
    kind: str
    name: str
    container: str


@dataclasses.dataclass
class InventoryImage:
    image: str
    status: str
    reason: str | None
    workloads: list[Workload]

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "status": self.status,
            "reason": self.reason,
            "workloads": [dataclasses.asdict(w) for w in self.workloads],
        }


@dataclasses.dataclass
class Inventory:
    images: list[InventoryImage]

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "images": [i.to_json() for i in self.images]}


def _load(source: str) -> Any:
    name = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else textfile.read_text(Path(source))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{name}: cannot read kubectl output: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return jsontext.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except ValueError as exc:  # nested deeper than JSON can be read
        problem = str(exc)
    raise UsageError(
        f"{name}: not JSON ({problem})",
        hint="produce it with `kubectl get pods,deployments,statefulsets,daemonsets,jobs,cronjobs -A -o json`",
    )


def _items(data: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return [i for i in data["items"] if isinstance(i, dict)]
    if isinstance(data, dict) and "kind" in data:
        return [data]
    raise UsageError(f"{name}: not kubectl output: expected an object with `items` or a single object with `kind`")


def _containers(spec: Any) -> list[dict[str, Any]]:
    """Containers of a pod spec at any depth of an object's spec (templates, job templates)."""
    found: list[dict[str, Any]] = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key in CONTAINER_LISTS and isinstance(value, list):
                found += [c for c in value if isinstance(c, dict)]
            else:
                found += _containers(value)
    elif isinstance(spec, list):
        for value in spec:
            found += _containers(value)
    return found


def _controller(item: dict[str, Any]) -> dict[str, Any] | None:
    owners = item.get("metadata", {}).get("ownerReferences") or []
    return next((o for o in owners if o.get("controller")), owners[0] if owners else None)


def _top_owner(item: dict[str, Any], by_uid: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(kind, name) of the object at the top of the ownership chain (a Deployment, not its ReplicaSet)."""
    kind, name = item.get("kind", ""), item.get("metadata", {}).get("name", "")
    seen = set()
    while (owner := _controller(item)) is not None and owner.get("uid") not in seen:
        seen.add(owner.get("uid"))
        kind, name = owner.get("kind", kind), owner.get("name", name)
        item = by_uid.get(owner.get("uid", ""))
        if item is None:
            break
    return kind, name


def _classify(text: str, policy: Policy) -> tuple[str, str, str | None]:
    try:
        ref = imageref.parse(text)
    except imageref.InvalidReference as exc:
        return text, UNRESOLVED, f"not a valid image reference: {exc}"
    return str(ref), INTERNAL if policy.is_internal(ref) else THIRD_PARTY, None


def read(source: str, policy: Policy) -> Inventory:
    items = _items(_load(source), "standard input" if source == "-" else source)
    by_uid = {i["metadata"]["uid"]: i for i in items if i.get("metadata", {}).get("uid")}
    workloads: dict[tuple[str, str, str | None], set[Workload]] = defaultdict(set)
    for item in items:
        namespace = item.get("metadata", {}).get("namespace", "")
        kind, name = _top_owner(item, by_uid)
        for container in _containers(item.get("spec")):
            image = container.get("image")
            if not isinstance(image, str) or not image:
                continue
            workloads[_classify(image, policy)].add(Workload(namespace, kind, name, container.get("name", "")))
    images = [
        InventoryImage(image, status, reason, sorted(found))
        for (image, status, reason), found in sorted(workloads.items(), key=lambda kv: kv[0][0])
    ]
    return Inventory(images)


def render(inventory: Inventory) -> str:
    rows = []
    for image in inventory.images:
        names = sorted({f"{w.namespace}/{w.kind}/{w.name}" for w in image.workloads})
        shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        rows.append((image.image, image.status, len(names), shown))
    return render_table(("IMAGE", "STATUS", "WORKLOADS", "WHERE"), rows)
