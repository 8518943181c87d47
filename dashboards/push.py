"""``hotline-kpi dashboards push``: create or update every dashboard by uid in a Grafana folder.

It talks to Grafana's HTTP API through ``grafana-client`` (the maintained successor of the
unmaintained ``grafana-api``): ``GET /api/folders/:uid``, ``POST /api/folders`` when the folder
is missing, then ``POST /api/dashboards/db`` with ``overwrite: true`` for each dashboard, so that
pushing twice gives the same result. The token is passed in by the composition root, which reads
it from the environment or a file, never from the command line (SPEC §7); no message contains it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from hotline_kpi.config import GRAFANA_TOKEN_ENV as TOKEN_ENV
from hotline_kpi.config import GRAFANA_TOKEN_FILE_ENV as TOKEN_FILE_ENV
from hotline_kpi.errors import HotlineError, UsageError

FOLDER_TITLE = "热线 10000 Hotline KPI"
PUSH_MESSAGE = "hotline-kpi dashboards push"


class GrafanaError(HotlineError):
    """Grafana refused the push or could not be reached; the message is one line."""


@dataclass(frozen=True)
class PushResult:
    """What Grafana answered for one dashboard."""

    uid: str
    status: str
    url: str
    version: int | None


def _public(url: str) -> str:
    # A URL as it may appear in a message: never with user:password in it.
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


@contextmanager
def _grafana_errors(url: str, action: str) -> Iterator[None]:
    """Turn every failure of one API call into a one-line :class:`GrafanaError`."""
    where = _public(url)
    try:
        yield
    except GrafanaUnauthorizedError:
        raise GrafanaError(
            f"Grafana at {where} rejected the token (401 Unauthorized) while trying to {action}:"
            f" check {TOKEN_ENV} or {TOKEN_FILE_ENV}"
        ) from None
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            raise GrafanaError(
                f"Grafana at {where} answered 404 Not Found while trying to {action}:"
                " check that --grafana-url is Grafana's root URL"
            ) from None
        if exc.status_code == 403:
            raise GrafanaError(
                f"Grafana at {where} denied access (403 Forbidden) while trying to {action}:"
                " the token needs the Editor role on the folder"
            ) from None
        raise GrafanaError(
            f"Grafana at {where} refused to {action}: {_first_line(exc.message)}"
        ) from None
    except GrafanaServerError as exc:
        raise GrafanaError(
            f"Grafana at {where} failed to {action}: {_first_line(exc.message)}"
        ) from None
    except (GrafanaTimeoutError, GrafanaException, niquests.exceptions.RequestException) as exc:
        # Connection refused, DNS failure, TLS failure or timeout: Grafana is not reachable.
        reason = type(exc).__name__ if isinstance(exc, GrafanaTimeoutError) else "no connection"
        raise GrafanaError(f"cannot reach Grafana at {where} ({reason}) to {action}") from None


def _is_not_found(exc: GrafanaClientError) -> bool:
    return bool(exc.status_code == 404)


def ensure_folder(api: GrafanaApi, url: str, folder_uid: str, title: str = FOLDER_TITLE) -> None:
    """Create the folder ``folder_uid`` unless it exists already."""
    folders: Any = api.folder  # grafana-client's element methods carry no annotations
    with _grafana_errors(url, f"look up folder {folder_uid!r}"):
        try:
            folders.get_folder(folder_uid)
            return
        except GrafanaClientError as exc:
            if not _is_not_found(exc):
                raise
    with _grafana_errors(url, f"create folder {folder_uid!r}"):
        folders.create_folder(title, uid=folder_uid)


def push_dashboards(
    grafana_url: str,
    token: str,
    folder_uid: str,
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    timeout: float = 10.0,
) -> list[PushResult]:
    """Create or update every dashboard (by uid) in folder ``folder_uid``; idempotent."""
    if not urlsplit(grafana_url).scheme or not urlsplit(grafana_url).hostname:
        raise UsageError(f"--grafana-url {grafana_url!r} is not an http(s) URL")
    api = GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout)
    ensure_folder(api, grafana_url, folder_uid)
    boards: Any = api.dashboard
    results = []
    for uid, dashboard in dashboards.items():
        body = {
            # id null: Grafana matches the existing dashboard by uid, not by a local id.
            "dashboard": {**dashboard, "uid": uid, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": PUSH_MESSAGE,
        }
        with _grafana_errors(grafana_url, f"save dashboard {uid!r}"):
            answer = boards.update_dashboard(body)
        if not isinstance(answer, dict):
            raise GrafanaError(
                f"Grafana at {_public(grafana_url)} gave an unexpected answer saving {uid!r}"
            )
        version = answer.get("version")
        results.append(
            PushResult(
                uid=str(answer.get("uid", uid)),
                status=str(answer.get("status", "")),
                url=str(answer.get("url", "")),
                version=version if isinstance(version, int) else None,
            )
        )
    return results
