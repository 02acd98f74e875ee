"""Failed sign-ins: counted per name and per address, refused for a while, forgiven by a success."""

from __future__ import annotations

import pytest

from shipyard.auth.throttle import Throttle
from shipyard.errors import PermissionDenied, TooManyAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def fail(throttle: Throttle, name: str, address: str | None, times: int) -> None:
    for _ in range(times):
        throttle.check(name, address)
        throttle.failed(name, address)


def test_five_failures_for_a_name_lock_it_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    fail(throttle, "ana", "10.0.0.1", 4)
    clock.now += 60_000
    fail(throttle, "ana", "10.0.0.2", 1)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("ana", "10.0.0.3")  # another address: the name is locked
    assert isinstance(refused.value, PermissionDenied)
    assert refused.value.details["retry_after"] == 240  # the first four leave the window in 4 minutes
    assert "try again in 240 s" in str(refused.value)
    throttle.check("bob", "10.0.0.4")  # others are not
    clock.now += 240_000 - 1
    with pytest.raises(TooManyAttempts) as still:
        throttle.check("ana")
    assert still.value.details["retry_after"] == 1
    clock.now += 1
    throttle.check("ana")


def test_five_failures_from_an_address_lock_it_for_every_name() -> None:
    throttle = Throttle(clock=Clock())
    for name in ("a", "b", "c", "d", "e"):
        fail(throttle, name, "10.0.0.9", 1)
    with pytest.raises(TooManyAttempts):
        throttle.check("f", "10.0.0.9")
    throttle.check("f", "10.0.0.10")
    throttle.check("f")  # no address known: only the name counts


def test_a_success_clears_the_names_failures_but_not_other_names_from_that_address() -> None:
    throttle = Throttle(clock=Clock())
    fail(throttle, "ana", "10.0.0.1", 4)
    throttle.succeeded("ana", "10.0.0.1")
    fail(throttle, "ana", "10.0.0.1", 4)  # would be 8: the first four were forgiven
    throttle.succeeded("ana", "10.0.0.1")
    fail(throttle, "victim", "10.0.0.1", 3)
    throttle.succeeded("attacker", "10.0.0.1")  # signing in to one's own account forgives nothing else
    fail(throttle, "other", "10.0.0.1", 2)
    with pytest.raises(TooManyAttempts):
        throttle.check("third", "10.0.0.1")


def test_the_tables_stay_bounded() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock, max_keys=10)
    for i in range(50):
        throttle.failed(f"user{i}", f"10.0.0.{i}")
        clock.now += 1000
    assert len(throttle) <= 10
    clock.now += 300_000
    throttle.failed("late", "10.0.1.1")
    assert len(throttle) == 2  # everything older than the window went first
