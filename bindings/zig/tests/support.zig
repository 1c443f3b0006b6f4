//! What the test files share: the fixture directory, hosts and load options
//! made the usual way, JSON call checks, bincode helpers, a tiny HTTP server,
//! a TCP echo server and a way to run one function on several threads.
const std = @import("std");
const fidius = @import("fidius_host");

const testing = std.testing;
const io = testing.io;

/// The interface hash of the fixtures' Calculator interface.
pub const calculator_hash: u64 = 0x0271e9b7d21d10f1;

/// The fixture directory ($FIDIUS_TEST_FIXTURES) and paths inside it, kept
/// in an arena freed by `deinit`.
pub const Fixtures = struct {
    arena: std.heap.ArenaAllocator,
    dir: []const u8,

    /// Fails (it does not skip) when FIDIUS_TEST_FIXTURES is unset: a test
    /// run without fixtures would test nothing.
    pub fn init() !Fixtures {
        var arena: std.heap.ArenaAllocator = .init(testing.allocator);
        errdefer arena.deinit();
        const dir = testing.environ.getAlloc(arena.allocator(), "FIDIUS_TEST_FIXTURES") catch |err| {
            std.debug.print("FIDIUS_TEST_FIXTURES must name the test fixture directory (target/test-fixtures)\n", .{});
            return err;
        };
        return .{ .arena = arena, .dir = dir };
    }

    pub fn deinit(fixtures: *Fixtures) void {
        fixtures.arena.deinit();
    }

    /// `relative` inside the fixture directory.
    pub fn path(fixtures: *Fixtures, relative: []const u8) ![]const u8 {
        return std.fs.path.join(fixtures.arena.allocator(), &.{ fixtures.dir, relative });
    }

    /// A host searching the fixture directory `search_dir` (none for null).
    pub fn host(fixtures: *Fixtures, search_dir: ?[]const u8) !fidius.Host {
        var builder = try fidius.HostBuilder.init();
        defer builder.deinit();
        if (search_dir) |dir| try builder.addSearchPath(try fixtures.path(dir), null);
        return builder.build(null);
    }

    /// A host that loads only code signed by the fixtures' trusted key,
    /// searching `search_dir` (none for null).
    pub fn signedHost(fixtures: *Fixtures, search_dir: ?[]const u8) !fidius.Host {
        var builder = try fidius.HostBuilder.init();
        defer builder.deinit();
        if (search_dir) |dir| try builder.addSearchPath(try fixtures.path(dir), null);
        try builder.setRequireSignature(true, null);
        try builder.addTrustedKeyFile(try fixtures.path("keys/trusted.public"), null);
        return builder.build(null);
    }

    /// The interface file interfaces/`name`.
    pub fn interface(fixtures: *Fixtures, name: []const u8) !fidius.Interface {
        const relative = try std.fmt.allocPrint(fixtures.arena.allocator(), "interfaces/{s}", .{name});
        return fidius.Interface.fromFile(try fixtures.path(relative), null);
    }

    /// Load options with the interface file interfaces/`name`.
    pub fn options(fixtures: *Fixtures, interface_name: []const u8) !fidius.LoadOptions {
        var iface = try fixtures.interface(interface_name);
        defer iface.deinit(); // the options keep their own reference
        var load_options = try fidius.LoadOptions.init();
        errdefer load_options.deinit();
        try load_options.setInterface(&iface, null);
        return load_options;
    }
};

/// Calls `method` with JSON `args` and expects exactly `expected`.
pub fn expectJson(plugin: fidius.Plugin, method: []const u8, args: []const u8, expected: []const u8) !void {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const result = plugin.callJson(testing.allocator, method, args, &diag) catch |err| {
        std.debug.print("{s}({s}) failed: {f}\n", .{ method, args, diag });
        return err;
    };
    defer testing.allocator.free(result);
    try testing.expectEqualStrings(expected, result);
}

