//! Python plugins: the Python calculator against the native one, raw and
//! JSON calls, exceptions as plugin errors, signed packages, discovery and
//! deadlines.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

test "the Python calculator answers as the native one" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var python = try fixtures.host("python");
    defer python.deinit();
    var native = try fixtures.host("plugins");
    defer native.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();

    try testing.expectError(error.NoInterface, python.load("PyCalculator", null, null));
    var py = try python.load("PyCalculator", &options, null);
    defer py.deinit();
    var rust = try native.load("BasicCalculator", &options, null);
    defer rust.deinit();
    try testing.expectEqual(fidius.Runtime.python, py.info().runtime());
    try testing.expectEqual(support.calculator_hash, py.info().interfaceHash());
    try testing.expect(py.hasCapability(0));

    const calls = [_]struct { []const u8, []const u8 }{
        .{ "add", "[3, 7]" },
        .{ "add", "[9223372036854775807, 1]" },
        .{ "greet", "[\"Zig\"]" },
        .{ "divide", "[-9, 2]" },
        .{ "describe", "[true, 0.25, [\"a\", \"b\"], null]" },
        .{ "reverse", "[[1, 2, 3]]" },
        .{ "ping", "[]" },
    };
    for (calls) |call| {
        const method, const args = call;
        const from_python = try py.callJson(gpa, method, args, null);
        defer gpa.free(from_python);
        const from_rust = try rust.callJson(gpa, method, args, null);
        defer gpa.free(from_rust);
        try testing.expectEqualStrings(from_rust, from_python);
    }
    try support.expectJson(py, "multiply", "[6, 7]", "42");

    // Raw calls: bytes for raw methods, bincode for typed ones.
    const reversed = try py.call(gpa, 5, "fidius", null);
    defer gpa.free(reversed);
    try testing.expectEqualStrings("suidif", reversed);
    try testing.expectEqual(@as(i64, 10), try support.rawAdd(py, 3, 7));
    try testing.expectError(error.PluginSerialization, py.call(gpa, 0, "abc", null));

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.PluginError, py.callJson(gpa, "divide", "[1, 0]", &diag));
    try testing.expectEqualStrings("DIV_ZERO", diag.pluginCode().?);
    try testing.expectEqualStrings("{\"dividend\":1}", diag.pluginDetails().?);
    try support.expectJsonError(py, "boom", "[]", error.PluginError, "RuntimeError");
    try support.expectJsonError(py, "add", "[1, \"x\"]", error.ArgumentMismatch, "argument 2");
    try support.expectJsonError(py, "add", "[1,", error.InvalidJson, "not valid JSON");
    try support.expectJson(py, "add", "[20, 22]", "42");
}

test "Python exceptions become plugin errors" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    var plugin = try host.loadPath(try fixtures.path("python/raising"), null, &options, null);
    defer plugin.deinit();

    try support.expectJsonError(plugin, "add", "[1, 2]", error.PluginError, "SystemExit");
    try support.expectJsonError(plugin, "greet", "[\"x\"]", error.PluginError, "KeyboardInterrupt");
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.PluginError, plugin.callJson(gpa, "divide", "[1, 2]", &diag));
    try testing.expectEqualStrings("QUOTA", diag.pluginCode().?);
    try support.expectContains(diag.pluginMessage().?, "over quota dividing 1");
    try support.expectContains(diag.pluginDetails().?, "Traceback");
    try support.expectJsonError(plugin, "describe", "[true, 1.0, [], null]", error.PluginProtocol, "expected a str");
    try support.expectJsonError(plugin, "reverse", "[[1]]", error.PluginProtocol, "must be bytes");
    try support.expectJsonError(plugin, "multiply", "[1, 2]", error.NotImplemented, "multiply");
    try testing.expect(!plugin.hasCapability(0));
}

test "signed Python packages" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.signedHost(null);
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();

    var plugin = try host.loadPath(try fixtures.path("python-signed/calc"), null, &options, null);
    defer plugin.deinit();
    try support.expectJson(plugin, "greet", "[\"signed\"]", "\"Hello, signed!\"");
    try testing.expectError(error.SignatureRequired, host.loadPath(try fixtures.path("python/calc"), null, &options, null));
}

