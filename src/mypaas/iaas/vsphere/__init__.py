"""The ``vsphere`` iaas driver (pyvmomi): driver.py the account and its machines, inventory.py the SDK
converted once, options.py the account's options and a machine's first-boot data."""

from mypaas.iaas.vsphere.driver import VSphereDriver

__all__ = ["VSphereDriver"]
