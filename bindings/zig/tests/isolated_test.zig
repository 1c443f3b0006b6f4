//! Isolated plugins: the Faulty fixture (native, and Python when built in)
//! in a worker process. A segfault, an abort, an exit or a kill is
//! `error.WorkerLost` and the next call gets a restarted worker without the
//! plugin's state; an endless call past the deadline is `error.Timeout`;
//! the restart policy, isolation per load, the worker usage figures,
//! discovery in a worker, worker hardening, and the errors of bad settings
//! and a missing worker.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;

/// The worker executable `make lib` builds next to the library.
fn workerPath(fixtures: *support.Fixtures) ![]const u8 {
    return fixtures.path("../release/fidius-host-worker");
}

/// A host running plugins isolated in the fixtures' worker, restarting a
/// lost one at most `max_restarts` times a minute, with a call deadline of
/// `deadline_ms` (0: the default).
fn isolatedHost(fixtures: *support.Fixtures, max_restarts: u32, deadline_ms: u64) !fidius.Host {
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setIsolation(.isolated, null);
    try builder.setWorkerPath(try workerPath(fixtures), null);
    try builder.setRestartPolicy(max_restarts, 60_000, null);
    if (deadline_ms > 0) try builder.setCallDeadlineMs(deadline_ms, null);
    return builder.build(null);
}

/// Loads the Faulty plugin at `relative` with `options` (which must carry
/// the Faulty interface, for JSON calls by name); says why when it fails.
fn loadFaulty(fixtures: *support.Fixtures, host: fidius.Host, relative: []const u8, options: *const fidius.LoadOptions) !fidius.Plugin {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    return host.loadPath(try fixtures.path(relative), null, options, &diag) catch |err| {
        std.debug.print("load {s}: {f}\n", .{ relative, diag });
        return err;
    };
}

/// One runtime's Faulty plugin: answers, a plugin error, the faults, the
/// restarts, and a bystander that never noticed.
fn exercise(fixtures: *support.Fixtures, relative: []const u8) !void {
    var host = try isolatedHost(fixtures, 5, 0);
    defer host.deinit();
    var options = try fixtures.options("faulty.toml");
    defer options.deinit();
    var plugin = try loadFaulty(fixtures, host, relative, &options);
    defer plugin.deinit();
    var bystander = try loadFaulty(fixtures, host, relative, &options);
    defer bystander.deinit();

    // The handle answers as an in-process one.
    try testing.expectEqual(@as(u32, 4), plugin.methodCount());
    try support.expectJson(plugin, "ping", "[41]", "42");
    try support.expectJson(plugin, "calls", "[]", "1");
    // A raw call: ping(41) as bincode, a u64 back.
    var input: [8]u8 = undefined;
    std.mem.writeInt(u64, &input, 41, .little);
    const output = try plugin.call(gpa, 0, &input, null);
    defer gpa.free(output);
    try testing.expectEqual(@as(usize, 8), output.len);
    try testing.expectEqual(@as(u64, 42), std.mem.readInt(u64, output[0..8], .little));
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.PluginError, plugin.callJson(gpa, "fault", "[\"error\"]", &diag));
    try testing.expectEqualStrings("ASKED", diag.pluginCode().?);
    try testing.expectEqualStrings("failing as asked", diag.pluginMessage().?);

    const before = try plugin.workerUsage(null);
    try testing.expect(before.pid > 0);
    try testing.expectEqual(@as(u64, 4), before.calls);
    try testing.expectEqual(@as(u64, 1), before.errors);
    try testing.expectEqual(@as(u64, 0), before.timeouts);
    try testing.expectEqual(@as(u64, 0), before.restarts);
    try testing.expect((try bystander.workerUsage(null)).pid != before.pid);

    // A segfault ends the worker, not the host.
    try support.expectJsonError(plugin, "fault", "[\"segfault\"]", error.WorkerLost, "SIGSEGV");
    const lost = try plugin.workerUsage(null);
    try testing.expectEqual(@as(i32, 0), lost.pid);
    try testing.expectEqual(@as(u64, 2), lost.errors);

    // The next call restarts the worker: a new instance, its state lost.
    try support.expectJson(plugin, "calls", "[]", "0");
    const after = try plugin.workerUsage(null);
    try testing.expect(after.pid > 0 and after.pid != before.pid);
    try testing.expectEqual(@as(u64, 1), after.restarts);
    try support.expectJson(bystander, "ping", "[1]", "2");
    try testing.expectEqual(@as(u64, 0), (try bystander.workerUsage(null)).restarts);

    // Killed from outside between calls: the next call finds it gone.
    try std.posix.kill(after.pid, std.posix.SIG.KILL);
    try support.expectJsonError(plugin, "ping", "[1]", error.WorkerLost, "SIGKILL");
    try support.expectJson(plugin, "ping", "[2]", "3");

    // Every other way down, each followed by a working call.
    const faults = [_]struct { []const u8, []const u8 }{
        .{ "[\"abort\"]", "SIGABRT" },
        .{ "[\"exit\"]", "exited with code 3" },
    };
    for (faults) |fault| {
        const args, const how = fault;
        try support.expectJsonError(plugin, "fault", args, error.WorkerLost, how);
        try support.expectJson(plugin, "ping", "[0]", "1");
    }
    try testing.expectEqual(@as(u64, 4), (try plugin.workerUsage(null)).restarts);
}

