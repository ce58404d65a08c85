"""bot/lines.py on its own: round-robin order, batch forming at the heads, putting a batch back, cancelling."""

from __future__ import annotations

from dataclasses import dataclass

from bot.lines import FairLines


@dataclass(eq=False)
class Item:
    name: str
    user_id: int
    batch_key: str = "k"
    images: int = 1


def lines_of(*items: Item) -> FairLines[Item]:
    lines: FairLines[Item] = FairLines()
    for item in items:
        lines.push(item)
    return lines


def names(items) -> list[str]:
    return [item.name for item in items]


def test_order_is_round_robin_and_keeps_each_users_own_order() -> None:
    lines = lines_of(Item("a1", 1), Item("a2", 1), Item("a3", 1), Item("b1", 2), Item("c1", 3), Item("c2", 3))
    assert names(lines) == ["a1", "b1", "c1", "a2", "c2", "a3"]
    assert len(lines) == 6 and lines.images == 6


def test_a_batch_takes_compatible_heads_across_users_then_more_of_the_same_users() -> None:
    lines = lines_of(*(Item(f"x{i}", 1) for i in range(1, 6)), Item("y1", 2), Item("y2", 2), Item("z1", 3, "other"))
    assert names(lines.take(4)) == ["x1", "y1", "x2", "y2"]  # z1 cannot share the batch: skipped
    assert names(lines) == ["z1", "x3", "x4", "x5"]  # the skipped user keeps the next turn; y has nothing left
    assert names(lines.take(4)) == ["z1"]  # x3 cannot share z1's batch
    assert names(lines.take(4)) == ["x3", "x4", "x5"]
    assert len(lines) == 0 and lines.images == 0 and not lines


def test_a_batch_stops_at_the_image_limit_but_the_turns_head_always_goes() -> None:
    lines = lines_of(Item("a", 1, images=2), Item("b", 2, images=3), Item("c", 3, images=1), Item("d", 4, images=1))
    assert names(lines.take(4)) == ["a", "c", "d"]  # b does not fit after a; c and d do
    assert names(lines) == ["b"]
    assert names(lines.take(2)) == ["b"]  # bigger than the limit alone, but it must run some day
    big_first = lines_of(Item("big", 1, images=6), Item("small", 2))
    assert names(big_first.take(4)) == ["big"] and names(big_first) == ["small"]


def test_a_batch_put_back_goes_first_again_in_the_same_order() -> None:
    items = [*(Item(f"x{i}", 1) for i in range(1, 4)), Item("y1", 2), Item("z1", 3), Item("w1", 4, "other")]
    lines = lines_of(*items)
    batch = lines.take(3)
    assert names(batch) == ["x1", "y1", "z1"]
    lines.push(Item("v1", 5))  # arrived while the batch was out
    lines.push_front(batch)
    assert names(lines) == ["x1", "y1", "z1", "w1", "v1", "x2", "x3"]  # v1 is new: a turn after w1's
    assert len(lines) == 7 and lines.images == 7
    assert names(lines.take(3)) == ["x1", "y1", "z1"]


def test_remove_takes_a_job_out_and_an_emptied_line_loses_its_turn() -> None:
    a1, a2, b1, c1 = Item("a1", 1), Item("a2", 1, images=3), Item("b1", 2), Item("c1", 3)
    lines = lines_of(a1, a2, b1, c1)
    lines.remove(a2)
    lines.remove(b1)
    assert names(lines) == ["a1", "c1"] and len(lines) == 2 and lines.images == 2
    lines.push(Item("b2", 2))  # back in line: their turn is the last one
    assert names(lines) == ["a1", "c1", "b2"]



