"""Durable jobs and images: a database (``storage.url``: a SQLite file, the default, or PostgreSQL; see
``bot.database``) and a folder of PNG files under ``storage.dir``.

Everything a person was promised lives here before they are told about it: a job row is written before
/imagine answers "queued", and a result's images and its ``done`` state are written in one transaction
before the bot posts them. Button clicks days later find their source image through ``get_image``.

The schema is versioned by numbered files, applied in order at open, each in its own transaction; an older
database is upgraded in place, never dropped. SQLite's are ``bot/migrations/0001_initial.sql`` ...; PostgreSQL's,
in ``bot/migrations/postgresql``, start with a baseline that creates SQLite's schema of its version at once, and
every later number is written once for each engine (the tests compare the schemas the two build).

Every request reads storage before it is answered, so using the database costs the event loop little: on SQLite each
read, write or whole transaction is one call on the connection's thread (``bot.database``), on PostgreSQL a pooled
connection's. /settings are kept in memory (``bot.settings.Remembered``), and who has notices waiting is known
without asking the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from bot.database import Database, Dialect, Row, SqliteDatabase, Transaction, connect
from bot.encoding import in_encoder
from bot.jobs import FINISHED_STATES, FlaggedImage, Job, JobState, Notice, StoredImage, open_rgb, video_path
from bot.settings import (
    ChannelSettings,
    Remembered,
    UserSettings,
    changed,
    channel_settings_from_row,
    user_settings_from_row,
)
from models.images import write_recipe_png
from models.plan import Described, GeneratedImage, GenerationRequest
from models.text import Text
from models.video import continued, decode_video, write_video

if TYPE_CHECKING:
    from bot.config import StorageConfig
    from models.plan import GeneratedImage

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""SQLite's migrations; PostgreSQL's are in its ``postgresql`` folder (``migrations_of``)."""
DATABASE_NAME = "imagebot.sqlite3"
"""The SQLite file in ``storage.dir`` when ``storage.url`` is not set."""
SETTINGS_KEPT = 10_000
"""People, and channels, whose /settings are kept in memory (the most recent users)."""
PROMPT_REMOVED = "(removed at the author's request)"
"""The prompt (and negative) of someone else's job derived from the images of a person who asked to be forgotten."""
_REDACT: dict[Dialect, str] = {
    "sqlite": "json_set({column}, '$.prompt', ?, '$.negative',"
              " CASE WHEN coalesce(json_extract({column}, '$.negative'), '') = '' THEN '' ELSE ? END)",
    "postgresql": "jsonb_set(jsonb_set({column}::jsonb, '{{prompt}}', to_jsonb(?::text)), '{{negative}}',"
                  " to_jsonb(CASE WHEN coalesce({column}::jsonb ->> 'negative', '') = '' THEN '' ELSE ?::text END)"
                  ")::text",
}
"""SQL that replaces the person's words in a request or recipe JSON column with its two parameters, both the new
text (a negative only when there was one)."""
_PROMPT: dict[Dialect, str] = {"sqlite": "json_extract({column}, '$.prompt')",
                               "postgresql": "({column}::jsonb ->> 'prompt')"}
"""SQL for the prompt in a request or recipe JSON column."""
_FLAGGED: dict[Dialect, tuple[str, str, str]] = {
    "sqlite": ("json_extract(images.recipe, '$.safety.score')", "json_extract(images.recipe, '$.safety.action')",
               "json_extract(images.recipe, '$.safety.flagged') = 1"),
    "postgresql": ("(images.recipe::jsonb #>> '{safety,score}')::double precision",
                   "images.recipe::jsonb #>> '{safety,action}'",
                   "images.recipe::jsonb #> '{safety,flagged}' = 'true'::jsonb"),
}
"""SQL for the safety check's score, its action and whether it flagged, in an image's recipe."""
PICTURE_LISTS = {"reference_paths": "references_owner", "input_paths": "inputs_owner"}
"""The jobs' columns that keep lists of pictures (JSON lists of paths; '' once deleted), each with the column that
says whose they are."""


class JobGone(LookupError):
    """The job's row was deleted (its owner asked to be forgotten) while its results were being saved."""


class NotHeld(LookupError):
    """Several processes on one queue: the job's lease ran out while it ran here (the process stalled), so another
    process took it over; that one's results count, these are not saved."""


class ImageNotFound(LookupError):
    """No such image: a made-up id, or the owner asked the bot to forget their images. The message is for people."""

    def __init__(self, message: str = Text("I can't find that image any more.")) -> None:
        super().__init__(message)
        self.message = message


class ImageExpired(ImageNotFound):
    """The image existed but housekeeping deleted it after ``storage.image_ttl_hours``."""

    def __init__(self, message: str = Text("This image has expired.")) -> None:
        super().__init__(message)


_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """The numbered migration files in order; numbers must run on (1, 2, 3 ..., or from a baseline's number) with no
    gap or duplicate."""
    found = sorted(
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := _MIGRATION_NAME.match(path.name))
    )
    numbers = [number for number, _ in found]
    first = numbers[0] if numbers else 1
    if numbers != list(range(first, first + len(found))):
        raise RuntimeError(f"migrations in {directory} must be numbered on from the first without gaps: {numbers}")
    return found


