"""The shortest end-to-end path: the real bot process answers /imagine through the emulator."""

from __future__ import annotations


async def test_imagine_answers_with_a_grid_and_buttons(running_bot, emulator):
    user = emulator.add_user("ada")
    interaction = await emulator.invoke(user, "imagine", {"prompt": "a cat", "style": "anime", "count": 4})
    await interaction.wait_acked(3)
    result = await interaction.wait_for_message(lambda m: any(b.get("label") == "V4" for b in m.buttons()), timeout=60)
    assert result.attachments and result.attachments[0].filename.endswith(".png")
    labels = [button.get("label") or button.get("emoji", {}).get("name") for button in result.buttons()]
    assert labels[:8] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
    emulator.assert_no_violations()
