"""The SQS job worker: events/sqs-jobs.json and variations through the real handler, on moto's DynamoDB.

Prompts, versions, labels and the `mock` binding come from examples/ (as `cuecard serve` loads them);
the mock provider is wrapped to count its calls; EventBridge and reply queues are fakes injected
through `build_worker`. The default wiring (EventBridge and SQS adapters) is tested against moto.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from core.completions import CompletionService
from core.errors import BadGateway, StoreUnavailable, UpstreamError
from core.jobs import RETRY_MAX_SECONDS, retry_delay
from core.providers import ProviderCall
from handlers.container import Container, build_container
from handlers.local_seed import load_examples
from handlers.worker import LEASE_MARGIN_SECONDS, build_handler, build_worker
from infra import aws_clients
from infra.dynamodb_job_ledger import DynamoJobLedger, job_key
from infra.dynamodb_table import DynamoTable
from infra.providers.mock import MockProvider
from infra.sqs_visibility import SqsMessageVisibility
from tests.unit.job_fakes import RecordingPublisher, RecordingReplies

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "events" / "sqs-jobs.json").read_text())
RENDER, COMPLETE, MALFORMED = SAMPLE["Records"]
RENDER_JOB = json.loads(RENDER["body"])["job_id"]
COMPLETE_JOB = json.loads(COMPLETE["body"])["job_id"]
REPLY_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/cuecard-replies"


class CountingMock:
    """The offline mock provider, counting its calls; `fail_next` errors are raised first."""

    def __init__(self) -> None:
        self.inner = MockProvider()
        self.calls = 0
        self.fail_next: list[Exception] = []

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        self.calls += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        return await self.inner.complete(call)

    def stream(self, call: ProviderCall) -> Any:
        raise AssertionError("jobs never stream")


class Harness:
    def __init__(self, container: Container) -> None:
        self.mock = CountingMock()
        providers = type("Providers", (), {"provider": lambda _self, _name: self.mock})()
        completions = CompletionService(container.service, container.virtual_keys.bindings,
                                        container.virtual_keys.secrets, providers)
        self.container = dataclasses.replace(container, completions=completions)
        self.publisher = RecordingPublisher()
        self.replies = RecordingReplies()
        self.ledger: DynamoJobLedger | None = None
        self.builds = 0

        def build():
            self.builds += 1
            return build_worker(self.container, self.publisher, self.replies, ledger=self.ledger)

        self._build = build
        self.handler = build_handler(build)

    def delaying_with(self, delays: Any, jitter: float = 0.0) -> Harness:
        """Failed records get their retry delayed through `delays` (a RetryDelays), with a fixed jitter."""
        self.handler = build_handler(self._build, delays=lambda: delays, jitter=lambda: jitter)
        return self

    def __call__(self, *records: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return self.handler({"Records": list(records)}, context)


@pytest.fixture
def seeded(settings) -> Container:
    container = build_container(settings)
    load_examples(container.service, ROOT / "examples" / "prompts", container.virtual_keys.service)
    return container


@pytest.fixture
def worker(seeded) -> Harness:
    return Harness(seeded)


def record(body: Any, message_id: str, template: dict[str, Any] = RENDER) -> dict[str, Any]:
    copied = copy.deepcopy(template)
    copied["body"] = body if isinstance(body, str) else json.dumps(body)
    copied["messageId"] = message_id
    return copied


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# --- the sample event ------------------------------------------------------------------------------


def test_the_sample_event_runs_through_the_handler(worker) -> None:
    response = worker.handler(SAMPLE, None)
    assert response == {"batchItemFailures": []}
    assert [e.detail_type for e in worker.publisher.events] == ["Job Succeeded", "Job Succeeded", "Job Failed"]
    assert {e.source for e in worker.publisher.events} == {"cuecard.jobs"}

    (render,) = worker.publisher.details(RENDER_JOB)
    assert render["status"] == "succeeded" and render["mode"] == "render"
    assert render["prompt_id"] == "support-reply@production" and render["prompt_version"] == 2
    assert render["result"]["success"] is True
    assert render["result"]["data"]["temperature"] == 0.1
    assert render["result"]["data"]["messages"][0]["content"].startswith("You are a support agent for Acme.")

    (complete,) = worker.publisher.details(COMPLETE_JOB)
    assert complete["status"] == "succeeded" and complete["mode"] == "complete" and complete["prompt_version"] == 2
    completion = complete["result"]
    assert completion["object"] == "chat.completion" and completion["provider"] == "mock"
    assert completion["choices"][0]["message"]["content"].startswith("[mock] You said: Can I change")
    assert worker.mock.calls == 1

    malformed = worker.publisher.events[2].detail
    assert malformed["status"] == "failed" and malformed["job_id"] is None
    assert malformed["error"]["code"] == "invalid_json"
    assert malformed["error"]["message"].startswith("Invalid job: The job is not valid JSON")


def test_a_redelivered_batch_never_calls_the_provider_again(worker) -> None:
    worker.handler(SAMPLE, None)
    redelivered = copy.deepcopy(SAMPLE)
    for item in redelivered["Records"]:
        item["attributes"]["ApproximateReceiveCount"] = "2"
    assert worker.handler(redelivered, None) == {"batchItemFailures": []}
    assert worker.mock.calls == 1
    first, second = worker.publisher.details(COMPLETE_JOB)
    assert first == second  # the same completion, republished from the ledger
    assert worker.publisher.details(RENDER_JOB)[0] == worker.publisher.details(RENDER_JOB)[1]
    assert worker.builds == 1  # built once per container


def test_an_invalid_job_names_its_field_and_is_not_retried(worker) -> None:
    bad = record({"job_id": "job-bad", "prompt_id": "support-reply", "mode": "summarize"}, "m-bad")
    response = worker(bad, RENDER)
    assert response == {"batchItemFailures": []}
    (failed,) = worker.publisher.details("job-bad")
    assert failed["error"]["param"] == "mode" and "'render' or 'complete'" in failed["error"]["message"]
    assert worker.publisher.details(RENDER_JOB)[0]["status"] == "succeeded"


def test_a_missing_prompt_is_a_failed_result_not_a_retry(worker) -> None:
    job = {"job_id": "job-404", "prompt_id": "no-such-prompt", "mode": "complete"}
    assert worker(record(job, "m-404")) == {"batchItemFailures": []}
    (failed,) = worker.publisher.details("job-404")
    assert failed["error"]["code"] == "prompt_not_found" and failed["prompt_version"] is None
    assert worker.mock.calls == 0


def test_a_provider_4xx_is_a_failed_result_kept_for_redeliveries(worker) -> None:
    worker.mock.fail_next = [UpstreamError("max_tokens is too large", status=400, code="invalid_value")]
    assert worker(COMPLETE) == {"batchItemFailures": []}
    assert worker(COMPLETE) == {"batchItemFailures": []}
    assert worker.mock.calls == 1
    assert [d["error"]["code"] for d in worker.publisher.details(COMPLETE_JOB)] == ["invalid_value"] * 2


# --- transient failures fail only their record ------------------------------------------------------


def test_a_failed_publish_fails_only_its_record_and_the_retry_replays_the_result(worker) -> None:
    worker.publisher.fail_for(COMPLETE_JOB, StoreUnavailable("The event bus is unavailable; retry shortly."))
    response = worker.handler(SAMPLE, None)
    assert failures(response) == [COMPLETE["messageId"]]
    assert worker.publisher.details(RENDER_JOB) and len(worker.publisher.events) == 2

    worker.publisher.failures.clear()
    assert worker(COMPLETE) == {"batchItemFailures": []}
    assert worker.mock.calls == 1  # the retry delivered the stored completion
    assert worker.publisher.details(COMPLETE_JOB)[0]["result"]["object"] == "chat.completion"


def test_a_provider_outage_fails_only_its_record_and_the_retry_runs_it(worker) -> None:
    worker.mock.fail_next = [BadGateway("The provider mock failed with HTTP 503")]
    assert failures(worker.handler(SAMPLE, None)) == [COMPLETE["messageId"]]
    assert worker.publisher.details(COMPLETE_JOB) == []
    assert worker(COMPLETE) == {"batchItemFailures": []}
    assert worker.mock.calls == 2 and worker.publisher.details(COMPLETE_JOB)[0]["status"] == "succeeded"


def test_an_unavailable_store_fails_the_valid_jobs_but_not_the_malformed_one(worker, settings) -> None:
    worker.ledger = DynamoJobLedger(DynamoTable.from_settings(dataclasses.replace(settings, table_name="no-such-table")))
    response = worker.handler(SAMPLE, None)
    assert failures(response) == [RENDER["messageId"], COMPLETE["messageId"]]
    assert [e.detail_type for e in worker.publisher.events] == ["Job Failed"]
    assert worker.mock.calls == 0


def test_a_job_another_delivery_is_running_fails_that_record_only(worker, settings) -> None:
    DynamoJobLedger(DynamoTable.from_settings(settings)).claim(COMPLETE_JOB, "fp", lease_seconds=300)
    response = worker.handler(SAMPLE, None)
    assert failures(response) == [COMPLETE["messageId"]]
    assert worker.mock.calls == 0


def test_when_even_the_failure_notice_cannot_be_published_the_malformed_record_fails(worker) -> None:
    worker.publisher.fail_for(None, StoreUnavailable("bus down"))
    assert failures(worker.handler(SAMPLE, None)) == [MALFORMED["messageId"]]


def test_a_whole_batch_failing_is_reported_not_raised(worker) -> None:
    worker.publisher.fail_for(None, StoreUnavailable("bus down"))
    assert failures(worker(MALFORMED)) == [MALFORMED["messageId"]]


# --- retry backoff: a transient failure comes back soon, not after the 90-minute visibility timeout --------


@pytest.mark.parametrize("count, seconds", [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (7, 640),
                                            (8, 900), (9, 900), (10**6, 900), (0, 10), (-3, 10)])
def test_the_retry_delay_doubles_from_10_seconds_up_to_15_minutes(count: int, seconds: int) -> None:
    assert retry_delay(count) == seconds


@pytest.mark.parametrize("count", [1, 2, 3, 6, 7, 8, 50])
def test_jitter_takes_off_at_most_a_fifth_of_the_delay(count: int) -> None:
    ceiling = retry_delay(count)
    delays = [retry_delay(count, jitter / 20) for jitter in range(21)]
    assert delays == sorted(delays, reverse=True) and delays[0] == ceiling
    assert delays[-1] == round(ceiling * 0.8) and all(1 <= d <= RETRY_MAX_SECONDS for d in delays)
    assert retry_delay(count, 5.0) == delays[-1] and retry_delay(count, -1.0) == ceiling  # out of range: clamped


JOBS_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/cuecard-jobs"  # the sample's eventSourceARN


class RecordingDelays:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def retry_in(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self.calls.append((queue_arn, receipt_handle, seconds))


def stubbed_visibility() -> tuple[SqsMessageVisibility, Stubber]:
    client = aws_clients.client("sqs", "us-east-1", "http://127.0.0.1:1")  # never reached: the stubber answers
    return SqsMessageVisibility(lambda _region: client), Stubber(client)


def received(template: dict[str, Any], count: int) -> dict[str, Any]:
    copied = copy.deepcopy(template)
    copied["attributes"]["ApproximateReceiveCount"] = str(count)
    return copied


@pytest.mark.parametrize("count, seconds", [(1, 10), (3, 40), (40, RETRY_MAX_SECONDS)])
def test_a_transient_failure_delays_its_retry_by_the_backoff_and_still_fails_the_record(
        worker, count: int, seconds: int) -> None:
    visibility, stub = stubbed_visibility()
    stub.add_response("change_message_visibility", {}, {
        "QueueUrl": JOBS_QUEUE_URL, "ReceiptHandle": COMPLETE["receiptHandle"], "VisibilityTimeout": seconds})
    worker.delaying_with(visibility).mock.fail_next = [BadGateway("The provider mock failed with HTTP 503")]
    with stub:
        response = worker(received(RENDER, count), received(COMPLETE, count))
        stub.assert_no_pending_responses()
    assert failures(response) == [COMPLETE["messageId"]]
    assert worker.publisher.details(RENDER_JOB)[0]["status"] == "succeeded"


def test_jitter_shortens_the_delay(worker) -> None:
    delays = RecordingDelays()
    worker.delaying_with(delays, jitter=1.0).publisher.fail_for(COMPLETE_JOB, StoreUnavailable("bus down"))
    assert failures(worker(received(COMPLETE, 2))) == [COMPLETE["messageId"]]
    assert delays.calls == [(COMPLETE["eventSourceARN"], COMPLETE["receiptHandle"], 16)]


def test_a_record_without_a_receive_count_is_taken_as_a_first_delivery(worker) -> None:
    delays = RecordingDelays()
    worker.delaying_with(delays).replies.fail_with = StoreUnavailable("reply queue down")
    bare = record({**json.loads(RENDER["body"]), "reply_to": REPLY_QUEUE}, "m-bare")
    del bare["attributes"]["ApproximateReceiveCount"]
    assert failures(worker(bare)) == ["m-bare"]
    assert delays.calls == [(RENDER["eventSourceARN"], RENDER["receiptHandle"], 10)]


def test_a_failed_visibility_change_is_logged_and_the_record_still_fails(worker, caplog) -> None:
    visibility, stub = stubbed_visibility()
    stub.add_client_error("change_message_visibility", service_error_code="AccessDenied",
                          service_message="not authorized to perform: sqs:ChangeMessageVisibility", http_status_code=403)
    worker.delaying_with(visibility).mock.fail_next = [BadGateway("The provider mock failed with HTTP 503")]
    caplog.set_level(logging.INFO, logger="cuecard.worker")
    with stub:
        response = worker(COMPLETE)
        stub.assert_no_pending_responses()
    assert failures(response) == [COMPLETE["messageId"]]
    (logged,) = [r.getMessage() for r in caplog.records if "could not delay its retry" in r.getMessage()]
    assert "StoreUnavailable" in logged and "sqs:ChangeMessageVisibility policy on JobsQueue" in logged
    assert COMPLETE["receiptHandle"] not in logged
    # the original failure is still the one reported
    assert any("BadGateway" in r.getMessage() and "to be retried" in r.getMessage() for r in caplog.records)


def test_delays_that_cannot_even_be_built_still_fail_the_record(worker) -> None:
    def broken() -> Any:
        raise RuntimeError("no SQS client")

    worker.handler = build_handler(worker._build, delays=broken)
    worker.mock.fail_next = [BadGateway("The provider mock failed with HTTP 503")]
    assert failures(worker(COMPLETE)) == [COMPLETE["messageId"]]


def test_successes_and_invalid_jobs_delay_nothing(worker) -> None:
    delays = RecordingDelays()
    assert worker.delaying_with(delays).handler(SAMPLE, None) == {"batchItemFailures": []}  # two ran, one invalid
    bad = record({"job_id": "job-bad", "prompt_id": "support-reply", "mode": "summarize"}, "m-bad")
    missing = record({"job_id": "job-404", "prompt_id": "no-such-prompt", "mode": "complete"}, "m-404")
    assert worker(bad, missing, received(COMPLETE, 2)) == {"batchItemFailures": []}  # rejected, failed, replayed
    assert delays.calls == []


# --- reply_to, leases ---------------------------------------------------------------------------------


def test_reply_to_sends_the_result_to_that_queue_instead_of_eventbridge(worker) -> None:
    job = {**json.loads(COMPLETE["body"]), "job_id": "job-reply", "reply_to": REPLY_QUEUE}
    assert worker(record(job, "m-reply"), record(job, "m-reply-again")) == {"batchItemFailures": []}
    assert worker.publisher.events == []
    assert [queue for queue, _ in worker.replies.sent] == [REPLY_QUEUE, REPLY_QUEUE]
    assert worker.replies.sent[0][1]["result"]["object"] == "chat.completion"
    assert worker.replies.sent[0][1] == worker.replies.sent[1][1] and worker.mock.calls == 1


def test_a_failed_reply_fails_the_record(worker) -> None:
    worker.replies.fail_with = StoreUnavailable("The job's reply_to queue does not exist.")
    job = {**json.loads(RENDER["body"]), "reply_to": REPLY_QUEUE}
    assert failures(worker(record(job, "m-reply"))) == ["m-reply"]


def test_a_claim_lasts_as_long_as_the_invocation(worker, settings) -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 120_000

    worker.mock.fail_next = [RuntimeError("stop after the claim")]  # transient: the claim is released
    before = time.time()
    ledger = DynamoJobLedger(DynamoTable.from_settings(settings))
    worker.ledger = ledger
    captured: dict[str, float] = {}
    original = ledger.claim

    def claim(job_id, fingerprint, *, lease_seconds):
        captured["lease"] = lease_seconds
        return original(job_id, fingerprint, lease_seconds=lease_seconds)

    ledger.claim = claim  # type: ignore[method-assign]
    assert failures(worker(COMPLETE, context=Context())) == [COMPLETE["messageId"]]
    assert captured["lease"] == 120 + LEASE_MARGIN_SECONDS
    assert ledger.table.get(job_key(COMPLETE_JOB)) is None  # released after the transient failure
    assert time.time() - before < 60


# --- the deployed wiring, against moto's EventBridge and SQS --------------------------------------------


@pytest.fixture(scope="module")
def moto_events_sqs():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_the_default_handler_publishes_to_eventbridge_and_replies_to_sqs(seeded, settings, moto_events_sqs,
                                                                        monkeypatch) -> None:
    import importlib
    import sys

    sqs = aws_clients.client("sqs", "us-east-1", moto_events_sqs)
    events = aws_clients.client("events", "us-east-1", moto_events_sqs)
    sink = sqs.create_queue(QueueName=f"sink-{settings.table_name}")["QueueUrl"]
    replies = sqs.create_queue(QueueName=f"replies-{settings.table_name}")["QueueUrl"]
    sink_arn = sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    replies_arn = sqs.get_queue_attributes(QueueUrl=replies, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = f"bus-{settings.table_name}"
    events.create_event_bus(Name=bus)
    events.put_rule(Name="jobs", EventBusName=bus, EventPattern=json.dumps({"source": ["cuecard.jobs"]}))
    events.put_targets(Rule="jobs", EventBusName=bus, Targets=[{"Id": "sink", "Arn": sink_arn}])

    for name, value in {"CUECARD_DYNAMODB_ENDPOINT": settings.dynamodb_endpoint, "CUECARD_TABLE": settings.table_name,
                        "CUECARD_EVENT_BUS": bus, "CUECARD_EVENTS_ENDPOINT": moto_events_sqs,
                        "CUECARD_SQS_ENDPOINT": moto_events_sqs, "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("handlers.worker", None)
    module = importlib.import_module("handlers.worker")
    try:
        event = copy.deepcopy(SAMPLE)
        replied = {**json.loads(RENDER["body"]), "job_id": "job-replied", "reply_to": replies_arn}
        event["Records"].append(record(replied, "m-replied"))
        assert module.handler(event, None) == {"batchItemFailures": []}
    finally:
        sys.modules.pop("handlers.worker", None)

    published = _drain(sqs, sink, 3)
    assert sorted((m["detail-type"], m["detail"]["job_id"] or "") for m in published) == sorted(
        [("Job Succeeded", RENDER_JOB), ("Job Succeeded", COMPLETE_JOB), ("Job Failed", "")])
    assert {m["source"] for m in published} == {"cuecard.jobs"}
    (reply,) = _drain(sqs, replies, 1)
    assert reply["job_id"] == "job-replied" and reply["status"] == "succeeded"
    assert reply["result"]["data"]["messages"][0]["content"].startswith("You are a support agent for Acme.")


def _drain(sqs: Any, queue: str, count: int) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(bodies) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert len(bodies) == count, bodies
    return bodies


def test_the_default_delays_change_the_visibility_of_the_record_queue(settings, moto_events_sqs, monkeypatch) -> None:
    from handlers.worker import _default_delays

    sqs = aws_clients.client("sqs", "us-east-1", moto_events_sqs)
    jobs = sqs.create_queue(QueueName=f"jobs-{settings.table_name}", Attributes={"VisibilityTimeout": "5430"})["QueueUrl"]
    jobs_arn = sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=jobs, MessageBody="{}")
    (message,) = sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=1)["Messages"]
    assert sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=1).get("Messages", []) == []  # hidden for 5430 s

    monkeypatch.setenv("CUECARD_SQS_ENDPOINT", moto_events_sqs)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    _default_delays().retry_in(jobs_arn, message["ReceiptHandle"], 0)  # the ARN, as in a record's eventSourceARN
    (again,) = sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    assert again["MessageId"] == message["MessageId"]
