"""SqsJobReplies with botocore's Stubber: queue addresses, FIFO ids, regions and error mapping."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber

from core.errors import InvalidRequest, StoreUnavailable
from infra import aws_clients
from infra.job_replies import SqsJobReplies, queue_url
from infra.settings import Settings

MESSAGE = {"job_id": "job-1", "status": "succeeded", "mode": "render", "prompt_id": "p", "prompt_version": 1,
           "result": {"success": True, "data": {"messages": [{"role": "user", "content": "héllo"}]}}}
ATTRIBUTES = {"job_id": {"DataType": "String", "StringValue": "job-1"},
              "status": {"DataType": "String", "StringValue": "succeeded"}}


@pytest.mark.parametrize(
    ("address", "url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/replies",
         "https://sqs.eu-west-1.amazonaws.com/123456789012/replies", "eu-west-1"),
        ("https://eu-west-2.queue.amazonaws.com/123456789012/replies",
         "https://eu-west-2.queue.amazonaws.com/123456789012/replies", "eu-west-2"),
        ("arn:aws:sqs:us-west-2:123456789012:replies.fifo",
         "https://sqs.us-west-2.amazonaws.com/123456789012/replies.fifo", "us-west-2"),
        ("arn:aws-cn:sqs:cn-north-1:123456789012:r", "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/r",
         "cn-north-1"),
        ("http://127.0.0.1:9324/000000000000/local", "http://127.0.0.1:9324/000000000000/local", None),
    ],
)
def test_queue_url(address, url, region) -> None:
    assert queue_url(address) == (url, region)


def test_queue_url_rejects_other_addresses() -> None:
    with pytest.raises(InvalidRequest):
        queue_url("https://example.com/queue")


def stubbed(region: str = "us-east-1") -> tuple[object, Stubber]:
    client = aws_clients.client("sqs", region, "http://127.0.0.1:1")  # never reached: the stubber answers
    return client, Stubber(client)


def test_a_result_goes_to_the_queue_as_json_with_attributes() -> None:
    client, stub = stubbed()
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/replies"
    stub.add_response("send_message", {"MessageId": "m-1"},
                      {"QueueUrl": url, "MessageBody": ANY, "MessageAttributes": ATTRIBUTES})
    with stub:
        SqsJobReplies(lambda _region: client).send("arn:aws:sqs:us-east-1:123456789012:replies", MESSAGE)
        stub.assert_no_pending_responses()


def test_the_body_is_the_message() -> None:
    client, stub = stubbed()
    sent: list[dict] = []
    client.meta.events.register("provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(params))
    stub.add_response("send_message", {"MessageId": "m-1"})
    with stub:
        SqsJobReplies(lambda _region: client).send("https://sqs.us-east-1.amazonaws.com/123456789012/q", MESSAGE)
    assert json.loads(sent[0]["MessageBody"]) == MESSAGE
    assert "MessageGroupId" not in sent[0]


def test_fifo_queues_get_a_group_and_a_content_deduplication_id() -> None:
    client, stub = stubbed()
    captured = {}

    def capture(params, **_):
        captured.update(params)

    stub.add_response("send_message", {"MessageId": "m-1"})
    client.meta.events.register("provide-client-params.sqs.SendMessage", capture)
    with stub:
        replies = SqsJobReplies(lambda _region: client)
        replies.send("https://sqs.us-east-1.amazonaws.com/123456789012/replies.fifo", MESSAGE)
    assert captured["MessageGroupId"] == "job-1"
    assert len(captured["MessageDeduplicationId"]) == 64


def test_an_invalid_job_answer_without_job_id_still_goes_out() -> None:
    client, stub = stubbed()
    message = {"job_id": None, "status": "failed", "error": {"message": "Invalid job: ..."}}
    stub.add_response("send_message", {"MessageId": "m-1"}, {
        "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/r.fifo", "MessageBody": ANY,
        "MessageAttributes": {"status": {"DataType": "String", "StringValue": "failed"}},
        "MessageGroupId": "cuecard-jobs", "MessageDeduplicationId": ANY})
    with stub:
        SqsJobReplies(lambda _region: client).send("https://sqs.us-east-1.amazonaws.com/123456789012/r.fifo", message)
        stub.assert_no_pending_responses()


def test_each_region_gets_its_own_client_made_once() -> None:
    made: list[str | None] = []
    clients = {}

    def client_for(region):
        made.append(region)
        client, stub = stubbed(region or "us-east-1")
        stub.add_response("send_message", {"MessageId": "m"})
        stub.add_response("send_message", {"MessageId": "m"})
        stub.activate()
        clients[region] = client
        return client

    replies = SqsJobReplies(client_for)
    replies.send("arn:aws:sqs:eu-west-1:123456789012:a", MESSAGE)
    replies.send("https://sqs.eu-west-1.amazonaws.com/123456789012/b", MESSAGE)
    replies.send("arn:aws:sqs:ap-south-1:123456789012:c", MESSAGE)
    assert made == ["eu-west-1", "ap-south-1"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("AWS.SimpleQueueService.NonExistentQueue", "does not exist"),
        ("QueueDoesNotExist", "does not exist"),
        ("AccessDenied", "may not send"),
        ("KmsAccessDenied", "KMS"),
        ("RequestThrottled", "throttling"),
        ("InvalidMessageContents", "refused"),
        ("SomethingNew", "unavailable"),
    ],
)
def test_sqs_errors_become_core_errors_through_the_one_mapping(code, words) -> None:
    client, stub = stubbed()
    stub.add_client_error("send_message", code, "a message that may quote the body")
    with stub, pytest.raises(StoreUnavailable) as caught:
        SqsJobReplies(lambda _region: client).send("https://sqs.us-east-1.amazonaws.com/123456789012/q", MESSAGE)
    assert words in caught.value.message and "quote" not in caught.value.message


def test_from_settings_with_an_endpoint_uses_one_client_for_every_region() -> None:
    replies = SqsJobReplies.from_settings(Settings(sqs_endpoint="http://127.0.0.1:1", region="eu-central-1"))
    client = replies._client("us-west-2")
    assert client.meta.endpoint_url == "http://127.0.0.1:1" and client.meta.region_name == "eu-central-1"
    assert SqsJobReplies.from_settings(Settings(region="eu-central-1"))._client("us-west-2").meta.region_name == "us-west-2"
