"""What became of a job, for people and programs: the report model with its JSON file and its
text, and the static HTML page.

Runs in the driver at the end of a job (and wherever a report is read). Imports the core
modules, ``workspace`` (atomic writes), ``adaptive`` (the lineage tree) and ``watch`` (the board
and its colours, which the static page shares with the live one).
"""
