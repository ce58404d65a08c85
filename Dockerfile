# imagebot for a GPU host: docker compose up (see README, "Docker").
# The base image carries Python, CUDA and a CUDA build of PyTorch with its matching torchvision (spandrel, the
# upscaler's loader, needs both), so pip keeps those (the build checks both import). Ray is included so the
# same image runs the bot, a Ray head and Ray GPU workers (docs/scaling.md): client and cluster must match exactly.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/cache/huggingface \
    IMAGEBOT__STORAGE__DIR=/data \
    IMAGEBOT__SERVER__ENABLED=true \
    IMAGEBOT__SERVER__HOST=0.0.0.0 \
    IMAGEBOT__SERVER__PORT=9090

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY models ./models
COPY fakediscord ./fakediscord
COPY playground ./playground
RUN python -c "import torch, torchvision" && pip install ".[ray]" && useradd --create-home --uid 1000 imagebot \
    && mkdir -p /data /cache/huggingface /config && chown -R imagebot /data /cache /config
COPY bot.yaml /config/bot.yaml

USER imagebot
VOLUME ["/data", "/cache/huggingface"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=4).status != 200)"
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "run", "--config", "/config/bot.yaml"]
