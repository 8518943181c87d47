"""The dashboards uploader against a local server speaking the Grafana HTTP API it uses.

The fake implements the documented behaviour of ``GET /api/folders/:uid`` (200, or 404 when
missing), ``POST /api/folders`` (``{uid, title}`` → the folder) and ``POST /api/dashboards/db``
(``{dashboard, folderUid, overwrite}``; 412 when the uid exists and ``overwrite`` is false),
all behind ``Authorization: Bearer <token>`` (401 otherwise). Anything else is 404.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hotline_kpi.cli import main
from hotline_kpi.config import GRAFANA_TOKEN_ENV as TOKEN_ENV
from hotline_kpi.config import GRAFANA_TOKEN_FILE_ENV as TOKEN_FILE_ENV
from hotline_kpi.config import Settings
from hotline_kpi.config import grafana_token as token_from_environment
from hotline_kpi.dashboards.generate import build_dashboards
from hotline_kpi.dashboards.push import GrafanaError, push_dashboards
from hotline_kpi.errors import HotlineError, UsageError

TOKEN = "glsa_test-secret-token-3f9a"
FOLDER = "hotline-kpi"


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class FakeGrafana:
    """State of the fake Grafana: what it holds and every request it saw."""

    url: str = ""
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def calls(self) -> list[tuple[str, str]]:
        return [(request.method, request.path) for request in self.requests]


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = json.loads(raw) if raw else {}
            authorization = self.headers.get("Authorization")
            state.requests.append(Request(method, self.path, authorization, body))
            if not self.path.startswith("/api/"):
                self._reply(404, {"message": "Not found"})
                return
            if authorization != f"Bearer {TOKEN}":
                self._reply(401, {"message": "invalid API key"})
                return
            if method == "GET" and self.path.startswith("/api/folders/"):
                uid = self.path.removeprefix("/api/folders/")
                if uid in state.folders:
                    self._reply(200, state.folders[uid])
                else:
                    self._reply(404, {"message": "folder not found", "status": "not-found"})
            elif method == "POST" and self.path == "/api/folders":
                uid = body.get("uid") or "generated"
                if uid in state.folders:
                    self._reply(409, {"message": "a folder with the same uid already exists"})
                    return
                folder = {"id": len(state.folders) + 1, "uid": uid, "title": body["title"]}
                state.folders[uid] = folder
                self._reply(200, folder)
            elif method == "POST" and self.path == "/api/dashboards/db":
                self._save_dashboard(body)
            else:
                self._reply(404, {"message": "Not found"})

        def _save_dashboard(self, body: dict[str, Any]) -> None:
            dashboard = body["dashboard"]
            uid = dashboard.get("uid")
            if not uid or not dashboard.get("title"):
                self._reply(400, {"message": "Dashboard title cannot be empty"})
                return
            folder_uid = body.get("folderUid")
            if folder_uid and folder_uid not in state.folders:
                self._reply(400, {"message": "folder not found"})
                return
            previous = state.dashboards.get(uid)
            if previous is not None and not body.get("overwrite"):
                self._reply(412, {"message": "version-mismatch", "status": "version-mismatch"})
                return
            version = 1 if previous is None else previous["version"] + 1
            state.dashboards[uid] = {
                "dashboard": dashboard,
                "folderUid": folder_uid,
                "version": version,
            }
            self._reply(
                200,
                {
                    "id": len(state.dashboards),
                    "uid": uid,
                    "url": f"/d/{uid}/slug",
                    "status": "success",
                    "version": version,
                    "slug": "slug",
                },
            )

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    built: dict[str, dict[str, Any]] = build_dashboards(Settings())
    return built


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_push_creates_the_folder_and_every_dashboard_with_the_bearer_token(
    grafana: FakeGrafana, dashboards: dict[str, dict[str, Any]]
) -> None:
    results = push_dashboards(grafana.url, TOKEN, FOLDER, dashboards)

    assert [r.uid for r in results] == list(dashboards)
    assert {r.status for r in results} == {"success"}
    assert grafana.calls() == [
        ("GET", f"/api/folders/{FOLDER}"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(dashboards),
    ]
    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}
    assert grafana.requests[1].body["uid"] == FOLDER
    for uid, dashboard in dashboards.items():
        saved = grafana.dashboards[uid]
        assert saved["folderUid"] == FOLDER
        assert saved["dashboard"]["uid"] == uid
        assert saved["dashboard"]["title"] == dashboard["title"]
        assert saved["dashboard"]["panels"] == dashboard["panels"]
    bodies = [r.body for r in grafana.requests if r.path == "/api/dashboards/db"]
    assert all(body["overwrite"] is True and body["dashboard"]["id"] is None for body in bodies)


def test_push_twice_updates_the_same_dashboards_and_reuses_the_folder(
    grafana: FakeGrafana, dashboards: dict[str, dict[str, Any]]
) -> None:
    push_dashboards(grafana.url, TOKEN, FOLDER, dashboards)
    results = push_dashboards(grafana.url, TOKEN, FOLDER, dashboards)

    assert [r.version for r in results] == [2] * len(dashboards)
    assert set(grafana.dashboards) == set(dashboards)
    assert grafana.calls().count(("POST", "/api/folders")) == 1
    assert len(grafana.folders) == 1


def test_a_wrong_token_is_one_clear_line_without_the_token(
    grafana: FakeGrafana, dashboards: dict[str, dict[str, Any]]
) -> None:
    with pytest.raises(GrafanaError) as caught:
        push_dashboards(grafana.url, "wrong-token", FOLDER, dashboards)
    message = str(caught.value)
    assert "401" in message and TOKEN_ENV in message and "\n" not in message
    assert "wrong-token" not in message
    assert isinstance(caught.value, HotlineError)
    assert not grafana.dashboards


def test_a_url_that_is_not_grafanas_root_is_a_clear_404(
    grafana: FakeGrafana, dashboards: dict[str, dict[str, Any]]
) -> None:
    with pytest.raises(GrafanaError) as caught:
        push_dashboards(grafana.url + "/not-grafana", TOKEN, FOLDER, dashboards)
    message = str(caught.value)
    assert "404" in message and "--grafana-url" in message and "\n" not in message
    assert not grafana.dashboards


def test_an_unreachable_grafana_is_a_clear_error(dashboards: dict[str, dict[str, Any]]) -> None:
    url = f"http://user:pw@127.0.0.1:{_closed_port()}"
    with pytest.raises(GrafanaError) as caught:
        push_dashboards(url, TOKEN, FOLDER, dashboards, timeout=2)
    message = str(caught.value)
    assert message.startswith("cannot reach Grafana at http://127.0.0.1:")
    assert "pw" not in message and TOKEN not in message and "\n" not in message


def test_token_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert token_from_environment({TOKEN_ENV: TOKEN}) == TOKEN
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    assert token_from_environment({TOKEN_FILE_ENV: str(path)}) == TOKEN
    with pytest.raises(UsageError, match=TOKEN_ENV):
        token_from_environment({})
    with pytest.raises(UsageError, match="cannot read"):
        token_from_environment({TOKEN_FILE_ENV: str(tmp_path / "missing")})


def test_cli_push_reads_the_token_from_the_environment(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    argv = ["dashboards", "push", "--grafana-url", grafana.url, "--folder", FOLDER]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == len(grafana.dashboards) == 4
    assert TOKEN not in out.out + out.err


def test_cli_push_failure_is_exit_1_and_one_line(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "wrong-token")
    assert main(["dashboards", "push", "--grafana-url", grafana.url]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "401" in err and "wrong-token" not in err
