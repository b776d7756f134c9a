"""The web server SIGKILLed, master and workers at once, while raters are submitting: after a
restart every acknowledged judgment is in the database exactly as submitted, any judgment that
was in flight is either absent or complete, and the raters carry on where they were.

Runs on the suite's database (the SQLite leg: a WAL file; the PostgreSQL leg: the server)."""

import threading
import time

import httpx
import pytest

from benchmarks.load_server import (
    HOST,
    free_port,
    kill_server,
    prepared,
    start_server,
    stop_server,
    verify,
)
from tests.hardening.live_server import live_config

# a live server on the suite's database: it runs on the PostgreSQL leg too
pytestmark = pytest.mark.database

RATERS = 3
BEFORE_KILL, AFTER_RESTART = 30, 30  # acknowledged judgments before the kill and after


class Rater(threading.Thread):
    """Submits through the htmx form as fast as the server answers; when the server is gone it
    waits and asks its queue for the next item, as a person reloading the page would."""

    def __init__(self, base: str, session: str, study: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.session, self.study, self.stop = base, session, study, stop
        self.attempts: dict[str, list[tuple[str, str]]] = {}  # token -> every (choice, comment)
        self.acknowledged: dict[str, tuple[str, str]] = {}
        self.failures = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, cookies={"sessionid": self.session}) as client:
                self._rate(client)
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error

    def _next(self, client: httpx.Client) -> str | None:
        while not self.stop.is_set():
            try:
                found = client.get(f"/rate/study/{self.study}/next/", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)  # the server is down: wait for it
                continue
            location = found.headers.get("location", "")
            if not location.startswith("/rate/study/"):
                client.get(location, timeout=5)  # the page: sets the CSRF cookie
                return location
            return None  # back to the overview: nothing left
        return None

    def _rate(self, client: httpx.Client) -> None:
        url = self._next(client)
        n = 0
        while url and not self.stop.is_set():
            token = url.rstrip("/").rsplit("/", 1)[-1]
            n += 1
            choice, comment = "ab"[n % 2], f"{token[:10]} attempt {n}"
            self.attempts.setdefault(token, []).append((choice, comment))
            csrf = client.cookies.get("csrftoken", "")
            try:
                response = client.post(
                    url,
                    data={"choice": choice, "comment": comment},
                    headers={"HX-Request": "true", "X-CSRFToken": csrf},
                    timeout=10,
                )
            except httpx.TransportError:
                self.failures += 1
                url = self._next(client)
                continue
            assert response.status_code == 200, response.status_code
            self.acknowledged[token] = (choice, comment)
            url = response.headers.get("HX-Push-Url")


def _wait(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_acknowledged_judgments_survive_a_sigkill_of_the_web_server():
    config = live_config("kill", raters=RATERS, judgments=300, workers=2, threads=2)
    with prepared(config) as (env, setup):
        port = free_port()
        server = start_server(config, env, port)
        stop = threading.Event()
        raters = [
            Rater(f"http://{HOST}:{port}", session, setup["study"], stop)
            for session in setup["sessions"]
        ]
        try:
            for rater in raters:
                rater.start()

            def acknowledged() -> int:
                return sum(len(r.acknowledged) for r in raters)

            _wait(lambda: acknowledged() >= BEFORE_KILL, "judgments before the kill")
            kill_server(server)  # mid-traffic: every rater has a request out or about to be
            at_kill = acknowledged()
            server = start_server(config, env, port)
            _wait(lambda: acknowledged() >= at_kill + AFTER_RESTART, "judgments after restart")
        finally:
            stop.set()
            for rater in raters:
                rater.join(timeout=30)
            stop_server(server)
        for rater in raters:
            assert rater.error is None, rater.error
        assert sum(r.failures for r in raters) >= 1  # the kill did cut requests off

        acked = {t: v for r in raters for t, v in r.acknowledged.items()}
        attempts = {t: v for r in raters for t, v in r.attempts.items()}
        check = verify(env, setup["study"], list(acked), rows=True)

    assert check["lost"] == 0
    assert check["assignments_with_more_than_one"] == 0
    assert check["revisions"] == 0
    assert check.get("integrity", "ok") == "ok"
    rows = {token: (choice, comment) for token, (choice, comment, _) in check["rows"].items()}
    for token, submitted in acked.items():
        assert rows[token] == submitted  # exactly what the server said it stored
    for token, stored in rows.items():
        assert stored in attempts[token]  # in flight at the kill: whole, never half-written
