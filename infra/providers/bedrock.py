"""`bedrock`: Amazon Bedrock's Converse / ConverseStream through boto3, signed with the Lambda's IAM role.

boto3 blocks, so each call runs in a worker thread; a stream is pumped from its own thread into an
asyncio.Queue, so chunks reach the caller as Bedrock sends them. botocore's standard retry mode
retries throttling, 5xx and dropped connections of the call itself; an error event that arrives
before the first chunk is retried here, with the shared backoff. Nothing is retried after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any, AsyncIterator

from core.errors import BadGateway, CuecardError, GatewayTimeout, InvalidRequest, UpstreamError
from core.providers import DEFAULT_TIMEOUTS, ProviderCall, Timeouts
from infra import aws_clients
from infra.providers import bedrock_translation as bt
from infra.providers import openai_shapes as oa
from infra.providers.retry import RetryPolicy

log = logging.getLogger(__name__)

PROVIDER = "bedrock"
SERVICE = "bedrock-runtime"
MAX_MESSAGE_CHARS = 1000

# Bedrock error code -> (HTTP status, core error family). The status is the one Bedrock documents.
_UPSTREAM_CODES: dict[str, int] = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceQuotaExceededException": 429,
}
_TIMEOUT_CODES = frozenset({"ModelTimeoutException"})
_BAD_GATEWAY_CODES = frozenset({
    "InternalServerException", "ServiceUnavailableException", "ModelErrorException", "ModelStreamErrorException",
})
# In-stream error events worth another attempt while nothing has reached the caller yet.
_RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ModelNotReadyException", "InternalServerException", "ServiceUnavailableException",
})
_UPSTREAM_TYPES: dict[int, str] = {
    400: "invalid_request_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
}


def error_code(exc: BaseException) -> str:
    """The error code, as the API names it: in-stream error events come as `throttlingException`."""
    response = getattr(exc, "response", None)
    code = str((response.get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""
    return code[:1].upper() + code[1:]


def translate_error(exc: BaseException) -> CuecardError:
    """The one mapping from botocore errors (and Bedrock's in-stream error events) to core errors."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        ReadTimeoutError,
    )

    if isinstance(exc, CuecardError):
        return exc
    if isinstance(exc, ClientError):  # EventStreamError (an error event mid-stream) is one too
        code = error_code(exc)
        message = _clip(str((exc.response.get("Error") or {}).get("Message") or code or "unknown error"))
        if code in _TIMEOUT_CODES:
            return GatewayTimeout(f"The model on {PROVIDER} timed out: {message}")
        if code in _BAD_GATEWAY_CODES:
            return BadGateway(f"The provider {PROVIDER} failed ({code}): {message}")
        status = _UPSTREAM_CODES.get(code) or int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
                                                  or 0)
        if 400 <= status <= 499:
            return UpstreamError(message, status=status, type_=_UPSTREAM_TYPES.get(status), code=code or None)
        return BadGateway(f"The provider {PROVIDER} failed ({code or status}): {message}")
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError, TimeoutError)):
        return GatewayTimeout(f"The provider {PROVIDER} timed out ({type(exc).__name__}).")
    if isinstance(exc, ParamValidationError):
        return InvalidRequest(_clip(f"The request does not fit Bedrock's Converse API: {exc}"))
    if isinstance(exc, NoCredentialsError):
        return BadGateway(f"No AWS credentials are available to call {PROVIDER}.")
    if isinstance(exc, NoRegionError):
        return BadGateway(f"No AWS region is configured for {PROVIDER}.")
    if isinstance(exc, BotoCoreError):  # EndpointConnectionError, ConnectionClosedError, ...
        return BadGateway(f"The connection to the provider {PROVIDER} failed ({type(exc).__name__}).")
    return BadGateway(f"The call to the provider {PROVIDER} failed ({type(exc).__name__}).")


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "..."