/// Calls `method` with JSON `args` and expects it to fail with
/// `expected_error`, the matching status, and a message containing `text`.
pub fn expectJsonError(
    plugin: fidius.Plugin,
    method: []const u8,
    args: []const u8,
    expected_error: fidius.Error,
    text: []const u8,
) !void {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const result = plugin.callJson(testing.allocator, method, args, &diag);
    if (result) |json| {
        defer testing.allocator.free(json);
        std.debug.print("{s}({s}) gave {s}, expected {t}\n", .{ method, args, json, expected_error });
        return error.TestUnexpectedResult;
    } else |err| {
        try testing.expectEqual(expected_error, err);
        try testing.expectEqual(fidius.statusFromError(expected_error).?, diag.status());
        try expectContains(diag.message(), text);
    }
}

pub fn expectContains(haystack: []const u8, needle: []const u8) !void {
    if (std.mem.find(u8, haystack, needle) == null) {
        std.debug.print("expected {q} to contain {q}\n", .{ haystack, needle });
        return error.TestExpectedContains;
    }
}

/// The bincode of a tuple of i64 (little-endian, fixed width).
pub fn encodeI64s(comptime n: usize, values: [n]i64) [n * 8]u8 {
    var out: [n * 8]u8 = undefined;
    for (values, 0..) |value, i| std.mem.writeInt(i64, out[i * 8 ..][0..8], value, .little);
    return out;
}

/// Calls add(a, b) through the raw API and decodes the bincode result.
pub fn rawAdd(plugin: fidius.Plugin, a: i64, b: i64) !i64 {
    const output = try plugin.call(testing.allocator, 0, &encodeI64s(2, .{ a, b }), null);
    defer testing.allocator.free(output);
    if (output.len != 8) return error.TestUnexpectedResult;
    return std.mem.readInt(i64, output[0..8], .little);
}

/// Runs `work(context, thread_index)` on `count` threads at once and
/// returns how many of them reported a failure.
pub fn runThreads(comptime count: usize, context: anytype, comptime work: fn (@TypeOf(context), usize) bool) !usize {
    const Runner = struct {
        fn run(ctx: @TypeOf(context), index: usize, failures: *std.atomic.Value(usize)) void {
            if (!work(ctx, index)) _ = failures.fetchAdd(1, .monotonic);
        }
    };
    var failures: std.atomic.Value(usize) = .init(0);
    var threads: [count]std.Thread = undefined;
    for (&threads, 0..) |*thread, index| {
        thread.* = try std.Thread.spawn(.{}, Runner.run, .{ context, index, &failures });
    }
    for (threads) |thread| thread.join();
    return failures.load(.monotonic);
}

