"""Fair lines: one line per user and a round-robin of turns between them, so nobody waits behind someone's flood.

Each batch starts with the head job of the user whose turn it is, then takes the head jobs of the following users
whose ``batch_key`` matches while the images fit the limit, then further head jobs of the users already taken. A
user's single job therefore waits behind at most one batch of anyone else's, however many jobs they queued.

A ``Preference`` bends the order for one group of jobs (the queue's: the model already on the GPU): a batch may
start at the first user in turn order whose head job the preference wants, passing over the users before it, as
long as the preference lets each of them be passed (the queue's bound: not for longer than a set delay in all). It
never changes anyone's place: a passed user keeps their turn at the front for when the preference lets go.

Nothing here knows about storage, backends or time; the queue decides when to call ``take``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

__all__ = ["FairLines", "Preference", "Waiting"]


class Waiting(Protocol):
    """What the lines need to know about a queued job."""

    @property
    def user_id(self) -> int: ...
    @property
    def batch_key(self) -> Hashable: ...
    @property
    def images(self) -> int: ...


W = TypeVar("W", bound=Waiting)
W_contra = TypeVar("W_contra", bound=Waiting, contravariant=True)


class Preference(Protocol[W_contra]):
    """Which head jobs a batch should rather start with, and whom that may pass over (see the module doc)."""

    def wants(self, item: W_contra) -> bool: ...
    def may_pass(self, item: W_contra) -> bool: ...  # asked of every head the wanted one would pass over
    def passed(self, item: W_contra) -> None: ...  # told of each head actually passed over


class FairLines(Generic[W]):
    def __init__(self) -> None:
        self._lines: dict[int, deque[W]] = {}  # user -> their queued jobs, oldest first; never an empty deque
        self._turns: deque[int] = deque()  # users with queued jobs, whose turn is next first
        self._count = 0
        self.images = 0
        """Images of all queued jobs: whether a full batch is waiting."""

    def __len__(self) -> int:
        return self._count

    def push(self, item: W) -> None:
        """Join the end of the user's line; someone new to the lines gets the last turn."""
        line = self._lines.get(item.user_id)
        if line is None:
            line = self._lines[item.user_id] = deque()
            self._turns.append(item.user_id)
        line.append(item)
        self._count += 1
        self.images += item.images

    def push_front(self, items: Sequence[W]) -> None:
        """Put a batch that could not run back where it was taken from: at the heads of its users' lines, their turns
        first and in the batch's order, so the interruption costs them their place to nobody."""
        users = list(dict.fromkeys(item.user_id for item in items))
        for item in reversed(items):
            self._lines.setdefault(item.user_id, deque()).appendleft(item)
            self._count += 1
            self.images += item.images
        self._turns = deque([*users, *(user for user in self._turns if user not in users)])

    def remove(self, item: W) -> None:
        """Take a queued job out of its line (cancelled); a user left with nothing loses their turn."""
        user = item.user_id
        line = self._lines[user]
        line.remove(item)
        if not line:
            del self._lines[user]
            self._turns.remove(user)
        self._count -= 1
        self.images -= item.images

    def take(self, limit: int, prefer: Preference[W] | None = None) -> list[W]:
        """The next batch of at most ``limit`` images, all with one ``batch_key`` (the order is in the module doc).

        The batch starts with the head job of the user whose turn it is (or, with ``prefer``, of the first user whose
        head it wants), and that job always goes, even if it alone has more images than ``limit``: otherwise a job
        bigger than the backend's batch would never run. The users taken from go to the end of the turns; users
        passed over or skipped (incompatible or too big) keep their place at the front.
        """
        turns = list(self._turns)
        start = self._start(turns, prefer)
        key, taken, total = self._lines[turns[start]][0].batch_key, [], 0
        picked: list[int] = []
        for user in turns[start:]:
            if taken and total >= limit:
                break
            head = self._lines[user][0]
            if not taken or (head.batch_key == key and total + head.images <= limit):
                taken.append(self._lines[user].popleft())
                total += head.images
                picked.append(user)
        more = True
        while more and total < limit:
            more = False
            for user in picked:
                line = self._lines[user]
                if line and line[0].batch_key == key and total + line[0].images <= limit:
                    taken.append(line.popleft())
                    total += taken[-1].images
                    more = True
        chosen = set(picked)
        self._turns = deque([*(user for user in turns if user not in chosen),
                             *(user for user in picked if self._lines[user])])
        for user in picked:
            if not self._lines[user]:
                del self._lines[user]
        self._count -= len(taken)
        self.images -= total
        return taken

    def _start(self, turns: list[int], prefer: Preference[W] | None) -> int:
        """Where in ``turns`` the batch starts: the first user whose head ``prefer`` wants; but when a head before it
        may not be passed over any more (it has waited its share) and no head that may not be passed is wanted, that
        head's user (the due heads of the wanted group go first, so a batch of due jobs costs no extra switch). The
        heads before the start are told they were passed over. Without a preference, or with nothing wanted, the
        user whose turn it is."""
        if prefer is None:
            return 0
        heads = [self._lines[user][0] for user in turns]
        start = next((index for index, head in enumerate(heads) if prefer.wants(head)), 0)
        due = [index for index, head in enumerate(heads) if not prefer.may_pass(head)]
        if any(index < start for index in due) and not any(prefer.wants(heads[index]) for index in due):
            start = due[0]
        for head in heads[:start]:
            prefer.passed(head)
        return start

    def __iter__(self) -> Iterator[W]:
        """Queued jobs in the order the turns would take them one at a time (batching ignored), lazily: asking for
        one job's place reads only the line ahead of it."""
        users, depth = list(self._turns), 0
        while users:
            still = []
            for user in users:
                line = self._lines[user]
                yield line[depth]
                if len(line) > depth + 1:
                    still.append(user)
            users, depth = still, depth + 1
