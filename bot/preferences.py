"""What /settings changes about a request: a person's defaults over their channel's, under the channel's limits.

Every request (``/imagine`` and the buttons alike) is built through ``Preferences``: an option the person gave wins,
then their own default, then the channel's default, then bot.yaml's; the channel's ``max_count`` and
``allowed_models`` bound whatever comes out (which model a request runs on is ``bot.desk.resolve_model``'s to say).
Pure, so the order of precedence is tested without Discord.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import Rejected
from bot.settings import ChannelSettings, UserSettings
from models.text import Text, plural


@dataclass(frozen=True)
class Preferences:
    """One person's settings in one channel."""

    user: UserSettings
    channel: ChannelSettings

    @property
    def style(self) -> str | None:
        return self.user.style or self.channel.style

    @property
    def aspect(self) -> str | None:
        return self.user.aspect or self.channel.aspect

    def draft(self, given: bool | None) -> bool:
        """Whether to render at the model's draft settings: ``given`` (/imagine's ``draft``), else the person's own
        default (/settings me draft); a channel sets none, and bot.yaml's default is full settings."""
        return self.user.draft if given is None else given

    def max_count(self, bot_max: int) -> int:
        """The most images one request may ask for here: bot.yaml's ``model.max_count``, or less in this channel."""
        return min(bot_max, self.channel.max_count or bot_max)

    def count(self, given: int | None, bot_max: int) -> int:
        """How many images: ``given`` (refused above this channel's limit; bot.yaml's is checked with the other
        options), else a default held to the limit."""
        if given is not None:
            self.check_count(given)
            return given
        return min(self.user.count or self.channel.count or bot_max, self.max_count(bot_max))

    def check_count(self, count: int) -> None:
        limit = self.channel.max_count
        if limit is not None and count > limit:
            raise Rejected(plural("This channel allows at most {n} image per request.",
                                  "This channel allows at most {n} images per request.", n=limit))

    def button_count(self, source_count: int, bot_max: int) -> int:
        """How many images a button's new job makes: the clicker's default, the channel's, else as many as the
        source had; held to this channel's limit (a button has no count to refuse)."""
        return min(self.user.count or self.channel.count or source_count, self.max_count(bot_max))

    def check_limits(self, count: int, model: str) -> None:
        """The channel's limits, checked once more on every job just before it is queued (whatever built it)."""
        self.check_count(count)
        self.check_model(model)

    def check_model(self, name: str) -> None:
        if not self.channel.allows_model(name):
            allowed = ", ".join(self.channel.allowed_models)
            raise Rejected(Text("The model '{name}' isn't allowed in this channel. Models allowed here: {allowed}.",
                                name=name, allowed=allowed))
