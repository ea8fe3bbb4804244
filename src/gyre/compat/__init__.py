"""Adapters that run phases written for other frameworks on gyre.

:mod:`gyre.compat.spyral` runs AT-TPC Spyral's ``PhaseLike`` phases unchanged
(install ``gyre[spyral]``). Nothing here is imported by ``import gyre``.
"""
