"""Access checks for a destination registry (the guide's "verify permissions" step).

Each check is one `Check`: ok or failed, what was found, and for a failure the fix.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import httpx

from bot import jsontext
from bot.errors import RehomeError
from bot.imageref import ImageRef
from bot.registry import Registries, RegistryError
from bot.registry.blobs import cancel_upload, start_upload
from bot.registry.client import RETRY_STATUSES, Registry, RetryPolicy
from bot.registry.credentials import CredentialHelperError, google_credential, is_google_host
from bot.registry.errors import (
    HostNotFound, InsufficientScope, NotARegistry, NotFound, RetryableError, Unreachable, artifact_registry_create_hint,
    error_codes, not_a_registry, source_login_fix,
)
from bot.registry.manifests import answers_as_a_registry, head_digest, no_such_image, refused_by_no_registry

ARTIFACT_REGISTRY_API = "https://artifactregistry.googleapis.com/v1"
_ARTIFACT_REGISTRY_RE = re.compile(r"(?P<location>[a-z0-9-]+)-docker\.pkg\.dev")
# Roles that include artifactregistry.repositories.downloadArtifacts on a repository.
READ_ROLES = frozenset({
    "roles/artifactregistry.reader", "roles/artifactregistry.writer", "roles/artifactregistry.repoAdmin",
    "roles/artifactregistry.admin",
})
PROBE_REPOSITORY = "rehome-doctor"
# A check is a quick question: a registry that does not answer within this is reported as such, not waited for.
CHECK_TIMEOUT = 15.0
CHECK_RETRY = RetryPolicy(tries=2)
DOCKER_HUB_PROBE = "docker.io/ratelimitpreview/test:latest"
GOOGLE_LOGIN_FIX = ("pip install 'rehome-bot[gcp]' and run `gcloud auth application-default login` (or point "
                    "GOOGLE_APPLICATION_CREDENTIALS at a service account key), or `gcloud auth configure-docker HOST`")
READ_GRANT_FIX = "grant the credentials read access (roles/artifactregistry.reader on Artifact Registry)"
WRITE_GRANT_FIX = "grant the credentials write access (roles/artifactregistry.writer on Artifact Registry)"
NOT_A_REGISTRY_FIX = "check the host name: DEST must start with a container registry's host"
SOURCE_NAME_FIX = "check the repository and the tag or digest: --source takes an image as docker pull does"


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"

    def line(self) -> str:
        text = f"{self.status:<6}  {self.name}: {self.detail}"
        return text + (f" (fix: {self.fix})" if self.fix else "")

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclasses.dataclass(frozen=True)
class ArtifactRepository:
    location: str
    project: str
    repository: str

    @classmethod
    def from_destination(cls, destination: ImageRef) -> ArtifactRepository | None:
        match = _ARTIFACT_REGISTRY_RE.fullmatch(destination.domain)
        parts = destination.path.split("/")
        if match is None or len(parts) < 2:
            return None
        return cls(match.group("location"), parts[0], parts[1])

    def grant_command(self, email: str) -> str:
        return (f"gcloud artifacts repositories add-iam-policy-binding {self.repository} --location={self.location} "
                f"--project={self.project} --member=serviceAccount:{email} --role=roles/artifactregistry.reader")


def _failure(name: str, exc: RehomeError, fix: str | None = None) -> Check:
    return Check(name, False, exc.message, fix or exc.hint)


def _credentials_fix(registry: Registry) -> str:
    credential = registry.auth.credential
    if credential.anonymous:
        return f"log in with `docker login {registry.domain}`, or give --username USER --password-stdin"
    return (f"check the username and password ({credential.source}), "
            f"or log in again with `docker login {registry.domain}`")


def _refused(registry: Registry) -> str:
    return "anonymous access was refused" if registry.auth.credential.anonymous else "the credentials were refused"


def _access_fix(registry: Registry, exc: RegistryError, grant: str) -> str | None:
    """A 401 wants (other) credentials, a 403 a grant, unless no credentials were sent; so does a 401 that
    says the credentials were taken but reach too little (`insufficient_scope`); else the error's own hint."""
    if isinstance(exc, InsufficientScope):
        return grant
    if exc.status == 401 or (exc.status == 403 and registry.auth.credential.anonymous):
        return _credentials_fix(registry)
    return grant if exc.status == 403 else exc.hint


