"""The composer (the seed's "supply containers"): backends that run instances; ``docker`` for one host."""