class BedrockProvider:
    """The `bedrock` adapter. One boto3 client per (region, endpoint, timeouts), made on first use."""

    def __init__(self, *, retry: RetryPolicy | None = None, region: str | None = None,
                 endpoint_url: str | None = None, **_settings: Any) -> None:
        self._retry = retry or RetryPolicy()  # its max_attempts is botocore's too (the first call included)
        self._region = region  # else the binding's config.region, else AWS_REGION / AWS_DEFAULT_REGION
        self._endpoint_url = endpoint_url  # else the binding's custom_host (a VPC endpoint), else AWS's
        self._clients: dict[tuple[str, str | None, float, float], Any] = {}
        self._lock = threading.Lock()

    # --- the boto3 client ------------------------------------------------------------------------

    def region_for(self, call: ProviderCall) -> str:
        region = (call.binding.config.get("region") or self._region or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION"))
        if not region:
            raise InvalidRequest("The Bedrock virtual key has no region (config.region) and none is set.",
                                 param="virtual_key")
        return str(region)

    def client(self, region: str, timeouts: Timeouts = DEFAULT_TIMEOUTS, endpoint_url: str | None = None) -> Any:
        """The bedrock-runtime client for a region (made once, then reused: clients are thread-safe)."""
        endpoint_url = endpoint_url or self._endpoint_url
        read_timeout = max(timeouts.first_byte, timeouts.read)
        key = (region, endpoint_url, float(timeouts.connect), float(read_timeout))
        client = self._clients.get(key)
        if client is None:
            with self._lock:  # boto3 sessions are not thread-safe: clients are made one at a time
                client = self._clients.get(key)
                if client is None:
                    client = self._make_client(region, endpoint_url, timeouts.connect, read_timeout)
                    self._clients[key] = client
        return client

    def _make_client(self, region: str, endpoint_url: str | None, connect: float, read: float) -> Any:
        try:
            return aws_clients.client(SERVICE, region, endpoint_url, local=False, max_attempts=self._retry.max_attempts,
                                      connect_timeout=connect, read_timeout=read)
        except ModuleNotFoundError:
            raise CuecardError("The bedrock provider needs the aws extra on this server: pip install 'cuecard[aws]'",
                               code="provider_not_installed") from None

    def _client_for(self, call: ProviderCall) -> Any:
        return self.client(self.region_for(call), call.timeouts, call.binding.custom_host or None)

    # --- calls -----------------------------------------------------------------------------------

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        request = bt.to_converse_request(call.body)
        client = self._client_for(call)
        try:
            async with asyncio.timeout(call.timeouts.total):
                response = await asyncio.to_thread(client.converse, **request)
        except TimeoutError as exc:
            raise GatewayTimeout(f"The provider {PROVIDER} did not answer within {call.timeouts.total:g}s.") from exc
        except Exception as exc:
            raise self._logged(exc, "converse") from exc
        request_id = (response.get("ResponseMetadata") or {}).get("RequestId") or call.request_id
        return bt.to_openai_completion(response, model=request["modelId"], id=bt.completion_id(request_id))

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:
        request = bt.to_converse_request(call.body)
        client = self._client_for(call)
        include_usage = oa.include_usage(call.body)
        deadline = time.monotonic() + call.timeouts.total
        attempt = 0
        while True:
            attempt += 1
            pump = _StreamPump(client, request)
            yielded = False
            try:
                first = await pump.next(self._wait(deadline, call.timeouts.connect + call.timeouts.first_byte))
                request_id = first if isinstance(first, str) and first else call.request_id
                translator = bt.ConverseStreamTranslator(model=request["modelId"], id=bt.completion_id(request_id),
                                                         include_usage=include_usage)
                while True:
                    wait = call.timeouts.read if yielded else call.timeouts.first_byte
                    event = await pump.next(self._wait(deadline, wait))
                    if event is _END:
                        break
                    for chunk in translator.feed(event):
                        yielded = True
                        yield chunk
                for chunk in translator.finish():
                    yield chunk
                return
            except _Failed as failed:
                exc = failed.error
                delay = None if yielded else self._retry_delay(exc, attempt)
                if delay is None:
                    raise self._logged(exc, "converse_stream") from exc
                log.info("%s stream attempt %d failed (%s); retrying in %.2fs", PROVIDER, attempt, error_code(exc), delay)
            except TimeoutError as exc:
                raise GatewayTimeout(f"The provider {PROVIDER} stopped sending within the time allowed.") from exc
            finally:
                pump.close()
            await asyncio.sleep(delay)

    def _retry_delay(self, exc: BaseException, attempt: int) -> float | None:
        """Another attempt for an error event that came before any chunk (botocore retried the call itself)."""
        from botocore.exceptions import EventStreamError

        if isinstance(exc, EventStreamError) and error_code(exc) in _RETRYABLE_CODES:
            return self._retry.delay(attempt)
        return None

    @staticmethod
    def _wait(deadline: float, wait: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return min(wait, left)

    @staticmethod
    def _logged(exc: BaseException, operation: str) -> CuecardError:
        error = translate_error(exc)
        log.warning("%s %s failed: %s %s -> %s", PROVIDER, operation, type(exc).__name__, error_code(exc),
                    type(error).__name__)
        return error


_END = object()


class _Failed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _StreamPump:
    """Runs `converse_stream` and reads its event stream on a thread of its own, into an asyncio.Queue.

    The queue gets the request id first, then each event, then `_END`, or the exception that ended it.
    `close()` stops the thread: it closes the HTTP body, which ends the blocking read.
    """

    def __init__(self, client: Any, request: dict[str, Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._stopped = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, args=(client, request), name="bedrock-stream", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stopped.set()

    def _run(self, client: Any, request: dict[str, Any]) -> None:
        try:
            response = client.converse_stream(**request)
            self._stream = response["stream"]
            self._put((response.get("ResponseMetadata") or {}).get("RequestId") or "")
            for event in self._stream:
                if self._stopped.is_set():
                    return
                self._put(event)
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, which raises it
            if not self._stopped.is_set():
                self._put(_Failed(exc))
        finally:
            self._close_stream()

    async def next(self, timeout: float) -> Any:
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, _Failed):
            raise item
        return item

    def close(self) -> None:
        if not self._stopped.is_set():
            self._stopped.set()
            self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing a body that is already gone
                pass
