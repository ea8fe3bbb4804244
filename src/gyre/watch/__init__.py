"""Watching a running job: the terminal display, the run board, and the gyre page.

Where each part runs is in its name: ``live``, ``terminal``, ``board`` and ``publisher`` run in
the driver; ``scheduler_plugin`` runs inside the dask scheduler; ``browser_page`` is the
HTML and JavaScript that runs in the user's browser. Imports the core modules and
``execution`` (types only).
"""
