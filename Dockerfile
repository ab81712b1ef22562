# LLM Gateway: one image for the api, the Celery worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin gateway

# psycopg[binary] ships its own libpq: no compiler or system libraries needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=gateway:gateway . .
# Static files are baked into the image (WhiteNoise serves them); no database needed for this.
RUN DEBUG=0 SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && chown gateway:gateway "$PROMETHEUS_MULTIPROC_DIR"

USER gateway
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"

# gunicorn.conf.py: uvicorn workers, WEB_CONCURRENCY processes, multiprocess metrics.
CMD ["gunicorn", "gateway_project.asgi:application", "-c", "gunicorn.conf.py"]
