"""The bounded retry policy for provider calls: which failures to retry and how long to wait.

Used only before any response byte or chunk reached the caller (see http_exchange.py). Retried:
HTTP 429 and 5xx, and connections refused or reset before the response headers. Never retried:
timeouts (the provider may still be working, and billing) and anything after the first chunk.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3  # attempts in all, the first one included
    base_delay: float = 0.5  # seconds before the second attempt; doubles each time
    max_delay: float = 8.0  # cap of the exponential backoff
    retry_after_cap: float = 20.0  # a longer Retry-After is not waited for: the error goes back
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.retry_after_cap < 0:
            raise ValueError("delays must be >= 0")

    @staticmethod
    def retryable_status(status: int) -> bool:
        return status == 429 or 500 <= status <= 599

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based), or None: give up."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.retry_after_cap else None
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * (0.5 + 0.5 * self.jitter())  # "equal jitter": between half and all of it


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """`retry-after-ms` (OpenAI), else `retry-after` as seconds or an HTTP date; None if absent or bad."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        value = when.timestamp() - (time.time() if now is None else now)
        return max(0.0, value)
    return value if math.isfinite(value) and value >= 0 else None
