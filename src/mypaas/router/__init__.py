"""The router (the seed's "export service"): Caddy, driven only through its admin API."""
