"""`./dev sam-local`: every function built by `sam build` and run by SAM CLI in a Lambda-like Python 3.13
container, against moto, with the sample events in events/ and events/env.json as shipped.

What it does, in order (docs/sam-local.md has the why):
1. Docker: the running daemon, else dockerd installed (apt) and started by this run (tests/sam_local/docker_host.py).
   Where Docker cannot run, one line says why and the run is skipped (exit 0; 1 with --require-docker).
2. The image: Debian trixie's Python 3.13 with awslambdaric, built offline once and cached (image.py).
3. `sam build` for this machine's architecture (`Architecture` parameter, LAMBDA_PLATFORM for the Makefile).
4. moto in a container (moto.py), where host.docker.internal points; `cuecard table create` makes the table
   from template.yaml and loads the sample prompts; a rule on the `default` bus copies every event to an
   SQS queue this run reads.
5. `sam local invoke` of every function with every sample event, each answer checked, and `sam local
   start-api` once, rendered and completed through with the Portkey SDK.
6. The streaming function's built artifact: run.sh started in the same image with the environment SAM
   would give it, and a completion streamed through it from the mock provider (stream_probe.py).
Everything started is stopped by id or pid; the image and the package caches are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from tests.sam_local.docker_host import Docker, Skip, ensure_docker
from tests.sam_local.image import ensure_image, machine
from tests.sam_local.log import elapsed, log
from tests.sam_local.moto import MotoContainer, ensure_packages
from tests.sam_local.sam import BUILD_DIR, CACHE, ENV_VARS, REGION, Sam, StartApi

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TABLE_ENV = json.loads(ENV_VARS.read_text())
CAPTURE_QUEUE = "cuecard-sam-local-events"
CAPTURE_RULE = "cuecard-sam-local-all"

# Every sample event, and the function it is for. A new file in events/ must be added here (checked below).
CREATE_EVENT = "http-api-create-prompt.json"
RENDER_EVENTS = ("http-api-render.json", "http-api-stage-render.json", "rest-api-render.json")
WORKER_EVENT = "sqs-jobs.json"
STREAM_EVENT = "dynamodb-stream-changes.json"
SAMPLE_EVENTS = {CREATE_EVENT: "ApiFunction", **dict.fromkeys(RENDER_EVENTS, "ApiFunction"),
                 WORKER_EVENT: "WorkerFunction", STREAM_EVENT: "ChangeEventsFunction"}

SLOW_MOCK_SLUG = "mock-slow"  # the binding the streaming check uses (stream_probe.py)
SLOW_MOCK_DELAY_MS = 60  # between words


class Timings:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        seconds = time.monotonic() - started
        self.rows.append((name, seconds))
        log(f"{name}: ok ({seconds:.1f} s)")


# --- the checks ------------------------------------------------------------------------------------


def _headers(answer: dict[str, Any]) -> dict[str, str]:
    headers = {name.lower(): value for name, value in (answer.get("headers") or {}).items()}
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = values[0]
    return headers


def check_created(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert body["object"] == "prompt" and body["slug"] == "release-notes" and body["version"] == 1, body
    assert body["id"] and body["version_id"], body


def check_render(answer: dict[str, Any]) -> None:
    """support-reply@production (version 2 of the sample) rendered with the events' variables and override."""
    assert answer["statusCode"] == 200, answer
    headers = _headers(answer)
    assert headers["content-type"] == "application/json", headers
    assert headers["x-cuecard-prompt-slug"] == "support-reply" and headers["x-cuecard-prompt-version"] == "2", headers
    assert headers["x-portkey-request-id"], headers
    body = json.loads(answer["body"])
    assert body["success"] is True, body
    data = body["data"]
    assert data["temperature"] == 0.1 and data["max_tokens"] == 400 and data["model"] == "mock-1", data
    assert data["messages"] == [
        {"role": "system", "content": "You are a support agent for Acme. Answer in a friendly tone."},
        {"role": "user", "content": "Where is my order?"}], data["messages"]


