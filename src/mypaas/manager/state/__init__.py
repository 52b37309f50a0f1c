"""The desired state store: tables (models.py), opening and migrating the SQLite file (db.py, migrations/),
and reading every app's desired state for the reconcile loop (desired.py)."""
