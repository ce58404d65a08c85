"""RayRouter without a cluster: plans go to their model's application, capacities add up, no model is preferred."""

from __future__ import annotations

import pytest

from models.backend import ModelStatus
from models.families import BY_NAME
from models.plan import GenerationRequest, Plan, resolve_plan
from models.ray_backend import RayRouter
from models.styles import Style, StyleBook

STYLES = StyleBook([Style(name="none"), Style(name="poster", prompt="poster of {prompt}", model="b")])


class App:
    """One model's Serve application as RayRouter sees it (a RayBackend's public surface)."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name, self._capacity, self.max_batch = name, capacity, 4
        self.defaults = BY_NAME["sd"].defaults(64, 8)
        self.ran: list[list[str]] = []

    def plan(self, request: GenerationRequest) -> Plan:
        assert request.model == self.name
        return resolve_plan(request, self.defaults, STYLES, "", self.name)

    async def capacity(self) -> int:
        return self._capacity

    async def run(self, plans, on_progress=None, is_cancelled=None):
        self.ran.append([plan.model for plan in plans])
        return [[] for _ in plans]

    def models(self) -> list[ModelStatus]:
        return [ModelStatus(self.name, "Stable Diffusion", "latent diffusion", "replicas", 0, 0, 0.0)]


async def test_the_router_sends_each_batch_to_its_models_application() -> None:
    a, b = App("a", 4), App("b", 8)
    router = RayRouter({"a": a, "b": b}, STYLES)  # type: ignore[dict-item]
    plans = [router.plan(GenerationRequest("x")), router.plan(GenerationRequest("y", model="b")),
             router.plan(GenerationRequest("z", style="poster"))]
    assert [plan.model for plan in plans] == ["a", "b", "b"]  # the default first; a style pins its model
    await router.run(plans[1:])
    assert b.ran == [["b", "b"]] and a.ran == []
    assert await router.capacity() == 12 and router.warm_model() is None and router.switch_cost("b") == 0
    assert [status.name for status in router.models()] == ["a", "b"]
    with pytest.raises(ValueError, match="Unknown model 'c'"):
        router.plan(GenerationRequest("x", model="c"))