class Bus:
    """Every event on the functions' buses, copied by an EventBridge rule to an SQS queue (both in moto)."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        from infra.aws_clients import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY

        options = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": LOCAL_ACCESS_KEY,
                   "aws_secret_access_key": LOCAL_SECRET_KEY}
        self.sqs = boto3.client("sqs", **options)
        events = boto3.client("events", **options)
        self.queue = self.sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        buses = {TABLE_ENV[f]["CUECARD_EVENT_BUS"] for f in ("WorkerFunction", "ChangeEventsFunction")}
        for bus in buses:
            if bus != "default":
                events.create_event_bus(Name=bus)
            events.put_rule(Name=CAPTURE_RULE, EventBusName=bus,
                            EventPattern=json.dumps({"source": ["cuecard.jobs", "cuecard.prompts"]}))
            events.put_targets(Rule=CAPTURE_RULE, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        self._held: list[dict[str, Any]] = []

    def receive(self, source: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The events from `source`, in the order they arrived; fails unless there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            wanted = [event for event in self._held if event["source"] == source]
            if len(wanted) >= count or time.monotonic() > deadline:
                break
            answer = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                self._held.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        self._held = [event for event in self._held if event["source"] != source]
        assert len(wanted) == count, f"{len(wanted)} {source} events arrived, not {count}: {wanted}"
        return wanted


def check_jobs(delivered: list[dict[str, Any]]) -> None:
    """The three jobs of events/sqs-jobs.json, as `cuecard.jobs` results on the bus (docs/events.md)."""
    records = json.loads((EVENTS / WORKER_EVENT).read_text())["Records"]
    render_job, complete_job = (json.loads(records[i]["body"])["job_id"] for i in (0, 1))
    by_job = {event["detail"].get("job_id"): event for event in delivered}
    assert set(by_job) == {render_job, complete_job, None}, by_job

    rendered = by_job[render_job]
    assert rendered["detail-type"] == "Job Succeeded", rendered
    detail = rendered["detail"]
    assert detail["status"] == "succeeded" and detail["mode"] == "render" and detail["prompt_version"] == 2, detail
    assert detail["result"]["data"]["temperature"] == 0.1, detail
    assert detail["result"]["data"]["messages"][0]["content"] == \
        "You are a support agent for Acme. Answer in a warm tone.", detail

    completed = by_job[complete_job]
    assert completed["detail-type"] == "Job Succeeded", completed
    completion = completed["detail"]["result"]
    assert completion["object"] == "chat.completion" and completion["provider"] == "mock", completion
    assert completion["choices"][0]["message"]["content"] == \
        "[mock] You said: Can I change my delivery address?", completion

    failed = by_job[None]
    assert failed["detail-type"] == "Job Failed", failed
    assert failed["detail"]["status"] == "failed" and failed["detail"]["error"]["code"] == "invalid_json", failed


def expected_change_events() -> list[tuple[str, str]]:
    """What the handler's own code makes of events/dynamodb-stream-changes.json, computed here, in process."""
    from core.change_events import ChangeEventRelay
    from infra.stream_records import stored_change

    class Recorder:
        def __init__(self) -> None:
            self.events: list[Any] = []

        def publish(self, events: Any) -> None:
            self.events.extend(events)

    recorder = Recorder()
    relay = ChangeEventRelay(recorder)
    for record in json.loads((EVENTS / STREAM_EVENT).read_text())["Records"]:
        relay.relay(stored_change(record))
    return sorted((event.detail_type, json.dumps(dict(event.detail), sort_keys=True)) for event in recorder.events)


