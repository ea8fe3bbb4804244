"""Running one job: its defaults, the resume plan, the run chains, what runs on a worker for one
(phase, run), fusion of short phases, splitting big runs by event range and merging their
parts, the submission loop, interruption, shared data, seeding and the driver's log file.

The driver process (where ``start_pipeline`` is called) owns everything here except ``worker``,
``worker_log``, ``fusion.execute_chain``, ``merge`` and ``shared``, which run on the workers. Imports the core modules,
``workspace`` and ``execution``; ``adaptive``, ``report``, the front ends and the entry points
build on it.
"""
