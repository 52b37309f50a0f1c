"""The reconcile loop (loop.py) and its planners (plan.py): desired state against what the backend
reports, converged by idempotent steps."""
