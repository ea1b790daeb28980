"""JobLedger on SQLite (core.jobs): which jobs ran, claimed under a lease, finished results kept for a TTL."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import Any, Callable, Mapping

from core.errors import Conflict
from core.jobs import Claim
from infra.sqlite.database import Database, to_json

RUNNING, DONE = "running", "done"


class SqliteJobLedger:
    def __init__(self, db: Database, *, ttl_seconds: int = 86_400, clock: Callable[[], float] = time.time,
                 new_token: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._clock = clock
        self._new_token = new_token

    def claim(self, job_id: str, fingerprint: str, *, lease_seconds: float) -> Claim:
        now = self._clock()
        with self._db.write("job_claim") as connection:
            row = connection.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is not None and row["expires_at"] >= now:
                if row["state"] == DONE:
                    return Claim("done", message=json.loads(row["result"]), fingerprint=row["fingerprint"])
                if row["lease_until"] >= now:
                    return Claim("running", fingerprint=row["fingerprint"])
            token = self._new_token()
            connection.execute(
                "INSERT OR REPLACE INTO jobs (job_id, state, fingerprint, claim_token, lease_until, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, RUNNING, fingerprint, token, now + lease_seconds, int(now) + self._ttl),
            )
        return Claim("claimed", token=token)

    def complete(self, job_id: str, token: str, message: Mapping[str, Any]) -> None:
        now = self._clock()
        with self._db.write("job_complete") as connection:
            updated = connection.execute(
                "UPDATE jobs SET state = ?, result = ?, status = ?, claim_token = NULL, lease_until = NULL,"
                " expires_at = ? WHERE job_id = ? AND claim_token = ?",
                (DONE, to_json(message), str(message.get("status")),
                 int(now) + self._ttl, job_id, token),
            ).rowcount
        if not updated:
            raise Conflict(f"The claim on job {job_id} ran out and another delivery took the job over.")

    def release(self, job_id: str, token: str) -> None:
        with self._db.write("job_release") as connection:
            connection.execute("DELETE FROM jobs WHERE job_id = ? AND claim_token = ?", (job_id, token))


def insert_job(connection: sqlite3.Connection, job: Any) -> None:
    """Imports a StoredJob (infra.stores) as it was kept."""
    connection.execute(
        "INSERT OR REPLACE INTO jobs (job_id, state, fingerprint, claim_token, lease_until, result, status, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (job.job_id, job.state, job.fingerprint, job.claim_token, job.lease_until, job.result, job.status,
         job.expires_at),
    )