test "discovery lists the Python packages" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("python");
    defer host.deinit();
    var found = try host.discover(null);
    defer found.deinit();
    var python_count: usize = 0;
    for (0..found.pluginCount()) |i| {
        if (found.plugin(i).?.runtime() == .python) python_count += 1;
    }
    try testing.expectEqual(@as(usize, 4), python_count); // calc, types, raising, stream
}

const hostile_manifest =
    \\[package]
    \\name = "Hostile"
    \\version = "1"
    \\interface = "Calculator"
    \\interface_version = 2
    \\runtime = "python"
    \\
    \\[python]
    \\entry_module = "plugin"
    \\
    \\[metadata]
    \\
;

/// A Calculator whose add never returns and whose greet sleeps for an hour;
/// multiply answers.
const hostile_calculator =
    \\import time
    \\__interface_hash__ = 0x0271E9B7D21D10F1
    \\def add(a, b):
    \\    while True:
    \\        pass
    \\def greet(name):
    \\    time.sleep(3600)
    \\def divide(a, b):
    \\    return a // b
    \\def describe(flag, ratio, tags, note):
    \\    return ''
    \\def boom():
    \\    return ''
    \\def reverse(data):
    \\    return data[::-1]
    \\def ping():
    \\    return None
    \\def multiply(a, b):
    \\    return a * b
    \\
;

/// Writes the package `pkg` with `plugin.py` = `source` into `tmp` and
/// returns its absolute path (free it with `gpa`).
fn hostilePackage(tmp: *testing.TmpDir, source: []const u8) ![:0]u8 {
    try tmp.dir.createDirPath(io, "pkg");
    try tmp.dir.writeFile(io, .{ .sub_path = "pkg/package.toml", .data = hostile_manifest });
    try tmp.dir.writeFile(io, .{ .sub_path = "pkg/plugin.py", .data = source });
    return tmp.dir.realPathFileAlloc(io, "pkg", gpa);
}

/// Loads the hostile calculator and expects add (an endless loop) and greet
/// (an hour's sleep) to be stopped at a 300 ms deadline, well before the
/// default 10 s, and the plugin to answer afterwards; then expects a
/// package whose import never ends to fail to load the same way.
fn expectPythonTimeouts(host: fidius.Host, options: *const fidius.LoadOptions) !void {
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const package = try hostilePackage(&tmp, hostile_calculator);
    defer gpa.free(package);
    var plugin = try host.loadPath(package, null, options, null);
    defer plugin.deinit();
    const calls = [_]struct { []const u8, []const u8 }{ .{ "add", "[1, 2]" }, .{ "greet", "[\"x\"]" } };
    for (calls) |call| {
        const method, const args = call;
        const started = std.Io.Clock.awake.now(io);
        try support.expectJsonError(plugin, method, args, error.Timeout, "deadline");
        const elapsed = started.untilNow(io, .awake).toMilliseconds();
        try testing.expect(elapsed >= 300 and elapsed < 5_000);
    }
    try support.expectJson(plugin, "multiply", "[6, 7]", "42"); // still usable

    var endless_tmp = testing.tmpDir(.{});
    defer endless_tmp.cleanup();
    const endless = try hostilePackage(&endless_tmp, "while True:\n    pass\n");
    defer gpa.free(endless);
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const started = std.Io.Clock.awake.now(io);
    try testing.expectError(error.Timeout, host.loadPath(endless, null, options, &diag));
    try testing.expect(started.untilNow(io, .awake).toMilliseconds() < 5_000);
    try support.expectContains(diag.message(), "deadline");
}

test "a Python deadline on the host stops endless calls and imports" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setPythonDeadlineMs(300, null);
    var host = try builder.build(null);
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    try expectPythonTimeouts(host, &options);
}

test "a Python deadline per load" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    try options.setPythonDeadlineMs(300, null);
    try expectPythonTimeouts(host, &options);
}

test "the call deadline bounds Python calls and imports" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setCallDeadlineMs(300, null);
    var host = try builder.build(null);
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    try expectPythonTimeouts(host, &options);
}
