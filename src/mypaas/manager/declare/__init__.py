"""The platform as one reviewable file: `mypaas export` writes it (document.py), `mypaas apply` diffs it
against the live platform (plan.py) and applies it through the manager's services (service.py);
kubernetes.py writes an app as Kubernetes manifests instead."""
