"""libfidius_host's side of Python plugins: isolated imports and calls.

Each loaded plugin gets its own module namespace, ``_fidius_plugins.p<N>``,
served from the files the host read (and, for a signed package, verified)
at load time: nothing is read from the package directory afterwards, and no
bytecode is written into it. Inside a plugin's modules the ``import``
statement resolves the plugin's own top-level names (its package directory
and ``vendor/``, vendor first) to that namespace, so two plugins may both
ship ``plugin.py`` or different versions of one library. ``import fidius``
gives the compatible SDK below unless the plugin vendors its own.
"""

# Only modules that cost nothing to import: this module is imported when
# the first Python plugin loads, in the caller's time. json, traceback and
# linecache are imported where a plugin's error needs them, and
# importlib.abc (which pulls in importlib.resources, pathlib, tempfile and
# typing, ~15 ms) not at all: the import protocol needs no base classes.
import _thread
import builtins
import importlib
import importlib.machinery
import sys
import time
import types

ROOT = "_fidius_plugins"
_real_import = builtins.__import__
_plugins = {}  # namespace name ("p1") -> Plugin

# The highest recursion limit a plugin may set: past it, runaway recursion
# grows the interpreter's frames (and, through C code, the thread's stack)
# without bound.
MAX_RECURSION_LIMIT = 1000
# How long one slice of a plugin's time.sleep lasts: between slices the
# deadline's exception can land.
SLEEP_SLICE = 0.02


class DeadlineExceeded(BaseException):
    """Raised in a plugin's thread when its import or call runs past the
    host's deadline. A BaseException, so ``except Exception`` lets it pass."""


class _Proxy(types.ModuleType):
    """A module as a plugin sees it: the real one, with a few functions
    replaced. Reads and writes of other attributes go to the real module."""

    def __init__(self, real, overrides):
        super().__init__(real.__name__, real.__doc__)
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_overrides", overrides)

    def __getattribute__(self, name):
        overrides = object.__getattribute__(self, "_overrides")
        if name in overrides:
            return overrides[name]
        if name in ("__class__", "_real", "_overrides"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "_real"), name)

    def __setattr__(self, name, value):
        setattr(object.__getattribute__(self, "_real"), name, value)


