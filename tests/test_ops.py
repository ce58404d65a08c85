"""Operating the bot, end to end: /healthz, /metrics and the /admin commands of the real bot process.

One bot process (server on port 0, read back from ``storage.dir/server.port``) serves the whole module; each test
uses its own users so their jobs and limits don't mix.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from fakediscord import FakeDiscord
from tests.harness import REPO, BotUnderTest, bot_config

RESULT_TIMEOUT = 60


@dataclass
class Ops:
    emu: FakeDiscord
    bot: BotUnderTest
    base: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path) as response:
            return response.status, await response.text()

    async def health(self) -> tuple[int, dict]:
        async with self.http.get(self.base + "/healthz") as response:
            return response.status, await response.json()

    async def admin(self, user, command: str, options: dict | None = None) -> str:
        """Run an /admin subcommand (or any command) and return the ephemeral answer's text."""
        interaction = await self.emu.invoke(user, command, options or {})
        message = await interaction.wait_for_message(timeout=15)
        assert message.ephemeral, f"/{command} answered publicly: {message.content}"
        return message.content

    async def imagine(self, user, prompt: str, **options):
        interaction = await self.emu.invoke(user, "imagine", {"prompt": prompt, "count": 1, **options})
        await interaction.wait_acked(3)
        await interaction.wait_for_message()  # acknowledged at once; answered once it is queued (or refused)
        return interaction

    @staticmethod
    async def result(interaction):
        return await interaction.wait_for_message(lambda m: any(b.get("label") == "V1" for b in m.buttons()),
                                                  timeout=RESULT_TIMEOUT)


def button(message, label: str) -> str:
    return next(b["custom_id"] for b in message.buttons() if b.get("label") == label)


@pytest_asyncio.fixture(scope="module")
async def ops(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ops]:
    workdir = tmp_path_factory.mktemp("ops")
    async with FakeDiscord() as emu:
        supporters = emu.add_role("supporters")
        config = bot_config(
            emu, tiny_model_dir, workdir / "data",
            server={"enabled": True, "host": "127.0.0.1", "port": 0},
            moderation={"banned_terms": ["forbiddenword"]},
            queue={"role_overrides": [{"role_id": supporters.id, "name": "supporters", "burst": 5}]},
        )
        bot = BotUnderTest(emu, config, workdir)
        await bot.start()
        try:
            port_file = workdir / "data" / "server.port"
            port = int(port_file.read_text())
            assert f"metrics on http://127.0.0.1:{port}/metrics" in bot.log()
            async with aiohttp.ClientSession() as http:
                yield Ops(emu, bot, f"http://127.0.0.1:{port}", http)
        finally:
            code = await bot.stop(timeout=60)
            assert code == 0, bot.log()[-4000:]


async def test_healthz_is_200_when_connected_and_503_with_the_reason_while_the_gateway_is_down(ops: Ops) -> None:
    status, body = await ops.health()
    assert status == 200 and body["status"] == "ok" and body["problems"] == [], body

    await ops.emu.close_gateway(4000, reconnect_delay=4.0)
    deadline = asyncio.get_running_loop().time() + 4
    seen = None
    while asyncio.get_running_loop().time() < deadline:
        status, body = await ops.health()
        if status == 503:
            seen = body
            break
        await asyncio.sleep(0.05)
    assert seen is not None, "healthz never said 503 while the gateway was closed"
    assert seen["status"] == "unavailable" and any("gateway" in p for p in seen["problems"]), seen

    for _ in range(300):  # back to 200 once discord.py has resumed
        status, body = await ops.health()
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200, body


