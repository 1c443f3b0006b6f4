//! Host functions: the Bookkeeper fixture calls its host's Ledger (log,
//! lookup -> Option<u64>, charge -> Result<u64, PluginError>) through JSON
//! and raw handlers, with the context of each call, for the native library
//! and the WASM component; typed errors, the once-per-library binding of
//! native plugins, and a native plugin isolated in a worker calling its host.
//!
//! Every native test loads a private copy of the library: a copy is an image
//! of its own, bound by that test alone (fidius binds a host interface once
//! per mapped library, for the whole process).
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

const native_library = "hostcall/libhostcall_plugin.so";
const component = "hostcall-wasm/bookkeeper";

/// The Ledger a handler serves, and what it saw. Handlers may run on
/// several threads at once, hence the mutex.
const Ledger = struct {
    mutex: std.Io.Mutex = .init,
    logs: u32 = 0,
    lookups: u32 = 0,
    charges: u32 = 0,
    /// log calls whose context was not `expected_context`.
    bad_context: u32 = 0,
    expected_context: ?*anyopaque = null,
    last_log: [64]u8 = undefined,
    last_log_len: usize = 0,
    releases: std.atomic.Value(u32) = .init(0),

    /// JSON: log counts; lookup("answer") is 41, anything else null;
    /// charge("alice", 250) is 750, any other charge fails with NO_FUNDS.
    fn json(ledger: *Ledger, call: fidius.HostCall) fidius.HostError!void {
        ledger.mutex.lockUncancelable(io);
        defer ledger.mutex.unlock(io);
        switch (call.method) {
            0 => {
                ledger.logs += 1;
                if (call.context != ledger.expected_context) ledger.bad_context += 1;
                const n = @min(call.args.len, ledger.last_log.len);
                @memcpy(ledger.last_log[0..n], call.args[0..n]);
                ledger.last_log_len = n;
                // Nothing written: null.
            },
            1 => {
                ledger.lookups += 1;
                if (std.mem.eql(u8, call.args, "[\"answer\"]")) {
                    try call.result.print("{d}", .{41});
                } else {
                    try call.result.writeAll("null");
                }
            },
            2 => {
                ledger.charges += 1;
                if (!std.mem.eql(u8, call.args, "[\"alice\",250]")) {
                    return call.fail("NO_FUNDS", "the account cannot pay", "{\"short\":250}");
                }
                try call.result.writeAll("750");
            },
            else => return error.InvalidArgument,
        }
    }

    /// Raw: lookup(key) is Some(100 * key length), in bincode.
    fn raw(ledger: *Ledger, call: fidius.HostCall) fidius.HostError!void {
        if (call.method != 1 or call.args.len < 8) return error.InvalidArgument;
        // bincode String: u64 length, then the bytes.
        const key_len = std.mem.readInt(u64, call.args[0..8], .little);
        ledger.mutex.lockUncancelable(io);
        ledger.lookups += 1;
        ledger.mutex.unlock(io);
        try call.result.writeByte(1); // Some
        try call.result.writeInt(u64, key_len * 100, .little);
    }

    fn release(ledger: *Ledger) void {
        _ = ledger.releases.fetchAdd(1, .monotonic);
    }

    fn lastLog(ledger: *Ledger) []const u8 {
        return ledger.last_log[0..ledger.last_log_len];
    }
};

/// A private copy of the native hostcall library in `tmp`: its path.
fn privateLibrary(fixtures: *support.Fixtures, tmp: *testing.TmpDir) ![:0]u8 {
    try std.Io.Dir.copyFile(std.Io.Dir.cwd(), try fixtures.path(native_library), tmp.dir, "libhostcall_plugin.so", io, .{});
    return tmp.dir.realPathFileAlloc(io, "libhostcall_plugin.so", gpa);
}

/// Loads the Bookkeeper at `path` with `binding` (none for null).
fn loadBookkeeper(fixtures: *support.Fixtures, host: fidius.Host, path: []const u8, binding: ?*const fidius.Binding, diag: ?*fidius.Diagnostics) !fidius.Plugin {
    var options = try fixtures.options("bookkeeper.toml");
    defer options.deinit();
    if (binding) |b| try options.addBinding(b, null);
    return host.loadPath(path, null, &options, diag);
}

/// A JSON binding of the Ledger to `ledger`.
fn jsonBinding(fixtures: *support.Fixtures, ledger: *Ledger) !fidius.Binding {
    var iface = try fixtures.interface("ledger.toml");
    defer iface.deinit(); // the binding keeps what it needs
    return fidius.Binding.initJson(&iface, *Ledger, ledger, Ledger.json, Ledger.release, null);
}