test "an isolated plugin survives its faults, and restarts without its state" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    try exercise(&fixtures, "faulty/libfaulty_plugin.so");
    if (fidius.features().python) try exercise(&fixtures, "isolated/py-faulty");
}

test "a call past the deadline is Timeout; restart policy 0 keeps the plugin lost" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try isolatedHost(&fixtures, 0, 300);
    defer host.deinit();
    var options = try fixtures.options("faulty.toml");
    defer options.deinit();
    var plugin = try loadFaulty(&fixtures, host, "faulty/libfaulty_plugin.so", &options);
    defer plugin.deinit();

    try testing.expect((try plugin.workerUsage(null)).peak_memory_bytes > 0);
    try support.expectJsonError(plugin, "fault", "[\"spin\"]", error.Timeout, "killed");
    const usage = try plugin.workerUsage(null);
    try testing.expectEqual(@as(u64, 1), usage.timeouts);
    try testing.expectEqual(@as(i32, 0), usage.pid);
    // The killed worker spun until the deadline: its CPU time counts.
    try testing.expect(usage.cpu_time_us >= 50_000);
    try testing.expectError(error.Unsupported, plugin.memoryHighWater(null));
    // No restart allowed: every later call is lost, and says why.
    try support.expectJsonError(plugin, "ping", "[1]", error.WorkerLost, "restart policy");
    try support.expectJsonError(plugin, "ping", "[1]", error.WorkerLost, "restart policy");
    try testing.expectEqual(@as(u64, 0), (try plugin.workerUsage(null)).restarts);
}

test "load options choose the isolation and restart policy of one load" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    // An in-process host (the default) with the fixtures' worker.
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setWorkerPath(try workerPath(&fixtures), null);
    var host = try builder.build(null);
    defer host.deinit();
    var options = try fixtures.options("faulty.toml");
    defer options.deinit();

    var in_process = try loadFaulty(&fixtures, host, "faulty/libfaulty_plugin.so", &options);
    defer in_process.deinit();
    try support.expectJson(in_process, "ping", "[1]", "2");
    try testing.expectError(error.Unsupported, in_process.workerUsage(&diag));
    try testing.expectEqual(fidius.Status.unsupported, diag.status());
    try support.expectContains(diag.message(), "in-process");

    // Isolated for this load only, and never restarted.
    try options.setIsolation(.isolated, null);
    try options.setRestartPolicy(0, 0, null);
    var isolated = try loadFaulty(&fixtures, host, "faulty/libfaulty_plugin.so", &options);
    defer isolated.deinit();
    try support.expectJson(isolated, "ping", "[1]", "2");
    try testing.expect((try isolated.workerUsage(null)).pid > 0);
    try support.expectJsonError(isolated, "fault", "[\"segfault\"]", error.WorkerLost, "SIGSEGV");
    try support.expectJsonError(isolated, "ping", "[1]", error.WorkerLost, "restart policy");
    try support.expectJson(in_process, "ping", "[2]", "3");

    // And the other way: in-process on an isolated host.
    var isolated_host = try isolatedHost(&fixtures, 5, 0);
    defer isolated_host.deinit();
    try options.setIsolation(.in_process, null);
    var local = try loadFaulty(&fixtures, isolated_host, "faulty/libfaulty_plugin.so", &options);
    defer local.deinit();
    try testing.expectError(error.Unsupported, local.workerUsage(null));
}

