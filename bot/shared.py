"""Several bot processes on one queue: what they agree on through the database (PostgreSQL), not in memory.

Each process keeps its own copy of the fair lines (``bot.lines``), mirrored from the queued jobs in the database
(``JobQueue``'s sync loop reads ``live``), forms the next batch from that copy and then claims it (``claim``): one
``UPDATE`` of the rows still queued, locked with ``FOR UPDATE SKIP LOCKED``, so each job is claimed by one process
and runs once; what another process claimed first is dropped from the copy. The rest is what a single process kept
in memory:

- Leases: a claimed job carries ``claimed_by`` (the process, ``process_name``) and ``lease_until``; the holder renews
  the leases of its running jobs and of its results not yet delivered (``renew``). A lease that ran out means its
  process is gone: its running jobs go back in line (``requeue_expired``, their attempts kept, so a job that keeps
  killing processes is still given up), and its stored results are taken over by one other process, which delivers
  them (``take_over_results``): delivery is idempotent, a result already posted is not posted again.
- Cancel: a queued job is cancelled in the database (``cancel_queued``: it loses to a claim made first); a job
  running elsewhere is flagged (``request_cancel``) and its holder stops it at the next step.
- Restarts: a process of the same machine that no longer runs (``dead_here``) holds nothing, so a bot restarted
  after a crash takes its jobs back at once; a process that starts while no other runs (``alone``, from the table
  ``queue_processes`` the heartbeat writes) expires the jobs too old to answer, as a single process's restart does.
- Admission: the token buckets live in the table ``rate_buckets``, taken in a transaction that locks the person's
  row; pending and queue caps are counted from the jobs (``admit``). The limits themselves stay in
  ``Admission.check``.

SQLite serializes writers with ``BEGIN IMMEDIATE``, so the same statements run there without the row locks (tests and
one process use the in-memory queue there: ``JobQueue`` shares only on PostgreSQL).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from bot.admission import Admission, TokenBucket
from bot.database import Database, Transaction
from bot.jobs import RESUME_WINDOW_S

__all__ = ["LiveJob", "SharedJobs", "process_name"]


def process_name() -> str:
    """This process among the others on the queue, as ``claimed_by`` records it: host, pid and a random part (a pid
    is reused after a restart, the random part is not)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def dead_here(name: str) -> bool:
    """Whether ``name`` (``process_name``) is a process of this machine that no longer runs: its jobs need not
    wait for its leases (a bot restarted after a crash takes its own jobs back at once). A pid reused since only
    makes it wait for the lease."""
    host, _, rest = name.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, as someone else
        return False
    return False


@dataclass(frozen=True)
class LiveJob:
    """A queued or running job as the sync loop sees it."""

    id: str
    user_id: int
    state: str
    claimed_by: str | None
    cancel_requested: bool


