"""Everything QUARK 2-specific: its module dialect, its ``Instruction``, its module files, its git fields.

QUARK 2 (the ``QUARK-framework/QUARK`` 2.x line) is not a dependency: its modules are recognised by
shape (duck-typed), and its module files (``--modules FILE``: a JSON list of entries, or its
``.settings/module_db.json``) are read here. See ``../shared/facts/quark2-contract.md`` in the
project's notes for what was observed of QUARK 2 v2.1.6.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import Future
from enum import Enum
from pathlib import Path
from typing import Any

from quark_cli.core import Core, Instruction
from quark_cli.errors import ConfigError

#: Methods that make a class a module of some framework; on a base that does not derive from our
#: ``Core`` they mark the QUARK 2 dialect (phases in milliseconds).
_MODULE_METHODS = ("preprocess", "postprocess", "get_default_submodule", "get_submodule")
GIT_TIMEOUT_SECONDS = 10.0


def is_module_class(value: Any) -> bool:
    """True for a class with a module's methods (``preprocess``, ``postprocess``, ``get_parameter_options``)."""
    return isinstance(value, type) and all(
        callable(getattr(value, name, None)) for name in ("preprocess", "postprocess", "get_parameter_options")
    )


@functools.cache
def speaks_quark2(cls: type) -> bool:
    """True when ``cls``'s phases follow QUARK 2's contract (times in ms, manager-set inputs).

    That is any module class that does not derive from quark-cli's ``Core``, and any that does but
    also inherits module methods from a base of another lineage (``class X(AsyncCore, Annealer)``
    over QUARK 2's ``Annealer``). Plain mixins that only add parameters do not count.
    """
    if not issubclass(cls, Core):
        return True
    for base in cls.__mro__:
        if base is object or issubclass(base, Core) or base.__module__ in ("abc", "typing"):
            continue
        if any(name in vars(base) for name in _MODULE_METHODS):
            return True
    return False


def as_instruction(value: Any) -> Instruction | None:
    """Our ``Instruction`` for ``value``: ours, or QUARK 2's enum of the same name matched by member name."""
    if isinstance(value, Instruction):
        return value
    if isinstance(value, Enum) and type(value).__name__ == "Instruction" and value.name in Instruction.__members__:
        return Instruction[value.name]
    return None


# ---------------------------------------------------------------------------------------------------
# module files


#: Longest module file read (``-m/--modules``); QUARK 2's own module_db.json is a few kB.
MAX_MODULE_FILE_CHARS = 1_000_000


def read_module_file(path: str | Path) -> list[dict[str, Any]]:
    """The module entries of a QUARK 2 module file, with every ``dir`` made absolute.

    Accepts the ``-m/--modules`` format (a JSON list of entries; lines whose first non-blank
    character is ``#`` are comments) and ``.settings/module_db.json`` (a dict whose ``modules``
    holds that list). An entry is ``{name, module, class?, args?, dir?, requirements?,
    submodules?}`` (other keys are ignored, as QUARK 2 ignores them); ``dir`` is relative to the file
    and inherited by the entry's submodules. Raises ConfigError naming the file and the entry when
    an entry lacks these or has them of the wrong type, and naming the file when it is longer than
    ``MAX_MODULE_FILE_CHARS`` characters (a link to ``/dev/zero`` among them).
    """
    path = Path(path)
    source = str(path)
    try:
        with open(path, encoding="utf-8") as handle:  # bounded: a link to /dev/zero must not fill memory
            text = handle.read(MAX_MODULE_FILE_CHARS + 1)
    except FileNotFoundError:
        raise ConfigError(source, "", "no such module file; give a QUARK 2 module JSON or module_db.json") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, "", f"cannot be read ({type(error).__name__}: {error})") from None
    if len(text) > MAX_MODULE_FILE_CHARS:
        raise ConfigError(
            source, "", f"longer than {MAX_MODULE_FILE_CHARS} characters; a module file is a short list of modules"
        )
    text = "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#"))
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(source, "", f"not valid JSON ({error})") from None
    except RecursionError:
        raise ConfigError(source, "", "nested too deeply; a module file is a list of module entries") from None
    if isinstance(value, dict) and isinstance(value.get("modules"), list):
        value = value["modules"]
    if not isinstance(value, list):
        raise ConfigError(source, "", "must be a JSON list of module entries, or a module_db.json with 'modules'")
    base = path.resolve().parent
    return [_checked_entry(entry, source, f"[{i}]", base, None) for i, entry in enumerate(value)]