def _sleep(seconds):
    """time.sleep in slices, so that a deadline can end it."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, SLEEP_SLICE))


def _setrecursionlimit(limit):
    """sys.setrecursionlimit, at most MAX_RECURSION_LIMIT."""
    sys.setrecursionlimit(min(limit, MAX_RECURSION_LIMIT))


# What ``import time`` and ``import sys`` give a plugin.
_PROXIES = {
    "time": _Proxy(time, {"sleep": _sleep}),
    "sys": _Proxy(sys, {"setrecursionlimit": _setrecursionlimit}),
}


def _sdk():
    """The ``fidius`` SDK module plugins import (fidius 0.5 Python SDK API)."""
    sdk = types.ModuleType("fidius", "fidius plugin SDK, as provided by libfidius_host.")
    exec(_SDK_CODE, sdk.__dict__)
    return sdk


# _SDK_CODE, the code of sdk.py, is set by the library before this module
# runs (compiled at build time where it could be).


# Compiled modules, keyed by file name and the exact source bytes (a hit
# compares the whole source): a package loaded again skips compiling, and
# only code compiled from the very bytes that were read (and verified) runs.
# Bounded: at most 128 entries (least recently used go first) of at most
# 512 KiB of source each; larger sources are compiled every time.
_CODE_CACHE = {}  # in order of use, oldest first
_CODE_CACHE_ENTRIES = 128
_CODE_CACHE_MAX_SOURCE = 512 << 10
_CODE_CACHE_LOCK = _thread.allocate_lock()


def _compiled(source, filename):
    if len(source) > _CODE_CACHE_MAX_SOURCE:
        return compile(source, filename, "exec", dont_inherit=True)
    key = (filename, source)
    with _CODE_CACHE_LOCK:
        code = _CODE_CACHE.pop(key, None)
        if code is not None:
            _CODE_CACHE[key] = code
            return code
    code = compile(source, filename, "exec", dont_inherit=True)
    with _CODE_CACHE_LOCK:
        _CODE_CACHE[key] = code
        while len(_CODE_CACHE) > _CODE_CACHE_ENTRIES:
            del _CODE_CACHE[next(iter(_CODE_CACHE))]
    return code


# Source text of the modules plugins ran, by file name, for tracebacks.
# Handed to linecache (in its format) once linecache is in use.
_SOURCES = {}


def _linecache_cache():
    """linecache's cache if linecache is imported, else None. Another
    thread may be importing it right now: a module without its ``cache``
    yet counts as not imported (``_share_sources`` fills it in later)."""
    cache = getattr(sys.modules.get("linecache"), "cache", None)
    return cache if isinstance(cache, dict) else None


def _remember_source(filename, text):
    entry = (len(text), None, text.splitlines(True), filename)
    _SOURCES[filename] = entry
    cache = _linecache_cache()
    if cache is not None:
        cache[filename] = entry


def _share_sources():
    import linecache

    for filename, entry in list(_SOURCES.items()):
        linecache.cache[filename] = entry


class Plugin:
    """The files and namespace of one loaded plugin."""

    def __init__(self, namespace, root, files):
        self.namespace = namespace
        self.prefix = ROOT + "." + namespace
        # Every name this plugin's imports may have put in sys.modules:
        # unloading forgets these, without scanning sys.modules.
        self.modules = [self.prefix]
        self.root = root.rstrip("/")
        # relative path -> source bytes (.py), or None (a native extension).
        self.files = files
        self.dirs = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                self.dirs.add("/".join(parts[:i]))
        self.tops = {}
        for base in ("vendor/", ""):  # vendored names shadow the package's, as upstream
            for path in files:
                if path.startswith(base) and (base or not path.startswith("vendor/")):
                    top = path[len(base):].split("/")[0]
                    name = top.split(".")[0]
                    if name.isidentifier():
                        self.tops.setdefault(name, base)
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        # Each plugin its own SDK: one plugin's registry is not another's.
        self.sdk = _sdk()

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        """``import`` inside the plugin: its own top-level names first."""
        if level == 0 and name:
            top = name.partition(".")[0]
            if top in self.tops:
                module = _real_import(self.prefix + "." + name, globals, locals, fromlist, 0)
                return module if fromlist else sys.modules[self.prefix + "." + top]
            if top == "fidius":
                return self.sdk
            if name in _PROXIES:
                return _PROXIES[name]
        return _real_import(name, globals, locals, fromlist, level)

    def find(self, relative):
        """The spec of module ``relative`` (dotted, below the namespace)."""
        parts = relative.split(".")
        base = self.tops.get(parts[0])
        if base is None:
            return None
        stem = base + "/".join(parts)
        fullname = self.prefix + "." + relative
        for path, package in ((stem + "/__init__.py", True), (stem + ".py", False)):
            if path in self.files:
                return self._spec(fullname, path, package)
        for path in self.files:
            if self.files[path] is None and path.startswith(stem + ".") and "/" not in path[len(stem):]:
                raise ImportError(
                    f"{path}: native extension modules are not supported in Python plugins "
                    f"(only pure-Python modules are loaded, from the files the host read)"
                )
        if stem in self.dirs:  # a namespace package
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [self.root + "/" + stem]
            return spec
        return None

    def _spec(self, fullname, path, package):
        loader = SourceLoader(self, path)
        origin = self.root + "/" + path
        # Without `has_location` the import system sets neither __file__
        # (exec_module does) nor __cached__, a bytecode path that has no
        # use here and costs a quarter of an import to work out.
        spec = importlib.machinery.ModuleSpec(fullname, loader, origin=origin, is_package=package)
        if package:
            spec.submodule_search_locations = [origin.rsplit("/", 1)[0]]
        return spec


class SourceLoader:
    """Runs a module from the source bytes the host holds; writes nothing."""

    def __init__(self, plugin, path):
        self.plugin = plugin
        self.path = path

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self.plugin.files[self.path]
        filename = self.plugin.root + "/" + self.path
        text = source.decode("utf-8", "replace")
        # Tracebacks show the source that ran, not what is on disk now.
        _remember_source(filename, text)
        module.__file__ = filename
        module.__dict__["__builtins__"] = self.plugin.builtins
        exec(_compiled(source, filename), module.__dict__)


class Finder:
    """Serves ``_fidius_plugins.<ns>.<module>`` from the plugins' files."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(ROOT + "."):
            return None
        parts = fullname.split(".", 2)
        plugin = _plugins.get(parts[1])
        spec = plugin.find(parts[2]) if plugin is not None and len(parts) == 3 else None
        if spec is None:
            # Never fall through to the finders that read the package
            # directory: what was not read (and verified) at load is not run.
            raise ModuleNotFoundError(f"No module named '{fullname[len(ROOT) + 1:]}' in the plugin", name=fullname)
        plugin.modules.append(fullname)
        return spec