test "discovery in a worker skips libraries that crash or hang when opened" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    // Never scan the probe folder in-process: it would crash the tests.
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setDiscoveryIsolation(.isolated, null);
    try builder.setWorkerPath(try workerPath(&fixtures), null);
    try builder.setCallDeadlineMs(1500, null);
    try builder.addSearchPath(try fixtures.path("probe"), null);
    try builder.addSearchPath(try fixtures.path("faulty"), null);
    var host = try builder.build(null);
    defer host.deinit();

    var found = try host.discover(null);
    defer found.deinit();
    var crashed: usize = 0;
    var hung: usize = 0;
    for (0..found.skippedCount()) |i| {
        const skipped = found.skipped(i).?;
        if (std.mem.endsWith(u8, skipped.path, "libinit_crash.so")) {
            crashed += 1;
            try testing.expectEqual(fidius.Status.worker_lost, skipped.status);
            try support.expectContains(skipped.message, "SIGSEGV");
            try support.expectContains(skipped.message, "libinit_crash.so");
        } else if (std.mem.endsWith(u8, skipped.path, "libinit_hang.so")) {
            hung += 1;
            try testing.expectEqual(fidius.Status.timeout, skipped.status);
        } else {
            std.debug.print("unexpected skipped entry {s}: {s}\n", .{ skipped.path, skipped.message });
            return error.TestUnexpectedResult;
        }
    }
    try testing.expectEqual(@as(usize, 1), crashed);
    try testing.expectEqual(@as(usize, 1), hung);
    var faulty: usize = 0;
    for (0..found.pluginCount()) |i| {
        const info = found.plugin(i).?;
        if (std.mem.eql(u8, info.name(), "FaultyNative")) {
            faulty += 1;
            try testing.expectEqual(fidius.Runtime.cdylib, info.runtime());
            try testing.expect(std.mem.endsWith(u8, info.path(), "libfaulty_plugin.so"));
        }
    }
    try testing.expectEqual(@as(usize, 1), faulty);

    // By name: the library is found through the worker, the plugin loaded
    // in-process (the host's isolation).
    var options = try fixtures.options("faulty.toml");
    defer options.deinit();
    var plugin = host.load("FaultyNative", &options, &diag) catch |err| {
        std.debug.print("load FaultyNative: {f}\n", .{diag});
        return err;
    };
    defer plugin.deinit();
    try testing.expectError(error.Unsupported, plugin.workerUsage(&diag));
    try support.expectContains(diag.message(), "in-process");
    try support.expectJson(plugin, "ping", "[1]", "2");
    try testing.expectError(error.PluginNotFound, host.load("Nobody", null, null));
}

/// Calls fault(`args`) and expects the plugin's OS_ERROR for a refused
/// system call.
fn expectRefused(plugin: fidius.Plugin, args: []const u8) !void {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    if (plugin.callJson(gpa, "fault", args, &diag)) |json| {
        defer gpa.free(json);
        std.debug.print("fault({s}) gave {s}, expected a refusal\n", .{ args, json });
        return error.TestUnexpectedResult;
    } else |err| try testing.expectEqual(error.PluginError, err);
    try testing.expectEqualStrings("OS_ERROR", diag.pluginCode().?);
    try support.expectContains(diag.pluginMessage().?, "Permission denied");
}

