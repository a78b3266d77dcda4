# The app's image: `docker build -t backfill .` (add `--build-arg BAKE_EMBEDDING_MODEL=true` to put
# Chroma's default embedding model, all-MiniLM-L6-v2, inside the image, so a container with
# EMBEDDING=default needs no download when it starts).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with the pinned dependencies and the app, nothing else ------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/backfill
ENV PATH=/opt/backfill/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY handlers ./handlers
COPY blocks ./blocks
COPY scheduler ./scheduler
COPY db ./db
COPY fakeslack ./fakeslack
RUN pip install .
ARG BAKE_EMBEDDING_MODEL=false
# Chroma keeps the model under ~/.cache/chroma; the runtime stage copies it to the app user's home.
RUN mkdir -p /root/.cache/chroma \
 && if [ "$BAKE_EMBEDDING_MODEL" = "true" ]; then \
      python -c "from chromadb.utils.embedding_functions import DefaultEmbeddingFunction as E; E()(['warm up'])"; \
    fi

# -- runtime: the virtualenv, a non-root user, a health check -----------------------------------
FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin backfill \
 && mkdir -p /var/lib/backfill && chown backfill:backfill /var/lib/backfill
COPY --from=build /opt/backfill /opt/backfill
COPY --from=build --chown=backfill:backfill /root/.cache/chroma /home/backfill/.cache/chroma
ENV PATH=/opt/backfill/bin:$PATH PYTHONUNBUFFERED=1 ANONYMIZED_TELEMETRY=False PORT=3000
USER backfill
# SQLite and embedded Chroma (the defaults) live here; mount a volume, or use DATABASE_URL and
# CHROMA_URL (compose.yaml) in production.
WORKDIR /var/lib/backfill
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["python", "-m", "app"]
CMD ["run"]
