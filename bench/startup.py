"""CLI start-up benchmark: `calm-rag --help` and `calm-rag index --list`, this checkout vs an earlier commit.

Both commands only parse flags or list a folder, so their time is almost all imports. Before the layout
change (#13) `import calm_rag` pulled in torch, transformers and LangChain; now the package imports lazily.
The earlier commit is exported with `git archive` into a temporary folder and run with the same Python,
alternating runs so machine load hits both sides alike; the table reports medians and their ratio.

    python bench/startup.py                  # against 98b98f3 (before the layout change), 5 runs each
    python bench/startup.py --before HEAD~3 --runs 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
COMMANDS = {"--help": ["--help"], "index --list": ["index", "--list"]}


def export(commit: str, into: Path) -> Path:
    """The calm_rag package of `commit`, unpacked under `into` (nothing is installed)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "before.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", commit, "calm_rag"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def one_run(source: Path, argv: list[str], workdir: Path) -> tuple[float, list[str]]:
    """Seconds for one command in a fresh interpreter, and the heavy modules it imported."""
    script = ("import sys\nfrom calm_rag.cli import app\n"
              f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
              "print([m for m in ('torch', 'transformers', 'langchain_core') if m in sys.modules], file=sys.stderr)")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True, text=True,
                            env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin",
                                 "CALM_RAG_INDEX_DIR": str(workdir / "indexes")}, check=False)
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(result.stderr.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="98b98f3", help="commit to compare with")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        before = export(args.before, workdir / "before")
        sides = {"before": before, "after": REPO}
        for label, argv in COMMANDS.items():
            times: dict[str, list[float]] = {"before": [], "after": []}
            heavy: dict[str, list[str]] = {}
            for _ in range(args.runs):
                for side, source in sides.items():
                    seconds, loaded = one_run(source, argv, workdir)
                    times[side].append(seconds)
                    heavy[side] = loaded
            before_s, after_s = statistics.median(times["before"]), statistics.median(times["after"])
            rows.append({"command": label, "before_s": round(before_s, 3), "after_s": round(after_s, 3),
                         "speedup": round(before_s / after_s, 2), "heavy_before": heavy["before"],
                         "heavy_after": heavy["after"], "runs": args.runs})
    print(f"{'command':<14} {'before (s)':>10} {'after (s)':>10} {'speed-up':>9}  heavy modules before -> after")
    for row in rows:
        print(f"{row['command']:<14} {row['before_s']:>10.2f} {row['after_s']:>10.2f} {row['speedup']:>8.1f}x  "
              f"{','.join(row['heavy_before']) or '-'} -> {','.join(row['heavy_after']) or '-'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "startup.json"
    out.write_text(json.dumps({"before": args.before, "python": sys.version.split()[0], "rows": rows}, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
