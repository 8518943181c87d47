"""Real components for integration tests: a Kafka broker and a PostgreSQL server on 127.0.0.1.

These are thin wrappers around ``scripts/kafka/kafka.sh`` and ``scripts/postgres.sh``, so that a
test and a person start the components the same way and a broken setup fails the same way. Every
process is started with ``--owner-pid`` (this process): if the test run is killed before its
teardown, the scripts' watchdogs still stop what it started.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka" / "kafka.sh"
POSTGRES_SCRIPT = REPO_ROOT / "scripts" / "postgres.sh"

# A cold `kafka.sh start` may first fetch the jars from Maven Central (about 25 s).
_SCRIPT_TIMEOUT = 300.0

T = TypeVar("T")


class ServiceError(RuntimeError):
    """A real component could not be started, stopped or reached; the message says why."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.1,
    *,
    message: str | None = None,
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Raises ``TimeoutError`` (with ``message``, or the predicate's name) when ``timeout`` seconds
    pass first. Exceptions from the predicate propagate: it should return a falsy value for
    "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"not true after {timeout:g}s: {what}")
        time.sleep(interval)


def _run_script(
    script: Path, args: list[str], *, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Run one of the project's service scripts and parse its ``key=value`` output lines."""
    command = [str(script), *args]
    full_env = {**os.environ, "HOTLINE_KPI_PYTHON": sys.executable, **(env or {})}
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=_SCRIPT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(
            f"{script.name} {args[0]} did not finish in {_SCRIPT_TIMEOUT:g}s"
        ) from exc
    except OSError as exc:
        raise ServiceError(f"cannot run {script}: {exc}") from exc
    if done.returncode != 0:
        stderr = done.stderr.strip().splitlines()
        # The scripts end with a one-line reason; the lines before it are the log's tail.
        detail = "\n".join(stderr[-40:]) or "(no output)"
        raise ServiceError(f"{script.name} {args[0]} failed (exit {done.returncode}):\n{detail}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@dataclass(frozen=True)
class ScramCredentials:
    """A SCRAM-SHA-256 user on a broker's SASL_PLAINTEXT listener."""

    user: str
    password: str


class KafkaBroker:
    """A single-node Kafka 4.4 broker (KRaft) started by ``scripts/kafka/kafka.sh``.

    ``directory`` holds its config, log (``kafka.log``) and data; it survives ``stop`` so that
    ``restart`` keeps the data and the ports. With ``scram``, a second listener
    (``sasl_bootstrap``) accepts that user with SCRAM-SHA-256.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        scram: ScramCredentials | None = None,
        startup_timeout: float = 90.0,
        stop_with_this_process: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.scram = scram
        self._port = port
        self._startup_timeout = startup_timeout
        self._owner_pid = os.getpid() if stop_with_this_process else None
        self._endpoints: dict[str, str] = {}
        self._admin: KafkaAdminClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Format a new log dir, start the broker and wait until it answers metadata."""
        args = ["start", "--dir", str(self.directory), "--timeout", f"{self._startup_timeout:g}"]
        if self._port is not None:
            args += ["--port", str(self._port)]
        if self._owner_pid is not None:
            args += ["--owner-pid", str(self._owner_pid)]
        env = {}
        if self.scram is not None:
            # The password goes through the environment, not this script's command line.
            args += ["--scram", self.scram.user]
            env["KAFKA_SCRAM_PASSWORD"] = self.scram.password
        try:
            self._endpoints = _run_script(KAFKA_SCRIPT, args, env=env)
        except ServiceError:
            self._stop_quietly()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after 30 s); a stopped broker stays stopped."""
        self._close_admin()
        if (self.directory / "server.properties").exists():
            _run_script(KAFKA_SCRIPT, ["stop", "--dir", str(self.directory)])

    def restart(self) -> None:
        """Stop the broker and start it again on the same data and ports; wait until ready."""
        self._close_admin()
        self._endpoints = _run_script(
            KAFKA_SCRIPT,
            ["restart", "--dir", str(self.directory), "--timeout", f"{self._startup_timeout:g}"],
        )

    def is_running(self) -> bool:
        """Whether the broker process is alive (not whether it answers yet)."""
        done = subprocess.run(
            [str(KAFKA_SCRIPT), "status", "--dir", str(self.directory)],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _stop_quietly(self) -> None:
        try:
            self.stop()
        except ServiceError as exc:
            log.warning("could not stop the broker in %s: %s", self.directory, exc)

    # -- endpoints -------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT`` of the PLAINTEXT listener."""
        return self._endpoint("bootstrap")

    @property
    def sasl_bootstrap(self) -> str:
        """``127.0.0.1:PORT`` of the SASL_PLAINTEXT (SCRAM-SHA-256) listener."""
        if self.scram is None:
            raise ServiceError("this broker was started without scram=: it has no SASL listener")
        return self._endpoint("sasl_bootstrap")

    @property
    def pid(self) -> int:
        """The broker's process id."""
        return int(self._endpoint("pid"))

    @property
    def log_file(self) -> Path:
        """The broker's log (WARN and above), worth reading when a test fails."""
        return self.directory / "kafka.log"

    def _endpoint(self, key: str) -> str:
        try:
            return self._endpoints[key]
        except KeyError:
            raise ServiceError(f"the broker in {self.directory} is not started") from None

    def sasl_config(self, password: str | None = None) -> dict[str, Any]:
        """Keyword arguments for a kafka-python client logging in as the SCRAM user.

        ``password`` overrides the right one (to test a failed login).
        """
        if self.scram is None:
            raise ServiceError("this broker was started without scram=: it has no SASL listener")
        return {
            "bootstrap_servers": self.sasl_bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": self.scram.user,
            "sasl_plain_password": self.scram.password if password is None else password,
        }

    # -- topics ----------------------------------------------------------------------------

    def admin(self) -> KafkaAdminClient:
        """A shared admin client on the PLAINTEXT listener (closed on stop and restart).

        Note: ``KafkaAdminClient.api_versions()`` raises ``ValueError`` against Kafka 4.4 (an
        unknown ApiKey): do not call it.
        """
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id="hotline-kpi-tests",
                bootstrap_timeout_ms=10_000,
                request_timeout_ms=10_000,
                reconnect_backoff_max_ms=1000,
            )
        return self._admin

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        configs: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> str:
        """Create a topic (replication factor 1) and wait until every partition has a leader."""
        spec = {
            name: {
                "num_partitions": partitions,
                "replication_factor": 1,
                "configs": dict(configs or {}),
            }
        }
        self.admin().create_topics(spec, timeout_ms=int(timeout * 1000))
        self.admin().wait_for_topics([name], timeout_ms=int(timeout * 1000))
        return name

    def delete_topic(self, name: str) -> None:
        """Delete a topic; a topic that does not exist is not an error."""
        self.admin().delete_topics([name], raise_errors=False)

    def _close_admin(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            try:
                admin.close()
            except KafkaError as exc:
                log.debug("closing the admin client: %s", exc)


@dataclass(frozen=True)
class ScramBroker:
    """A broker's SASL_PLAINTEXT listener and the SCRAM-SHA-256 user it accepts."""

    broker: KafkaBroker
    bootstrap: str
    user: str
    password: str

    def client_config(self, password: str | None = None) -> dict[str, Any]:
        """Keyword arguments for a kafka-python client (``password`` overrides the right one)."""
        return self.broker.sasl_config(password)


class Postgres:
    """A throw-away PostgreSQL server started by ``scripts/postgres.sh`` (trust auth, no fsync).

    Without ``directory`` it lives in a new world-traversable temporary directory (the server
    runs as the ``postgres`` user when we are root), removed again by ``stop``.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        stop_with_this_process: bool = True,
    ) -> None:
        self._own_directory = directory is None
        self.directory = Path(directory) if directory is not None else None
        self._port = port
        self._owner_pid = os.getpid() if stop_with_this_process else None
        self._endpoints: dict[str, str] = {}

    def start(self) -> Self:
        """Create the cluster if needed, start the server and wait until it accepts connections."""
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="hotline-kpi-postgres-"))
            self.directory.chmod(0o755)
        args = ["start", "--dir", str(self.directory)]
        if self._port is not None:
            args += ["--port", str(self._port)]
        if self._owner_pid is not None:
            args += ["--owner-pid", str(self._owner_pid)]
        try:
            self._endpoints = _run_script(POSTGRES_SCRIPT, args)
        except ServiceError:
            self._remove_own_directory()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the temporary directory if it is ours."""
        if self.directory is None:
            return
        try:
            if (self.directory / "data").exists():
                _run_script(POSTGRES_SCRIPT, ["stop", "--dir", str(self.directory)])
        finally:
            self._remove_own_directory()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres`` (no password: trust auth)."""
        try:
            return self._endpoints["url"]
        except KeyError:
            raise ServiceError("the PostgreSQL server is not started") from None

    def database_url(self, database: str) -> str:
        """The URL of another database on this server."""
        return self.url.rsplit("/", 1)[0] + "/" + database

    def _remove_own_directory(self) -> None:
        if self._own_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
