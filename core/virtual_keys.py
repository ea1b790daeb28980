"""Provider bindings ("virtual keys", as Portkey calls them): which provider, where, and its secret.

The provider key travels one way: from the create or update body into the SecretStore. The stored
VirtualKey keeps only `secret_ref` (where the secret is) and `masked_key` (`sk-p****************a1b2`).
No answer carries the key or `secret_ref`. Custom header values are stored as sent (and sent to the
provider as stored) but every answer shows them masked like the key, whatever the header's name: any
of them may be a credential. No error message quotes a value a caller sent for a binding (a
rejected provider, slug, URL, header value or key, nor the id or slug of a binding that does not
exist): it names the field (`param`) and what is wrong, since people paste keys into the wrong field.
"""

from __future__ import annotations

import logging
import re
import secrets as _random
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

from core import views
from core.admin_requests import CreateVirtualKey, ListQuery, UpdateVirtualKey, VirtualKeyFields, parse_body, parse_query
from core.errors import Conflict, CuecardError, InvalidRequest, VirtualKeyNotFound
from core.models import PROVIDERS, VirtualKey
from core.ports import SecretStore, VirtualKeyStore

log = logging.getLogger(__name__)

OBJECT = "virtual-key"
SECRET_NAME_PREFIX = "virtual-keys/"
MASK = "*" * 16  # the same length whatever the key's, so the mask does not tell its length
_VISIBLE = 4  # characters shown at each end of a long key
_MIN_LENGTH_TO_SHOW = 20  # shorter keys are masked completely

# Which providers need a key: openai needs one unless it points at a custom_host (Ollama, vLLM).
KEY_REQUIRED = frozenset({"azure-openai", "anthropic"})
KEY_FORBIDDEN = {
    "bedrock": "bedrock authenticates with the function's IAM role",
    "mock": "the mock provider needs no credentials",
}
# Header names that carry credentials (the key goes in `key`), or that cuecard itself sets.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key"})
MANAGED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade"}
)
MAX_HEADERS = 32
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_CONFIG_VALUE = {
    "api_version": re.compile(r"^[A-Za-z0-9._-]{1,64}$"),
    "deployment": re.compile(r"^[A-Za-z0-9._-]{1,64}$"),
    "resource_name": re.compile(r"^[A-Za-z0-9-]{1,64}$"),  # becomes https://<resource_name>.openai.azure.com
    "region": re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"),
    "anthropic_version": re.compile(r"^[A-Za-z0-9._-]{1,64}$"),
}
# config key <- (snake_case field, Portkey's camelCase field)
_CONFIG_FIELDS = (
    ("api_version", "api_version", "apiVersion"),
    ("deployment", "deployment_name", "deploymentName"),
    ("resource_name", "resource_name", "resourceName"),
    ("region", "region", "awsRegion"),
    ("anthropic_version", "anthropic_version", "anthropicVersion"),
)


# Portkey's own fields of a virtual key (its spec's `VirtualKeys`): kept in `config` under these names, as
# sent, and shown at the top level of every answer; cuecard enforces none of them. API name -> request field.
PORTKEY_FIELDS = {
    "workspace_id": "workspace_id",
    "usage_limits": "usage_limits",
    "rate_limits": "rate_limits",
    "expires_at": "expires_at",
    "reset_usage": "reset_usage",
    "model_config": "model_config_",
    "secret_mappings": "secret_mappings",
}
_ARRAY_FIELDS = ("rate_limits", "secret_mappings")  # arrays in the spec: [] when none was sent


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mask_key(key: str) -> str:
    """`sk-p****************a1b2` for a long key; only asterisks for a short one."""
    if len(key) >= _MIN_LENGTH_TO_SHOW:
        return key[:_VISIBLE] + MASK + key[-_VISIBLE:]
    return MASK


def secret_name(binding_id: str) -> str:
    """The name a binding's key has in the secret store (which adds its own prefix)."""
    return SECRET_NAME_PREFIX + binding_id


