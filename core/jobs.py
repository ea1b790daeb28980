"""Asynchronous jobs: parse a job, run it once (render or complete), and deliver its result.

A job arrives as JSON (an SQS message body in production):

    {"job_id": "...", "prompt_id": "support-reply@production", "variables": {...}, "overrides": {...},
     "mode": "render" | "complete", "reply_to": "<SQS queue URL or ARN>"}   # reply_to is optional

Its result message goes to `reply_to` when the job names a queue, else out as a `cuecard.jobs`
domain event (`Job Succeeded` / `Job Failed`):

    {"job_id", "status": "succeeded" | "failed", "mode", "prompt_id", "prompt_version",
     "result": ... | "error": {"message", "type", "param", "code"}}

`JobWorker.handle` makes jobs idempotent on `job_id`: it claims the id in a `JobLedger` before
running (a delivery that finds it claimed by a live lease fails, to be retried later), stores the
result message there (failed results too), and a redelivery of a finished job delivers the stored
message again instead of calling the LLM. Only a call that failed transiently is made again, and a
delivery that dies mid-call (its lease runs out) is taken over. Results are delivered at least once
(a failed delivery is retried from the stored message), so consumers dedupe on `job_id`.

Errors are split in two: a job that can never succeed (invalid, unknown prompt, a provider's 4xx)
ends in a `failed` message and is done; a transient failure (store or provider unavailable, a
timeout, a failed delivery, another delivery still running the job) raises, so the queue retries it
(after `retry_delay`: soon at first, then less often) and finally dead-letters it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Coroutine, Literal, Mapping, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from core.completions import CompletionService
from core.errors import Conflict, CuecardError, InvalidRequest, UpstreamError
from core.hyperparameters import STREAMING_KEYS as _STREAM_KEYS
from core.hyperparameters import validate_parameters
from core.models import DomainEvent, TemplateVersion
from core.ports import EventPublisher
from core.references import parse_reference
from core.service import PromptService

log = logging.getLogger(__name__)

T = TypeVar("T")

EVENT_SOURCE = "cuecard.jobs"
SUCCEEDED = "Job Succeeded"
FAILED = "Job Failed"
MODES = ("render", "complete")
MAX_JOB_ID_CHARS = 128
# A result message must fit an EventBridge entry (256 KB with its envelope) and an SQS message;
# a larger one becomes a `failed` message with code `result_too_large`.
MAX_MESSAGE_BYTES = 200_000
# Upstream statuses that are worth retrying later rather than failing the job for good.
RETRYABLE_UPSTREAM_STATUSES = frozenset({408, 409, 425, 429})
# Backoff for a job that failed transiently: 10 s after its first delivery, doubling on each one
# after, at most 15 minutes; less up to 20% at random, so jobs that failed together come back spread out.
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 900
RETRY_JITTER = 0.2

# Printable ASCII without spaces: what an SQS FIFO deduplication id accepts, so a job id can be one.
_JOB_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_QUEUE_NAME = r"[A-Za-z0-9_-]{1,80}(?:\.fifo)?"
QUEUE_URL = re.compile(rf"^https?://[A-Za-z0-9.:-]+/(?P<account>\d{{12}})/(?P<name>{_QUEUE_NAME})$")
QUEUE_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):(?P<name>{_QUEUE_NAME})$")


# --- the job ---------------------------------------------------------------------------------


class Job(BaseModel):
    """One job as the queue carries it. Unknown fields are rejected, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    job_id: str
    prompt_id: str
    mode: Literal["render", "complete"]
    variables: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    reply_to: str | None = None

    @field_validator("variables", "overrides", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # as in a render body, null means "not given"

    @field_validator("job_id")
    @classmethod
    def _check_job_id(cls, value: str) -> str:
        if not _JOB_ID.match(value):
            raise PydanticCustomError(
                "job_id", "must be 1 to 128 printable ASCII characters without spaces, such as a UUID")
        return value

    @field_validator("reply_to")
    @classmethod
    def _check_reply_to(cls, value: str | None) -> str | None:
        if value is not None and not is_queue_address(value):
            raise PydanticCustomError(
                "reply_to", "must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>) or "
                            "queue ARN (arn:aws:sqs:<region>:<account>:<queue>)")
        return value

    def request_body(self) -> dict[str, Any]:
        """The render/completion request body the HTTP API would take: variables beside the overrides."""
        return {**self.overrides, "variables": self.variables}

    def fingerprint(self) -> str:
        """Identifies the job's content: a job_id reused for a different job is told apart."""
        return hashlib.sha256(_canonical(self.model_dump()).encode()).hexdigest()


def is_queue_address(value: str) -> bool:
    return bool(QUEUE_URL.match(value) or QUEUE_ARN.match(value))


_FIELD_TYPES = {"job_id": "a string", "prompt_id": "a string", "variables": "an object", "overrides": "an object",
                "reply_to": "a string or null", "mode": "'render' or 'complete'"}


def parse_job(body: str | bytes | Mapping[str, Any]) -> Job:
    """A `Job` from a message body (JSON text) or an already parsed object.

    Raises InvalidRequest naming the field (`param`) for anything wrong: not JSON, not an object, a
    missing or unknown field, a wrong type, a bad reference, invalid overrides, or `stream: true`.
    """
    data = _json_object(body)
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        raise _first_problem(exc) from None
    parse_reference(job.prompt_id, param="prompt_id")
    return job.model_copy(update={"overrides": _checked_overrides(job.overrides)})


def _json_object(body: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            reason = (f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError)
                      else "not UTF-8 text")
            raise InvalidRequest(f"The job is not valid JSON ({reason}).", code="invalid_json") from None
    if not isinstance(body, Mapping):
        raise InvalidRequest(f"A job must be a JSON object; got {_kind_of(body)}.", code="invalid_job")
    return body


def _first_problem(exc: ValidationError) -> InvalidRequest:
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    field = loc[0] if loc else None
    param = ".".join(loc) or None
    if error["type"] == "missing":
        return InvalidRequest(f"The job is missing required field {param!r}.", param=param,
                              code="missing_required_parameter")
    if error["type"] == "extra_forbidden":
        return InvalidRequest(
            f"Unknown job field {param!r}; a job has job_id, prompt_id, mode, variables, overrides and reply_to "
            "(hyperparameters go inside overrides).", param=param, code="unknown_parameter")
    if error["type"] in ("job_id", "reply_to"):
        return InvalidRequest(f"{param} {error['msg']}; got {_short(error.get('input'))}.", param=param)
    if field in _FIELD_TYPES and len(loc) == 1:
        return InvalidRequest(f"{param} must be {_FIELD_TYPES[field]}; got {_short(error.get('input'))}.", param=param)
    return InvalidRequest(f"{param}: {error['msg']}.", param=param)


def _checked_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameter overrides, validated like a render body's root and named `overrides.<key>`."""
    if "variables" in overrides:
        raise InvalidRequest("Put variables in the job's own 'variables' field, not in overrides.",
                             param="overrides.variables")
    if overrides.get("stream") not in (None, False):
        raise InvalidRequest("Jobs never stream: the result is delivered whole. Remove overrides.stream.",
                             param="overrides.stream", code="stream_not_supported")
    kept = {key: value for key, value in overrides.items() if key not in _STREAM_KEYS}
    validate_parameters(kept, prefix="overrides")
    return kept


def salvage(body: Any) -> dict[str, Any]:
    """What can be read of an invalid job, for its `Job Failed` message: job_id, mode, prompt_id, reply_to."""
    try:
        data = _json_object(body)
    except InvalidRequest:
        return {}
    found: dict[str, Any] = {}
    if isinstance(data.get("job_id"), str) and _JOB_ID.match(data["job_id"]):
        found["job_id"] = data["job_id"]
    if data.get("mode") in MODES:
        found["mode"] = data["mode"]
    if isinstance(data.get("prompt_id"), str) and 0 < len(data["prompt_id"]) <= 256:
        found["prompt_id"] = data["prompt_id"]
    if isinstance(data.get("reply_to"), str) and is_queue_address(data["reply_to"]):
        found["reply_to"] = data["reply_to"]
    return found


# --- result messages and events ----------------------------------------------------------------


def succeeded(job: Job, version: TemplateVersion, result: Any) -> dict[str, Any]:
    return {"job_id": job.job_id, "status": "succeeded", "mode": job.mode, "prompt_id": job.prompt_id,
            "prompt_version": version.version, "result": result}


def failed(job_id: str | None, mode: str | None, prompt_id: str | None, error: CuecardError,
           version: TemplateVersion | None = None) -> dict[str, Any]:
    return {"job_id": job_id, "status": "failed", "mode": mode, "prompt_id": prompt_id,
            "prompt_version": version.version if version else None, "error": error_view(error)}


def error_view(error: CuecardError) -> dict[str, Any]:
    return {"message": error.message, "type": error.type, "param": error.param, "code": error.code}


def job_event(message: Mapping[str, Any]) -> DomainEvent:
    """The `cuecard.jobs` event that carries a result message."""
    detail_type = SUCCEEDED if message.get("status") == "succeeded" else FAILED
    return DomainEvent(source=EVENT_SOURCE, detail_type=detail_type, detail=dict(message))


def message_size(message: Mapping[str, Any]) -> int:
    return len(_canonical(message).encode())


def is_transient(error: BaseException) -> bool:
    """True when retrying later may help: the queue should redeliver rather than fail the job.

    Anything that is not a core error is a bug or an unforeseen failure: retried, then dead-lettered.
    """
    if not isinstance(error, CuecardError):
        return True
    if isinstance(error, UpstreamError):
        return error.status in RETRYABLE_UPSTREAM_STATUSES or error.status >= 500
    return isinstance(error, Conflict) or error.status >= 500


def retry_delay(receive_count: int, jitter: float = 0.0) -> int:
    """Seconds until a job message that failed transiently on its `receive_count`-th delivery is delivered
    again: RETRY_BASE_SECONDS x 2^(receive_count - 1), at most RETRY_MAX_SECONDS, less `jitter` (a fraction
    in [0, 1], random in production) x RETRY_JITTER of that. Pure: the caller draws the jitter."""
    doublings = min(max(receive_count, 1) - 1, 32)  # past the cap anyway; keeps the number small
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** doublings)
    jitter = min(max(jitter, 0.0), 1.0)
    return max(1, int(round(ceiling * (1 - RETRY_JITTER * jitter))))