/// A tiny HTTP server on 127.0.0.1 for the fetch plugin: it answers every
/// request with "HTTP/1.1 200 OK" and the body "hello from <path>" (or,
/// started with `startRequiring`, "401 Unauthorized" to requests without
/// the credential it wants), on its own thread, and counts the requests it
/// saw.
pub const HttpServer = struct {
    server: std.Io.net.Server,
    port: u16,
    requests: std.atomic.Value(u32) = .init(0),
    /// The `authorization` value a request needs for a 200; null: none.
    required_authorization: ?[]const u8 = null,
    thread: std.Thread,

    /// Starts the server on a free port; `stop` it before the test ends.
    pub fn start(http: *HttpServer) !void {
        return http.startRequiring(null);
    }

    /// Starts the server answering 401 to every request whose
    /// `authorization` header is not `authorization` (null: none needed).
    pub fn startRequiring(http: *HttpServer, authorization: ?[]const u8) !void {
        const address = try std.Io.net.IpAddress.parse("127.0.0.1", 0);
        http.server = try address.listen(io, .{});
        errdefer http.server.deinit(io);
        http.port = http.server.socket.address.getPort();
        http.requests = .init(0);
        http.required_authorization = authorization;
        http.thread = try std.Thread.spawn(.{}, serve, .{http});
    }

    /// Shuts the listening socket down, which ends the server's `accept`.
    pub fn stop(http: *HttpServer) void {
        const listening: std.Io.net.Stream = .{ .socket = http.server.socket };
        listening.shutdown(io, .both) catch {};
        http.thread.join();
        http.server.deinit(io);
    }

    pub fn requestCount(http: *HttpServer) u32 {
        return http.requests.load(.acquire);
    }

    fn serve(http: *HttpServer) void {
        while (true) {
            const connection = http.server.accept(io) catch return;
            defer connection.close(io);
            http.answer(connection) catch |err| std.debug.print("test HTTP server: {t}\n", .{err});
        }
    }

    fn answer(http: *HttpServer, connection: std.Io.net.Stream) !void {
        var read_buffer: [4096]u8 = undefined;
        var reader = connection.reader(io, &read_buffer);
        // "GET /path?query HTTP/1.1", then headers up to an empty line.
        const request_line = try reader.interface.takeDelimiterInclusive('\n');
        var words = std.mem.tokenizeScalar(u8, request_line, ' ');
        _ = words.next(); // the method
        var path_buffer: [512]u8 = undefined;
        const path = try std.fmt.bufPrint(&path_buffer, "{s}", .{words.next() orelse "?"});
        var authorized = http.required_authorization == null;
        while (true) {
            const line = try reader.interface.takeDelimiterInclusive('\n');
            if (std.mem.eql(u8, line, "\r\n") or std.mem.eql(u8, line, "\n")) break;
            const name, const value = std.mem.cutScalar(u8, line, ':') orelse continue;
            if (http.required_authorization) |wanted| {
                if (std.ascii.eqlIgnoreCase(name, "authorization") and
                    std.mem.eql(u8, std.mem.trim(u8, value, " \t\r\n"), wanted)) authorized = true;
            }
        }
        // Counted before answering: once the client has its answer, the
        // count includes its request.
        _ = http.requests.fetchAdd(1, .release);

        var body_buffer: [600]u8 = undefined;
        const body = if (authorized)
            try std.fmt.bufPrint(&body_buffer, "hello from {s}", .{path})
        else
            "who are you?";
        const status = if (authorized) "200 OK" else "401 Unauthorized";
        var write_buffer: [1024]u8 = undefined;
        var writer = connection.writer(io, &write_buffer);
        try writer.interface.print("HTTP/1.1 {s}\r\nContent-Length: {d}\r\nConnection: close\r\n\r\n{s}", .{ status, body.len, body });
        try writer.interface.flush();
    }
};

/// A TCP echo server on 127.0.0.1 for the socket guest: on its own thread,
/// it reads each connection to its end (the client half-closes) and answers
/// "echo: " and what it read, then closes; it counts the connections.
pub const EchoServer = struct {
    server: std.Io.net.Server,
    port: u16,
    connections: std.atomic.Value(u32) = .init(0),
    thread: std.Thread,

    /// Starts the server on a free port; `stop` it before the test ends.
    pub fn start(echo: *EchoServer) !void {
        const address = try std.Io.net.IpAddress.parse("127.0.0.1", 0);
        echo.server = try address.listen(io, .{});
        errdefer echo.server.deinit(io);
        echo.port = echo.server.socket.address.getPort();
        echo.connections = .init(0);
        echo.thread = try std.Thread.spawn(.{}, serve, .{echo});
    }

    /// Shuts the listening socket down, which ends the server's `accept`.
    pub fn stop(echo: *EchoServer) void {
        const listening: std.Io.net.Stream = .{ .socket = echo.server.socket };
        listening.shutdown(io, .both) catch {};
        echo.thread.join();
        echo.server.deinit(io);
    }

    pub fn connectionCount(echo: *EchoServer) u32 {
        return echo.connections.load(.acquire);
    }

    fn serve(echo: *EchoServer) void {
        while (true) {
            const connection = echo.server.accept(io) catch return;
            defer connection.close(io);
            _ = echo.connections.fetchAdd(1, .release);
            answer(connection) catch |err| std.debug.print("test echo server: {t}\n", .{err});
        }
    }

    fn answer(connection: std.Io.net.Stream) !void {
        var read_buffer: [1024]u8 = undefined;
        var reader = connection.reader(io, &read_buffer);
        var input: [1024]u8 = undefined;
        const len = try reader.interface.readSliceShort(&input);
        var write_buffer: [1100]u8 = undefined;
        var writer = connection.writer(io, &write_buffer);
        try writer.interface.print("echo: {s}", .{input[0..len]});
        try writer.interface.flush();
    }
};
