//! Streaming calls: server, client and bidirectional streams of the
//! Streamer fixture in every runtime (a native library, a WebAssembly
//! component, a Python package), raw and JSON, to their end, cancelled
//! early, failing mid-stream, with producers that fail, and calls that do
//! not match how a method streams.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;

/// Method indices of the Streamer interface (interfaces/streamer.toml).
const Method = struct {
    const count = 0; // count(from u64, to u64) -> Stream<u64>
    const blobs = 1; // blobs(count u32, size u32) -> Stream<Vec<u8>>
    const fail_after = 2; // fail_after(good u32) -> Stream<u32>
    const live_producers = 3; // live_producers() -> u32
    const sum = 4; // sum(items: Stream<u64>) -> u64
    const checked_sum = 5; // checked_sum(limit i64, items: Stream<i64>) -> Result<i64, PluginError>
    const shout = 6; // shout(words: Stream<String>, suffix String) -> Stream<String>
};

/// The same Streamer plugin in each runtime.
const runtimes = [_]struct { kind: fidius.Runtime, path: []const u8 }{
    .{ .kind = .cdylib, .path = "streams/libstream_plugin.so" },
    .{ .kind = .wasm, .path = "wasm/stream" },
    .{ .kind = .python, .path = "python/stream" },
};

/// Runs `check(plugin, runtime)` against the Streamer of every runtime,
/// loaded with its interface; a failure names the runtime.
fn forEachRuntime(comptime check: fn (plugin: fidius.Plugin, runtime: fidius.Runtime) anyerror!void) !void {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var options = try fixtures.options("streamer.toml");
    defer options.deinit();
    for (runtimes) |runtime| {
        var diag: fidius.Diagnostics = .{};
        defer diag.deinit();
        var plugin = host.loadPath(try fixtures.path(runtime.path), null, &options, &diag) catch |err| {
            std.debug.print("loading {s}: {f}\n", .{ runtime.path, diag });
            return err;
        };
        defer plugin.deinit();
        try testing.expectEqual(runtime.kind, plugin.info().runtime());
        check(plugin, runtime.kind) catch |err| {
            std.debug.print("the {t} Streamer failed: {t}\n", .{ runtime.kind, err });
            return err;
        };
    }
}

/// The next JSON item of `stream` is `expected`.
fn expectNextJson(stream: *fidius.Stream, expected: []const u8) !void {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const item = stream.nextJson(&diag) catch |err| {
        std.debug.print("expected {s}, got {f}\n", .{ expected, diag });
        return err;
    };
    try testing.expectEqualStrings(expected, item orelse return error.TestUnexpectedEnd);
}

/// `stream` has ended: null, and null again.
fn expectEnd(stream: *fidius.Stream) !void {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectEqual(null, try stream.nextJson(&diag));
    try testing.expectEqual(fidius.Status.ok, diag.status()); // the end is no failure
    try testing.expectEqual(null, try stream.next(&diag));
}

fn u64Le(value: u64) [8]u8 {
    var out: [8]u8 = undefined;
    std.mem.writeInt(u64, &out, value, .little);
    return out;
}

fn readU64Le(bytes: []const u8) !u64 {
    if (bytes.len != 8) return error.TestUnexpectedResult;
    return std.mem.readInt(u64, bytes[0..8], .little);
}

fn liveProducers(plugin: fidius.Plugin) ![]const u8 {
    return plugin.callJson(gpa, "live_producers", "[]", null);
}

/// A producer of texts (or bincode values) that counts how often it was
/// asked and released; it may fail at one item, or call back into a stream.
const Counted = struct {
    items: []const []const u8,
    asked: usize = 0,
    released: usize = 0,
    /// Fails with this error when asked for item `fail_at`.
    fail_with: ?anyerror = null,
    fail_at: usize = 0,
    /// A stream to call into from the producer, and what that gave.
    reenter: ?*fidius.Stream = null,
    reentered: ?anyerror = null,

    fn input(counted: *Counted) fidius.StreamInput {
        return .init(*Counted, counted, .{ .next = next, .release = release });
    }

    fn next(counted: *Counted) anyerror!?[]const u8 {
        const at = counted.asked;
        counted.asked += 1;
        if (counted.reenter) |stream| {
            if (stream.next(null)) |_| {
                counted.reentered = null;
            } else |err| counted.reentered = err;
        }
        if (counted.fail_with) |err| if (at == counted.fail_at) return err;
        if (at >= counted.items.len) return null;
        return counted.items[at];
    }

    fn release(counted: *Counted) void {
        counted.released += 1;
    }
};

// ---- server streams -------------------------------------------------------

