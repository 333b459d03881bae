"""The cluster profile on this machine: PostgreSQL, Redis, Airflow with CeleryExecutor, Celery workers.

``up`` initialises PostgreSQL (Debian's ``postgresql`` package) under ``$PIPELINE_CLUSTER_DIR`` with one
database for Airflow's metadata and one for the DuckLake catalog, starts Redis as Celery's broker, the
four Airflow components (through ``ecompipe.local_airflow``, with the cluster's settings in the
environment) and ``CLUSTER_WORKERS`` Celery workers (``w1@host``, ``w2@host``, ...). Everything listens
on 127.0.0.1 only. Secrets (database and Redis passwords, Airflow's JWT secret, API secret key and
Fernet key) are generated once per install into ``$PIPELINE_CLUSTER_DIR/secrets`` (mode 0600).

``down`` stops the workers, Airflow, Redis and PostgreSQL, then looks through /proc for any process of
this cluster left behind and ends it. Every process runs in its own process group (as in
``local_airflow``), so a stop ends it and everything it spawned.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ecompipe import local_airflow
from ecompipe.core import lake
from ecompipe.core.processes import end_groups, group_alive, supervised
from ecompipe.local_airflow import AirflowError, _airflow_cli, _pid_file, _port_free, service_log
from ecompipe.settings import DEFAULT_CLUSTER_PORT_BASE, get_settings, pipeline_env

META_DB = "airflow_meta"
PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
STOP_TIMEOUT = 30.0


class ClusterError(AirflowError):
    """The cluster cannot do what was asked; the message says what to do (shown without a traceback)."""


def _dir() -> Path:
    return get_settings().cluster_dir


# Where each part lives under the cluster folder (PostgreSQL's own files belong to the postgres user).
LAYOUT = {
    "secrets": "secrets",
    "pg": "postgres",
    "pg_data": "postgres/data",
    "pg_run": "postgres/run",
    "pg_log": "postgres/postgres.log",
    "redis_conf": "secrets/redis.conf",
}


def _path(part: str) -> Path:
    return _dir() / LAYOUT[part]


def _say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------------------------------
# Secrets


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (created 0600, never world-readable even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def cluster_secrets() -> dict[str, str]:
    """This install's secrets, generated on first use into secrets/secrets.json (0600)."""
    path = _path("secrets") / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "pg_password": secrets.token_hex(24),
        "redis_password": secrets.token_hex(24),
        "jwt_secret": secrets.token_urlsafe(48),
        "api_secret_key": secrets.token_urlsafe(48),
        "fernet_key": Fernet.generate_key().decode(),
    }
    _write_private(path, json.dumps(values, indent=2))
    return values


def _write_client_files(values: dict[str, str]) -> None:
    """libpq's password file and Redis's config (its password must not be on a command line)."""
    settings = get_settings()
    _write_private(
        settings.pgpass_file,
        f"{settings.lake_pg_host}:{settings.lake_pg_port}:*:{settings.lake_pg_user}:{values['pg_password']}\n",
    )
    _write_private(
        _path("redis_conf"),
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {settings.cluster_redis_port}",
                "protected-mode yes",
                'save ""',
                "appendonly no",
                "daemonize no",
                f"dir {_path('secrets')}",
                f"requirepass {values['redis_password']}",
            ]
        )
        + "\n",
    )


# --------------------------------------------------------------------------------------------------
# The environment every component runs with


