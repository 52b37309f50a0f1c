"""The composer (the seed's "supply containers"): backends that run instances, ``docker`` on one
engine and ``swarm`` on a cluster (base.py has their interface; fake.py, in-memory ones for tests)."""
