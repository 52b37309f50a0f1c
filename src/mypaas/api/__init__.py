"""The REST API (/api/v1): a thin adapter over the manager's services."""