/// charge_from_thread: the plugin's thread charges through the host.
/// alice pays 750; bob gets the host's NO_FUNDS, with its message and
/// details. Reports failures in `failed`.
const Charging = struct {
    plugin: fidius.Plugin,
    failed: bool = false,

    fn run(charging: *Charging) void {
        charging.check() catch |err| {
            std.debug.print("charge_from_thread: {t}\n", .{err});
            charging.failed = true;
        };
    }

    fn check(charging: *Charging) !void {
        try support.expectJson(charging.plugin, "charge_from_thread", "[\"alice\", 250]", "750");
        var diag: fidius.Diagnostics = .{};
        defer diag.deinit();
        try testing.expectError(error.PluginError, charging.plugin.callJson(gpa, "charge_from_thread", "[\"bob\", 5]", &diag));
        try testing.expectEqualStrings("NO_FUNDS", diag.pluginCode().?);
        try testing.expectEqualStrings("the account cannot pay", diag.pluginMessage().?);
        try testing.expectEqualStrings("{\"short\":250}", diag.pluginDetails().?);
    }
};

/// What the native library and the component do alike with the JSON Ledger.
fn exerciseJson(fixtures: *support.Fixtures, path: []const u8) !void {
    var host = try fixtures.host(null);
    defer host.deinit();
    var ledger: Ledger = .{};
    var request: u32 = 0;
    {
        var binding = try jsonBinding(fixtures, &ledger);
        defer binding.deinit(); // the plugin keeps it
        var diag: fidius.Diagnostics = .{};
        defer diag.deinit();
        var plugin = loadBookkeeper(fixtures, host, path, &binding, &diag) catch |err| {
            std.debug.print("loading {s}: {f}\n", .{ path, diag });
            return err;
        };
        defer plugin.deinit();

        // record logs "x #0" .. "x #4" through the host, with our context.
        ledger.expected_context = &request;
        const recorded = try plugin.callJsonWithContext(gpa, "record", "[\"x\", 5]", &request, &diag);
        defer gpa.free(recorded);
        try testing.expectEqualStrings("5", recorded);
        try testing.expectEqual(@as(u32, 5), ledger.logs);
        try testing.expectEqual(@as(u32, 0), ledger.bad_context);
        try testing.expectEqualStrings("[\"x #4\"]", ledger.lastLog());

        // Without a context the handler sees null.
        ledger.expected_context = null;
        try support.expectJson(plugin, "record", "[\"y\", 2]", "2");
        try testing.expectEqual(@as(u32, 7), ledger.logs);
        try testing.expectEqual(@as(u32, 0), ledger.bad_context);

        // Option<u64> both ways.
        try support.expectJson(plugin, "lookup_plus_one", "[\"answer\"]", "42");
        try support.expectJson(plugin, "lookup_plus_one", "[\"missing\"]", "null");
        try testing.expectEqual(@as(u32, 2), ledger.lookups);

        // A typed error of the host reaches the plugin as its own. A native
        // plugin's thread started from this thread would pin the library
        // until this thread exits: charge from a thread of our own.
        var charging: Charging = .{ .plugin = plugin };
        const thread = try std.Thread.spawn(.{}, Charging.run, .{&charging});
        thread.join();
        try testing.expect(!charging.failed);
        try testing.expectEqual(@as(u32, 2), ledger.charges);
        try testing.expectEqual(@as(u32, 0), ledger.releases.load(.monotonic));
    }
    // The plugin and the binding are gone: the context is released, once.
    try testing.expectEqual(@as(u32, 1), ledger.releases.load(.monotonic));
}

test "a JSON binding serves a native plugin, with contexts and typed errors" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const library = try privateLibrary(&fixtures, &tmp);
    defer gpa.free(library);
    try exerciseJson(&fixtures, library);
}

test "a JSON binding serves a WASM component, with contexts and typed errors" {
    if (!fidius.features().wasm) return error.SkipZigTest;
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    try exerciseJson(&fixtures, try fixtures.path(component));
}

