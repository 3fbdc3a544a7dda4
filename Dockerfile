# syntax=docker/dockerfile:1
# The production image: web (gunicorn), Celery worker and beat, and the one-shot migrate all run it;
# docker-compose.yml shows the whole shape. Build: `docker build -t em-agent .`

FROM python:3.11-slim AS base
# PYTHONPATH: `pip install .` also puts the project's packages into site-packages, but without the
# templates and translations beside them (BASE_DIR comes from em_agent/settings.py's location). /app
# first on the path makes every process (gunicorn, celery, manage.py) import the code in /app.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app
WORKDIR /app


# Build stage: the virtualenv, the compiled translations and the collected static files. gettext
# (msgfmt) is needed only here, so the runtime image goes without it.
FROM base AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv "$VIRTUAL_ENV"

# The pinned dependencies from pyproject.toml first, in their own layer, so that a code change
# does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY . .
RUN pip install . \
    && rm -rf build ./*.egg-info
RUN python manage.py compilemessages --ignore=.venv
# PRODUCTION=1 requires SECRET_KEY; this one exists only for this command and is not kept in the image.
RUN PRODUCTION=1 SECRET_KEY=build-only-collectstatic-not-a-secret python manage.py collectstatic --noinput


FROM base AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# Code, compiled .mo files and STATIC_ROOT (/app/staticfiles) stay owned by root: the app user only reads them.
COPY --from=build /app /app

USER app
EXPOSE 8000
# gunicorn reads its worker count from WEB_CONCURRENCY: 3 sync workers (2 x CPU + 1 for one core)
# suits a small container; set WEB_CONCURRENCY at run time to change it. Worker heartbeats go to
# /dev/shm (tmpfs, also writable with a read-only root filesystem). No control socket: by default
# gunicorn puts it in $HOME (/app), which the app user cannot write, and logs an error at each start.
ENV WEB_CONCURRENCY=3
CMD ["gunicorn", "em_agent.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--worker-tmp-dir", "/dev/shm", \
     "--no-control-socket", \
     "--access-logfile", "-"]
