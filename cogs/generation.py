"""The GPU generation cog: it starts the generation service (``bot.generation``) and delivers its results.

``cog_load`` loads the model and starts the queue; ``cog_unload`` stops taking work, lets the running
batch finish (up to a grace period) and leaves the rest queued in storage for the next start — so
``reload cogs.generation`` reloads the model. Everything a job shows in Discord after it was accepted
(its place in line, progress with a preview, the result, a failure) is sent from here, through the
interaction's webhook rebuilt from the stored token, which works the same after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.ext import commands

from bot.desk import RequestDesk
from bot.encoding import in_encoder
from bot.i18n import t, translate
from bot.jobs import Job, Notice, StoredImage
from bot.moderation import BannedTerms
from bot.queue import DeliveryFailed, Undeliverable
from bot.reach import DeadTokens, token_is_dead
from bot.safety import Guard, Treatment, shown_as
from bot.service import GenerationService
from cogs.utils import layouts, results
from cogs.utils.buttons import cancel_view, suggestion_view
from models.text import Text

if TYPE_CHECKING:
    from bot.client import ImageBot
    from models.plan import Progress

log = logging.getLogger(__name__)

EDIT_INTERVAL_S = 1.0
"""Progress edits per message are spaced at least this far apart (Discord rate-limits webhook edits)."""
FRONT_OF_LINE = 10
"""Queued jobs up to this place get their position refreshed every 2 s; those further back every 15 s."""
NONCE_LENGTH = 25
"""Discord takes a message nonce of at most 25 characters; 25 of a job id's 32 hex digits keep it unique."""
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024
"""Discord's smallest attachment limit, used for jobs resumed after a restart (their interaction is gone)."""
WEBHOOK_EXPIRED = ("Its interaction expired before the result could be shown, and the bot may not post where it was "
                   "asked (a user-installed command in a server or group DM the bot is not in).")
CANNOT_DM = 50007
"""Discord's error code for a direct message the person does not accept (DMs closed, or no server in common)."""


class DMsClosed(Exception):
    """The person does not accept direct messages from the bot."""


@dataclass
class Live:
    """What the running process knows about a job beyond storage: when it may be edited, and how big files can be."""

    filesize_limit: int = DEFAULT_FILESIZE_LIMIT
    responded: asyncio.Event = field(default_factory=asyncio.Event)
    last_edit: float = 0.0
    progress_shown: bool = False
    editing: asyncio.Lock = field(default_factory=asyncio.Lock)
    finished: bool = False


