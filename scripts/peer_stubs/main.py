"""Stand-in for taming-transformers' main.py: instantiate_from_config only."""
import importlib


def instantiate_from_config(config):
    if config is None:
        return None
    module, cls = config["target"].rsplit(".", 1)
    return getattr(importlib.import_module(module), cls)(**config.get("params", dict()))
