"""Fabric 1.x on Python 3 (part of the ``fabric-gateway`` distribution)."""
