"""/imagine's options: defaults a person expects, and a clear message for each value out of range."""

from __future__ import annotations

import pytest

from bot.messages import Rejected
from cogs.utils.options import imagine_request
from models.styles import Style

ANIME = Style(name="anime", prompt="anime {prompt}")


def request(**options):
    values = {"prompt": "a cat", "style": ANIME, "negative": None, "aspect": None, "seed": None, "count": None}
    return imagine_request(**{**values, **options}, max_count=4)


def test_defaults_make_a_square_grid_of_the_most_images():
    made = request(prompt="  a cat  ", negative="  blurry ")
    assert (made.prompt, made.style, made.negative, made.aspect, made.seed, made.count) == (
        "a cat", "anime", "blurry", "square", None, 4
    )


def test_explicit_options_are_kept():
    made = request(aspect="wide", seed=42, count=1)
    assert (made.aspect, made.seed, made.count) == ("wide", 42, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prompt": "   "}, "the `prompt` is empty"),
        ({"count": 5}, "1 to 4 images"),
        ({"count": 0}, "1 to 4 images"),
        ({"aspect": "circle"}, "Unknown aspect 'circle'; choose one of square, portrait"),
        ({"seed": -1}, "from 0 to 4294967295"),
        ({"seed": 2**32}, "from 0 to 4294967295"),
    ],
)
def test_out_of_range_options_say_what_to_change(options, message):
    with pytest.raises(Rejected, match=message):
        request(**options)
