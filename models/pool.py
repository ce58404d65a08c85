"""Several named models in one process, within a memory budget.

Every configured model is read once at start, so its numbers (size, steps, what it supports) are known and requests
for it are planned and checked on the bot without touching the GPU. Only the default model goes to the device then;
the others wait in host memory (or are dropped when it is short) and go to the device on first use.

When a batch needs a model that does not fit beside the ones on the device (``memory_budget``, in bytes of module
parameters and buffers), the least recently used *idle* model moves to host memory with ``Family.to`` — or is
unloaded when host memory is short too, or when the device is the CPU itself — until it fits. A model a batch is
running on is never moved. Sizes come from the modules (``Engine.weight_bytes``), not the process: RSS moves with
allocator caches and lazily mapped files.

All loading and moving happens on the caller's thread (LocalBackend's one worker thread), between batches.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import torch

from models.backend import ModelStatus, ModelUnavailable, Residence
from models.engine import Engine, load_engine
from models.plan import GenerationRequest, ModelLoadError, Plan, Progress, resolve_model, resolve_plan
from models.settings import EngineSettings
from models.styles import StyleBook
from models.text import Text

if TYPE_CHECKING:
    from models.plan import CancelCheck, ModelDefaults, ProgressCallback, Results

__all__ = ["ModelPool", "host_available"]

log = logging.getLogger(__name__)

HOST_MARGIN = 1.25
"""A model is parked in host memory only when that much of its size is free there (the rest is dropped)."""

Loader = Callable[..., Engine]
"""``load_engine``'s signature; tests and benchmarks count or slow loads through it."""


