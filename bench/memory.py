"""Resident memory of a process, read from /proc/<pid>/status (Linux): the benchmarks' one reader.

VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across execve, so a worker a benchmark starts would
report its parent's peak whenever that was larger (say, after the parent converted a GGUF).
"""

from __future__ import annotations

from pathlib import Path


def status_mib(field: str, pid: int | str = "self") -> float:
    """One memory field of /proc/<pid>/status (VmHWM, VmRSS, ...) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # the kernel writes kB
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident memory since it started (or since `reset_peak`)."""
    return status_mib("VmHWM", pid)


def reset_peak() -> None:
    """Resets this process's VmHWM to its current RSS (Linux 4.0+), so the next reading is one run's own peak."""
    Path("/proc/self/clear_refs").write_text("5")
