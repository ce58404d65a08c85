"""/show and /history: a person's stored jobs, brought back with the same live buttons they were delivered with.

Each result's recipe embed ends in "job <id>"; /show takes that id. /history lists someone's jobs newest first, a
page at a time, with a button per job that shows it and Previous/Next buttons. Those buttons are DynamicItems whose
custom_id holds everything (``ib:show:<job>``, ``ib:hist:<owner>:<page>``), so a history survives restarts like
every other button. All refusals are ephemeral; a private job (/settings) is shown to its owner alone.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t, translate
from bot.jobs import JobState
from bot.messages import GenerationUnavailable, Rejected, kept_for, reply_privately, something_went_wrong
from bot.moderation import BannedTerms
from bot.reach import anywhere
from cogs.utils import layouts, results
from cogs.utils.buttons import suggestion_view
from models.text import Text

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.jobs import Job
    from models.plan import Described

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 5
"""Jobs per /history page: one "show" button each, on one row."""
JOB_ID = re.compile(r"[0-9a-f]{32}")
STILL_RUNNING = (JobState.QUEUED, JobState.RUNNING)
NOT_MADE = {
    JobState.FAILED: Text("Job `{job}` failed, so it has no images to show."),
    JobState.CANCELLED: Text("Job `{job}` was cancelled, so it has no images to show."),
    JobState.EXPIRED: Text("Job `{job}` could not be finished, so it has no images to show."),
}
"""Why a finished job has no images (each worded whole, so a translation can order it freely)."""
NOT_MADE_BECAUSE = {
    JobState.FAILED: Text("Job `{job}` failed ({reason}), so it has no images to show."),
    JobState.CANCELLED: Text("Job `{job}` was cancelled ({reason}), so it has no images to show."),
    JobState.EXPIRED: Text("Job `{job}` could not be finished ({reason}), so it has no images to show."),
}
STATE_NAMES = {
    JobState.QUEUED: Text("queued"),
    JobState.RUNNING: Text("running"),
    JobState.DONE: Text("done"),
    JobState.FAILED: Text("failed"),
    JobState.CANCELLED: Text("cancelled"),
    JobState.EXPIRED: Text("expired"),
    JobState.UNDELIVERABLE: Text("undeliverable"),
}
"""A job's state as /history shows it."""


def parse_job_id(text: str) -> str:
    """The id in what was typed ("job 1f2e…", with spaces or capitals); Rejected with how to find it otherwise."""
    cleaned = text.strip().lower().removeprefix("job").strip().strip("`")
    if JOB_ID.fullmatch(cleaned) is None:
        raise Rejected(Text("That isn't a job id. It is the 32 letters and digits after “job” at the bottom of a "
                            "result; /history lists your jobs with buttons to open them."))
    return cleaned


async def show_job(bot: ImageBot, interaction: discord.Interaction, typed_id: str) -> None:
    """Post a stored job's images with their buttons again (ephemerally when it, or the viewer, is private)."""
    try:
        await _show_job(bot, interaction, typed_id)
    except (Rejected, GenerationUnavailable) as error:
        await reply_privately(interaction, error)
    except Exception:
        log.exception("showing job %r failed", typed_id)
        await reply_privately(interaction, something_went_wrong(interaction.id))


async def _show_job(bot: ImageBot, interaction: discord.Interaction, typed_id: str) -> None:
    generation = bot.service
    storage = generation.storage
    job_id = parse_job_id(typed_id)
    job = await storage.get_job(job_id)
    if job is None:
        raise Rejected(Text("I can't find job `{job}`. Its owner may have had it deleted (/forget-me), or the id is "
                            "mistyped.", job=job_id))
    if job.private and job.user_id != interaction.user.id:
        raise Rejected(Text("Job `{job}` is private: only the person who made it can open it.", job=job_id))
    # Shown here now, by this person: the desk checks them as for a click on the job's buttons, whatever the job is
    # (a describe's suggestions too): blocked people, this channel's rules (an age-restricted style or model stays
    # in such channels).
    job = bot.desk.check_source(interaction, job)
    if job.state in STILL_RUNNING:
        raise Rejected(Text("Job `{job}` is still being made; its result will appear where it was asked for. "
                            "/queue shows where it is.", job=job_id))
    if job.state in NOT_MADE:
        if job.error:
            raise Rejected(Text(NOT_MADE_BECAUSE[job.state].msgid, job=job_id, reason=job.error))
        raise Rejected(Text(NOT_MADE[job.state].msgid, job=job_id))
    # Brought back, a job speaks the language of whoever asked for it now (not its maker's: bot.jobs.Job.locale).
    job = replace(job, locale=interaction.locale.value)
    if job.described is not None:
        await _show_described(bot, interaction, job, job.described)
        return
    images = await storage.get_images(job.id)
    if not images:
        raise Rejected(Text("The images of job `{job}` have expired: images are kept for {kept}, then deleted.",
                            job=job_id, kept=kept_for(bot.config.storage.image_ttl_hours)))
    private = job.private or (await storage.user_settings(interaction.user.id)).private
    # Composing a grid from the files can take longer than Discord's 3 s: answer first.
    await interaction.response.defer(ephemeral=private, thinking=True)
    message = await layouts.render(job, images, layout=bot.config.discord.layout,
                                   here=await bot.desk.here(interaction, private=private),
                                   buttons=results.result_view_for(job, len(images), generation),
                                   max_bytes=interaction.filesize_limit, name=f"imagebot-{job.id[:8]}")
    await interaction.followup.send(ephemeral=private, allowed_mentions=discord.AllowedMentions.none(),
                                    **message.send_fields())  # type: ignore[call-overload]


