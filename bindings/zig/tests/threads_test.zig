//! One plugin called from several threads at once, for each runtime; each
//! thread checks its own answers.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;

/// Thread k adds numbers of its own range and checks every sum.
const Adding = struct {
    plugin: fidius.Plugin,
    calls: usize,
    json: bool,

    fn run(work: *const Adding, thread_index: usize) bool {
        const base: i64 = @intCast(thread_index * 1_000_000);
        for (0..work.calls) |i| {
            const n: i64 = @intCast(i);
            if (work.json) {
                var args: [64]u8 = undefined;
                var expected: [32]u8 = undefined;
                const json_args = std.fmt.bufPrint(&args, "[{d}, {d}]", .{ base, n }) catch return false;
                const want = std.fmt.bufPrint(&expected, "{d}", .{base + n}) catch return false;
                support.expectJson(work.plugin, "add", json_args, want) catch return false;
            } else {
                const sum = support.rawAdd(work.plugin, base, n) catch return false;
                if (sum != base + n) return false;
            }
        }
        return true;
    }
};

test "a cdylib plugin called from four threads at once" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    var plugin = try host.load("BasicCalculator", &options, null);
    defer plugin.deinit();

    const raw: Adding = .{ .plugin = plugin, .calls = 2000, .json = false };
    try testing.expectEqual(@as(usize, 0), try support.runThreads(4, &raw, Adding.run));
    const json: Adding = .{ .plugin = plugin, .calls = 500, .json = true };
    try testing.expectEqual(@as(usize, 0), try support.runThreads(4, &json, Adding.run));
}

test "a WASM plugin called from four threads, persistent and fresh instances" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("wasm");
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();

    var persistent = try host.load("WasmCalculator", &options, null);
    defer persistent.deinit();
    const on_one_instance: Adding = .{ .plugin = persistent, .calls = 50, .json = true };
    try testing.expectEqual(@as(usize, 0), try support.runThreads(4, &on_one_instance, Adding.run));

    try options.setWasmFreshInstancePerCall(true, null);
    var fresh = try host.load("WasmCalculator", &options, null);
    defer fresh.deinit();
    const on_fresh_instances: Adding = .{ .plugin = fresh, .calls = 20, .json = false };
    try testing.expectEqual(@as(usize, 0), try support.runThreads(4, &on_fresh_instances, Adding.run));
}

test "a Python plugin called from four threads while another loads and frees plugins" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("python");
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    var plugin = try host.load("PyCalculator", &options, null);
    defer plugin.deinit();

    const Loading = struct {
        host: fidius.Host,
        options: *const fidius.LoadOptions,
        failures: usize = 0,

        fn run(loading: *@This()) void {
            for (0..5) |_| {
                var loaded = loading.host.load("PyCalculator", loading.options, null) catch {
                    loading.failures += 1;
                    continue;
                };
                defer loaded.deinit();
                support.expectJson(loaded, "multiply", "[6, 7]", "42") catch {
                    loading.failures += 1;
                };
            }
        }
    };
    var loading: Loading = .{ .host = host, .options = &options };
    const loader = try std.Thread.spawn(.{}, Loading.run, .{&loading});
    const calling: Adding = .{ .plugin = plugin, .calls = 50, .json = true };
    const failed_threads = try support.runThreads(4, &calling, Adding.run);
    loader.join();
    try testing.expectEqual(@as(usize, 0), failed_threads);
    try testing.expectEqual(@as(usize, 0), loading.failures);
}
