"""What each of our JSON files in a run directory must hold, and the one reader that checks it.

``read_json`` refuses a damaged or hand-edited file (bad JSON, a key named twice, a field of the
wrong type, an unknown status, a key not matching the file's name) and one written by a newer
quark-cli, with a RunDirError naming the file and the field, before any command writes a byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson

from quark_cli.errors import NotRegularFileError, RunDirError
from quark_cli.journal import journal_copy, read_locked

SCHEMA_VERSION = 1
#: run.json's own version: 2 since job files lie flat, ``jobs/<key>.json``; a run.json of version 1
#: is a run whose job files are ``jobs/<key>/job_info.json`` (read and written so to its end).
RUN_SCHEMA_VERSION = 2
FLAT_JOBS_VERSION = 2
MODULES_FILE = "modules.json"
STACK_STATUSES = ("FINISHED", "INTERRUPTED", "FAILED")
JOB_STATUSES = ("SUBMITTING", "SUBMITTED", "RUNNING", "DONE", "FAILED", "CANCELLED", "RETRY")
#: ``bytes.translate`` table turning every digit into b"0" and any other byte into b" ": a number of
#: 19 digits or more, which may be an integer past 64 bits, then shows as ``_LONG_NUMBER``.
_DIGITS = bytes(ord("0") if chr(byte).isdigit() and byte < 128 else ord(" ") for byte in range(256))
_LONG_NUMBER = b"0" * 19


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a key twice was edited by hand: refuse it rather than guess."""
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise _DuplicateKey(key)
        value[key] = item
    return value