class SharedJobs:
    """The queue's shared state in the database, for one process (``me``)."""

    def __init__(self, database: Database, *, lease_s: float, me: str | None = None) -> None:
        self.database = database
        self.lease_s = lease_s
        self.me = me or process_name()
        self._writing: collections.Counter[int] = collections.Counter()
        """Per person: this process's submits admitted but not yet stored (they count against their pending cap)."""

    def _marks(self, values: Sequence[object]) -> str:
        return ", ".join("?" * len(values))

    def _locking(self, clause: str) -> str:
        """A row-locking clause where the engine has one (PostgreSQL); SQLite's writers are serialized anyway."""
        return f" {clause}" if self.database.dialect == "postgresql" else ""

    # --- the lines --------------------------------------------------------------------------------------------------

    async def live(self) -> list[LiveJob]:
        """Every queued and running job, oldest first: what each process's lines mirror."""
        rows = await self.database.all(
            "SELECT id, user_id, state, claimed_by, cancel_requested FROM jobs WHERE state IN ('queued', 'running')"
            " ORDER BY created_at, rowid")
        return [LiveJob(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    async def hold(self, job_id: str, until: float) -> None:
        """A job about to be queued here is answered from here first ("queued", in its message): until ``until`` or
        ``release``, another process that runs it waits before showing its result or failure (``held_elsewhere``),
        which that answer would otherwise overwrite."""
        await self.database.write("INSERT INTO job_holds (job_id, held_by, until) VALUES (?, ?, ?)",
                                  (job_id, self.me, until))

    async def release(self, job_id: str) -> None:
        await self.database.write("DELETE FROM job_holds WHERE job_id = ?", (job_id,))

    async def held_elsewhere(self, job_id: str, now: float) -> bool:
        """Whether another process is still answering the person of a job (``hold``)."""
        return await self.database.one("SELECT 1 FROM job_holds WHERE job_id = ? AND held_by != ? AND until > ?",
                                       (job_id, self.me, now)) is not None

    async def claim(self, job_ids: Sequence[str], now: float) -> set[str]:
        """Start those of ``job_ids`` still queued, for this process (an attempt each); the ids it got."""
        if not job_ids:
            return set()
        rows = await self.database.all(
            "UPDATE jobs SET state = 'running', claimed_by = ?, lease_until = ?, started_at = ?,"
            " attempts = attempts + 1, cancel_requested = 0"
            f" WHERE id IN (SELECT id FROM jobs WHERE id IN ({self._marks(job_ids)}) AND state = 'queued'"
            f"{self._locking('FOR UPDATE SKIP LOCKED')})"
            " RETURNING id",
            (self.me, now + self.lease_s, now, *job_ids))
        return {row[0] for row in rows}

    async def put_back(self, job_ids: Sequence[str]) -> None:
        """Jobs this process claimed but will not run (it stops, or the backend is gone) go back in line."""
        if job_ids:
            await self.database.write(
                "UPDATE jobs SET state = 'queued', claimed_by = NULL, lease_until = NULL"
                f" WHERE id IN ({self._marks(job_ids)}) AND state = 'running' AND claimed_by = ?",
                (*job_ids, self.me))

    async def let_go(self) -> None:
        """This process stops: its results not yet delivered are left for another process to take over at once."""
        await self.gone(self.me)

    async def gone(self, name: str) -> None:
        """The process ``name`` holds nothing any more: its leases end now (``requeue_expired`` and
        ``take_over_results`` find its jobs), and it no longer counts as running."""
        await self.database.write(
            "UPDATE jobs SET lease_until = 0 WHERE claimed_by = ? AND (state = 'running' OR (state = 'done' AND"
            " delivered = 0))", (name,))
        await self.database.write("DELETE FROM queue_processes WHERE name = ?", (name,))

    async def holders(self) -> set[str]:
        """The processes that hold jobs, or said they run, other than this one."""
        rows = await self.database.all(
            "SELECT DISTINCT claimed_by FROM jobs WHERE claimed_by IS NOT NULL AND (state = 'running'"
            " OR (state = 'done' AND delivered = 0)) UNION SELECT name FROM queue_processes")
        return {row[0] for row in rows} - {self.me}

    async def alone(self, now: float) -> bool:
        """Whether no other process renewed its leases within ``lease_s``: this one starts the queue again."""
        return await self.database.one("SELECT 1 FROM queue_processes WHERE name != ? AND seen_at > ?",
                                       (self.me, now - self.lease_s)) is None

    # --- leases -----------------------------------------------------------------------------------------------------

    async def renew(self, now: float) -> None:
        """Extend the leases of this process's running jobs and of its results not yet delivered; forget holds that
        ran out (their submit failed, or its process is gone)."""
        await self.database.write(
            "UPDATE jobs SET lease_until = ? WHERE claimed_by = ?"
            " AND (state = 'running' OR (state = 'done' AND delivered = 0))", (now + self.lease_s, self.me))
        await self.database.write("INSERT INTO queue_processes (name, seen_at) VALUES (?, ?)"
                                  " ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at", (self.me, now))
        await self.database.write("DELETE FROM job_holds WHERE until < ?", (now,))

    async def requeue_expired(self, now: float, max_attempts: int) -> list[str]:
        """Running jobs whose process is gone (their lease ran out) go back in line; those that can't be resumed
        (started ``max_attempts`` times, or their interaction too old to answer) are claimed by this process instead,
        to be failed or expired once. Returns the ids claimed that way."""

        async def work(tx: Transaction) -> list[str]:
            doomed = await tx.all(
                "UPDATE jobs SET claimed_by = ?, lease_until = ?"
                " WHERE state = 'running' AND coalesce(lease_until, 0) < ?"
                " AND (attempts >= ? OR interaction_created_at < ?) RETURNING id",
                (self.me, now + self.lease_s, now, max_attempts, now - RESUME_WINDOW_S))
            await tx.write(
                "UPDATE jobs SET state = 'queued', claimed_by = NULL, lease_until = NULL"
                " WHERE state = 'running' AND coalesce(lease_until, 0) < ?", (now,))
            return [row[0] for row in doomed]

        return await self.database.atomically(work)

    async def take_over_results(self, now: float) -> list[str]:
        """Results stored but not delivered whose process is gone: this process holds them now (one process gets
        each), to deliver them."""
        rows = await self.database.all(
            "UPDATE jobs SET claimed_by = ?, lease_until = ?"
            " WHERE state = 'done' AND delivered = 0 AND coalesce(lease_until, 0) < ? RETURNING id",
            (self.me, now + self.lease_s, now))
        return [row[0] for row in rows]

    async def next_delivery_due(self) -> float | None:
        """When the earliest retry of a failed delivery this process holds is due."""
        row = await self.database.one(
            "SELECT min(next_delivery_at) FROM jobs WHERE state = 'done' AND delivered = 0 AND claimed_by = ?",
            (self.me,))
        return None if row is None else row[0]

    async def deliveries_due(self, now: float) -> list[str]:
        """The results this process holds whose delivery is due again, oldest first."""
        rows = await self.database.all(
            "SELECT id FROM jobs WHERE state = 'done' AND delivered = 0 AND claimed_by = ? AND next_delivery_at <= ?"
            " ORDER BY finished_at, rowid", (self.me, now))
        return [row[0] for row in rows]

    # --- cancel -----------------------------------------------------------------------------------------------------

    async def owner(self, job_id: str) -> tuple[int, str, str | None] | None:
        """(person, state, holder) of a job; None when there is no such job."""
        row = await self.database.one("SELECT user_id, state, claimed_by FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else (row[0], row[1], row[2])

    async def cancel_queued(self, job_id: str, now: float) -> bool:
        """Cancel a job if it is still queued (False: a process claimed it first, or it is gone)."""
        return await self.database.write(
            "UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'queued'",
            (now, job_id)) > 0

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the process running a job to stop it at its next step (False: it is not running any more)."""
        return await self.database.write(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,)) > 0

    async def leave_queued(self, job_id: str, state: str, now: float, error: str | None = None) -> bool:
        """Finish a queued job that can't run (it can no longer be read or planned) as ``state``, once: False when
        another process did, or it left the line meanwhile."""
        return await self.database.write(
            "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'queued'",
            (state, error, now, job_id)) > 0

    # --- admission --------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def admit(self, admission: Admission, user_id: int, role_ids: list[int], *, now: float, cost: float,
                    video: bool) -> AsyncIterator[None]:
        """``Admission.admit`` with everything it counts stored: the person's token bucket (their row locked for
        the transaction, so two processes can't both spend the last token), their pending jobs and videos and the
        queued jobs counted from the jobs table, plus this process's submits still being stored. A block that
        raises gives the tokens back."""

        async def take(tx: Transaction) -> None:
            await tx.write("INSERT INTO rate_buckets (user_id, tokens, at) VALUES (?, NULL, ?)"
                           " ON CONFLICT (user_id) DO NOTHING", (user_id, now))
            row = await tx.one(f"SELECT tokens, at FROM rate_buckets WHERE user_id = ?{self._locking('FOR UPDATE')}",
                               (user_id,))
            bucket = None if row is None or row[0] is None else TokenBucket(row[0], row[1])
            requests = [json.loads(r[0]) for r in await tx.all(
                "SELECT request FROM jobs WHERE user_id = ? AND state IN ('queued', 'running')", (user_id,))]
            queued = (await tx.one("SELECT count(*) FROM jobs WHERE state = 'queued'"))[0]  # type: ignore[index]
            after = admission.check(role_ids, now=now, pending=len(requests) + self._writing[user_id],
                                    videos=sum(1 for request in requests if _is_video(request)),
                                    queued=queued + sum(self._writing.values()), bucket=bucket, cost=cost,
                                    video=video)
            await tx.write("UPDATE rate_buckets SET tokens = ?, at = ? WHERE user_id = ?",
                           (after.tokens, after.at, user_id))

        await self.database.atomically(take)
        self._writing[user_id] += 1
        try:
            yield
        except BaseException:
            await self.database.write("UPDATE rate_buckets SET tokens = tokens + ? WHERE user_id = ?",
                                      (admission.taken(cost, role_ids), user_id))
            raise
        finally:
            self._writing[user_id] -= 1
            if not self._writing[user_id]:
                del self._writing[user_id]


def _is_video(request: dict[str, object]) -> bool:
    """Whether a stored request (``GenerationRequest.to_dict``) asks for a video."""
    return bool(request.get("video"))
