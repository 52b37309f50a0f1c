"""The front door for what users write: compose files (the compose-spec) and single images, read into an
``AppSpec`` (domain.py) that the manager records and the composer runs. Pure: no I/O but the text given."""