def read_json(path: Path, what: str, missing_ok: bool = False) -> Any:
    """Read one of our JSON files, refusing damaged, hand-broken ones and ones from a newer quark-cli
    (RunDirError); a missing file is None with ``missing_ok``, else a RunDirError too."""
    try:
        text = read_locked(path).decode("utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise RunDirError(f"{path}: missing; the run directory is incomplete ({what})") from None
    except IsADirectoryError:
        raise RunDirError(f"{path}: is a folder, not a {what} file; restore it or remove the run") from None
    except NotRegularFileError:
        raise RunDirError(
            f"{path}: is a FIFO, socket or device, not a {what} file; restore it or remove the run"
        ) from None
    except NotADirectoryError:
        raise not_a_folder(path) from None
    except (OSError, UnicodeDecodeError) as error:
        why = type(error).__name__
        if isinstance(error, OSError) and error.strerror:  # a link in a loop says so
            why = f"{why}: {error.strerror}"
        raise RunDirError(f"{path}: cannot be read ({why}); restore it or remove the run") from None
    return _checked(path, text, what, _parse)


def not_a_folder(path: Path) -> RunDirError:
    """The error for a NotADirectoryError at ``path``, naming the first of it and its folders that
    is something else (a ``records`` folder replaced by a file); its parent if none
    is found any more."""
    in_the_way = next(
        (folder for folder in [*reversed(path.parents), path] if os.path.lexists(folder) and not os.path.isdir(folder)),
        path.parent,
    )
    return RunDirError(f"{in_the_way}: is a file, not a folder; restore it or remove the run")


def parse_trusted(path: Path, data: bytes, what: str) -> Any:
    """``data``, what quark wrote as ``path``'s content and nobody changed since (a line of a trusted
    results.json), parsed and checked as ``read_json`` does, but for the duplicate keys that only a
    hand could have put there (their check makes parsing twice as slow). Raises RunDirError."""
    return _checked(path, data, what, lambda _path, data, _what: _loads_exactly(data))


def _loads_exactly(data: bytes) -> Any:
    """``json.loads(data)``, by orjson (three times as quick) unless ``data`` holds a number of 19
    digits or more: an integer past 64 bits, which orjson would read as a float."""
    if _LONG_NUMBER not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library's error says where
    return json.loads(data)


def check_journaled(path: Path, data: bytes) -> None:
    """Refuse (RunDirError naming ``path``) content that a journal segment would write to ``path``
    and that we would not: a record or job file that ``read_json`` would refuse."""
    what = "record" if path.parent.name == "records" else "job_info"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RunDirError(f"{path}: not UTF-8 in the journal; restore it or remove the run") from None
    _checked(path, text, what, lambda _path, text, _what: json.loads(text, object_pairs_hook=_unique_keys))


def _checked(path: Path, text: str | bytes, what: str, parse: Any) -> Any:
    """``text`` parsed (``parse(path, text, what)``) and checked against ``what``'s schema; RunDirError."""
    try:
        value = parse(path, text, what)
    except _DuplicateKey as error:
        raise RunDirError(f"{path}: {error}: named twice; the file was edited by hand, keep one") from None
    except (json.JSONDecodeError, RecursionError) as error:
        where = f" at line {error.lineno} column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise RunDirError(f"{path}: damaged JSON{where}; restore it or remove the run") from None
    version = value.get("schema_version") if isinstance(value, dict) else None
    if type(version) is not int:
        raise RunDirError(f"{path}: schema_version: missing; this is not a quark-cli {what}")
    newest = RUN_SCHEMA_VERSION if what == "run.json" else SCHEMA_VERSION
    if version > newest:
        raise RunDirError(
            f"{path}: schema_version: {version} is newer than this quark-cli understands ({newest}); upgrade"
        )
    problem = _SCHEMAS[what](path, value) if what in _SCHEMAS else None
    if problem:
        field, message = problem
        raise RunDirError(f"{path}: {field}: {message}; the file was edited or damaged: restore it or remove the run")
    return value


def _parse(path: Path, text: str, what: str) -> Any:
    """The file's JSON; a record or job file found damaged while a killed writer's journal waits for
    its replay is read from the journal (``quark_cli.journal``)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        copy = journal_copy(path) if what in ("record", "job_info") else None
        if copy is None:
            raise
    return json.loads(copy, object_pairs_hook=_unique_keys)


def _field_problem(value: dict[str, Any], name: str, kind: Any, optional: bool = False) -> str | None:
    """Why ``value[name]`` is not of ``kind`` (None if it is); ``bool`` never passes for ``int``."""
    if name not in value:
        return None if optional else "missing"
    item = value[name]
    if item is None and optional:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(item, bool) and bool not in kinds or not isinstance(item, kinds):
        return f"{item!r} is not {' or '.join(k.__name__ for k in kinds)}"
    return None


def _check_fields(value: dict[str, Any], fields: list[tuple[str, Any, bool]]) -> tuple[str, str] | None:
    for name, kind, optional in fields:
        problem = _field_problem(value, name, kind, optional)
        if problem:
            return name, problem
    return None


def _check_run(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(
        value,
        [("config_hash", str, False), ("stacks", int, False), ("history", list, True)]
        + [("module_search_path", str, True), ("created", str, True), ("backlog_order", str, True)]
        + [("python_hash_seed", str, True), ("import_paths", list, True), ("yaml_rules", str, True)],
    )
    if problem:
        return problem
    if value.get("backlog_order", "legacy") not in ("quark2", "legacy"):
        return "backlog_order", f"{value['backlog_order']!r} is not 'quark2' or 'legacy'"
    if value.get("yaml_rules", "1.1") not in ("1.2", "1.1"):
        return "yaml_rules", f"{value['yaml_rules']!r} is not '1.2' or '1.1' (the YAML rules config.yml is read by)"
    if not all(isinstance(item, str) for item in value.get("import_paths") or []):
        return "import_paths", "must list folders (strings)"
    return None


def _check_modules(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(value, [("modules", list, False), ("source", str, True)])
    if problem:
        return problem
    if not all(isinstance(entry, dict) for entry in value["modules"]):
        return "modules", "must list module entries (objects)"
    return None


def _check_record(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(
        value,
        [("quark_job_status", str, False), ("stack", str, False), ("jobs", list, True), ("error", str, True)]
        + [("benchmark_backlog_item_number", int, False), ("repetition", int, False), ("module", dict, True)],
    )
    if problem:
        return problem
    if value["quark_job_status"] not in STACK_STATUSES:
        return "quark_job_status", f"{value['quark_job_status']!r} is not one of {list(STACK_STATUSES)}"
    if value["stack"] != path.stem:
        return "stack", f"{value['stack']!r} does not match the file name {path.name}"
    if not all(isinstance(key, str) for key in value.get("jobs") or []):
        return "jobs", "must list job keys (strings)"
    return None


#: When a job was submitted, changed status, ended, was about to be submitted, adopted or abandoned.
JOB_STAMPS = ("submitted_at", "status_since", "finished_at", "intent_at", "adopted_at", "abandoned_at")


def _check_job(path: Path, value: dict[str, Any]) -> tuple[str, str] | None:
    problem = _check_fields(
        value,
        [("key", str, False), ("stack", str, False), ("status", str, False), ("job_manager", str, False)]
        + [("info", dict, False), ("level", int, False), ("phase", str, False), ("attempt", int, True)]
        + [("module_config", dict, True), ("error", str, True), ("submit_ms", (int, float), True)]
        + [("warning", str, True), ("previous_attempts", list, True), ("submission_id", str, True)]
        + [(name, str, True) for name in JOB_STAMPS],
    )
    if problem:
        return problem
    if path.name != "job_info.json":  # jobs/<key>.json
        if value["key"] != path.name[: -len(".json")]:
            return "key", f"{value['key']!r} does not match its file name {path.name}"
    elif value["key"] != path.parent.name:  # jobs/<key>/job_info.json, of a run.json of version 1
        return "key", f"{value['key']!r} does not match its folder {path.parent.name}"
    if not value["key"].startswith(value["stack"] + "-"):
        return "stack", f"{value['stack']!r} is not the stack of job {value['key']!r}"
    if value["status"] not in JOB_STATUSES:
        return "status", f"{value['status']!r} is not one of {list(JOB_STATUSES)}"
    if value["phase"] not in ("pre", "post"):
        return "phase", f"{value['phase']!r} is not 'pre' or 'post'"
    if not all(isinstance(attempt, dict) for attempt in value.get("previous_attempts") or []):
        return "previous_attempts", "must list earlier attempts (objects)"
    return None


_SCHEMAS = {"run.json": _check_run, "record": _check_record, "job_info": _check_job, MODULES_FILE: _check_modules}
