"""What a job looks like in Discord (cogs/utils/results.py): wording, progress bars, the recipe embed and the result
file, including the WebP/JPEG fallbacks under a small attachment_size_limit."""

from __future__ import annotations

import io
import json
import random

import pytest
from PIL import Image

from bot.jobs import Job, StoredImage
from cogs.utils import results
from models.images import read_metadata
from models.plan import GenerationRequest

RECIPE = {"prompt": "a cat", "style": "anime", "seed": 7, "steps": 4, "guidance": 0.0, "model": "tiny",
          "width": 64, "height": 64, "strength": None}


def noise(size: int, seed: int = 0) -> Image.Image:
    """Random pixels: they do not compress, so file sizes are predictable upper bounds."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", (size, size), bytes(rng.getrandbits(8) for _ in range(size * size * 3)))


def job(prompt: str = "a cat", **fields: object) -> Job:
    return Job(user_id=42, request=GenerationRequest(prompt, style="anime", **fields))  # type: ignore[arg-type]


def file_bytes(file) -> bytes:
    file.fp.seek(0)
    return file.fp.read()


def test_png_with_recipe_when_it_fits() -> None:
    file = results.image_file([noise(64, s) for s in range(4)], RECIPE, name="grid", max_bytes=10 * 1024 * 1024)
    assert file.filename == "grid.png"
    data = file_bytes(file)
    with Image.open(io.BytesIO(data)) as grid:
        assert grid.size == (128, 128)  # 2x2 grid of 64x64
    assert json.loads(read_metadata(data)["imagebot"]) == RECIPE


@pytest.mark.parametrize("limit_kib", [48, 40, 24])
def test_falls_back_to_a_lossy_format_under_a_small_limit(limit_kib: int) -> None:
    limit = limit_kib * 1024
    pictures = [noise(64, s) for s in range(4)]
    png = results.image_file(pictures, RECIPE, name="grid", max_bytes=10 * 1024 * 1024)
    assert len(file_bytes(png)) > limit - results.ATTACHMENT_MARGIN  # the PNG would not fit
    file = results.image_file(pictures, RECIPE, name="grid", max_bytes=limit)
    data = file_bytes(file)
    assert file.filename.endswith((".webp", ".jpg"))
    assert len(data) <= limit - results.ATTACHMENT_MARGIN  # room left for the multipart framing
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format in ("WEBP", "JPEG")


def test_an_impossible_limit_is_an_error_not_a_broken_file() -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        results.image_file([noise(512)], RECIPE, name="big", max_bytes=results.ATTACHMENT_MARGIN + 100)


def test_single_image_is_not_a_grid() -> None:
    file = results.image_file([noise(64)], RECIPE, name="one", max_bytes=10 * 1024 * 1024)
    with Image.open(io.BytesIO(file_bytes(file))) as image:
        assert image.size == (64, 64)


@pytest.mark.parametrize(
    ("step", "total", "filled", "percent"),
    [(0, 4, 0, 0), (1, 4, 3, 25), (2, 4, 6, 50), (4, 4, 12, 100), (9, 4, 12, 100), (1, 0, 0, 0)],
)
def test_progress_bar(step: int, total: int, filled: int, percent: int) -> None:
    bar = results.progress_bar(step, total)
    assert bar.count("█") == filled and bar.count("░") == results.BAR_WIDTH - filled
    assert bar.endswith(f" {percent}%")


def test_queued_and_progress_text() -> None:
    text = results.queued_text(job(), 3, 95)
    assert "position 3" in text and "about 2 min" in text and "<@42>" in text and "*anime*" in text
    assert "about" not in results.queued_text(job(), 1, None)
    assert results.format_wait(0.2) == "1 s" and results.format_wait(59) == "59 s"
    assert "🎨 Generating" in results.progress_text(job(), 2, 4) and "50%" in results.progress_text(job(), 2, 4)


def test_headline_escapes_markdown_and_shortens_long_prompts() -> None:
    assert "\\*\\*bold\\*\\*" in results.headline(job("**bold**"))
    line = results.headline(job("word " * 500))
    assert len(line) < 400 and "…" in line
    variation = Job(user_id=1, request=GenerationRequest("x"), kind="variation")
    assert results.headline(variation).startswith("Variation of ")


def test_recipe_embed_lists_seeds_and_strength() -> None:
    the_job = job(negative="blurry")
    images = [StoredImage(the_job.id, i, f"images/{i}.png", {**RECIPE, "seed": 10 + i, "strength": 0.65}, 0.0, b"")
              for i in range(2)]
    embed = results.recipe_embed(the_job, images).to_dict()
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Seeds"] == "10, 11"
    assert fields["Strength"] == "0.65"
    assert fields["Negative"] == "blurry"
    assert fields["Size"] == "64×64"
    assert the_job.id in embed["footer"]["text"]
    single = results.recipe_embed(the_job, images[:1]).to_dict()
    assert any(field["name"] == "Seed" for field in single["fields"])


def test_preview_is_a_small_jpeg() -> None:
    file = results.preview_file(noise(64).convert("RGBA"))
    assert file.filename == "preview.jpg"
    with Image.open(io.BytesIO(file_bytes(file))) as image:
        assert image.format == "JPEG"


# --- attachment checks before any download (bot/attachments.py) ----------------------------------------------


class FakeAttachment:
    def __init__(self, filename: str, size: int, content_type: str | None, url: str) -> None:
        self.filename, self.size, self.content_type, self.url = filename, size, content_type, url


HOSTS = ["cdn.discordapp.com"]


@pytest.mark.parametrize(
    ("attachment", "message"),
    [
        (FakeAttachment("notes.txt", 10, "text/plain", "https://cdn.discordapp.com/a/notes.txt"), "is not an image"),
        (FakeAttachment("big.png", 11 * 1024 * 1024, "image/png", "https://cdn.discordapp.com/a/big.png"),
         "is 11.0 MB; the limit is 10.0 MB"),
        (FakeAttachment("cat.png", 10, "image/png", "http://169.254.169.254/cat.png"), "not hosted by Discord"),
        (FakeAttachment("cat.png", 10, "image/png", "file:///etc/passwd"), "not hosted by Discord"),
    ],
    ids=["not-an-image", "too-large", "foreign-host", "file-url"],
)
def test_attachments_refused_from_metadata(attachment: FakeAttachment, message: str) -> None:
    from bot.attachments import AttachmentRefused, check_attachment

    with pytest.raises(AttachmentRefused, match=message):
        check_attachment(attachment, allowed_hosts=HOSTS, max_bytes=10 * 1024 * 1024)  # type: ignore[arg-type]


@pytest.mark.parametrize(("filename", "content_type"), [("cat.PNG", None), ("cat", "image/webp"), ("c.jpeg", "")])
def test_images_pass_by_type_or_suffix(filename: str, content_type: str | None) -> None:
    from bot.attachments import check_attachment

    attachment = FakeAttachment(filename, 1000, content_type, f"https://cdn.discordapp.com/a/{filename}")
    check_attachment(attachment, allowed_hosts=HOSTS, max_bytes=10 * 1024 * 1024)  # type: ignore[arg-type]
