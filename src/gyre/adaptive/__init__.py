"""Adaptive child graphs: the requests a phase or a strategy makes, the host that turns them
into child pipelines on the running job, and the lineage tree the report keeps.

``request`` is made on the workers (``ctx.spawn``); the host runs in the driver. Imports the
core modules only.
"""