def make_virtual_key_slug(name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:12].strip("-") or "key"
    return f"vk-{stem}-{_random.token_hex(3)}"


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Custom headers as answers show them: each name, and its value masked like a key."""
    return {name: mask_key(value) for name, value in headers.items()}


def virtual_key_view(binding: VirtualKey) -> dict[str, Any]:
    """A binding as the API answers it: the masked key and masked header values, never the key, a header
    value or the key's secret reference."""
    return {
        "id": binding.id,
        "slug": binding.slug,
        "name": binding.name,
        "note": binding.note,
        "provider": binding.provider,
        "ai_provider_name": binding.provider,  # Portkey's name for it
        "status": "active",
        "masked_key": binding.masked_key,
        "masked_api_key": binding.masked_key,  # Portkey's name for it
        "custom_host": binding.custom_host,
        "headers": mask_headers(binding.headers),
        "config": {name: _plain(value) for name, value in binding.config.items() if name not in PORTKEY_FIELDS},
        **{name: _plain(binding.config.get(name, [] if name in _ARRAY_FIELDS else None)) for name in PORTKEY_FIELDS},
        "created_at": binding.created_at,
        "updated_at": binding.updated_at,
        "object": OBJECT,
    }


class VirtualKeyService:
    def __init__(
        self,
        store: VirtualKeyStore,
        secrets: SecretStore,
        *,
        now: Callable[[], str] = utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._now = now
        self._new_id = new_id

    def create(self, body: Any) -> dict[str, Any]:
        request = parse_body(CreateVirtualKey, body)
        provider = _provider(request.provider)
        custom_host = _custom_host(request.custom_host)
        headers = _headers(request.headers) if request.headers is not None else {}
        config = {name: value for name, value in _config_changes(request).items() if value is not None}
        key = _key(request.key)
        _check_key(provider, key, custom_host, has_secret=False)
        if request.slug is not None:
            self._check_slug_free(request.slug)
        binding_id = self._new_id()
        now = self._now()
        secret_ref = self._secrets.put_secret(secret_name(binding_id), key) if key is not None else None
        binding = VirtualKey(
            id=binding_id,
            slug=request.slug or make_virtual_key_slug(request.name),
            name=request.name,
            provider=provider,
            created_at=now,
            updated_at=now,
            secret_ref=secret_ref,
            masked_key=mask_key(key) if key is not None else None,
            custom_host=custom_host,
            headers=headers,
            config=config,
            note=request.note or None,
        )
        try:
            created = self._store.create_virtual_key(binding)
        except BaseException:
            if secret_ref is not None:
                self._discard_secret(binding_id, secret_ref)
            raise
        return {"id": created.id, "slug": created.slug, "object": OBJECT}

    def list(self, query: Mapping[str, str]) -> dict[str, Any]:
        options = parse_query(ListQuery, dict(query))
        bindings = [b for b in self._store.list_virtual_keys() if options.in_workspace(b.config.get("workspace_id"))]
        if options.search:
            needle = options.search.casefold()
            bindings = [b for b in bindings if needle in b.name.casefold() or needle in b.slug]
        start = options.current_page * options.page_size
        return views.page([virtual_key_view(b) for b in bindings[start : start + options.page_size]], total=len(bindings))

    def get(self, key: str) -> dict[str, Any]:
        with _unquoted_not_found():
            return virtual_key_view(self._store.get_virtual_key(key))

    def update(self, key: str, body: Any) -> dict[str, Any]:
        request = parse_body(UpdateVirtualKey, body)
        with _unquoted_not_found():
            current = self._store.get_virtual_key(key)
        given = request.model_fields_set
        if request.provider is not None and request.provider != current.provider:
            raise InvalidRequest(
                f"A virtual key's provider cannot change (this one is {current.provider!r}); create a new virtual key.",
                param="provider",
            )
        changes: dict[str, Any] = {}
        if request.name is not None:
            changes["name"] = request.name
        if "note" in given and request.note is not None:
            changes["note"] = request.note or None  # "" clears it
        if "custom_host" in given and request.custom_host is not None:
            changes["custom_host"] = _custom_host(request.custom_host)  # "" clears it
        if request.headers is not None:
            changes["headers"] = _headers(request.headers, current=current.headers)
        config_changes = _config_changes(request)
        if config_changes:
            config = {**current.config, **config_changes}
            changes["config"] = {name: value for name, value in config.items() if value is not None}
        new_key = _key(request.key)
        custom_host = changes["custom_host"] if "custom_host" in changes else current.custom_host
        _check_key(current.provider, new_key, custom_host, has_secret=current.secret_ref is not None)
        if new_key is not None:
            changes["secret_ref"] = self._secrets.put_secret(secret_name(current.id), new_key)
            changes["masked_key"] = mask_key(new_key)
        if changes:
            changes["updated_at"] = self._now()
            with _unquoted_not_found():
                current = self._store.update_virtual_key(current.id, changes)
        return {"id": current.id, "slug": current.slug, "object": OBJECT}

    def delete(self, key: str) -> dict[str, Any]:
        with _unquoted_not_found():
            binding = self._store.get_virtual_key(key)
            self._store.delete_virtual_key(binding.id)
        if binding.secret_ref is not None:
            self._discard_secret(binding.id, binding.secret_ref)
        return {}

    def exists(self, key: str) -> bool:
        try:
            self._store.get_virtual_key(key)
        except VirtualKeyNotFound:
            return False
        return True

    def _check_slug_free(self, slug: str) -> None:
        if self.exists(slug):
            raise Conflict("slug is already in use by another virtual key; choose another one.", param="slug")

    def _discard_secret(self, binding_id: str, secret_ref: str) -> None:
        """Deletes (or schedules the deletion of) a secret no binding uses; a failure is logged, not raised."""
        try:
            self._secrets.delete_secret(secret_ref)
        except CuecardError as exc:
            log.warning("virtual key %s: its provider key could not be deleted from the secret store (%s); "
                        "delete it there by hand", binding_id, type(exc).__name__)


@contextmanager
def _unquoted_not_found() -> Iterator[None]:
    """The stores' not-found errors quote the id or slug asked for; a caller may have pasted a key there."""
    try:
        yield
    except VirtualKeyNotFound as exc:
        raise VirtualKeyNotFound("No virtual key has this id or slug.", code=exc.code) from None


# --- validation ----------------------------------------------------------------------------------


def _provider(value: str) -> str:
    if value not in PROVIDERS:
        raise InvalidRequest(f"Unknown provider; use one of {', '.join(PROVIDERS)}.", param="provider",
                             code="unknown_provider")
    return value


def _key(value: str | None) -> str | None:
    """The provider key, or None if none was sent ("" counts as none: the SDK drops empty strings anyway)."""
    if not value:
        return None
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in value):
        raise InvalidRequest("key must not contain whitespace or control characters.", param="key")
    return value


