"""bot.yaml loading: the shipped file is valid, and every kind of mistake is reported on its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from tests.conftest import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_is_valid_with_the_designed_keys_and_defaults():
    config = load_config(REPO / "bot.yaml", environ={})
    assert config.model.id == "stabilityai/sd-turbo"
    assert config.model.device == "auto"
    assert config.discord.api_base == "https://discord.com/api/v10"
    assert config.discord.gateway_url is None
    assert config.discord.guild_ids == []
    assert config.discord.layout == "grid"  # the gallery layout is opt-in
    assert len(config.styles) >= 20
    assert {"photo", "anime", "watercolor", "oil painting", "synthwave", "ukiyo-e", "steampunk", "pixel art"} <= {
        style.name for style in config.styles
    }
    assert config.storage.dir == (REPO / "data").resolve()


def test_the_shipped_config_takes_the_readmes_models_list_with_no_other_edit(tmp_path):
    """A newcomer pastes README's ``models:`` list into the shipped bot.yaml: its model keys left at null describe no
    model, so nothing else needs editing (the models list is refused if one of them is given a value)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("### Several models", 1)[1]
    entries = [line for line in readme.splitlines() if line.startswith("  - {name:")]
    shipped = (REPO / "bot.yaml").read_text(encoding="utf-8")
    assert "\nmodels: []\n" in shipped and len(entries) == 3
    config = load_config(write(tmp_path, shipped.replace("\nmodels: []\n", "\nmodels:\n" + "\n".join(entries) + "\n")),
                         environ={})
    assert [entry.name for entry in config.catalogue] == ["turbo", "sdxl", "kandinsky"]
    assert config.model.id == "stabilityai/sd-turbo" and config.model.steps is None
    with pytest.raises(ConfigError, match=r"model\.steps and models: both describe a model"):
        load_config(write(tmp_path, "model:\n  steps: 4\n  size: null\nmodels:\n" + entries[0] + "\n"), environ={})


