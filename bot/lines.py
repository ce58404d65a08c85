"""Fair lines: one line per user and a round-robin of turns between them, so nobody waits behind someone's flood.

Each batch starts with the head job of the user whose turn it is, then takes the head jobs of the following users
whose ``batch_key`` matches while the images fit the limit, then further head jobs of the users already taken. A
user's single job therefore waits behind at most one batch of anyone else's, however many jobs they queued.

A ``Preference`` bends the order for one group of jobs (the queue's: the model already on the GPU). With it, a
person's jobs that cannot share a batch are independent of each other: a batch takes each person's first job with its
``batch_key``, wherever it stands in their line (their jobs with that key keep their order). The batch serves, in this
order: the first job in round-robin order that is due (it may wait no longer: the queue's bound) and wanted, else the
first due one, else the first wanted one, else plain round-robin; then the due jobs with its key, then the others as
above. It never changes anyone's place: a person whose job was not taken keeps their turn at the front.

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
    """Which jobs a batch should rather serve, and which may wait no longer (see the module doc)."""

    def wants(self, item: W_contra) -> bool: ...
    def due(self, item: W_contra) -> bool: ...


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

    def served(self, items: Sequence[W]) -> None:
        """Take out queued jobs that were started elsewhere (another process on the same queue took them), turning
        the turns as ``take`` would have: their users go to the end, in the order of their turns, so this copy of
        the lines keeps serving people in the same order as the one that took them."""
        users = [user for user in self._turns if user in {item.user_id for item in items}]
        for item in items:
            self._lines[item.user_id].remove(item)
            self._count -= 1
            self.images -= item.images
        self._turns = deque([*(user for user in self._turns if user not in users),
                             *(user for user in users if self._lines[user])])
        for user in users:
            if not self._lines[user]:
                del self._lines[user]

    def take(self, limit: int, prefer: Preference[W] | None = None) -> list[W]:
        """The next batch of at most ``limit`` images, all with one ``batch_key`` (the order is in the module doc).

        The batch starts with the head job of the user whose turn it is (or, with ``prefer``, the job it serves), and
        that job always goes, even if it alone has more images than ``limit``: otherwise a job bigger than the
        backend's batch would never run. The users taken from go to the end of the turns; users skipped
        (incompatible or too big) keep their place at the front.
        """
        anywhere = prefer is not None
        due = [item for item in self if prefer.due(item)] if prefer is not None else []
        first = self._first(prefer, due)
        key, taken, total, picked = first.batch_key, [first], first.images, [first.user_id]
        self._lines[first.user_id].remove(first)

        def join(item: W | None) -> bool:
            """Take ``item`` if it can join: the key, room left, and no earlier job of its user with the key."""
            nonlocal total
            if item is None or item.batch_key != key or total + item.images > limit:
                return False
            if self._next(item.user_id, key, anywhere) is not item:
                return False
            self._lines[item.user_id].remove(item)
            taken.append(item)
            total += item.images
            if item.user_id not in picked:
                picked.append(item.user_id)
            return True

        for item in due:  # right after the first, so that none of them waits for another batch
            if total >= limit:
                break
            join(item)
        turns = list(self._turns)
        for user in turns:
            if total >= limit:
                break
            if user not in picked:
                join(self._next(user, key, anywhere))
        more = True
        while more and total < limit:
            more = False
            for user in picked:
                more = join(self._next(user, key, anywhere)) or more
        chosen = set(picked)
        self._turns = deque([*(user for user in turns if user not in chosen),
                             *(user for user in picked if self._lines[user])])
        for user in picked:
            if not self._lines[user]:
                del self._lines[user]
        self._count -= len(taken)
        self.images -= total
        return taken

    def _first(self, prefer: Preference[W] | None, due: list[W]) -> W:
        """The job a batch starts with: the module doc's order with ``prefer`` (``due``: its due jobs in round-robin
        order), else the head of the first turn."""
        if prefer is not None:
            chosen = next((item for item in due or self if prefer.wants(item)), due[0] if due else None)
            if chosen is not None:
                return chosen
        return self._lines[self._turns[0]][0]

    def _next(self, user: int, key: Hashable, anywhere: bool) -> W | None:
        """The user's next job that can join a batch with ``key``: their first with it (``anywhere``, under a
        preference) or their head only if it has it (plain round-robin keeps each line strictly in order)."""
        line = self._lines[user]
        if not line:
            return None
        if not anywhere:
            return line[0] if line[0].batch_key == key else None
        return next((item for item in line if item.batch_key == key), None)

    def plain(self, limit: int) -> Iterator[list[W]]:
        """The batches plain round-robin would take from here, in order, leaving these lines as they are: what the
        queue measures the preference's bound against."""
        copy: FairLines[W] = FairLines()
        copy._lines = {user: deque(line) for user, line in self._lines.items()}
        copy._turns, copy._count, copy.images = deque(self._turns), self._count, self.images
        while copy:
            yield copy.take(limit)

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
