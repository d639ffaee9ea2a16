"""Which records and job files were changed by hand after the run's index was written.

A reader of a current index (``quark_cli.run_index``) reads these from the files all the same. The
check is one ``stat`` a file: 200,000 at 100,000 stacks, half a second of system time, so on a large
run it runs in processes of its own (``quark_cli.edit_scan``) while the command parses the index.

``IndexEdits`` is a part of ``quark_cli.state.RunDir`` (which sets the attributes it uses).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from quark_cli import edit_scan
from quark_cli.keys import job_key_of, stack_of
from quark_cli.run_index import DIGEST_FILE, INDEX_FILE, JOBS_LISTED, OPEN_JOBS_FILE

#: An index and open jobs this large together (2,000 to 3,000 stacks) have the hand-edit scan run
#: beside the command (``IndexEdits.start_edit_scan``); a smaller run's takes less than the 15 ms a
#: process takes to start.
SCAN_APART_BYTES = 1 << 20
#: How far (ns) the clock that stamps files' times may lag the clock a process reads: a kernel tick,
#: 1-10 ms. A name added or removed this long after a listing began moves the folder's time past
#: the time read before it.
STAMP_TICK_NS = 20_000_000


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class IndexEdits:
    """The hand-edit part of ``RunDir``: the files changed since the index, scanned here or beside."""

    path: Path
    jobs_dir: Path
    flat_jobs: bool
    records_dir: Path
    _edit_scan: tuple[int, list[subprocess.Popen[bytes]]] | None
    _digests: Callable[[], dict[str, str]]

    def start_edit_scan(self) -> None:
        """Begin ``changed_since_index``'s scan in processes of their own (``quark_cli.edit_scan``:
        one for the records and one for the job files where the machine has more than two cores,
        else one for both) if the run is large (its index files over
        ``SCAN_APART_BYTES``), so that they run while this one parses the index. Nothing if the run
        has no index or its jobs are not flat files, or if such a scan runs already for this index."""
        try:
            size = os.stat(self.path / INDEX_FILE).st_size + os.stat(self.path / OPEN_JOBS_FILE).st_size
            written = os.stat(self.path / DIGEST_FILE).st_ctime_ns
        except OSError:
            self.drop_edit_scan()
            return
        if self._edit_scan is not None and self._edit_scan[0] == written:
            return
        self.drop_edit_scan()
        if size < SCAN_APART_BYTES or not self.flat_jobs or not sys.executable:
            return
        processes = []
        listed = self._listed()
        records, jobs = os.fspath(self.records_dir), os.fspath(self.jobs_dir)
        # a process a folder where a core is left for each beside this one; else one for both: on two
        # cores, three busy processes slowed this one's parse more than a second scanner gained
        groups = ([records, ""], ["", jobs]) if _cores() > 2 else ([records, jobs],)
        for folders in groups:
            try:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-I",
                            "-S",
                            edit_scan.__file__,
                            *folders,
                            str(written),
                            str(-1 if listed is None else listed),
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                    )
                )
            except OSError:  # no process to be had: the scan is done in this one
                break
        self._edit_scan = (written, processes)
        if len(processes) < len(groups):
            self.drop_edit_scan()

    def drop_edit_scan(self) -> None:
        """Stop a scan that ``start_edit_scan`` began and nobody will ask for."""
        if self._edit_scan is not None:
            processes = self._edit_scan[1]
            self._edit_scan = None
            for process in processes:
                process.kill()
                process.communicate()

    def _scanned(self, written: int) -> tuple[list[str], list[str] | None, list[str]]:
        """``edit_scan.scan`` of the records and job files after ``written`` (ns): the answer of the
        processes ``start_edit_scan`` began for the same index, or of a scan here."""
        if self._edit_scan is not None:
            after, processes = self._edit_scan
            self._edit_scan = None
            answers = [process.communicate()[0] for process in processes]
            if after == written and all(process.returncode == 0 for process in processes):
                try:
                    parts = [edit_scan.decode(answer) for answer in answers]
                except ValueError:
                    pass
                else:  # a process scanned the records, the job files, or both
                    listings = [job_files for _, job_files, _ in parts]
                    return (
                        [name for records, _, _ in parts for name in records],
                        None if None in listings else [name for listing in listings for name in listing or ()],
                        [name for _, _, jobs in parts for name in jobs],
                    )
        return edit_scan.scan(os.fspath(self.records_dir), os.fspath(self.jobs_dir), written, self._listed())

    def _listed(self) -> int | None:
        """The job files' folder's change time (ns) at which the last command to write the index saw
        every job file it indexed there (``vouch_job_names``), or None."""
        listed = self._digests().get(JOBS_LISTED, "")
        return int(listed) if listed.isdigit() else None

    def vouch_job_names(self, job_keys: Iterable[str]) -> str | None:
        """For the digests (``JOBS_LISTED``): the job files' folder's change time (ns, as text) at
        which every job file of ``job_keys`` (the index being written names them) is there, so that
        the next command need not list the folder while its time stays the same (``edit_scan``).

        The time the last command vouched for, if the folder still has it; else the time now, once a
        listing begun a kernel tick (``STAMP_TICK_NS``) after the change it stamps finds every file
        (a wait of up to 20 ms, in a command that added or removed job files). None when it cannot
        say: job files in folders of their own, one missing, or a file system whose times are whole
        seconds (a later change could keep the same time)."""
        if not self.flat_jobs:
            return None
        try:
            now = os.stat(self.jobs_dir).st_ctime_ns
        except OSError:
            return None
        if now % 1_000_000_000 == 0:
            return None
        if now == self._listed():  # no name added or removed since the last command saw them all
            return str(now)
        wait = now + STAMP_TICK_NS - time.time_ns()
        if wait > 0:
            time.sleep(min(wait, STAMP_TICK_NS) / 1e9)
        try:
            names = set(os.listdir(self.jobs_dir))
        except OSError:
            return None
        return str(now) if all(f"{key}.json" in names for key in job_keys) else None

    def changed_since_index(self, job_keys: Collection[str]) -> set[str]:
        """Stacks whose record or a job's file changed after the index was written (by hand): what
        a reader of a current index reads from the files all the same. ``job_keys``: every job the
        index names (a job file missing is a change too). One stat a file."""
        # when the index was written, or its changes (the digests come last); a file's change time
        # cannot be set back (cp -p, touch)
        written = os.stat(self.path / DIGEST_FILE).st_ctime_ns
        jobs_dir = os.fspath(self.jobs_dir)
        if self.flat_jobs:
            records, job_files, edited_jobs = self._scanned(written)
            changed = {name[: -len(".json")] for name in records}
            for name in edited_jobs:
                key = job_key_of(name, flat=True)
                if key is not None:
                    changed.add(stack_of(key))
            if job_files is not None:  # a name was added or removed since the last listing: one deleted by hand?
                listed = {name[: -len(".json")] for name in job_files}
                changed.update(stack_of(key) for key in job_keys if key not in listed)
            return changed
        records, _, _ = edit_scan.scan(os.fspath(self.records_dir), None, written)
        changed = {name[: -len(".json")] for name in records}
        for name in os.listdir(jobs_dir) if os.path.isdir(jobs_dir) else []:
            if job_key_of(name, flat=False) is None:
                continue
            try:
                newer = os.stat(f"{jobs_dir}/{name}/job_info.json").st_ctime_ns > written
            except (FileNotFoundError, NotADirectoryError):
                newer = True
            if newer:
                changed.add(stack_of(name))
        return changed
