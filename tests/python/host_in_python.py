"""A Python program that embeds libfidius_host through ctypes and loads a
Python plugin: the library must use the interpreter already running, keep
the plugin's modules out of the program's own, and let several Python
threads call at once.

Usage: python3 host_in_python.py <libfidius_host.so> <fixture dir>
"""

import ctypes
import sys
import threading
import types

lib_path, fixtures = sys.argv[1], sys.argv[2]

# Modules of the program itself, with the names the plugin uses for its own.
sys.modules["plugin"] = types.ModuleType("plugin")
sys.modules["plugin"].OWNER = "the host program"
greeting = types.ModuleType("greeting")
greeting.greet = lambda name: "wrong greeting module"
sys.modules["greeting"] = greeting

lib = ctypes.CDLL(lib_path)  # CDLL releases the GIL during each call
NT = ctypes.c_size_t(-1).value
P = ctypes.c_void_p
lib.fidius_host_builder_new.restype = P
lib.fidius_host_builder_add_search_path.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, P]
lib.fidius_host_builder_build.argtypes = [P, ctypes.POINTER(P), P]
lib.fidius_host_interface_new_from_file.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(P), P]
lib.fidius_host_load_options_new.restype = P
lib.fidius_host_load_options_set_interface.argtypes = [P, P, P]
lib.fidius_host_load.argtypes = [P, ctypes.c_char_p, ctypes.c_size_t, P, ctypes.POINTER(P), ctypes.POINTER(P)]
lib.fidius_host_error_message.argtypes = [P]
lib.fidius_host_error_message.restype = ctypes.c_char_p
lib.fidius_host_plugin_call_json.argtypes = [
    P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t), P,
]
lib.fidius_host_string_free.argtypes = [P]
for name in ("fidius_host_plugin_free", "fidius_host_free", "fidius_host_interface_free", "fidius_host_load_options_free"):
    getattr(lib, name).argtypes = [P]

builder = lib.fidius_host_builder_new()
assert lib.fidius_host_builder_add_search_path(builder, f"{fixtures}/python".encode(), NT, None) == 0
host = P()
assert lib.fidius_host_builder_build(builder, ctypes.byref(host), None) == 0
interface = P()
assert lib.fidius_host_interface_new_from_file(f"{fixtures}/interfaces/calculator.toml".encode(), NT, ctypes.byref(interface), None) == 0
options = lib.fidius_host_load_options_new()
assert lib.fidius_host_load_options_set_interface(options, interface, None) == 0
plugin, err = P(), P()
status = lib.fidius_host_load(host, b"PyCalculator", NT, options, ctypes.byref(plugin), ctypes.byref(err))
assert status == 0, lib.fidius_host_error_message(err)


def call(method, args):
    out = ctypes.c_void_p()
    status = lib.fidius_host_plugin_call_json(plugin, method.encode(), NT, args.encode(), NT, ctypes.byref(out), None, None)
    assert status == 0, (method, args, status)
    text = ctypes.string_at(out.value).decode()
    lib.fidius_host_string_free(out)
    return text


assert call("add", "[3, 7]") == "10"
assert call("greet", '["ctypes"]') == '"Hello, ctypes!"', call("greet", '["ctypes"]')
assert sys.modules["plugin"].OWNER == "the host program"
assert sys.modules["greeting"] is greeting

errors = []


def worker(k):
    try:
        for i in range(100):
            assert call("add", f"[{k}, {i}]") == str(k + i)
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(e)


threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors

lib.fidius_host_plugin_free(plugin)
lib.fidius_host_load_options_free(options)
lib.fidius_host_interface_free(interface)
lib.fidius_host_free(host)
print("host_in_python: the running interpreter served the plugin; 400 threaded calls; modules isolated")
