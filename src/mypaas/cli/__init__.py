"""The ``mypaas`` command line: a thin adapter over the REST API."""