def check_credentials(registry: Registry) -> Check:
    try:  # a Docker config.json of the wrong shape is a usage error, refused as by every other command
        credential = registry.auth.credential
    except CredentialHelperError as exc:  # said without its "credentials:", which the check's name says
        return Check("credentials", False, f"{registry.domain}: {exc.detail}",
                     "fix the credential helper named in Docker's config.json")
    if credential.anonymous and is_google_host(registry.domain):
        return Check("credentials", False, f"{registry.domain}: no credentials found; Google's registries take no "
                     "anonymous pushes", GOOGLE_LOGIN_FIX)
    return Check("credentials", True, f"{registry.domain}: {credential.source}")


def _unreachable_fix(registry: Registry, exc: RegistryError) -> str:
    """The error's own fix when it has one (the token service gave no answer, not the registry); else what to check
    about the registry's address."""
    if exc.hint:
        return exc.hint
    if isinstance(exc, HostNotFound):
        return f"check the host name {registry.domain}, and that this machine can resolve host names (DNS)"
    if registry.scheme == "http":
        return f"check that a registry runs at {registry.base_url}"
    return f"check the host name; a plain-HTTP registry needs --insecure-registry {registry.domain}"


def check_answers(registry: Registry, repo: str) -> Check:
    url = f"{registry.base_url}/v2/"
    try:
        response = registry.request("GET", "/v2/", repo=repo, step="ping the registry API")
    except (Unreachable, RetryableError) as exc:
        return _failure("registry", exc, _unreachable_fix(registry, exc))
    except RegistryError as exc:  # the authentication the registry asked for failed
        if exc.status in (401, 403):
            return Check("registry", False, f"{exc.message}: {_refused(registry)}", _credentials_fix(registry))
        return _failure("registry", exc)
    status = response.status_code
    answered = f"{url} answered HTTP {status}"
    if status == 403 or (status == 401 and not registry.auth.credential.anonymous):
        return Check("registry", False, f"{answered}: {_refused(registry)}", _credentials_fix(registry))
    if status in RETRY_STATUSES:
        return Check("registry", False, answered, "the registry is down or overloaded: try again later")
    if not answers_as_a_registry(registry, repo, response):
        return Check("registry", False, not_a_registry(registry.domain, url, status), NOT_A_REGISTRY_FIX)
    return Check("registry", True, f"{url} answers")


def check_repository(registry: Registry, repo: str) -> Check:
    try:
        response = registry.request("GET", f"/v2/{repo}/tags/list", repo=repo, step="list tags")
    except RegistryError as exc:
        return _failure("repository", exc)
    where = f"{registry.domain}/{repo}"
    if response.status_code == 200:
        return Check("repository", True, f"{where} exists")
    if response.status_code == 404 and any(code == "NAME_UNKNOWN" for code, _ in error_codes(response)):
        hint = artifact_registry_create_hint(registry.domain, repo)
        if hint is not None and any("repository" in message.lower() for _, message in error_codes(response)):
            return Check("repository", False, f"{where}: the Artifact Registry repository does not exist",
                         hint.split("create it with: ", 1)[1])
        return Check("repository", True, f"{where} has no images yet; the registry creates repositories on first push")
    error = registry.fail(repo, "list tags", response)
    return _failure("repository", error, _access_fix(registry, error, READ_GRANT_FIX))


def check_push(registry: Registry, repo: str) -> Check:
    probe = f"{repo}/{PROBE_REPOSITORY}"
    try:
        upload = start_upload(registry, probe)
    except RegistryError as exc:
        if (elsewhere := refused_by_no_registry(registry, probe, exc)) is not None:
            return _failure("push", elsewhere, NOT_A_REGISTRY_FIX)
        return _failure("push", exc, _access_fix(registry, exc, WRITE_GRANT_FIX))
    cancel_upload(registry, probe, upload)
    return Check("push", True, f"{registry.domain}/{probe}: a test upload was accepted, then cancelled")