def test_every_problem_is_one_line_naming_file_and_key(tmp_path):
    path = write(
        tmp_path,
        """
model:
  device: gpu
  stesp: 4
queue:
  burst: 0
discord:
  guild_ids: [abc]
  layout: carousel
styles:
  - name: broken
    prompt: "no placeholder"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    problems = caught.value.problems
    assert len(problems) == 6
    assert all(line.startswith(f"{path}: ") for line in problems)
    joined = "\n".join(problems)
    assert "model.device: Input should be 'auto', 'cuda', 'mps' or 'cpu' (got 'gpu')" in joined
    assert "model.stesp: unknown key" in joined
    assert "queue.burst:" in joined
    assert "discord.guild_ids.0:" in joined
    assert "discord.layout: Input should be 'grid' or 'gallery' (got 'carousel')" in joined
    assert "styles.0.prompt: must contain {prompt}" in joined


def test_unreadable_files_are_reported_plainly(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_config(write(tmp_path, "model:\n  id: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(write(tmp_path, "- just a list\n"), environ={})


def test_empty_file_means_all_defaults(tmp_path):
    config = load_config(write(tmp_path, ""), environ={})
    assert config.queue.burst == 3
    assert config.storage.dir == (tmp_path / "data").resolve()


def test_the_database_is_the_sqlite_file_in_storage_dir_unless_storage_url_names_one(tmp_path):
    assert load_config(write(tmp_path, ""), environ={}).storage.url is None  # Storage: dir/imagebot.sqlite3
    relative = load_config(write(tmp_path, "storage:\n  url: sqlite:///db/bot.sqlite3\n"), environ={})
    assert relative.storage.url == f"sqlite:///{(tmp_path / 'db' / 'bot.sqlite3').resolve()}"
    postgres = load_config(write(tmp_path, ""), environ={"IMAGEBOT__STORAGE__URL": "postgresql://bot@db/imagebot"})
    assert postgres.storage.url == "postgresql://bot@db/imagebot"
    for wrong in ("mysql://bot@db/imagebot", "sqlite:///", "data/imagebot.sqlite3"):
        with pytest.raises(ConfigError, match=r"storage\.url: .*must be sqlite:///PATH or postgresql://") as refused:
            load_config(write(tmp_path, f"storage:\n  url: {wrong}\n"), environ={})
        assert len(str(refused.value).splitlines()) == 1


def test_environment_overrides_and_token(tmp_path):
    path = write(tmp_path, "discord:\n  token: from-file\n")
    config = load_config(
        path, environ={"IMAGEBOT__SERVER__ENABLED": "true", "IMAGEBOT__SERVER__PORT": "9999", "OTHER": "x"}
    )
    assert config.server.enabled is True and config.server.port == 9999
    with pytest.raises(ConfigError, match=r"\$IMAGEBOT__SERVER__PORT \(overriding .*\): server.port: Input should be"):
        load_config(path, environ={"IMAGEBOT__SERVER__PORT": "many"})
    with pytest.raises(ConfigError, match=r"\$IMAGEBOT__SERVER__PORT__X: server.port is a value, not a section"):
        load_config(path, environ={"IMAGEBOT__SERVER__PORT": "1", "IMAGEBOT__SERVER__PORT__X": "1"})


def test_duplicate_style_names_are_refused(tmp_path):
    path = write(tmp_path, "styles:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(ConfigError, match="style 'a' is defined twice"):
        load_config(path, environ={})


def test_models_list_names_the_default_and_model_keeps_the_shared_settings(tmp_path):
    path = write(
        tmp_path,
        """
model:
  device: cpu
  max_batch: 2
models:
  - {name: turbo, id: stabilityai/sd-turbo, description: Fast drafts}
  - {name: sdxl, id: stabilityai/stable-diffusion-xl-base-1.0, steps: 30, default: true}
engine:
  memory_budget: 20GiB
queue:
  model_switch_delay_s: 12
styles:
  - {name: poster, prompt: "poster of {prompt}", model: sdxl}
""",
    )
    config = load_config(path, environ={})
    assert [entry.name for entry in config.catalogue] == ["sdxl", "turbo"]  # the default first
    assert config.engine.memory_budget == 20 * 2**30 and config.queue.model_switch_delay_s == 12
    assert config.model.max_batch == 2 and config.styles[0].model == "sdxl"


def test_a_lone_model_section_is_a_catalogue_of_one_named_without_the_servers_path(tmp_path):
    (tmp_path / "weights").mkdir()
    config = load_config(write(tmp_path, f"model:\n  id: {tmp_path / 'weights'}\n  steps: 4\n"), environ={})
    [entry] = config.catalogue
    assert entry.name == "weights" and entry.id == str(tmp_path / "weights") and entry.steps == 4 and entry.default


def test_models_mistakes_are_explained(tmp_path):
    path = write(
        tmp_path,
        """
model:
  id: stabilityai/sd-turbo
models:
  - {name: a, id: x}
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [problem] = caught.value.problems
    assert "model.id and models: both describe a model" in problem and "got" not in problem
    for text, expected in [
        ("models:\n  - {name: a, id: x}\n  - {name: a, id: y}\n", "models: a defined twice"),
        ("models:\n  - {name: a, id: x, default: true}\n  - {name: b, id: y, default: true}\n", "only one entry"),
        ("styles:\n  - {name: s, model: nope}\n", "style 's' names the model 'nope', which is not configured"),
        ("engine:\n  memory_budget: lots\n", "must be a size like 24GiB"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text), environ={})
        assert expected in caught.value.problems[0], caught.value.problems


def test_an_ip_adapter_is_configured_per_model_and_must_name_its_weights(tmp_path):
    config = load_config(write(tmp_path, """
models:
  - {name: sd, id: some/sd15, ip_adapter: {id: h94/IP-Adapter, weight_name: ip-adapter_sd15.safetensors}}
  - {name: toy, id: tiny, ip_adapter: {id: tiny}}
  - {name: kandinsky, id: kandinsky-community/kandinsky-2-2-decoder}
"""), environ={})
    sd, toy, kandinsky = config.catalogue
    assert sd.ip_adapter is not None and (sd.ip_adapter.subfolder, sd.ip_adapter.image_encoder) == (
        "models", "image_encoder")
    assert toy.ip_adapter is not None and kandinsky.ip_adapter is None
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "model:\n  ip_adapter: {id: h94/IP-Adapter}\n"), environ={})
    [problem] = caught.value.problems
    assert "model.ip_adapter" in problem and "weight_name is required" in problem
    with pytest.raises(ConfigError, match=r"model\.ip_adapter and models: both describe a model"):
        load_config(write(tmp_path, "model:\n  ip_adapter: {id: tiny}\nmodels:\n  - {name: a, id: tiny}\n"),
                    environ={})


def test_trust_remote_code_is_off_unless_a_model_says_so(tmp_path):
    """A custom pipeline's own code runs only for the model whose entry trusts it (or the lone model: section)."""
    from bot.backends import engine_settings

    entries = "models:\n  - {name: plain, id: tiny}\n  - {name: custom, id: /models/custom, trust_remote_code: true}\n"
    config = load_config(write(tmp_path, entries), environ={})
    assert not engine_settings(config, "plain").trust_remote_code
    assert engine_settings(config, "custom").trust_remote_code
    lone = load_config(write(tmp_path, "model:\n  id: /models/custom\n  trust_remote_code: true\n"), environ={})
    assert engine_settings(lone).trust_remote_code
    with pytest.raises(ConfigError, match=r"model\.trust_remote_code and models: both describe a model"):
        load_config(write(tmp_path, "model:\n  trust_remote_code: true\nmodels:\n  - {name: a, id: tiny}\n"),
                    environ={})