def _check_key(provider: str, key: str | None, custom_host: str | None, *, has_secret: bool) -> None:
    if provider in KEY_FORBIDDEN:
        if key is not None:
            raise InvalidRequest(f"A {provider} virtual key takes no key: {KEY_FORBIDDEN[provider]}.", param="key",
                                 code="key_not_allowed")
        return
    if key is not None or has_secret:
        return
    if provider in KEY_REQUIRED:
        raise InvalidRequest(f"A {provider} virtual key needs the provider's API key in key.", param="key",
                             code="missing_required_parameter")
    if provider == "openai" and not custom_host:
        raise InvalidRequest("An openai virtual key needs the provider's API key in key, unless custom_host points "
                             "at a server that needs none (Ollama, vLLM).", param="key", code="missing_required_parameter")


def _custom_host(value: str | None) -> str | None:
    """An http(s) base URL, without a trailing slash; "" or None means none. Never quoted in errors."""
    if not value:
        return None
    problem = "custom_host must be an http:// or https:// base URL, such as http://127.0.0.1:11434/v1."
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in value):
        raise InvalidRequest(problem, param="custom_host")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise InvalidRequest(problem, param="custom_host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(problem, param="custom_host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("custom_host must not carry credentials; put the provider key in key.", param="custom_host")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise InvalidRequest("custom_host is a base URL: no query string or fragment.", param="custom_host")
    return value.rstrip("/")


def _headers(headers: Mapping[str, str], *, current: Mapping[str, str] | None = None) -> dict[str, str]:
    """Extra request headers. Names are quoted in errors, values never.

    Answers show values masked, so a client may send back what it read: on update, a value equal to
    the masked form of the header's current value keeps the current value. Any other value holding
    the mask is refused rather than stored in place of a real one."""
    stored = {name.lower(): value for name, value in (current or {}).items()}
    if len(headers) > MAX_HEADERS:
        raise InvalidRequest(f"headers: at most {MAX_HEADERS} headers.", param="headers")
    seen: set[str] = set()
    for name, value in headers.items():
        lower = name.lower()
        if not _HEADER_NAME.match(name):
            raise InvalidRequest("headers: a header name is not a valid HTTP token.", param="headers")
        if lower in SECRET_HEADERS:
            raise InvalidRequest(f"headers: {lower!r} carries a credential; put the provider key in key, which is kept "
                                 "in the secret store.", param="headers", code="secret_in_headers")
        if lower in MANAGED_HEADERS:
            raise InvalidRequest(f"headers: cuecard sets {lower!r} itself.", param="headers")
        if lower in seen:
            raise InvalidRequest(f"headers: {lower!r} is given twice.", param="headers")
        seen.add(lower)
        if len(value) > 4096 or any(ord(char) < 32 and char != "\t" or ord(char) == 127 for char in value):
            raise InvalidRequest(f"headers: the value of {name!r} is too long or holds control characters.",
                                 param="headers")
    kept = dict(headers)
    for name, value in headers.items():
        if MASK not in value:
            continue
        previous = stored.get(name.lower())
        if previous is None or value != mask_key(previous):
            raise InvalidRequest(f"headers: the value of {name!r} is a masked value, not the header's value; send "
                                 "the real value, or its current masked form to keep it.", param="headers")
        kept[name] = previous
    return kept


def _config_changes(request: VirtualKeyFields) -> dict[str, Any]:
    """Provider options sent in `request`: config key -> value, or None for one sent as "" (to clear it)."""
    given = request.model_fields_set
    changes: dict[str, Any] = {name: getattr(request, field) for name, field in PORTKEY_FIELDS.items()
                               if field in given and getattr(request, field) is not None}
    for target, snake, camel in _CONFIG_FIELDS:
        values = {field: getattr(request, field) for field in (snake, camel) if field in given}
        values = {field: value for field, value in values.items() if value is not None}
        if not values:
            continue
        if len(set(values.values())) > 1:
            raise InvalidRequest(f"{snake} and {camel} disagree; send one of them.", param=snake)
        field, value = next(iter(values.items()))
        if value and not _CONFIG_VALUE[target].match(value):
            raise InvalidRequest(f"{field} has an invalid value.", param=field)
        changes[target] = value or None
    if request.deploymentConfig:
        deployments = [d for d in request.deploymentConfig if d.deploymentName]
        if not deployments:
            raise InvalidRequest("deploymentConfig needs at least one entry with a deploymentName.",
                                 param="deploymentConfig")
        default = next((d for d in deployments if d.is_default), deployments[0])
        for target, value in (("deployment", default.deploymentName), ("api_version", default.apiVersion)):
            if value and not _CONFIG_VALUE[target].match(value):
                raise InvalidRequest("deploymentConfig has an invalid deploymentName or apiVersion.",
                                     param="deploymentConfig")
            if value and changes.get(target) is None:
                changes[target] = value
        changes["deployments"] = [
            {"deployment": d.deploymentName, "api_version": d.apiVersion, "alias": d.alias, "is_default": d is default}
            for d in deployments
        ]
    return changes


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


__all__ = ["VirtualKeyService", "make_virtual_key_slug", "mask_headers", "mask_key", "secret_name", "virtual_key_view"]
