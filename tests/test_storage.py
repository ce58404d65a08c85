"""bot/storage.py against a real SQLite file and a real PostgreSQL database (``database_url``: every test that takes
the ``storage`` fixture runs on both): migrations, results, image lookups, housekeeping, forgetting; the tests of
picture files run with the files in a folder and in a bucket of a real S3 server (moto's, ``tests.s3``). Tests of
SQLite's own migration history (0001 ... 0014 on an old file) are SQLite's alone."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from bot import database
from bot.jobs import Job, JobState, Notice
from bot.settings import ChannelSettings, Remembered, UnknownSetting, UserSettings
from bot.storage import (
    DATABASE_NAME,
    MIGRATIONS_DIR,
    PROMPT_REMOVED,
    ImageExpired,
    ImageNotFound,
    Storage,
    migrations,
    migrations_of,
)
from models.edits import Edit
from models.images import read_metadata
from models.plan import GeneratedImage, GenerationRequest, Recipe
from models.safety import SafetyCheck
from tests.postgres import Cluster
from tests.s3 import image_store_of, stored_keys

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def recipe(seed: int = 1) -> Recipe:
    return Recipe(prompt="a red fox", negative="", style="none", seed=seed, steps=1, guidance=0.0, width=8,
                  height=8, strength=None, model="tiny")


def generated(count: int = 2) -> list[GeneratedImage]:
    return [GeneratedImage(Image.new("RGB", (8, 8), (40 * i, 0, 0)), recipe(i)) for i in range(count)]


@pytest.fixture
async def storage(tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest):
    """Storage on each engine, with its files in the folder (the default) or, for tests marked ``both_stores``, in a
    bucket too."""
    files = await image_store_of(getattr(request, "param", "folder"), tmp_path, request)
    async with Storage(tmp_path, url=database_url, images=files, image_ttl_hours=1, clock=Clock()) as opened:
        yield opened


both_stores = pytest.mark.parametrize("storage", ["folder", "bucket"], indirect=True)
"""A test of picture files: run with them in a folder and in an S3 bucket."""


async def inputs(storage: Storage) -> set[str]:
    """The keys of the jobs' kept input pictures."""
    return await stored_keys(storage.files, "inputs/")


async def test_fresh_database_is_current_and_sqlite_is_in_wal_mode(storage: Storage) -> None:
    assert await storage.schema_version() == migrations_of(storage.db.dialect)[-1][0] == len(migrations())
    if storage.db.dialect == "sqlite":
        assert (await storage.db.one("PRAGMA journal_mode"))[0] == "wal"


