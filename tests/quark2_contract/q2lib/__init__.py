"""A small module library written to QUARK 2's module contract, for quark-cli's compatibility tests.

It follows what was observed of QUARK 2 v2.1.6 (see the project's notes): an abstract ``Core`` whose
phases return milliseconds and that relies on the manager for ``preprocessed_input``, a ``Metrics``
whose ``total_time`` stays None until ``validate()``, QUARK 2's own ``Instruction`` enum, and modules
found through a module file with display names, ``args`` and ``dir``. None of it derives from
quark-cli, so quark-cli must treat it as QUARK 2 does. Imported with this folder on ``sys.path``,
as QUARK 2's ``src`` is.
"""