test "count to its end, as JSON and as bincode items" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var stream = try plugin.callStreamJson("count", "[3, 7]", null, null);
            defer stream.deinit();
            for ([_][]const u8{ "3", "4", "5", "6" }) |expected| try expectNextJson(&stream, expected);
            try expectEnd(&stream);
            try testing.expectEqual(@as(u64, 0), stream.itemsRead()); // a server stream reads nothing

            // Raw: the bincode tuple (u64, u64) in, little-endian u64 items out.
            const args = u64Le(10) ++ u64Le(12);
            var raw = try plugin.callStream(Method.count, &args, null, null);
            defer raw.deinit();
            try testing.expectEqual(@as(u64, 10), try readU64Le((try raw.next(null)).?));
            try testing.expectEqual(@as(u64, 11), try readU64Le((try raw.next(null)).?));
            try testing.expectEqual(null, try raw.next(null));
            try testing.expectEqual(null, try raw.next(null));
        }
    }.check);
}

test "items far larger than the first buffers" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            // (count u32, size u32) in bincode.
            var args: [8]u8 = undefined;
            std.mem.writeInt(u32, args[0..4], 3, .little);
            std.mem.writeInt(u32, args[4..8], 70000, .little);
            var stream = try plugin.callStream(Method.blobs, &args, null, null);
            defer stream.deinit();
            for (0..3) |i| {
                // A Vec<u8>: its length as a u64, then the bytes, each i % 251.
                const item = (try stream.next(null)) orelse return error.TestUnexpectedEnd;
                try testing.expectEqual(@as(usize, 8 + 70000), item.len);
                try testing.expectEqual(@as(u64, 70000), std.mem.readInt(u64, item[0..8], .little));
                try testing.expect(std.mem.allEqual(u8, item[8..], @intCast(i % 251)));
            }
            try testing.expectEqual(null, try stream.next(null));
        }
    }.check);
}

test "a stream failing mid-way ends with its runtime's error, answered again" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, runtime: fidius.Runtime) !void {
            var stream = try plugin.callStreamJson("fail_after", "[2]", null, null);
            defer stream.deinit();
            try expectNextJson(&stream, "0");
            try expectNextJson(&stream, "1");
            const expected: fidius.Error = switch (runtime) {
                .cdylib => error.PluginPanic,
                .wasm => error.PluginTrap,
                else => error.PluginError,
            };
            var diag: fidius.Diagnostics = .{};
            defer diag.deinit();
            for (0..2) |_| {
                try testing.expectError(expected, stream.nextJson(&diag));
                try testing.expectEqual(fidius.statusFromError(expected).?, diag.status());
                if (expected == error.PluginError) {
                    try testing.expectEqualStrings("TOO_FAR", diag.pluginCode().?);
                    try support.expectContains(diag.pluginDetails().?, "\"good\"");
                }
            }
            try testing.expectError(expected, stream.next(null));
        }
    }.check);
}

test "deinit before the end cancels: the producer is torn down at once" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, runtime: fidius.Runtime) !void {
            var stream = try plugin.callStreamJson("count", "[0, 18446744073709551615]", null, null);
            try expectNextJson(&stream, "0");
            try expectNextJson(&stream, "1");
            try expectNextJson(&stream, "2");
            // A WASM stream runs in an instance of its own: the plugin's
            // instance cannot see it.
            if (runtime != .wasm) try support.expectJson(plugin, "live_producers", "[]", "1");
            stream.deinit();
            if (runtime != .wasm) try support.expectJson(plugin, "live_producers", "[]", "0");
        }
    }.check);
}

test "a whole-stream deadline ends an endless stream with Timeout" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var stream = try plugin.callStreamJson("count", "[0, 18446744073709551615]", null, null);
            defer stream.deinit();
            try stream.setDeadline(1, null);
            const failure = while (true) {
                _ = stream.next(null) catch |err| break err;
            };
            try testing.expectEqual(error.Timeout, failure);
        }
    }.check);
}

test "a stream outlives its plugin handle" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var options = try fixtures.options("streamer.toml");
    defer options.deinit();
    for (runtimes) |runtime| {
        var plugin = try host.loadPath(try fixtures.path(runtime.path), null, &options, null);
        var stream = try plugin.callStreamJson("count", "[1, 3]", null, null);
        defer stream.deinit();
        plugin.deinit();
        try expectNextJson(&stream, "1");
        try expectNextJson(&stream, "2");
        try expectEnd(&stream);
    }
}

// ---- client streams -------------------------------------------------------