class Generation(commands.Cog):
    """Runs the generation service and shows what it does in Discord (it is the service's ``Delivery``)."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.live: dict[str, Live] = {}
        self.dead_tokens = DeadTokens()

    async def cog_load(self) -> None:
        # setup_hook runs after login, so the HTTP session exists to deliver what the last run left behind.
        assert self.bot.storage is not None
        service = await GenerationService.start(
            self.bot.config, self.bot.storage, delivery=self, observer=self.bot.metrics, on_hang=self.bot.engine_hung
        )
        self.bot.generation = service
        guard = await asyncio.to_thread(Guard.load, self.bot.config.safety, str(self.bot.config.storage.dir))
        self.bot.request_desk = RequestDesk(self.bot, service, counter=self, guard=guard)

    async def cog_unload(self) -> None:
        desk, self.bot.request_desk = self.bot.request_desk, None
        if desk is not None:
            await desk.close()
        service, self.bot.generation = self.bot.generation, None
        if service is not None:
            await service.stop(self.bot.config.queue.stop_grace_s)

    # -- how the request desk's answers look (its ``Counter``) ----------------------------------------------------

    def queued(self, job: Job, where: tuple[int, float] | None) -> dict[str, Any]:
        position = results.progress_text(job, 0, 1) if where is None else results.queued_text(job, *where)
        return {"content": position, "view": cancel_view(job.id, job.locale)}

    def reading(self, job: Job, what: str) -> str:
        return f"{results.headline(job)}\n{what}"

    def notices(self, locale: discord.Locale, notices: Sequence[Notice]) -> str:
        lines = [f"• “{results.short_prompt(notice.prompt, 80)}” — {notice.text}" for notice in notices[:10]]
        return "\n".join([t(locale, "About your earlier requests:"), *lines])[:2000]

    # -- what the service tells its delivery ----------------------------------------------------------------------

    def expect(self, job_id: str, filesize_limit: int) -> None:
        self.live[job_id] = Live(filesize_limit=filesize_limit)

    def responded(self, job_id: str) -> None:
        """The interaction's public message exists now, so it may be edited."""
        live = self.live.get(job_id)
        if live is not None:
            live.responded.set()

    def forget(self, job_id: str) -> None:
        self.live.pop(job_id, None)

    async def on_cancelled(self, job: Job) -> None:
        await self._edit(job, final=True, content=f"{results.headline(job)}\n" + t(job.locale, "🚫 Cancelled."),
                         attachments=[], view=None)
        self.live.pop(job.id, None)

    # -- delivery ---------------------------------------------------------------------------------------------------

    def _live(self, job: Job) -> Live:
        live = self.live.get(job.id)
        if live is None:  # a job resumed after a restart: its public message exists already
            live = self.live[job.id] = Live()
            live.responded.set()
        return live

    def _webhook(self, job: Job) -> discord.Webhook:
        assert job.application_id is not None and job.token is not None
        webhook = discord.Webhook.partial(job.application_id, job.token, client=self.bot)
        # An interaction's webhook is an application webhook: discord.py sends ephemeral followups only through one.
        webhook.type = discord.WebhookType.application
        return webhook

    async def _edit(self, job: Job, *, final: bool = False, confirm: Callable[[discord.Message], bool] | None = None,
                    **fields: object) -> bool:
        """Edit the job's public message; False when it can't be (token expired, message deleted).

        An edit that fails without a clean refusal (a 5xx after discord.py's retries, a dropped connection, a
        timeout) may have been applied all the same. With ``confirm`` the message is read back then, and the edit
        counts as made when ``confirm`` finds it there; when it is not there, or the message can't be read,
        ``DeliveryFailed`` says to try again later. Without ``confirm`` such an edit is just not made (False).
        """
        live = self._live(job)
        if not self.dead_tokens.usable(job):
            return False
        if not final and (live.finished or live.editing.locked()):
            return False
        try:
            async with asyncio.timeout(10):
                await live.responded.wait()
        except TimeoutError:
            return False
        async with live.editing:
            if live.finished:
                return False
            live.finished = final
            live.last_edit = time.monotonic()
            try:
                await self._webhook(job).edit_message(  # type: ignore[arg-type]
                    "@original", allowed_mentions=results.requester_only(job), **fields
                )
                return True
            except discord.HTTPException as error:
                if error.status < 500:
                    log.info("could not edit the message of job %s: %s", job.id, error)
                    if token_is_dead(error):
                        self.dead_tokens.bury(job)
                    return False
                uncertain: Exception = error
            except (aiohttp.ClientError, TimeoutError) as error:
                uncertain = error
            log.warning("editing the message of job %s failed (%r); Discord may have applied it", job.id, uncertain)
            return confirm is not None and await self._confirm(job, confirm)

    async def _confirm(self, job: Job, confirm: Callable[[discord.Message], bool]) -> bool:
        """Read the job's message back after an edit whose answer was lost: True when the edit is there."""
        try:
            message = await self._webhook(job).fetch_message("@original")
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"job {job.id}: the edit's answer was lost and the message can't be read: "
                                 f"{error!r}") from error
        if not confirm(message):
            raise DeliveryFailed(f"job {job.id}: the edit's answer was lost and the message does not show it")
        return True

    async def on_position(self, job: Job, position: int, eta: float) -> None:
        live = self._live(job)
        # Every batch start reports every queued job's place. With a long queue that would be one edit per job every
        # 2 s (over Discord's global 50 requests/s with ~100 waiting): only the front of the line updates that often.
        interval = EDIT_INTERVAL_S * (2 if position <= FRONT_OF_LINE else 15)
        if time.monotonic() - live.last_edit >= interval:
            await self._edit(job, content=results.queued_text(job, position, eta), view=cancel_view(job.id, job.locale))

    async def on_progress(self, job: Job, progress: Progress) -> None:
        live = self._live(job)
        if progress.loading is not None:  # before any step: says why the first step takes a while
            await self._edit(job, content=results.loading_text(job, progress.loading),
                             view=cancel_view(job.id, job.locale))
            return
        last_step = progress.step >= progress.total
        # The first progress edit always goes out (even right after a position edit): it is the moment the person
        # learns their images are being made. Later ones wait out the interval.
        recent = time.monotonic() - live.last_edit < EDIT_INTERVAL_S
        if last_step or (live.progress_shown and recent):
            return
        fields: dict[str, object] = {"content": results.progress_text(job, progress.step, progress.total)}
        if progress.preview is not None:
            fields["attachments"] = [await in_encoder(results.preview_file, progress.preview)]
        if await self._edit(job, view=cancel_view(job.id, job.locale), **fields):
            live.progress_shown = True

    async def on_result(self, job: Job, images: list[StoredImage]) -> None:
        """Show the result; returns once Discord has it and raises when it could not (the queue tries again later).

        Through the interaction while its token lives; when the token expired (a long queue) or the message was
        deleted: in the channel, or, for a job asked for where the bot is not a member (``webhook_only``), as a new
        followup while the token lives and nowhere once it expired (``Undeliverable``: it can't be shown anywhere).
        A private job's result goes by direct message (``_deliver_privately``).
        """
        live = self._live(job)
        if job.kind == "describe":
            await self._show_described(job, live)
            return
        # Results recovered while the service starts come before it is set: those offer img2img's upscale only.
        buttons = results.result_view_for(job, len(images), self.bot.generation)
        here = Treatment(job.request.safety or Treatment.BLOCK)  # decided by the desk where it was asked

        def render() -> Awaitable[layouts.ResultMessage]:
            return layouts.render(job, images, layout=self.bot.config.discord.layout, buttons=buttons,
                                  max_bytes=live.filesize_limit, name=f"imagebot-{job.id[:8]}", here=here)

        try:
            message = await render()
        except ValueError:  # not even a small JPEG fits this channel's attachment limit: say so, don't go silent
            await self.on_failure(job, Text("The image is too large to attach in this channel, even compressed."))
            return
        try:
            if job.private:
                await self._deliver_privately(job, message, render)
            elif not await self._edit(job, final=True, confirm=lambda sent: message.shows(sent, job),
                                      **message.edit_fields()):
                # New files: discord.py closes a file it sent, even when Discord refused the request.
                if job.webhook_only:
                    await self._follow_up_result(job, await render())
                else:
                    await self._post_result(job, await render())
        except BaseException:
            live.finished = False  # the next attempt may edit the message again
            raise
        self.live.pop(job.id, None)
        await self._tell_checked(job, images, here)

    async def _tell_checked(self, job: Job, images: list[StoredImage], here: Treatment) -> None:
        """Count the safety check's verdicts, and tell the person privately which of their pictures were withheld or
        spoilered, and why (the score against the threshold). A lost notice is logged: the result is delivered."""
        checked = [(image, shown_as(image.recipe, here)) for image in images if image.recipe.get("safety")]
        if not checked:
            return
        self.bot.metrics.safety_checked(len(checked), [treated.value for image, treated in checked
                                                       if image.recipe["safety"].get("flagged")])
        hidden = [(image, treated) for image, treated in checked if treated is not Treatment.ALLOW]
        if not hidden or not self.dead_tokens.usable(job):
            return
        limit = self.bot.config.safety.threshold
        lines = [t(job.locale, "Image {number} was withheld: the safety check scored it {score:.2f} (the limit is "
                               "{limit:.2f}).", number=image.index + 1, score=image.recipe["safety"]["score"],
                   limit=limit) if treated is Treatment.BLOCK else
                 t(job.locale, "Image {number} is shown as a spoiler: the safety check scored it {score:.2f} (the "
                               "limit is {limit:.2f}).", number=image.index + 1, score=image.recipe["safety"]["score"],
                   limit=limit)
                 for image, treated in hidden]
        try:
            await self._webhook(job).send("\n".join(lines)[:2000], ephemeral=True)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            log.info("could not tell the person about the withheld images of job %s: %r", job.id, error)

    async def _deliver_privately(self, job: Job, message: layouts.ResultMessage,
                                 render: Callable[[], Awaitable[layouts.ResultMessage]]) -> None:
        """A private job's result goes to its owner alone, never to the channel: by direct message, after which
        their ephemeral answer says where it went; with their DMs closed, that ephemeral answer shows the result."""
        try:
            await self._post_direct(job, message)
        except DMsClosed:
            log.info("job %s: %d does not accept direct messages; answering ephemerally", job.id, job.user_id)
            fresh = await render()  # discord.py closed the files it tried to send
            if await self._edit(job, final=True, confirm=lambda sent: fresh.shows(sent, job), **fresh.edit_fields()):
                return
            raise DeliveryFailed(f"job {job.id}: private, the person's DMs are closed and their interaction has "
                                 "expired") from None
        sent = t(job.locale, "📬 Sent to your direct messages.")
        await self._edit(job, final=True, content=f"{results.headline(job)}\n{sent}", attachments=[], view=None)

    async def _post_direct(self, job: Job, result: layouts.ResultMessage) -> None:
        """Send a result by direct message, once (as ``_post_result`` does in a channel); ``DMsClosed`` when the
        person does not accept DMs from the bot."""
        if job.result_message_id is not None:
            log.info("job %s was sent by direct message already (message %d)", job.id, job.result_message_id)
            return
        try:
            channel = await self.bot.create_dm(discord.Object(job.user_id))
            message = await channel.send(  # type: ignore[call-overload]
                allowed_mentions=results.requester_only(job), nonce=job.id[:NONCE_LENGTH], **result.send_fields(),
            )
        except discord.Forbidden as error:
            if error.code == CANNOT_DM:
                raise DMsClosed() from error
            raise DeliveryFailed(f"job {job.id}: the direct message was refused: {error!r}") from error
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"job {job.id}: the direct message failed: {error!r}") from error
        await self._remember_result(job, message.id)

    async def _show_described(self, job: Job, live: Live) -> None:
        """A /describe's result: its suggestions, numbered, with a button each, in place of the queued message.

        Suggestions with a banned term (as the moderation lists stand now) are left out, and spares take their
        places; when none is left the person is told so instead. A private job's suggestions stay in its ephemeral
        message (never posted in the channel).
        """
        assert job.described is not None  # storage sets it with the 'done' state
        shown = results.shown_suggestions(job.described, BannedTerms(self.bot.config.moderation.banned_terms))
        if not shown:
            await self.on_failure(job, Text("Every prompt I wrote for this picture contains a term this server "
                                            "blocks, so I can't suggest any. Try another picture."))
            return
        message = layouts.ResultMessage(layout="grid", files=[], content=results.headline(job),
                                        embed=results.described_embed(job, job.described, shown),
                                        view=suggestion_view(job.id, [index for index, _ in shown], job.locale))
        try:
            if not await self._edit(job, final=True, confirm=lambda sent: _has_footer(sent, job),
                                    **message.edit_fields()):
                if job.private:
                    raise DeliveryFailed(f"job {job.id}: private, and its interaction can't be used any more")
                if job.webhook_only:
                    await self._follow_up_result(job, message)
                else:
                    await self._post_result(job, message)
        except BaseException:
            live.finished = False
            raise
        self.live.pop(job.id, None)

    async def _follow_up_result(self, job: Job, message: layouts.ResultMessage) -> None:
        """Send the result of a job the bot may not post in the channel of as a new followup of its interaction (its
        message was deleted, or could not be edited); once the token expired there is no way left to show it."""
        if job.result_message_id is not None:
            log.info("job %s was sent as a followup already (message %d)", job.id, job.result_message_id)
            return
        if not self.dead_tokens.usable(job):
            await self._leave_notice(job, t(job.locale, "its images were made, but its 15 minutes to answer ran out "
                                                        "before they could be shown, and I can't post where you asked "
                                                        "(I'm not a member there)."))
            raise Undeliverable(WEBHOOK_EXPIRED)
        try:
            sent = await self._webhook(job).send(wait=True, allowed_mentions=results.requester_only(job),
                                                 **message.send_fields())  # type: ignore[call-overload]
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            if token_is_dead(error):  # no way left to show it: leave the person a notice
                self.dead_tokens.bury(job)
                await self._follow_up_result(job, message)
                return
            raise DeliveryFailed(f"job {job.id}: its interaction did not take the result as a followup either: "
                                 f"{error!r}") from error
        await self._remember_result(job, sent.id)

    async def _post_result(self, job: Job, result: layouts.ResultMessage) -> None:
        """Post a result in the job's channel and remember the message (its delete button finds the job by it).

        Never twice: a post remembered from an earlier attempt (Discord answered it, only marking the job delivered
        failed) is not repeated, and the job's id is the post's nonce, so Discord returns the post an earlier attempt
        made (its answer lost) instead of making another.
        """
        if job.result_message_id is not None:
            log.info("job %s was posted in its channel already (message %d)", job.id, job.result_message_id)
            return
        if job.channel_id is None:
            raise DeliveryFailed(f"job {job.id}: its interaction can't be used and it has no channel")
        channel = self.bot.get_partial_messageable(job.channel_id)
        try:
            message = await channel.send(  # type: ignore[call-overload]
                allowed_mentions=results.requester_only(job), nonce=job.id[:NONCE_LENGTH], **result.send_fields(),
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            raise DeliveryFailed(f"job {job.id}: channel {job.channel_id} did not take the result either: "
                                 f"{error!r}") from error
        await self._remember_result(job, message.id)

    async def _remember_result(self, job: Job, message_id: int) -> None:
        """Store which new message (a direct message, a followup or a channel post) shows the job's result: its
        delete button finds the job by it, and a retried delivery sees the result was sent and does not send it
        again."""
        assert self.bot.storage is not None
        await self.bot.storage.set_messages(job.id, result_message_id=message_id)
        job.result_message_id = message_id

    async def on_failure(self, job: Job, message: str) -> None:
        """Mark the message failed and tell the person why: privately while the interaction lives, else (a failure
        after its 15 minutes, or a followup Discord refused) in the channel, mentioning only them (a private job's
        owner: by direct message). ``message`` is a ``Text`` from the queue, said in their language."""
        failed = f"{results.headline(job)}\n" + t(job.locale, "❌ This request failed.")
        await self._edit(job, final=True, content=failed, attachments=[], view=None)
        message = translate(job.locale, message)
        self.live.pop(job.id, None)
        if self.dead_tokens.usable(job):
            try:
                await self._webhook(job).send(message, ephemeral=True)
                return
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
                log.info("could not tell the person about failed job %s privately: %r", job.id, error)
        await self._tell(job, f"<@{job.user_id}> " + t(job.locale, "your request “{prompt}” failed: {reason}",
                                                       prompt=results.short_prompt(job.request.prompt, 100),
                                                       reason=message),
                         notice=t(job.locale, "it failed: {reason}", reason=message))

    async def on_expired(self, job: Job) -> None:
        await self._tell(job, f"<@{job.user_id}> " + t(job.locale, "your request “{prompt}” could not be finished "
                                                       "while the bot was restarting. Please run /imagine again.",
                                                       prompt=results.short_prompt(job.request.prompt, 100)),
                         notice=t(job.locale, "it could not be finished while the bot was restarting."))

    async def _leave_notice(self, job: Job, text: str) -> None:
        """What to tell the person the next time they use /imagine or a button (``RequestDesk.tell_notices``), when the
        bot can reach them neither now nor where they asked (not a member there, or their DMs closed to a private
        job)."""
        assert self.bot.storage is not None
        await self.bot.storage.leave_notice(job.id, text)

    async def _tell(self, job: Job, text: str, *, notice: str) -> None:
        """A note about a job whose interaction can't be used: in its channel, or by DM when the job is private (its
        prompt stays out of the channel). Where that fails for a private job (DMs closed, any error on the way), or
        where the bot is not a member (``webhook_only``: it can't post), ``notice`` is kept for the person's next
        request instead."""
        if job.private:
            try:
                channel = await self.bot.create_dm(discord.Object(job.user_id))
                await channel.send(text, allowed_mentions=results.requester_only(job))
                return
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
                log.info("could not tell %d about private job %s by direct message (%r); telling them at their next "
                         "request", job.user_id, job.id, error)
            await self._leave_notice(job, notice)
            return
        if job.webhook_only:
            log.info("job %s: its interaction can't tell the person and the bot can't post there; telling them at "
                     "their next request", job.id)
            await self._leave_notice(job, notice)
            return
        if job.channel_id is not None:
            await self.bot.get_partial_messageable(job.channel_id).send(
                text, allowed_mentions=results.requester_only(job)
            )


def _has_footer(message: discord.Message, job: Job) -> bool:
    """Whether ``message`` shows a /describe's suggestions for ``job``: an embed whose footer names the job (they
    have no file, so ``ResultMessage.shows`` can't tell)."""
    return any(f"job {job.id}" in (embed.footer.text or "") for embed in message.embeds)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Generation(bot))
