"""The playground's one check of a command against its registered definition (``playground.commands``): what
Discord's client enforces before it sends a slash command, with a sentence saying what to fix."""

from __future__ import annotations

import pytest

from playground.commands import Refused, check

PICTURE = ("cat.png", b"\x89PNG", "image/png")
COMMANDS = {
    "imagine": {"type": 1, "name": "imagine", "options": [
        {"type": 3, "name": "prompt", "required": True, "min_length": 1, "max_length": 20},
        {"type": 11, "name": "image"},
        {"type": 3, "name": "aspect", "choices": [{"name": "Square (1:1)", "value": "square"},
                                                  {"name": "Wide (16:9)", "value": "wide"}]},
        {"type": 4, "name": "count", "min_value": 1, "max_value": 4},
        {"type": 10, "name": "weight", "min_value": 0.05, "max_value": 1.0},
        {"type": 4, "name": "seed", "min_value": 0},
        {"type": 6, "name": "friend"},
    ]},
    "blend": {"type": 1, "name": "blend", "options": [
        {"type": 11, "name": "image1", "required": True},
        {"type": 11, "name": "image2", "required": True},
        {"type": 11, "name": "image3"},
        {"type": 3, "name": "prompt"},
    ]},
    "settings": {"type": 1, "name": "settings", "options": [
        {"type": 1, "name": "me", "options": [{"type": 5, "name": "private"}]},
        {"type": 1, "name": "channel", "options": [{"type": 4, "name": "max_count", "required": True}]},
    ]},
    "Describe image": {"type": 3, "name": "Describe image"},
}


def refusal(command: str, values: dict, files: dict | None = None, pictures: tuple = ()) -> str:
    with pytest.raises(Refused) as refused:
        check(COMMANDS, command, values, files, pictures)
    return str(refused.value)


def test_options_are_typed_as_discords_client_sends_them():
    checked = check(COMMANDS, " /imagine ", {"prompt": "  a cat ", "count": "2", "weight": "0.5", "seed": 7,
                                             "aspect": "wide", "friend": "ada", "style": ""},
                    {"image": [PICTURE]})
    assert checked.path == "imagine"
    assert checked.options == {"prompt": "a cat", "count": 2, "weight": 0.5, "seed": 7, "aspect": "wide",
                               "friend": "ada"}  # a blank value is an option left out; people go to the emulator
    assert checked.attachments == {"image": PICTURE}
    assert check(COMMANDS, "settings   me", {"private": "Yes"}).options == {"private": True}
    assert check(COMMANDS, "settings me", {"private": False}).options == {"private": False}


@pytest.mark.parametrize(("command", "values", "error"), [
    ("paint", {}, "There is no /paint command."),
    ("Describe image", {}, "There is no /Describe image command."),  # a message command is no slash command
    ("settings", {}, "/settings needs a subcommand; it has: me, channel."),
    ("settings you", {}, "/settings has no subcommand 'you'; it has: me, channel."),
    ("imagine", {}, "/imagine needs prompt: fill it in first."),
    ("imagine", {"prompt": " "}, "/imagine needs prompt: fill it in first."),
    ("settings channel", {}, "/settings channel needs max_count: fill it in first."),
    ("imagine", {"prompt": "x" * 21}, "prompt takes 1 to 20 characters; yours has 21."),
    ("imagine", {"prompt": "a cat", "count": "two"}, "count must be a whole number."),
    ("imagine", {"prompt": "a cat", "count": 2.5}, "count must be a whole number."),
    ("imagine", {"prompt": "a cat", "count": True}, "count must be a whole number."),
    ("imagine", {"prompt": "a cat", "count": "9"}, "count must be from 1 to 4; you gave 9."),
    ("imagine", {"prompt": "a cat", "seed": -1}, "seed must be at least 0; you gave -1."),
    ("imagine", {"prompt": "a cat", "weight": "heavy"}, "weight must be a number, like 0.5."),
    ("imagine", {"prompt": "a cat", "weight": "nan"}, "weight must be a number, like 0.5."),
    ("imagine", {"prompt": "a cat", "weight": 2}, "weight must be from 0.05 to 1; you gave 2."),
    ("imagine", {"prompt": "a cat", "aspect": "Wide (16:9)"}, "aspect must be one of: square, wide."),
    ("imagine", {"prompt": ["a", "cat"]}, "prompt takes one value, not a list."),
    ("imagine", {"prompt": "a cat", "image": "cat.png"}, "image takes a file: attach one rather than typing it."),
    ("settings me", {"private": "maybe"}, "private must be true or false."),
])
def test_what_breaks_the_definition_is_refused_with_what_to_fix(command, values, error):
    assert refusal(command, values) == error


def test_files_fill_picture_options_one_each():
    assert refusal("blend", {}, {"image1": [PICTURE]}) == "Attach the image2 first."
    assert refusal("blend", {}, {"image1": [PICTURE, PICTURE]}) == "image1 takes one file."
    checked = check(COMMANDS, "blend", {"prompt": "fruit"}, {"image1": [PICTURE]}, [PICTURE, PICTURE])
    assert list(checked.attachments) == ["image1", "image2", "image3"]  # several at once fill the empty ones


@pytest.mark.parametrize("count", [1, 4])
def test_several_pictures_at_once_must_fit_the_picture_options(count):
    assert refusal("blend", {}, None, (PICTURE,) * count) == f"/blend takes 2 to 3 pictures; you picked {count}."


def test_what_the_command_does_not_have_goes_on_for_the_emulator_to_refuse():
    checked = check(COMMANDS, "imagine", {"prompt": "a cat", "colour": "red"}, {"sketch": [PICTURE]})
    assert checked.options == {"prompt": "a cat", "colour": "red"}
    assert checked.attachments == {"sketch": PICTURE}
