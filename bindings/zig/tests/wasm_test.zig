//! WebAssembly component plugins: calls, traps, deadlines, memory caps,
//! fresh instances, signed packages, precompiled components and discovery.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

test "the WASM calculator: JSON and raw calls, plugin errors and traps" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("wasm");
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();

    // A WASM plugin needs an interface to load.
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.NoInterface, host.load("WasmCalculator", null, &diag));

    var plugin = try host.load("WasmCalculator", &options, null);
    defer plugin.deinit();
    try testing.expectEqual(fidius.Runtime.wasm, plugin.info().runtime());
    try testing.expectEqual(support.calculator_hash, plugin.info().interfaceHash());
    try testing.expectEqual(@as(usize, 0), plugin.loadDiagnosticCount());
    try testing.expectEqual(null, plugin.loadDiagnostic(0));

    try support.expectJson(plugin, "add", "[3, 7]", "10");
    try support.expectJson(plugin, "greet", "[\"Zig\"]", "\"Hello, Zig!\"");
    try support.expectJson(plugin, "describe", "[true, 0.5, [\"a\"], null]", "\"flag=true ratio=0.5 tags=a note=none\"");
    try support.expectJson(plugin, "ping", "[]", "null");

    // Raw calls take the same bincode as a cdylib plugin.
    const reversed = try plugin.call(gpa, 5, "fidius", null);
    defer gpa.free(reversed);
    try testing.expectEqualStrings("suidif", reversed);
    try testing.expectEqual(@as(i64, 10), try support.rawAdd(plugin, 3, 7));
    try testing.expectError(error.PluginSerialization, plugin.call(gpa, 0, "abc", null));

    try testing.expectError(error.PluginError, plugin.callJson(gpa, "divide", "[1, 0]", &diag));
    try testing.expectEqualStrings("DIV_ZERO", diag.pluginCode().?);
    try testing.expectEqualStrings("{\"dividend\":1}", diag.pluginDetails().?);

    // A trap; the next call runs on a fresh instance.
    try support.expectJsonError(plugin, "boom", "[]", error.PluginTrap, "trapped");
    try support.expectJson(plugin, "add", "[20, 22]", "42");
    try support.expectJsonError(plugin, "add", "[1, \"x\"]", error.ArgumentMismatch, "argument 2");
}

test "WASM deadlines, memory caps and the sandbox" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.addSearchPath(try fixtures.path("wasm"), null);
    try builder.setWasmDeadlineMs(0, null); // none by default ...
    try builder.setWasmMemoryLimit(16 << 20, null);
    try builder.addDeniedCapability("env", null);
    try builder.setAllowUnsignedPrecompiled(false, null);
    var host = try builder.build(null);
    defer host.deinit();

    var options = try fixtures.options("hostile.toml");
    defer options.deinit();
    try options.setWasmDeadlineMs(200, null); // ... but 200 ms for this load
    try testing.expectError(error.InvalidArgument, options.setWasmMemoryLimit(0, null));
    var plugin = try host.load("HostileGuest", &options, null);
    defer plugin.deinit();

    try support.expectJson(plugin, "counter", "[]", "1");
    try support.expectJson(plugin, "counter", "[]", "2");
    const started = std.Io.Clock.awake.now(io);
    try support.expectJsonError(plugin, "spin", "[]", error.Timeout, "deadline");
    const elapsed = started.untilNow(io, .awake);
    try testing.expect(elapsed.toMilliseconds() >= 200);
    try support.expectJson(plugin, "counter", "[]", "1"); // a fresh instance
    try support.expectJsonError(plugin, "hog", "[64]", error.MemoryLimit, "16777216");
    try support.expectJson(plugin, "hog", "[2]", "2");
    const high = try plugin.memoryHighWater(null);
    try testing.expect(high >= 2 << 20 and high <= 16 << 20);
    try support.expectJsonError(plugin, "read_file", "[\"/etc/passwd\"]", error.PluginError, "returned an error");
    try support.expectJsonError(plugin, "crash", "[]", error.PluginTrap, "crash");

    // A per-load memory cap below what hog(8) needs.
    var small = try fixtures.options("hostile.toml");
    defer small.deinit();
    try small.setWasmMemoryLimit(4 << 20, null);
    var capped = try host.load("HostileGuest", &small, null);
    defer capped.deinit();
    try support.expectJsonError(capped, "hog", "[8]", error.MemoryLimit, "4194304");
}

