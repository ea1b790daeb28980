"""SqsJobReplies: `core.jobs.JobReplies`, sending a job's result message to its `reply_to` SQS queue.

`reply_to` is a queue URL or ARN (`core.jobs` checked its shape). An ARN becomes the queue's URL;
the message goes through a client for the queue's own region (one client per region, made on first
use), or through the one client of `CUECARD_SQS_ENDPOINT` when that is set. FIFO queues get the
job id as message group and a content hash as deduplication id, so re-sending the same result
within SQS's five-minute window is dropped by SQS itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any, Callable, Mapping

from core.errors import InvalidRequest
from core.jobs import QUEUE_ARN, QUEUE_URL
from infra import aws_clients
from infra.aws_errors import translated
from infra.settings import Settings

SERVICE = "sqs"
# sqs.<region>.amazonaws.com[.cn] and the legacy <region>.queue.amazonaws.com[.cn]
_REGION_IN_HOST = re.compile(r"^(?:sqs\.(?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$")
_DEFAULT_GROUP = "cuecard-jobs"


def queue_url(reply_to: str) -> tuple[str, str | None]:
    """(queue URL, its region if the address names one) for a queue URL or ARN (a reply_to, or the
    eventSourceARN of a jobs queue record)."""
    arn = QUEUE_ARN.match(reply_to)
    if arn:
        region, partition = arn["region"], arn["partition"]
        domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        return f"https://sqs.{region}.{domain}/{arn['account']}/{arn['name']}", region
    url = QUEUE_URL.match(reply_to)
    if not url:
        raise InvalidRequest("reply_to must be an SQS queue URL or ARN.", param="reply_to")
    host = reply_to.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0].lower()
    region = _REGION_IN_HOST.match(host)
    return reply_to, (region["a"] or region["b"]) if region else None


class SqsClients:
    """SQS clients by region, each made on first use by `client_for(region)` (`None`: the default region).
    The one place the job code gets SQS clients: replies here, message visibility in infra/sqs_visibility.py.
    Pass `lambda _region: client` to use one client for everything."""

    def __init__(self, client_for: Callable[[str | None], Any]) -> None:
        self._client_for = client_for
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsClients:
        if settings.sqs_endpoint:  # one local endpoint serves every "region"
            return cls(lambda _region: aws_clients.client(SERVICE, settings.region, settings.sqs_endpoint))
        return cls(lambda region: aws_clients.client(SERVICE, region or settings.region))

    def __call__(self, region: str | None) -> Any:
        client = self._clients.get(region)
        if client is None:
            with self._lock:
                client = self._clients.get(region)
                if client is None:
                    client = self._clients[region] = self._client_for(region)
        return client


class SqsJobReplies:
    """`client_for(region)` gives the SQS client for a region (`None`: the default one); it is called
    once per region. Pass `lambda _region: client` to use one client for everything."""

    def __init__(self, client_for: Callable[[str | None], Any]) -> None:
        self._client = client_for if isinstance(client_for, SqsClients) else SqsClients(client_for)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqsJobReplies:
        return cls(SqsClients.from_settings(settings))

    def send(self, reply_to: str, message: Mapping[str, Any]) -> None:
        url, region = queue_url(reply_to)
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        request: dict[str, Any] = {"QueueUrl": url, "MessageBody": body,
                                   "MessageAttributes": _attributes(message)}
        if url.endswith(".fifo"):
            request["MessageGroupId"] = str(message.get("job_id") or _DEFAULT_GROUP)
            request["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        with translated("send_reply", SERVICE):
            self._client(region).send_message(**request)


def _attributes(message: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """`job_id` and `status` as message attributes, so consumers can route without parsing the body."""
    attributes = {}
    for name in ("job_id", "status"):
        value = message.get(name)
        if isinstance(value, str) and value:
            attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes
