"""Messages and their files: how a message is created, edited and deleted from a body Discord accepted (so every
route does it the same way and the event feed sees each change), and reading them back. A mixin of `FakeDiscord`."""

from __future__ import annotations

import io
import mimetypes
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlparse

from .http import Upload, int_or_none
from .models import EPHEMERAL, LOADING, Attachment, Channel, DMChannel, Interaction, Message, User, now, snowflake
from .rules import IS_COMPONENTS_V2

# Message flags a sender may set: SUPPRESS_EMBEDS, EPHEMERAL, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2.
SETTABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)


class MessageStore:
    """Every message by id and by channel, every file by id."""

    # From the other parts of FakeDiscord: the world, the feed, and the address files are served at.
    channels: dict[int, Channel]
    dm_channels: dict[int, DMChannel]
    bot_user: User
    channel_id: int
    dm_channel: Callable[[User], DMChannel | None]
    _emit: Callable[..., None]
    _message_event: Callable[[str, Message], None]
    http_base: str

    def __init__(self) -> None:
        self.attachment_delay = 0.0
        self._messages: dict[int, Message] = {}
        self._channel_messages: dict[int, list[Message]] = {c: [] for c in self.channels}
        self._files: dict[int, Attachment] = {}

    # ------------------------------------------------------------------ reading

    def message(self, message_id: int | str) -> Message:
        return self._messages[int(message_id)]

    def channel_messages(self, channel_id: int | None = None, *, ephemeral: bool = True) -> list[Message]:
        """Messages in a channel, oldest first, without deleted ones; `ephemeral=False` hides ephemeral ones."""
        return [
            m
            for m in self._channel_messages[channel_id or self.channel_id]
            if not m.deleted and (ephemeral or not m.ephemeral)
        ]

    def dm_messages(self, user: User) -> list[Message]:
        """What the bot sent `user` by direct message, oldest first, without deleted ones."""
        dm = self.dm_channel(user)
        return [] if dm is None else self.channel_messages(dm.id)

    def file_bytes(self, attachment: Attachment | dict[str, Any] | str | int) -> bytes:
        """The bytes behind an attachment, given as an Attachment, its JSON dict, its URL or its id."""
        if isinstance(attachment, Attachment):
            return attachment.data
        if isinstance(attachment, dict):
            return self._files[int(attachment["id"])].data
        if isinstance(attachment, str) and "/" in attachment:
            return self._files[int(urlparse(attachment).path.split("/")[3])].data
        return self._files[int(attachment)].data

    # ------------------------------------------------------------------ what people do to messages

    def delete_message(self, message: Message) -> None:
        """Delete a message as a person with Manage Messages would: the bot's later edits of it get 404 10008."""
        self._delete_message(message)

    def slow_attachments(self, delay_s: float) -> None:
        """Delay every attachment download by `delay_s` seconds (0 turns it off)."""
        self.attachment_delay = delay_s

    # ------------------------------------------------------------------ changing messages

    def _store_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        ephemeral: bool = False,
        description: str | None = None,
    ) -> Attachment:
        att = Attachment(
            snowflake(),
            filename,
            _sniff(data, filename, content_type),
            data,
            description=description,
            ephemeral=ephemeral,
        )
        att.url = f"{self.http_base}/attachments/{channel_id}/{att.id}/{quote(filename)}"
        if att.content_type.startswith("image/"):
            att.width, att.height = _image_size(data)
        self._files[att.id] = att
        return att

    def _new_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        uploads: list[Upload],
        *,
        inter: Interaction | None = None,
        kind: int = 0,
        flags: int | None = None,
    ) -> Message:
        guild_id = None if channel_id in self.dm_channels else self.channels[channel_id].guild_id
        message = Message(snowflake(), channel_id, guild_id, self.bot_user, interaction=inter, type=kind)
        message.flags = (body.get("flags") or 0) & SETTABLE_FLAGS if flags is None else flags
        self._apply(message, body, uploads, creating=True)
        _resolve_media(message)
        self._messages[message.id] = message
        self._channel_messages[channel_id].append(message)
        self._message_event("message_create", message)
        return message

    def _edit_message(self, message: Message, body: dict[str, Any], uploads: list[Upload]) -> None:
        message.history.append(message.to_dict())
        message.flags &= ~LOADING
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS may change on edit, and components v2 be turned on (never off); ephemerality stays.
            v2 = IS_COMPONENTS_V2
            message.flags = (message.flags & ~(1 << 2)) | (body["flags"] & ((1 << 2) | v2))
        self._apply(message, body, uploads, creating=False)
        _resolve_media(message)
        message.edited_at = now()
        self._message_event("message_update", message)

    def _delete_message(self, message: Message) -> None:
        message.deleted = True
        self._emit("message_delete", message_id=str(message.id), channel_id=str(message.channel_id))

    def _apply(self, message: Message, body: dict[str, Any], uploads: list[Upload], *, creating: bool) -> None:
        if "content" in body:
            message.content = body["content"] or ""
            message.pings |= mentioned(message.content, body.get("allowed_mentions"))
        if "embeds" in body:
            message.embeds = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            message.components = _number_components(body["components"] or [])
        entries = body.get("attachments")
        if entries is None and not uploads:
            return
        if entries is None:  # no list: a create gets just the uploads, an edit adds them to what is there
            kept, meta = ([] if creating else list(message.attachments)), {}
        else:  # the list names the existing attachments to keep and describes uploads by their files[n] index
            wanted = {str(e.get("id")) for e in entries}
            kept = [a for a in message.attachments if str(a.id) in wanted]
            meta = {int_or_none(e.get("id")): e for e in entries}
        new = []
        for upload in sorted(uploads, key=lambda u: u.index):
            entry = meta.get(upload.index) or {}
            filename = entry.get("filename") or upload.filename
            new.append(
                self._store_file(
                    message.channel_id,
                    filename,
                    upload.data,
                    None,
                    ephemeral=message.ephemeral,
                    description=entry.get("description"),
                )
            )
        message.attachments = kept + new


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(?:everyone|here)")


