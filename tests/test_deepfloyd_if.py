"""Where DeepFloyd IF's stage II comes from: beside a local model, or the Hub id DeepFloyd pairs with stage I."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.families.deepfloyd_if import STAGE_2, stage_2_location


@pytest.mark.parametrize(("stage_1", "stage_2"), [
    ("DeepFloyd/IF-I-XL-v1.0", "DeepFloyd/IF-II-L-v1.0"),
    ("DeepFloyd/IF-I-L-v1.0", "DeepFloyd/IF-II-L-v1.0"),
    ("DeepFloyd/IF-I-M-v1.0", "DeepFloyd/IF-II-M-v1.0"),
])
def test_a_hub_stage_1_names_its_stage_2(stage_1: str, stage_2: str) -> None:
    assert stage_2_location(stage_1) == stage_2


def test_a_local_model_keeps_stage_2_beside_it_or_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=STAGE_2):
        stage_2_location(str(tmp_path))
    copy = tmp_path / "IF-I-XL-v1.0"
    copy.mkdir()
    assert stage_2_location(str(copy)) == "DeepFloyd/IF-II-L-v1.0"  # a local copy of stage I, stage II from the Hub
    (copy / STAGE_2).mkdir()
    (copy / STAGE_2 / "model_index.json").write_text("{}", encoding="utf-8")
    assert stage_2_location(str(copy)) == str(copy / STAGE_2)
