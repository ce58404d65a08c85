"""An optional part that cannot be loaded takes nothing else down, end to end: the real bot process against the
emulator, with a captioner (describe.model) and an IP-Adapter (the default model's ip_adapter) that are not there. The
bot starts, /imagine serves, and each missing part is reported: in /models, /admin stats and /describe's refusal.
"""

from __future__ import annotations

import pytest

from tests.harness import command, imagine, person, private_reply, result_of, solid_png, started_bot

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("fresh")]


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    workdir = tmp_path_factory.mktemp("e2e-optional")
    missing = workdir / "not-a-model"
    missing.mkdir()
    async with started_bot(
        emu, tiny_model_dir, workdir, database_url=module_database_url,
        model={"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4,
               "ip_adapter": {"id": str(missing), "weight_name": "ip-adapter.safetensors"}},
        describe={"model": str(missing)},
    ) as process:
        yield process


async def test_a_captioner_and_an_ip_adapter_that_cannot_load_are_reported_and_the_rest_serves(emu, bot):
    who = person(emu)
    assert await result_of(await imagine(emu, who, prompt="a lighthouse", count=1))

    refused = await command(emu, who, "describe", attachments={"image": ("holiday.png", solid_png(64, 64))})
    assert "captioning model could not be loaded" in await private_reply(refused)

    blend = await command(emu, who, "blend", attachments={"image1": ("red.png", solid_png(64, 64, (200, 0, 0))),
                                                          "image2": ("blue.png", solid_png(64, 64, (0, 0, 200)))})
    assert "its IP-Adapter could not be loaded" in await private_reply(blend)

    models = await emu.invoke(who, "models")
    [listing] = (await models.wait_for_message()).embeds
    [field] = listing["fields"]
    assert "could not be loaded: ip_adapter, describe.model" in field["value"]
    assert str(bot.workdir) not in field["value"]  # no server path, only the keys

    stats = await emu.invoke(emu.owner, "admin stats")
    text = (await stats.wait_for_message()).content
    assert "Not loaded:** ip_adapter of" in text and "Not loaded:** describe.model of" in text
    log = bot.log()
    assert log.count("Cannot load the captioning model") == 1 and log.count("Cannot load the IP-Adapter") == 1
    emu.assert_no_violations()
