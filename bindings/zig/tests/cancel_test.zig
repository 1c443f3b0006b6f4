//! Cancellation: a call stopped from another thread through its
//! `CancelToken`, in each runtime that can stop one (an isolated native
//! plugin, whose worker is killed; a WASM guest, whose instance is
//! discarded; in-process Python, interrupted by an exception), a token
//! cancelled before the call (nothing runs), in-process native code
//! (`error.Unsupported` with a token, an ordinary call without), the
//! context of host functions through a cancellable call, and the token's
//! own life.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

/// How long after the start of a call the other thread cancels it.
const cancel_after_ms = 300;

/// The worker executable `make lib` builds next to the library.
fn workerPath(fixtures: *support.Fixtures) ![]const u8 {
    return fixtures.path("../release/fidius-host-worker");
}

/// A host running plugins isolated in the fixtures' worker, never
/// restarting a worker lost to a fault (a cancel restarts it regardless),
/// with a 20 s call deadline: far past the cancel, so that a cancel that
/// does not work fails as `error.Timeout` rather than hanging.
fn isolatedHost(fixtures: *support.Fixtures) !fidius.Host {
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setIsolation(.isolated, null);
    try builder.setWorkerPath(try workerPath(fixtures), null);
    try builder.setRestartPolicy(0, 60_000, null);
    try builder.setCallDeadlineMs(20_000, null);
    return builder.build(null);
}

/// Loads the plugin at `relative` with the interface `interface_name`;
/// says why when it fails.
fn loadWith(fixtures: *support.Fixtures, host: fidius.Host, relative: []const u8, interface_name: []const u8) !fidius.Plugin {
    var options = try fixtures.options(interface_name);
    defer options.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    return host.loadPath(try fixtures.path(relative), null, &options, &diag) catch |err| {
        std.debug.print("load {s}: {f}\n", .{ relative, diag });
        return err;
    };
}

/// Faulty's `calls []`: how many calls the instance served before this one.
fn callCount(plugin: fidius.Plugin) !u64 {
    const json = try plugin.callJson(gpa, "calls", "[]", null);
    defer gpa.free(json);
    return std.fmt.parseInt(u64, json, 10);
}

/// The bincode of a one-String argument tuple: u64 length, then the bytes.
fn encodeString(comptime text: []const u8) [8 + text.len]u8 {
    var out: [8 + text.len]u8 = undefined;
    std.mem.writeInt(u64, out[0..8], text.len, .little);
    @memcpy(out[8..], text);
    return out;
}

/// A call to make cancellable: JSON by name, or raw by index with bincode.
const Call = union(enum) {
    json: struct { method: []const u8, args: []const u8 },
    raw: struct { method: u32, input: []const u8 },

    fn run(call: Call, plugin: fidius.Plugin, token: ?*const fidius.CancelToken, diag: *fidius.Diagnostics) fidius.AllocError![]u8 {
        return switch (call) {
            .json => |j| plugin.callJsonCancellable(gpa, j.method, j.args, null, token, diag),
            .raw => |r| plugin.callCancellable(gpa, r.method, r.input, null, token, diag),
        };
    }
};

fn cancelLater(token: fidius.CancelToken) void {
    io.sleep(.fromMilliseconds(cancel_after_ms), .awake) catch {};
    token.cancel();
}

/// Makes `call` with a fresh token that another thread cancels after
/// `cancel_after_ms`, and expects `error.Cancelled`: the CANCELLED status,
/// a message saying so, and a call that ended after the cancel (well
/// before any deadline).
fn expectCancelledFromThread(plugin: fidius.Plugin, call: Call) !void {
    var token = try fidius.CancelToken.init(null);
    defer token.deinit(); // after the join below: nothing uses it then
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    const canceller = try std.Thread.spawn(.{}, cancelLater, .{token});
    const started = std.Io.Clock.awake.now(io);
    const result = call.run(plugin, &token, &diag);
    const elapsed = started.untilNow(io, .awake).toMilliseconds();
    canceller.join();

    if (result) |output| {
        defer gpa.free(output);
        std.debug.print("{any} gave {any}, expected Cancelled\n", .{ call, output });
        return error.TestUnexpectedResult;
    } else |err| {
        if (err != error.Cancelled) std.debug.print("{any}: {t}, {f}\n", .{ call, err, diag });
        try testing.expectEqual(error.Cancelled, err);
    }
    try testing.expect(token.isCancelled());
    try testing.expectEqual(fidius.Status.cancelled, diag.status());
    try support.expectContains(diag.message(), "cancel");
    if (elapsed < cancel_after_ms - 100 or elapsed > 10_000) {
        std.debug.print("{any} stopped after {d} ms\n", .{ call, elapsed });
        return error.TestUnexpectedResult;
    }
}

