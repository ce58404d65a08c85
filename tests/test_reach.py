"""``bot.reach.rules_channel`` where the end-to-end tests can't reach: a thread that comes as a bare partial channel
(discord.py builds a ``Thread`` from every interaction payload today, but a partial one must not escape its rules)."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest

from bot.reach import UnknownParent, age_restricted, rules_channel_id

PARENT, THREAD = 1001, 2002


def interaction(channel: object, cached: object = None) -> discord.Interaction:
    client = SimpleNamespace(get_channel=lambda channel_id: cached if channel_id == THREAD else None)
    return SimpleNamespace(channel=channel, client=client)  # type: ignore[return-value]


def thread(parent: object = None) -> discord.Thread:
    """A thread under PARENT, in a server whose cache holds ``parent`` (or nothing)."""
    guild = SimpleNamespace(get_channel=lambda channel_id: parent if channel_id == PARENT else None)
    return discord.Thread(guild=guild, state=None, data={  # type: ignore[arg-type]
        "id": str(THREAD), "parent_id": str(PARENT), "owner_id": "3", "name": "t", "type": 11, "message_count": 0,
        "member_count": 1, "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                               "archive_timestamp": "2026-01-01T00:00:00+00:00"}})


def partial_thread() -> discord.PartialMessageable:
    return discord.PartialMessageable(state=None, id=THREAD, type=discord.ChannelType.public_thread)  # type: ignore


def test_a_partial_thread_follows_the_parent_the_cache_knows() -> None:
    adult = SimpleNamespace(id=PARENT, is_nsfw=lambda: True)
    known = interaction(partial_thread(), cached=thread(adult))
    assert rules_channel_id(known) == PARENT and age_restricted(known)


def test_a_thread_whose_parent_is_not_cached_keeps_its_parents_id_and_is_not_age_restricted() -> None:
    unknown_parent = interaction(thread())
    assert rules_channel_id(unknown_parent) == PARENT and not age_restricted(unknown_parent)


def test_a_partial_thread_nobody_knows_is_refused_rather_than_let_through() -> None:
    with pytest.raises(UnknownParent, match="which channel this thread belongs to"):
        rules_channel_id(interaction(partial_thread()))


def test_other_places_are_their_own_rules_channel() -> None:
    channel = discord.PartialMessageable(state=None, id=PARENT, type=discord.ChannelType.text)  # type: ignore
    assert rules_channel_id(interaction(channel)) == PARENT
    assert rules_channel_id(interaction(None)) is None and not age_restricted(interaction(None))