def cluster_env() -> dict[str, str]:
    """The settings of the cluster profile: paths, ports, Airflow's executor, database, broker, secrets."""
    settings = get_settings()
    values = cluster_secrets()
    pg = f"{settings.lake_pg_user}@{settings.lake_pg_host}:{settings.lake_pg_port}/{META_DB}"
    env = {
        **pipeline_env(),
        "PIPELINE_PROFILE": "cluster",
        "PIPELINE_CLUSTER_DIR": str(settings.cluster_dir),
        "PGPASSFILE": str(settings.pgpass_file),
        "AIRFLOW_HOME": str(settings.cluster_dir / "airflow_home"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg}",
        "AIRFLOW__CELERY__BROKER_URL": (
            f"redis://:{values['redis_password']}@127.0.0.1:{settings.cluster_redis_port}/0"
        ),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.cluster_worker_concurrency),
        # Identical in every component, or tokens one issues are refused by another (apache/airflow#59373).
        "AIRFLOW__API_AUTH__JWT_SECRET": values["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": values["api_secret_key"],
        "AIRFLOW__CORE__FERNET_KEY": values["fernet_key"],
        # A worker that dies (machine lost, SIGKILL) leaves its tasks running in the metadata: they are
        # failed, and retried, once their heartbeat is this old (Airflow's default is 5 minutes).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    }
    # The cluster's Airflow listens apart from the embedded one, unless the port is chosen explicitly.
    ports = {
        "AIRFLOW_API_PORT": DEFAULT_CLUSTER_PORT_BASE + 2,
        "AIRFLOW_TRIGGER_LOG_PORT": DEFAULT_CLUSTER_PORT_BASE + 3,
    }
    for name, port in ports.items():
        env[name] = os.environ.get(name) or str(port)
    for key in [key for key in env if key.startswith("AIRFLOW__") and key in os.environ]:
        env[key] = os.environ[key]  # an explicit Airflow setting of the user's wins, as in local_airflow
    return env


def activate() -> None:
    """Put the cluster's settings into this process's environment: local_airflow then drives the
    cluster's Airflow (its home, port, executor) with everything it already knows how to do."""
    _write_client_files(cluster_secrets())
    os.environ.update(cluster_env())


# --------------------------------------------------------------------------------------------------
# PostgreSQL


def _pg_bin(name: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise ClusterError(f"PostgreSQL's {name} is not installed: make system-packages (Debian: postgresql).")
    return found


def _pg_os_user() -> str:
    """initdb refuses root: as root the server runs as the `postgres` user of the Debian package."""
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _as_pg_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if check and completed.returncode != 0:
        detail = (completed.stderr or completed.stdout)[-1500:]
        raise ClusterError(f"{what} failed (exit {completed.returncode}): {detail}")
    return completed


def _check_reachable_by_pg_user(folder: Path) -> None:
    """The `postgres` user must be able to reach the data folder through every parent directory."""
    if os.geteuid() != 0:
        return
    if _run(_as_pg_user(["test", "-x", str(folder)]), "probe", check=False).returncode != 0:
        raise ClusterError(
            f"The postgres user cannot reach {folder} (a parent directory is not traversable): choose another "
            "PIPELINE_CLUSTER_DIR, or chmod o+x its parents."
        )


def _pg_init(password: str) -> None:
    data = _path("pg_data")
    if (data / "PG_VERSION").exists():
        return
    _say(f"  initialising PostgreSQL in {data}")
    for folder in (_path("pg"), _path("pg_run")):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for folder in (_path("pg"), _path("pg_run")):
            os.chown(folder, account.pw_uid, account.pw_gid)
    _check_reachable_by_pg_user(_path("pg"))
    _run(
        _as_pg_user(
            [_pg_bin("initdb"), "-D", str(data), "-U", _pg_os_user(), "-E", "UTF8", "--locale=C.UTF-8"]
            + ["--auth-local=peer", "--auth-host=scram-sha-256"]
        ),
        "initdb",
    )
    _pg_start()
    settings = get_settings()
    # Values are generated hex / validated identifiers (Settings.lake_pg_user, lake_pg_db).
    statements = [
        f"create role {settings.lake_pg_user} login password '{password}'",
        f"create database {META_DB} owner {settings.lake_pg_user}",
        f"create database {settings.lake_pg_db} owner {settings.lake_pg_user}",
    ]
    for statement in statements:
        _psql(statement)


def _psql(statement: str) -> None:
    settings = get_settings()
    _run(
        _as_pg_user(
            [_pg_bin("psql"), "-h", str(_path("pg_run")), "-p", str(settings.lake_pg_port), "-U", _pg_os_user()]
            + ["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", statement]
        ),
        f"psql ({statement.split(' password ')[0]})",
    )


def pg_running() -> bool:
    if not (_path("pg_data") / "PG_VERSION").exists():
        return False
    probe = _run(_as_pg_user([_pg_bin("pg_ctl"), "-D", str(_path("pg_data")), "status"]), "status", check=False)
    return probe.returncode == 0


def _pg_start() -> None:
    if pg_running():
        return
    if re.search(r"[\s'\"$`\\;&|<>]", str(_dir())):
        # pg_ctl hands its -o options to a shell: a path with such characters would be split or run.
        raise ClusterError(f"PIPELINE_CLUSTER_DIR {_dir()} has spaces or shell characters: choose a plain path.")
    port = get_settings().lake_pg_port
    if not _port_free(port):
        raise ClusterError(f"Port {port} (PostgreSQL) is in use by another program: choose one with LAKE_PG_PORT=NNNNN")
    options = f"-p {port} -k {_path('pg_run')} -c listen_addresses=127.0.0.1 -c max_connections=300"
    log = _path("pg_log")
    command = [_pg_bin("pg_ctl"), "-D", str(_path("pg_data")), "-l", str(log), "-w", "-t", "60", "-o", options, "start"]
    _run(_as_pg_user(command), f"Starting PostgreSQL (log: {log})")


def pg_restart() -> None:
    """Restart PostgreSQL (fast: open sessions are cut); the pipeline's clients reconnect."""
    stop = [_pg_bin("pg_ctl"), "-D", str(_path("pg_data")), "-m", "fast", "-w", "stop"]
    _run(_as_pg_user(stop), "Stopping PostgreSQL")
    _pg_start()


def _pg_stop() -> None:
    if pg_running():
        command = [_pg_bin("pg_ctl"), "-D", str(_path("pg_data")), "-m", "fast", "-w", "-t", "60", "stop"]
        _run(_as_pg_user(command), "Stopping PostgreSQL")


# --------------------------------------------------------------------------------------------------
# Redis and the Celery workers: process groups with pid files in Airflow's run folder (local_airflow's)


def _spawn(name: str, command: list[str], env: dict[str, str]) -> int:
    log_path = service_log(name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            supervised(name, command),  # started again if it exits on its own
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it ends all its children
            cwd=str(_dir()),
        )
    _pid_file(name).write_text(str(process.pid))
    _say(f"  started {name:<13} pid {process.pid}, log {log_path}")
    return process.pid


def _pid(name: str) -> int:
    path = _pid_file(name)
    return int(path.read_text().strip() or 0) if path.exists() else 0


def _running(name: str) -> int:
    pid = _pid(name)
    return pid if pid and group_alive(pid) else 0


def worker_names() -> list[str]:
    return [f"worker-{index}" for index in range(1, get_settings().cluster_workers + 1)]


def _start_redis() -> None:
    if _running("redis"):
        return
    port = get_settings().cluster_redis_port
    if not _port_free(port):
        raise ClusterError(f"Port {port} (Redis) is in use by another program: choose one with CLUSTER_REDIS_PORT=N")
    _spawn("redis", [shutil.which("redis-server") or "redis-server", str(_path("redis_conf"))], dict(os.environ))
    deadline = time.monotonic() + 20
    while _port_free(port):  # listening once the port is taken
        if time.monotonic() > deadline or not _running("redis"):
            raise ClusterError(f"Redis did not start: see {service_log('redis')}")
        time.sleep(0.2)


def start_worker(name: str) -> None:
    """Start one worker (``worker-N``: Celery name ``wN@host``, recorded on its task instances)."""
    short = f"w{worker_names().index(name) + 1}"
    env = {
        **local_airflow.airflow_env(),
        "CLUSTER_WORKER_NAME": short,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ecompipe.airflow.hostname.worker_hostname",
    }
    command = [_airflow_cli(), "celery", "worker", "--celery-hostname", f"{short}@%h", "--queues", "default"]
    # --skip-serve-logs: the worker's log server would listen on every interface; logs are on local disk.
    _spawn(name, [*command, "--skip-serve-logs"], env)


def _start_workers() -> None:
    for name in worker_names():
        if not _running(name):
            start_worker(name)


def _stop_group(name: str) -> None:
    end_groups({name: _pid(name)}, STOP_TIMEOUT)
    _pid_file(name).unlink(missing_ok=True)


def kill_worker(name: str) -> int:
    """SIGKILL a worker's whole process group (as if its machine died); returns its pid."""
    pid = _pid(name)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return pid


# --------------------------------------------------------------------------------------------------
# Commands


def _check_tools() -> None:
    missing = [tool for tool in ("redis-server",) if not shutil.which(tool)]
    if not PG_BIN_CANDIDATES and not shutil.which("initdb"):
        missing.append("postgresql")
    if missing:
        raise ClusterError(f"Missing Debian package(s) {', '.join(missing)}: run `make system-packages` as root.")


def up(wait: bool = True) -> None:
    """Start everything (idempotent); prints progress and, at the end, the UI address and login."""
    _check_tools()
    started = time.monotonic()
    _dir().mkdir(parents=True, exist_ok=True)
    os.chmod(_dir(), 0o755)  # the postgres user must traverse it to its data folder
    values = cluster_secrets()
    activate()
    _say(f"Cluster folder: {_dir()}")
    _say(f"[1/5] DuckDB extensions (offline, from the pinned packages) -> {lake.install_extensions()}")
    _say(f"[2/5] PostgreSQL on 127.0.0.1:{get_settings().lake_pg_port}")
    _pg_init(values["pg_password"])
    _pg_start()
    # Create DuckLake's catalog tables now: builds attaching a fresh catalog at once race to create
    # them ("Failed to initialize DuckLake"), and the losers fail before any model runs.
    lake.connect().close()
    _say(f"[3/5] Redis on 127.0.0.1:{get_settings().cluster_redis_port}")
    _start_redis()
    _say("[4/5] Airflow (CeleryExecutor, metadata in PostgreSQL)")
    local_airflow.start(wait=wait)
    _say(f"[5/5] Celery workers: {len(worker_names())}")
    _start_workers()
    _say(f"Cluster up in {time.monotonic() - started:.0f}s.")
    summary()


def summary() -> None:
    settings = get_settings()
    _say(
        f"  UI        {local_airflow.api_url()}  (login: {local_airflow.ADMIN_USER} / "
        f"{local_airflow.admin_password() or 'not generated yet'})\n"
        f"  lake      ducklake:postgres:{lake.libpq_dsn()}  data {settings.lake_data}\n"
        f"  queries   PIPELINE_PROFILE=cluster make sql   stop: make cluster-down"
    )


def status() -> dict[str, int | bool]:
    """Which parts run; printed, and returned (name -> pid, or bool for PostgreSQL)."""
    activate()
    states: dict[str, int | bool] = {"postgres": pg_running(), "redis": _running("redis")}
    airflow = local_airflow.running_components()
    states.update({component: airflow.get(component, 0) for component in local_airflow.COMPONENTS})
    states.update({name: _running(name) for name in worker_names()})
    for name, state in states.items():
        shown = "running" if state is True else (f"running (pid {state})" if state else "stopped")
        _say(f"{name:<14} {shown}")
    if all(states.values()):
        summary()
    elif any(states.values()):
        _say("Partly running: `make cluster-up` starts what is missing, `make cluster-down` stops it all.")
    else:
        _say(f"The cluster is not running (folder {_dir()}): start it with `make cluster-up`.")
    return states


def _ancestors() -> set[int]:
    """This process and its parents (they may carry the cluster's settings in their environment)."""
    chain, pid = set(), os.getpid()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def leftover_processes() -> list[int]:
    """Processes of this cluster still alive: their command line or environment names its folder."""
    marker = str(_dir()).encode()
    found, mine = [], _ancestors()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        try:
            if marker in (proc / "cmdline").read_bytes() or marker in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def down() -> None:
    activate()
    for name in worker_names():
        _stop_group(name)
    local_airflow.stop()
    _stop_group("redis")
    _pg_stop()
    left = leftover_processes()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _say("Cluster stopped" + (f"; ended {len(left)} leftover process(es): {left}" if left else ", nothing left."))


def ensure_up() -> None:
    """For backfill / rerun on the cluster profile: start whatever part is not running."""
    activate()
    parts = [pg_running(), _running("redis"), *[_running(name) for name in worker_names()]]
    if not all(parts) or len(local_airflow.running_components()) < len(local_airflow.COMPONENTS):
        up()


def demo(start: str, end: str) -> int:
    """The demo week through the cluster: backfill with 3 runs at a time on the workers, then pause."""
    up()
    outcome = local_airflow.backfill(start, end, max_active_runs=3, reprocess="completed")
    local_airflow.set_paused(local_airflow.connect(), True)
    _say("The cluster keeps running (make cluster-status); stop it with make cluster-down.")
    return outcome
