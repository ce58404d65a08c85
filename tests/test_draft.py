"""Drafts (/imagine ``draft``): the family's draft settings and bot.yaml's overrides, a draft's cache on for its own
calls only, and what a draft costs in the queue's rate limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bot.admission import Admission, Refused
from bot.backends import engine_settings
from bot.config import QueueConfig, parse_config
from models.engine import Engine
from models.plan import GenerationRequest, ModelLoadError
from models.settings import DraftSettings, EngineSettings
from models.speed import Speed
from models.styles import StyleBook
from tests.pictures import assert_identical

STEPS = 8


def load(directory: Path, draft: DraftSettings | None = None) -> Engine:
    return Engine.load(EngineSettings(str(directory), device="cpu", dtype="float32", warmup=False, steps=STEPS,
                                      draft=draft or DraftSettings()), StyleBook([]))


def made(engine: Engine, *, draft: bool, seed: int = 3):
    [result] = engine.generate([engine.plan(GenerationRequest("a lighthouse at dusk", seed=seed, draft=draft))])
    assert not isinstance(result, BaseException), result
    return result[0]


@pytest.mark.parametrize("family", ["sd", "flux"])
def test_a_draft_is_smaller_takes_fewer_steps_and_says_so(family: str, tiny_model) -> None:
    engine = load(tiny_model(family))
    full, draft = made(engine, draft=False), made(engine, draft=True)
    assert not full.recipe.draft and draft.recipe.draft
    assert draft.recipe.steps == STEPS // 4 and full.recipe.steps == STEPS
    assert draft.image.width == full.image.width // 2 and draft.image.height == full.image.height // 2
    assert_identical(made(engine, draft=True).image, draft.image)  # same seed, same draft
    plan = engine.plan(GenerationRequest("x", seed=1, draft=True))
    assert plan.batch_key != engine.plan(GenerationRequest("x", seed=1, steps=2, width=plan.recipes[0].width,
                                                           height=plan.recipes[0].height)).batch_key


def test_a_drafts_cache_is_on_for_drafts_only(tiny_model, monkeypatch) -> None:
    """FLUX drafts run with first_block (loose here, so the random transformer skips); its full images stay exact."""
    loose = DraftSettings(steps=STEPS, scale=1.0, cache=Speed(cache="first_block", threshold=0.9))
    cached = load(tiny_model("flux"), loose)
    plain = load(tiny_model("flux"), DraftSettings(steps=STEPS, scale=1.0, exact=True))
    calls = {name: linear_calls(lambda e=engine: made(e, draft=True), monkeypatch)
             for name, engine in (("cached", cached), ("plain", plain))}
    assert calls["cached"] < calls["plain"]
    assert_identical(made(cached, draft=False).image, made(plain, draft=False).image)  # off again after the draft
    assert_identical(made(cached, draft=False).image, made(plain, draft=True).image)  # an exact draft: same numbers


def linear_calls(run, monkeypatch) -> int:
    """How many linear layers ``run`` ran: a cache that skips blocks runs fewer."""
    calls = 0
    linear = torch.nn.functional.linear

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return linear(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.functional, "linear", counting)
        run()
    return calls


def test_a_draft_cache_the_denoiser_cannot_take_is_refused_at_start(tiny_model) -> None:
    with pytest.raises(ModelLoadError, match=r"Cannot load model '.*': draft.cache first_block is not available for "
                                             r"the sd family: its denoiser \(UNet2DConditionModel\) has no diffusers "
                                             r"cache support; leave draft.cache out for this model"):
        load(tiny_model("sd"), DraftSettings(cache=Speed(cache="first_block")))


def test_draft_settings_are_read_per_model() -> None:
    config = parse_config({"models": [
        {"name": "flux", "id": "tiny-flux", "draft": {"steps": 2, "scale": 0.75, "cache": {"kind": "pab", "every": 3}}},
        {"name": "plain", "id": "tiny", "draft": {"cache": False}},
        {"name": "family", "id": "tiny"},
    ]}, Path("bot.yaml"))
    assert engine_settings(config, "flux").draft == DraftSettings(steps=2, scale=0.75,
                                                                  cache=Speed(cache="pab", every=3))
    assert engine_settings(config, "plain").draft == DraftSettings(exact=True)
    assert engine_settings(config, "family").draft == DraftSettings()
    lone = parse_config({"model": {"draft": {"steps": 3}}}, Path("bot.yaml"))
    assert engine_settings(lone).draft == DraftSettings(steps=3)


def test_a_draft_takes_its_share_of_a_rate_limit_token() -> None:
    """With a burst of 1 and no refill to speak of, one full image empties the bucket; four drafts at 0.25 do too."""
    config = QueueConfig(rate_per_minute=0.001, burst=1, max_pending_per_user=100, draft_cost=0.25)
    admission = Admission(config)
    for _ in range(4):
        with admission.admit(1, (), now=0.0, queued=0, cost=config.draft_cost):
            pass
    with pytest.raises(Refused), admission.admit(1, (), now=0.0, queued=0, cost=config.draft_cost):
        pass
    with admission.admit(2, (), now=0.0, queued=0):
        pass
    with pytest.raises(Refused), admission.admit(2, (), now=0.0, queued=0, cost=config.draft_cost):
        pass
