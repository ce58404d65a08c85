# The two commands a newcomer needs:  `make run`  (set up and start the bot)  and  `make test`  (set up and test).
PYTHON ?= python3
VENV ?= .venv
CONFIG ?= bot.yaml
# torch (and the torchvision built for it: spandrel, the upscaler's loader, needs it) is installed before the project
# so each machine gets the right build: set TORCH_SPEC to pick another one, e.g.
# TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu124" for a specific CUDA build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin

.PHONY: setup setup-dev run playground test lint bench browser clean messages screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/python -m pip install $(TORCH_SPEC)
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# Starts the bot with Discord when a token is set (DISCORD_TOKEN or discord.token), otherwise the local playground.
run: setup
	$(BIN)/python -m bot run --config $(CONFIG) --playground-without-token

playground: setup
	$(BIN)/python -m bot playground --config $(CONFIG)

# After adding or changing a message for people: every catalogue (bot/locales/*.po) gets the new msgids to
# translate and loses the unused ones (README: "Languages").
messages: setup
	$(BIN)/python -m bot.i18n_catalogue update

# Chromium for the browser test of the playground: Debian's package (root only); the test skips, saying why, without it.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) \
		|| echo "note: chromium not installed; the playground browser test will be skipped"; }

# The README's pictures (docs/images/), taken again from the current code by the playground's browser tests.
screenshots: setup-dev browser
	@command -v chromium >/dev/null 2>&1 || { echo "make screenshots needs Chromium (make browser, as root)"; exit 1; }
	IMAGEBOT_SCREENSHOTS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_playground.py \
		-k "in_a_browser or gallery_layout or readme_shows"

lint: setup-dev
	$(BIN)/ruff check .

# Then the tests that compare generated pixels once more on PyTorch's scalar kernels (another kernel path than this
# CPU's): a comparison that holds on one kind of CPU only fails on every machine (README: "Reproducibility").
# Two pytest-xdist workers, each taking whole modules (a module shares one emulator and one bot process): most of a
# test's time is a bot subprocess starting or working while the test waits, which another module fills.
TEST_WORKERS ?= 2
test: setup-dev browser lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
	HF_HUB_OFFLINE=1 ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -q -m pixels -p no:cacheprovider \
		-n $(TEST_WORKERS) --dist loadfile

bench: setup-dev
	HF_HUB_OFFLINE=1 $(BIN)/python bench/engine.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/queue.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/load.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/models.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/results.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/reproducibility.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/uploads.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/safety.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/lora.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/control.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