test "a fresh WASM instance per call, host-wide or per load" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.addSearchPath(try fixtures.path("wasm"), null);
    try builder.setWasmFreshInstancePerCall(true, null);
    var host = try builder.build(null);
    defer host.deinit();
    var options = try fixtures.options("hostile.toml");
    defer options.deinit();

    var fresh = try host.load("HostileGuest", &options, null);
    defer fresh.deinit();
    try support.expectJson(fresh, "counter", "[]", "1");
    try support.expectJson(fresh, "counter", "[]", "1");

    try options.setWasmFreshInstancePerCall(false, null);
    var persistent = try host.load("HostileGuest", &options, null);
    defer persistent.deinit();
    try support.expectJson(persistent, "counter", "[]", "1");
    try support.expectJson(persistent, "counter", "[]", "2");
}

test "an instance pool: a slot per live instance" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.addSearchPath(try fixtures.path("wasm"), null);
    try builder.setWasmInstancePool(1, null);
    var host = try builder.build(null);
    defer host.deinit();
    var options = try fixtures.options("hostile.toml");
    defer options.deinit();

    var first = try host.load("HostileGuest", &options, null);
    try support.expectJson(first, "counter", "[]", "1");
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.InstancePoolExhausted, host.load("HostileGuest", &options, &diag));
    try support.expectContains(diag.message(), "pool");
    first.deinit(); // gives its slot back
    var second = try host.load("HostileGuest", &options, null);
    defer second.deinit();
    try support.expectJson(second, "counter", "[]", "1");
    try support.expectJson(second, "counter", "[]", "2");
}

test "a package over the host's size limit is refused unread" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    const package = try fixtures.path("wasm/calc");

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setMaxPackageSize(1000, null);
    var small = try builder.build(null);
    defer small.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.FileTooLarge, small.loadPath(package, null, &options, &diag));
    try support.expectContains(diag.message(), "1000");

    var host = try fixtures.host(null);
    defer host.deinit();
    var plugin = try host.loadPath(package, null, &options, null);
    defer plugin.deinit();
    try support.expectJson(plugin, "add", "[1, 2]", "3");
}

test "a guest asleep on a WASI clock is stopped at the deadline" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("wasm");
    defer host.deinit();
    var options = try fixtures.options("hostile.toml");
    defer options.deinit();
    try options.setWasmDeadlineMs(200, null);
    var plugin = try host.load("HostileGuest", &options, null);
    defer plugin.deinit();
    const started = std.Io.Clock.awake.now(io);
    try support.expectJsonError(plugin, "nap", "[3600000]", error.Timeout, "deadline");
    const elapsed = started.untilNow(io, .awake);
    try testing.expect(elapsed.toMilliseconds() >= 200 and elapsed.toMilliseconds() < 30_000);
}

test "signed WASM packages" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.signedHost(null);
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();

    var plugin = try host.loadPath(try fixtures.path("wasm-signed/calc"), null, &options, null);
    defer plugin.deinit();
    try support.expectJson(plugin, "multiply", "[6, 7]", "42");

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.SignatureRequired, host.loadPath(try fixtures.path("wasm/calc"), null, &options, &diag));
    try support.expectContains(diag.message(), "package.sig");
}

