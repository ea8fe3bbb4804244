"""The workspace's state on disk: the paths of its layout, atomic writes, the manifest journal
and its fingerprints, the lock, and status/provenance for people.

Runs in the driver (and, for atomic writes and artifact facts, on the workers). Imports the
core modules (``errors``, ``result``, ``runs``, ``phase``) and nothing else of gyre; deciding
what a job reuses from this state is ``job.resume``'s.
"""
