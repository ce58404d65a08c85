"""bot/admission.py on its own: token buckets, caps, role overrides and refunds, with ``now`` passed in by hand."""

from __future__ import annotations

import pytest

from bot.admission import Admission, Limits, Refused, TokenBucket, person_classes
from bot.config import QueueConfig, RoleOverride

T0 = 1_700_000_000.0


def admission(**limits) -> Admission:
    return Admission(QueueConfig(**{"rate_per_minute": 6, "burst": 2, "max_pending_per_user": 100, **limits}))


def admit(gate: Admission, user: int, roles: tuple[int, ...] = (), *, now: float = T0, queued: int = 0) -> None:
    with gate.admit(user, roles, now=now, queued=queued):
        pass


def test_token_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(tokens=0.5, at=100.0)
    assert bucket.level(105.0, rate_per_s=0.1, burst=2) == pytest.approx(1.0)
    assert bucket.level(200.0, rate_per_s=0.1, burst=5) == 5  # 10.5 refilled, capped by the burst
    assert bucket.tokens == 0.5 and bucket.at == 100.0  # asking does not change it


def test_rate_limit_refuses_with_the_wait_and_refills() -> None:
    gate = admission()
    admit(gate, 1)
    admit(gate, 1)
    with pytest.raises(Refused) as refused:
        admit(gate, 1)
    assert refused.value.reason == "You're going a bit fast. Try again in 10 s." and refused.value.retry_after == 10
    admit(gate, 2)  # a bucket per person
    with pytest.raises(Refused, match="Try again in 6 s"):
        admit(gate, 1, now=T0 + 4)
    admit(gate, 1, now=T0 + 10)


def test_role_overrides_take_the_most_generous_value_of_each_limit() -> None:
    gate = admission(max_pending_per_user=1, role_overrides=[
        RoleOverride(role_id=42, burst=5),
        RoleOverride(role_id=43, max_pending_per_user=3, rate_per_minute=3),  # a lower rate never lowers it
    ])
    assert gate.limits() == Limits(rate_per_s=0.1, burst=2, max_pending=1)
    assert gate.limits([99]) == gate.limits()  # roles without an override change nothing
    assert gate.limits([42, 43, 99]) == Limits(rate_per_s=0.1, burst=5, max_pending=3)
    for _ in range(3):
        admit(gate, 1, (42, 43))
    with pytest.raises(Refused, match="queue 3 jobs"):
        admit(gate, 1, (42, 43))


def test_person_class_is_the_first_configured_override_held() -> None:
    gate = admission(role_overrides=[RoleOverride(role_id=42, name="supporters"), RoleOverride(role_id=43)])
    assert gate.person_class() == gate.person_class([99]) == "everyone"
    assert gate.person_class([43]) == "role-43"
    assert gate.person_class([43, 42]) == "supporters"  # bot.yaml's order decides, not the member's
    assert person_classes(gate.config) == ["everyone", "supporters", "role-43", "resumed"]


def test_pending_cap_counts_until_release() -> None:
    gate = admission(max_pending_per_user=1, burst=10)
    admit(gate, 1)
    with pytest.raises(Refused) as refused:
        admit(gate, 1)
    assert refused.value.reason == "You can queue 1 job at a time; wait for one to finish."
    assert refused.value.retry_after is None
    gate.release(1)
    admit(gate, 1)
    gate.release(1)
    gate.resume(1)  # a job from the last run holds the slot again, without a token
    with pytest.raises(Refused, match="queue 1 job "):
        admit(gate, 1)


def test_queue_cap_counts_jobs_still_being_written() -> None:
    gate = admission(max_queue=3)
    with gate.admit(1, (), now=T0, queued=2), pytest.raises(Refused) as full:
        admit(gate, 2, queued=2)
    assert full.value.reason == "The queue is full (3 jobs); try again in a minute." and full.value.retry_after == 60
    admit(gate, 2, queued=2)
    with pytest.raises(Refused, match="queue is full"):
        admit(gate, 3, queued=3)


def test_a_job_that_could_not_be_stored_costs_nothing() -> None:
    gate = admission(burst=1, max_pending_per_user=1)
    with pytest.raises(OSError), gate.admit(1, (), now=T0, queued=0):
        raise OSError("disk full")
    admit(gate, 1)  # the token and the pending slot came back


def test_prune_forgets_refilled_buckets_of_people_with_nothing_pending() -> None:
    gate = admission()
    admit(gate, 1)
    gate.release(1)
    admit(gate, 2)  # still pending
    gate.prune(T0 + 5)
    assert set(gate._buckets) == {1, 2}  # 1 has 1.5 of 2 tokens: not full yet
    gate.prune(T0 + 10)
    assert set(gate._buckets) == {2}