def _source_failure(name: str, registry: Registry, exc: RegistryError) -> Check:
    """A source lookup that failed, said without the image the check's name already gives."""
    detail = f"{exc.step}: {exc.detail}"
    if isinstance(exc, (Unreachable, RetryableError)):
        return Check(name, False, detail, _unreachable_fix(registry, exc))
    if exc.status in (401, 403) and registry.source_only:
        return Check(name, False, f"{detail}: {_refused(registry)}",
                     source_login_fix(registry.domain, registry.auth.credential))
    return Check(name, False, detail, _access_fix(registry, exc, READ_GRANT_FIX))


def check_source(registries: Registries, source: ImageRef) -> Check:
    name = f"source {source}"
    registry = registries.get(source.domain)
    reference = source.digest or source.tag or "latest"
    try:
        digest = head_digest(registry, source.path, reference, "look up manifest")
        if digest is None:
            raise no_such_image(registry, source.path, "look up manifest")
    except NotARegistry as exc:
        return _source_failure(name, registry, exc)
    except NotFound:
        return Check(name, False, "the registry answers, but has no such image", SOURCE_NAME_FIX)
    except RegistryError as exc:
        return _source_failure(name, registry, exc)
    detail = "the registry answers"
    if registry.rate_limit is not None:
        limit = registry.rate_limit
        of = f" of {limit.limit}" if limit.limit is not None else ""
        window = f" per {limit.window // 3600}h" if limit.window else ""
        detail += f"; pull quota: {limit.remaining}{of}{window} left"
        if limit.remaining <= registry.quota_reserve:
            return Check(name, False, detail, "wait for the window to pass, or log in (docker login) for a higher limit")
    return Check(name, True, detail)


def _bindings(policy: Any) -> list[dict[str, Any]]:
    """The IAM policy's bindings of a role (a string) to members (a list); none in an answer of another shape."""
    bindings = policy.get("bindings") if isinstance(policy, dict) else None
    if not isinstance(bindings, list):
        return []
    return [b for b in bindings
            if isinstance(b, dict) and isinstance(b.get("role"), str) and isinstance(b.get("members"), list)]


def check_read_grant(repository: ArtifactRepository | None, email: str, http: httpx.Client,
                     token: str | None, api: str = ARTIFACT_REGISTRY_API) -> Check:
    name = f"read grant for {email}"
    if repository is None:
        return Check(name, False, "the destination is not an Artifact Registry repository "
                     "(LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)", "leave out --runtime-sa: it checks Artifact "
                     "Registry's IAM policy only")
    fix = repository.grant_command(email)
    if token is None:
        return Check(name, False, "cannot confirm: no Google Application Default Credentials to read the IAM policy", fix)
    url = (f"{api}/projects/{repository.project}/locations/{repository.location}"
           f"/repositories/{repository.repository}:getIamPolicy")
    try:
        response = http.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        return Check(name, False, f"cannot confirm: {type(exc).__name__} reading the IAM policy", fix)
    if response.status_code != 200:
        return Check(name, False, f"cannot confirm: reading the repository's IAM policy gave HTTP {response.status_code}", fix)
    try:
        policy = jsontext.loads(response.content)
    except ValueError as exc:
        return Check(name, False, f"cannot confirm: the repository's IAM policy is not JSON ({exc})", fix)
    member = f"serviceAccount:{email}"
    roles = sorted(b["role"] for b in _bindings(policy) if member in b["members"])
    granted = [role for role in roles if role in READ_ROLES]
    if granted:
        return Check(name, True, f"{repository.repository} grants it {granted[0]}")
    return Check(name, False, "the repository's policy does not grant it read access "
                              "(a project-level grant cannot be seen from here)", fix)


def run_checks(registries: Registries, destination: ImageRef, sources: Sequence[ImageRef],
               runtime_sa: str | None) -> list[Check]:
    registry = registries.get(destination.domain)
    checks = [check_credentials(registry)]
    if not checks[0].ok:
        return checks
    checks.append(check_answers(registry, destination.path))
    if checks[-1].ok:
        checks.append(check_repository(registry, destination.path))
        checks.append(check_push(registry, destination.path))
    checks += [check_source(registries, source) for source in sources]
    if runtime_sa is not None:
        credential = google_credential()
        token = credential.password.reveal() if credential and credential.password else None
        checks.append(check_read_grant(ArtifactRepository.from_destination(destination), runtime_sa, registries.http, token))
    return checks
