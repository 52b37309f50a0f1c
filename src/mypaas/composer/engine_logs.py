"""The docker backend's logs and engine events: an instance's last lines, several instances' logs merged
or followed, and the engine's container events of the platform (composer/docker.py mixes it in)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from threading import Event
from typing import Any

from mypaas.composer.base import LABEL_APP, LABEL_PLATFORM, LABEL_SERVICE
from mypaas.composer.errors import ENGINE_FAILURES
from mypaas.domain import EngineEvent

_NS = 1_000_000_000


class EngineLogs:
    """Logs and events through the engine's API client (``_api``, set by the backend's constructor)."""

    _api: Any  # docker.APIClient

    # -- logs and events ------------------------------------------------------------------------

    def tail(self, instance_id: str, lines: int) -> str:
        try:
            raw = self._api.logs(instance_id, stdout=True, stderr=True, tail=lines)
        except ENGINE_FAILURES:
            return ""
        return bytes(raw).decode("utf-8", "replace")

    def logs(self, instance_ids: list[str], *, tail: int | None, follow: bool, stop: Event) -> Iterator[str]:
        """Lines of several containers, oldest first, each prefixed with its container's name."""
        names = {i: self._name(i) for i in instance_ids}
        if not follow:
            rows: list[tuple[str, str]] = []
            for cid, name in names.items():
                rows.extend(self._read_lines(cid, name, tail))
            rows.sort(key=lambda r: r[0])
            yield from (line for _, line in rows)
            return
        lines: queue.Queue[str] = queue.Queue(maxsize=10_000)
        for cid, name in names.items():
            threading.Thread(target=self._pump, args=(cid, name, tail, lines, stop), daemon=True).start()
        while not stop.is_set():
            with contextlib.suppress(queue.Empty):
                yield lines.get(timeout=0.5)

    def _name(self, cid: str) -> str:
        try:
            return str(self._api.inspect_container(cid)["Name"]).lstrip("/")
        except ENGINE_FAILURES:
            return cid[:12]

    def _read_lines(self, cid: str, name: str, tail: int | None) -> list[tuple[str, str]]:
        try:
            raw = self._api.logs(cid, stdout=True, stderr=True, timestamps=True, tail=_tail(tail))
        except ENGINE_FAILURES:
            return []
        out = []
        for line in bytes(raw).decode("utf-8", "replace").splitlines():
            stamp, _, text = line.partition(" ")
            out.append((stamp, f"{name} | {text}"))
        return out

    def _pump(self, cid: str, name: str, tail: int | None, lines: queue.Queue[str], stop: Event) -> None:
        """Read one container's log stream into ``lines`` until ``stop``: the stream is closed then, so a
        container that prints nothing does not hold this thread for ever."""
        try:
            stream = self._api.logs(cid, stdout=True, stderr=True, stream=True, follow=True, tail=_tail(tail))
        except ENGINE_FAILURES:
            return
        threading.Thread(target=_close_when, args=(stop, stream), daemon=True, name="logs-close").start()
        try:
            for chunk in stream:
                for line in bytes(chunk).decode("utf-8", "replace").splitlines():
                    if not _put(lines, f"{name} | {line}", stop):
                        return
                if stop.is_set():
                    return
        except (*ENGINE_FAILURES, OSError, ValueError, AttributeError):  # closed under it: the follower left
            return

    def watch(
        self,
        platform: str,
        on_event: Callable[[], None],
        stop: Event,
        on_detail: Callable[[EngineEvent], None] | None = None,
    ) -> None:
        """Follow the engine's container events for this platform, reconnecting after errors. Back
        from a lost stream (the engine stopped or restarted), ``on_event`` is called once: what
        changed meanwhile (containers the engine stopped, or restarted as it came back) sent no event."""
        lost = False
        while not stop.is_set():
            try:
                events = self._api.events(
                    decode=True, filters={"type": ["container"], "label": [f"{LABEL_PLATFORM}={platform}"]}
                )
                if lost:
                    lost = False
                    on_event()
                closer = threading.Thread(target=_close_when, args=(stop, events), daemon=True)
                closer.start()
                for event in events:
                    if stop.is_set():
                        break
                    on_event()
                    if on_detail is not None:
                        on_detail(_engine_event(event))
                lost = True  # the stream ended: the engine is stopping or restarting
            except Exception:  # the engine went away: retry until it is back
                lost = True
                stop.wait(1.0)


def _engine_event(event: dict[str, Any]) -> EngineEvent:
    attrs = (event.get("Actor") or {}).get("Attributes") or {}
    code = attrs.get("exitCode")
    return EngineEvent(
        instance_id=str(event.get("id") or (event.get("Actor") or {}).get("ID") or ""),
        action=str(event.get("Action") or event.get("status") or "").split(":")[0],
        app=attrs.get(LABEL_APP, ""),
        service=attrs.get(LABEL_SERVICE, ""),
        name=attrs.get("name", ""),
        exit_code=int(code) if code is not None and str(code).lstrip("-").isdigit() else None,
        at=float(event.get("timeNano") or 0) / _NS or float(event.get("time") or 0),
    )


def _put(lines: queue.Queue[str], line: str, stop: Event) -> bool:
    """Queue ``line`` unless ``stop`` comes first (a reader that left never empties a full queue)."""
    while not stop.is_set():
        try:
            lines.put(line, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


def _tail(tail: int | None) -> int | str:
    """The engine's ``tail``: None is the whole log; 0 is no line at all (then only what comes)."""
    return "all" if tail is None else tail


def _close_when(stop: Event, events: Any) -> None:
    stop.wait()
    with contextlib.suppress(Exception):
        events.close()
