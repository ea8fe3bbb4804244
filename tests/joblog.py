"""What a gyre job log must and must not hold, checked the same way for batch jobs, mpiexec and local runs."""

from __future__ import annotations

import re

#: a record of distributed (or tornado, bokeh) in its own format or in gyre's one-line one
DASK_INFO = re.compile(r"(- (distributed|tornado|bokeh)\S* - INFO -)|(INFO (distributed|tornado|bokeh)\S*:)")


def noise(text: str) -> list[str]:
    """The lines of ``text`` that should not be in a job log: distributed INFO records and tracebacks."""
    return [line for line in text.splitlines() if DASK_INFO.search(line) or line.startswith("Traceback")]


def story(text: str) -> dict[str, list[str]]:
    """The lines of a job log that tell the job's story, by kind (each kind may be empty)."""
    lines = text.splitlines()
    return {
        "header": [line for line in lines if re.match(r"gyre: .+, runs [\d,-]+ \(\d+ runs? × \d+ phases?\) on ", line)],
        "dashboard": [line for line in lines if line.startswith("gyre: dask dashboard")],
        "tunnel": [line for line in lines if line.startswith("gyre: from your own machine: ssh -L ")],
        "progress": [line for line in lines if line.startswith("gyre [")],
        "summary": [line for line in lines if line.startswith("gyre report — ")],
        "report": [
            line for line in lines if re.match(r"gyre: report written to \S+report\.json and \S+report\.html$", line)
        ],
    }
