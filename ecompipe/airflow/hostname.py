"""The hostname a Celery worker of the cluster profile records on the task instances it runs.

Airflow records ``socket.getfqdn()``, the same for every worker of one machine; the cluster's workers
set ``[core] hostname_callable`` to this function and ``CLUSTER_WORKER_NAME`` (w1, w2, ...), so the
metadata says which worker ran each task ("w1@host"), as Celery's own worker names do.
"""

from __future__ import annotations

import socket

from ecompipe.settings import get_settings


def worker_hostname() -> str:
    name = get_settings().cluster_worker_name
    host = socket.getfqdn()
    return f"{name}@{host}" if name else host