async def _show_described(bot: ImageBot, interaction: discord.Interaction, job: Job, described: Described) -> None:
    """A /describe's suggestions again, with their Imagine buttons (those a banned term rules out stay out)."""
    shown = results.shown_suggestions(described, BannedTerms(bot.config.moderation.banned_terms))
    if not shown:
        raise Rejected(Text("Every prompt I wrote for this picture contains a term this server blocks, so I can't "
                            "suggest any. Try another picture."))
    private = job.private or (await bot.service.storage.user_settings(interaction.user.id)).private
    await interaction.response.send_message(
        results.headline(job), embed=results.described_embed(job, described, shown),
        view=suggestion_view(job.id, [index for index, _ in shown], interaction.locale.value), ephemeral=private,
        allowed_mentions=discord.AllowedMentions.none(),
    )


def history_line(locale: discord.Locale, number: int, job: Job) -> str:
    """One /history entry, in the language of the viewer (the jobs' owner)."""
    job = replace(job, locale=locale.value)  # stored jobs have none: their lineage and kind speak the viewer's
    label = results.kind_name(job)
    state = "" if job.state is JobState.DONE else f" · {translate(locale, STATE_NAMES.get(job.state, job.state))}"
    made_from = results.lineage(job)
    source = f"\n  ↳ {made_from}" if made_from else ""
    private = " · 🔒" if job.private else ""
    prompt = results.short_prompt(job.request.prompt, 80) or t(locale, "(prompt removed)")
    return (f"**{number}.** {prompt} — {label}{state}"
            f"{private} · <t:{int(job.created_at)}:R>\n  `{job.id}`{source}")


async def history_page(bot: ImageBot, locale: discord.Locale, owner: int,
                       page: int) -> tuple[str, discord.ui.View | None]:
    """The text and buttons of one page of ``owner``'s history in the viewer's language (a page past the end shows
    the last)."""
    storage = bot.service.storage
    total = await storage.count_jobs_of(owner)
    if total == 0:
        return t(locale, "You have no stored jobs yet. Make some with /imagine."), None
    pages = math.ceil(total / HISTORY_PAGE_SIZE)
    page = min(page, pages - 1)
    jobs = await storage.jobs_of(owner, limit=HISTORY_PAGE_SIZE, offset=page * HISTORY_PAGE_SIZE)
    first = page * HISTORY_PAGE_SIZE + 1
    lines = [t(locale, "**Your jobs** — page {page} of {pages} ({total} in all). Press a number to show that job.",
               page=page + 1, pages=pages, total=total)]
    lines += [history_line(locale, number, job) for number, job in enumerate(jobs, start=first)]
    view = discord.ui.View(timeout=None)
    for number, job in enumerate(jobs, start=first):
        view.add_item(ShowJobButton(job.id, label=str(number)))
    view.add_item(HistoryPageButton(owner, page - 1, label=t(locale, "Previous"), disabled=page == 0))
    view.add_item(HistoryPageButton(owner, page + 1, label=t(locale, "Next"), disabled=page + 1 >= pages))
    return "\n".join(lines)[:2000], view


class ShowJobButton(discord.ui.DynamicItem[discord.ui.Button], template=r"ib:show:(?P<job>[0-9a-f]{32})"):
    """A /history entry's button: /show that job."""

    def __init__(self, job_id: str, *, label: str) -> None:
        super().__init__(discord.ui.Button(custom_id=f"ib:show:{job_id}", label=label, row=0))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> ShowJobButton:
        return cls(match["job"], label=item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        await show_job(interaction.client, interaction, self.job_id)  # type: ignore[arg-type]


class HistoryPageButton(discord.ui.DynamicItem[discord.ui.Button],
                        template=r"ib:hist:(?P<owner>[0-9]{1,20}):(?P<page>-?[0-9]{1,6})"):
    """Previous/Next under a /history page: the owner and the page to show are in the custom_id."""

    def __init__(self, owner: int, page: int, *, label: str, disabled: bool = False) -> None:
        super().__init__(discord.ui.Button(custom_id=f"ib:hist:{owner}:{page}", label=label, disabled=disabled,
                                           row=1))
        self.owner, self.page = owner, page

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> HistoryPageButton:
        return cls(int(match["owner"]), int(match["page"]), label=item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner:
            await reply_privately(interaction, Text("This is someone else's history; /history shows yours."))
            return
        try:
            content, view = await history_page(interaction.client, interaction.locale,  # type: ignore[arg-type]
                                               self.owner, max(0, self.page))
        except GenerationUnavailable as error:
            await reply_privately(interaction, error)
            return
        except Exception:
            log.exception("history page %d of %d failed", self.page, self.owner)
            await reply_privately(interaction, something_went_wrong(interaction.id))
            return
        await interaction.response.edit_message(content=content, view=view)


class Library(commands.Cog):
    """/show and /history."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ShowJobButton, HistoryPageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ShowJobButton, HistoryPageButton)

    @app_commands.command(name="show", description="Bring back a stored job with its buttons")
    @anywhere
    @app_commands.describe(job="The job id at the bottom of a result (after “job”); /history lists yours")
    async def show(self, interaction: discord.Interaction, job: app_commands.Range[str, 1, 100]) -> None:
        await show_job(self.bot, interaction, job)

    @app_commands.command(name="history", description="Your recent jobs, to open again")
    @anywhere
    async def history(self, interaction: discord.Interaction) -> None:
        content, view = await history_page(self.bot, interaction.locale, interaction.user.id, 0)
        if view is None:
            await interaction.response.send_message(content, ephemeral=True)
        else:
            await interaction.response.send_message(content, view=view, ephemeral=True,
                                                    allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Library(bot))
