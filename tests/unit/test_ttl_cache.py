"""core.ttl_cache.TtlCache: expiry, LRU bounds, per-value lifetimes, and the generation guard."""

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.ttl_cache import TtlCache


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Loads:
    """A loader that counts its calls and answers `value`."""

    def __init__(self, value="v"):
        self.value = value
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.value


@pytest.fixture
def clock():
    return FakeClock()


def test_an_entry_lives_for_the_ttl(clock):
    cache, load = TtlCache(10.0, 8, clock), Loads()
    assert cache.get_or_load("k", load) == "v"
    clock.now += 9.9
    assert cache.get_or_load("k", load) == "v"
    assert load.calls == 1
    clock.now += 0.2
    cache.get_or_load("k", load)
    assert load.calls == 2


def test_ttl_zero_or_size_zero_caches_nothing(clock):
    for cache in (TtlCache(0, 8, clock), TtlCache(10.0, 0, clock)):
        load = Loads()
        cache.get_or_load("k", load)
        cache.get_or_load("k", load)
        assert load.calls == 2 and len(cache) == 0 and not cache.enabled


def test_an_infinite_ttl_keeps_entries_until_evicted(clock):
    cache, load = TtlCache(math.inf, 8, clock), Loads()
    cache.get_or_load("k", load)
    clock.now += 1e12
    cache.get_or_load("k", load)
    assert load.calls == 1


def test_the_least_recently_used_entry_is_evicted_first(clock):
    cache = TtlCache(60.0, 2, clock)
    a, b, c = Loads("a"), Loads("b"), Loads("c")
    cache.get_or_load("a", a)
    cache.get_or_load("b", b)
    cache.get_or_load("a", a)  # a is now the most recently used
    cache.get_or_load("c", c)  # evicts b
    cache.get_or_load("a", a)
    cache.get_or_load("b", b)
    assert (a.calls, b.calls, c.calls) == (1, 2, 1)


def test_a_value_is_kept_under_every_key_it_names(clock):
    cache = TtlCache(60.0, 8, clock)
    load = Loads({"id": "1", "slug": "one"})
    cache.get_or_load("one", load, keys=lambda value: {"one", value["id"]})
    assert cache.get_or_load("1", Loads("other")) == {"id": "1", "slug": "one"}
    assert load.calls == 1


def test_a_per_value_ttl_shortens_or_skips_an_entry(clock):
    cache = TtlCache(60.0, 8, clock)
    miss = Loads(None)
    cache.get_or_load("gone", miss, ttl=lambda value: 5.0 if value is None else 60.0)
    clock.now += 6
    cache.get_or_load("gone", miss, ttl=lambda value: 0)
    cache.get_or_load("gone", miss)
    assert miss.calls == 3


def test_a_failed_load_keeps_nothing(clock):
    cache = TtlCache(60.0, 8, clock)

    def fail():
        raise LookupError("no")

    with pytest.raises(LookupError):
        cache.get_or_load("k", fail)
    assert len(cache) == 0


def test_invalidate_drops_all_or_the_matching_entries(clock):
    cache = TtlCache(60.0, 8, clock)
    for key in ("a1", "a2", "b1"):
        cache.get_or_load(key, Loads(key))
    cache.invalidate(lambda key, value: key.startswith("a"))
    assert len(cache) == 1
    cache.invalidate()
    assert len(cache) == 0


def test_a_read_that_began_before_an_invalidation_does_not_cache_its_result(clock):
    """Read starts, a write invalidates, the read finishes with the old value: that value must not stay."""
    cache = TtlCache(60.0, 8, clock)

    def stale_read():
        cache.invalidate()  # the write lands while the read is in flight
        return "old"

    assert cache.get_or_load("k", stale_read) == "old"  # the racing read itself may answer the old value
    assert cache.get_or_load("k", Loads("new")) == "new"
    assert cache.get_or_load("k", Loads("newer")) == "new"  # reads after the invalidation are cached again


def test_a_racing_read_in_another_thread_does_not_cache_across_an_invalidation(clock):
    cache = TtlCache(60.0, 8, clock)
    reading, written = threading.Event(), threading.Event()

    def slow_read():
        reading.set()
        written.wait(5)
        return "old"

    reader = threading.Thread(target=cache.get_or_load, args=("k", slow_read))
    reader.start()
    reading.wait(5)
    cache.invalidate()
    written.set()
    reader.join(5)
    assert cache.get_or_load("k", Loads("new")) == "new"


def test_concurrent_readers_are_safe(clock):
    cache = TtlCache(60.0, 16, clock)

    def reader(offset):
        for step in range(500):
            key = (offset + step) % 40
            assert cache.get_or_load(key, lambda key=key: key * 2) == key * 2
            if step % 97 == 0:
                cache.invalidate(lambda k, v: k % 2 == 0)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(reader, range(8)))  # re-raises a reader's failure
    assert len(cache) <= 16


def test_cached_answers_a_live_entry_or_the_default_and_loads_nothing(clock):
    cache, missing = TtlCache(10.0, 2, clock), object()
    assert cache.cached("a", missing) is missing
    cache.get_or_load("a", Loads("a"))
    cache.get_or_load("b", Loads("b"))
    assert cache.cached("a", missing) == "a"  # and a is now the most recently used
    cache.get_or_load("c", Loads("c"))  # evicts b
    assert cache.cached("b", missing) is missing
    clock.now += 10.0
    assert cache.cached("a", missing) is missing
    assert len(cache) == 2  # an expired entry is not dropped by a look
