"""The OCI distribution client: authentication, manifests, blobs, retries, and verified copies."""
from __future__ import annotations

from bot.registry.client import Registries, RetryPolicy
from bot.registry.copy import Copier, CopyOptions, CopyResult
from bot.registry.credentials import Credential, CredentialStore
from bot.registry.errors import RegistryError
from bot.registry.secret import Secret

__all__ = [
    "Copier", "CopyOptions", "CopyResult", "Credential", "CredentialStore", "Registries", "RegistryError",
    "RetryPolicy", "Secret",
]
