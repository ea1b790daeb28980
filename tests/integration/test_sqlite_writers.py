"""Writers in one process take turns on the SQLite store, first come first served, and a writer that
stops waiting (interrupted) does not hold up the ones behind it."""

from __future__ import annotations

import threading
import time

import pytest

from infra.sqlite.database import _TicketLock


class Interrupted(Exception):
    pass


def test_writers_are_served_in_the_order_they_arrived() -> None:
    lock, order = _TicketLock(), []
    release = threading.Event()

    def first() -> None:
        with lock:
            release.wait(5)

    def later(number: int) -> None:
        with lock:
            order.append(number)

    threads = [threading.Thread(target=first)] + [threading.Thread(target=later, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)  # each arrives after the one before
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_an_interrupted_waiter_does_not_block_those_behind_it(monkeypatch: pytest.MonkeyPatch) -> None:
    lock, served = _TicketLock(), []
    release = threading.Event()
    holder = threading.Thread(target=lambda: [lock.__enter__(), release.wait(5), lock.__exit__()])
    holder.start()
    time.sleep(0.05)

    def interrupted_wait(*_: object, **__: object) -> None:
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(lock._turns, "wait", interrupted_wait)
        with pytest.raises(Interrupted):
            lock.__enter__()  # takes a ticket, then stops waiting
    behind = threading.Thread(target=lambda: [lock.__enter__(), served.append(True), lock.__exit__()])
    behind.start()
    release.set()
    behind.join(5)
    holder.join(5)
    assert served == [True]
