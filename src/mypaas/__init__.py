"""MyPaas: a private PaaS. A manager over a registry, a composer, a monitor and IaaS drivers."""

__version__ = "0.1.0"