def check_stream_probe(result: dict[str, Any]) -> str:
    assert "error" not in result, result
    assert result["create_status"] == 200, result
    assert result["status"] == 200, result
    assert result["headers"]["content-type"].startswith("text/event-stream"), result["headers"]
    text = "".join(piece for _, piece in result["pieces"])
    data = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert data and data[-1] == "[DONE]", text[-500:]
    chunks = [json.loads(item) for item in data[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    expected = "[mock] You said: " + result["question"]
    assert content == expected, (content, expected)
    # Word by word, SLOW_MOCK_DELAY_MS apart: the first words reach the client long before the last.
    words = len(expected.split())
    times = [at for at, piece in result["pieces"] if '"content"' in piece]
    spread = times[-1] - times[0]
    assert len(result["pieces"]) >= words and spread >= (words - 2) * SLOW_MOCK_DELAY_MS / 1000 * 0.5, \
        f"{len(result['pieces'])} pieces over {spread:.3f} s for {words} words: not streamed"
    return f"{len(result['pieces'])} pieces over {spread:.2f} s, {words} words"


# --- the run ---------------------------------------------------------------------------------------


def seed(endpoint: str) -> str:
    """`cuecard table create` on moto (the table as template.yaml defines it, the sample prompts, an admin key),
    and the slow mock binding the streaming check uses. Returns the admin key it printed."""
    from core.models import VirtualKey
    from handlers.container import open_stores
    from infra.settings import Settings

    table = TABLE_ENV["ApiFunction"]["CUECARD_TABLE"]
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "CUECARD_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "cuecard"), "table", "create", "--table", table,
                           "--dynamodb-endpoint", endpoint, "--region", REGION],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert re.search(r"Loaded [1-9]\d* sample prompts\.", done.stderr), done.stderr
    admin_key = done.stdout.strip().splitlines()[-1]
    stores = open_stores(Settings(table_name=table, dynamodb_endpoint=endpoint, region=REGION))
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    stores.virtual_keys.create_virtual_key(VirtualKey(
        id=str(uuid.uuid4()), slug=SLOW_MOCK_SLUG, name="Mock, slowed down", provider="mock", created_at=now,
        updated_at=now, config={"token_delay_ms": SLOW_MOCK_DELAY_MS}))
    stores.close()
    return admin_key


def check_every_sample_event_is_covered() -> None:
    on_disk = {path.name for path in EVENTS.glob("*.json")} - {ENV_VARS.name}
    assert on_disk == set(SAMPLE_EVENTS), f"events/ and tests/sam_local/run.py disagree: {on_disk ^ set(SAMPLE_EVENTS)}"


def run(docker: Docker, timings: Timings) -> None:
    check_every_sample_event_is_covered()
    architecture = machine()
    with timings.step("image"):
        image = ensure_image(docker, architecture)
        try:
            docker.run_cli(["run", "--rm", "--pull", "never", "--network", "none", image, "true"])
        except RuntimeError as exc:
            raise Skip(f"Docker cannot run containers here: {str(exc).strip().splitlines()[-1]}") from None
    sam = Sam(docker, architecture)
    sam.image = image
    with timings.step(f"sam build ({architecture})"):
        sam.build()
    with timings.step("moto packages"):
        packages = ensure_packages(architecture)
    with MotoContainer(docker, image, packages) as moto:
        sam.moto_ip = moto.ip
        with timings.step("cuecard table create on moto"):
            admin_key = seed(moto.endpoint)
            bus = Bus(moto.endpoint)

        with timings.step(f"ApiFunction {CREATE_EVENT}"):
            check_created(sam.invoke("ApiFunction", EVENTS / CREATE_EVENT))
        for name in RENDER_EVENTS:
            with timings.step(f"ApiFunction {name}"):
                check_render(sam.invoke("ApiFunction", EVENTS / name))

        with timings.step(f"WorkerFunction {WORKER_EVENT}"):
            assert sam.invoke("WorkerFunction", EVENTS / WORKER_EVENT) == {"batchItemFailures": []}
            check_jobs(bus.receive("cuecard.jobs", 3))

        with timings.step(f"ChangeEventsFunction {STREAM_EVENT}"):
            assert sam.invoke("ChangeEventsFunction", EVENTS / STREAM_EVENT) == {"batchItemFailures": []}
            expected = expected_change_events()
            published = bus.receive("cuecard.prompts", len(expected))
            assert sorted((e["detail-type"], json.dumps(e["detail"], sort_keys=True)) for e in published) == expected

        with timings.step("start-api + Portkey SDK"):
            check_start_api(sam, docker, admin_key)

        with timings.step("StreamFunction artifact: run.sh streams on Python 3.13"):
            summary = check_streaming_artifact(sam, docker, moto.ip)
        log(f"StreamFunction: {summary}")


def check_start_api(sam: Sam, docker: Docker, admin_key: str) -> None:
    from portkey_ai import Portkey

    before = docker.sam_containers()
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        with StartApi(sam, CACHE / "start-api.log") as api:
            client = Portkey(api_key=admin_key, base_url=f"{api.base_url}/v1", timeout=120, max_retries=0)
            variables = {"product": "Acme", "style": "three bullet points", "changes": "renders are faster"}
            rendered = client.prompts.render(prompt_id="release-notes", variables=variables)
            assert rendered.success is True, rendered
            data = rendered.data.model_dump(exclude_none=True)
            assert [m["content"] for m in data["messages"]] == [
                "You write release notes for Acme, in three bullet points.", "Summarise: renders are faster"], data
            assert data["temperature"] == 0.4 and data["max_tokens"] == 200, data
            completion = client.prompts.completions.create(prompt_id="release-notes", variables=variables)
            assert completion.choices[0].message.content == "[mock] You said: Summarise: renders are faster", completion
            assert completion.provider == "mock", completion
    finally:
        for container in docker.sam_containers() - before:  # warm containers SAM left behind, if any
            docker.remove_container(container)


def check_streaming_artifact(sam: Sam, docker: Docker, moto_ip: str) -> str:
    """StreamFunction's built artifact, started by its run.sh in the image, with SAM's environment for it."""
    environment = sam.resolved_env("StreamFunction")
    port = environment["AWS_LWA_PORT"]
    with tempfile.NamedTemporaryFile("w", suffix=".env") as env_file:
        env_file.write("".join(f"{name}={value}\n" for name, value in sorted(environment.items())))
        env_file.flush()
        container = docker.start_container([
            "--dns", "127.0.0.1", "--add-host", f"host.docker.internal:{moto_ip}", "--env-file", env_file.name,
            "--volume", f"{BUILD_DIR / 'StreamFunction'}:/var/task:ro",
            "--volume", f"{Path(__file__).with_name('stream_probe.py')}:/probe/stream_probe.py:ro",
            "--workdir", "/var/task", "--memory", "1024m", "--entrypoint", "/var/task/run.sh", sam.image or ""])
    try:
        done = subprocess.run([docker.cli, "exec", container, "python3", "/probe/stream_probe.py", port,
                               environment["CUECARD_ADMIN_KEY"]], capture_output=True, text=True, env=docker.env(),
                              timeout=120)
        assert done.returncode == 0, done.stderr + docker.logs(container)
        try:
            return check_stream_probe(json.loads(done.stdout))
        except AssertionError:
            print(docker.logs(container), file=sys.stderr)
            raise
    finally:
        docker.remove_container(container)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev sam-local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--require-docker", action="store_true",
                        help="fail, instead of skipping, where Docker cannot run")
    args = parser.parse_args(argv)
    timings = Timings()
    try:
        docker = ensure_docker()
        try:
            run(docker, timings)
        finally:
            docker.stop()
    except Skip as reason:
        if args.require_docker:
            print(f"./dev sam-local: FAILED: Docker cannot run here (--require-docker): {reason}", file=sys.stderr)
            return 1
        print(f"./dev sam-local: skipped: {reason}", file=sys.stderr)
        return 0
    width = max(len(name) for name, _ in timings.rows)
    print("\n".join(f"  {name:<{width}}  {seconds:6.1f} s" for name, seconds in timings.rows), file=sys.stderr)
    log(f"passed: every function, every sample event ({elapsed():.0f} s in all)")
    return 0
