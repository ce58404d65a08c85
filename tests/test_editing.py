"""The editing buttons and forms without a bot: their custom_ids, Discord's limits, and how their input is read.

The end-to-end tests (test_e2e_editing.py) press each kind once; here every pan direction, every region, the
longest custom_id and the forms' bodies are checked against the same rules the emulator applies.
"""

from __future__ import annotations

import re

import pytest

from bot.jobs import Job
from cogs.editing import parse_edit, zoom_factor
from cogs.utils.buttons import TEMPLATE, Action, region_view, result_view, single_view
from cogs.utils.forms import form_values, region_form, remix_form, zoom_form
from fakediscord import rules
from models.edits import PAN_DIRECTIONS, REGION_CHOICES, REGIONS, Edit
from models.plan import GenerationRequest

JOB_ID = "f" * 32


def components(view) -> list[dict]:
    return view.to_components()


def custom_ids(view) -> list[str]:
    return [item["custom_id"] for row in components(view) for item in row["components"]]


@pytest.mark.parametrize("others", [False, True], ids=["", "edit+retexture"])
@pytest.mark.parametrize("inpaint", [True, False])
@pytest.mark.parametrize("upscale_factor", [None, 4])
def test_single_view_fits_discord_and_every_button_parses(inpaint: bool, upscale_factor: int | None,
                                                          others: bool) -> None:
    """Every button at once (``others``: ✏️ Edit and 🧱 Retexture too) still keeps to Discord's 5 a row."""
    view = single_view(JOB_ID, 3, upscale_factor, inpaint=inpaint, instruct=others, retexture=others)
    body = {"content": "x", "components": components(view)}
    assert rules.check_message(body, creating=True) == []
    ids = custom_ids(view)
    assert (any(cid.startswith("ib:e:") for cid in ids) and any(cid.startswith("ib:k:") for cid in ids)) == others
    assert all(re.fullmatch(TEMPLATE, cid) and len(cid) <= rules.MAX_CUSTOM_ID for cid in ids)
    pans = [cid for cid in ids if cid.startswith("ib:p:")]
    if not inpaint:
        assert not pans and not any(cid.startswith(("ib:z:", "ib:q:")) for cid in ids)
        return
    # Every direction has its button, and each button's argument is the pan the engine does.
    assert [parse_edit(Action.PAN, re.fullmatch(TEMPLATE, cid)["arg"]) for cid in pans] == [
        Edit.pan(direction) for direction in PAN_DIRECTIONS]
    zooms = [re.fullmatch(TEMPLATE, cid)["arg"] for cid in ids if cid.startswith("ib:z:")]
    assert zooms == ["1.5", "2", None]  # the presets, then Custom zoom (no argument: it opens the form)
    assert [parse_edit(Action.ZOOM, arg).factor for arg in zooms[:2]] == [1.5, 2.0]


def test_the_grid_offers_remix_and_the_region_message_fits_with_everything_chosen() -> None:
    grid = custom_ids(result_view(JOB_ID, 4))
    assert f"ib:m:{JOB_ID}:0" in grid
    chosen = list(REGIONS)
    view = region_view(JOB_ID, 12, REGION_CHOICES, chosen)
    assert rules.check_message({"content": "x", "components": components(view)}, creating=True) == []
    longest = max(custom_ids(view), key=len)
    assert len(longest) <= rules.MAX_CUSTOM_ID and re.fullmatch(TEMPLATE, longest)
    assert parse_edit(Action.REGION_GO, re.fullmatch(TEMPLATE, longest)["arg"]).regions == tuple(REGIONS)


def test_one_click_edits_refuse_what_no_button_of_ours_carries() -> None:
    for action, arg in ((Action.ZOOM, "9"), (Action.PAN, "sideways"), (Action.REGION_GO, "10")):
        with pytest.raises(ValueError):
            parse_edit(action, arg)
    with pytest.raises(ValueError, match="not one this bot knows"):
        parse_edit(Action.REROLL, "")


def test_zoom_factor_reads_what_people_type() -> None:
    assert [zoom_factor(text) for text in ("1.5", " 1,25 ", "2x", "1.8×")] == [1.5, 1.25, 2.0, 1.8]
    with pytest.raises(ValueError, match=re.escape("a number from 1.1 to 2, like 1.5")):
        zoom_factor("wider")


def test_form_values_reads_rows_and_labels() -> None:
    data = {"components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "prompt", "value": "a fox"}]},
        {"type": 18, "component": {"type": 4, "custom_id": "factor", "value": "1.5"}},
        {"type": 18, "component": {"type": 4, "custom_id": "negative"}},
    ]}
    assert form_values(data) == {"prompt": "a fox", "factor": "1.5", "negative": ""}


def test_forms_keep_within_discords_rules_even_for_the_longest_prompt() -> None:
    request = GenerationRequest(prompt="p" * 1000, negative="n" * 1000, style="s" * 100)
    job = Job(user_id=1, request=request, id=JOB_ID)
    forms = [remix_form(Action.REMIX, job, 0), remix_form(Action.REMIX_IMAGE, job, 11), remix_form(Action.VARY, job, 3),
             zoom_form(job, 0), region_form(job, 0, ",".join(REGIONS))]
    for form in forms:
        assert rules.check_modal(form.to_dict()) == [], form.title
        assert rules.check_schema("ModalInteractionCallbackRequest", {"type": 9, "data": form.to_dict()}) == []
        assert re.fullmatch(TEMPLATE, form.custom_id)
    assert [form.title for form in forms[:3]] == ["Remix", "Remix image 12", "Remix image 4"]