/// lookup_plus_one("abcd") through the raw Ledger: 4 * 100 + 1.
fn exerciseRaw(fixtures: *support.Fixtures, path: []const u8) !void {
    var host = try fixtures.host(null);
    defer host.deinit();
    var ledger: Ledger = .{};
    var iface = try fixtures.interface("ledger.toml");
    defer iface.deinit();
    var binding = try fidius.Binding.initRaw(&iface, *Ledger, &ledger, Ledger.raw, null, null);
    defer binding.deinit();
    var plugin = try loadBookkeeper(fixtures, host, path, &binding, null);
    defer plugin.deinit();

    try support.expectJson(plugin, "lookup_plus_one", "[\"abcd\"]", "401");
    // The raw call too: bincode ("abcd") in, Result<Option<u64>> out.
    var input: [12]u8 = undefined;
    std.mem.writeInt(u64, input[0..8], 4, .little);
    @memcpy(input[8..], "abcd");
    var request: u8 = 0;
    const output = try plugin.callWithContext(gpa, 1, &input, &request, null);
    defer gpa.free(output);
    try testing.expectEqual(@as(usize, 9), output.len);
    try testing.expectEqual(@as(u8, 1), output[0]);
    try testing.expectEqual(@as(u64, 401), std.mem.readInt(u64, output[1..9], .little));
    try testing.expectEqual(@as(u32, 2), ledger.lookups);

    // A method the raw handler does not serve: a host failure naming it.
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.PluginError, plugin.callJson(gpa, "record", "[\"z\", 1]", &diag));
    try support.expectContains(diag.message(), "INVALID_ARGUMENT");
}

test "a raw binding answers in bincode, for a native plugin" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const library = try privateLibrary(&fixtures, &tmp);
    defer gpa.free(library);
    try exerciseRaw(&fixtures, library);
}

test "a raw binding answers in bincode, for a WASM component" {
    if (!fidius.features().wasm) return error.SkipZigTest;
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    try exerciseRaw(&fixtures, try fixtures.path(component));
}

test "an isolated native plugin calls its host across the process boundary" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const library = try privateLibrary(&fixtures, &tmp);
    defer gpa.free(library);
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setIsolation(.isolated, null);
    try builder.setWorkerPath(try fixtures.path("../release/fidius-host-worker"), null);
    var host = try builder.build(null);
    defer host.deinit();
    var ledger: Ledger = .{};
    var binding = try jsonBinding(&fixtures, &ledger);
    defer binding.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    var plugin = loadBookkeeper(&fixtures, host, library, &binding, &diag) catch |err| {
        std.debug.print("loading {s} isolated: {f}\n", .{ library, diag });
        return err;
    };
    defer plugin.deinit();
    try testing.expect((try plugin.workerUsage(null)).pid > 0);

    // The handler runs here, with the context of the call in the worker.
    var request: u32 = 0;
    ledger.expected_context = &request;
    const recorded = try plugin.callJsonWithContext(gpa, "record", "[\"x\", 3]", &request, &diag);
    defer gpa.free(recorded);
    try testing.expectEqualStrings("3", recorded);
    try testing.expectEqual(@as(u32, 3), ledger.logs);
    try testing.expectEqual(@as(u32, 0), ledger.bad_context);
    try testing.expectEqualStrings("[\"x #2\"]", ledger.lastLog());
    try support.expectJson(plugin, "lookup_plus_one", "[\"answer\"]", "42");
    try testing.expectEqual(@as(u32, 1), ledger.lookups);
}

test "a native library is bound once: another binding fails while a plugin lives" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const library = try privateLibrary(&fixtures, &tmp);
    defer gpa.free(library);
    var host = try fixtures.host(null);
    defer host.deinit();
    var other_host = try fixtures.host(null);
    defer other_host.deinit();

    var first_ledger: Ledger = .{};
    var second_ledger: Ledger = .{};
    var first = try jsonBinding(&fixtures, &first_ledger);
    defer first.deinit();
    var second = try jsonBinding(&fixtures, &second_ledger);
    defer second.deinit();

    var plugin = try loadBookkeeper(&fixtures, host, library, &first, null);
    var plugin_alive = true;
    defer if (plugin_alive) plugin.deinit();

    // The same file in another host is the same mapped library.
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.HostAlreadyBound, loadBookkeeper(&fixtures, other_host, library, &second, &diag));
    try testing.expectEqual(fidius.Status.host_already_bound, diag.status());
    try support.expectContains(diag.message(), "'Ledger' is already bound");

    // The same binding is fine, and answers.
    var again = try loadBookkeeper(&fixtures, other_host, library, &first, null);
    try support.expectJson(again, "lookup_plus_one", "[\"answer\"]", "42");
    again.deinit();
    try testing.expectEqual(@as(u32, 1), first_ledger.lookups);
    try testing.expectEqual(@as(u32, 0), second_ledger.lookups);

    // Once every plugin of the library is gone it is unmapped, and another
    // binding takes.
    plugin.deinit();
    plugin_alive = false;
    var rebound = try loadBookkeeper(&fixtures, other_host, library, &second, null);
    defer rebound.deinit();
    try support.expectJson(rebound, "lookup_plus_one", "[\"answer\"]", "42");
    try testing.expectEqual(@as(u32, 1), second_ledger.lookups);
}
