"""Module instances kept for the next stack of the same shape, for modules that allow it (``Core.reusable``).

A stack's modules are built from its backlog item's levels: the same classes, arguments and config
paths for every item of one branch of the config, whatever their parameter values (those reach the
modules as each phase's ``config``). A collect of 1,000 stacks built 2,000 modules for one shape;
when every module of a stack says it may be reused, the chain built for the first stack serves the
rest, its metrics reset before each (``ModuleAdapter.begin``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from quark_cli.config import BacklogItem

if TYPE_CHECKING:
    from quark_cli.contract import ModuleAdapter

#: What tells two stacks' modules apart: each level's name, class reference, config path and
#: constructor arguments (as JSON; arguments come from the config file).
Shape = tuple[tuple[str, str | None, str, str], ...]


def shape(item: BacklogItem) -> Shape:
    """The modules ``item``'s stacks are built of, as a key."""
    return tuple(
        (
            level.name,
            level.module,
            level.path,
            json.dumps(level.args, sort_keys=True, default=repr) if level.args else "",
        )
        for level in item.levels
    )


class ModuleCache:
    """Built module chains by stack shape, each kept only if all its modules are ``reusable``.

    For walks one after another only: the caller asks for none while stacks are walked at the same time.
    """

    def __init__(self) -> None:
        self._chains: dict[Shape, list[ModuleAdapter]] = {}

    def get(self, item: BacklogItem) -> list[ModuleAdapter] | None:
        """The chain kept for ``item``'s shape (the same objects each time), or None."""
        return self._chains.get(shape(item)) if self._chains else None

    def keep(self, item: BacklogItem, modules: list[ModuleAdapter]) -> None:
        """Keep ``modules``, built for ``item``, if every one of them allows reuse."""
        if all(getattr(module.instance, "reusable", False) is True for module in modules):
            self._chains[shape(item)] = modules

    def drop(self, item: BacklogItem) -> None:
        """Forget the chain of ``item``'s shape (a stack that used it failed: its state is unknown)."""
        self._chains.pop(shape(item), None)
