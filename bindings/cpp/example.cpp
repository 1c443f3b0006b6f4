// A small program using the C++ binding: lists the plugins of a directory,
// loads one with an interface file and prints the JSON result of a call.
//
//   example PLUGIN_DIR INTERFACE_TOML [PLUGIN [METHOD [ARGS_JSON]]]
//
// PLUGIN defaults to the first plugin found whose interface has the interface
// file's name, METHOD to "add" and ARGS_JSON to "[3, 7]". For example, with
// the test fixtures:
//
//   ./example target/test-fixtures/plugins target/test-fixtures/interfaces/calculator.toml
//   ./example target/test-fixtures/wasm target/test-fixtures/interfaces/calculator.toml WasmCalculator greet '["C++"]'

#include "fidius_host.hpp"

#include <cstdio>
#include <string>

int main(int argc, char **argv) {
    if (argc < 3 || argc > 6) {
        std::fprintf(stderr, "usage: %s PLUGIN_DIR INTERFACE_TOML [PLUGIN [METHOD [ARGS_JSON]]]\n", argv[0]);
        return 2;
    }
    const std::string plugin_dir = argv[1];
    const std::string interface_path = argv[2];
    std::string plugin_name = argc > 3 ? argv[3] : "";
    const std::string method = argc > 4 ? argv[4] : "add";
    const std::string args_json = argc > 5 ? argv[5] : "[3, 7]";

    try {
        fidius::Host host = fidius::Builder().add_search_path(plugin_dir).build();
        fidius::Interface iface = fidius::Interface::from_file(interface_path);

        // What the directory holds, and why anything was skipped.
        const fidius::Discovery found = host.discover();
        std::printf("plugins in %s:\n", plugin_dir.c_str());
        for (const fidius::PluginInfo &info : found.plugins) {
            std::printf("  %-20s interface %s v%u, hash %016llx\n", info.name.c_str(), info.interface_name.c_str(),
                        info.interface_version, static_cast<unsigned long long>(info.interface_hash));
            if (plugin_name.empty() && info.interface_name == iface.name()) plugin_name = info.name;
        }
        for (const fidius::SkippedEntry &entry : found.skipped)
            std::printf("  skipped (%s): %s\n", std::string(fidius::status_name(entry.status)).c_str(),
                        entry.message.c_str());
        if (plugin_name.empty()) {
            std::fprintf(stderr, "no plugin in %s implements %s\n", plugin_dir.c_str(), iface.name().c_str());
            return 1;
        }

        fidius::LoadOptions options;
        options.set_interface(iface);
        const fidius::Plugin plugin = host.load(plugin_name, options);
        const std::string result = plugin.call_json(method, args_json);
        std::printf("\n%s.%s(%s) = %s\n", plugin_name.c_str(), method.c_str(), args_json.c_str(), result.c_str());
        return 0;
    } catch (const fidius::PluginError &error) {
        std::fprintf(stderr, "%s\n  plugin code %s, details %s\n", error.what(),
                     error.plugin_code().value_or("-").c_str(), error.plugin_details().value_or("-").c_str());
    } catch (const fidius::Error &error) {
        std::fprintf(stderr, "%s\n", error.what());
    }
    return 1;
}