def test_jobs_served_elsewhere_leave_and_turn_the_turns_as_a_take_would() -> None:
    """Two copies of the same lines (two processes): one takes a batch, the other is told which jobs it took, and
    both go on with the same next batch."""
    def flood() -> FairLines[Item]:
        return lines_of(*(Item(f"{user}{n}", ord(user)) for user in "abc" for n in (1, 2)), Item("d1", ord("d")))

    here, there = flood(), flood()
    taken = there.take(2)
    here.served([item for item in here if item.name in names(taken)])
    assert names(taken) == ["a1", "b1"]
    assert names(here) == names(there) == ["c1", "d1", "a2", "b2", "c2"] and here.images == there.images == 5
    assert names(here.take(2)) == names(there.take(2)) == ["c1", "d1"]

@dataclass
class StayOn:
    """A Preference like the queue's: jobs with ``key`` first, unless one named in ``overdue`` may wait no longer."""

    key: str
    overdue: frozenset[str] = frozenset()

    def wants(self, item: Item) -> bool:
        return item.batch_key == self.key

    def due(self, item: Item) -> bool:
        return item.name in self.overdue


def test_a_preference_starts_the_batch_at_the_first_wanted_job_and_passed_users_keep_their_turn() -> None:
    lines = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "flux"), Item("c1", 3, "sd"), Item("d1", 4, "flux"),
                     Item("b2", 2, "flux"))
    prefer = StayOn("flux")
    assert names(lines.take(4, prefer)) == ["b1", "d1", "b2"]
    assert names(lines) == ["a1", "c1"]  # a's turn is still first
    assert names(lines.take(4, prefer)) == ["a1", "c1"]  # nothing wanted left: plain round-robin


def test_a_preference_takes_a_persons_first_wanted_job_behind_their_head_of_another_model() -> None:
    jobs = (Item("a1", 1, "sd"), Item("a2", 1, "flux"), Item("b1", 2, "sd"), Item("a3", 1, "flux"))
    assert names(lines_of(*jobs).take(4)) == ["a1", "b1"]  # plain round-robin: each line strictly in order
    lines = lines_of(*jobs)
    assert names(lines.take(4, StayOn("flux"))) == ["a2", "a3"]  # a's flux jobs, in their order
    assert names(lines) == ["b1", "a1"]  # a had a turn: b goes first now


def test_a_due_job_goes_first_and_due_jobs_fill_the_batch_first() -> None:
    lines = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "flux"), Item("b2", 2, "flux"), Item("b3", 2, "flux"))
    assert names(lines.take(1, StayOn("flux"))) == ["b1"]
    assert names(lines.take(1, StayOn("flux", frozenset({"a1"})))) == ["a1"]  # it may wait no longer
    assert names(lines.take(1, StayOn("flux"))) == ["b2"]
    crowd = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "sd"), Item("c1", 3, "sd"), Item("d1", 4, "sd"))
    assert names(crowd.take(2, StayOn("flux", frozenset({"b1", "d1"})))) == ["b1", "d1"]  # not a1, in turn first
    assert names(crowd) == ["a1", "c1"]


def test_due_jobs_of_the_wanted_group_go_before_due_jobs_of_another() -> None:
    lines = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "flux"), Item("c1", 3, "flux"))
    prefer = StayOn("flux", frozenset({"a1", "b1", "c1"}))  # every job has waited its share
    assert names(lines.take(4, prefer)) == ["b1", "c1"]  # due, and no switch needed for them
    assert names(lines.take(4, prefer)) == ["a1"]  # then the due job of the other model, before anything else


def test_plain_lists_the_round_robin_batches_and_takes_nothing() -> None:
    jobs = (Item("a1", 1, "sd"), Item("a2", 1, "flux"), Item("b1", 2, "flux"), Item("c1", 3, "sd"))
    lines = lines_of(*jobs)
    assert [names(batch) for batch in lines.plain(4)] == [["a1", "c1"], ["b1", "a2"]]
    assert names(lines) == ["a1", "b1", "c1", "a2"] and len(lines) == 4 and lines.images == 4
    again = lines_of(*jobs)
    assert [names(again.take(4)) for _ in range(2)] == [["a1", "c1"], ["b1", "a2"]]
