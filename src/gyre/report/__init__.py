"""What became of a job, for people and programs: the report model and its text, the static
HTML page, and the report as an xarray dataset.

Runs in the driver at the end of a job (and wherever a report is read). Imports the core
modules, ``workspace`` (paths, atomic writes), ``adaptive`` (lineage) and ``watch`` (the board
and its colours, which the static page shares with the live one).
"""
