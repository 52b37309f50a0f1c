"""IaaS drivers (the seed's "supply host & store"): the machines MyPaas runs engines on."""
