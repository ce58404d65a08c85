"""Admission: whether the queue takes one more job from someone, decided before anything is written.

A token bucket per user (``rate_per_minute``, ``burst``) stops bursts of clicks from one person, a cap on one user's
pending jobs keeps anyone from owning the line, and a cap on the whole queue keeps the wait bounded for everybody.
A job takes as many tokens as it costs: a picture job one, a video its cost in pictures (``JobQueue.cost``, at most
the bucket's size), and a person has at most ``video_per_user`` videos pending.
Roles can raise each limit. A refusal is a ``Refused`` whose ``reason`` can be shown to the person as is.

Everything here is synchronous and takes ``now`` as an argument: checking and taking happen in one step of the
event loop, so two submits cannot both pass a check meant for one, and tests need no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.config import QueueConfig, RoleOverride
from models.text import Text, plural

__all__ = ["Admission", "Limits", "Refused", "TokenBucket"]


class Refused(Exception):
    """A job the queue will not take; ``reason`` is written for the person, ``retry_after`` in seconds if known."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """The limits for one person, after their roles' overrides."""

    rate_per_s: float
    burst: int
    max_pending: int


@dataclass
class TokenBucket:
    """Tokens as they were at ``at``; the refill is computed when asked, so idle buckets cost nothing.

    The capacity is not stored: it depends on the roles of the person at each request.
    """

    tokens: float
    at: float

    def level(self, now: float, rate_per_s: float, burst: float) -> float:
        return min(burst, self.tokens + (now - self.at) * rate_per_s)


EVERYONE = "everyone"
RESUMED = "resumed"
"""The class of a job resumed after a restart: the roles of its person were not stored with it."""


def class_name(override: RoleOverride) -> str:
    return override.name or f"role-{override.role_id}"


def person_classes(config: QueueConfig) -> list[str]:
    """Every class ``Admission.person_class`` can answer, and ``RESUMED``."""
    return list(dict.fromkeys([EVERYONE, *(class_name(o) for o in config.role_overrides), RESUMED]))


class Admission:
    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self._overrides = {o.role_id: o for o in config.role_overrides}
        self._buckets: dict[int, TokenBucket] = {}
        self._pending: dict[int, int] = {}  # user -> queued + running jobs (+ submits being written)
        self._videos: dict[int, int] = {}  # user -> of those, the videos
        self._writing = 0  # submits admitted whose job is not yet stored: they count against max_queue already

    def limits(self, role_ids: Iterable[int] = ()) -> Limits:
        """The most generous value of each limit across the person's roles, so a role can only ever help."""
        rate, burst, pending = self.config.rate_per_minute, self.config.burst, self.config.max_pending_per_user
        for role_id in role_ids:
            override = self._overrides.get(role_id)
            if override is None:
                continue
            rate = max(rate, override.rate_per_minute or 0)
            burst = max(burst, override.burst or 0)
            pending = max(pending, override.max_pending_per_user or 0)
        return Limits(rate / 60, burst, pending)

    def person_class(self, role_ids: Iterable[int] = ()) -> str:
        """What the metrics call this person: the first of ``role_overrides`` (in bot.yaml's order) among their
        roles, else ``everyone``. One label per configured override keeps the metric's series few and known."""
        held = set(role_ids)
        for override in self.config.role_overrides:
            if override.role_id in held:
                return class_name(override)
        return EVERYONE

    def check(self, role_ids: Iterable[int], *, now: float, pending: int, videos: int, queued: int,
              bucket: TokenBucket | None, cost: float = 1.0, video: bool = False) -> TokenBucket:
        """Every limit against counts the caller knows (``pending``: the person's queued and running jobs,
        ``videos``: of those the videos, ``queued``: jobs waiting in line, ``bucket``: theirs, None when full); the
        bucket after taking ``cost`` tokens, or ``Refused``. Both the in-memory ``admit`` and the stored one of
        several processes on one queue (``bot.shared``) decide here, so the limits are written once."""
        limits = self.limits(role_ids)
        if pending >= limits.max_pending:
            raise Refused(plural("You can queue {n} job at a time; wait for one to finish.",
                                 "You can queue {n} jobs at a time; wait for one to finish.", n=limits.max_pending))
        if video and videos >= self.config.video_per_user:
            raise Refused(plural("You can queue {n} video at a time; wait for it to finish.",
                                 "You can queue {n} videos at a time; wait for one to finish.",
                                 n=self.config.video_per_user))
        if queued >= self.config.max_queue:
            raise Refused(Text("The queue is full ({max_queue} jobs); try again in a minute.",
                               max_queue=self.config.max_queue), 60.0)
        tokens = float(limits.burst) if bucket is None else bucket.level(now, limits.rate_per_s, limits.burst)
        cost = self.taken(cost, role_ids)
        if tokens < cost:
            wait = (cost - tokens) / limits.rate_per_s
            raise Refused(Text("You're going a bit fast. Try again in {seconds} s.", seconds=math.ceil(wait)), wait)
        return TokenBucket(tokens - cost, now)

    def taken(self, cost: float, role_ids: Iterable[int]) -> float:
        """The tokens a job of ``cost`` takes: a job dearer than the person's bucket takes a full one."""
        return min(cost, float(self.limits(role_ids).burst))

    @contextmanager
    def admit(self, user_id: int, role_ids: Iterable[int], *, now: float, queued: int, cost: float = 1.0,
              video: bool = False) -> Iterator[None]:
        """Check every limit, take ``cost`` tokens (a picture job one, a draft ``queue.draft_cost`` of one, a video
        its cost in pictures) and count the job as pending (a ``video`` as a video too), for the time its ``with``
        block stores it.

        ``queued`` is how many jobs wait in line now. If the block raises (the job could not be stored), the person
        gets their tokens and pending slot back: a failed submit costs nothing.
        """
        role_ids = list(role_ids)
        pending = self._pending.get(user_id, 0)
        bucket = self.check(role_ids, now=now, pending=pending, videos=self._videos.get(user_id, 0),
                            queued=queued + self._writing, bucket=self._buckets.get(user_id), cost=cost, video=video)
        self._buckets[user_id] = bucket
        self._pending[user_id] = pending + 1
        if video:
            self._videos[user_id] = self._videos.get(user_id, 0) + 1
        self._writing += 1
        try:
            yield
        except BaseException:
            self.release(user_id, video=video)
            self._buckets[user_id].tokens += self.taken(cost, role_ids)  # prune() spares people with a job pending
            raise
        finally:
            self._writing -= 1

    def resume(self, user_id: int, *, video: bool = False) -> None:
        """Count a job from the last run as pending: it was admitted then, so it takes no token and meets no cap."""
        self._pending[user_id] = self._pending.get(user_id, 0) + 1
        if video:
            self._videos[user_id] = self._videos.get(user_id, 0) + 1

    def release(self, user_id: int, *, video: bool = False) -> None:
        """A job of ``user_id`` ended (done, failed, cancelled): it no longer counts against their pending caps."""
        for counts, ended in ((self._pending, True), (self._videos, video)):
            left = counts.get(user_id, 0) - ended
            if left > 0:
                counts[user_id] = left
            else:
                counts.pop(user_id, None)

    def prune(self, now: float) -> None:
        """Forget buckets that have refilled (for the base limits): they hold no information any more."""
        rate, full = self.config.rate_per_minute / 60, self.config.burst
        for user, bucket in list(self._buckets.items()):
            if bucket.level(now, rate, full) >= full and user not in self._pending:
                del self._buckets[user]
