"""A loopback stand-in for the GitHub REST endpoints PyGithub calls to open a pull request:
repository, branches, pulls (list with pagination, get, create, update: title, body, state, base;
refs/pull/NUMBER/head kept for a closed one), labels (get, create),
requested reviewers, reviews, issue labels and assignees; for sweeps, an organisation's repositories
(paginated, with archived/fork/disabled/size/topics), rate-limit headers, delays, and the GitHub
App installation-token endpoints. Every request is recorded (method, path, query, JSON body) so
tests assert exactly what was asked."""
from __future__ import annotations

import dataclasses
import json
import re
import datetime
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/api/v3"
GATE_LIMIT = 60.0


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass
class Repo:
    full_name: str
    clone_url: str
    default_branch: str = "main"
    git_dir: str | None = None  # the bare repository behind clone_url, for the branches endpoint
    pulls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    labels: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    archived: bool = False
    disabled: bool = False
    fork: bool = False
    size: int = 120  # KB; GitHub says 0 for a repository without commits
    topics: tuple[str, ...] = ()


class GitHubServer:
    def __init__(self, per_page: int = 30, max_per_page: int = 100) -> None:
        self.per_page = per_page
        self.max_per_page = max_per_page  # GitHub answers at most 100 per page whatever is asked
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        # One-shot answers given instead of the real one: (method, path regex, status, headers, body); a body
        # of bytes is sent as it is.
        self.faults: list[tuple[str, str, int, dict[str, str], Any]] = []
        # Seconds to wait before answering matching requests: (method, path regex, seconds).
        self.delays: list[tuple[str, str, float]] = []
        # Requests held until the event is set (at most GATE_LIMIT seconds): (method, path regex, event).
        self.gates: list[tuple[str, str, threading.Event]] = []
        # Extra headers on every answer (e.g. X-RateLimit-*), computed per request.
        self.rate_headers: Callable[[], dict[str, str]] | None = None
        # GitHub App: the installation per organisation, and how long an installation token lives.
        self.installations: dict[str, int] = {}
        self.token_lifetime = 3600
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.base_url = self.origin + PREFIX
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_repo(self, full_name: str, clone_url: str, default_branch: str = "main",
                 git_dir: str | None = None, **fields: Any) -> Repo:
        repo = Repo(full_name, clone_url, default_branch, git_dir, **fields)
        self.repos[full_name] = repo
        return repo

    def writes(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method != "GET"]

    def calls(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(r.method, r.path) for r in self.requests]

    # --- answers -----------------------------------------------------------------------------

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        owner, name = repo.full_name.split("/")
        return {"id": abs(hash(repo.full_name)) % 10**6, "name": name, "full_name": repo.full_name,
                "owner": {"login": owner, "type": "Organization"}, "private": False,
                "url": f"{self.base_url}/repos/{repo.full_name}", "html_url": f"{self.origin}/{repo.full_name}",
                "clone_url": repo.clone_url, "default_branch": repo.default_branch,
                "archived": repo.archived, "disabled": repo.disabled, "fork": repo.fork, "size": repo.size,
                "topics": list(repo.topics)}

    def _pull_json(self, repo: Repo, pull: dict[str, Any]) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        number = pull["number"]
        return {"id": 1000 + number, "number": number, "state": pull["state"], "title": pull["title"],
                "merged": pull.get("merged", False),
                "merged_at": "2024-01-02T03:04:05Z" if pull.get("merged") else None,
                "body": pull["body"], "draft": pull["draft"],
                "url": f"{self.base_url}/repos/{repo.full_name}/pulls/{number}",
                "html_url": f"{self.origin}/{repo.full_name}/pull/{number}",
                "issue_url": f"{self.base_url}/repos/{repo.full_name}/issues/{number}",
                "head": {"ref": pull["head"], "label": f"{owner}:{pull['head']}", "sha": self._head_sha(repo, pull)},
                "base": {"ref": pull["base"], "label": f"{owner}:{pull['base']}", "sha": "0" * 40},
                "labels": [repo.labels[name] for name in pull["labels"]],
                "requested_reviewers": [{"login": login} for login in pull["reviewers"]],
                "assignees": [{"login": login} for login in pull["assignees"]],
                "user": {"login": "rehome-bot"}}

    def _head_sha(self, repo: Repo, pull: dict[str, Any]) -> str:
        """The pull request's head commit: its branch's tip while it is open, the tip it was closed at after."""
        if pull["state"] != "open":
            return pull.get("head_sha", "0" * 40)
        return next((b["commit"]["sha"] for b in self._branches(repo) if b["name"] == pull["head"]), "0" * 40)

    def close_pull(self, full_name: str, number: int) -> None:
        """A human closes the pull request without merging it: as GitHub does, its last head commit stays
        fetchable as refs/pull/NUMBER/head, whatever later becomes of its branch."""
        repo = self.repos[full_name]
        with self._lock:
            self._close(repo, next(p for p in repo.pulls if p["number"] == number))

    def _close(self, repo: Repo, pull: dict[str, Any]) -> None:
        pull["head_sha"] = self._head_sha(repo, pull)
        pull["state"] = "closed"
        if repo.git_dir is not None and pull["head_sha"] != "0" * 40:
            subprocess.run(["git", "--git-dir", repo.git_dir, "update-ref", f"refs/pull/{pull['number']}/head",
                            pull["head_sha"]], check=True, capture_output=True)

    def _label_json(self, repo: Repo, name: str, color: str, description: str | None) -> dict[str, Any]:
        return {"id": len(repo.labels) + 1, "name": name, "color": color, "description": description,
                "url": f"{self.base_url}/repos/{repo.full_name}/labels/{name}"}

    def _branches(self, repo: Repo) -> list[dict[str, Any]]:
        if repo.git_dir is None:
            return []
        out = subprocess.run(["git", "--git-dir", repo.git_dir, "for-each-ref", "--format=%(refname:short) %(objectname)",
                              "refs/heads"], capture_output=True, text=True, check=True).stdout
        return [{"name": name, "commit": {"sha": sha}, "protected": False}
                for name, sha in (line.split() for line in out.splitlines())]

    def _page(self, items: list[Any], query: dict[str, str], path: str) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(query.get("per_page", self.per_page)), self.max_per_page)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
            headers["Link"] = f'<{self.base_url}{path}?{rest}&page={page + 1}>; rel="next"'
        return chunk, headers

    def _app(self, method: str, path: str) -> tuple[int, Any, dict[str, str]] | None:
        if method == "GET" and (m := re.fullmatch(r"/orgs/([^/]+)/installation", path)):
            if m.group(1) not in self.installations:
                raise HTTPError(404, "Not Found")
            return 200, {"id": self.installations[m.group(1)], "app_id": 1, "account": {"login": m.group(1)}}, {}
        if method == "POST" and (m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)):
            if int(m.group(1)) not in self.installations.values():
                raise HTTPError(404, "Not Found")
            token = f"ghs_installation{len(self.tokens) + 1}"
            self.tokens.append(token)
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.token_lifetime)
            return 201, {"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "permissions": {}, "repository_selection": "all"}, {}
        return None

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if (app := self._app(method, path)) is not None:
            return app
        if method == "GET" and (m := re.fullmatch(r"/orgs/([^/]+)", path)):
            if not any(r.split("/")[0] == m.group(1) for r in self.repos):
                raise HTTPError(404, "Not Found")
            return 200, {"login": m.group(1), "id": 1, "url": f"{self.base_url}/orgs/{m.group(1)}",
                         "repos_url": f"{self.base_url}/orgs/{m.group(1)}/repos"}, {}
        if method == "GET" and (m := re.fullmatch(r"/orgs/([^/]+)/repos", path)):
            repos = [self._repo_json(r) for r in self.repos.values() if r.full_name.split("/")[0] == m.group(1)]
            if not repos:
                raise HTTPError(404, "Not Found")
            chunk, headers = self._page(repos, query, path)
            return 200, chunk, headers
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if match is None or match.group(1) not in self.repos:
            raise HTTPError(404, "Not Found")
        repo, rest = self.repos[match.group(1)], match.group(2) or ""
        if method == "GET" and rest == "":
            return 200, self._repo_json(repo), {}
        if method == "GET" and rest == "/branches":
            chunk, headers = self._page(self._branches(repo), query, path)
            return 200, chunk, headers
        if method == "GET" and (m := re.fullmatch(r"/branches/(.+)", rest)):
            found = [b for b in self._branches(repo) if b["name"] == unquote(m.group(1))]
            if not found:
                raise HTTPError(404, "Branch not found")
            return 200, found[0], {}
        if rest == "/pulls" and method == "GET":
            pulls = [p for p in repo.pulls
                     if query.get("state", "open") in ("all", p["state"])
                     and ("head" not in query or f"{repo.full_name.split('/')[0]}:{p['head']}" == query["head"])
                     and ("base" not in query or p["base"] == query["base"])]
            chunk, headers = self._page([self._pull_json(repo, p) for p in pulls], query, path)
            return 200, chunk, headers
        if rest == "/pulls" and method == "POST":
            if any(p["head"] == body["head"] and p["state"] == "open" for p in repo.pulls):
                raise HTTPError(422, f"A pull request already exists for {body['head']}.")
            pull = {"number": len(repo.pulls) + 1, "state": "open", "title": body["title"],
                    "body": body.get("body", ""), "draft": body.get("draft", False), "head": body["head"],
                    "base": body["base"], "labels": [], "reviewers": [], "assignees": [], "reviewed_by": []}
            repo.pulls.append(pull)
            return 201, self._pull_json(repo, pull), {}
        if m := re.fullmatch(r"/(pulls|issues)/(\d+)(/.*)?", rest):
            number = int(m.group(2))
            pulls = [p for p in repo.pulls if p["number"] == number]
            if not pulls:
                raise HTTPError(404, "Not Found")
            pull, tail = pulls[0], m.group(3) or ""
            if method == "GET" and tail == "":
                return 200, self._pull_json(repo, pull), {}
            if method == "PATCH" and tail == "":
                if body.get("state") == "closed" and pull["state"] == "open":
                    self._close(repo, pull)
                for key in ("title", "body", "state", "base"):
                    if key in body:
                        pull[key] = body[key]
                return 200, self._pull_json(repo, pull), {}
            if method == "POST" and tail == "/labels":
                for name in body["labels"] if isinstance(body, dict) else body:
                    if name not in repo.labels:
                        repo.labels[name] = self._label_json(repo, name, "ededed", None)
                    if name not in pull["labels"]:
                        pull["labels"].append(name)
                return 200, [repo.labels[name] for name in pull["labels"]], {}
            if method == "GET" and tail == "/reviews":
                chunk, headers = self._page([{"id": n + 1, "user": {"login": login}, "state": "COMMENTED"}
                                             for n, login in enumerate(pull.get("reviewed_by", []))], query, path)
                return 200, chunk, headers
            if method == "POST" and tail == "/requested_reviewers":
                pull["reviewers"] += [r for r in body.get("reviewers", []) if r not in pull["reviewers"]]
                return 201, self._pull_json(repo, pull), {}
            if method == "POST" and tail == "/assignees":
                pull["assignees"] += [a for a in body.get("assignees", []) if a not in pull["assignees"]]
                return 201, self._pull_json(repo, pull), {}
        if method == "GET" and (m := re.fullmatch(r"/labels/(.+)", rest)):
            name = unquote(m.group(1))
            if name not in repo.labels:
                raise HTTPError(404, "Not Found")
            return 200, repo.labels[name], {}
        if method == "POST" and rest == "/labels":
            if body["name"] in repo.labels:
                raise HTTPError(422, "Validation Failed")
            label = self._label_json(repo, body["name"], body["color"], body.get("description"))
            repo.labels[body["name"]] = label
            return 201, label, {}
        raise HTTPError(404, f"no stand-in for {method} {path}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go as separate writes: no delayed-ACK stall

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                split = urlsplit(self.path)
                path = split.path.removeprefix(PREFIX)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                with server._lock:  # recorded as it arrives: a test sees a request that is being delayed
                    server.requests.append(Request(self.command, path, query, body,
                                                   self.headers.get("Authorization")))
                delay = sum(d[2] for d in list(server.delays) if d[0] == self.command and re.search(d[1], path))
                if delay:
                    time.sleep(delay)
                for method, pattern, gate in list(server.gates):
                    if method == self.command and re.search(pattern, path):
                        gate.wait(GATE_LIMIT)
                with server._lock:
                    fault = next((f for f in server.faults if f[0] == self.command and re.search(f[1], path)), None)
                    try:
                        if fault is not None:
                            server.faults.remove(fault)
                            status, data, headers = fault[2], fault[4], fault[3]
                        else:
                            status, data, headers = server.answer(self.command, path, query, body)
                    except HTTPError as exc:
                        status, data, headers = exc.status, {"message": exc.message}, {}
                    except Exception as exc:  # noqa: BLE001 - a stand-in bug shows as a 500 the test sees
                        status, data, headers = 500, {"message": f"stand-in error: {exc!r}"}, {}
                    if server.rate_headers is not None:
                        headers = {**server.rate_headers(), **headers}
                payload = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        return Handler
