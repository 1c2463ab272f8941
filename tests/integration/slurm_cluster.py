"""A real SLURM cluster on localhost for the tests: munged, slurmctld and two ``slurmd -N`` fake nodes.

``slurm_cluster`` (session fixture) installs the Debian packages when they are missing (``apt-get install
slurm-wlm munge``, needs root), writes its own ``/etc/slurm/slurm.conf`` (any existing one is backed up and restored
at the end), starts the daemons it needs and stops exactly the ones it started when the session ends. Both fake nodes
``n1``/``n2`` have ``NodeAddr=127.0.0.1`` and share the filesystem, like nodes of a cluster with a shared FS.

Time: a requeued job may start again after ``cred_expire`` (10 s here; 120 s by default), and a job that
became eligible by the clock (a requeued one, a dependency) waits for the next scheduling pass: every 60 s
(``sched_interval``) or 30 s (``bf_interval``) by default, every second here. A few jobs on two nodes make
each pass trivial.

Use it from a test module with ``from tests.integration.slurm_cluster import slurm_cluster  # noqa: F401``
(or register it in a conftest).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CONF_PATH = Path("/etc/slurm/slurm.conf")
BACKUP_SUFFIX = ".biotune-backup"
NODES = ("n1", "n2")
CPUS_PER_NODE = 2
START_TIMEOUT_S = 60.0
#: The states of a job that has ended (it will not run again unless requeued by hand).
END_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}

SLURM_CONF = f"""\
# Written by biotune's test fixture (tests/integration/slurm_cluster.py); the original is in slurm.conf{BACKUP_SUFFIX}
ClusterName=biotunetest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=30
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=17001 CPUs={CPUS_PER_NODE} RealMemory=8000 State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=17002 CPUs={CPUS_PER_NODE} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP
MaxArraySize=2
"""


def _run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_packages() -> None:
    """Install slurm-wlm and munge with apt when their daemons are missing (root only)."""
    if shutil.which("slurmctld") and shutil.which("slurmd") and Path("/usr/sbin/munged").exists():
        return
    if os.geteuid() != 0:
        pytest.fail(
            "SLURM is not installed and the tests are not root: run "
            "`sudo apt-get install -y slurm-wlm munge` or run the tests as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], env=env)
    _run(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], env=env)


@dataclass
class SlurmCluster:
    """The running test cluster, and what this session started (to stop exactly that)."""

    started_pids: list[int] = field(default_factory=list)
    conf_backup: Path | None = None
    wrote_conf: bool = False

    # ----------------------------------------------------------------------------------------- setup

    def write_conf(self) -> None:
        """Write the 2-node slurm.conf, backing up a foreign one."""
        CONF_PATH.parent.mkdir(parents=True, exist_ok=True)
        if CONF_PATH.exists() and CONF_PATH.read_text() != SLURM_CONF:
            self.conf_backup = CONF_PATH.with_name(CONF_PATH.name + BACKUP_SUFFIX)
            shutil.copy2(CONF_PATH, self.conf_backup)
        tmp = CONF_PATH.with_name(CONF_PATH.name + ".tmp")
        tmp.write_text(SLURM_CONF)
        tmp.replace(CONF_PATH)
        self.wrote_conf = True

    def start_munge(self) -> None:
        """Start munged as the munge user unless it already answers."""
        if _run(["bash", "-c", "munge -n | unmunge"], check=False).returncode == 0:
            return
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
        self._wait(lambda: _run(["bash", "-c", "munge -n | unmunge"], check=False).returncode == 0, "munged")
        pid = _pid_from(Path("/run/munge/munged.pid"))
        if pid:
            self.started_pids.append(pid)

    def start_slurm(self) -> None:
        """Start slurmctld (clean state) and one slurmd per fake node, unless they already run."""
        for d in ("/var/spool/slurmctld", "/var/log/slurm", *(f"/var/spool/slurmd/{n}" for n in NODES)):
            Path(d).mkdir(parents=True, exist_ok=True)
        if not _alive(_pid_from(Path("/run/slurmctld.pid"))):
            _run(["slurmctld", "-c"])
            self._wait(lambda: _alive(_pid_from(Path("/run/slurmctld.pid"))), "slurmctld")
            self.started_pids.append(_pid_from(Path("/run/slurmctld.pid")))  # type: ignore[arg-type]
        for node in NODES:
            pidfile = Path(f"/run/slurmd-{node}.pid")
            if not _alive(_pid_from(pidfile)):
                _run(["slurmd", "-N", node])
                self._wait(lambda p=pidfile: _alive(_pid_from(p)), f"slurmd {node}")
                self.started_pids.append(_pid_from(pidfile))  # type: ignore[arg-type]
        self._wait(self._nodes_idle, "both nodes idle (see /var/log/slurm/)")

    def _nodes_idle(self) -> bool:
        out = _run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False).stdout.split("\n")
        states = dict(line.split() for line in out if line.strip())
        return all(states.get(n) == "idle" for n in NODES)

    @staticmethod
    def _wait(ready, what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.2)
        pytest.fail(f"SLURM test cluster: {what} not ready after {timeout:.0f} s")

    # ----------------------------------------------------------------------------------------- teardown

    def stop(self) -> None:
        """Stop the daemons this session started (newest first) and restore the original slurm.conf."""
        for pid in reversed(self.started_pids):
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in self.started_pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.conf_backup is not None:
            self.conf_backup.replace(CONF_PATH)

    # ----------------------------------------------------------------------------------------- jobs

    @staticmethod
    def job_field(job_id: str, key: str) -> str | None:
        """One field of ``scontrol show job`` (e.g. ``JobState``, ``Restarts``), None once the job is forgotten."""
        out = _run(["scontrol", "-o", "show", "job", job_id], check=False).stdout
        for token in out.split():
            name, _, value = token.partition("=")
            if name == key:
                return value
        return None

    def wait_job_end(self, job_id: str, timeout: float) -> int:
        """Wait until the job has ended; returns its exit code, as ``sbatch --wait`` would.

        ``sbatch --wait`` sleeps 2, 8, then 32 s between its polls (while that is under ``MinJobAge``/2, and
        MinJobAge is 600 s here), so it returned up to 30 s after a job ended; this polls every 0.5 s.
        """
        self.wait_job_state(job_id, END_STATES, timeout)
        exit_code = self.job_field(job_id, "ExitCode")  # "<exit code>:<signal>"
        assert exit_code is not None, f"job {job_id} has no ExitCode"
        return int(exit_code.split(":")[0])

    def wait_job_state(self, job_id: str, states: set[str], timeout: float) -> str:
        """Wait until the job's state is one of ``states``; returns it."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.job_field(job_id, "JobState")
            if state in states:
                return state
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not reach {states} in {timeout:.0f} s (last state {state})")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running 2-node SLURM cluster on localhost (installed and started if needed, stopped at the end)."""
    ensure_packages()
    cluster = SlurmCluster()
    try:
        cluster.write_conf()
        cluster.start_munge()
        cluster.start_slurm()
        yield cluster
    finally:
        cluster.stop()