async def test_metrics_count_jobs_batches_and_discord_rate_limits(ops: Ops) -> None:
    fault = ops.emu.fail_next("PATCH /webhooks/*", status=429, retry_after=0.2)
    interaction = await ops.imagine(ops.emu.add_user("metrics-user"), "a lighthouse")
    await ops.result(interaction)
    assert fault.served >= 1
    supporter = ops.emu.add_user("metrics-supporter", roles=[r for r in ops.emu.roles.values()
                                                              if r.name == "supporters"])
    await ops.result(await ops.imagine(supporter, "a lighthouse at night"))

    status, text = await ops.get("/metrics")
    assert status == 200
    for name in (
        "imagebot_queue_depth", "imagebot_jobs_running", "imagebot_queue_paused", "imagebot_queue_wait_seconds_bucket",
        "imagebot_jobs_total", "imagebot_generation_seconds_per_image_bucket", "imagebot_batch_images_bucket",
        "imagebot_discord_http_errors_total", "imagebot_discord_rate_limits_total",
        "imagebot_gateway_latency_seconds", "imagebot_event_loop_lag_seconds", "imagebot_event_loop_lag_bucket",
    ):
        assert name in text, f"{name} missing from /metrics"

    def value(pattern: str) -> float:
        match = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        assert match, f"no {pattern} in:\n{text}"
        return float(match.group(1))

    assert value(r'imagebot_jobs_total\{outcome="done"\}') >= 1
    assert value("imagebot_batch_images_count") >= 1
    assert value(r'imagebot_queue_wait_seconds_count\{person_class="everyone"\}') >= 1
    assert value(r'imagebot_queue_wait_seconds_count\{person_class="supporters"\}') == 1
    assert value(r'imagebot_queue_wait_seconds_count\{person_class="resumed"\}') == 0
    assert value("imagebot_generation_seconds_per_image_count") >= 1
    assert value("imagebot_discord_rate_limits_total") >= 1
    assert value(r'imagebot_discord_http_errors_total\{status="429"\}') >= 1
    assert value("imagebot_event_loop_lag_count") > 10
    # Per model, under its configured name (the lone model: section is named after its directory).
    model = re.search(r'^imagebot_model_loads\{model="([^"]+)"\} 1\.0$', text, re.MULTILINE)
    assert model, text
    assert value(rf'imagebot_model_on_device\{{model="{model.group(1)}"\}}') == 1
    assert value(rf'imagebot_model_seconds_per_image_count\{{model="{model.group(1)}"\}}') >= 1
    assert value(rf'imagebot_model_queue_depth\{{model="{model.group(1)}"\}}') == 0
    assert 0 <= value("imagebot_gateway_latency_seconds") < 5
    assert "imagebot_gpu_memory_allocated_bytes" not in text  # CPU only: no CUDA gauge
    ops.emu.assert_no_violations()


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}
CUDA_ONLY = {"imagebot_gpu_memory_allocated_bytes"}  # registered on the first scrape that finds CUDA in use


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a histogram's as ``_bucket``/``_sum``/``_count``, as exported):
    identifiers that are neither functions, keywords, label names in ``by (...)``/``{...}`` nor inside strings and
    range selectors."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        followed_by_call = expr[match.end():].lstrip().startswith("(")
        if not followed_by_call and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((REPO / "docs" / "grafana" / "imagebot.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_promql_metric_names_skips_functions_labels_strings_and_ranges() -> None:
    expr = ('histogram_quantile(0.95, sum by (model, le) (rate(imagebot_a_bucket{outcome="x"}[5m]))) '
            "/ on (model) imagebot_b")
    assert promql_metric_names(expr) == {"imagebot_a_bucket", "imagebot_b"}


async def test_every_metric_the_grafana_dashboard_queries_is_exported(ops: Ops) -> None:
    await ops.result(await ops.imagine(ops.emu.add_user("dashboard-user"), "a gauge"))
    _, text = await ops.get("/metrics")
    exported = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    queries = dashboard_queries()
    assert len(queries) >= 15
    for expr in queries:
        names = promql_metric_names(expr)
        assert names, f"no metric in {expr!r}"
        for name in names - CUDA_ONLY:
            assert name in exported, f"the dashboard queries {name}, which /metrics does not export ({expr!r})"
    assert {name for expr in queries for name in promql_metric_names(expr)} >= CUDA_ONLY


def test_the_cuda_only_metrics_are_what_the_bot_registers_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True, device_count=lambda: 1,
                           memory_allocated=lambda index: 1024)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    bot = SimpleNamespace(generation=None, latency=0.1, shards={}, is_closed=lambda: False)
    text = Metrics().render(bot).decode()
    exported = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    assert exported >= CUDA_ONLY


@pytest.mark.parametrize("command", ["admin stats", "admin pause", "admin reload"])
async def test_admin_commands_refuse_anyone_but_the_owner(ops: Ops, command: str) -> None:
    stranger = ops.emu.add_user(f"stranger-{command.split()[1]}")
    answer = await ops.admin(stranger, command)
    assert "Only the bot's owner" in answer
    _, body = await ops.health()
    assert body["queue"]["paused"] is False


async def test_admin_block_needs_the_owner_too(ops: Ops) -> None:
    stranger, victim = ops.emu.add_user("stranger-block"), ops.emu.add_user("victim")
    assert "Only the bot's owner" in await ops.admin(stranger, "admin block", {"user": victim})
    interaction = await ops.imagine(victim, "still allowed")
    await ops.result(interaction)


async def test_admin_stats_shows_the_queue_and_jobs(ops: Ops) -> None:
    answer = await ops.admin(ops.emu.owner, "admin stats")
    assert "**Queue:** 0 waiting, 0 running" in answer and "s per image" in answer and "done " in answer, answer


async def test_pause_keeps_jobs_queued_until_resume(ops: Ops) -> None:
    owner, user = ops.emu.owner, ops.emu.add_user("patient")
    assert "Paused" in await ops.admin(owner, "admin pause")
    try:
        interaction = await ops.imagine(user, "a paused cat")
        await asyncio.sleep(1.5)
        _, body = await ops.health()
        assert body["queue"] == {"depth": 1, "running": 0, "paused": True}, body
        assert not interaction.original.attachments and "Waiting in the queue" in interaction.original.content
        assert "paused" in await ops.admin(owner, "admin stats")
    finally:
        assert "Resumed" in await ops.admin(owner, "admin resume")
    result = await ops.result(interaction)
    assert result.attachments


async def test_reload_applies_new_styles_and_banned_terms_and_rejects_a_bad_file(ops: Ops) -> None:
    owner, user = ops.emu.owner, ops.emu.add_user("reloader")
    original = copy.deepcopy(ops.bot.config)
    try:
        ops.bot.config["styles"] = [*original["styles"],
                                    {"name": "neon", "description": "Neon signs", "prompt": "neon {prompt}"}]
        ops.bot.config["moderation"] = {"banned_terms": ["forbiddenword", "grapefruit"]}
        ops.bot.write_config()
        answer = await ops.admin(owner, "admin reload")
        assert "Reloaded" in answer and "5 styles" in answer and "2 banned terms" in answer, answer

        choices = await ops.emu.autocomplete(user, "imagine", {"prompt": "x", "style": "neo"}, focused="style")
        assert [c["value"] for c in choices] == ["neon"]
        result = await ops.result(await ops.imagine(user, "a city", style="neon"))
        assert result.attachments

        refused = await ops.admin(user, "imagine", {"prompt": "a Grapefruit tree"})
        assert "blocked term" in refused

        # A broken file changes nothing and lists every problem.
        ops.bot.config["styles"] = [{"name": "broken", "bogus": 1}]
        ops.bot.config["moderation"] = {"banned_terms": []}
        ops.bot.config["model"] = {**original["model"], "steps": 0}
        ops.bot.write_config()
        answer = await ops.admin(owner, "admin reload")
        assert "nothing was changed" in answer and "styles.0.bogus" in answer and "model.steps" in answer, answer
        assert "blocked term" in await ops.admin(user, "imagine", {"prompt": "grapefruit"})
        choices = await ops.emu.autocomplete(user, "imagine", {"prompt": "x", "style": "neo"}, focused="style")
        assert [c["value"] for c in choices] == ["neon"]
    finally:
        ops.bot.config = original
        ops.bot.write_config()
        assert "Reloaded" in await ops.admin(owner, "admin reload")


async def test_block_and_unblock(ops: Ops) -> None:
    owner, user = ops.emu.owner, ops.emu.add_user("troll")
    assert "is blocked" in await ops.admin(owner, "admin block", {"user": user, "reason": "spam"})
    assert "already blocked" in await ops.admin(owner, "admin block", {"user": user})
    assert "can't use this bot" in await ops.admin(user, "imagine", {"prompt": "hello"})
    assert "Blocked users:** 1" in await ops.admin(owner, "admin stats")
    assert "can use the bot again" in await ops.admin(owner, "admin unblock", {"user": user})
    assert (await ops.result(await ops.imagine(user, "hello again"))).attachments


async def test_blocking_cancels_the_waiting_jobs(ops: Ops) -> None:
    owner, user = ops.emu.owner, ops.emu.add_user("flooder")
    assert "Paused" in await ops.admin(owner, "admin pause")
    try:
        waiting = [await ops.imagine(user, f"spam {n}") for n in range(2)]
        answer = await ops.admin(owner, "admin block", {"user": user})
        assert "is blocked" in answer and "2 of their waiting jobs were cancelled" in answer, answer
        await ops.emu.wait_until(lambda: all("Cancelled" in i.original.content for i in waiting), 10, "cancelled")
    finally:
        await ops.admin(owner, "admin unblock", {"user": user})
        assert "Resumed" in await ops.admin(owner, "admin resume")
    _, body = await ops.health()
    assert body["queue"]["depth"] == 0, body


async def test_purge_and_forget_me_delete_images_so_their_buttons_say_so(ops: Ops) -> None:
    owner, ada, bob = ops.emu.owner, ops.emu.add_user("ada-purged"), ops.emu.add_user("bob-forgets")
    ada_result = await ops.result(await ops.imagine(ada, "a fox"))
    bob_result = await ops.result(await ops.imagine(bob, "an owl"))

    assert "Deleted 1 request of" in await ops.admin(owner, "admin purge", {"user": ada})
    click = await ops.emu.click(ada, ada_result, button(ada_result, "U1"))
    assert "can't find" in (await click.wait_for_message(timeout=10)).content

    ask = await ops.emu.invoke(bob, "forget-me", {})
    question = await ask.wait_for_message(timeout=10)
    assert question.ephemeral and "can't be undone" in question.content
    confirm = next(b["custom_id"] for b in question.buttons() if b.get("label") == "Delete everything")
    await ops.emu.click(bob, question, confirm)
    await ops.emu.wait_until(lambda: "Done: 1 request" in question.content, timeout=10, what="forget-me done")
    assert not question.buttons()
    click = await ops.emu.click(bob, bob_result, button(bob_result, "V1"))
    assert "can't find" in (await click.wait_for_message(timeout=10)).content

    # The explicit option skips the button; nothing is left to delete.
    assert "Done: 0 requests" in await ops.admin(bob, "forget-me", {"confirm": True})
    ops.emu.assert_no_violations()