def _checked_entry(entry: Any, source: str, where: str, base: Path, inherited_dir: str | None) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ConfigError(source, where, "a module entry must be an object with 'name' and 'module'")
    for key in ("name", "module"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(source, f"{where}.{key}", "missing or not a string")
    for key, kind, what in (("class", str, "a string"), ("dir", str, "a string"), ("args", dict, "an object")):
        if entry.get(key) is not None and not isinstance(entry[key], kind):
            raise ConfigError(source, f"{where}.{key}", f"must be {what}")
    children = entry.get("submodules") or []
    if not isinstance(children, list):
        raise ConfigError(source, f"{where}.submodules", "must be a list of module entries")
    directory = entry.get("dir")
    directory = str((base / directory).resolve()) if directory else inherited_dir
    checked = {key: value for key, value in entry.items() if key != "submodules"}
    if directory:
        checked["dir"] = directory
    checked["submodules"] = [
        _checked_entry(child, source, f"{where}.submodules[{i}]", base, directory) for i, child in enumerate(children)
    ]
    return checked


def find_entry(entries: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    """The entry called ``name`` (QUARK 2 matches the display name exactly), or None."""
    for entry in entries or []:
        if entry.get("name") == name:
            return entry
    return None


def entry_names(entries: list[dict[str, Any]] | None) -> list[str]:
    return [entry["name"] for entry in entries or []]


def build_from_entry(entry: dict[str, Any]) -> Any:
    """Import and construct the module of an entry, as QUARK 2 does.

    ``dir`` goes on ``sys.path`` (at the end), the class is ``class`` (default: the entry's name)
    in ``module``, built with ``args`` as keyword arguments; its ``sub_options`` become the entry's
    submodules, so its children are found in the same file. Errors propagate to the caller, which
    names the config field.
    """
    directory = entry.get("dir")
    if directory and directory not in sys.path:
        sys.path.append(directory)
    module = importlib.import_module(entry["module"])
    class_name = entry.get("class") or entry["name"]
    cls = getattr(module, class_name, None)
    if not is_module_class(cls):
        raise ImportError(f"{entry['module']} has no module class {class_name!r}")
    instance = cls(**(entry.get("args") or {}))
    instance.sub_options = entry.get("submodules") or []
    return instance


# ---------------------------------------------------------------------------------------------------
# where code came from


def import_root(cls: type) -> str | None:
    """The ``sys.path`` folder that provided the top-level package of ``cls``'s module, or None.

    E.g. ``/home/me/QUARK/src`` for ``modules.applications.optimization.sat.sat``; recorded in the
    run so that later commands find the same code.
    """
    top = cls.__module__.split(".")[0]
    module = sys.modules.get(top)
    location = getattr(module, "__file__", None)
    if location is None:
        paths = list(getattr(module, "__path__", []) or [])
        location = paths[0] if paths else None
        if location is None:
            return None
        root = Path(location).resolve().parent
    else:
        location_path = Path(location).resolve()
        root = location_path.parent.parent if location_path.name == "__init__.py" else location_path.parent
    return str(root)


def outside_quark2_source(cls: type) -> bool:
    """True unless ``cls`` lives in the QUARK 2 source tree whose ``utils`` module is loaded.

    QUARK 2 records the git revision of modules from outside its own ``src`` (the folder of its
    top-level ``utils``); without QUARK 2 loaded, every module is outside.
    """
    utils = getattr(sys.modules.get("utils"), "__file__", None)
    location = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if not utils or not location:
        return True
    source = os.path.dirname(os.path.abspath(utils))
    return os.path.commonpath([source, os.path.abspath(location)]) != source


def module_src(cls: type) -> str | None:
    """The source file of ``cls``, relative to the working directory as QUARK 2 writes it."""
    module = sys.modules.get(cls.__module__)
    location = getattr(module, "__file__", None)
    return os.path.relpath(location) if location else None


_revisions: dict[str, Future] = {}
_revisions_lock = threading.Lock()


def git_revision(directory: str) -> tuple[str, str | bool]:
    """``(revision, uncommitted changes)`` of the git checkout holding ``directory``.

    QUARK 2's record fields ``git_revision_number`` / ``git_uncommitted_changes``: ``"unknown"``
    for both when ``directory`` is not in a checkout or git is missing. Asked once per folder and
    process; a caller that comes while another thread asks waits for that answer.
    """
    with _revisions_lock:
        answer = _revisions.get(directory)
        asking = answer is None
        if asking:
            answer = _revisions[directory] = Future()
    if asking:
        try:
            answer.set_result(_ask_git(directory))
        except BaseException as error:  # those waiting must not wait for ever
            answer.set_exception(error)
            raise
    return answer.result()


def prefetch_git_revision(directory: str) -> None:
    """Start asking git about ``directory`` in a background thread: two ``git`` processes cost about
    30 ms, which a command can spend walking its first stacks instead of waiting."""
    threading.Thread(target=git_revision, args=(directory,), name="quark-git", daemon=True).start()


def _ask_git(directory: str) -> tuple[str, str | bool]:
    try:
        revision = subprocess.run(
            ["git", "-C", directory, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", directory, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return revision, bool(status)
