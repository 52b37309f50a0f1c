"""The catalog builds machine drivers from driver accounts; the fake one only when tests ask for it."""

from __future__ import annotations

import pytest

from mypaas.errors import InvalidSpec
from mypaas.iaas import catalog
from mypaas.iaas.fake_machines import FakeMachineDriver


def test_the_fake_driver_is_not_offered_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(catalog.FAKE_DRIVERS_ENV, raising=False)
    assert "fake" not in catalog.known_drivers({})
    with pytest.raises(InvalidSpec, match="unknown iaas driver 'fake'"):
        catalog.machine_driver("fake", account="a", options={}, plugins={})


def test_the_fake_driver_when_tests_ask_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(catalog.FAKE_DRIVERS_ENV, "1")
    assert "fake" in catalog.known_drivers({})
    made = catalog.machine_driver("fake", account="acct", options={"url": "fake://c1"}, plugins={})
    assert isinstance(made, FakeMachineDriver) and made.account == "acct"
    options, secret = catalog.option_help("fake", plugins={})
    assert "password" in options and secret == ("password",)


def test_a_driver_that_cannot_create_is_refused_as_a_machine_driver() -> None:
    with pytest.raises(InvalidSpec, match="'ssh' cannot create machines") as caught:
        catalog.machine_driver_class("ssh", plugins={})
    assert caught.value.field == "type"
