//! Outbound sockets of WebAssembly guests: allow-lists naming address:port,
//! socket and DNS rules with a context (`EgressPolicy.fromRules`), the
//! denied-request log with its reasons and fail-closed loading, against a
//! TCP echo server and a UDP socket on 127.0.0.1.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

/// What the rules saw, one line each ("tcp 127.0.0.1:9000 special
/// host=-", "dns SocketGuest localhost"), and what they answer. The rules
/// may run on several threads at once, hence the mutex.
const RuleLog = struct {
    mutex: std.Io.Mutex = .init,
    buffer: [4096]u8 = undefined,
    len: usize = 0,
    socket_calls: u32 = 0,
    dns_calls: u32 = 0,
    /// Whether the socket rule allows everything (else nothing).
    allow_sockets: bool = true,
    releases: std.atomic.Value(u32) = .init(0),

    fn note(log: *RuleLog, comptime format: []const u8, args: anytype) void {
        const line = std.fmt.bufPrint(log.buffer[log.len..], format ++ "\n", args) catch return;
        log.len += line.len;
    }

    fn text(log: *RuleLog) []const u8 {
        return log.buffer[0..log.len];
    }

    fn noteTarget(log: *RuleLog, target: fidius.SocketTarget) void {
        log.socket_calls += 1;
        log.note("{s} {t} {s}:{d} {s} host={s}", .{
            target.plugin,
            target.protocol,
            target.address,
            target.port,
            if (target.special) "special" else "public",
            target.host orelse "-",
        });
    }

    /// Notes the target; answers `allow_sockets`.
    fn socket(log: *RuleLog, target: fidius.SocketTarget) fidius.EgressDecision {
        log.mutex.lockUncancelable(io);
        defer log.mutex.unlock(io);
        log.noteTarget(target);
        return if (log.allow_sockets) .allow else .deny;
    }

    /// Notes the target; allows TCP to "localhost" by name and to
    /// 127.0.0.1 itself, nothing else.
    fn socketLocalhost(log: *RuleLog, target: fidius.SocketTarget) fidius.EgressDecision {
        log.mutex.lockUncancelable(io);
        defer log.mutex.unlock(io);
        log.noteTarget(target);
        if (target.protocol != .tcp) return .deny;
        if (target.host) |host| return if (std.mem.eql(u8, host, "localhost")) .allow else .deny;
        return if (std.mem.eql(u8, target.address, "127.0.0.1")) .allow else .deny;
    }

    /// Notes the lookup; allows "localhost" only.
    fn dnsLocalhost(log: *RuleLog, lookup: fidius.DnsLookup) fidius.EgressDecision {
        log.mutex.lockUncancelable(io);
        defer log.mutex.unlock(io);
        log.dns_calls += 1;
        log.note("dns {s} {s}", .{ lookup.plugin, lookup.name });
        return if (std.mem.eql(u8, lookup.name, "localhost")) .allow else .deny;
    }

    fn release(log: *RuleLog) void {
        _ = log.releases.fetchAdd(1, .monotonic);
    }
};

/// Loads the socket guest with its interface and, when given, its own policy.
fn loadDialer(fixtures: *support.Fixtures, host: fidius.Host, policy: ?*const fidius.EgressPolicy, diag: ?*fidius.Diagnostics) !fidius.Plugin {
    var options = try fixtures.options("dialer.toml");
    defer options.deinit();
    try options.setEgressPolicy(policy, null);
    return host.loadPath(try fixtures.path("wasm/dialer"), "SocketGuest", &options, diag);
}

/// The JSON arguments of tcp_exchange / udp_send: ["<name>:<port>", "<message>"].
fn dialArgs(buffer: []u8, name: []const u8, port: u16, message: []const u8) ![]const u8 {
    return std.fmt.bufPrint(buffer, "[\"{s}:{d}\", \"{s}\"]", .{ name, port, message });
}

/// Calls `method` and expects the guest's SOCKET error.
fn expectSocketError(plugin: fidius.Plugin, method: []const u8, args: []const u8) !void {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const result = plugin.callJson(gpa, method, args, &diag);
    if (result) |json| {
        defer gpa.free(json);
        std.debug.print("{s}({s}) gave {s}, expected a SOCKET error\n", .{ method, args, json });
        return error.TestUnexpectedResult;
    } else |err| {
        try testing.expectEqual(error.PluginError, err);
        try testing.expectEqualStrings("SOCKET", diag.pluginCode().?);
    }
}

