"""Commands run on a host's own shell to reach the containers of the platform's Swarm tasks there.

The monitor reads those containers' files over the host's connection (monitor/remote.py) and moves an
instance off a host short of memory by stopping its container (monitor/pressure.py); both take their
commands from here, so the engine's names and labels stay behind the composer's interface.
"""

from __future__ import annotations

import re

from mypaas.composer.base import LABEL_PLATFORM

TASK_LABEL = "com.docker.swarm.task.id"  # Swarm labels the container of each task with its id
_TASK_ID = re.compile(r"^[a-z0-9]{25}\Z")

# A shell function: `list_tasks PLATFORM` prints "PID RESTARTS TASK_ID" for each container of one of
# the platform's Swarm tasks on this host (a stopped one with pid 0; one gone meanwhile is left out)
# and returns 3 when the engine does not answer.
_INSPECT = "{{.State.Pid}} {{.RestartCount}} {{index .Config.Labels " + f'"{TASK_LABEL}"' + "}}"
LIST_TASKS = f"""list_tasks() {{
  ids=$(docker ps -q --no-trunc --filter "label={LABEL_PLATFORM}=$1" --filter label={TASK_LABEL}) || return 3
  [ -n "$ids" ] || return 0
  docker inspect --type container --format '{_INSPECT}' $ids 2>/dev/null || :
}}
"""


def stop_task_command(task_id: str, grace_s: int) -> list[str]:
    """Stop the container of Swarm task ``task_id`` on the host it runs on (SIGTERM, then SIGKILL
    after ``grace_s``); Swarm then starts a replacement where it may."""
    if not _TASK_ID.match(task_id):
        raise ValueError(f"not a Swarm task id: {task_id!r}")
    found = f"docker ps -q --filter label={TASK_LABEL}={task_id}"
    return ["sh", "-c", f'ids=$({found}); [ -n "$ids" ] && docker stop --time {int(grace_s)} $ids']
