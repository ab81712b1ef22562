"""gunicorn settings: `gunicorn gateway_project.asgi:application -c gunicorn.conf.py`.

Several uvicorn worker processes share one PROMETHEUS_MULTIPROC_DIR so /metrics adds up what all
of them recorded. The directory is emptied when the server starts (stale files from a previous
run would double counts) and a dead worker's live gauges are dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"  # noqa: S104  (inside a container or PaaS dyno)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gateway_project.worker.GatewayUvicornWorker"  # uvicorn, one write per turn
graceful_timeout = 30
timeout = 180  # long streamed completions are normal
keepalive = 75  # longer than typical load balancer idle timeouts
accesslog = None  # the gateway writes its own JSON line per request
errorlog = "-"

# Set before any worker imports prometheus_client, so every process writes to the shared files.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "gateway-prometheus")
)


def on_starting(server) -> None:
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# gunicorn's own lines (start, worker boot and exit) in the same JSON shape as the gateway's.
if os.environ.get("LOG_FORMAT", "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "analytics.logs.JsonFormatter"}},
        "handlers": {
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["error_console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False}
        },
    }
