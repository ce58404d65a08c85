"""Acting as Discord users: the driver API tests, benchmarks and the playground call (`invoke`, `autocomplete`,
`click`, `submit_modal`, `invoke_message_command`, `post`). Each builds the INTERACTION_CREATE Discord's client and
servers would send for that act in that place, refusing (ValueError) what Discord's client would not let a person
do, dispatches it on the gateway and starts the 3-second clock for the bot's answer. A mixin of `FakeDiscord`."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from . import rules
from .gateway import Session
from .models import Attachment, Channel, DMChannel, Guild, Interaction, Message, Role, User, snowflake
from .world import ALL_PERMISSIONS, EVERYONE_PERMISSIONS

# What an app reached only through a person's user install may do where it is not a member: answer through the
# interaction (send, embed links, attach files, mention everyone, use external emoji).
USER_INSTALL_PERMISSIONS = (1 << 11) | (1 << 14) | (1 << 15) | (1 << 17) | (1 << 18)
CHAT_INPUT_COMMAND, MESSAGE_COMMAND = 1, 3
"""Application command types: slash commands, and the message context menu's "Apps" entries."""


class ActAsUsers:
    """The people's side of interactions: every interaction dispatched, by id and by token, and the timers that
    record a `no_initial_response` when the bot does not answer in time."""

    # From the other parts of FakeDiscord: the world, the message store, the feed and the gateway.
    _session_for: Callable[[int | None], Session]
    application_id: int
    app_permissions: int
    channel_id: int
    guild_id: int
    guilds: dict[int, Guild]
    channels: dict[int, Channel]
    global_commands: dict[str, dict[str, Any]]
    commands: dict[str, dict[str, Any]]
    attachment_size_limit: int
    ack_timeout: float
    clock: Callable[[], float]
    _messages: dict[int, Message]
    _channel_messages: dict[int, list[Message]]
    _command: Callable[..., dict[str, Any]]
    _place_channel: Callable[[int], Channel | DMChannel]
    permissions_of: Callable[..., int]
    _store_file: Callable[..., Attachment]
    _emit: Callable[..., None]
    _violate: Callable[..., None]
    _message_event: Callable[[str, Message], None]
    wait_until: Callable[..., Any]

    def __init__(self) -> None:
        self.interactions: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self._late: set[int] = set()  # interactions already recorded as answered too late
        self._timers: dict[int, asyncio.TimerHandle] = {}

    async def invoke(
        self,
        user: User,
        command: str,
        options: dict[str, Any] | None = None,
        *,
        attachments: dict[str, tuple[str, bytes] | tuple[str, bytes, str] | Attachment] | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> Interaction:
        """Run a slash command as `user`. `command` may name a subcommand: "admin reload" or "group sub cmd".

        Option values are converted to the synced option's type; attachment options take (filename, bytes[,
        content_type]) and are served back at an emulator URL. Raises ValueError for unknown or missing options.
        """
        values = {**(options or {}), **(attachments or {})}
        data = self._command_data(command, values, channel_id or self.channel_id, focused=None)
        return await self._dispatch(2, user, data, channel_id=channel_id, command_name=command, locale=locale)

    async def invoke_message_command(
        self, user: User, name: str, message: Message, *, locale: str = "en-US"
    ) -> Interaction:
        """Run the message context-menu command `name` (a type 3 application command) on `message`, as `user` does
        from a message's "Apps" menu: the interaction carries `target_id` and the message in `resolved.messages`.

        Raises ValueError for an unknown command, a command that is not a message command, or a deleted message.
        """
        definition = self._command(name, message.guild_id if message.guild_id in self.guilds else None)
        if definition.get("type", 1) != MESSAGE_COMMAND:
            raise ValueError(f"{name!r} is not a message command (type {definition.get('type', 1)})")
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        data: dict[str, Any] = {
            "id": definition["id"],
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): message.to_dict()}},
        }
        if definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        return await self._dispatch(2, user, data, channel_id=message.channel_id, command_name=name, locale=locale)

    def post(
        self,
        user: User,
        content: str = "",
        *,
        attachments: Iterable[tuple[str, bytes] | tuple[str, bytes, str]] = (),
        channel_id: int | None = None,
    ) -> Message:
        """A message `user` writes in a channel (the bot does not receive it: it asks for no message intents), e.g.
        a picture for the "Describe image" menu; attachments are (filename, bytes[, content_type])."""
        channel = channel_id or self.channel_id
        guild_id = self.channels[channel].guild_id if channel in self.channels else self.guild_id
        message = Message(snowflake(), channel, guild_id, user, content=content)
        message.attachments = [
            self._store_file(channel, filename, data, ctype[0] if ctype else None)
            for filename, data, *ctype in attachments
        ]
        self._messages[message.id] = message
        self._channel_messages[channel].append(message)
        self._message_event("message_create", message)
        return message

    async def autocomplete(
        self,
        user: User,
        command: str,
        options: dict[str, Any],
        focused: str,
        *,
        channel_id: int | None = None,
        timeout: float = 5.0,
        locale: str = "en-US",
    ) -> list[dict[str, Any]]:
        """Type into option `focused` of `command`; returns the bot's choices ([{"name", "value"}, ...])."""
        data = self._command_data(command, options, channel_id or self.channel_id, focused=focused)
        inter = await self._dispatch(4, user, data, channel_id=channel_id, command_name=command, locale=locale)
        await self.wait_until(lambda: inter.choices is not None, timeout, f"no autocomplete answer for {command}")
        return inter.choices or []

    async def click(
        self, user: User, message: Message, custom_id: str, *, values: list[str] | None = None, locale: str = "en-US"
    ) -> Interaction:
        """Click the button (or choose `values` in the select) with `custom_id` on `message`; `locale` is the
        clicking user's client language, as Discord sends it with every interaction."""
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        component = message.component(custom_id)
        if component is None:
            ids = [c.get("custom_id") for c in message.buttons()]
            raise ValueError(f"message {message.id} has no component {custom_id!r}; buttons: {ids}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None or component["type"] != 2:
            data["values"] = list(values or [])
            if component["type"] == rules.STRING_SELECT:
                _check_choice(component, data["values"])
        return await self._dispatch(3, user, data, channel_id=message.channel_id, message=message, locale=locale)

    async def submit_modal(
        self, user: User, opened_by: Interaction, values: dict[str, str | list[str]], *, locale: str = "en-US"
    ) -> Interaction:
        """Submit the modal the bot opened in answer to `opened_by`, as Discord's client would.

        `values` maps an input's custom_id to its text (a select's: to the chosen values); inputs left out keep the
        text the bot prefilled. Like the client, this refuses (ValueError) what a person could not submit: an
        unknown input, a required one left empty, text outside the input's lengths, a choice the select lacks. The
        submission mirrors the modal's layout (action rows or labels) and, for a modal opened from a component,
        carries that component's message, as Discord's does.
        """
        if opened_by.modal is None:
            raise ValueError(f"interaction {opened_by.id} did not open a modal")
        inputs = {item.get("custom_id"): item for _path, item, _label in rules.modal_inputs(
            opened_by.modal.get("components"), ())}
        unknown = sorted(set(values) - set(inputs))
        if unknown:
            raise ValueError(f"the modal has no input {unknown}; inputs: {sorted(map(str, inputs))}")

        def submitted(item: dict[str, Any]) -> dict[str, Any]:
            cid = item.get("custom_id")
            if item.get("type") == rules.STRING_SELECT:
                chosen = values.get(cid, [o["value"] for o in item.get("options") or [] if o.get("default")])
                _check_choice(item, list(chosen))
                return {"type": rules.STRING_SELECT, "custom_id": cid, "values": list(chosen)}
            text = values.get(cid, item.get("value") or "")
            if not isinstance(text, str):
                raise ValueError(f"input {cid!r} takes text, not {text!r}")
            if not text and item.get("required", True):
                raise ValueError(f"input {cid!r} is required")
            low, high = item.get("min_length") or 0, item.get("max_length") or rules.MAX_INPUT_VALUE
            if text and not low <= len(text) <= high:
                raise ValueError(f"input {cid!r} takes {low}-{high} characters, not {len(text)}")
            return {"type": rules.TEXT_INPUT, "custom_id": cid, "value": text}

        rows: list[dict[str, Any]] = []
        for component in opened_by.modal.get("components") or []:
            if component.get("type") == 1:
                rows.append({"type": 1, "components": [submitted(item) for item in component.get("components") or []]})
            elif component.get("type") == rules.LABEL:
                rows.append({"type": rules.LABEL, "component": submitted(component["component"])})
        data = {"custom_id": opened_by.modal["custom_id"], "components": rows}
        return await self._dispatch(5, user, data, channel_id=opened_by.channel_id, message=opened_by.source_message,
                                    locale=locale)

    def _command_data(
        self, command: str, values: dict[str, Any], channel_id: int, *, focused: str | None
    ) -> dict[str, Any]:
        # An "Apps" menu entry, whose name may hold spaces, is looked up whole.
        menu = self.commands.get(command) or self.commands.get(command.split()[0], {})
        if menu.get("type", CHAT_INPUT_COMMAND) != CHAT_INPUT_COMMAND:
            raise ValueError(f"{menu['name']!r} is not a slash command (type {menu['type']}); a message command is "
                             "run with invoke_message_command")
        name, *path = command.split()
        definition = self._command_in(name, self._place_channel(channel_id))
        option_defs: list[dict[str, Any]] = definition.get("options") or []
        sub_types: list[int] = []
        for sub in path:
            sub_def = next((o for o in option_defs if o["name"] == sub and o["type"] in (1, 2)), None)
            if sub_def is None:
                raise ValueError(f"/{name} has no subcommand {sub!r}")
            sub_types.append(sub_def["type"])
            option_defs = sub_def.get("options") or []
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        by_name = {o["name"]: o for o in option_defs}
        for key, value in values.items():
            if key not in by_name:
                raise ValueError(f"/{command} has no option {key!r}; options: {sorted(by_name)}")
            option = {
                "name": key,
                "type": by_name[key]["type"],
                "value": self._option_value(by_name[key], value, channel_id, resolved),
            }
            if key == focused:
                option["focused"] = True
                option["value"] = value if isinstance(value, str) else str(value)
            leaf.append(option)
        if focused is None:
            missing = [o["name"] for o in option_defs if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"/{command} needs options {missing}")
        elif focused not in values:
            raise ValueError(f"focused option {focused!r} needs a (partial) value in options")
        nested = leaf
        for sub, sub_type in reversed(list(zip(path, sub_types, strict=True))):
            nested = [{"name": sub, "type": sub_type, "options": nested}]
        data: dict[str, Any] = {
            "id": definition["id"],
            "name": name,
            "type": definition.get("type", 1),
            "options": nested,
        }
        if resolved:
            data["resolved"] = resolved
        if definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        return data

    def _option_value(self, option: dict[str, Any], value: Any, channel_id: int, resolved: dict[str, Any]) -> Any:
        kind = option["type"]
        if kind == 3:
            return str(value)
        if kind == 4:
            return int(value)
        if kind == 10:
            return float(value)
        if kind == 5:  # a client sends true or false; "false" typed as text is false too
            return value.strip().lower() in ("true", "yes", "on", "1") if isinstance(value, str) else bool(value)
        if kind == 11:
            if isinstance(value, Attachment):
                att = value
            else:
                filename, data, *ctype = value
                att = self._store_file(channel_id, filename, data, ctype[0] if ctype else None, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = att.to_dict()
            return str(att.id)
        if kind in (6, 9) and isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = value.to_dict()
            member = value.member_dict(self.permissions_of(value))
            member.pop("user")
            resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if kind in (8, 9) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = value.to_dict()
            return str(value.id)
        if kind == 7:
            channel = self.channels[int(value.id if isinstance(value, Channel) else value)]
            resolved.setdefault("channels", {})[str(channel.id)] = {
                **channel.to_dict(),
                "permissions": str(ALL_PERMISSIONS),
            }
            return str(channel.id)
        return value

    async def _dispatch(
        self,
        kind: int,
        user: User,
        data: dict[str, Any],
        *,
        channel_id: int | None,
        message: Message | None = None,
        command_name: str | None = None,
        locale: str = "en-US",
    ) -> Interaction:
        if locale not in rules.LOCALES:
            raise ValueError(f"{locale!r} is not a Discord locale; Discord sends one of {sorted(rules.LOCALES)}")
        channel = self._place_channel(channel_id or self.channel_id)
        guild_id = None if isinstance(channel, DMChannel) else channel.guild_id
        # Discord sends it on the shard of its guild when the bot is in that guild, else (DMs, a user install's
        # places) on shard 0.
        session = self._session_for(guild_id if guild_id in self.guilds else None)
        inter = Interaction(
            emulator=self,
            id=snowflake(),
            token=f"aW50ZXJhY3Rpb24{secrets.token_urlsafe(120)}",
            type=kind,
            user=user,
            application_id=self.application_id,
            guild_id=guild_id,
            channel_id=channel.id,
            command_name=command_name.split()[0] if command_name else None,
            payload={},
            created_at=self.clock(),
            attachment_size_limit=self.attachment_size_limit,
            source_message=message,
            shard=session.shard,
        )
        payload: dict[str, Any] = {
            "id": str(inter.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            **self._place(user, channel),
            "token": inter.token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if message is not None:
            payload["message"] = message.to_dict()
        inter.payload = payload
        self.interactions[inter.id] = inter
        self._by_token[inter.token] = inter
        self._timers[inter.id] = asyncio.get_running_loop().call_later(self.ack_timeout, self._ack_deadline, inter)
        self._emit("interaction_create", interaction=self._interaction_summary(inter))
        await session.dispatch("INTERACTION_CREATE", payload)
        return inter

    def _place(self, user: User, channel: Channel | DMChannel) -> dict[str, Any]:
        """The INTERACTION_CREATE keys that depend on where it happens, as Discord sends them: in the bot's server
        (guild install, context 0), in another server through the person's user install (context 0, the owner is the
        user), in the DM with the bot (context 1, the guild install's owner is "0"), in a group DM (context 2)."""
        if isinstance(channel, DMChannel) or channel.guild_id is None:
            dm = isinstance(channel, DMChannel)
            return {
                "channel_id": str(channel.id),
                "channel": channel.to_dict(),
                "user": user.to_dict(),
                "app_permissions": str(self.app_permissions if dm else USER_INSTALL_PERMISSIONS),
                "authorizing_integration_owners": {"0": "0"} if dm else {"1": str(user.id)},
                "context": 1 if dm else 2,
            }
        home = channel.guild_id in self.guilds
        permissions = self.permissions_of(user, channel.guild_id) if home else EVERYONE_PERMISSIONS
        member = user.member_dict(permissions)
        if channel.guild_id != self.guild_id:
            member["roles"] = []  # the person's roles there are not the emulator's server's
        return {
            "guild_id": str(channel.guild_id),
            "guild": {"id": str(channel.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": {**channel.to_dict(), "permissions": str(permissions)},
            "member": member,
            "app_permissions": str(self.app_permissions if home else USER_INSTALL_PERMISSIONS),
            "guild_locale": "en-US",
            "authorizing_integration_owners": {"0": str(channel.guild_id)} if home else {"1": str(user.id)},
            "context": 0,
        }

    def _command_in(self, name: str, channel: Channel | DMChannel) -> dict[str, Any]:
        """The definition of ``name`` as offered in ``channel``; ValueError where Discord would not offer it.

        Outside the bot's server only global commands exist, and only those whose ``integration_types`` and
        ``contexts`` allow the place: a user install (1) in another server or a group DM, the guild install (0) in the
        DM with the bot.
        """
        if isinstance(channel, Channel) and channel.guild_id in self.guilds:
            return self._command(name, channel.guild_id)
        definition = self.global_commands.get(name)
        if definition is None:
            raise ValueError(f"/{name} is not a global command: Discord offers it only in the servers it was synced to")
        context = 1 if isinstance(channel, DMChannel) else 0 if channel.guild_id is not None else 2
        install = 0 if context == 1 else 1
        contexts = definition.get("contexts") or ([0, 1] if definition.get("dm_permission", True) else [0])
        installs = definition.get("integration_types") or [0]
        if context not in contexts or install not in installs:
            raise ValueError(f"/{name} (contexts {contexts}, integration_types {installs}) is not offered in context "
                             f"{context} through install type {install}")
        return definition

    def _ack_deadline(self, inter: Interaction) -> None:
        self._timers.pop(inter.id, None)
        if not inter.acked and inter.id not in self._late:
            self._late.add(inter.id)
            self._violate(
                "no_initial_response",
                f"no initial response within {self.ack_timeout:g}s (Discord shows 'The application did not respond')",
                inter=inter,
            )

    def age_interaction(self, inter: Interaction | str, *, minutes: float = 0.0, seconds: float = 0.0) -> None:
        """Make an interaction (or its token) older, e.g. minutes=16 to expire its 15-minute token."""
        target = inter if isinstance(inter, Interaction) else self._by_token[inter]
        target.created_at -= minutes * 60 + seconds

    @staticmethod
    def _interaction_summary(inter: Interaction) -> dict[str, Any]:
        return {
            "id": str(inter.id),
            "type": inter.type,
            "user": inter.user.to_dict(),
            "channel_id": str(inter.channel_id),
            "command": inter.command_name,
            "data": inter.payload.get("data"),
        }


def _check_choice(select: dict[str, Any], chosen: list[str]) -> None:
    """What Discord's client lets a person choose in a string select: its own options, between min and max of them."""
    options = {option.get("value") for option in select.get("options") or []}
    strange = [value for value in chosen if value not in options]
    if strange:
        raise ValueError(f"select {select.get('custom_id')!r} has no option {strange}; options: {sorted(options)}")
    low, high = select.get("min_values", 1), select.get("max_values", 1)
    if not low <= len(chosen) <= high:
        raise ValueError(f"select {select.get('custom_id')!r} takes {low}-{high} choices, not {len(chosen)}")