test "client streams: sum asks for each item and the end, and releases once" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var numbers: Counted = .{ .items = &.{ "1", "2", "39" } };
            const sum = try plugin.callClientStreamJson(gpa, "sum", "[]", numbers.input(), null);
            defer gpa.free(sum);
            try testing.expectEqualStrings("42", sum);
            try testing.expectEqual(@as(usize, 4), numbers.asked); // three items and the end
            try testing.expectEqual(@as(usize, 1), numbers.released);

            var none: Counted = .{ .items = &.{} };
            const zero = try plugin.callClientStreamJson(gpa, "sum", "[]", none.input(), null);
            defer gpa.free(zero);
            try testing.expectEqualStrings("0", zero);
            try testing.expectEqual(@as(usize, 1), none.released);

            // Raw: bincode items, no other arguments, a bincode result.
            const seven = u64Le(7);
            const eight = u64Le(8);
            var items: fidius.Items = .{ .items = &.{ &seven, &eight } };
            const raw = try plugin.callClientStream(gpa, Method.sum, &.{}, items.input(), null);
            defer gpa.free(raw);
            try testing.expectEqual(@as(u64, 15), try readU64Le(raw));
            try testing.expectEqual(@as(usize, 2), items.read);
        }
    }.check);
}

test "checked_sum reads through the negative item and no further" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var items: fidius.Items = .{ .items = &.{ "5", "6", "-1", "7", "8" } };
            var diag: fidius.Diagnostics = .{};
            defer diag.deinit();
            try testing.expectError(error.PluginError, plugin.callClientStreamJson(gpa, "checked_sum", "[100]", items.input(), &diag));
            try testing.expectEqualStrings("NEGATIVE", diag.pluginCode().?);
            try support.expectContains(diag.pluginMessage().?, "item 2");
            try testing.expectEqual(@as(usize, 3), items.read);

            // Within the limit: the plugin reads to the end.
            var fine: Counted = .{ .items = &.{ "5", "6", "7" } };
            const total = try plugin.callClientStreamJson(gpa, "checked_sum", "[100]", fine.input(), null);
            defer gpa.free(total);
            try testing.expectEqualStrings("18", total);
            try testing.expectEqual(@as(usize, 1), fine.released);
        }
    }.check);
}

test "bad items and failing producers fail the call with StreamInputFailed" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var diag: fidius.Diagnostics = .{};
            defer diag.deinit();

            // An item that is not a u64: read no further, released.
            var bad: Counted = .{ .items = &.{ "1", "\"two\"", "3" } };
            try testing.expectError(error.StreamInputFailed, plugin.callClientStreamJson(gpa, "sum", "[]", bad.input(), &diag));
            try testing.expectEqual(fidius.Status.stream_input_failed, diag.status());
            try support.expectContains(diag.message(), "item 1");
            try testing.expectEqual(@as(usize, 2), bad.asked);
            try testing.expectEqual(@as(usize, 1), bad.released);

            // Bytes that are not bincode of a u64.
            var short: fidius.Items = .{ .items = &.{"abc"} };
            try testing.expectError(error.StreamInputFailed, plugin.callClientStream(gpa, Method.sum, &.{}, short.input(), &diag));
            try support.expectContains(diag.message(), "item 0");

            // A producer's fidius error is reported as its status ...
            var failing: Counted = .{ .items = &.{ "1", "2", "3" }, .fail_with = error.Io, .fail_at = 1 };
            try testing.expectError(error.StreamInputFailed, plugin.callClientStreamJson(gpa, "sum", "[]", failing.input(), &diag));
            try support.expectContains(diag.message(), "IO");
            try testing.expectEqual(@as(usize, 2), failing.asked);
            try testing.expectEqual(@as(usize, 1), failing.released);

            // ... any other error as IO.
            var other: Counted = .{ .items = &.{"1"}, .fail_with = error.DiskOnFire, .fail_at = 0 };
            try testing.expectError(error.StreamInputFailed, plugin.callClientStreamJson(gpa, "sum", "[]", other.input(), &diag));
            try support.expectContains(diag.message(), "IO");
            try testing.expectEqual(@as(usize, 1), other.released);

            // Other arguments that do not decode: the input is released unread.
            var unread: Counted = .{ .items = &.{"1"} };
            try testing.expectError(error.PluginSerialization, plugin.callClientStream(gpa, Method.checked_sum, "abc", unread.input(), null));
            try testing.expectEqual(@as(usize, 0), unread.asked);
            try testing.expectEqual(@as(usize, 1), unread.released);
        }
    }.check);
}

// ---- bidirectional streams ------------------------------------------------