/// Expects denied request `index` of `plugin` to be `method` `url`, with a
/// reason.
fn expectDenied(plugin: fidius.Plugin, index: usize, method: []const u8, url: []const u8) !void {
    const denied = try plugin.deniedRequest(gpa, index, null);
    defer denied.deinit(gpa);
    try testing.expectEqualStrings(method, denied.method);
    try testing.expectEqualStrings(url, denied.url);
    try testing.expect(denied.reason.len > 0);
    const reason = try plugin.deniedRequestReason(gpa, index, null);
    defer gpa.free(reason);
    try testing.expectEqualStrings(denied.reason, reason);
}

test "an allow-list naming 127.0.0.1:port lets the guest connect there only" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.EchoServer = undefined;
    try server.start();
    defer server.stop();

    var pattern_buffer: [64]u8 = undefined;
    const pattern = try std.fmt.bufPrint(&pattern_buffer, "127.0.0.1:{d}", .{server.port});
    var policy = try fidius.EgressPolicy.fromAllowList(gpa, &.{pattern}, null);
    defer policy.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var plugin = try loadDialer(&fixtures, host, &policy, null);
    defer plugin.deinit();

    var args: [128]u8 = undefined;
    try support.expectJson(plugin, "tcp_exchange", try dialArgs(&args, "127.0.0.1", server.port, "hi"), "\"echo: hi\"");
    try testing.expectEqual(@as(u32, 1), server.connectionCount());
    try testing.expectEqual(@as(usize, 0), plugin.deniedRequestCount());

    // Another port of the same (special) address is not named: denied.
    const other_port: u16 = if (server.port == 65535) 1 else server.port + 1;
    try expectSocketError(plugin, "tcp_exchange", try dialArgs(&args, "127.0.0.1", other_port, "hi"));
    try testing.expectEqual(@as(usize, 1), plugin.deniedRequestCount());
    var url: [64]u8 = undefined;
    try expectDenied(plugin, 0, "TCP", try std.fmt.bufPrint(&url, "tcp://127.0.0.1:{d}", .{other_port}));
    try testing.expectError(error.InvalidArgument, plugin.deniedRequestReason(gpa, 1, null));
    try testing.expectEqual(@as(u32, 1), server.connectionCount());
}

test "a socket rule sees the target and decides" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.EchoServer = undefined;
    try server.start();
    defer server.stop();

    var log: RuleLog = .{};
    var host = try fixtures.host(null);
    var host_alive = true;
    defer if (host_alive) host.deinit();
    var plugin = blk: {
        var policy = try fidius.EgressPolicy.fromRules(*RuleLog, &log, .{ .socket = RuleLog.socket }, RuleLog.release, null);
        defer policy.deinit(); // the plugin keeps its own reference
        break :blk try loadDialer(&fixtures, host, &policy, null);
    };
    var plugin_alive = true;
    defer if (plugin_alive) plugin.deinit();

    var args: [128]u8 = undefined;
    var expected: [128]u8 = undefined;

    // Allowed: the rule saw a TCP connect to the special address 127.0.0.1,
    // dialed by address (no host).
    try support.expectJson(plugin, "tcp_exchange", try dialArgs(&args, "127.0.0.1", server.port, "ping"), "\"echo: ping\"");
    try testing.expectEqual(@as(u32, 1), server.connectionCount());
    try testing.expectEqualStrings(
        try std.fmt.bufPrint(&expected, "SocketGuest tcp 127.0.0.1:{d} special host=-\n", .{server.port}),
        log.text(),
    );

    // Denied: the guest's connect fails; nothing reaches the server; the
    // plugin's log has the target and why.
    log.allow_sockets = false;
    log.len = 0;
    try expectSocketError(plugin, "tcp_exchange", try dialArgs(&args, "127.0.0.1", server.port, "ping"));
    try testing.expectEqual(@as(u32, 1), server.connectionCount());
    try testing.expectEqualStrings(
        try std.fmt.bufPrint(&expected, "SocketGuest tcp 127.0.0.1:{d} special host=-\n", .{server.port}),
        log.text(),
    );
    try testing.expectEqual(@as(usize, 1), plugin.deniedRequestCount());
    try expectDenied(plugin, 0, "TCP", try std.fmt.bufPrint(&expected, "tcp://127.0.0.1:{d}", .{server.port}));

    // Without a DNS rule no name is looked up.
    try expectSocketError(plugin, "tcp_exchange", try dialArgs(&args, "localhost", server.port, "ping"));
    try testing.expectEqual(@as(usize, 2), plugin.deniedRequestCount());
    try expectDenied(plugin, 1, "DNS", "dns://localhost");

    // The context is released once the last user of the policy is gone.
    host.deinit();
    host_alive = false;
    try testing.expectEqual(@as(u32, 0), log.releases.load(.monotonic));
    plugin.deinit();
    plugin_alive = false;
    try testing.expectEqual(@as(u32, 1), log.releases.load(.monotonic));
}

