# syntax=docker/dockerfile:1
# Frontdesk gateway image. Build with `docker build -t frontdesk .`; docker-compose.yml runs it
# beside its Redis. Configuration comes from the environment only (see .env.example).

# --- builder: the package and its dependencies in a venv, the gettext catalogs compiled ---------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
# The whole context (trimmed by .dockerignore): pyproject.toml, the packages, locales/.
COPY . .
# Not editable: the runtime stage gets the venv alone, without the source tree.
# The .mo files are build output (.dockerignore keeps a stale local copy out); pybabel comes
# with Babel, a dependency, so it is in the venv already.
RUN pip install . \
 && pybabel compile -d locales -D messages

# --- runtime: the venv and the catalogs, run as an unprivileged user -----------------------------
FROM python:3.11-slim

# A fixed uid, so that file ownership on mounted volumes is predictable.
RUN groupadd --system --gid 10001 frontdesk \
 && useradd --system --uid 10001 --gid frontdesk --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin frontdesk

# Same base image, so the venv's python symlink (/usr/local/bin/python3.11) resolves here too.
COPY --from=builder /opt/venv /opt/venv
# The package is installed into site-packages, away from the repo's locales/: LOCALES_DIR says
# where the catalogs are (bot/i18n.py).
COPY --from=builder /app/locales /app/locales

ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    LOCALES_DIR=/app/locales \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json

WORKDIR /app
# Numeric, so that a runtime (Kubernetes' runAsNonRoot) can verify it is not root without
# reading /etc/passwd; 10001 is the frontdesk user created above.
USER 10001:10001

EXPOSE 8080

# python:3.11-slim has no curl; urllib raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=3)"]

# aiohttp's run_app turns SIGTERM into a graceful stop: the listener closes, then the workers
# drain for up to SHUTDOWN_GRACE_SECONDS.
STOPSIGNAL SIGTERM
CMD ["frontdesk", "serve"]
