"""models/pool.py with real tiny pipelines of two families on the CPU: routing by name, the memory budget, failures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models.backend import ModelUnavailable
from models.engine import load_engine
from models.families import BY_NAME
from models.plan import GeneratedImage, GenerationRequest, ModelLoadError, Progress
from models.pool import ModelPool
from models.settings import EngineSettings
from models.styles import Style, StyleBook

STYLES = StyleBook([Style(name="none"), Style(name="art", prompt="art of {prompt}", model="pixart")])


def settings(cache: Path) -> list[EngineSettings]:
    common = dict(cache_dir=str(cache), device="cpu", warmup=False, steps=2, max_batch=4)
    return [EngineSettings(model_id="tiny", name="sd", **common),  # type: ignore[arg-type]
            EngineSettings(model_id="tiny-pixart", name="pixart", **common)]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pool")


def images(result: object) -> list[GeneratedImage]:
    assert isinstance(result, list), result
    return result


def test_requests_run_on_their_model_and_recipes_name_it(cache: Path) -> None:
    pool = ModelPool.open(settings(cache), STYLES, default="sd", budget=None)
    assert pool.names == ["sd", "pixart"] and pool.current == "sd"
    assert [status.where for status in pool.models()] == ["device", "device"]  # on a CPU the host is the device
    plans = [pool.plan(GenerationRequest("a fox", seed=1)), pool.plan(GenerationRequest("a fox", model="pixart")),
             pool.plan(GenerationRequest("a fox", style="art"))]
    assert [plan.model for plan in plans] == ["sd", "pixart", "pixart"]
    assert plans[0].batch_key != plans[1].batch_key  # one pipeline call never mixes models
    results = pool.generate(plans)
    assert [images(result)[0].recipe.model for result in results] == ["sd", "pixart", "pixart"]
    with pytest.raises(ValueError, match="Unknown model 'flux'; choose one of sd, pixart"):
        pool.plan(GenerationRequest("a fox", model="flux"))
    with pytest.raises(ValueError, match="made for the model 'pixart'"):
        pool.plan(GenerationRequest("a fox", style="art", model="sd"))


@pytest.fixture(scope="module")
def sizes(cache: Path) -> dict[str, int]:
    pool = ModelPool.open(settings(cache), STYLES, default="sd", budget=None)
    return {name: pool.engine(name).weight_bytes() for name in pool.names}  # type: ignore[union-attr]


def test_the_budget_unloads_the_least_recently_used_model_and_it_comes_back(cache: Path,
                                                                            sizes: dict[str, int]) -> None:
    loads: list[str] = []

    def counting(entry: EngineSettings, styles: StyleBook, **options: bool):
        loads.append(entry.label)
        return load_engine(entry, styles, **options)

    budget = max(sizes.values()) + min(sizes.values()) // 2  # room for one model at a time
    pool = ModelPool.open(settings(cache), STYLES, default="sd", budget=budget, loader=counting)
    assert {status.name: status.where for status in pool.models()} == {"sd": "device", "pixart": "unloaded"}
    seen: list[Progress] = []
    [result] = pool.generate([pool.plan(GenerationRequest("a fox", model="pixart"))],
                             lambda _request_id, progress: seen.append(progress))
    assert images(result)[0].recipe.model == "pixart"
    assert {status.name: status.where for status in pool.models()} == {"sd": "unloaded", "pixart": "device"}
    [result] = pool.generate([pool.plan(GenerationRequest("a fox again"))],
                             lambda _request_id, progress: seen.append(progress))
    assert images(result)[0].recipe.model == "sd"
    assert loads == ["pixart", "sd", "pixart", "sd"]  # read at start (the default last), then each again
    assert {status.name: status.where for status in pool.models()} == {"sd": "device", "pixart": "unloaded"}
    assert [progress.loading for progress in seen if progress.loading] == ["pixart", "sd"]
    status = {status.name: status for status in pool.models()}
    assert status["sd"].loads == 2 and status["sd"].switches == 1 and status["pixart"].switches == 1
    assert pool.switch_cost("pixart") > 0 and pool.switch_cost("sd") == 0


def test_a_model_that_fails_to_load_fails_only_its_jobs(cache: Path, sizes: dict[str, int]) -> None:
    def flaky(entry: EngineSettings, styles: StyleBook, **options: bool):
        if entry.label == "pixart" and not options:  # read at start, then fails when it is needed
            raise ModelLoadError("Cannot load model '/srv/models/pixart': disk on fire")
        return load_engine(entry, styles, **options)

    pool = ModelPool.open(settings(cache), STYLES, default="sd", budget=sizes["sd"], loader=flaky)
    failed, done = pool.generate([pool.plan(GenerationRequest("x", model="pixart")),
                                  pool.plan(GenerationRequest("y", model="sd"))])
    assert isinstance(failed, ModelUnavailable) and "/srv" not in str(failed)
    assert "The model 'pixart' could not be loaded" in str(failed)
    assert images(done)[0].recipe.model == "sd"


def test_a_model_that_cannot_be_read_at_start_leaves_the_others_serving(cache: Path) -> None:
    def gated(entry: EngineSettings, styles: StyleBook, **options: bool):
        if entry.label == "pixart":
            raise ModelLoadError("Cannot load model 'PixArt-alpha/x': the repository is gated")
        return load_engine(entry, styles, **options)

    pool = ModelPool.open(settings(cache), STYLES, default="sd", budget=None, loader=gated)
    assert [(status.name, status.where) for status in pool.models()] == [("sd", "device"), ("pixart", "unavailable")]
    with pytest.raises(ValueError, match="The model 'pixart' is unavailable"):
        pool.plan(GenerationRequest("a fox", model="pixart"))
    [done] = pool.generate([pool.plan(GenerationRequest("a fox", model="sd"))])
    assert images(done)[0].recipe.model == "sd"
    with pytest.raises(ModelLoadError, match="gated"):  # the default model is what the bot is for: it must load
        ModelPool.open(settings(cache), STYLES, default="pixart", budget=None, loader=gated)


def test_a_model_larger_than_the_whole_budget_is_refused_at_start(cache: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"more than the whole engine\.memory_budget"):
        ModelPool.open(settings(cache)[:1], STYLES, default="sd", budget=1024)


def test_a_single_engine_is_a_pool_of_one(cache: Path) -> None:
    engine = load_engine(replace(settings(cache)[0], name="my-model"), STYLES)
    pool = ModelPool.of(engine)
    assert pool.names == ["my-model"] and pool.plan(GenerationRequest("a")).model == "my-model"


class StubFamily:
    label, design, name = "Stub", "a stand-in", "stub"

    def __init__(self) -> None:
        self.device = torch.device("meta")


class StubEngine:
    """What the pool uses of an Engine, on a pretend GPU (``meta``): where its weights are, their size, a run."""

    def __init__(self, name: str, size: int, *, on_host: bool) -> None:
        self.name, self.size, self.device = name, size, torch.device("meta")
        self.model = StubFamily()
        self.model.device = torch.device("cpu") if on_host else self.device
        self.defaults = BY_NAME["sd"].defaults(64, 8)
        self.default_negative = ""
        self.moves: list[str] = []

    @property
    def on_device(self) -> bool:
        return self.model.device == self.device

    def to(self, device: torch.device) -> None:
        self.model.device = device
        self.moves.append(device.type)

    def weight_bytes(self) -> int:
        return self.size

    def generate(self, plans, on_progress=None, is_cancelled=None):
        return [[] for _ in plans]


def test_on_a_gpu_idle_models_move_to_host_memory_or_are_unloaded_when_it_is_short() -> None:
    made: dict[str, StubEngine] = {}

    def stub(entry: EngineSettings, styles: StyleBook, on_host: bool = False) -> StubEngine:
        made[entry.label] = StubEngine(entry.label, 100, on_host=on_host)
        return made[entry.label]

    host = [1000]
    entries = [EngineSettings(model_id=name, name=name) for name in ("a", "b", "c")]
    pool = ModelPool.open(entries, STYLES, default="a", budget=250, loader=stub,  # type: ignore[arg-type]
                          host_free=lambda: host[0])
    assert [s.where for s in pool.models()] == ["device", "host", "host"]  # the others wait in host memory
    pool.generate([pool.plan(GenerationRequest("x", model="b"))])
    assert [s.where for s in pool.models()] == ["device", "device", "host"] and made["b"].moves == ["meta"]
    pool.generate([pool.plan(GenerationRequest("x", model="c"))])  # 300 > 250: the least recently used (a) goes
    assert [s.where for s in pool.models()] == ["host", "device", "device"] and made["a"].moves == ["cpu"]
    host[0] = 50  # host memory short now: b is dropped rather than parked
    pool.generate([pool.plan(GenerationRequest("x", model="a"))])
    assert [s.where for s in pool.models()] == ["device", "unloaded", "device"]
    [again] = pool.generate([pool.plan(GenerationRequest("x", model="b"))])  # read from disk again
    assert again == [] and pool.models()[1].where == "device" and pool.models()[1].loads == 2


def test_a_pool_of_one_plans_like_its_engine(cache: Path) -> None:
    engine = load_engine(replace(settings(cache)[0], default_negative="lowres", max_count=2), STYLES)
    pool = ModelPool.of(engine)
    request = GenerationRequest("a fox", negative="dogs", seed=1)
    assert pool.plan(request).negative == engine.plan(request).negative == "dogs, lowres"
    with pytest.raises(ValueError, match="1 to 2 images"):
        pool.plan(GenerationRequest("a fox", count=3))