def migrations_of(dialect: Dialect) -> list[tuple[int, Path]]:
    """The migrations of one engine. PostgreSQL's first file is a baseline: the whole schema at its number."""
    return migrations(MIGRATIONS_DIR / "postgresql" if dialect == "postgresql" else MIGRATIONS_DIR)


class Storage:
    """The database and image folder. Open with ``await Storage(dir).open()`` (or ``async with``).

    ``url`` is the database (``bot.database.connect``); by default the SQLite file ``imagebot.sqlite3`` in
    ``directory``. A write of more than one statement is one transaction (``Database.atomically``): on SQLite it runs
    whole in one call on the connection's thread, so two coroutines never interleave their statements, with no lock.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        url: str | None = None,
        image_ttl_hours: float = 24 * 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.url = url or f"sqlite:///{self.directory / DATABASE_NAME}"
        self.images_dir = self.directory / "images"
        self.inputs_dir = self.directory / "inputs"
        self.image_ttl_s = image_ttl_hours * 3600
        self.clock = clock
        self._db: Database | None = None
        self._user_settings: Remembered[int, UserSettings] = Remembered(SETTINGS_KEPT)
        self._channel_settings: Remembered[int, ChannelSettings] = Remembered(SETTINGS_KEPT)
        self._noticed: set[int] = set()
        """People with notices waiting (``notices``)."""
        self._shared = False
        """Whether other processes may write the same database (PostgreSQL): then nothing read is kept in memory."""

    @classmethod
    def from_config(cls, config: StorageConfig, *, clock: Callable[[], float] = time.time) -> Storage:
        return cls(config.dir, url=config.url, image_ttl_hours=config.image_ttl_hours, clock=clock)

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("Storage is not open; await storage.open() first")
        return self._db

    async def open(self) -> Storage:
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.inputs_dir.mkdir(parents=True, exist_ok=True)
        self._db = await connect(self.url)
        if self._db.dialect == "postgresql":
            # Bot processes on other machines may change settings and leave notices: what this one kept would be
            # stale, so each is read from the database (a pooled query) instead.
            self._shared = True
            self._user_settings, self._channel_settings = Remembered(0), Remembered(0)
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        # Foreign keys are turned on only after migrating: a migration that rebuilds a table (the only way SQLite
        # changes a constraint) drops the old one, and with them on that would cascade into the images.
        if isinstance(self._db, SqliteDatabase):
            await self._db.foreign_keys(True)
        noticed = await self.db.all("SELECT DISTINCT user_id FROM jobs WHERE notice IS NOT NULL")
        self._noticed = {row[0] for row in noticed}
        log.info("storage: %s database %s, schema version %d", self.db.dialect, self.db.where,
                 await self.schema_version())
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Storage:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- schema -----------------------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        row = await self.db.one("SELECT version FROM schema_version")
        return row[0] if row else 0

    async def _migrate(self) -> None:
        async with self.db.migrating():
            await self.db.write("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = await self.schema_version()
            available = migrations_of(self.db.dialect)
            latest = available[-1][0]
            if current > latest:
                raise RuntimeError(
                    f"{self.db.where} has schema version {current}, newer than this code knows ({latest}); run the "
                    "newer version of the bot or restore a backup"
                )
            for number, path in available:
                if number > current:
                    await self._apply_migration(number, path.read_text(encoding="utf-8"))
                    log.info("database upgraded to schema version %d (%s)", number, path.name)

    async def _apply_migration(self, number: int, script: str) -> None:
        """Run one migration file and record its number, both or neither (one transaction)."""
        await self.db.script(f"{script}\n;\nDELETE FROM schema_version;\n"
                             f"INSERT INTO schema_version (version) VALUES ({number:d});")

    # --- jobs ---------------------------------------------------------------------------------------------------

    async def insert_job(self, job: Job) -> None:
        """Persist a new job (state queued). Its pictures (an img2img source, reference pictures, an instruction
        edit's pictures) are saved to inputs/ so it can be resumed and its buttons can use them again, with whose
        pictures they are (``_picture_owners``). A job that carries pictures from a source deleted meanwhile (its
        person asked to be forgotten) is refused (``ImageNotFound``) and nothing of it is kept."""
        init_path = None
        init_image = getattr(job.request, "init_image", None)
        if init_image is not None:
            init_path = f"inputs/{job.id}.png"
            await in_encoder(write_recipe_png, init_image, {}, self.directory / init_path)
        references = job.request.references or []
        reference_paths = [f"inputs/{job.id}-ref{index}.png" for index in range(len(references))]
        inputs = job.request.input_images or []
        input_paths = [f"inputs/{job.id}-in{index}.png" for index in range(len(inputs))]
        await asyncio.gather(*(in_encoder(write_recipe_png, picture, {}, self.directory / path)
                               for picture, path in zip([*references, *inputs], [*reference_paths, *input_paths],
                                                        strict=True)))

        async def insert(db: Transaction) -> None:
            owners = await _picture_owners(db, job, init=init_path is not None, references=bool(reference_paths),
                                           inputs=bool(input_paths))
            await db.write(
                "INSERT INTO jobs (id, user_id, guild_id, channel_id, kind, request, init_path, reference_paths,"
                " input_paths, source_job_id, source_index, state, error, application_id, token,"
                " interaction_created_at, result_message_id, delivered, created_at, attempts, private, webhook_only,"
                " locale, init_owner, references_owner, inputs_owner)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?, ?, ?)",
                (
                    job.id, job.user_id, job.guild_id, job.channel_id, job.kind,
                    json.dumps(job.request.to_dict()), init_path, _path_list(reference_paths),
                    _path_list(input_paths), job.source_job_id, job.source_index,
                    str(job.state), job.error, job.application_id, job.token, job.interaction_created_at,
                    job.result_message_id, job.created_at, int(job.private),
                    int(job.webhook_only), job.locale, *owners,
                ),
            )

        try:
            await self.db.atomically(insert)
        except ImageNotFound:
            await asyncio.to_thread(_unlink_all, [self.directory / path for path in
                                                  [*reference_paths, *input_paths, init_path] if path is not None])
            raise

    async def mark_running(self, job_ids: Sequence[str], now: float) -> None:
        """One statement for a whole batch; counts an attempt for each job."""
        await self.db.write("UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1"
                          f" WHERE id IN ({_marks(job_ids)})", (now, *job_ids))

    async def set_state(
        self, job_ids: str | Iterable[str], state: JobState, *, error: str | None = None, now: float | None = None
    ) -> None:
        """Move jobs to ``state``; finished states also record ``finished_at``."""
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        finished_at = (self.clock() if now is None else now) if state in FINISHED_STATES else None
        await self.db.write(f"UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id IN ({_marks(ids)})",
                          (str(state), error, finished_at, *ids))

    async def set_messages(self, job_id: str, *, result_message_id: int) -> None:
        """Remember the Discord message that shows a job's result, so later clicks (🗑️) can find whose it is.
        (The ``progress_message_id`` column of older versions stays, unused.)"""
        await self.db.write("UPDATE jobs SET result_message_id = ? WHERE id = ?", (result_message_id, job_id))

    async def save_results(self, job: Job, images: Sequence[GeneratedImage] | Sequence[Described], *,
                           holder: str | None = None) -> list[StoredImage]:
        """Write the PNG files, then the image rows and state 'done' in one transaction (delivered stays 0).

        A describe job's result is its one ``Described``: stored in the job's row with state 'done', and it has no
        images (``job.described`` holds it for the delivery).

        Files are written first: a crash in between leaves orphan files (harmless), never a 'done' row without them.
        They are encoded in parallel on the encoding threads (``bot.encoding``), off the event loop's core. A job
        deleted meanwhile (``forget_user`` while it finished) gets its files deleted again and raises ``JobGone``.

        ``holder``: the process that claimed the job (``bot.shared``); the results are saved only while it still
        holds it, else ``NotHeld`` (the files stay: the process that took the job over writes the same ones).
        """
        held = "" if holder is None else " AND state = 'running' AND claimed_by = ?"
        mine = () if holder is None else (holder,)
        if images and isinstance(images[0], Described):
            await self._save_described(job, images[0], held, mine)
            return []
        now = self.clock()
        stored = [(index, f"images/{job.id}-{index}.png", generated.recipe.to_dict())
                  for index, generated in enumerate(images)]
        await asyncio.gather(*(
            in_encoder(write_recipe_png, generated.image, recipe, self.directory / relative)
            for generated, (_, relative, recipe) in zip(images, stored, strict=True)
        ))
        videos = [await self._write_video(job, generated, recipe, self.directory / relative)
                  for generated, (_, relative, recipe) in zip(images, stored, strict=True)]
        rows = [(job.id, index, relative, json.dumps(recipe), now) for index, relative, recipe in stored]

        async def save(db: Transaction) -> int:
            done = await db.write("UPDATE jobs SET state = 'done', error = NULL, finished_at = ? WHERE id = ?"
                                  f"{held}", (now, job.id, *mine))
            if done:
                await db.many("INSERT INTO images (job_id, idx, path, recipe, created_at, expired)"
                              " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (job_id, idx) DO UPDATE SET path = excluded.path,"
                              " recipe = excluded.recipe, created_at = excluded.created_at, expired = 0", rows)
            elif held and await db.one("SELECT 1 FROM jobs WHERE id = ?", (job.id,)) is not None:
                raise NotHeld(job.id)
            return done

        if not await self.db.atomically(save):
            await asyncio.to_thread(_unlink_all, [self.directory / relative for _, relative, _ in stored])
            raise JobGone(job.id)
        job.state, job.finished_at = JobState.DONE, now
        return [StoredImage(job.id, index, self.directory / rel, recipe, now, generated.image, frames)
                for (index, rel, recipe), generated, frames in zip(stored, images, videos, strict=True)]

    async def _write_video(self, job: Job, generated: GeneratedImage, recipe: dict[str, Any],
                           poster: Path) -> tuple[Image.Image, ...]:
        """A video result's MP4 beside its first frame (nothing for a picture), and the frames it holds. An extension
        (➕ Extend) holds the video it continues, then its own clip."""
        if not generated.frames:
            return ()
        frames: Sequence[Image.Image] = generated.frames
        if job.kind == "extend" and job.source_job_id is not None:
            previous = video_path(self.directory / f"images/{job.source_job_id}-{job.source_index or 0}.png")
            frames = await in_encoder(continued, previous, frames)
        await in_encoder(write_video, frames, generated.recipe.fps or 24, recipe, video_path(poster))
        return tuple(frames)

    async def _save_described(self, job: Job, described: Described, held: str, mine: tuple[str, ...]) -> None:
        now = self.clock()
        done = await self.db.write(
            f"UPDATE jobs SET state = 'done', error = NULL, finished_at = ?, described = ? WHERE id = ?{held}",
            (now, json.dumps(described.to_dict()), job.id, *mine),
        )
        if not done and held and await self.get_job(job.id) is not None:
            raise NotHeld(job.id)
        if not done:
            raise JobGone(job.id)
        job.state, job.finished_at, job.described = JobState.DONE, now, described

    async def mark_delivered(self, job_id: str) -> None:
        await self.db.write("UPDATE jobs SET delivered = 1, next_delivery_at = NULL WHERE id = ?", (job_id,))

    async def delivery_failed(self, job_id: str, attempts: int, next_at: float) -> None:
        """Remember a failed delivery and when to try again, so a restart carries on with the same wait."""
        await self.db.write("UPDATE jobs SET delivery_attempts = ?, next_delivery_at = ? WHERE id = ?",
                          (attempts, next_at, job_id))

    async def next_delivery_due(self) -> float | None:
        """When the earliest retry of a failed delivery is due (None: no delivery is waiting for a retry)."""
        row = await self.db.one("SELECT min(next_delivery_at) FROM jobs WHERE state = 'done' AND delivered = 0")
        return None if row is None else row[0]

    async def leave_notice(self, job_id: str, text: str) -> None:
        """Keep what the person could not be told about a job (where the bot may not post, or their DMs are closed),
        for their next request."""
        rows = await self.db.all("UPDATE jobs SET notice = ? WHERE id = ? RETURNING user_id", (text, job_id))
        self._noticed.update(row[0] for row in rows)

    async def notices(self, user_id: int) -> list[Notice]:
        """The notices left for a person, oldest first. They stay until ``notices_shown`` says they were shown (a
        reply that failed leaves them for the next request). Someone with none (nearly everyone, at each request)
        costs no database trip on SQLite; on PostgreSQL another process may have left them, so it asks."""
        if not self._shared and user_id not in self._noticed:
            return []
        rows = await self.db.all(
            f"SELECT id, {_PROMPT[self.db.dialect].format(column='request')}, notice FROM jobs"
            " WHERE user_id = ? AND notice IS NOT NULL ORDER BY created_at, rowid", (user_id,),
        )
        if not rows:
            self._noticed.discard(user_id)
        return [Notice(row[0], row[1] or "", row[2]) for row in rows]

    async def notices_shown(self, user_id: int, shown: Sequence[Notice]) -> None:
        """Clear notices the person was shown (told once); one left again meanwhile, with other words, stays."""

        async def clear(db: Transaction) -> bool:
            await db.many("UPDATE jobs SET notice = NULL WHERE id = ? AND notice = ?",
                          [(notice.job_id, notice.text) for notice in shown])
            return await db.one("SELECT 1 FROM jobs WHERE user_id = ? AND notice IS NOT NULL LIMIT 1",
                                (user_id,)) is None

        if await self.db.atomically(clear):
            self._noticed.discard(user_id)

    async def get_job(self, job_id: str, *, load_init: bool = False, load_references: bool = False,
                      load_inputs: bool = False) -> Job | None:
        """The job as stored; its request's source picture (a restyle's) is read only when ``load_init``, its
        reference pictures only when ``load_references``, an instruction edit's pictures only when ``load_inputs``."""
        row = await self.db.one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else await self._job_from_row(row, load_init=load_init,
                                                                  load_references=load_references,
                                                                  load_inputs=load_inputs)

    async def job_of_message(self, message_id: int) -> Job | None:
        """The job whose result the bot posted as this channel message (when the interaction could not be used)."""
        row = await self.db.one("SELECT * FROM jobs WHERE result_message_id = ?", (message_id,))
        return None if row is None else await self._job_from_row(row, load_init=False)

    async def active_jobs(self) -> list[Job]:
        """Jobs left queued or running (by a stop or a crash), oldest first, with all their pictures loaded.

        A row whose request can no longer be read (say, a removed field) is marked failed and skipped.
        """
        rows = await self.db.all(
            "SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, rowid"
        )
        jobs = []
        for row in rows:
            try:
                jobs.append(await self._job_from_row(row, load_init=True, load_references=True, load_inputs=True))
            except Exception as error:
                log.exception("job %s cannot be loaded to resume; marking it failed", row["id"])
                message = f"Could not be resumed after a restart ({error})"
                await self.set_state(row["id"], JobState.FAILED, error=message)
        return jobs

    async def undelivered_jobs(self, *, due_by: float | None = None) -> list[Job]:
        """Jobs whose results were stored but whose delivery was not confirmed: the process died in between, or
        Discord refused it. ``due_by``: only those whose retry (after a failed delivery) is due by then."""
        due = "" if due_by is None else " AND next_delivery_at <= ?"
        rows = await self.db.all(
            f"SELECT * FROM jobs WHERE state = 'done' AND delivered = 0{due} ORDER BY finished_at, rowid",
            () if due_by is None else (due_by,),
        )
        return [await self._job_from_row(row, load_init=False) for row in rows]

    async def undeliverable_jobs_of(self, user_id: int, limit: int) -> list[Job]:
        """A person's newest results that could never be delivered, for their /queue."""
        rows = await self.db.all(
            "SELECT * FROM jobs WHERE user_id = ? AND state = 'undeliverable' ORDER BY finished_at DESC LIMIT ?",
            (user_id, limit),
        )
        return [await self._job_from_row(row, load_init=False) for row in rows]

    async def jobs_of(self, user_id: int, *, limit: int, offset: int = 0) -> list[Job]:
        """A person's jobs, newest first, for /history (``offset`` skips that many of the newest)."""
        rows = await self.db.all(
            "SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        )
        return [await self._job_from_row(row, load_init=False) for row in rows]

    async def count_jobs_of(self, user_id: int) -> int:
        row = await self.db.one("SELECT count(*) FROM jobs WHERE user_id = ?", (user_id,))
        return row[0] if row else 0

    async def _job_from_row(self, row: Row, *, load_init: bool, load_references: bool = False,
                            load_inputs: bool = False) -> Job:
        init_image = None
        if load_init and row["init_path"] == "":
            raise ImageExpired(Text("The picture this was made from has expired."))
        if load_init and row["init_path"]:
            init_image = await asyncio.to_thread(_open_source, self.directory / row["init_path"])
        blended = Text("The pictures this was blended from have expired.")
        references = await self._pictures(row["reference_paths"], blended) if load_references else None
        edited = Text("The pictures this was edited from have expired.")
        input_images = await self._pictures(row["input_paths"], edited) if load_inputs else None
        return Job(
            id=row["id"],
            user_id=row["user_id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            kind=row["kind"],
            request=GenerationRequest.from_dict(json.loads(row["request"]), init_image, references, input_images),
            application_id=row["application_id"],
            token=row["token"],
            interaction_created_at=row["interaction_created_at"],
            source_job_id=row["source_job_id"],
            source_index=row["source_index"],
            result_message_id=row["result_message_id"],
            webhook_only=bool(row["webhook_only"]),
            locale=row["locale"],
            state=JobState(row["state"]),
            error=row["error"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            delivered=bool(row["delivered"]),
            attempts=row["attempts"],
            delivery_attempts=row["delivery_attempts"],
            private=bool(row["private"]),
            described=Described.from_dict(json.loads(row["described"])) if row["described"] else None,
        )

    async def _pictures(self, paths: str | None, expired: Text) -> list[Image.Image] | None:
        """The pictures of a path-list column (``reference_paths``, ``input_paths``), read off the event loop;
        ``ImageExpired`` saying ``expired`` once housekeeping (or forget-me) deleted them."""
        if paths == "":
            raise ImageExpired(expired)
        if not paths:
            return None
        return await asyncio.to_thread(lambda: [open_rgb(self.directory / path) for path in json.loads(paths)])

    # --- images -------------------------------------------------------------------------------------------------

    async def get_image(self, job_id: str, index: int) -> StoredImage:
        """The image behind a button; raises ImageExpired / ImageNotFound with a message fit to show as is."""
        row = await self.db.one("SELECT * FROM images WHERE job_id = ? AND idx = ?", (job_id, index))
        if row is None:
            raise ImageNotFound()
        path = self.directory / row["path"]
        if row["expired"] or not path.exists():
            raise ImageExpired()
        return StoredImage(job_id, index, path, json.loads(row["recipe"]), row["created_at"])

    async def get_images(self, job_id: str) -> list[StoredImage]:
        rows = await self.db.all("SELECT * FROM images WHERE job_id = ? AND expired = 0 ORDER BY idx", (job_id,))
        return [
            StoredImage(job_id, row["idx"], self.directory / row["path"], json.loads(row["recipe"]), row["created_at"])
            for row in rows
        ]

    # --- settings (/settings) -----------------------------------------------------------------------------------

    async def user_settings(self, user_id: int) -> UserSettings:
        """A person's defaults (all "not set" for someone who never used /settings); from memory when kept."""

        async def read() -> UserSettings:
            return user_settings_from_row(await self.db.one("SELECT * FROM user_settings WHERE user_id = ?",
                                                            (user_id,)))

        return await self._user_settings.get(user_id, read)

    async def update_user_settings(self, user_id: int, **changes: Any) -> UserSettings:
        """Apply ``changes`` (``None`` clears a value) and return the settings now stored; raises ``UnknownSetting``
        for a name that is not a setting or a value of the wrong kind (nothing is stored then)."""
        now = self.clock()

        async def update(db: Transaction) -> UserSettings:
            row = await db.one("SELECT * FROM user_settings WHERE user_id = ?", (user_id,))
            settings = changed(user_settings_from_row(row), changes)
            await db.write(
                "INSERT INTO user_settings (user_id, style, aspect, count, model, remix, private, draft, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET style = excluded.style,"
                " aspect = excluded.aspect, count = excluded.count, model = excluded.model, remix = excluded.remix,"
                " private = excluded.private, draft = excluded.draft, updated_at = excluded.updated_at",
                (user_id, settings.style, settings.aspect, settings.count, settings.model, int(settings.remix),
                 int(settings.private), int(settings.draft), now),
            )
            return settings

        settings = await self.db.atomically(update)
        self._user_settings.changed(user_id, settings)
        return settings

    async def channel_settings(self, channel_id: int) -> ChannelSettings:
        """A channel's defaults and limits (none for a channel no admin configured); from memory when kept."""

        async def read() -> ChannelSettings:
            return channel_settings_from_row(await self.db.one("SELECT * FROM channel_settings WHERE channel_id = ?",
                                                             (channel_id,)))

        return await self._channel_settings.get(channel_id, read)

    async def update_channel_settings(self, channel_id: int, *, by: int | None = None,
                                      **changes: Any) -> ChannelSettings:
        """Like ``update_user_settings`` for a channel; ``by`` records which admin changed it."""
        now = self.clock()

        async def update(db: Transaction) -> ChannelSettings:
            row = await db.one("SELECT * FROM channel_settings WHERE channel_id = ?", (channel_id,))
            settings = changed(channel_settings_from_row(row), changes)
            await db.write(
                "INSERT INTO channel_settings (channel_id, style, aspect, count, max_count, allowed_models, safety,"
                " updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET"
                " style = excluded.style, aspect = excluded.aspect, count = excluded.count,"
                " max_count = excluded.max_count, allowed_models = excluded.allowed_models, safety = excluded.safety,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (channel_id, settings.style, settings.aspect, settings.count, settings.max_count,
                 json.dumps(list(settings.allowed_models)), settings.safety, by, now),
            )
            return settings

        settings = await self.db.atomically(update)
        self._channel_settings.changed(channel_id, settings)
        return settings

    # --- housekeeping and operations ----------------------------------------------------------------------------

    async def housekeep(self) -> int:
        """Delete image files older than the TTL (rows stay, marked expired), and the source pictures of finished
        jobs as old: a reroll of a restyle restyles the same picture for as long as the results are kept. An expired
        source picture leaves ``init_path`` empty (not NULL), so such a reroll says so instead of drawing from text.
        Finished jobs as old also lose their prompt and negative (left empty), their interaction token, and the
        prompts a /describe wrote from the picture.

        Returns how many images expired.
        """
        cutoff = self.clock() - self.image_ttl_s
        old = await self.db.all(
            "SELECT job_id, idx, path FROM images WHERE expired = 0 AND created_at < ?", (cutoff,)
        )
        inputs = await self.db.all(
            "SELECT id, init_path FROM jobs WHERE init_path IS NOT NULL AND init_path != ''"
            " AND state IN ('done', 'failed', 'cancelled', 'expired') AND created_at < ?", (cutoff,)
        )
        lists = {column: await self.db.all(
            f"SELECT id, {column} FROM jobs WHERE {column} IS NOT NULL AND {column} != ''"
            " AND state IN ('done', 'failed', 'cancelled', 'expired') AND created_at < ?", (cutoff,)
        ) for column in PICTURE_LISTS}
        await asyncio.to_thread(_unlink_all, [self.directory / row["path"] for row in old])
        await asyncio.to_thread(_unlink_all, [self.directory / row["init_path"] for row in inputs])
        await asyncio.to_thread(_unlink_all, [self.directory / path for column, rows in lists.items() for row in rows
                                              for path in json.loads(row[column])])

        redact, prompt = _REDACT[self.db.dialect], _PROMPT[self.db.dialect]

        async def expire(db: Transaction) -> None:
            await db.many(
                "UPDATE images SET expired = 1 WHERE job_id = ? AND idx = ?", [(r["job_id"], r["idx"]) for r in old]
            )
            await db.many("UPDATE jobs SET init_path = '' WHERE id = ?", [(r["id"],) for r in inputs])
            for column, rows in lists.items():
                await db.many(f"UPDATE jobs SET {column} = '' WHERE id = ?", [(r["id"],) for r in rows])
            # The words and the interaction token go with the pictures: nothing of a request outlives the TTL.
            await db.write(
                f"UPDATE jobs SET request = {redact.format(column='request')}, token = NULL, described = NULL"
                " WHERE created_at < ? AND state IN ('done', 'failed', 'cancelled', 'expired', 'undeliverable')"
                f" AND (token IS NOT NULL OR {prompt.format(column='request')} != '' OR described IS NOT NULL)",
                ("", "", cutoff),
            )
            await db.write(
                f"UPDATE images SET recipe = {redact.format(column='recipe')}"
                f" WHERE created_at < ? AND {prompt.format(column='recipe')} != ''",
                ("", "", cutoff),
            )

        await self.db.atomically(expire)
        if old:
            log.info("housekeeping: %d images older than %.0f h expired", len(old), self.image_ttl_s / 3600)
        return len(old)

    async def forget_user(self, user_id: int) -> int:
        """Delete every job, image and file of one person, every copy of their pictures that others' jobs keep,
        their settings, and their id where it is kept beside others' data; returns how many jobs were deleted.

        Others' jobs derived from theirs (variations, rerolls, upscales, and those derived from these) keep their
        images, but their prompt and negative become ``PROMPT_REMOVED`` (in the rows and in the PNGs' recipes). The
        person's pictures that any job keeps, however far they were carried (``init_owner``, ``references_owner``:
        their uploads and copies of their results), are deleted, so such a job can be looked at but not made again.
        A channel's settings they changed and blocks they made no longer name them; a block on them stays, as their
        rate limit does: forgetting is not a way around either. While the bot runs, call ``JobQueue.forget_user``
        instead: it first cancels the person's live jobs.
        """
        await self._redact_derived(user_id)

        person, twice = (user_id,), (user_id, user_id)
        locking = self.db.dialect == "postgresql"

        async def forget(db: Transaction) -> tuple[int, list[str]]:
            if locking:  # SQLite runs one transaction at a time; PostgreSQL's may overlap. Their jobs locked first, a
                # result saved meanwhile is either in (its images found below) or waits and finds its job gone.
                await db.all("SELECT id FROM jobs WHERE user_id = ? FOR UPDATE", person)
            paths = [row[0] for row in await db.all(
                "SELECT path FROM images WHERE job_id IN (SELECT id FROM jobs WHERE user_id = ?)", person)]
            paths += [row[0] for row in await db.all(
                "SELECT init_path FROM jobs WHERE (user_id = ? OR init_owner = ?) AND init_path != ''", twice)]
            for column, owner in PICTURE_LISTS.items():
                paths += [path for row in await db.all(
                    f"SELECT {column} FROM jobs WHERE (user_id = ? OR {owner} = ?) AND {column} != ''",
                    twice) for path in json.loads(row[0])]
            deleted = await db.write("DELETE FROM jobs WHERE user_id = ?", person)
            # '' (not NULL): the job had pictures and they are gone, as when housekeeping expires them.
            await db.write("UPDATE jobs SET init_path = '', init_owner = NULL WHERE init_owner = ?", person)
            for column, owner in PICTURE_LISTS.items():
                await db.write(f"UPDATE jobs SET {column} = '', {owner} = NULL WHERE {owner} = ?", person)
            await db.write("DELETE FROM user_settings WHERE user_id = ?", person)
            await db.write("UPDATE channel_settings SET updated_by = NULL WHERE updated_by = ?", person)
            await db.write("UPDATE blocked_users SET blocked_by = NULL WHERE blocked_by = ?", person)
            return deleted, paths

        deleted, paths = await self.db.atomically(forget)
        self._user_settings.changed(user_id, None)
        self._noticed.discard(user_id)
        await asyncio.to_thread(_unlink_all, [self.directory / path for path in paths])
        log.info("forgot user %d: %d jobs, %d files", user_id, deleted, len(paths))
        return deleted

    async def _redact_derived(self, user_id: int) -> None:
        """Replace the person's words in others' jobs derived from theirs, at any depth (rows and PNG recipes)."""
        ids = [row[0] for row in await self.db.all(
            "WITH RECURSIVE derived(id) AS ("
            " SELECT id FROM jobs WHERE user_id != ?"
            "  AND source_job_id IN (SELECT id FROM jobs WHERE user_id = ?)"
            " UNION SELECT jobs.id FROM jobs JOIN derived ON jobs.source_job_id = derived.id"
            "  WHERE jobs.user_id != ?)"
            " SELECT id FROM derived",
            (user_id, user_id, user_id),
        )]
        if not ids:
            return
        replace = _REDACT[self.db.dialect]
        rows = [(PROMPT_REMOVED, PROMPT_REMOVED, job_id) for job_id in ids]

        async def redact(db: Transaction) -> None:
            await db.many(f"UPDATE jobs SET request = {replace.format(column='request')} WHERE id = ?", rows)
            await db.many(f"UPDATE images SET recipe = {replace.format(column='recipe')} WHERE job_id = ?", rows)

        await self.db.atomically(redact)
        files = [(self.directory / row["path"], json.loads(row["recipe"])) for row in await self.db.all(
            f"SELECT path, recipe FROM images WHERE expired = 0 AND job_id IN ({_marks(ids)})", ids,
        )]
        await asyncio.to_thread(_rewrite_recipes, files)
        log.info("forgetting user %d: the prompts of %d jobs of others derived from theirs were removed", user_id,
                 len(ids))

    async def block_user(self, user_id: int, *, by: int | None = None, reason: str | None = None) -> bool:
        """Remember that ``user_id`` may not use the bot; False if they already were blocked."""
        return await self.db.write(
            "INSERT INTO blocked_users (user_id, blocked_by, reason, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO NOTHING",
            (user_id, by, reason, self.clock()),
        ) > 0

    async def unblock_user(self, user_id: int) -> bool:
        """False if they were not blocked."""
        return await self.db.write("DELETE FROM blocked_users WHERE user_id = ?", (user_id,)) > 0

    async def blocked_users(self) -> set[int]:
        return {row[0] for row in await self.db.all("SELECT user_id FROM blocked_users")}

    async def jobs_by_state(self) -> dict[str, int]:
        """Counts of jobs in each state (every state present, zero included)."""
        counts = {str(state): 0 for state in JobState}
        for state, count in await self.db.all("SELECT state, count(*) FROM jobs GROUP BY state"):
            counts[state] = count
        return counts

    async def jobs_per_user(self, limit: int = 10, *, since: float | None = None) -> list[tuple[int, int]]:
        """The busiest users as (user_id, jobs), most jobs first; ``since`` (Unix time) limits to recent jobs."""
        rows = await self.db.all(
            "SELECT user_id, count(*) AS n FROM jobs WHERE created_at >= ? GROUP BY user_id ORDER BY n DESC, user_id"
            " LIMIT ?",
            (since if since is not None else float("-inf"), limit),
        )
        return [(row[0], row[1]) for row in rows]

    async def flagged_images(self, limit: int = 10) -> list[FlaggedImage]:
        """The pictures the safety check flagged last, newest first, with whose they were (for /admin safety)."""
        score, action, flagged = _FLAGGED[self.db.dialect]
        rows = await self.db.all(
            "SELECT images.job_id, images.idx, images.created_at, jobs.user_id, jobs.channel_id,"
            f" {score} AS score, {action} AS action"
            " FROM images JOIN jobs ON jobs.id = images.job_id"
            f" WHERE {flagged}"
            " ORDER BY images.created_at DESC, images.job_id, images.idx LIMIT ?",
            (limit,),
        )
        return [FlaggedImage(row["job_id"], row["idx"], row["user_id"], row["channel_id"], row["score"],
                             row["action"], row["created_at"]) for row in rows]


async def _picture_owners(db: Transaction, job: Job, *, init: bool, references: bool,
                          inputs: bool) -> tuple[int | None, int | None, int | None]:
    """Whose pictures a new job keeps (``init``: a source picture, ``references``: reference pictures, ``inputs``: an
    instruction edit's pictures), as (``init_owner``, ``references_owner``, ``inputs_owner``).

    A job of its own keeps what its person attached. A job made from another's image ``source_index`` (a variation,
    an upscale, an edit) keeps a copy of that result: the source's person's. Otherwise a job made from another (a
    reroll, a remix) keeps the source's own pictures, and every job made from another keeps its references: their
    owners are the source's. Raises ``ImageNotFound`` when the job keeps pictures of a source deleted meanwhile.
    """
    if job.source_job_id is None:
        mine = job.user_id
        return (mine if init else None), (mine if references else None), (mine if inputs else None)
    source = await db.one("SELECT user_id, init_owner, references_owner, inputs_owner FROM jobs WHERE id = ?",
                          (job.source_job_id,))
    if source is None:
        if init or references or inputs:
            raise ImageNotFound(Text("I can't find that request any more; it may have been deleted."))
        return None, None, None
    copied = job.source_index is not None
    return ((source["user_id"] if copied else source["init_owner"]) if init else None,
            source["references_owner"] if references else None,
            (source["user_id"] if copied else source["inputs_owner"]) if inputs else None)


def _open_source(path: Path) -> Image.Image:
    """A job's source picture as it was given: RGB, or RGBA where its transparency marks what an edit repaints."""
    with Image.open(path) as image:
        return image.convert("RGBA" if "A" in image.getbands() else "RGB")


def _rewrite_recipes(files: Iterable[tuple[Path, dict[str, Any]]]) -> None:
    """Write images again with new recipes in their text chunks (the pixels stay as they are); a video's MP4 is
    encoded again with the new recipe in its metadata."""
    for path, recipe in files:
        if path.exists():
            write_recipe_png(open_rgb(path), recipe, path)
        video = video_path(path)
        if video.exists():
            write_video(decode_video(video.read_bytes()), recipe.get("fps") or 24, recipe, video)


def _path_list(paths: Sequence[str]) -> str | None:
    """A path-list column's value (``PICTURE_LISTS``): NULL when the job keeps no such pictures."""
    return json.dumps(list(paths)) if paths else None


def _unlink_all(paths: Iterable[Path]) -> None:
    """Delete files that may be gone already; a result's picture takes its video (``video_path``) with it."""
    for path in paths:
        path.unlink(missing_ok=True)
        if path.suffix == ".png":
            video_path(path).unlink(missing_ok=True)


def _marks(values: Sequence[object]) -> str:
    """The placeholders of an ``IN (...)`` list of ``values``."""
    return ", ".join("?" * len(values))
