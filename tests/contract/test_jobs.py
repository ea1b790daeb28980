"""JobLedger contract (core/jobs.py): claims, leases on the backend's clock, completion, release, reuse."""

from __future__ import annotations

import pytest

from core.errors import Conflict
from core.jobs import Claim
from tests.contract.conftest import Backend
from tests.contract.support import run_threads, unique

LEASE = 60.0
FINGERPRINT, OTHER = "a" * 64, "b" * 64
MESSAGE = {"job_id": "j", "status": "succeeded", "result": {"text": "héllo ✓", "n": 1.5, "items": [1, None, True]}}


def fields(claim: Claim) -> tuple:
    return claim.state, claim.token, claim.message, claim.fingerprint


def test_a_claim_holds_the_job_until_its_lease_runs_out(backend: Backend) -> None:
    jobs, clock, job = backend.stores.jobs, backend.clock, unique("job")

    first = jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)
    assert first.state == "claimed" and first.token
    assert fields(jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)) == ("running", None, None, FINGERPRINT)
    clock.advance(LEASE - 1)
    assert jobs.claim(job, FINGERPRINT, lease_seconds=LEASE).state == "running"

    clock.advance(2)  # the first delivery died: its lease ran out
    second = jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)
    assert second.state == "claimed" and second.token not in (None, first.token)
    with pytest.raises(Conflict):
        jobs.complete(job, first.token, MESSAGE)  # the stale claim cannot finish the job
    jobs.release(job, first.token)  # nor give the new claim up
    assert jobs.claim(job, FINGERPRINT, lease_seconds=LEASE).state == "running"

    jobs.complete(job, second.token, MESSAGE)
    assert fields(jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)) == ("done", None, MESSAGE, FINGERPRINT)
    clock.advance(LEASE * 10)
    assert fields(jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)) == ("done", None, MESSAGE, FINGERPRINT)
    with pytest.raises(Conflict):
        jobs.complete(job, second.token, {"status": "failed"})  # a done job stays as it finished
    assert jobs.claim(job, FINGERPRINT, lease_seconds=LEASE).message == MESSAGE


def test_a_released_job_can_be_claimed_again_at_once(backend: Backend) -> None:
    jobs, job = backend.stores.jobs, unique("job")
    first = jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)

    jobs.release(job, first.token)

    again = jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)
    assert again.state == "claimed" and again.token not in (None, first.token)
    with pytest.raises(Conflict):
        jobs.complete(job, first.token, MESSAGE)
    jobs.release(unique("never-claimed"), "no-token")  # nothing to give up: no error
    with pytest.raises(Conflict):
        jobs.complete(unique("never-claimed"), "no-token", MESSAGE)


def test_a_reused_job_id_shows_the_first_jobs_fingerprint(backend: Backend) -> None:
    jobs, job = backend.stores.jobs, unique("job")
    first = jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)
    assert fields(jobs.claim(job, OTHER, lease_seconds=LEASE)) == ("running", None, None, FINGERPRINT)

    jobs.complete(job, first.token, MESSAGE)

    assert fields(jobs.claim(job, OTHER, lease_seconds=LEASE)) == ("done", None, MESSAGE, FINGERPRINT)


def test_concurrent_claims_of_one_job_admit_exactly_one(backend: Backend) -> None:
    jobs, job = backend.stores.jobs, unique("job")
    claims: list[Claim] = []

    errors = run_threads(8, lambda number: claims.append(jobs.claim(job, FINGERPRINT, lease_seconds=LEASE)))

    assert errors == []
    assert sorted(claim.state for claim in claims) == ["claimed"] + ["running"] * 7
