"""Splitting traffic between a deployment's routes: weighted draws, sticky keys, vectorised picks."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from shipyard.deploy.traffic import BUCKETS, TrafficSplit, bucket
from shipyard.entities import Deployment, Route
from shipyard.errors import InvalidInput

PRIMARY, CANARY = Route("churn", 3, 90), Route("churn", 7, 10)
DRAWS = 10_000
# Binomial(10,000, 0.1) has a standard deviation of 30: 5 of them is a flake-free bound.
TOLERANCE = 150


def split(primary: int = 90, salt: str = "churn-api") -> TrafficSplit:
    return TrafficSplit([Route("churn", 3, primary), Route("churn", 7, 100 - primary)], salt=salt)


def test_weighted_random_draws_follow_the_weights() -> None:
    s, rng = split(), random.Random(7)
    counts = Counter(s.pick(rng=rng).version for _ in range(DRAWS))
    assert abs(counts[7] - DRAWS * 0.10) < TOLERANCE
    assert counts[3] + counts[7] == DRAWS


def test_vectorised_draws_follow_the_weights() -> None:
    indices = split(75).pick_indices(size=DRAWS, rng=np.random.default_rng(3))
    assert indices.shape == (DRAWS,)
    assert abs(int((indices == 1).sum()) - DRAWS * 0.25) < TOLERANCE * 1.5


def test_sticky_keys_split_by_the_weights_too() -> None:
    keys = [f"user-{i}" for i in range(DRAWS)]
    counts = Counter(r.version for r in split().pick_many(keys))
    assert abs(counts[7] - DRAWS * 0.10) < TOLERANCE
    buckets = Counter(bucket(k, "churn-api") for k in keys)
    assert set(buckets) == set(range(BUCKETS))  # every bucket is reached
    assert max(buckets.values()) < 2 * DRAWS / BUCKETS


def test_the_same_key_always_lands_on_the_same_route() -> None:
    first, again = split(), split()  # a new split object (another replica) agrees
    for key in ("alice", "bob", b"raw-bytes", 12345, "user-42"):
        chosen = first.pick(key)
        assert all(first.pick(key) == chosen for _ in range(20))
        assert again.pick(key) == chosen
    keys = [f"k{i}" for i in range(500)]
    assert first.pick_indices(keys).tolist() == [first.routes.index(first.pick(k)) for k in keys]


def test_raising_the_canary_weight_only_moves_keys_to_the_canary() -> None:
    keys = [f"session-{i}" for i in range(2000)]
    before = [r.version for r in split(90).pick_many(keys)]
    after = [r.version for r in split(75).pick_many(keys)]
    assert all(a == 7 for b, a in zip(before, after, strict=True) if b == 7)  # canary keys stay
    moved = sum(1 for b, a in zip(before, after, strict=True) if b != a)
    assert 0.10 * len(keys) < moved < 0.20 * len(keys)


def test_deployments_split_their_keys_independently() -> None:
    keys = [f"user-{i}" for i in range(2000)]
    a = [bucket(k, "churn-api") for k in keys]
    b = [bucket(k, "fraud-api") for k in keys]
    assert sum(x == y for x, y in zip(a, b, strict=True)) < 0.05 * len(keys)


def test_buckets_and_zero_weight_routes() -> None:
    s = split(90)
    assert [s.index_of_bucket(b) for b in (0, 89, 90, 99)] == [0, 0, 1, 1]
    all_primary = TrafficSplit([Route("churn", 3, 100), Route("churn", 7, 0)])
    assert {all_primary.pick(f"k{i}").version for i in range(300)} == {3}
    all_canary = TrafficSplit([Route("churn", 3, 0), Route("churn", 7, 100)])
    assert set(all_canary.pick_indices(size=300).tolist()) == {1}


def test_of_a_deployment_is_salted_with_its_name() -> None:
    d = Deployment("churn-api", "production", (PRIMARY, CANARY))
    s = TrafficSplit.of(d)
    assert (s.routes, s.salt) == ((PRIMARY, CANARY), "churn-api")
    assert "churn/7=10%" in repr(s)


@pytest.mark.parametrize("weights", [(), (90, 20), (110, -10), (50,)])
def test_bad_weights_are_refused(weights: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInput, match="routes"):
        TrafficSplit([Route("m", i + 1, w) for i, w in enumerate(weights)])


def test_pick_indices_takes_keys_or_size() -> None:
    with pytest.raises(InvalidInput, match="either keys"):
        split().pick_indices()
    with pytest.raises(InvalidInput, match="either keys"):
        split().pick_indices(["a"], size=3)