test "an isolated native call is cancelled by killing its worker; the next call gets a new one" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try isolatedHost(&fixtures);
    defer host.deinit();
    var plugin = try loadWith(&fixtures, host, "faulty/libfaulty_plugin.so", "faulty.toml");
    defer plugin.deinit();
    const first_pid = (try plugin.workerUsage(null)).pid;
    try testing.expect(first_pid > 0);

    try expectCancelledFromThread(plugin, .{ .json = .{ .method = "fault", .args = "[\"spin\"]" } });
    // A new worker (the restart policy allows none after a fault: a
    // cancel is not counted), a new instance.
    try support.expectJson(plugin, "ping", "[1]", "2");
    try testing.expectEqual(@as(u64, 1), try callCount(plugin));
    const usage = try plugin.workerUsage(null);
    try testing.expect(usage.pid > 0 and usage.pid != first_pid);
    try testing.expectEqual(@as(u64, 1), usage.restarts);

    // The raw call: fault("spin") as bincode, by index.
    const spin = encodeString("spin");
    try expectCancelledFromThread(plugin, .{ .raw = .{ .method = 2, .input = &spin } });
    try support.expectJson(plugin, "ping", "[41]", "42");
    try testing.expectEqual(@as(u64, 2), (try plugin.workerUsage(null)).restarts);
}

test "a WASM guest asleep or spinning is cancelled; the next call gets a fresh instance" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("wasm");
    defer host.deinit();
    var options = try fixtures.options("hostile.toml");
    defer options.deinit();
    try options.setWasmDeadlineMs(20_000, null);
    var plugin = try host.load("HostileGuest", &options, null);
    defer plugin.deinit();

    try support.expectJson(plugin, "counter", "[]", "1");
    try support.expectJson(plugin, "counter", "[]", "2");
    try expectCancelledFromThread(plugin, .{ .json = .{ .method = "nap", .args = "[3600000]" } });
    try support.expectJson(plugin, "counter", "[]", "1"); // a fresh instance
    try expectCancelledFromThread(plugin, .{ .json = .{ .method = "spin", .args = "[]" } });
    try support.expectJson(plugin, "counter", "[]", "1");

    // A token nobody cancels changes nothing.
    var token = try fidius.CancelToken.init(null);
    defer token.deinit();
    const counted = try plugin.callJsonCancellable(gpa, "counter", "[]", null, &token, null);
    defer gpa.free(counted);
    try testing.expectEqualStrings("2", counted);
    const slept = try plugin.callJsonCancellable(gpa, "nap", "[20]", null, &token, null);
    defer gpa.free(slept);
    try testing.expect(try std.fmt.parseInt(u64, slept, 10) >= 20);
}

test "in-process Python is cancelled with an exception, and lives on" {
    if (!fidius.features().python) return error.SkipZigTest;
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setPythonDeadlineMs(20_000, null);
    var host = try builder.build(null);
    defer host.deinit();
    var plugin = try loadWith(&fixtures, host, "isolated/py-faulty", "faulty.toml");
    defer plugin.deinit();
    try testing.expectEqual(fidius.Runtime.python, plugin.info().runtime());

    const before = try callCount(plugin);
    try expectCancelledFromThread(plugin, .{ .json = .{ .method = "fault", .args = "[\"spin\"]" } });
    // The same instance, its state kept: the spin call counted.
    try testing.expectEqual(before + 2, try callCount(plugin));
    try support.expectJson(plugin, "ping", "[1]", "2");
    // No exception lands in a later call.
    try io.sleep(.fromMilliseconds(150), .awake);
    try support.expectJson(plugin, "ping", "[2]", "3");
}

test "in-process native calls with a token are Unsupported and never run; without one they run" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var plugin = try loadWith(&fixtures, host, "faulty/libfaulty_plugin.so", "faulty.toml");
    defer plugin.deinit();
    try testing.expectEqual(fidius.Runtime.cdylib, plugin.info().runtime());

    // The library's call count is process-wide: compare with before.
    const before = try callCount(plugin);
    var token = try fidius.CancelToken.init(null);
    defer token.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    var ping: [8]u8 = undefined;
    std.mem.writeInt(u64, &ping, 41, .little);
    try testing.expectError(error.Unsupported, plugin.callJsonCancellable(gpa, "ping", "[1]", null, &token, &diag));
    try testing.expectEqual(fidius.Status.unsupported, diag.status());
    try support.expectContains(diag.message(), "isolated");
    try testing.expectError(error.Unsupported, plugin.callCancellable(gpa, 0, &ping, null, &token, &diag));
    try testing.expectEqual(fidius.Status.unsupported, diag.status());
    try testing.expectEqual(before + 1, try callCount(plugin)); // neither reached it
    try testing.expect(!token.isCancelled());

    // A null token: ordinary calls.
    const json = try plugin.callJsonCancellable(gpa, "ping", "[1]", null, null, &diag);
    defer gpa.free(json);
    try testing.expectEqualStrings("2", json);
    try testing.expectEqual(fidius.Status.ok, diag.status());
    const output = try plugin.callCancellable(gpa, 0, &ping, null, null, null);
    defer gpa.free(output);
    try testing.expectEqual(@as(usize, 8), output.len);
    try testing.expectEqual(@as(u64, 42), std.mem.readInt(u64, output[0..8], .little));
    try testing.expectEqual(before + 4, try callCount(plugin));
}

