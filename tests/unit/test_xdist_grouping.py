"""`make test` relies on `--dist loadgroup` (one `waguard serve`, one synth, one moto account per group);
under pytest 9.2.0 with pytest-xdist 3.8.0 the grouping silently stops (xdist issue 1386: the worker's
nodeid suffix no longer takes effect). This runs the pinned pytest on two files of one group and fails
unless every test of the group ran on the same worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEST = """
import os
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("i", range(4))
def test_here(i):
    with open(os.path.join({out!r}, "{name}-%d" % i), "w") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b"):
        (tmp_path / f"test_{name}.py").write_text(TEST.format(out=str(out), name=name))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # xdist alone, loaded below: three interpreters start faster
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "xdist", "-n", "2", "--dist", "loadgroup"),
            *("-p", "no:cacheprovider"),
        ],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {path.read_text() for path in out.iterdir()}
    assert len(list(out.iterdir())) == 8
    assert len(workers) == 1, f"one group ran on {sorted(workers)}: --dist loadgroup groups nothing"
