# The ``fidius`` SDK module plugins import (fidius 0.5 Python SDK API), as
# provided by libfidius_host: each plugin gets its own copy, run from this
# code (``_SDK_CODE`` in host.py). No docstring: the module's is set by host.py.

_registry = {}


class PluginError(Exception):
    """An error a plugin method raises on purpose: code, message, details."""

    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def method(func=None, *, name=None):
    """Marks a function as a plugin method; returns it unchanged."""
    def register(f):
        _registry[name or f.__name__] = f
        return f
    return register(func) if func is not None else register


def get_method(name):
    return _registry.get(name)


def list_methods():
    return list(_registry)


def reset_registry():
    _registry.clear()


__all__ = ["PluginError", "method", "get_method", "list_methods", "reset_registry"]
