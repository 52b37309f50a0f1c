"""The registry (the seed's "supply images"): a private CNCF Distribution managed by MyPaas, with the
manager as its token issuer, so every host can pull exactly the image a release pinned."""
