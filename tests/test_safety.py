"""The safety check's parts without Discord: the policy by place, the withheld tile, the classifiers, the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from bot.config import ConfigError, parse_config
from bot.safety import TILE_BACKGROUND, Place, Treatment, place_treatment, shown_as, strictest, treatment, withheld_tile
from models.plan import ModelLoadError
from models.safety import IMAGE_KEY, PROMPT_KEY, ImageChecker, PromptChecker

ALLOW, SPOILER, BLOCK = Treatment.ALLOW, Treatment.SPOILER, Treatment.BLOCK
CHANNEL, AGE_RESTRICTED, PRIVATE = Place.CHANNEL, Place.AGE_RESTRICTED, Place.PRIVATE

# place x bot.yaml's action x the channel's /settings value -> what a flagged picture gets
POLICY = [
    (CHANNEL, "allow", None, BLOCK), (CHANNEL, "spoiler", None, BLOCK), (CHANNEL, "block", None, BLOCK),
    (CHANNEL, "allow", "allow", BLOCK), (CHANNEL, "spoiler", "spoiler", BLOCK),
    (AGE_RESTRICTED, "allow", None, ALLOW), (AGE_RESTRICTED, "spoiler", None, SPOILER),
    (AGE_RESTRICTED, "block", None, BLOCK),
    # A channel may be stricter than bot.yaml...
    (AGE_RESTRICTED, "allow", "spoiler", SPOILER), (AGE_RESTRICTED, "allow", "block", BLOCK),
    (AGE_RESTRICTED, "spoiler", "block", BLOCK),
    # ...never looser.
    (AGE_RESTRICTED, "block", "allow", BLOCK), (AGE_RESTRICTED, "block", "spoiler", BLOCK),
    (AGE_RESTRICTED, "spoiler", "allow", SPOILER),
    # DMs, user installs and private results follow the strictest rule.
    (PRIVATE, "allow", None, BLOCK), (PRIVATE, "spoiler", None, BLOCK), (PRIVATE, "allow", "allow", BLOCK),
]


@pytest.mark.parametrize(("place", "action", "channel", "expected"), POLICY)
def test_policy_by_place(place, action, channel, expected):
    assert treatment(True, action, place, channel) is expected
    assert place_treatment(action, place, channel) is expected
    # An unflagged picture is shown everywhere, whatever is set.
    assert treatment(False, action, place, channel) is ALLOW


def test_strictest_and_what_a_stored_picture_gets():
    assert strictest() is ALLOW and strictest("spoiler", None, "allow") is SPOILER
    assert strictest("block", "allow") is BLOCK
    flagged = {"safety": {"model": "m", "score": 0.9, "flagged": True, "action": "allow"}}
    passed = {"safety": {"model": "m", "score": 0.1, "flagged": False, "action": "allow"}}
    # Decided again where it is shown: allowed where it was made, withheld elsewhere.
    assert shown_as(flagged, BLOCK) is BLOCK and shown_as(flagged, ALLOW) is ALLOW
    assert shown_as(passed, BLOCK) is ALLOW and shown_as({}, BLOCK) is ALLOW


def test_the_withheld_tile_is_plain_and_of_the_pictures_size():
    tile = withheld_tile(96, 64, "Withheld")
    assert tile.size == (96, 64) and tile.getpixel((0, 0)) == TILE_BACKGROUND


@pytest.fixture(scope="module")
def checker(tmp_path_factory) -> ImageChecker:
    return ImageChecker.load("tiny", IMAGE_KEY, "nsfw", torch.device("cpu"), torch.float32,
                             cache_dir=tmp_path_factory.mktemp("safety"))


def test_the_tiny_classifier_scores_a_batch_strictly_between_0_and_1(checker):
    pictures = [Image.new("RGB", (64, 64), (value, 0, 0)) for value in (0, 120, 255)]
    scores = checker.scores(pictures)
    assert len(scores) == 3 and all(0 < score < 1 for score in scores)
    assert checker.scores(pictures[1:2]) == scores[1:2]  # one picture's score does not depend on its batch


def test_a_classifier_without_the_unsafe_label_is_refused(tmp_path, checker):
    with pytest.raises(ModelLoadError, match=r"'porn' \(safety.unsafe_label\).*safety.model"):
        ImageChecker.load("tiny", IMAGE_KEY, "porn", torch.device("cpu"), torch.float32, cache_dir=tmp_path)
    with pytest.raises(ModelLoadError, match=r"Cannot load the safety classifier '/nowhere' \(safety.model\)"):
        ImageChecker.load("/nowhere", IMAGE_KEY, "nsfw", torch.device("cpu"), torch.float32, cache_dir=tmp_path)


def test_the_tiny_prompt_classifier(tmp_path):
    prompts = PromptChecker.load("tiny", PROMPT_KEY, "nsfw", torch.device("cpu"), torch.float32, cache_dir=tmp_path)
    assert 0 < prompts.score("a red fox in the snow") < 1


def test_config_refuses_a_model_whose_labels_lack_the_unsafe_one(tiny_model):
    directory = tiny_model("safety")
    assert parse_config({"safety": {"model": str(directory)}}, Path("bot.yaml")).safety.model == str(directory)
    with pytest.raises(ConfigError) as error:
        parse_config({"safety": {"model": str(directory), "unsafe_label": "porn"}}, Path("bot.yaml"))
    [problem] = error.value.problems
    assert "safety: model: its labels (normal, nsfw) do not include 'porn' (safety.unsafe_label)" in problem
    with pytest.raises(ConfigError, match=r"check_uploads needs safety\.model"):
        parse_config({"safety": {"check_uploads": True}}, Path("bot.yaml"))
    with pytest.raises(ConfigError, match=r"safety\.threshold"):
        parse_config({"safety": {"model": "tiny", "threshold": 1.5}}, Path("bot.yaml"))
