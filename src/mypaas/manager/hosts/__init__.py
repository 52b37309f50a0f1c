"""The hosts of a cluster: adding, listing, labelling, draining and removing them (service.py), the
background work of an add or a removal (jobs.py), and how they are listed (listing.py)."""
