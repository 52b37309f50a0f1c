"""The API client's time limits and its one message for a missing token (cli/client.py and its calls)."""

TIMEOUT_S = 30.0
UPLOAD_TIMEOUT_S = 600.0
POLL_WAIT_S = 10.0
WAIT_TIMEOUT_S = 3600.0
NO_TOKEN = "no API token: `mypaas login`, set MYPAAS_TOKEN, or run as the user that ran `mypaas up`"  # noqa: S105 - a message, not a secret
