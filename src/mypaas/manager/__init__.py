"""The manager (the seed's "PaaS enabler"): desired state, releases, auth and the reconcile loop."""