def _namespace_module(name, path=None):
    module = types.ModuleType(name)
    module.__path__ = [] if path is None else [path]
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    return module


if not any(isinstance(f, Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, Finder())
sys.modules.setdefault(ROOT, _namespace_module(ROOT))


def load(namespace, root, files, entry_module):
    """Imports the plugin's entry module in its own namespace.

    Returns ("ok", hash, module) or ("error", code, message) — nothing a
    plugin raises, of any kind, escapes."""
    plugin = Plugin(namespace, root, files)
    _plugins[namespace] = plugin
    sys.modules[plugin.prefix] = _namespace_module(plugin.prefix, plugin.root)
    try:
        if entry_module.partition(".")[0] not in plugin.tops:
            raise ModuleNotFoundError(f"no module named '{entry_module}' in the package")
        module = importlib.import_module(plugin.prefix + "." + entry_module)
        if not hasattr(module, "__interface_hash__"):
            unload(namespace)
            return ("error", "NoHash", f"module '{entry_module}' has no __interface_hash__")
        value = module.__interface_hash__
        if type(value) is not int or not 0 <= value < 2**64:
            unload(namespace)
            return ("error", "BadHash", "__interface_hash__ must be an int from 0 to 2**64-1")
        return ("ok", value, module)
    except BaseException as error:
        unload(namespace)
        code, message, _ = describe(error)
        return ("error", code, message)


def bind(target, methods):
    """One callable (or None) per name in ``methods``: attributes of the
    module, or of the object its ``__fidius_configure__`` returned.

    Returns ("ok", callables) or ("error", code, message, details)."""
    try:
        callables = []
        for name in methods:
            function = getattr(target, name, None)
            callables.append(function if callable(function) else None)
        return ("ok", callables)
    except BaseException as error:
        return ("error",) + describe(error)


def configure(module, config):
    """Calls the module's ``__fidius_configure__(config)``.

    Returns ("ok", instance), ("missing",) when the module has none, or
    ("error", code, message, details)."""
    try:
        function = getattr(module, "__fidius_configure__", None)
        if not callable(function):
            return ("missing",)
        return ("ok", function(config))
    except BaseException as error:
        return ("error",) + describe(error)


def unload(namespace):
    """Forgets a plugin's modules."""
    plugin = _plugins.pop(namespace, None)
    if plugin is None:
        return
    for name in plugin.modules:
        sys.modules.pop(name, None)
    if not any(p.root == plugin.root for p in _plugins.values()):
        cache = _linecache_cache()
        for path in plugin.files:
            filename = plugin.root + "/" + path
            _SOURCES.pop(filename, None)
            if cache is not None:
                cache.pop(filename, None)


def describe(error, trace=None):
    """(code, message, details) of an exception a plugin raised, with its
    traceback (``trace``, or the one the exception carries). Never raises:
    the exception's own attributes and ``__str__`` are plugin code."""
    try:
        return _describe(error, trace)
    except BaseException:
        return (type(error).__name__, "(the exception cannot be described)", None)


def _describe(error, trace):
    import json
    # The SDK's PluginError (each plugin has its own copy) or a vendored one.
    if type(error).__name__ == "PluginError" and isinstance(getattr(error, "code", None), str):
        message = getattr(error, "message", None)
        details = getattr(error, "details", None)
        return (
            error.code,
            message if isinstance(message, str) else str(error),
            None if details is None else json.dumps(details, default=str, separators=(",", ":")),
        )
    # SystemExit's `code` is an exit status, not an error code.
    code = None if isinstance(error, SystemExit) else getattr(error, "code", None)
    if not isinstance(code, str) or not code:
        code = type(error).__name__
    import traceback

    _share_sources()
    lines = traceback.format_exception(type(error), error, trace or error.__traceback__)
    return (code, str(error), json.dumps({"traceback": "".join(lines)}, separators=(",", ":")))