test "a hardened worker has no network, no files but the plugin's, no new privileges" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    var options = try fixtures.options("faulty.toml");
    defer options.deinit();

    // Unhardened, the plugin opens a socket.
    var open_host = try isolatedHost(&fixtures, 5, 0);
    defer open_host.deinit();
    var open = try loadFaulty(&fixtures, open_host, "faulty/libfaulty_plugin.so", &options);
    defer open.deinit();
    try support.expectJson(open, "fault", "[\"socket\"]", "\"a network socket was opened\"");

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    // Bits the library does not know are refused.
    try testing.expectError(error.InvalidArgument, builder.setWorkerHardening(@bitCast(@as(u32, 8)), &diag));
    try testing.expectEqual(fidius.Status.invalid_argument, diag.status());
    try support.expectContains(diag.message(), "unknown bits");
    try builder.setIsolation(.isolated, null);
    try builder.setWorkerPath(try workerPath(&fixtures), null);
    try builder.setWorkerHardening(.{ .no_new_privileges = true, .deny_network = true, .confine_filesystem = true }, null);
    var host = try builder.build(null);
    defer host.deinit();
    var plugin = try loadFaulty(&fixtures, host, "faulty/libfaulty_plugin.so", &options);
    defer plugin.deinit();

    try expectRefused(plugin, "[\"socket\"]");
    // A file outside the plugin's own: the fixtures' public key.
    const key = try std.Io.Dir.cwd().realPathFileAlloc(testing.io, try fixtures.path("keys/trusted.public"), gpa);
    defer gpa.free(key);
    const read_key = try std.fmt.allocPrint(gpa, "[\"read:{s}\"]", .{key});
    defer gpa.free(read_key);
    try expectRefused(plugin, read_key);
    try support.expectJson(plugin, "fault", "[\"privileges\"]", "\"no_new_privs=1\"");
    // Confined, the plugin still answers.
    try support.expectJson(plugin, "ping", "[41]", "42");
}

test "bad isolation settings are InvalidArgument, a missing worker WorkerUnavailable" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try testing.expectError(error.InvalidArgument, builder.setRestartPolicy(3, 0, &diag));
    try support.expectContains(diag.message(), "window");
    try testing.expectError(error.InvalidArgument, builder.setWorkerPath("", null));
    try testing.expectError(error.InvalidUtf8, builder.setWorkerPath("bad\xff", null));
    // Never restarting needs no window; 0 removes the caps.
    try builder.setRestartPolicy(0, 0, null);
    try builder.setWorkerMemoryLimit(1 << 30, null);
    try builder.setWorkerMemoryLimit(0, null);
    try builder.setWorkerCpuLimit(60, null);
    try builder.setWorkerCpuLimit(0, null);
    try builder.setWorkerPath(try fixtures.path("no-such-worker"), null);
    try builder.setIsolation(.isolated, null);
    var host = try builder.build(null);
    defer host.deinit();

    var options = try fixtures.options("faulty.toml");
    defer options.deinit();
    try testing.expectError(error.InvalidArgument, options.setRestartPolicy(3, 0, &diag));
    try support.expectContains(diag.message(), "window");
    try testing.expectError(
        error.WorkerUnavailable,
        host.loadPath(try fixtures.path("faulty/libfaulty_plugin.so"), null, &options, &diag),
    );
    try testing.expectEqual(fidius.Status.worker_unavailable, diag.status());
    try support.expectContains(diag.message(), "no-such-worker");

    // The statuses, both ways.
    try testing.expectEqualStrings("WORKER_UNAVAILABLE", fidius.statusName(134));
    try testing.expectEqualStrings("WORKER_LOST", fidius.Status.worker_lost.name());
    try testing.expectEqual(error.WorkerLost, fidius.errorFromStatus(@fromBackingInt(318)));
    try testing.expectEqual(fidius.Status.worker_unavailable, fidius.statusFromError(error.WorkerUnavailable).?);
}
