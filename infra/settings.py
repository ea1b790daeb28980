"""Runtime settings, read once from the environment."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, TypeVar

if TYPE_CHECKING:  # the templating engine loads only where renders happen, not in every function
    from core.templating import RenderLimits

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "dynamodb"  # "dynamodb" (AWS, DynamoDB Local) or "sqlite" (one file in data_dir)
    data_dir: str = ".cuecard"  # the sqlite store's folder
    table_name: str = "cuecard"
    dynamodb_endpoint: str | None = None  # None: real AWS
    region: str = "us-east-1"
    pointer_cache_ttl: float = 5.0  # seconds; 0 disables the cache of published/latest/label lookups
    pinned_cache_size: int = 2048
    auth_cache_ttl: float = 60.0
    max_body_bytes: int = 1_048_576
    admin_key: str | None = None
    # Provider keys of virtual keys live in AWS Secrets Manager (the embedded server serves it locally).
    secrets_endpoint: str | None = None  # None: the DynamoDB endpoint when one is set (local), else AWS
    secret_prefix: str = "cuecard/"  # secret names are <prefix>virtual-keys/<binding id>
    secret_cache_ttl: float = 300.0  # seconds a warm process keeps a provider key in memory (0: no cache)
    virtual_key_cache_ttl: float = 30.0  # seconds a warm process keeps a binding in memory (0: no cache)
    secret_force_delete: bool = False  # delete provider keys at once instead of after a recovery window
    secret_recovery_days: int = 7  # Secrets Manager's recovery window for a deleted key (7-30)
    # Calls to LLM providers, in seconds. first_byte bounds the wait for a stream's first token.
    provider_connect_timeout: float = 5.0
    provider_first_byte_timeout: float = 60.0
    provider_read_timeout: float = 120.0
    provider_total_timeout: float = 600.0
    provider_max_attempts: int = 3  # for 429, 5xx and refused connections, before any byte reached the client
    # Event-driven integrations (template.yaml sets these on the worker and change-event functions).
    event_bus_name: str = "default"  # EventBridge bus for cuecard.prompts and cuecard.jobs events
    events_endpoint: str | None = None  # None: AWS (tests point it elsewhere)
    sqs_endpoint: str | None = None  # None: AWS
    job_idempotency_ttl: int = 86_400  # seconds a finished job's result is kept to answer redeliveries
    # What one render may spend (core.templating.RenderLimits); past any of them a render is a 422
    # `render_limit_exceeded` naming the limit.
    # The defaults are RenderLimits' (tests/integration/test_settings.py holds them equal).
    render_max_output_bytes: int = 2_097_152  # UTF-8 bytes of rendered text
    render_max_iterations: int = 10_000  # section bodies rendered
    render_max_partials: int = 1_000  # partial expansions, and distinct partials named
    render_timeout: float = 1.0  # seconds, partial lookups included

    @property
    def render_limits(self) -> RenderLimits:
        from core.templating import RenderLimits

        return RenderLimits(max_output_bytes=self.render_max_output_bytes, max_iterations=self.render_max_iterations,
                            max_partials=self.render_max_partials, timeout=self.render_timeout)

    @property
    def secrets_endpoint_url(self) -> str | None:
        """Where Secrets Manager is reached: the explicit endpoint, else the local DynamoDB one, else AWS."""
        return self.secrets_endpoint or self.dynamodb_endpoint

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            store=_read(env, "CUECARD_STORE", _store, "dynamodb"),
            data_dir=_read(env, "CUECARD_DATA_DIR", str, ".cuecard"),
            table_name=_read(env, "CUECARD_TABLE", str, "cuecard"),
            dynamodb_endpoint=_read(env, "CUECARD_DYNAMODB_ENDPOINT", _endpoint, None),
            region=_first(env, ("AWS_REGION", "AWS_DEFAULT_REGION")) or "us-east-1",
            pointer_cache_ttl=_read(env, "CUECARD_POINTER_CACHE_TTL", _non_negative_float, 5.0),
            pinned_cache_size=_read(env, "CUECARD_PINNED_CACHE_SIZE", _non_negative_int, 2048),
            auth_cache_ttl=_read(env, "CUECARD_AUTH_CACHE_TTL", _non_negative_float, 60.0),
            max_body_bytes=_read(env, "CUECARD_MAX_BODY_BYTES", _positive_int, 1_048_576),
            admin_key=_read(env, "CUECARD_ADMIN_KEY", str, None),
            secrets_endpoint=_read(env, "CUECARD_SECRETS_ENDPOINT", _endpoint, None),
            secret_prefix=_read(env, "CUECARD_SECRET_PREFIX", _secret_prefix, "cuecard/"),
            secret_cache_ttl=_read(env, "CUECARD_SECRET_CACHE_TTL", _non_negative_float, 300.0),
            virtual_key_cache_ttl=_read(env, "CUECARD_VIRTUAL_KEY_CACHE_TTL", _non_negative_float, 30.0),
            secret_force_delete=_read(env, "CUECARD_SECRET_FORCE_DELETE", _boolean, False),
            secret_recovery_days=_read(env, "CUECARD_SECRET_RECOVERY_DAYS", _recovery_days, 7),
            provider_connect_timeout=_read(env, "CUECARD_PROVIDER_CONNECT_TIMEOUT", _positive_float, 5.0),
            provider_first_byte_timeout=_read(env, "CUECARD_PROVIDER_FIRST_BYTE_TIMEOUT", _positive_float, 60.0),
            provider_read_timeout=_read(env, "CUECARD_PROVIDER_READ_TIMEOUT", _positive_float, 120.0),
            provider_total_timeout=_read(env, "CUECARD_PROVIDER_TOTAL_TIMEOUT", _positive_float, 600.0),
            provider_max_attempts=_read(env, "CUECARD_PROVIDER_MAX_ATTEMPTS", _positive_int, 3),
            event_bus_name=_read(env, "CUECARD_EVENT_BUS", str, "default"),
            events_endpoint=_read(env, "CUECARD_EVENTS_ENDPOINT", _endpoint, None),
            sqs_endpoint=_read(env, "CUECARD_SQS_ENDPOINT", _endpoint, None),
            job_idempotency_ttl=_read(env, "CUECARD_JOB_IDEMPOTENCY_TTL", _positive_int, 86_400),
            render_max_output_bytes=_read(env, "CUECARD_RENDER_MAX_OUTPUT_BYTES", _positive_int, 2_097_152),
            render_max_iterations=_read(env, "CUECARD_RENDER_MAX_ITERATIONS", _positive_int, 10_000),
            render_max_partials=_read(env, "CUECARD_RENDER_MAX_PARTIALS", _positive_int, 1_000),
            render_timeout=_read(env, "CUECARD_RENDER_TIMEOUT", _positive_float, 1.0),
        )


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is invalid: {exc}") from None


STORES = ("dynamodb", "sqlite")


def _store(raw: str) -> str:
    if raw not in STORES:
        raise ValueError(f"expected one of {', '.join(STORES)}")
    return raw


def _endpoint(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("expected a URL such as http://127.0.0.1:8000")
    return raw.rstrip("/")


_SECRET_NAME_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@-]*$")


def _secret_prefix(raw: str) -> str:
    if not _SECRET_NAME_CHARS.match(raw) or len(raw) > 256:
        raise ValueError("expected letters, digits and /_+=.@- only, such as cuecard/prod/")
    return raw


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _recovery_days(raw: str) -> int:
    value = int(raw)
    if not 7 <= value <= 30:
        raise ValueError("Secrets Manager's recovery window is 7 to 30 days")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of seconds >= 0")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("expected a number of seconds > 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected an integer > 0")
    return value
