from __future__ import annotations

import io
import json
import os

import pytest

from tests.helpers import DEEP_JSON, NESTED_TOO_DEEP, run_cli


def _pod(name, owner_kind, owner_name, owner_uid, containers, namespace="shop"):
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                     "ownerReferences": [{"kind": owner_kind, "name": owner_name, "uid": owner_uid, "controller": True}]},
        "spec": {"containers": [{"name": c, "image": image} for c, image in containers.items()]},
    }


KUBECTL_LIST = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "uid": "uid-dep"},
         "spec": {"template": {"spec": {"initContainers": [{"name": "init", "image": "busybox:1.36"}],
                                        "containers": [{"name": "web", "image": "nginx:1.14.2"}]}}}},
        {"kind": "ReplicaSet", "metadata": {"name": "web-5d9", "namespace": "shop", "uid": "uid-rs",
                                            "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "uid-dep", "controller": True}]},
         "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.14.2"}]}}}},
        _pod("web-5d9-abc", "ReplicaSet", "web-5d9", "uid-rs", {"web": "nginx:1.14.2"}),
        _pod("web-5d9-def", "ReplicaSet", "web-5d9", "uid-rs", {"web": "nginx:1.14.2"}),
        {"kind": "CronJob", "metadata": {"name": "backup", "namespace": "ops", "uid": "uid-cj"},
         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
             {"name": "dump", "image": "us-docker.pkg.dev/acme/tools/dump:2"}]}}}}}},
        _pod("orphan", "Node", "node-1", "uid-node", {"c0": "Bad:Image"}, namespace="kube-system"),
    ],
}


def test_inventory_names_each_workload_once_by_its_owner(tmp_path, capsys):
    source = tmp_path / "kubectl.json"
    source.write_text(json.dumps(KUBECTL_LIST))
    code = run_cli(capsys, "scan", "--kubectl-json", str(source), "--format", "json")
    assert code[0] == 0
    assert json.loads(code[1]) == {
        "version": 1,
        "images": [
            {"image": "Bad:Image", "status": "unresolved",
             "reason": "not a valid image reference: invalid reference format: repository name (library/Bad) must be lowercase",
             "workloads": [{"namespace": "kube-system", "kind": "Node", "name": "node-1", "container": "c0"}]},
            {"image": "docker.io/library/busybox:1.36", "status": "third-party", "reason": None,
             "workloads": [{"namespace": "shop", "kind": "Deployment", "name": "web", "container": "init"}]},
            {"image": "docker.io/library/nginx:1.14.2", "status": "third-party", "reason": None,
             "workloads": [{"namespace": "shop", "kind": "Deployment", "name": "web", "container": "web"}]},
            {"image": "us-docker.pkg.dev/acme/tools/dump:2", "status": "internal", "reason": None,
             "workloads": [{"namespace": "ops", "kind": "CronJob", "name": "backup", "container": "dump"}]},
        ],
    }


def test_inventory_from_stdin_as_a_table(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(KUBECTL_LIST)))
    code, out, _ = run_cli(capsys, "scan", "--kubectl-json", "-")
    assert code == 0
    assert out.splitlines()[2:] == [
        "Bad:Image                            unresolved   1          kube-system/Node/node-1",
        "docker.io/library/busybox:1.36       third-party  1          shop/Deployment/web",
        "docker.io/library/nginx:1.14.2       third-party  1          shop/Deployment/web",
        "us-docker.pkg.dev/acme/tools/dump:2  internal     1          ops/CronJob/backup",
    ]


@pytest.mark.parametrize(("text", "problem"), [
    ("apiVersion: v1\n", "line 1, column 1: Expecting value"),
    pytest.param(f'{{"kind": "List", "items": {DEEP_JSON}}}', NESTED_TOO_DEEP, id="nested-too-deep"),
])
def test_inventory_bad_input_names_the_file(tmp_path, capsys, text, problem):
    source = tmp_path / "kubectl.json"
    source.write_text(text)
    code, out, err = run_cli(capsys, "scan", "--kubectl-json", str(source))
    assert (code, out) == (2, "")
    assert err == (
        f"rehome: error: {source}: not JSON ({problem})\n"
        "hint: produce it with `kubectl get pods,deployments,statefulsets,daemonsets,jobs,cronjobs -A -o json`\n"
    )


def test_inventory_input_that_is_not_a_file_is_refused(capsys):
    code, out, err = run_cli(capsys, "scan", "--kubectl-json", os.devnull)
    assert (code, out, err) == (
        2, "", f"rehome: error: {os.devnull}: cannot read kubectl output: a device or socket, not a file\n")
    missing = os.path.join(os.devnull, "pods.json")
    code, out, err = run_cli(capsys, "scan", "--kubectl-json", missing)
    assert (code, out, err) == (2, "", f"rehome: error: {missing}: cannot read kubectl output: Not a directory\n")
