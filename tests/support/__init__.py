"""Helpers shared by the add-on and HA test suites (importable from both environments).

`offline_models` makes small real models for every engine; `speech` makes real speech clips.
Nothing here imports an engine library at module import time.
"""
