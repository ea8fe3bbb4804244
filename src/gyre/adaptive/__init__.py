"""Adaptive child graphs on the driver's side: the host that turns child requests (made with
``ctx.spawn`` or by a strategy, see ``gyre.context.ChildRequest``) into child pipelines fed to
the running job, and the lineage tree the report keeps.

Runs in the driver. Imports the core modules, ``execution`` (types) and ``job`` (chains,
the submission loop, shared data, seeding).
"""
