"""Running one job: its options, the run chains, what runs on a worker for one (phase, run),
fusion of short phases, the submission loop, interruption, shared data, seeding and log files.

The driver process (where ``start_pipeline`` is called) owns everything here except
``worker`` and ``shared``, which run on the workers. Imports the core modules, ``workspace``,
``execution``, ``adaptive``, ``watch`` and ``report``; nothing imports ``job`` but ``launch``,
``cli`` and the adapters.
"""
