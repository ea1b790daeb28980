"""DynamoJobLedger: `core.jobs.JobLedger` on the one table, with conditional writes.

One item per job: `pk = job#<job_id>`, `sk = JOB`. It has no `entity_type` or `alias`, so it never
appears in the `by_type` or `by_alias` index.

    job_state    "running" (claimed) or "done"
    claim_token  the running delivery's token; complete and release are conditioned on it
    lease_until  epoch seconds (N) after which a running claim is abandoned and can be taken over
    fingerprint  sha256 of the job's content, to tell a reused job_id apart
    result       the result message, as JSON text (done only)
    job_status   "succeeded" or "failed" (done only)
    expires_at   epoch seconds (N): the table's TTL attribute. The ledger treats an expired item as
                 absent itself, so TTL only needs to be enabled to clean up, not to be correct.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from botocore.exceptions import ClientError

from core.errors import Conflict
from core.jobs import Claim
from infra.aws_errors import error_code, translated
from infra.dynamodb_table import DynamoTable
from infra.settings import Settings

JOB_SK = "JOB"
RUNNING = "running"
DONE = "done"
TTL_ATTRIBUTE = "expires_at"
_CLAIM_ATTEMPTS = 3

# A job can be claimed when it has no item, its item expired, or its running claim was abandoned.
_CLAIMABLE = ("attribute_not_exists(pk) OR #expires < :now OR (#state = :running AND #lease < :now)")
_NAMES = {"#state": "job_state", "#lease": "lease_until", "#expires": TTL_ATTRIBUTE}


def job_key(job_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"job#{job_id}"}, "sk": {"S": JOB_SK}}


class DynamoJobLedger:
    def __init__(self, table: DynamoTable, *, ttl_seconds: int = 86_400,
                 clock: Callable[[], float] = time.time, new_token: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.table = table
        self._ttl = ttl_seconds
        self._clock = clock
        self._new_token = new_token

    @classmethod
    def from_settings(cls, settings: Settings, table: DynamoTable | None = None) -> DynamoJobLedger:
        """On `table` (shared with the other adapters), else on a client of its own."""
        return cls(table or DynamoTable.from_settings(settings), ttl_seconds=settings.job_idempotency_ttl)

    @translated("job_claim")
    def claim(self, job_id: str, fingerprint: str, *, lease_seconds: float) -> Claim:
        for _ in range(_CLAIM_ATTEMPTS):
            now = self._clock()
            token = self._new_token()
            item = {
                **job_key(job_id),
                "job_id": {"S": job_id},
                "job_state": {"S": RUNNING},
                "claim_token": {"S": token},
                "lease_until": {"N": _seconds(now + lease_seconds)},
                "fingerprint": {"S": fingerprint},
                "claimed_at": {"S": _iso(now)},
                TTL_ATTRIBUTE: {"N": str(int(now) + self._ttl)},
            }
            try:
                self.table.client.put_item(
                    TableName=self.table.name, Item=item, ConditionExpression=_CLAIMABLE,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues={":now": {"N": _seconds(now)}, ":running": {"S": RUNNING}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return Claim("claimed", token=token)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                current = exc.response.get("Item") or self.table.get(job_key(job_id))
            if current is not None:
                return _claim_of(current)
            # The item went away between the write and the read (expired, released): try again.
        raise Conflict(f"Job {job_id} changed hands repeatedly while being claimed; retry.")

    @translated("job_complete")
    def complete(self, job_id: str, token: str, message: Mapping[str, Any]) -> None:
        now = self._clock()
        try:
            self.table.client.update_item(
                TableName=self.table.name, Key=job_key(job_id),
                UpdateExpression="SET #state = :done, #result = :result, #status = :status, finished_at = :at, "
                                 "#expires = :expires REMOVE claim_token, #lease",
                ConditionExpression="claim_token = :token",
                ExpressionAttributeNames={**_NAMES, "#result": "result", "#status": "job_status"},
                ExpressionAttributeValues={
                    ":done": {"S": DONE},
                    ":result": {"S": json.dumps(message, ensure_ascii=False, separators=(",", ":"))},
                    ":status": {"S": str(message.get("status"))},
                    ":at": {"S": _iso(now)},
                    ":expires": {"N": str(int(now) + self._ttl)},
                    ":token": {"S": token},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"The claim on job {job_id} ran out and another delivery took the job over.") from None
            raise

    @translated("job_release")
    def release(self, job_id: str, token: str) -> None:
        try:
            self.table.client.delete_item(
                TableName=self.table.name, Key=job_key(job_id), ConditionExpression="claim_token = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # not ours any more: nothing to give up
                raise


def _claim_of(item: Mapping[str, Any]) -> Claim:
    fingerprint = item.get("fingerprint", {}).get("S")
    if item.get("job_state", {}).get("S") == DONE:
        return Claim("done", message=json.loads(item["result"]["S"]), fingerprint=fingerprint)
    return Claim("running", fingerprint=fingerprint)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
