# syntax=docker/dockerfile:1
# Build: docker build -t genbot .      Run: docker compose up -d      Sync commands: docker compose run --rm bot sync
# Reproducible: the base image is named by its exact version and every runtime dependency comes from
# requirements.lock (regenerate it with `pip-compile` after changing pyproject.toml; see README.md).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock pyproject.toml README.md ./
COPY bot ./bot
COPY providers ./providers
COPY cogs ./cogs
# The locked dependencies as wheels, then the bot itself without resolving anything again.
RUN pip wheel --wheel-dir /wheels --requirement requirements.lock \
 && pip wheel --wheel-dir /wheels --no-deps . \
 && cp requirements.lock /wheels/

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.sqlite3 OUTPUT_DIR=/data/outputs HTTP_HOST=0.0.0.0 HTTP_PORT=8080
RUN groupadd --system --gid 10001 bot \
 && useradd --system --uid 10001 --gid bot --home-dir /home/bot --create-home bot \
 && mkdir /data && chown bot:bot /data
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels --requirement /wheels/requirements.lock \
 && pip install --no-index --no-deps /wheels/genbot-*.whl
USER bot
WORKDIR /home/bot
VOLUME ["/data"]
STOPSIGNAL SIGTERM
# /healthz and /metrics (not published by default; see docker-compose.yml).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD python -c \
    "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HTTP_PORT', '8080'), timeout=8)"
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
