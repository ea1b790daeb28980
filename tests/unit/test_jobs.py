"""core.jobs over in-memory stores: parsing, running, idempotency on job_id, delivery."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from core.completions import CompletionService
from core.errors import BadGateway, GatewayTimeout, InvalidRequest, StoreUnavailable, UpstreamError
from core.jobs import (
    EVENT_SOURCE,
    FAILED,
    SUCCEEDED,
    JobInProgress,
    JobRunner,
    JobWorker,
    LoopRunner,
    is_transient,
    job_event,
    parse_job,
    salvage,
)
from core.models import VirtualKey
from core.service import PromptService
from tests.unit.fakes import InMemoryStore
from tests.unit.job_fakes import CountingProvider, MemoryLedger, OneProvider, RecordingPublisher, RecordingReplies
from tests.unit.virtual_key_fakes import InMemoryVirtualKeyStore

CHAT = json.dumps([{"role": "system", "content": "You help with {{product}}."}, {"role": "user", "content": "{{question}}"}])
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/replies"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:replies.fifo"


def job(**fields: Any) -> dict[str, Any]:
    return {"job_id": "job-1", "prompt_id": "helper", "mode": "complete",
            "variables": {"product": "Acme", "question": "Hi?"}, **fields}


class Setup:
    def __init__(self) -> None:
        store = InMemoryStore()
        bindings = InMemoryVirtualKeyStore()
        bindings.create_virtual_key(VirtualKey(id="id-mock", slug="mock", name="mock", provider="mock",
                                               created_at="t", updated_at="t"))
        self.prompts = PromptService(store, store, virtual_keys=bindings)
        self.prompts.create_prompt({"name": "Helper", "slug": "helper", "string": CHAT, "model": "m-1",
                                    "parameters": {"temperature": 0.3}, "virtual_key": "mock"})
        self.prompts.create_prompt({"name": "Unbound", "slug": "unbound", "string": CHAT, "parameters": {}})
        self.provider = CountingProvider()
        self.completions = CompletionService(self.prompts, bindings, None, OneProvider(self.provider))  # type: ignore[arg-type]
        self.ledger = MemoryLedger()
        self.publisher = RecordingPublisher()
        self.replies = RecordingReplies()
        self.runner = JobRunner(self.prompts, self.completions)
        self.worker = JobWorker(self.runner, self.ledger, self.publisher, self.replies, lease_seconds=60)

    def handle(self, body: Any) -> Any:
        return self.worker.handle(json.dumps(body) if isinstance(body, dict) else body)


@pytest.fixture
def setup() -> Setup:
    return Setup()


# --- parsing ---------------------------------------------------------------------------------------


def test_a_valid_job_parses_with_defaults() -> None:
    parsed = parse_job('{"job_id": "a", "prompt_id": "p@production", "mode": "render"}')
    assert (parsed.job_id, parsed.prompt_id, parsed.mode) == ("a", "p@production", "render")
    assert parsed.variables == {} and parsed.overrides == {} and parsed.reply_to is None
    assert parse_job(job(reply_to=QUEUE_URL)).reply_to == QUEUE_URL
    assert parse_job(job(reply_to=QUEUE_ARN)).reply_to == QUEUE_ARN


def test_stream_false_is_dropped_and_request_body_puts_variables_beside_overrides() -> None:
    parsed = parse_job(job(overrides={"stream": False, "temperature": 0.1}))
    assert parsed.overrides == {"temperature": 0.1}
    assert parse_job(job(variables=None, overrides=None)).variables == {}
    assert parsed.request_body() == {"temperature": 0.1, "variables": {"product": "Acme", "question": "Hi?"}}


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "must be a JSON object; got an array"),
        (b"\xff\xfe", None, "not valid JSON"),
        (json.dumps({"prompt_id": "p", "mode": "render"}), "job_id", "missing required field 'job_id'"),
        (json.dumps(job(job_id="")), "job_id", "1 to 128 printable"),
        (json.dumps(job(job_id="x" * 129)), "job_id", "1 to 128 printable"),
        (json.dumps(job(job_id="has space")), "job_id", "without spaces"),
        (json.dumps(job(job_id=7)), "job_id", "job_id must be a string; got 7"),
        (json.dumps(job(mode="stream")), "mode", "mode must be 'render' or 'complete'"),
        (json.dumps(job(prompt_id="bad id!")), "prompt_id", "not a valid reference"),
        (json.dumps(job(variables=[1])), "variables", "variables must be an object; got an array"),
        (json.dumps(job(overrides="hot")), "overrides", "overrides must be an object"),
        (json.dumps(job(overrides={"temperature": 5})), "overrides.temperature", "between 0 and 2"),
        (json.dumps(job(overrides={"stream": True})), "overrides.stream", "never stream"),
        (json.dumps(job(overrides={"variables": {}})), "overrides.variables", "job's own 'variables'"),
        (json.dumps(job(reply_to="https://example.com/queue")), "reply_to", "SQS queue URL"),
        (json.dumps(job(temperature=0.2)), "temperature", "Unknown job field 'temperature'"),
    ],
)
def test_an_invalid_job_is_a_clear_invalid_request_naming_the_field(body, param, words) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_job(body)
    assert caught.value.param == param
    assert words in caught.value.message


def test_salvage_reads_what_it_can_of_an_invalid_job() -> None:
    assert salvage(json.dumps({"job_id": "j-9", "mode": "render", "prompt_id": "p", "reply_to": QUEUE_URL, "x": 1})) == {
        "job_id": "j-9", "mode": "render", "prompt_id": "p", "reply_to": QUEUE_URL}
    assert salvage(json.dumps({"job_id": "has space", "mode": "nope", "reply_to": "mailto:x"})) == {}
    assert salvage("{broken") == {}


# --- running -----------------------------------------------------------------------------------


def test_a_render_job_answers_like_the_render_route(setup) -> None:
    message = setup.runner.run(parse_job(job(mode="render", overrides={"temperature": 0.1})))
    assert message["status"] == "succeeded" and message["mode"] == "render"
    assert message["prompt_id"] == "helper" and message["prompt_version"] == 1
    assert message["result"]["success"] is True
    data = message["result"]["data"]
    assert data["temperature"] == 0.1 and data["model"] == "m-1"
    assert data["messages"][0] == {"role": "system", "content": "You help with Acme."}
    assert setup.provider.calls == []


def test_a_complete_job_gives_the_chat_completion(setup) -> None:
    message = setup.runner.run(parse_job(job(overrides={"max_tokens": 5})))
    assert message["status"] == "succeeded" and message["prompt_version"] == 1
    assert message["result"]["object"] == "chat.completion" and message["result"]["provider"] == "mock"
    (call,) = setup.provider.calls
    assert call.stream is False and call.request_id == "job-1" and call.body["max_tokens"] == 5


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"prompt_id": "missing"}, "prompt_not_found"),
        ({"prompt_id": "unbound"}, "missing_virtual_key"),
        ({"mode": "render", "prompt_id": "helper@9"}, "version_not_found"),
    ],
)
def test_a_job_that_cannot_succeed_is_a_failed_result_not_an_error(setup, fields, code) -> None:
    message = setup.runner.run(parse_job(job(**fields)))
    assert message["status"] == "failed" and "result" not in message
    assert message["error"]["code"] == code
    assert set(message["error"]) == {"message", "type", "param", "code"}


def test_a_provider_4xx_fails_the_job_but_429_and_5xx_are_transient(setup) -> None:
    setup.provider.fail_next = [UpstreamError("bad request", status=400, code="invalid_value")]
    message = setup.runner.run(parse_job(job()))
    assert message["status"] == "failed" and message["error"]["code"] == "invalid_value"
    assert message["prompt_version"] == 1
    for error in (UpstreamError("slow down", status=429), BadGateway("down"), GatewayTimeout("slow")):
        setup.provider.fail_next = [error]
        with pytest.raises(type(error)):
            setup.runner.run(parse_job(job()))


def test_is_transient() -> None:
    assert is_transient(StoreUnavailable("x")) and is_transient(RuntimeError("bug"))
    assert not is_transient(InvalidRequest("x")) and not is_transient(UpstreamError("x", status=401))
    assert is_transient(UpstreamError("x", status=408))


def test_a_result_too_large_for_a_message_becomes_a_failed_result(setup) -> None:
    setup.provider.content_bytes = 300_000
    message = setup.runner.run(parse_job(job()))
    assert message["status"] == "failed" and message["error"]["code"] == "result_too_large"


def test_the_loop_runner_keeps_one_loop_for_the_process() -> None:
    runner = LoopRunner()

    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    assert runner.run(loop_id()) == runner.run(loop_id())
    runner.close()


def test_job_events() -> None:
    ok = job_event({"job_id": "j", "status": "succeeded"})
    bad = job_event({"job_id": "j", "status": "failed"})
    assert (ok.source, ok.detail_type, bad.detail_type) == (EVENT_SOURCE, SUCCEEDED, FAILED)


# --- the worker: idempotency and delivery --------------------------------------------------------


def test_a_redelivered_job_calls_the_provider_once_and_republishes_the_same_result(setup) -> None:
    first = setup.handle(job())
    second = setup.handle(job())
    assert (first.action, second.action) == ("ran", "replayed")
    assert len(setup.provider.calls) == 1
    published = setup.publisher.details("job-1")
    assert len(published) == 2 and published[0] == published[1] == first.message
    assert [e.detail_type for e in setup.publisher.events] == [SUCCEEDED, SUCCEEDED]


def test_a_failed_result_is_kept_too(setup) -> None:
    setup.provider.fail_next = [UpstreamError("no", status=400)]
    setup.handle(job())
    setup.handle(job())
    assert len(setup.provider.calls) == 1
    assert [e.detail_type for e in setup.publisher.events] == [FAILED, FAILED]


def test_a_job_another_delivery_is_running_is_retried_later(setup) -> None:
    setup.ledger.claim("job-1", "other", lease_seconds=60)
    with pytest.raises(JobInProgress):
        setup.handle(job())
    assert setup.provider.calls == [] and setup.publisher.events == []


def test_an_abandoned_claim_is_taken_over_once_its_lease_ends(setup) -> None:
    now = [1_000.0]
    setup.ledger.clock = lambda: now[0]
    setup.ledger.claim("job-1", "x", lease_seconds=60)
    now[0] += 61
    assert setup.handle(job()).action == "ran"


def test_a_transient_failure_releases_the_claim_so_the_retry_runs(setup) -> None:
    setup.provider.fail_next = [BadGateway("down")]
    with pytest.raises(BadGateway):
        setup.handle(job())
    assert setup.publisher.events == [] and "job-1" not in setup.ledger.items
    assert setup.handle(job()).action == "ran"
    assert len(setup.provider.calls) == 2


def test_a_failed_delivery_is_retried_from_the_stored_result(setup) -> None:
    setup.publisher.fail_for("job-1", StoreUnavailable("bus down"))
    with pytest.raises(StoreUnavailable):
        setup.handle(job())
    setup.publisher.failures.clear()
    assert setup.handle(job()).action == "replayed"
    assert len(setup.provider.calls) == 1 and len(setup.publisher.events) == 1


def test_a_result_the_ledger_could_not_record_is_still_delivered(setup) -> None:
    setup.ledger.fail_complete = StoreUnavailable("table down")
    assert setup.handle(job()).action == "ran"
    assert len(setup.publisher.events) == 1


def test_a_reused_job_id_is_rejected_without_running(setup) -> None:
    setup.handle(job())
    outcome = setup.handle(job(variables={"product": "Other", "question": "?"}))
    assert outcome.action == "rejected" and outcome.message["error"]["code"] == "job_id_reused"
    assert len(setup.provider.calls) == 1


def test_reply_to_sends_the_result_to_the_queue_not_the_bus(setup) -> None:
    setup.handle(job(reply_to=QUEUE_URL))
    setup.handle(job(reply_to=QUEUE_URL))  # redelivered: replayed to the same queue
    assert setup.publisher.events == []
    assert [queue for queue, _ in setup.replies.sent] == [QUEUE_URL, QUEUE_URL]
    assert setup.replies.sent[0][1]["status"] == "succeeded"
    assert len(setup.provider.calls) == 1


def test_an_invalid_job_is_answered_with_the_reason_and_never_claimed(setup) -> None:
    outcome = setup.handle(job(mode="translate"))
    assert outcome.action == "rejected"
    (event,) = setup.publisher.events
    assert event.detail_type == FAILED
    assert event.detail["job_id"] == "job-1" and event.detail["status"] == "failed"
    assert event.detail["error"]["param"] == "mode" and event.detail["error"]["message"].startswith("Invalid job: ")
    assert setup.ledger.items == {}

    setup.handle("{oops")
    assert setup.publisher.events[1].detail["job_id"] is None
    assert "not valid JSON" in setup.publisher.events[1].detail["error"]["message"]


def test_an_invalid_job_with_a_valid_reply_to_is_answered_there(setup) -> None:
    setup.handle(job(mode="translate", reply_to=QUEUE_ARN))
    assert setup.publisher.events == []
    assert setup.replies.sent[0][0] == QUEUE_ARN and setup.replies.sent[0][1]["status"] == "failed"


def test_an_invalid_job_whose_answer_cannot_be_delivered_raises(setup) -> None:
    setup.publisher.fail_for(None, StoreUnavailable("bus down"))
    with pytest.raises(StoreUnavailable):
        setup.handle("{oops")