def mentioned(content: str, allowed: dict[str, Any] | None) -> set[str]:
    """Who ``content`` pings under an allowed_mentions object: no object means everything parses, as for Discord."""
    if allowed is None:
        allowed = {"parse": ["users", "roles", "everyone"]}
    parse = set(allowed.get("parse") or [])
    users = {str(user) for user in allowed.get("users") or []}
    roles = {str(role) for role in allowed.get("roles") or []}
    out = {f"user:{user}" for user in _USER_MENTION.findall(content) if "users" in parse or user in users}
    out |= {f"role:{role}" for role in _ROLE_MENTION.findall(content) if "roles" in parse or role in roles}
    if "everyone" in parse and _EVERYONE.search(content):
        out.add("everyone")
    return out


def _resolve_media(message: Message) -> None:
    """Discord answers ``attachment://NAME`` media (galleries, thumbnails, files) with the attachment's own URL, size
    and id, as it shows them."""
    by_name = {a.filename: a for a in message.attachments}

    def resolve(media: Any) -> Any:
        url = media.get("url") if isinstance(media, dict) else None
        if not (isinstance(url, str) and url.startswith("attachment://")) or url[13:] not in by_name:
            return media
        att = by_name[url[13:]]
        return {**media, "url": att.url, "proxy_url": att.url, "width": att.width, "height": att.height,
                "content_type": att.content_type, "attachment_id": str(att.id)}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 12:
                component["items"] = [{**item, "media": resolve(item.get("media"))} for item in component["items"]]
            for key in ("media", "file"):
                if key in component:
                    component[key] = resolve(component[key])
            walk(component.get("components") or [])
            if isinstance(component.get("accessory"), dict):
                walk([component["accessory"]])

    walk(message.components)


def _number_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Discord gives every component a numeric `id` (in order) when the sender did not."""
    counter = 0

    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal counter
        out = []
        for item in items:
            counter += 1
            copy = {**item, "id": item.get("id") or counter}
            if isinstance(item.get("components"), list):
                copy["components"] = walk(item["components"])
            out.append(copy)
        return out

    return walk(components)


def _sniff(data: bytes, filename: str, declared: str | None) -> str:
    """Discord decides content_type from the bytes and name; discord.py always declares application/octet-stream."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # not an image Pillow can read (or no Pillow): Discord omits width/height too
        return None, None
