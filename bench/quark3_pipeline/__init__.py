"""The pipeline that bench/quark3_compare.py runs in both quark-cli and QUARK 3.

Stdlib only at this level: ``service`` and ``quark3_plugin`` are imported by QUARK 3's own Python 3.12
virtualenv, which has no quark-cli; ``quark_cli_modules`` is imported by quark-cli only.
"""
