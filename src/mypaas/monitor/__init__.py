"""The monitor (the seed's "monitor & schedule"): instance health that gates rollouts and routing."""
