"""Shared fixtures: run files under tmp_path and a real two-worker LocalCluster."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest
import toyphases

cloudpickle.register_pickle_by_value(toyphases)

#: the fault-injection suite's figures: (scenario, lost, recomputed, other facts), printed at the end
FAULT_FIGURES = pytest.StashKey[list[tuple[str, int, int, str]]]()


@pytest.fixture
def fault_figures(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Record a fault scenario's figures: finished results lost, results recomputed unnecessarily."""
    figures = request.config.stash.setdefault(FAULT_FIGURES, [])

    def record(lost: int, recomputed: int, **facts: object) -> None:
        scenario = request.node.name.removeprefix("test_")
        other = ", ".join(f"{k}={v}" for k, v in facts.items())
        figures.append((scenario, lost, recomputed, other))
        print(f"\nfault scenario {scenario}: lost {lost}, recomputed {recomputed}" + (f" ({other})" if other else ""))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    """The fault-injection suite's table: per scenario, finished results lost and recomputed."""
    figures = config.stash.get(FAULT_FIGURES, [])
    if not figures:
        return
    terminalreporter.section("fault injection: finished results lost / recomputed unnecessarily")
    width = max(len(name) for name, *_ in figures)
    for name, lost, recomputed, other in figures:
        terminalreporter.write_line(f"{name:<{width}}  lost {lost}  recomputed {recomputed}  {other}".rstrip())


@pytest.fixture(scope="session")
def client() -> Iterator[object]:
    """A LocalCluster of two single-threaded worker processes, shared by the session."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Run files 1..6 (run 4 absent), of growing sizes."""
    directory = tmp_path / "runs"
    toyphases.make_run_files(directory, [1, 2, 3, 5, 6])
    return directory


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> Iterator[object]:
    """A real one-node Slurm (see ``slurm_cluster``), started once for the session and torn down after it.

    Where it cannot be set up, the tests that use it are skipped with the reason; in CI
    (``CI=true``) that is a failure instead.
    """
    from slurm_cluster import SlurmCluster, SlurmUnavailable, install_packages

    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        install_packages()
        cluster.start()
    except (SlurmUnavailable, OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"could not set up the test Slurm: {exc}")
        pytest.skip(f"no test Slurm: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
