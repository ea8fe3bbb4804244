"""The workspace's state on disk: every path of its layout, atomic writes, the manifest journal,
fingerprints, resume planning, the lock, and status/provenance for people.

Runs in the driver (and, for atomic writes and artifact facts, on the workers). Imports the
core modules (``errors``, ``result``, ``phase``, ``runs``, ``pipeline``) and nothing else of gyre.
"""
