"""bot/preferences.py: a request's option over the person's default over the channel's, under its limits."""

from __future__ import annotations

import pytest

from bot.desk import resolve_model
from bot.messages import Rejected
from bot.preferences import Preferences
from bot.settings import ChannelSettings, UserSettings
from models.plan import GenerationRequest
from models.styles import Style

LIMITED = ChannelSettings(style="watercolor", aspect="wide", count=2, max_count=3, allowed_models=("sd", "flux"))


def test_the_person_wins_over_the_channel_which_wins_over_the_bot() -> None:
    mine = Preferences(UserSettings(style="anime", count=1), LIMITED)
    assert (mine.style, mine.aspect, mine.count(None, 4)) == ("anime", "wide", 1)
    assert Preferences(UserSettings(), LIMITED).count(None, 4) == 2
    assert Preferences(UserSettings(), ChannelSettings()).count(None, 4) == 4
    assert Preferences(UserSettings(), ChannelSettings()).style is None


def test_counts_are_held_to_the_channel_limit_and_asking_for_more_is_refused() -> None:
    greedy = Preferences(UserSettings(count=4), LIMITED)
    assert greedy.count(None, 4) == 3 and greedy.button_count(4, 4) == 3
    assert greedy.count(3, 4) == 3 and Preferences(UserSettings(), LIMITED).button_count(4, 4) == 2
    assert Preferences(UserSettings(), ChannelSettings()).count(6, 4) == 6  # bot.yaml's limit: imagine_request's
    assert Preferences(UserSettings(), ChannelSettings()).button_count(3, 4) == 3  # as many as the source had
    with pytest.raises(Rejected, match="at most 3 images per request"):
        greedy.count(4, 4)
    assert Preferences(UserSettings(), ChannelSettings(max_count=4)).max_count(2) == 2  # never over bot.yaml's


def model(preferences: Preferences, given: str | None, default: str, style: Style | None = None) -> str:
    """``resolve_model`` with bot.yaml's default first among the models sd, flux and pixart."""
    names = [default, *(name for name in ("sd", "flux", "pixart") if name != default)]
    return resolve_model(GenerationRequest("x", style=style.name if style else "", model=given or ""), style,
                         preferences, names)


def test_models_outside_the_allowed_list_are_refused_when_named_and_replaced_when_defaults() -> None:
    here = Preferences(UserSettings(model="pixart"), LIMITED)
    assert model(here, "flux", "sd") == "flux"
    with pytest.raises(Rejected, match=r"'pixart' isn't allowed in this channel\. Models allowed here: sd, flux"):
        model(here, "pixart", "sd")
    assert model(here, None, "sd") == "sd"  # their default isn't allowed here: the channel's first
    assert model(Preferences(UserSettings(), LIMITED), None, "sd") == "sd"  # the default is allowed
    assert model(Preferences(UserSettings(), ChannelSettings(allowed_models=("flux",))), None, "sd") == "flux"
    assert model(Preferences(UserSettings(model="pixart"), ChannelSettings()), None, "sd") == "pixart"


def test_the_model_is_the_option_then_the_default_then_the_styles_then_bot_yaml_and_a_style_pins_it() -> None:
    anyone, poster = Preferences(UserSettings(), ChannelSettings()), Style(name="poster", model="pixart")
    assert model(anyone, None, "sd", poster) == "pixart"  # the style's model over bot.yaml's
    assert model(anyone, None, "sd") == "sd"
    with pytest.raises(ValueError, match="'poster' is made for the model 'pixart'"):
        model(anyone, "flux", "sd", poster)  # named against the style
    with pytest.raises(ValueError, match="Unknown model 'giant'"):
        model(anyone, "giant", "sd")
    assert model(Preferences(UserSettings(model="ghost"), ChannelSettings()), None, "sd") == "sd"  # removed since
    # A channel that doesn't allow the style's model refuses it rather than run the style on another model.
    with pytest.raises(Rejected, match="'pixart' isn't allowed in this channel"):
        model(Preferences(UserSettings(), LIMITED), None, "sd", poster)


def test_every_job_is_checked_against_the_channel_limits_before_it_is_queued() -> None:
    here = Preferences(UserSettings(), LIMITED)
    here.check_limits(3, "flux")
    with pytest.raises(Rejected, match="at most 3 images"):
        here.check_limits(4, "sd")
    with pytest.raises(Rejected, match="'pixart' isn't allowed"):
        here.check_limits(1, "pixart")
    Preferences(UserSettings(), ChannelSettings()).check_limits(4, "pixart")  # no limits set: none apply