async def test_migrating_a_version_1_database_keeps_its_data(tmp_path: Path) -> None:
    """A database made by the first release (schema 1, with a job and an image) is upgraded in place."""
    path = tmp_path / DATABASE_NAME
    with sqlite3.connect(path) as db:
        db.executescript((MIGRATIONS_DIR / "0001_initial.sql").read_text())
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        request = GenerationRequest("an old fox", seed=7)
        db.execute("INSERT INTO jobs (id, user_id, kind, request, state, delivered, created_at)"
                   " VALUES ('old', 5, 'imagine', ?, 'done', 1, ?)", (json.dumps(request.to_dict()), T0))
        db.execute("INSERT INTO images (job_id, idx, path, recipe, created_at) VALUES ('old', 0, 'images/old-0.png',"
                   " ?, ?)", (json.dumps(recipe().to_dict()), T0))
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "old-0.png")

    async with Storage(tmp_path, clock=Clock()) as storage:
        assert await storage.schema_version() == len(migrations())
        job = await storage.get_job("old")
        assert job is not None and job.request.prompt == "an old fox" and job.request.seed == 7
        assert job.state == JobState.DONE and job.attempts == 0  # the new column, with its default
        # later columns too: not private, not webhook-only, no locale, no edit, no reference pictures
        assert (job.private, job.webhook_only, job.locale, job.request.edit, job.request.reference_weights) == (
            False, False, None, None, None)
        assert await storage.user_settings(5) == UserSettings()
        assert (await storage.get_image("old", 0)).recipe["seed"] == 1
        indexes = {row[0] for row in await storage.db.all("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"jobs_by_user", "images_by_age", "jobs_by_state", "jobs_result_message"} <= indexes
        # 0005 rebuilt the jobs table: the images still point at their jobs, and foreign keys are on again.
        assert await storage.db.all("PRAGMA foreign_key_check") == []
        assert (await storage.db.one("PRAGMA foreign_keys"))[0] == 1
    async with Storage(tmp_path) as storage:  # opening a current database again changes nothing
        assert await storage.schema_version() == len(migrations())


async def test_bots_starting_at_once_on_one_postgresql_database_migrate_it_once(tmp_path: Path,
                                                                               postgres: Cluster) -> None:
    """Processes on several machines share the database; the first to start creates the schema, the others wait."""
    url = postgres.new_database()
    opened = await asyncio.gather(*(Storage(tmp_path / str(n), url=url).open() for n in range(4)))
    try:
        assert {await storage.schema_version() for storage in opened} == {migrations_of("postgresql")[-1][0]}
    finally:
        await asyncio.gather(*(storage.close() for storage in opened))


async def test_processes_sharing_a_postgresql_database_see_each_others_settings_and_notices(
        tmp_path: Path, postgres: Cluster) -> None:
    """Nothing read is kept in memory where other processes write the same database."""
    url = postgres.new_database()
    async with Storage(tmp_path / "a", url=url) as here, Storage(tmp_path / "b", url=url) as there:
        assert await here.user_settings(1) == UserSettings() and await here.notices(1) == []
        assert (await here.channel_settings(5)).max_count is None
        await there.update_user_settings(1, style="anime")
        await there.update_channel_settings(5, max_count=2)
        job = Job(user_id=1, request=GenerationRequest("a fox"), created_at=T0)
        await there.insert_job(job)
        await there.leave_notice(job.id, "it failed")
        assert (await here.user_settings(1)).style == "anime" and (await here.channel_settings(5)).max_count == 2
        assert await here.notices(1) == [Notice(job.id, "a fox", "it failed")]


async def test_a_database_from_newer_code_is_refused(tmp_path: Path, database_url: str | None) -> None:
    async with Storage(tmp_path, url=database_url) as storage:
        await storage.db.write("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="schema version 99, newer than this code"):
        await Storage(tmp_path, url=database_url).open()


def with_migration(monkeypatch: pytest.MonkeyPatch, directory: Path, sql: str) -> int:
    """The shipped migrations (of either engine) plus one more holding ``sql``; its number."""
    number = len(migrations()) + 1
    extra = directory / f"{number:04d}_extra.sql"
    extra.write_text(sql)
    monkeypatch.setattr("bot.storage.migrations_of", lambda dialect: [*migrations_of(dialect), (number, extra)])
    return number


async def test_a_migration_runs_as_sqlite_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Semicolons in comments, strings and a trigger's body, and a last statement without one, are SQLite's
    business: the file runs as written."""
    number = with_migration(monkeypatch, tmp_path, """-- a comment; with a semicolon
CREATE TABLE notes (text TEXT NOT NULL DEFAULT 'a;b');  -- and another; here
CREATE TRIGGER notes_stamp AFTER INSERT ON notes BEGIN
    UPDATE notes SET text = text || ';' WHERE rowid = new.rowid;
END;
INSERT INTO notes DEFAULT VALUES""")
    async with Storage(tmp_path) as storage:
        assert await storage.schema_version() == number
        assert [row[0] for row in await storage.db.all("SELECT text FROM notes")] == ["a;b;"]


async def test_a_failing_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    database_url: str | None) -> None:
    """A migration is applied whole or not at all: its version stays, its first statements are rolled back, and
    the database opens again once the migration is fixed."""
    async with Storage(tmp_path, url=database_url) as storage:
        current = await storage.schema_version()
    with_migration(monkeypatch, tmp_path, "ALTER TABLE jobs ADD COLUMN extra INTEGER;\nINSERT INTO nowhere VALUES (1);")
    broken = Storage(tmp_path, url=database_url)
    with pytest.raises(database.ERRORS, match="nowhere"):
        await broken.open()
    await broken.close()
    monkeypatch.undo()
    async with Storage(tmp_path, url=database_url) as storage:
        assert await storage.schema_version() == current
        await storage.db.write("UPDATE jobs SET attempts = 0")  # the table is there, without the column:
        with pytest.raises(database.ERRORS, match="extra"):
            await storage.db.write("UPDATE jobs SET extra = 0")


@both_stores
async def test_results_round_trip_with_the_recipe_in_the_png(storage: Storage) -> None:
    job = Job(user_id=1, request=GenerationRequest("a red fox"), created_at=T0)
    await storage.insert_job(job)
    stored = await storage.save_results(job, generated(2))
    assert [s.index for s in stored] == [0, 1]
    again = await storage.get_job(job.id)
    assert again is not None and again.state == JobState.DONE and not again.delivered
    assert [j.id for j in await storage.undelivered_jobs()] == [job.id]
    await storage.mark_delivered(job.id)
    assert await storage.undelivered_jobs() == []

    image = await storage.get_image(job.id, 1)
    assert image.recipe == recipe(1).to_dict()
    metadata = read_metadata(image.data)
    assert metadata["prompt"] == "a red fox" and json.loads(metadata["imagebot"])["seed"] == 1
    assert image.open().getpixel((0, 0)) == (40, 0, 0)
    with pytest.raises(ImageNotFound, match="can't find"):
        await storage.get_image(job.id, 2)


@both_stores
async def test_results_keep_their_pixels_for_delivery_and_the_files_hold_the_same(storage: Storage) -> None:
    job = Job(user_id=1, request=GenerationRequest("a red fox"), created_at=T0)
    await storage.insert_job(job)
    made = generated(3)
    stored = await storage.save_results(job, made)
    # The grid is composed from memory while the job is delivered; the files and the rows are already there.
    assert [s.open() for s in stored] == [g.image for g in made]
    again = await storage.get_images(job.id)
    assert [s.pixels for s in again] == [None] * 3
    assert [s.open().tobytes() for s in again] == [g.image.tobytes() for g in made]
    assert (await storage.get_job(job.id)).state == JobState.DONE


async def stored_source(storage: Storage, job_id: str = "abc") -> None:
    """A finished job for others to be made from (a job that keeps pictures from a source needs one)."""
    await storage.insert_job(Job(user_id=9, request=GenerationRequest("a source"), id=job_id, state=JobState.DONE,
                                 created_at=T0))


@both_stores
async def test_an_edit_keeps_its_source_transparency_its_edit_and_its_lineage(storage: Storage) -> None:
    """A mask edit's source carries the mask in its alpha channel: stored as given, it resumes the same edit."""
    await stored_source(storage)
    source = Image.new("RGBA", (16, 8), (1, 2, 3, 255))
    source.putpixel((4, 4), (9, 9, 9, 0))
    job = Job(user_id=1, request=GenerationRequest("a hat", init_image=source, edit=Edit.mask()), kind="edit",
              source_job_id="abc", source_index=1, created_at=T0)
    await storage.insert_job(job)
    [resumed] = await storage.active_jobs()
    assert resumed.request.init_image is not None and resumed.request.init_image.mode == "RGBA"
    assert resumed.request.init_image.tobytes() == source.tobytes()
    assert resumed.request.edit == Edit.mask() and resumed.kind == "edit"
    assert (resumed.source_job_id, resumed.source_index) == ("abc", 1)


@both_stores
async def test_img2img_source_is_stored_so_the_job_can_resume(storage: Storage) -> None:
    await stored_source(storage)
    source = Image.new("RGB", (16, 8), (1, 2, 3))
    job = Job(user_id=1, request=GenerationRequest("restyle", init_image=source, strength=0.5), kind="variation",
              source_job_id="abc", source_index=0, created_at=T0)
    await storage.insert_job(job)
    [resumed] = await storage.active_jobs()
    assert resumed.request.init_image is not None and resumed.request.init_image.size == (16, 8)
    assert resumed.request.init_image.getpixel((0, 0)) == (1, 2, 3)
    assert (resumed.source_job_id, resumed.source_index) == ("abc", 0) and resumed.request.strength == 0.5
    await storage.set_state(job.id, JobState.DONE)
    await storage.housekeep()  # a finished restyle keeps its picture as long as its results: a reroll restyles it
    again = await storage.get_job(job.id, load_init=True)
    assert again is not None and again.request.init_image is not None
    storage.clock.now += 3601  # type: ignore[attr-defined]
    await storage.housekeep()
    assert await inputs(storage) == set()
    with pytest.raises(ImageExpired, match="picture this was made from has expired"):
        await storage.get_job(job.id, load_init=True)
    assert (await storage.get_job(job.id)) is not None


@both_stores
async def test_housekeeping_expires_old_images(storage: Storage) -> None:
    job = Job(user_id=1, request=GenerationRequest("a red fox"), created_at=T0)
    await storage.insert_job(job)
    stored = await storage.save_results(job, generated(2))
    assert await storage.housekeep() == 0
    assert await stored_keys(storage.files, "images/") == {image.key for image in stored}
    storage.clock.now += 3601  # type: ignore[attr-defined]
    assert await storage.housekeep() == 2
    assert await stored_keys(storage.files, "images/") == set()
    with pytest.raises(ImageExpired, match="This image has expired"):
        await storage.get_image(job.id, 0)
    assert (await storage.get_job(job.id)) is not None  # the history stays; only the pixels go


@both_stores
async def test_forget_user_deletes_history_and_files(storage: Storage) -> None:
    mine = Job(user_id=1, request=GenerationRequest("mine", init_image=Image.new("RGB", (8, 8))), created_at=T0)
    theirs = Job(user_id=2, request=GenerationRequest("theirs"), created_at=T0)
    for job in (mine, theirs):
        await storage.insert_job(job)
    [image] = await storage.save_results(mine, generated(1))
    assert await storage.forget_user(1) == 1
    assert await storage.get_job(mine.id) is None and image.key not in await stored_keys(storage.files)
    assert await inputs(storage) == set()
    with pytest.raises(ImageNotFound):
        await storage.get_image(mine.id, 0)
    assert await storage.get_job(theirs.id) is not None


@both_stores
async def test_forget_user_removes_their_words_from_others_jobs_derived_from_theirs(storage: Storage) -> None:
    """B's variation of A's image, and C's reroll of B's variation, keep their images; A's prompt leaves them (rows
    and PNG recipes), and B's copy of A's picture goes."""
    a = Job(user_id=1, request=GenerationRequest("a secret fox", negative="my secret"), created_at=T0)
    b = Job(user_id=2, request=GenerationRequest("a secret fox", negative="my secret",
                                                 init_image=Image.new("RGB", (8, 8))),
            kind="variation", source_job_id=a.id, source_index=0, created_at=T0)
    c = Job(user_id=3, request=GenerationRequest("a secret fox"), kind="reroll", source_job_id=b.id, created_at=T0)
    unrelated = Job(user_id=2, request=GenerationRequest("a secret fox of my own"), created_at=T0)
    for job in (a, b, c, unrelated):
        await storage.insert_job(job)
    for job in (a, b, c):
        await storage.save_results(job, generated(1))
    assert await storage.forget_user(1) == 1
    assert await storage.get_job(a.id) is None
    for job in (b, c):
        kept = await storage.get_job(job.id)
        assert kept is not None and kept.request.prompt == PROMPT_REMOVED, job.kind
        image = await storage.get_image(job.id, 0)  # their images stay theirs
        assert image.recipe["prompt"] == PROMPT_REMOVED
        assert "secret" not in read_metadata(image.data)["imagebot"]
    assert (await storage.get_job(b.id)).request.negative == PROMPT_REMOVED
    assert (await storage.get_job(c.id)).request.negative == ""
    assert await inputs(storage) == set()  # B's source picture was A's image
    with pytest.raises(ImageExpired):
        await storage.get_job(b.id, load_init=True)
    assert (await storage.get_job(unrelated.id)).request.prompt == "a secret fox of my own"


async def test_housekeeping_removes_prompts_and_tokens_of_old_jobs(storage: Storage) -> None:
    old = Job(user_id=1, request=GenerationRequest("an old secret", negative="old"), token="old-token", created_at=T0)
    await storage.insert_job(old)
    await storage.save_results(old, generated(1))
    storage.clock.now += 3601  # type: ignore[attr-defined]
    new = Job(user_id=1, request=GenerationRequest("a new one"), token="new-token", created_at=storage.clock())
    await storage.insert_job(new)
    await storage.set_state(new.id, JobState.DONE)
    await storage.housekeep()
    gone = await storage.get_job(old.id)
    assert (gone.request.prompt, gone.request.negative, gone.token) == ("", "", None)
    [recipe_left] = await storage.db.one("SELECT recipe FROM images WHERE job_id = ?", (old.id,))
    assert json.loads(recipe_left)["prompt"] == ""
    kept = await storage.get_job(new.id)
    assert (kept.request.prompt, kept.token) == ("a new one", "new-token")


async def test_stats(storage: Storage) -> None:
    for user, state in ((1, JobState.DONE), (1, JobState.FAILED), (2, JobState.QUEUED), (1, JobState.QUEUED)):
        job = Job(user_id=user, request=GenerationRequest("x"), created_at=T0)
        await storage.insert_job(job)
        await storage.set_state(job.id, state)
    counts = await storage.jobs_by_state()
    assert counts["done"] == 1 and counts["failed"] == 1 and counts["queued"] == 2 and counts["expired"] == 0
    assert await storage.jobs_per_user() == [(1, 3), (2, 1)]
    assert await storage.jobs_per_user(1) == [(1, 3)]


async def test_message_ids_are_kept(storage: Storage) -> None:
    job = Job(user_id=1, request=GenerationRequest("x"), created_at=T0)
    await storage.insert_job(job)
    await storage.set_messages(job.id, result_message_id=22)
    again = await storage.get_job(job.id)
    assert again is not None and again.result_message_id == 22
    assert "secret" not in repr(Job(user_id=1, request=GenerationRequest("x"), token="secret"))


async def test_the_requesters_locale_is_kept_for_a_resumed_job(storage: Storage) -> None:
    await storage.insert_job(Job(user_id=1, request=GenerationRequest("una volpe"), locale="it", created_at=T0))
    await storage.insert_job(Job(user_id=2, request=GenerationRequest("from the command line"), created_at=T0))
    assert sorted((job.user_id, job.locale) for job in await storage.active_jobs()) == [(1, "it"), (2, None)]


async def test_user_settings_start_unset_change_clear_and_reject_unknown_names(storage: Storage) -> None:
    assert await storage.user_settings(1) == UserSettings()
    stored = await storage.update_user_settings(1, style="anime", count=2, private=True)
    assert stored == UserSettings(style="anime", count=2, private=True)
    assert await storage.user_settings(1) == stored
    cleared = await storage.update_user_settings(1, style=None, private=None, model="tiny")
    assert cleared == UserSettings(count=2, model="tiny") == await storage.user_settings(1)
    assert await storage.user_settings(2) == UserSettings()  # one person's settings are theirs alone
    for bad in ({"colour": "red"}, {"count": 0}, {"count": "two"}, {"remix": "yes"}, {"style": ""}):
        with pytest.raises(UnknownSetting):
            await storage.update_user_settings(1, **bad)
    assert await storage.user_settings(1) == cleared  # nothing of a refused change is stored


async def test_channel_settings_hold_defaults_and_limits(storage: Storage) -> None:
    assert await storage.channel_settings(10) == ChannelSettings()
    assert ChannelSettings().allows_model("anything")
    stored = await storage.update_channel_settings(10, by=7, max_count=2, allowed_models=["tiny", "tiny", "other"],
                                                   aspect="wide")
    assert stored == ChannelSettings(aspect="wide", max_count=2, allowed_models=("tiny", "other"))
    assert await storage.channel_settings(10) == stored
    assert stored.allows_model("tiny") and not stored.allows_model("flux")
    assert (await storage.update_channel_settings(10, allowed_models=None)).allowed_models == ()
    for bad in ({"remix": True}, {"allowed_models": "tiny"}, {"max_count": -1}):
        with pytest.raises(UnknownSetting):
            await storage.update_channel_settings(10, **bad)


async def test_forget_user_deletes_their_settings(storage: Storage) -> None:
    await storage.update_user_settings(1, private=True, remix=True)
    await storage.update_user_settings(2, count=1)
    await storage.forget_user(1)
    assert await storage.user_settings(1) == UserSettings()
    assert await storage.user_settings(2) == UserSettings(count=1)


async def test_forget_user_leaves_their_id_nowhere_but_keeps_a_block_on_them(storage: Storage) -> None:
    await storage.update_channel_settings(10, by=1, max_count=2)
    await storage.update_channel_settings(11, by=2, max_count=3)
    await storage.block_user(3, by=1, reason="spam")
    await storage.block_user(1, by=2, reason="abuse")
    await storage.forget_user(1)
    settings = await storage.db.all("SELECT channel_id, updated_by, max_count FROM channel_settings")
    assert sorted(tuple(row) for row in settings) == [(10, None, 2), (11, 2, 3)]
    blocks = await storage.db.all("SELECT user_id, blocked_by FROM blocked_users")
    assert sorted(tuple(row) for row in blocks) == [(1, 2), (3, None)]
    assert await storage.blocked_users() == {1, 3}  # forgetting is not a way around a block


def solid(colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (8, 8), colour)


async def colours_kept(storage: Storage) -> set[tuple[int, int, int]]:
    """The colour of every one-colour picture the storage keeps (results are not one colour)."""
    found = set()
    for key in await stored_keys(storage.files, "images/") | await inputs(storage):
        with Image.open(io.BytesIO(await storage.files.get(key))) as image:
            colours = image.convert("RGB").getcolors(1)
        if colours:
            found.add(colours[0][1])
    return found


@both_stores
async def test_forget_user_deletes_every_copy_of_their_pictures_however_far_they_were_carried(
        storage: Storage) -> None:
    """Alice blends two pictures; Bob varies her result, Carol varies Bob's, Dan rerolls Carol's: each job keeps a
    copy of her pictures (and the variations a copy of the result they vary). Forgetting her deletes every copy of
    her pictures and of her result; Bob's result, which Carol's and Dan's jobs keep, stays until Bob is forgotten."""
    red, blue, her_result, bobs_result, carols_result = (200, 0, 0), (0, 0, 200), (0, 200, 0), (0, 100, 100), (9, 9, 9)
    alice = Job(user_id=1, request=GenerationRequest("her words", references=[solid(red), solid(blue)],
                                                     reference_weights=[0.5, 0.5]), kind="blend", created_at=T0)
    await storage.insert_job(alice)
    await storage.save_results(alice, [GeneratedImage(solid(her_result), recipe())])

    def varied(user_id: int, source: Job, colour: tuple[int, int, int]) -> Job:
        return Job(user_id=user_id, request=GenerationRequest(
            "her words", init_image=solid(colour), references=[solid(red), solid(blue)], reference_weights=[0.5, 0.5]),
            kind="variation", source_job_id=source.id, source_index=0, created_at=T0)

    bob = varied(2, alice, her_result)
    await storage.insert_job(bob)
    await storage.save_results(bob, [GeneratedImage(solid(bobs_result), recipe())])
    carol = varied(3, bob, bobs_result)
    await storage.insert_job(carol)
    await storage.save_results(carol, [GeneratedImage(solid(carols_result), recipe())])
    dan = Job(user_id=4, request=GenerationRequest("her words", init_image=solid(bobs_result),
                                                   references=[solid(red), solid(blue)], reference_weights=[0.5, 0.5]),
              kind="reroll", source_job_id=carol.id, created_at=T0)
    await storage.insert_job(dan)
    assert {red, blue, her_result, bobs_result} <= (await colours_kept(storage))

    assert await storage.forget_user(1) == 1
    # Their results, and Carol's and Dan's copies of Bob's, stay.
    assert (await colours_kept(storage)) == {bobs_result, carols_result}
    for job in (bob, carol, dan):
        with pytest.raises(ImageExpired, match="blended from have expired"):
            await storage.get_job(job.id, load_references=True)
        assert (await storage.get_job(job.id)).request.prompt == PROMPT_REMOVED  # type: ignore[union-attr]
    with pytest.raises(ImageExpired):
        await storage.get_job(bob.id, load_init=True)
    assert (await storage.get_job(dan.id, load_init=True)).request.init_image is not None  # type: ignore[union-attr]
    assert (await storage.get_image(carol.id, 0)).data  # results stay viewable
    [owned] = await storage.db.one("SELECT count(*) FROM jobs WHERE 1 IN (user_id, init_owner, references_owner)")
    assert owned == 0

    await storage.forget_user(2)
    assert (await colours_kept(storage)) == {carols_result}
    assert (await storage.get_image(carol.id, 0)).data


@both_stores
async def test_a_job_keeping_pictures_of_a_source_deleted_meanwhile_is_refused_and_leaves_nothing(
        storage: Storage) -> None:
    source = Job(user_id=1, request=GenerationRequest("mine"), created_at=T0)
    await storage.insert_job(source)
    await storage.forget_user(1)  # while someone clicked V1 under its result
    late = Job(user_id=2, request=GenerationRequest("mine", init_image=solid((1, 2, 3))), kind="variation",
               source_job_id=source.id, source_index=0, created_at=T0)
    with pytest.raises(ImageNotFound, match="can't find that request"):
        await storage.insert_job(late)
    assert await storage.get_job(late.id) is None and await inputs(storage) == set()
    words_only = Job(user_id=2, request=GenerationRequest("a prompt of its own"), source_job_id=source.id,
                     created_at=T0)
    await storage.insert_job(words_only)  # it keeps nothing of the source's


async def test_migration_11_finds_whose_pictures_stored_jobs_keep(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr("bot.storage.migrations_of", lambda dialect: migrations()[:10])
        async with Storage(tmp_path) as storage:
            assert await storage.schema_version() == 10
    rows = [  # id, user, source, index, init_path, reference_paths
        ("a", 1, None, None, "inputs/a.png", '["inputs/a-ref0.png"]'),  # her restyle with a reference
        ("b", 2, "a", 0, "inputs/b.png", '["inputs/b-ref0.png"]'),  # a variation of her result
        ("c", 3, "b", None, "inputs/c.png", '["inputs/c-ref0.png"]'),  # a reroll of that
        ("d", 3, "b", 1, "inputs/d.png", None),  # an edit of Bob's result
        ("e", 4, "gone", None, "inputs/e.png", '["inputs/e-ref0.png"]'),  # a reroll of a job forgotten before
        ("f", 4, "e", 0, "", ""),  # a variation whose pictures expired
        ("g", 5, None, None, None, None),  # words only
    ]
    with sqlite3.connect(tmp_path / DATABASE_NAME) as db:
        db.executemany("INSERT INTO jobs (id, user_id, source_job_id, source_index, init_path, reference_paths, kind,"
                       " request, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'imagine', '{}', 'done', 0)", rows)
    async with Storage(tmp_path) as storage:
        owners = [tuple(row) for row in await storage.db.all(
            "SELECT id, init_owner, references_owner FROM jobs ORDER BY id")]
    assert owners == [("a", 1, 1), ("b", 1, 1), ("c", 1, 1), ("d", 2, None), ("e", None, None), ("f", None, None),
                      ("g", None, None)]


async def test_kept_settings_are_the_latest_written_and_a_read_overtaken_by_a_change_is_not_kept() -> None:
    kept: Remembered[int, UserSettings] = Remembered(2)
    reads: list[int] = []
    release = asyncio.Event()

    def reader(key: int, settings: UserSettings, *, wait: bool = False):
        async def read() -> UserSettings:
            reads.append(key)
            if wait:
                await release.wait()
            return settings
        return read

    on_its_way = asyncio.create_task(kept.get(1, reader(1, UserSettings(style="old"), wait=True)))
    await asyncio.sleep(0)
    kept.changed(1, UserSettings(style="new"))  # /settings wrote while the read was on its way
    release.set()
    assert (await on_its_way).style == "old"
    assert (await kept.get(1, reader(1, UserSettings(style="stale")))).style == "new"
    assert (await kept.get(2, reader(2, UserSettings(count=2)))).count == 2
    assert (await kept.get(2, reader(2, UserSettings()))).count == 2  # kept: not read again
    await kept.get(3, reader(3, UserSettings()))  # the least recently used (1) makes room
    assert (await kept.get(1, reader(1, UserSettings(style="read again")))).style == "read again"
    kept.changed(2, None)  # deleted (forgotten)
    assert await kept.get(2, reader(2, UserSettings())) == UserSettings()
    assert reads == [1, 2, 3, 1, 2]


async def test_notices_left_before_a_restart_are_told_after_it(tmp_path: Path, database_url: str | None) -> None:
    async with Storage(tmp_path, url=database_url, clock=Clock()) as storage:
        job = Job(user_id=7, request=GenerationRequest("a fox"), created_at=T0)
        await storage.insert_job(job)
        await storage.leave_notice(job.id, "it failed")
    async with Storage(tmp_path, url=database_url, clock=Clock()) as storage:
        assert await storage.notices(8) == []
        left = await storage.notices(7)
        assert left == [Notice(job.id, "a fox", "it failed")]
        assert await storage.notices(7) == left  # not shown yet (the reply failed): still there
        await storage.notices_shown(7, left)
        assert await storage.notices(7) == []  # told once
        await storage.leave_notice(job.id, "it failed again")
        again = await storage.notices(7)
        assert again == [Notice(job.id, "a fox", "it failed again")]
        await storage.leave_notice(job.id, "and again")  # while the last one was being shown
        await storage.notices_shown(7, again)
        assert await storage.notices(7) == [Notice(job.id, "a fox", "and again")]


@both_stores
async def test_reference_pictures_are_kept_with_the_job_until_they_expire_or_are_forgotten(storage: Storage) -> None:
    pictures = [Image.new("RGB", (8, 8), (200, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 200))]
    job = Job(user_id=1, request=GenerationRequest("", references=pictures, reference_weights=[0.5, 0.5]),
              kind="blend", created_at=T0)
    await storage.insert_job(job)
    [resumed] = await storage.active_jobs()
    assert [picture.getpixel((0, 0)) for picture in resumed.request.references or []] == [(200, 0, 0), (0, 0, 200)]
    assert resumed.request.reference_weights == [0.5, 0.5]
    assert (await storage.get_job(job.id)).request.references is None  # type: ignore[union-attr]  # only on demand
    await storage.set_state(job.id, JobState.DONE)
    storage.clock.now += 3601  # type: ignore[attr-defined]
    await storage.housekeep()
    assert await inputs(storage) == set()
    with pytest.raises(ImageExpired, match="pictures this was blended from have expired"):
        await storage.get_job(job.id, load_references=True)

    again = Job(user_id=1, request=GenerationRequest("", references=pictures, reference_weights=[0.5, 0.5]),
                kind="blend", created_at=storage.clock.now)  # type: ignore[attr-defined]
    await storage.insert_job(again)
    assert len(await inputs(storage)) == 2
    assert await storage.forget_user(1) == 2
    assert await inputs(storage) == set()


@both_stores
async def test_an_instruction_edits_pictures_are_kept_in_order_until_they_expire(storage: Storage) -> None:
    pictures = [solid((200, 0, 0)), solid((0, 0, 200))]
    job = Job(user_id=1, request=GenerationRequest("the woman from image 1 in the dress from image 2",
                                                   input_images=pictures), kind="edit", created_at=T0)
    await storage.insert_job(job)
    [resumed] = await storage.active_jobs()
    assert [picture.getpixel((0, 0)) for picture in resumed.request.input_images or []] == [(200, 0, 0), (0, 0, 200)]
    assert (await storage.get_job(job.id)).request.input_images is None  # type: ignore[union-attr]  # only on demand
    loaded = await storage.get_job(job.id, load_inputs=True)
    assert loaded is not None and len(loaded.request.input_images or []) == 2
    await storage.set_state(job.id, JobState.DONE)
    await storage.housekeep()  # a finished edit keeps its pictures as long as its results: a reroll edits them again
    assert len(await inputs(storage)) == 2
    storage.clock.now += 3601  # type: ignore[attr-defined]
    await storage.housekeep()
    assert await inputs(storage) == set()
    with pytest.raises(ImageExpired, match="pictures this was edited from have expired"):
        await storage.get_job(job.id, load_inputs=True)
    assert (await storage.get_job(job.id)) is not None


@both_stores
async def test_forget_user_deletes_an_instruction_edits_pictures_however_far_they_were_carried(
        storage: Storage) -> None:
    """Alice edits two pictures by instruction; Bob rerolls it, Carol rerolls Bob's; Dan edits Carol's result by
    instruction (a copy of Carol's result). Forgetting Alice deletes every copy of her pictures but not Dan's copy of
    Carol's result."""
    red, blue, carols_result = (200, 0, 0), (0, 0, 200), (9, 9, 9)

    def edit(user_id: int, pictures: list[Image.Image], source: Job | None = None,
             index: int | None = None) -> Job:
        return Job(user_id=user_id, request=GenerationRequest("make it night", input_images=pictures),
                   kind="edit" if source is None else "reroll", source_job_id=source.id if source else None,
                   source_index=index, created_at=T0)

    alice = edit(1, [solid(red), solid(blue)])
    bob = edit(2, [solid(red), solid(blue)], alice)
    carol = edit(3, [solid(red), solid(blue)], bob)
    for job in (alice, bob, carol):
        await storage.insert_job(job)
    await storage.save_results(carol, [GeneratedImage(solid(carols_result), recipe())])
    dan = edit(4, [solid(carols_result)], carol, 0)
    await storage.insert_job(dan)
    assert {red, blue, carols_result} <= (await colours_kept(storage))

    assert await storage.forget_user(1) == 1
    assert (await colours_kept(storage)) == {carols_result}
    for job in (bob, carol):
        with pytest.raises(ImageExpired, match="edited from have expired"):
            await storage.get_job(job.id, load_inputs=True)
    kept = await storage.get_job(dan.id, load_inputs=True)
    assert kept is not None and [p.getpixel((0, 0)) for p in kept.request.input_images or []] == [carols_result]
    assert (await storage.db.one("SELECT count(*) FROM jobs WHERE inputs_owner = 1"))[0] == 0
    await storage.forget_user(3)
    assert (await colours_kept(storage)) == set()


@both_stores
async def test_an_image_whose_file_is_gone_has_expired(storage: Storage) -> None:
    """Another process's housekeeping or forget-me can delete a file between its row and its reading here: a button on
    it says it expired, and a job's other images are still shown."""
    job = Job(user_id=1, request=GenerationRequest("a red fox"), created_at=T0)
    await storage.insert_job(job)
    [first, second] = await storage.save_results(job, generated(2))
    await storage.files.delete([first.key])
    with pytest.raises(ImageExpired, match="This image has expired"):
        await storage.get_image(job.id, 0)
    assert [image.index for image in await storage.get_images(job.id)] == [1]
    assert (await storage.get_image(job.id, 1)).data == second.data


async def test_flagged_images_are_listed_newest_first_with_their_score_and_action(storage: Storage) -> None:
    """/admin safety's list reads the safety check's verdict out of each recipe's JSON (each engine its own way)."""
    jobs = [Job(user_id=7, channel_id=70, request=GenerationRequest("a red fox"), created_at=T0) for _ in range(2)]
    verdicts = [SafetyCheck("tiny", 0.9, True, "spoiler"), SafetyCheck("tiny", 0.1, False, "allow"),
                SafetyCheck("tiny", 0.75, True, "block")]
    for at, (job, checks) in enumerate(zip(jobs, (verdicts[:2], verdicts[2:]), strict=True)):
        storage.clock.now = T0 + at  # type: ignore[attr-defined]
        await storage.insert_job(job)
        await storage.save_results(job, [GeneratedImage(Image.new("RGB", (8, 8)), replace(recipe(index),
                                                                                          safety=check.to_dict()))
                                         for index, check in enumerate(checks)])
    listed = await storage.flagged_images()
    assert [(image.job_id, image.index, image.score, image.action) for image in listed] == [
        (jobs[1].id, 0, 0.75, "block"), (jobs[0].id, 0, 0.9, "spoiler")]
    assert {(image.user_id, image.channel_id) for image in listed} == {(7, 70)}