def host_available() -> int:
    """Free host memory in bytes (MemAvailable where /proc has it, else free pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Slot:
    """One configured model: its settings, what was learned at start, and where its weights are now."""

    settings: EngineSettings
    engine: Engine | None
    defaults: ModelDefaults | None  # None: it could not be read at start (``failure`` says why)
    family: str
    design: str
    size: int  # weight bytes
    last_used: float = 0.0
    running: bool = False
    loads: int = 0
    switches: int = 0
    load_seconds: float = 0.0
    failure: str | None = None

    @property
    def where(self) -> Residence:
        if self.failure is not None:
            return "unavailable"
        if self.engine is None:
            return "unloaded"
        return "device" if self.engine.on_device else "host"


class ModelPool:
    """Named engines, loaded and moved within ``budget`` bytes of device memory; build it with ``ModelPool.open``."""

    def __init__(self, slots: dict[str, _Slot], *, default: str, styles: StyleBook, budget: int | None,
                 loader: Loader = load_engine, host_free: Callable[[], int] = host_available) -> None:
        self._slots = slots
        self.default = default
        self.styles = styles
        self.budget = budget
        self.max_batch = slots[default].settings.max_batch
        self.current: str | None = default if slots[default].where == "device" else None
        """The model the last batch ran on: the one a batch starts soonest on."""
        self._loader = loader
        self._host_free = host_free
        self._clock = time.monotonic

    # -- building --------------------------------------------------------------------------------------------------

    @classmethod
    def of(cls, engine: Engine) -> ModelPool:
        """One model already loaded (scripts, tests, the single ``model:`` section loaded by the caller)."""
        settings = EngineSettings(model_id=engine.model_id, name=engine.name, max_batch=engine.max_batch,
                                  max_count=engine.max_count, default_negative=engine.default_negative)
        return cls({engine.name: _slot(settings, engine)}, default=engine.name, styles=engine.styles, budget=None)

    @classmethod
    def open(cls, settings: Sequence[EngineSettings], styles: StyleBook, *, default: str, budget: int | None,
             loader: Loader = load_engine, host_free: Callable[[], int] = host_available) -> ModelPool:
        """Read every model once (blocking): the others into host memory, then the default onto the device.

        Raises ModelLoadError (one line) when the default model cannot be loaded, or a model is larger than the
        budget on its own. Another model that cannot be read is logged and marked unavailable: its requests are
        refused with a message, and the rest of the bot serves the others.
        """
        slots: dict[str, _Slot] = {}
        by_name = {entry.label: entry for entry in settings}
        for entry in [*(s for s in settings if s.label != default), by_name[default]]:
            started = time.monotonic()
            try:
                engine = loader(entry, styles, on_host=entry.label != default)
            except ModelLoadError as error:
                if entry.label == default:
                    raise
                log.error("model %s is unavailable: %s", entry.label, error)
                slots[entry.label] = _Slot(entry, None, None, "?", "?", 0, failure=str(error))
                continue
            slot = slots[entry.label] = _slot(entry, engine)
            slot.load_seconds = time.monotonic() - started  # the ETA's first guess at what a switch to it costs
            if budget is not None and slot.size > budget:
                raise ModelLoadError(f"Cannot serve model '{entry.label}': its weights take {_gib(slot.size)}, more "
                                     f"than the whole engine.memory_budget ({_gib(budget)})")
            if entry.label == default:
                slot.loads = 1
            elif not engine.on_device and host_free() < slot.size * HOST_MARGIN:
                # No host memory to spare: it is read again on first use.
                slot.engine = engine = None
                _collect()
        pool = cls(slots, default=default, styles=styles, budget=budget, loader=loader, host_free=host_free)
        pool._touch(slots[default])
        pool._fit(slots[default])  # on a CPU the others are on the device too: over the budget, they go
        return pool

    # -- what the bot asks -------------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The configured names, the default first."""
        return [self.default, *(name for name in self._slots if name != self.default)]

    def defaults(self, name: str | None = None) -> ModelDefaults:
        defaults = self._slots[name or self.default].defaults
        assert defaults is not None, "an unavailable model has no defaults"
        return defaults

    def plan(self, request: GenerationRequest) -> Plan:
        slot = self._slots[resolve_model(request, self.styles, self.names)]
        if slot.defaults is None:
            raise ValueError(Text("The model '{name}' is unavailable: it could not be loaded when the bot started (the "
                                  "operators' log says why). Pick another (see /models).", name=slot.settings.label))
        return resolve_plan(request, slot.defaults, self.styles, self.default_negative, slot.settings.label,
                            max_count=slot.settings.max_count)

    @property
    def default_negative(self) -> str:
        return self._slots[self.default].settings.default_negative

    def set_default_negative(self, negative: str) -> None:
        for slot in self._slots.values():
            slot.settings = replace(slot.settings, default_negative=negative)
            if slot.engine is not None:
                slot.engine.default_negative = negative

    def models(self) -> list[ModelStatus]:
        return [ModelStatus(name, slot.family, slot.design, slot.where, slot.loads, slot.switches, slot.load_seconds,
                            references=slot.defaults is not None and slot.defaults.references,
                            inpaint=slot.defaults is not None and slot.defaults.inpaint,
                            img2img=slot.defaults is not None and slot.defaults.img2img,
                            instruct_edit=slot.defaults is not None and slot.defaults.instruct_edit,
                            max_input_images=0 if slot.defaults is None else slot.defaults.max_input_images,
                            video=slot.defaults is not None and slot.defaults.video,
                            loop=slot.defaults is not None and slot.defaults.loop,
                            unloaded=() if slot.defaults is None else slot.defaults.unloaded,
                            controls=() if slot.defaults is None else tuple(k for k, _ in slot.defaults.controls),
                            speed=slot.settings.speed.describe(),
                            family_name="" if slot.defaults is None else slot.defaults.family)
                for name, slot in ((name, self._slots[name]) for name in self.names)]

    def switch_cost(self, name: str) -> float:
        """Seconds a batch of ``name`` waits for its load: 0 on the device, else the last load measured (or, never
        measured, the default model's first load as a guess)."""
        slot = self._slots.get(name)
        if slot is None or slot.where == "device":
            return 0.0
        return slot.load_seconds or self._slots[self.default].load_seconds

    def engine(self, name: str) -> Engine | None:
        """The loaded engine of ``name`` (on the device or parked), None when not loaded."""
        return self._slots[name].engine

    # -- running ----------------------------------------------------------------------------------------------------

    def generate(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                 is_cancelled: CancelCheck | None = None) -> Results:
        """Run plans (blocking) on their models, one model after another; a model that cannot be loaded fails only
        its own plans (``ModelUnavailable``)."""
        results: Results = [ModelUnavailable("not run")] * len(plans)  # not translated: every slot is filled below
        groups: dict[str, list[int]] = {}
        for index, plan in enumerate(plans):
            groups.setdefault(plan.model, []).append(index)
        for name, indexes in groups.items():
            group = [plans[index] for index in indexes]
            try:
                engine = self.acquire(name, partial(_announce, group, on_progress))
            except ModelUnavailable as error:
                outcome: Results = [error] * len(group)
            else:
                slot = self._slots[name]
                slot.running = True
                try:
                    outcome = engine.generate(group, on_progress, is_cancelled)
                finally:
                    slot.running = False
                    self._touch(slot)
            for index, result in zip(indexes, outcome, strict=True):
                results[index] = result
        return results

    def acquire(self, name: str, loading: Callable[[str], None] = lambda _name: None) -> Engine:
        """The engine of ``name`` on the device, loading it (and making room) first; ``loading(name)`` is called
        before a load. Raises ModelUnavailable with a message for the person when it cannot be loaded."""
        slot = self._slots.get(name)
        if slot is None:
            raise ModelUnavailable(Text("The model '{name}' is not configured any more; pick another (see /models).",
                                        name=name))
        if name != self.current:
            slot.switches += 1
            self.current = name
        if slot.where == "device":
            self._touch(slot)
            return slot.engine  # type: ignore[return-value]
        loading(name)
        started = self._clock()
        try:
            self._fit(slot)
            if slot.engine is None:
                slot.engine = self._loader(replace(slot.settings, warmup=False), self.styles)
                slot.size = slot.engine.weight_bytes()
            else:
                slot.engine.to(slot.engine.device)
        except (ModelLoadError, ModelUnavailable, torch.OutOfMemoryError) as error:
            log.error("loading model %s failed: %s", name, error)
            self.current = None
            raise ModelUnavailable(Text("The model '{name}' could not be loaded just now, so this request failed; the "
                                        "other models still work. Try again later or pick another (see /models).",
                                        name=name)) from None
        slot.loads += 1
        slot.load_seconds = self._clock() - started
        self._touch(slot)
        log.info("model %s is on the device (%.1fs)", name, slot.load_seconds)
        return slot.engine

    def _touch(self, slot: _Slot) -> None:
        slot.last_used = self._clock()

    def _on_device(self) -> int:
        return sum(slot.size for slot in self._slots.values() if slot.where == "device")

    def _fit(self, wanted: _Slot) -> None:
        """Make room for ``wanted`` on the device: park or drop the least recently used idle models until it fits."""
        if self.budget is None:
            return
        need = 0 if wanted.where == "device" else wanted.size
        while self._on_device() + need > self.budget:
            idle = [slot for slot in self._slots.values()
                    if slot is not wanted and slot.where == "device" and not slot.running]
            if not idle:
                raise ModelUnavailable(Text("The model '{name}' does not fit beside the running ones.",
                                            name=wanted.settings.label))
            self._evict(min(idle, key=lambda slot: slot.last_used))

    def _evict(self, slot: _Slot) -> None:
        assert slot.engine is not None
        host = torch.device("cpu")
        if slot.engine.device != host and self._host_free() >= slot.size * HOST_MARGIN:
            slot.engine.to(host)
            log.info("moved model %s to host memory to make room", slot.settings.label)
        else:
            slot.engine = None  # the last reference: its modules go with it
            _collect()
            log.info("unloaded model %s to make room", slot.settings.label)
        if self.current == slot.settings.label:
            self.current = None


def _slot(settings: EngineSettings, engine: Engine) -> _Slot:
    family = engine.model
    return _Slot(settings, engine, engine.defaults, family.label, family.design, engine.weight_bytes())


def _announce(plans: list[Plan], on_progress: ProgressCallback | None, name: str) -> None:
    if on_progress is not None:
        for plan in plans:
            on_progress(plan.request_id, Progress(0, 0, None, loading=name))


def _collect() -> None:
    """After an engine's last reference is dropped: collect its modules now and give the GPU's cache back."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"
