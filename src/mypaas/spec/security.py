"""The ``security_opt`` key: ``no-new-privileges`` (the engine's, on the docker backend), ``label:disable``
(SELinux labelling is the engine's: not applied, as ``z``/``Z`` on volumes) and the ``unconfined``
profiles, which take the container out of the engine's confinement: they need ``allow_privileged``.
A seccomp or AppArmor profile of the host's, or another SELinux label, is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_bool, as_list, as_str

if TYPE_CHECKING:
    from mypaas.spec.services import Context

# the options that lift the engine's confinement (seccomp, AppArmor, masked /proc and /sys paths)
_UNCONFINED = ("seccomp", "apparmor", "systempaths")


def security_opt(value: Any, where: str, context: Context) -> dict[str, Any]:
    options: list[str] = []
    for index, item in enumerate(as_list(value, where)):
        at = f"{where}[{index}]"
        text = as_str(item, at).strip()
        key, sep, val = text.partition("=") if "=" in text else text.partition(":")
        if key == "no-new-privileges":
            # false: the service opts out of the platform's default (spec/hardening.py: an admin setting)
            on = as_bool(val if sep else True, at)
            options.append(f"no-new-privileges={'true' if on else 'false'}")
        elif key == "label" and val == "disable":
            context.warn(at, f"{text}: SELinux labelling is left to the engine's default (not disabled)")
        elif key in _UNCONFINED and val == "unconfined":
            if not context.policy.allow_privileged:
                raise InvalidSpec(
                    f"{at}: {text} takes the container out of the engine's confinement: not allowed "
                    "(admin setting allow_privileged)",
                    field=at,
                )
            options.append(f"{key}=unconfined")
        else:
            raise InvalidSpec(
                f"{at}: {text!r} is not supported (MyPaas takes no-new-privileges, label:disable and, "
                "with the admin setting allow_privileged, seccomp, apparmor or systempaths unconfined)",
                field=at,
            )
    options = list(dict.fromkeys(options))
    applied = [option for option in options if option != "no-new-privileges=false"]
    if applied:
        context.warn(
            where,
            f"{', '.join(applied)}: applied on the docker backend; a Swarm service cannot set it "
            "(the engine's API for Swarm services has no such option): left out there",
        )
    return {"security_opt": options}