test "a token cancelled before the call refuses it: nothing reaches the plugin" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var token = try fidius.CancelToken.init(null);
    defer token.deinit();
    token.cancel();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    // An isolated plugin: its worker is not touched.
    var isolated_host = try isolatedHost(&fixtures);
    defer isolated_host.deinit();
    var faulty = try loadWith(&fixtures, isolated_host, "faulty/libfaulty_plugin.so", "faulty.toml");
    defer faulty.deinit();
    try testing.expectEqual(@as(u64, 0), try callCount(faulty));
    const pid = (try faulty.workerUsage(null)).pid;
    try testing.expectError(error.Cancelled, faulty.callJsonCancellable(gpa, "fault", "[\"spin\"]", null, &token, &diag));
    try testing.expectEqual(fidius.Status.cancelled, diag.status());
    try support.expectContains(diag.message(), "cancel");
    const spin = encodeString("spin");
    try testing.expectError(error.Cancelled, faulty.callCancellable(gpa, 2, &spin, null, &token, &diag));
    try testing.expectEqual(fidius.Status.cancelled, diag.status());
    const usage = try faulty.workerUsage(null);
    try testing.expectEqual(pid, usage.pid);
    try testing.expectEqual(@as(u64, 0), usage.restarts);
    try testing.expectEqual(@as(u64, 1), try callCount(faulty)); // only the first calls ran

    // A WASM guest: its instance is kept, and the call did not count.
    var wasm_host = try fixtures.host("wasm");
    defer wasm_host.deinit();
    var options = try fixtures.options("hostile.toml");
    defer options.deinit();
    var hostile = try wasm_host.load("HostileGuest", &options, null);
    defer hostile.deinit();
    try support.expectJson(hostile, "counter", "[]", "1");
    try testing.expectError(error.Cancelled, hostile.callJsonCancellable(gpa, "counter", "[]", null, &token, &diag));
    try testing.expectEqual(fidius.Status.cancelled, diag.status());
    try support.expectJson(hostile, "counter", "[]", "2");
}

/// A Ledger host function that counts the `log` calls whose context was
/// `expected`, and those whose context was not.
const ContextCheck = struct {
    expected: ?*anyopaque,
    matched: std.atomic.Value(u32) = .init(0),
    mismatched: std.atomic.Value(u32) = .init(0),

    fn handle(check: *ContextCheck, call: fidius.HostCall) fidius.HostError!void {
        switch (call.method) {
            0 => {
                const counter = if (call.context == check.expected) &check.matched else &check.mismatched;
                _ = counter.fetchAdd(1, .monotonic);
            },
            1 => try call.result.writeAll("null"),
            else => return call.fail("NO_FUNDS", "not here", null),
        }
    }
};

test "a cancellable call hands its context to the host functions" {
    if (!fidius.features().wasm) return error.SkipZigTest;
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var request: u32 = 0;
    var check: ContextCheck = .{ .expected = &request };
    var iface = try fixtures.interface("ledger.toml");
    defer iface.deinit();
    var binding = try fidius.Binding.initJson(&iface, *ContextCheck, &check, ContextCheck.handle, null, null);
    defer binding.deinit();
    var options = try fixtures.options("bookkeeper.toml");
    defer options.deinit();
    try options.addBinding(&binding, null);
    var plugin = try host.loadPath(try fixtures.path("hostcall-wasm/bookkeeper"), null, &options, null);
    defer plugin.deinit();

    var token = try fidius.CancelToken.init(null);
    defer token.deinit();
    const recorded = try plugin.callJsonCancellable(gpa, "record", "[\"x\", 3]", &request, &token, null);
    defer gpa.free(recorded);
    try testing.expectEqualStrings("3", recorded);
    try testing.expectEqual(@as(u32, 3), check.matched.load(.monotonic));
    try testing.expectEqual(@as(u32, 0), check.mismatched.load(.monotonic));
}

test "a CancelToken: not cancelled, then cancelled for good" {
    var token = try fidius.CancelToken.init(null);
    defer token.deinit();
    try testing.expect(!token.isCancelled());
    token.cancel();
    try testing.expect(token.isCancelled());
    token.cancel(); // again: nothing more
    try testing.expect(token.isCancelled());

    // Tokens are independent.
    var other = try fidius.CancelToken.init(null);
    defer other.deinit();
    try testing.expect(!other.isCancelled());

    // The status, both ways.
    try testing.expectEqualStrings("CANCELLED", fidius.statusName(319));
    try testing.expectEqual(error.Cancelled, fidius.errorFromStatus(@fromBackingInt(319)));
    try testing.expectEqual(fidius.Status.cancelled, fidius.statusFromError(error.Cancelled).?);
}