test "shout: lazily, one word in per word out" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var words: Counted = .{ .items = &.{ "\"hey\"", "\"you\"", "\"there\"" } };
            var stream = try plugin.callStreamJson("shout", "[\"!\"]", words.input(), null);
            defer stream.deinit();
            try testing.expectEqual(@as(usize, 0), words.asked); // nothing read before the first pull
            try expectNextJson(&stream, "\"HEY!\"");
            try testing.expectEqual(@as(usize, 1), words.asked);
            try testing.expectEqual(@as(u64, 1), stream.itemsRead());
            try expectNextJson(&stream, "\"YOU!\"");
            try testing.expectEqual(@as(usize, 2), words.asked);
            try testing.expectEqual(@as(u64, 2), stream.itemsRead());
            // A producer that calls into the stream it feeds: Misuse.
            words.reenter = &stream;
            try expectNextJson(&stream, "\"THERE!\"");
            try testing.expectEqual(error.Misuse, words.reentered.?);
            words.reenter = null;
            try expectEnd(&stream);
            try testing.expectEqual(@as(u64, 3), stream.itemsRead());
            try testing.expectEqual(@as(usize, 1), words.released); // at the end, before deinit

            // Cancelled with input left: the rest is never asked for.
            var more: Counted = .{ .items = &.{ "\"hey\"", "\"you\"", "\"there\"" } };
            var cancelled = try plugin.callStreamJson("shout", "[\"?\"]", more.input(), null);
            try expectNextJson(&cancelled, "\"HEY?\"");
            cancelled.deinit();
            try testing.expectEqual(@as(usize, 1), more.asked);
            try testing.expectEqual(@as(usize, 1), more.released);

            // A producer failing mid-stream ends the stream.
            var failing: Counted = .{ .items = &.{ "\"a\"", "\"b\"" }, .fail_with = error.Io, .fail_at = 1 };
            var broken = try plugin.callStreamJson("shout", "[\".\"]", failing.input(), null);
            defer broken.deinit();
            try expectNextJson(&broken, "\"A.\"");
            try testing.expectError(error.StreamInputFailed, broken.nextJson(null));
            try testing.expectError(error.StreamInputFailed, broken.next(null));
            try testing.expectEqual(@as(usize, 1), failing.released);

            // Raw: bincode Strings in (length u64, bytes) and out.
            var raw_args: [9]u8 = u64Le(1) ++ "~".*;
            const hi = u64Le(2) ++ "hi".*;
            var raw_words: fidius.Items = .{ .items = &.{&hi} };
            var raw = try plugin.callStream(Method.shout, &raw_args, raw_words.input(), null);
            defer raw.deinit();
            try testing.expectEqualSlices(u8, &(u64Le(3) ++ "HI~".*), (try raw.next(null)).?);
            try testing.expectEqual(null, try raw.next(null));
        }
    }.check);
}

// ---- mismatches -----------------------------------------------------------

test "calls that do not match how a method streams: StreamMismatch" {
    try forEachRuntime(struct {
        fn check(plugin: fidius.Plugin, _: fidius.Runtime) !void {
            var diag: fidius.Diagnostics = .{};
            defer diag.deinit();

            // A unary call of a streaming method.
            try support.expectJsonError(plugin, "count", "[0, 1]", error.StreamMismatch, "server-streaming");
            const args = u64Le(0) ++ u64Le(1);
            try testing.expectError(error.StreamMismatch, plugin.call(gpa, Method.count, &args, null));

            // A stream call of a unary method.
            try testing.expectError(error.StreamMismatch, plugin.callStreamJson("live_producers", "[]", null, &diag));
            try testing.expectEqual(fidius.Status.stream_mismatch, diag.status());
            try support.expectContains(diag.message(), "'live_producers'");

            // An input for a server stream is released, nothing ran.
            var unwanted: Counted = .{ .items = &.{} };
            try testing.expectError(error.StreamMismatch, plugin.callStreamJson("count", "[0, 1]", unwanted.input(), null));
            try testing.expectEqual(@as(usize, 0), unwanted.asked);
            try testing.expectEqual(@as(usize, 1), unwanted.released);

            // A client-stream call of a method returning a stream.
            var wrong: Counted = .{ .items = &.{} };
            try testing.expectError(error.StreamMismatch, plugin.callClientStreamJson(gpa, "count", "[0, 1]", wrong.input(), null));
            try testing.expectEqual(@as(usize, 1), wrong.released);

            // A bidirectional method without its input.
            try testing.expectError(error.StreamMismatch, plugin.callStreamJson("shout", "[\"!\"]", null, null));
            try testing.expectError(error.StreamMismatch, plugin.callStream(Method.shout, &(u64Le(1) ++ "!".*), null, null));

            // The other errors of a call still apply.
            try testing.expectError(error.ArgumentMismatch, plugin.callStreamJson("count", "[0]", null, null));
            try testing.expectError(error.UnknownMethod, plugin.callStreamJson("nope", "[]", null, null));
            try testing.expectError(error.MethodOutOfRange, plugin.callStream(99, &.{}, null, null));
        }
    }.check);
}