def test_edit_model_names_a_configured_model_that_edits_by_instruction(tmp_path):
    """``edit_model``: a configured model's name, whose pipeline (read from its model_index.json where it is on this
    machine) edits by instruction; a Hub id not downloaded yet can't be told before it loads, so it is taken."""
    for name, pipeline in (("sd", "StableDiffusionPipeline"), ("klein", "Flux2KleinPipeline")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model_index.json").write_text(f'{{"_class_name": "{pipeline}"}}', encoding="utf-8")
    models = (f"models:\n  - {{name: sd, id: {tmp_path / 'sd'}}}\n  - {{name: klein, id: {tmp_path / 'klein'}}}\n"
              "  - {name: hub, id: someone/not-downloaded}\n")
    assert load_config(write(tmp_path, models + "edit_model: klein\n"), environ={}).edit_model == "klein"
    assert load_config(write(tmp_path, models + "edit_model: hub\n"), environ={}).edit_model == "hub"
    assert load_config(write(tmp_path, models), environ={}).edit_model is None
    for edit_model, expected in (
        ("nope", "edit_model: 'nope' is not a configured model (models: sd, klein, hub)"),
        ("sd", "edit_model: the model 'sd' (StableDiffusionPipeline) can't edit a picture by instruction"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, models + f"edit_model: {edit_model}\n"), environ={})
        [problem] = caught.value.problems
        assert expected in problem and "\n" not in problem, problem


def test_loras_are_listed_once_and_styles_name_them_as_people_do(tmp_path):
    config = load_config(write(tmp_path, """
loras:
  - {name: ink, id: someone/ink-lora, weight: 0.8, triggers: [inkwash], families: [sd, sdxl]}
  - {name: film, id: ./film.safetensors, families: [flux], nsfw: true}
styles:
  - {name: inked, prompt: "{prompt}", loras: "ink:0.5, film"}
"""), environ={})
    assert [lora.name for lora in config.loras] == ["ink", "film"] and config.loras[0].triggers == ["inkwash"]
    for text, expected in [
        ("loras:\n  - {name: a, id: x, families: [sd]}\n  - {name: a, id: y, families: [sd]}\n",
         "loras: a defined twice"),
        ("loras:\n  - {name: a, id: x}\n", "loras.0.families: is required"),
        ("loras:\n  - {name: a, id: x, families: [sd], weight: 5}\n", "loras.0.weight: Input should be less than"),
        ("loras:\n  - {name: 'has space', id: x, families: [sd]}\n", "loras.0.name: String should match pattern"),
        ("loras:\n  - {name: a, id: x, families: [sd]}\nstyles:\n  - {name: s, loras: 'b:1'}\n",
         "styles: 's': loras: There is no LoRA called 'b'; choose from a."),
        ("styles:\n  - {name: s, lora: some/file.safetensors}\n", "lora and lora_scale are gone"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text), environ={})
        [problem] = caught.value.problems
        assert expected in problem and "\n" not in problem, caught.value.problems


def test_components_name_each_part_and_where_it_loads_from(tmp_path):
    """HiDream's Llama comes from another repository: each model entry names its own parts, and a bad key or an
    empty source is one line naming it."""
    from bot.backends import engine_settings

    llama = "meta-llama/Meta-Llama-3.1-8B-Instruct"
    entries = (f"models:\n  - {{name: plain, id: tiny}}\n  - {{name: hidream, id: HiDream-ai/HiDream-I1-Dev, "
               f"components: {{text_encoder_4: {llama}, tokenizer_4: {llama}}}}}\n")
    config = load_config(write(tmp_path, entries), environ={})
    assert engine_settings(config, "plain").components is None
    assert engine_settings(config, "hidream").components == {"text_encoder_4": llama, "tokenizer_4": llama}
    lone = load_config(write(tmp_path, f"model:\n  id: x\n  components: {{text_encoder_4: {llama}}}\n"), environ={})
    assert engine_settings(lone).components == {"text_encoder_4": llama}
    with pytest.raises(ConfigError, match=r"model\.components\.Text-Encoder"):
        load_config(write(tmp_path, "model:\n  components: {Text-Encoder: x}\n"), environ={})
    with pytest.raises(ConfigError, match=r"models\.0\.components\.tokenizer_4"):
        load_config(write(tmp_path, "models:\n  - {name: a, id: x, components: {tokenizer_4: ''}}\n"), environ={})