# --- running a job -------------------------------------------------------------------------------


class LoopRunner:
    """Runs coroutines to completion on one event loop kept for the process.

    Provider adapters keep an HTTP client per event loop; one long-lived loop lets a warm worker
    reuse its connections instead of opening a new client for every job.
    """

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(coroutine)

    def close(self) -> None:
        with self._lock:
            if self._runner is not None:
                self._runner.close()
                self._runner = None


class JobRunner:
    """Runs one job: a render, or a (never streamed) completion. Returns its result message.

    A job that cannot succeed gives a `failed` message; a transient error (`is_transient`) raises.
    """

    def __init__(self, prompts: PromptService, completions: CompletionService, *,
                 loop: LoopRunner | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._prompts = prompts
        self._completions = completions
        self._loop = loop or LoopRunner()
        self._max_message_bytes = max_message_bytes

    def run(self, job: Job) -> dict[str, Any]:
        version: TemplateVersion | None = None
        try:
            if job.mode == "render":
                rendered = self._prompts.render(job.prompt_id, job.request_body())
                version = rendered.version
                message = succeeded(job, version, {"success": True, "data": rendered.body})
            else:
                prepared = self._completions.prepare(job.prompt_id, job.request_body(), request_id=job.job_id)
                version = prepared.rendered.version
                if prepared.stream:  # parse_job refuses stream: true; this guards other callers
                    raise InvalidRequest("Jobs never stream.", param="overrides.stream", code="stream_not_supported")
                message = succeeded(job, version, self._loop.run(self._completions.complete(prepared)))
        except Exception as error:
            if is_transient(error):
                raise
            assert isinstance(error, CuecardError)
            return failed(job.job_id, job.mode, job.prompt_id, error, version)
        size = message_size(message)
        if size > self._max_message_bytes:
            return failed(job.job_id, job.mode, job.prompt_id, InvalidRequest(
                f"The job's result is {size} bytes; a result message may hold at most {self._max_message_bytes}. "
                "Lower max_tokens or n in overrides.", param="overrides", code="result_too_large"), version)
        return message


# --- idempotency and delivery --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """What `JobLedger.claim` found: `claimed` (run it; `token` proves the claim), `running` (another
    delivery holds a live claim) or `done` (finished: `message` is its stored result)."""

    state: Literal["claimed", "running", "done"]
    token: str | None = None
    message: Mapping[str, Any] | None = None
    fingerprint: str | None = None


class JobLedger(Protocol):
    """Remembers which jobs ran, by job_id, so a redelivered job never runs twice.

    Raises core errors only (StoreUnavailable when the store fails).
    """

    def claim(self, job_id: str, fingerprint: str, *, lease_seconds: float) -> Claim:
        """Atomically claims `job_id` for `lease_seconds`, unless it is done or claimed by a live lease.
        An expired claim (its delivery died) can be claimed again."""
        ...

    def complete(self, job_id: str, token: str, message: Mapping[str, Any]) -> None:
        """Stores the finished result under the claim `token`; Conflict if the claim was lost."""
        ...

    def release(self, job_id: str, token: str) -> None:
        """Gives a claim up after a transient failure, so the retry can claim it at once."""
        ...


class JobReplies(Protocol):
    """Sends a result message to a job's `reply_to` queue. Raises core errors on failure."""

    def send(self, reply_to: str, message: Mapping[str, Any]) -> None: ...


