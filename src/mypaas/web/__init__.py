"""The minimal status page served by the manager."""
