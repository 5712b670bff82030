# syntax=docker/dockerfile:1
# policybot production image: uvicorn workers, PostgreSQL through DATABASE_URL (compose.yaml).
#   docker build -t policybot .
#   docker run -e DATABASE_URL=postgresql://user:pass@db/policybot -p 8000:8000 policybot
# Migrations run at start (under a PostgreSQL advisory lock) before the workers are spawned.

# --- build: the package and its dependencies in a virtualenv --------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
# The dependencies first, exactly as locked (scripts/lock regenerates requirements.lock from
# pyproject.toml), every file checked against its sha256: the build backend (setuptools) of the lock
# first, then the whole lock without build isolation, so that building the sdist-only packages
# (jieba, zhconv) and policybot itself downloads nothing unchecked.
COPY requirements.lock ./
RUN awk '/^[a-z0-9]/{p=/^setuptools==/} p' requirements.lock > /tmp/build.lock \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/build.lock \
 && /opt/venv/bin/pip install --require-hashes --no-build-isolation -r requirements.lock
COPY pyproject.toml README.md ./
COPY migrations ./migrations
COPY bot ./bot
COPY knowledge ./knowledge
COPY handoff ./handoff
# A regular install of the package alone (its dependencies are in place; nothing else is fetched): the
# wheel carries the packages, the demo data and the Alembic history (migrations/ ships as
# bot.migrations), so the runtime stage needs only the venv.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
# A CJK font for the report charts (matplotlib draws empty boxes without one).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 policybot \
 && useradd --system --uid 10001 --gid policybot --home-dir /data --create-home --shell /usr/sbin/nologin policybot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/opt/matplotlib \
    POLICYBOT_WORKERS=2
# matplotlib's font cache built once at image build (with the CJK font), read-only at run time
RUN mkdir -p /opt/matplotlib \
 && python -c "import matplotlib.font_manager as fm; fm.fontManager.findfont('Noto Sans CJK SC')" \
 && chmod -R a+rX /opt/matplotlib
# /data: the working directory: reports, the degraded-mode spool (POLICYBOT_SPOOL_DIR=spool: writes
# kept while the database is away, replayed when it is back; it must outlive the container) and the
# SQLite file if no DATABASE_URL is given
WORKDIR /data
VOLUME ["/data"]
USER policybot
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
STOPSIGNAL SIGTERM
# exec: policybot (uvicorn) gets SIGTERM directly and shuts down gracefully (timeout_graceful_shutdown)
CMD ["sh", "-c", "exec policybot serve --host 0.0.0.0 --port 8000 --workers \"${POLICYBOT_WORKERS}\""]
