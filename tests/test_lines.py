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


@dataclass
class StayOn:
    """A Preference like the queue's: batches with ``key`` first, each other head passed over at most ``times``."""

    key: str
    times: int = 1
    passes: dict[str, int] | None = None

    def wants(self, item: Item) -> bool:
        return item.batch_key == self.key

    def may_pass(self, item: Item) -> bool:
        return (self.passes or {}).get(item.name, 0) < self.times

    def passed(self, item: Item) -> None:
        self.passes = self.passes or {}
        self.passes[item.name] = self.passes.get(item.name, 0) + 1


def test_a_preference_starts_the_batch_at_the_first_wanted_head_and_passed_users_keep_their_turn() -> None:
    lines = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "flux"), Item("c1", 3, "sd"), Item("d1", 4, "flux"),
                     Item("b2", 2, "flux"))
    prefer = StayOn("flux")
    assert names(lines.take(4, prefer)) == ["b1", "d1", "b2"]  # a1 passed over once
    assert prefer.passes == {"a1": 1}
    assert names(lines) == ["a1", "c1"]  # a's turn is still first
    assert names(lines.take(4, prefer)) == ["a1", "c1"]  # nothing wanted left: plain round-robin


def test_a_head_passed_over_its_limit_stops_the_preference() -> None:
    lines = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "flux"), Item("b2", 2, "flux"), Item("b3", 2, "flux"))
    prefer = StayOn("flux", times=1)
    assert names(lines.take(1, prefer)) == ["b1"]
    assert names(lines.take(1, prefer)) == ["a1"]  # a1 may not be passed again: its turn comes first
    assert names(lines.take(1, prefer)) == ["b2"]
    assert names(lines.take(1)) == ["b3"]


def test_due_heads_of_the_wanted_group_go_before_due_heads_of_another() -> None:
    lines = lines_of(Item("a1", 1, "sd"), Item("b1", 2, "flux"), Item("c1", 3, "flux"))
    prefer = StayOn("flux", times=0)  # every head has waited its share
    assert names(lines.take(4, prefer)) == ["b1", "c1"]  # due, and no switch needed for them
    assert names(lines.take(4, prefer)) == ["a1"]  # then the due head of the other model, before anything else
