"""The world the bot lives in: its application, one server (the guild) with roles, people and channels, more servers
it is in where a test adds them (`add_guild`, e.g. on a chosen gateway shard), another server it was never invited
to, DMs, and the commands it synced. A mixin of `FakeDiscord`; tests build the world
through it (`add_user`, `add_channel`, ...) and read it directly (`emu.users`, `emu.channels`, ...)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .http import ApiError, int_or_none
from .models import (
    ANNOUNCEMENT_THREAD,
    GROUP_DM,
    GUILD_ANNOUNCEMENT,
    GUILD_FORUM,
    GUILD_TEXT,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    Channel,
    DMChannel,
    Guild,
    Message,
    Role,
    User,
    snowflake,
)

# What a freshly invited bot can do in a channel: view, send, embed, attach, history, reactions, external emoji,
# use application commands, send in threads.
BOT_PERMISSIONS = (
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 18) | (1 << 31) | (1 << 38)
)
EVERYONE_PERMISSIONS = BOT_PERMISSIONS
ALL_PERMISSIONS = (1 << 51) - 1
MANAGE_THREADS = 1 << 34
THREAD_PARENTS = frozenset({GUILD_TEXT, GUILD_ANNOUNCEMENT, GUILD_FORUM})


class World:
    """People, places and synced commands. `_channel_messages` (a channel's log) belongs to `MessageStore`; a place
    added here gets an empty one."""

    _channel_messages: dict[int, list[Message]]

    def __init__(self, *, bot_name: str, guild_name: str) -> None:
        self.app_permissions = BOT_PERMISSIONS
        self.token = f"fake.{secrets.token_urlsafe(24)}"
        self.application_id = snowflake()
        self.bot_user = User(self.application_id, bot_name, bot=True)
        self.owner = User(snowflake(), "owner")
        self.guild_id = snowflake()
        self.guild_name = guild_name
        self.roles: dict[int, Role] = {self.guild_id: Role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS)}
        self.users: dict[int, User] = {u.id: u for u in (self.bot_user, self.owner)}
        general = Channel(snowflake(), self.guild_id, "general", position=0)
        nsfw = Channel(snowflake(), self.guild_id, "after-dark", nsfw=True, position=1)
        self.channels: dict[int, Channel] = {general.id: general, nsfw.id: nsfw}
        self.channel_id, self.nsfw_channel_id = general.id, nsfw.id
        self.guilds: dict[int, Guild] = {self.guild_id: Guild(self.guild_id, guild_name, general.id)}
        """Every server the bot is in, its own first; GUILD_CREATE tells the bot about each on its shard."""
        # Another server, which the bot was never invited to: people reach the app there through their user install.
        self.foreign_guild_id = snowflake()
        elsewhere = Channel(snowflake(), self.foreign_guild_id, "elsewhere")
        elsewhere_nsfw = Channel(snowflake(), self.foreign_guild_id, "elsewhere-after-dark", nsfw=True, position=1)
        self.channels.update({elsewhere.id: elsewhere, elsewhere_nsfw.id: elsewhere_nsfw})
        self.foreign_channel_id, self.foreign_nsfw_channel_id = elsewhere.id, elsewhere_nsfw.id

        self.global_commands: dict[str, dict[str, Any]] = {}
        self.guild_command_defs: dict[int, dict[str, dict[str, Any]]] = {}
        self.command_syncs = 0
        self.dm_channels: dict[int, DMChannel] = {}  # by channel id
        self.dms_closed: set[int] = set()  # user ids that do not accept DMs from the bot (close_dms)
        self.refused_dms: list[int] = []  # the user id of every DM refused because their DMs were closed

    # ------------------------------------------------------------------ people and places

    def add_role(self, name: str, permissions: int = 0) -> Role:
        role = Role(snowflake(), name, permissions, position=len(self.roles))
        self.roles[role.id] = role
        return role

    def add_user(self, name: str, roles: Iterable[Role | int] = ()) -> User:
        user = User(snowflake(), name, roles=[r.id if isinstance(r, Role) else int(r) for r in roles])
        self.users[user.id] = user
        return user

    def add_channel(self, name: str, *, nsfw: bool = False, type: int = GUILD_TEXT,
                    guild_id: int | None = None) -> Channel:
        """A channel of the bot's server (or of ``guild_id``, one from ``add_guild``): a text channel, or an
        announcement channel (5) or a forum (15)."""
        if type not in THREAD_PARENTS:
            raise ValueError(f"channel type {type} is not a text (0), announcement (5) or forum (15) channel")
        guild = guild_id or self.guild_id
        if guild not in self.guilds:
            raise ValueError(f"the bot is in no guild {guild}")
        return self._add_place(Channel(snowflake(), guild, name, nsfw=nsfw, position=len(self.channels),
                                       type=type))

    def add_guild(self, name: str = "another server", *, shard: tuple[int, int] | None = None) -> Guild:
        """Another server the bot is in, with @everyone and a text channel "general" (``guild.channel_id``); every
        person is a member, without roles. ``shard=(id, total)`` gives it an id on that shard (Discord's
        ``(guild_id >> 22) % total``), so a test picks which shard's session gets its events. Silent, like
        ``add_channel``: a bot that connects afterwards gets its GUILD_CREATE."""
        guild_id = snowflake(shard=shard)
        general = Channel(snowflake(), guild_id, "general", position=0)
        guild = Guild(guild_id, name, general.id)
        self.guilds[guild_id] = guild
        self._add_place(general)
        return guild

    def _add_thread(self, parent: Channel, name: str, owner: User, *, private: bool) -> Channel:
        """A thread under ``parent`` as Discord makes one: type 10 under an announcement channel, 11 (public, and
        every forum post) or 12 (``private``, only under a text channel); ValueError for what Discord refuses."""
        if parent.is_thread or parent.guild_id is None or parent.type not in THREAD_PARENTS:
            raise ValueError(f"channel {parent.id} (type {parent.type}) can't have threads")
        if private and parent.type != GUILD_TEXT:
            raise ValueError("only a text channel has private threads")
        kind = (PRIVATE_THREAD if private else ANNOUNCEMENT_THREAD if parent.type == GUILD_ANNOUNCEMENT
                else PUBLIC_THREAD)
        return self._add_place(Channel(snowflake(), parent.guild_id, name, type=kind, parent_id=parent.id,
                                       owner_id=owner.id))

    # ------------------------------------------------------------------ places the bot is not in (user installs)

    def add_group_dm(self, *users: User, name: str = "group") -> Channel:
        """A group DM of ``users`` without the bot: only their user installs reach the app there (context 2)."""
        return self._add_place(Channel(snowflake(), None, name, type=GROUP_DM, recipients=list(users)))

    def add_foreign_channel(self, name: str, *, nsfw: bool = False) -> Channel:
        """A channel of the other server (``foreign_guild_id``), which the bot is not a member of."""
        return self._add_place(Channel(snowflake(), self.foreign_guild_id, name, nsfw=nsfw))

    def _add_place(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        self._channel_messages[channel.id] = []
        return channel

    def bot_is_member(self, channel: Channel | DMChannel) -> bool:
        """Whether the bot may use the channel's own routes: a channel of its server (a private thread only when it
        may manage threads: nobody added it), or its DM with someone. THREAD_CREATE reaches it for the same threads."""
        if isinstance(channel, DMChannel):
            return True
        if channel.guild_id not in self.guilds:
            return False
        return channel.type != PRIVATE_THREAD or bool(self.app_permissions & MANAGE_THREADS)

    def _place_channel(self, channel_id: int) -> Channel | DMChannel:
        """Where an interaction happens: a channel of any server, a group DM, or a DM with the bot."""
        return self.dm_channels.get(channel_id) or self.channels[channel_id]

    def permissions_of(self, user: User, guild_id: int | None = None) -> int:
        """``user``'s permissions in the bot's server (or ``guild_id``, one from ``add_guild``: @everyone's there)."""
        if user.id == self.owner.id:
            return ALL_PERMISSIONS
        if guild_id not in (None, self.guild_id):
            return EVERYONE_PERMISSIONS
        perms = self.roles[self.guild_id].permissions
        for role_id in user.roles:
            perms |= self.roles[role_id].permissions if role_id in self.roles else 0
        return ALL_PERMISSIONS if perms & (1 << 3) else perms

    def guild_channels(self, guild_id: int | None = None) -> list[Channel]:
        """The bot's server's (or ``guild_id``'s) channels, threads left out (Discord lists those apart)."""
        guild = guild_id or self.guild_id
        return [c for c in self.channels.values() if c.guild_id == guild and not c.is_thread]

    def _guild_or_404(self, guild_id: str) -> Guild:
        """A guild the bot is in, by the id in a route; 404 Unknown Guild for any other."""
        guild = self.guilds.get(int_or_none(guild_id) or -1)
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def member_dict(self, user: User, guild_id: int) -> dict[str, Any]:
        """``user`` as a member of ``guild_id``: the roles of ``add_role`` belong to the bot's own server only."""
        member = user.member_dict()
        if guild_id != self.guild_id:
            member["roles"] = []
        return member

    def guild_dict(self, guild_id: int | None = None) -> dict[str, Any]:
        """GUILD_CREATE's guild: the bot's server, or ``guild_id`` (one from ``add_guild``)."""
        guild = self.guilds[guild_id or self.guild_id]
        members = list(self.users.values())
        own = guild.id == self.guild_id
        roles = self.roles.values() if own else [Role(guild.id, "@everyone", EVERYONE_PERMISSIONS)]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": str(guild.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": [r.to_dict() for r in roles],
            "emojis": [],
            "stickers": [],
            "channels": [c.to_dict() for c in self.guild_channels(guild.id)],
            "threads": [c.to_dict() for c in self.channels.values()
                        if c.is_thread and c.guild_id == guild.id and self.bot_is_member(c)],
            "members": [self.member_dict(u, guild.id) for u in members],
            "member_count": len(members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "joined_at": datetime.now(UTC).isoformat(),
            "large": False,
            "unavailable": False,
            "max_members": 500000,
            "application_id": None,
        }

    # ------------------------------------------------------------------ commands

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        """Synced command definitions by name: guild commands of this guild over global ones."""
        return self.commands_in(self.guild_id)

    def commands_in(self, guild_id: int) -> dict[str, dict[str, Any]]:
        """The commands offered in ``guild_id``: its guild commands over global ones."""
        return {**self.global_commands, **self.guild_command_defs.get(guild_id, {})}

    def _command(self, name: str, guild_id: int | None = None) -> dict[str, Any]:
        offered = self.commands_in(guild_id or self.guild_id)
        try:
            return offered[name]
        except KeyError:
            raise ValueError(f"no synced command {name!r}; synced: {sorted(offered)}") from None

    # ------------------------------------------------------------------ direct messages

    def close_dms(self, user: User, closed: bool = True) -> None:
        """Make `user` refuse (or accept again) direct messages from the bot: a DM then fails with 403/50007."""
        (self.dms_closed.add if closed else self.dms_closed.discard)(user.id)

    def dm_channel(self, user: User) -> DMChannel | None:
        """The DM channel the bot opened with `user`, if it did."""
        return next((dm for dm in self.dm_channels.values() if dm.recipient.id == user.id), None)

    def open_dm(self, user: User) -> DMChannel:
        """``user``'s DM channel with the bot, made on first use: by the bot (POST /users/@me/channels), or by the
        person, who can type commands there (context 1) before the bot ever wrote to them."""
        dm = self.dm_channel(user)
        if dm is None:
            dm = DMChannel(snowflake(), user)
            self.dm_channels[dm.id] = dm
            self._channel_messages[dm.id] = []
        return dm