test "UDP datagrams go through the socket rule" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();

    const address = try std.Io.net.IpAddress.parse("127.0.0.1", 0);
    const receiver = try address.bind(io, .{ .mode = .dgram });
    defer receiver.close(io);
    const port = receiver.address.getPort();

    var log: RuleLog = .{};
    var policy = try fidius.EgressPolicy.fromRules(*RuleLog, &log, .{ .socket = RuleLog.socket }, null, null);
    defer policy.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var plugin = try loadDialer(&fixtures, host, &policy, null);
    defer plugin.deinit();

    var args: [128]u8 = undefined;
    var expected: [128]u8 = undefined;
    try support.expectJson(plugin, "udp_send", try dialArgs(&args, "127.0.0.1", port, "datagram"), "null");
    var buffer: [64]u8 = undefined;
    const message = try receiver.receiveTimeout(io, &buffer, .{ .duration = .{ .raw = .fromSeconds(10), .clock = .awake } });
    try testing.expectEqualStrings("datagram", message.data);
    try support.expectContains(
        log.text(),
        try std.fmt.bufPrint(&expected, "SocketGuest udp 127.0.0.1:{d} special host=-\n", .{port}),
    );

    log.allow_sockets = false;
    try expectSocketError(plugin, "udp_send", try dialArgs(&args, "127.0.0.1", port, "datagram"));
    try testing.expectEqual(@as(usize, 1), plugin.deniedRequestCount());
    try expectDenied(plugin, 0, "UDP", try std.fmt.bufPrint(&expected, "udp://127.0.0.1:{d}", .{port}));
}

test "a DNS rule lets the guest dial localhost by name" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.EchoServer = undefined;
    try server.start();
    defer server.stop();

    var log: RuleLog = .{};
    var policy = try fidius.EgressPolicy.fromRules(*RuleLog, &log, .{
        .socket = RuleLog.socketLocalhost,
        .dns = RuleLog.dnsLocalhost,
    }, null, null);
    defer policy.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var plugin = try loadDialer(&fixtures, host, &policy, null);
    defer plugin.deinit();

    var args: [128]u8 = undefined;
    var expected: [128]u8 = undefined;
    try support.expectJson(plugin, "tcp_exchange", try dialArgs(&args, "localhost", server.port, "by name"), "\"echo: by name\"");
    try testing.expectEqual(@as(u32, 1), server.connectionCount());
    // The lookup was asked about, and the connect carried the name.
    try support.expectContains(log.text(), "dns SocketGuest localhost\n");
    try support.expectContains(
        log.text(),
        try std.fmt.bufPrint(&expected, "SocketGuest tcp 127.0.0.1:{d} special host=localhost\n", .{server.port}),
    );

    // Other names are not looked up.
    try expectSocketError(plugin, "tcp_exchange", try dialArgs(&args, "example.invalid", server.port, "x"));
    try support.expectContains(log.text(), "dns SocketGuest example.invalid\n");
    const count = plugin.deniedRequestCount();
    try testing.expect(count >= 1);
    try expectDenied(plugin, count - 1, "DNS", "dns://example.invalid");
    try testing.expectEqual(@as(u32, 1), server.connectionCount());
}

test "without a policy the socket guest does not load; no rules deny" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    var host = try fixtures.host(null);
    defer host.deinit();
    try testing.expectError(error.NoEgressPolicy, loadDialer(&fixtures, host, null, &diag));
    try testing.expectEqual(fidius.Status.no_egress_policy, diag.status());

    // A policy without a socket rule loads, and denies every socket.
    var no_rules = try fidius.EgressPolicy.fromRules(void, {}, .{}, null, null);
    defer no_rules.deinit();
    var plugin = try loadDialer(&fixtures, host, &no_rules, null);
    defer plugin.deinit();
    try expectSocketError(plugin, "tcp_exchange", "[\"127.0.0.1:1\", \"x\"]");
    try expectDenied(plugin, 0, "TCP", "tcp://127.0.0.1:1");

    // An allow-list naming only HTTP-style names does not reach 127.0.0.1.
    var names = try fidius.EgressPolicy.fromAllowList(gpa, &.{"example.com"}, null);
    defer names.deinit();
    var by_name = try loadDialer(&fixtures, host, &names, null);
    defer by_name.deinit();
    try expectSocketError(by_name, "tcp_exchange", "[\"127.0.0.1:1\", \"x\"]");
}
