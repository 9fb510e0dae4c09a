"""The vis/ folder of sample grids, and which run wrote each of them (its marker file, ``.run``).

The original writes every run's grids into ./vis/ under the same names, so a second run writes over the first's
sample_0000.jpg, sample_0001.jpg, ... and leaves the rest. The faithful default keeps doing that (same names, same
bytes); besides the grids, the one place that writes them (``GridFolder.save``) keeps ``VIS_DIR/.run``, a JSON file
naming, for each run that wrote grids there, its run directory, when it started writing there, its first TensorBoard
file (which moves with a moved run directory) and which grids are still its own:

    {"runs": [{"run_dir": "/abs/runs/20261206-204708", "started": "2026-12-06 20:47:08",
               "events": "events.out.tfevents.1796590028.host", "grids": ["sample_0000.jpg", ...]}, ...]}

A run starting to write into a folder that holds another run's grids says so on stderr; ``gif`` refuses a folder
of mixed runs and animates one run's grids with ``--run RUN_DIR``. A resumed run continues its own entry. Nothing
here imports TensorFlow.
"""
import json
import os
import re
import sys
import time

from . import cli
from .util import write_whole

MARKER = ".run"
SAMPLE_NAME = re.compile(r"sample_(\d+)\.jpg")


def sample_names(vis_dir):
    """Names of vis_dir's sample_N.jpg in the order N counts (past 9999 the names outgrow %04d)."""
    numbered = [(int(m.group(1)), name) for name in os.listdir(vis_dir) if (m := SAMPLE_NAME.fullmatch(name))]
    return [name for _, name in sorted(numbered)]


def read_marker(vis_dir):
    """The runs the marker names, oldest first; [] when there is none. A damaged marker reads as none: it only
    tells runs apart, and the next grid written replaces it."""
    try:
        with open(os.path.join(vis_dir, MARKER)) as f:
            runs = json.load(f)["runs"]
        return [{"run_dir": str(r["run_dir"]), "started": str(r["started"]), "events": r.get("events"),
                 "grids": list(r["grids"])} for r in runs]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def owners(vis_dir, runs=None):
    """[(run entry, its grids present in vis_dir)] of the runs (default: those the marker names) whose grids
    vis_dir holds, and the grids present that no run is named for (written by the original program or a version
    without the marker)."""
    present = sample_names(vis_dir)
    held, named = [], set()
    for entry in read_marker(vis_dir) if runs is None else runs:
        own = [name for name in present if name in entry["grids"]]
        named.update(own)
        if own:
            held.append((entry, own))
    return held, [name for name in present if name not in named]


def first_events_file(run_dir):
    """The name of the run's first TensorBoard events file (events.out.tfevents.TIME.HOST, written when it started):
    what tells a run apart when its directory has moved. None before it has one."""
    names = [name for name in os.listdir(run_dir) if name.startswith("events.out.tfevents.")]
    return min(names, default=None)  # the same number of digits in every TIME until the year 2286


def describe(entry):
    return f"{entry['run_dir']} (started {entry['started']})"


class GridFolder:
    """The vis folder one run writes its grids into. Made when the run starts its loop: a run (``run_dir``) that
    is not continuing its own grids there (``resuming``) and finds other grids warns once on stderr."""

    def __init__(self, vis_dir, run_dir, resuming):
        self.vis_dir, self.run_dir = vis_dir, os.path.abspath(run_dir)
        self.runs = read_marker(vis_dir)
        events = first_events_file(run_dir)
        # A run directory may have been moved since it wrote its grids: its first TensorBoard file moved with it.
        mine = [e for e in self.runs if e["run_dir"] == self.run_dir or events and e.get("events") == events]
        continuing = resuming and bool(mine)
        if continuing:
            self.entry = mine[-1]
            self.entry["run_dir"] = self.run_dir
        else:
            self.entry = {"run_dir": self.run_dir, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "events": events,
                          "grids": []}
            self.runs.append(self.entry)
        held, unnamed = owners(vis_dir, self.runs)
        # Warned once: a run continuing its grids is told only of runs that wrote there after it started there.
        newer = self.runs[self.runs.index(self.entry) + 1:]
        others = [entry for entry, _ in held if entry is not self.entry and (entry in newer or not continuing)]
        # A resumed run finds the grids it wrote with a version without the marker unnamed: no warning for those.
        if others or (unnamed and not resuming):
            writers = [describe(e) for e in others] + ([f"{len(unnamed)} no run is named for (an older version's "
                                                        f"or the original program's)"] if unnamed else [])
            gif = cli.shell_command(*cli.program("gif"), "--run", self.run_dir, "--out", "progress.gif")
            print(f"warning: {vis_dir} holds grids of another run: {'; '.join(writers)}. This run ({self.run_dir}) "
                  f"writes its grids there too, over those of the same number; --vis-dir keeps runs apart, and "
                  f"this animates this run's alone: {gif}", file=sys.stderr)

    def path(self, number):
        return os.path.join(self.vis_dir, 'sample_%04d.jpg' % number)

    def save(self, write, number):
        """Grid ``number`` written by ``write(path)``, then named this run's in the marker. (A process killed between
        the two leaves the grid unnamed; the run, resumed from its checkpoint before it, writes it again.)"""
        write(self.path(number))
        name = os.path.basename(self.path(number))
        for entry in self.runs:
            if name in entry["grids"]:
                entry["grids"].remove(name)
        self.entry["grids"].append(name)
        self.runs = [e for e in self.runs if e["grids"] or e is self.entry]
        marker = json.dumps({"runs": self.runs}, indent=1) + "\n"
        write_whole(os.path.join(self.vis_dir, MARKER), lambda f: f.write(marker.encode()), read_back=None)