test "precompiled components are used only when allowed" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    const cwd = std.Io.Dir.cwd();
    const component = try cwd.readFileAlloc(io, try fixtures.path("wasm/calc/calc_component.wasm"), gpa, .unlimited);
    defer gpa.free(component);
    const manifest = try cwd.readFileAlloc(io, try fixtures.path("wasm/calc/package.toml"), gpa, .unlimited);
    defer gpa.free(manifest);

    const cwasm = try fidius.precompileComponent(gpa, component, null);
    defer gpa.free(cwasm);
    try testing.expect(cwasm.len > 0);
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.InvalidComponent, fidius.precompileComponent(gpa, "nope", &diag));
    try support.expectContains(diag.message(), "precompile");

    // A package directory with the component and its .cwasm.
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.writeFile(io, .{ .sub_path = "package.toml", .data = manifest });
    try tmp.dir.writeFile(io, .{ .sub_path = "calc_component.wasm", .data = component });
    try tmp.dir.writeFile(io, .{ .sub_path = "calc_component.cwasm", .data = cwasm });
    const package = try tmp.dir.realPathFileAlloc(io, ".", gpa);
    defer gpa.free(package);
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();

    // Unsigned precompiled code is compiled instead, and the load says so.
    var cautious = try fixtures.host(null);
    defer cautious.deinit();
    var compiled = try cautious.loadPath(package, null, &options, null);
    defer compiled.deinit();
    try testing.expectEqual(@as(usize, 1), compiled.loadDiagnosticCount());
    try support.expectContains(compiled.loadDiagnostic(0).?, "not signed");
    try support.expectJson(compiled, "add", "[1, 2]", "3");

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setAllowUnsignedPrecompiled(true, null);
    var trusting = try builder.build(null);
    defer trusting.deinit();
    var precompiled = try trusting.loadPath(package, null, &options, null);
    defer precompiled.deinit();
    try testing.expectEqual(@as(usize, 0), precompiled.loadDiagnosticCount());
    try support.expectJson(precompiled, "add", "[2, 2]", "4");
}

test "a compile cache serves a later host" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const root = try tmp.dir.realPathFileAlloc(io, ".", gpa);
    defer gpa.free(root);
    const cache = try std.fs.path.join(gpa, &.{ root, "cache" });
    defer gpa.free(cache);

    // Two hosts, as two processes would be: the first compiles and keeps
    // the component (and makes the cache's key), the second reads it.
    for (0..2) |_| {
        var builder = try fidius.HostBuilder.init();
        defer builder.deinit();
        try builder.setWasmCompileCache(cache, 0, null);
        var host = try builder.build(null);
        defer host.deinit();
        var plugin = try host.loadPath(try fixtures.path("wasm/calc"), null, &options, null);
        defer plugin.deinit();
        try testing.expectEqual(@as(usize, 0), plugin.loadDiagnosticCount());
        try support.expectJson(plugin, "add", "[40, 2]", "42");
        try tmp.dir.access(io, "cache/cache.key", .{});
    }

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try testing.expectError(error.InvalidArgument, builder.setWasmCompileCache("", 0, &diag));
}

test "archives unpack and load" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const dest = try tmp.dir.realPathFileAlloc(io, ".", gpa);
    defer gpa.free(dest);
    var host = try fixtures.host(null);
    defer host.deinit();

    const dir = try host.unpackArchive(gpa, try fixtures.path("archives/calc.fid"), dest, null);
    defer gpa.free(dir);
    const expected = try std.fs.path.join(gpa, &.{ dest, "WasmCalculator-0.1.0" });
    defer gpa.free(expected);
    try testing.expectEqualStrings(expected, dir);
    for ([_][]const u8{ dir, try fixtures.path("archives/calc.fid") }) |path| {
        var plugin = try host.loadPath(path, null, &options, null);
        defer plugin.deinit();
        try support.expectJson(plugin, "add", "[40, 2]", "42");
    }
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.InvalidArgument, host.unpackArchive(gpa, try fixtures.path("archives/calc.fid"), dest, &diag));
    try support.expectContains(diag.message(), "already exists");
}

test "discovery lists the WASM packages" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("wasm");
    defer host.deinit();
    var found = try host.discover(null);
    defer found.deinit();
    var names: [5][]const u8 = undefined;
    var wasm_count: usize = 0;
    for (0..found.pluginCount()) |i| {
        const info = found.plugin(i).?;
        if (info.runtime() != .wasm) continue;
        if (wasm_count < names.len) names[wasm_count] = info.name();
        wasm_count += 1;
    }
    try testing.expectEqual(@as(usize, 5), wasm_count);
    std.mem.sort([]const u8, &names, {}, lessThan);
    try testing.expectEqualStrings("FetchGuest", names[0]);
    try testing.expectEqualStrings("HostileGuest", names[1]);
    try testing.expectEqualStrings("SocketGuest", names[2]);
    try testing.expectEqualStrings("WasmCalculator", names[3]);
    try testing.expectEqualStrings("WasmStreams", names[4]);
}

fn lessThan(_: void, a: []const u8, b: []const u8) bool {
    return std.mem.lessThan(u8, a, b);
}
