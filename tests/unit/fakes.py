"""Fakes shared by several unit-test modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class WebhookSender:
    """Stands in for monitor.alerts.Webhooks: keeps every payload; confirms delivery unless told not to."""

    def __init__(self, delivers: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.delivers = delivers

    def send(
        self,
        url: str,
        payload: dict[str, Any],
        on_delivered: Callable[[], None] | None = None,
        *,
        allow_private: bool = False,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.sent.append(payload)
        if on_delivered is not None and self.delivers:
            on_delivered()  # the receiver took it