class JobInProgress(Conflict):
    """Another delivery of the same job is running it: retry this one later."""

    default_code = "job_in_progress"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `JobWorker.handle` did: `ran` the job, `replayed` a stored result, or `rejected` an invalid job."""

    action: Literal["ran", "replayed", "rejected"]
    message: Mapping[str, Any]


class JobWorker:
    """Parses, claims, runs, records and delivers one job. See the module docstring for the rules."""

    def __init__(self, runner: JobRunner, ledger: JobLedger, publisher: EventPublisher, replies: JobReplies, *,
                 lease_seconds: float = 900.0) -> None:
        self._runner = runner
        self._ledger = ledger
        self._publisher = publisher
        self._replies = replies
        self._lease_seconds = lease_seconds

    def handle(self, body: str | bytes | Mapping[str, Any], *, lease_seconds: float | None = None) -> Outcome:
        """Handles one delivery. Returns normally when the job needs no retry; raises when it does.

        `lease_seconds` bounds how long this delivery holds the job: make it outlast the invocation,
        so a delivery that dies frees the job for the next one.
        """
        try:
            job = parse_job(body)
        except InvalidRequest as error:
            found = salvage(body)
            reason = InvalidRequest(f"Invalid job: {error.message}", param=error.param, code=error.code)
            message = failed(found.get("job_id"), found.get("mode"), found.get("prompt_id"), reason)
            log.info("job %s rejected: %s", found.get("job_id"), error.message)
            self._deliver(found.get("reply_to"), message)
            return Outcome("rejected", message)

        fingerprint = job.fingerprint()
        claim = self._ledger.claim(job.job_id, fingerprint, lease_seconds=lease_seconds or self._lease_seconds)
        if claim.state == "running":
            raise JobInProgress(f"Job {job.job_id} is being run by another delivery; retrying later.")
        if claim.state == "done":
            if claim.fingerprint != fingerprint:
                message = failed(job.job_id, job.mode, job.prompt_id, InvalidRequest(
                    f"job_id {job.job_id!r} already named a different job (another prompt_id, mode, variables, "
                    "overrides or reply_to); each job needs its own job_id.", param="job_id", code="job_id_reused"))
                self._deliver(job.reply_to, message)
                return Outcome("rejected", message)
            assert claim.message is not None
            log.info("job %s already finished: delivering its stored result again", job.job_id)
            self._deliver(job.reply_to, claim.message)
            return Outcome("replayed", claim.message)

        assert claim.token is not None
        try:
            message = self._runner.run(job)
        except Exception:
            self._release(job.job_id, claim.token)
            raise
        try:
            self._ledger.complete(job.job_id, claim.token, message)
        except Conflict:
            raise  # our claim expired and another delivery took the job over: it delivers
        except CuecardError as error:
            # The job ran: deliver its result anyway rather than lose it. The claim stays until its lease
            # ends, so only an SQS duplicate arriving after that could run the job again.
            log.warning("job %s: could not record its result (%s); delivering it anyway", job.job_id, error.code)
        self._deliver(job.reply_to, message)
        return Outcome("ran", message)

    def _deliver(self, reply_to: str | None, message: Mapping[str, Any]) -> None:
        if reply_to:
            self._replies.send(reply_to, message)
        else:
            self._publisher.publish([job_event(message)])

    def _release(self, job_id: str, token: str) -> None:
        try:
            self._ledger.release(job_id, token)
        except Exception as error:  # the lease runs out on its own; the original error matters more
            log.warning("job %s: could not release its claim (%s)", job_id, type(error).__name__)


# --- helpers ---------------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _short(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
        return _kind_of(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = [
    "Claim",
    "EVENT_SOURCE",
    "FAILED",
    "Job",
    "JobInProgress",
    "JobLedger",
    "JobReplies",
    "JobRunner",
    "JobWorker",
    "LoopRunner",
    "MAX_MESSAGE_BYTES",
    "Outcome",
    "QUEUE_ARN",
    "QUEUE_URL",
    "SUCCEEDED",
    "error_view",
    "failed",
    "is_queue_address",
    "is_transient",
    "job_event",
    "parse_job",
    "retry_delay",
    "salvage",
    "succeeded",
]
