//! Outbound HTTP from WebAssembly guests: egress callbacks with a context,
//! allow-lists, host-wide and per-load policies, the denied-request log,
//! fail-closed loading, and headers set by an HTTP rule with a response rule
//! that retries once, against a real HTTP server on 127.0.0.1.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

/// What an egress callback saw, kept in its context. The callback may run
/// on several threads at once, hence the mutex.
const PolicyLog = struct {
    mutex: std.Io.Mutex = .init,
    calls: u32 = 0,
    saw_fixture_header: bool = false,
    last_buffer: [512]u8 = undefined,
    last_len: usize = 0,
    releases: std.atomic.Value(u32) = .init(0),

    /// Allows GET requests only, and notes what it was asked.
    fn allowOnlyGet(log: *PolicyLog, request: fidius.HttpRequest) fidius.EgressDecision {
        log.mutex.lockUncancelable(io);
        defer log.mutex.unlock(io);
        log.calls += 1;
        const description = std.fmt.bufPrint(&log.last_buffer, "{s} {s} {s} {s} {s}:{d} {s}", .{
            request.plugin,
            request.method,
            request.scheme,
            request.authority,
            request.host,
            request.port,
            request.path_with_query,
        }) catch "";
        log.last_len = description.len;
        if (request.header("X-Fidius-Fixture")) |value| {
            if (std.mem.eql(u8, value, "fetch")) log.saw_fixture_header = true;
        }
        return if (std.mem.eql(u8, request.method, "GET")) .allow else .deny;
    }

    fn release(log: *PolicyLog) void {
        _ = log.releases.fetchAdd(1, .monotonic);
    }

    fn lastRequest(log: *PolicyLog) []const u8 {
        return log.last_buffer[0..log.last_len];
    }
};

/// Anything but `.allow` denies.
fn answerGarbage(_: void, _: fidius.HttpRequest) fidius.EgressDecision {
    return @fromBackingInt(42);
}

/// The JSON arguments of fetch(method, url) for a URL on the test server.
fn fetchArgs(buffer: []u8, method: []const u8, port: u16, path: []const u8) ![]const u8 {
    return std.fmt.bufPrint(buffer, "[\"{s}\", \"http://127.0.0.1:{d}{s}\"]", .{ method, port, path });
}

/// Loads the fetch guest with its interface and, when given, its own policy.
fn loadFetcher(fixtures: *support.Fixtures, host: fidius.Host, policy: ?*const fidius.EgressPolicy, diag: ?*fidius.Diagnostics) !fidius.Plugin {
    var options = try fixtures.options("fetcher.toml");
    defer options.deinit();
    try options.setEgressPolicy(policy, null);
    return host.loadPath(try fixtures.path("wasm/fetch"), "FetchGuest", &options, diag);
}

/// A host whose egress policy is `policy`.
fn hostWithPolicy(policy: ?*const fidius.EgressPolicy) !fidius.Host {
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setEgressPolicy(policy, null);
    return builder.build(null);
}

test "an egress callback sees every request and denies what it does not allow" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.HttpServer = undefined;
    try server.start();
    defer server.stop();

    var log: PolicyLog = .{};
    var host = blk: {
        var policy = try fidius.EgressPolicy.fromCallback(*PolicyLog, &log, PolicyLog.allowOnlyGet, PolicyLog.release, null);
        defer policy.deinit(); // the builder keeps its own reference
        break :blk try hostWithPolicy(&policy);
    };
    var host_alive = true;
    defer if (host_alive) host.deinit();
    try testing.expectEqual(@as(u32, 0), log.releases.load(.monotonic));
    var plugin = try loadFetcher(&fixtures, host, null, null);
    var plugin_alive = true;
    defer if (plugin_alive) plugin.deinit();

    var args: [256]u8 = undefined;
    var expected: [256]u8 = undefined;

    // Allowed: the request reaches the server.
    try support.expectJson(plugin, "fetch", try fetchArgs(&args, "GET", server.port, "/a?b=c"), "\"200 hello from /a?b=c\"");
    try testing.expectEqual(@as(u32, 1), server.requestCount());
    try testing.expectEqualStrings(
        try std.fmt.bufPrint(&expected, "FetchGuest GET http 127.0.0.1:{d} 127.0.0.1:{d} /a?b=c", .{ server.port, server.port }),
        log.lastRequest(),
    );
    try testing.expect(log.saw_fixture_header);
    try testing.expectEqual(@as(usize, 0), plugin.deniedRequestCount());

    // Denied: an HTTP error the guest reports; nothing is sent.
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.PluginError, plugin.callJson(gpa, "fetch", try fetchArgs(&args, "POST", server.port, "/upload"), &diag));
    try testing.expectEqualStrings("HTTP", diag.pluginCode().?);
    try support.expectContains(diag.pluginMessage().?, "HttpRequestDenied");
    try testing.expectEqual(@as(u32, 1), server.requestCount());

    // The plugin's log of denied requests.
    try testing.expectEqual(@as(usize, 1), plugin.deniedRequestCount());
    const denied = try plugin.deniedRequest(gpa, 0, null);
    defer denied.deinit(gpa);
    try testing.expectEqualStrings("POST", denied.method);
    try testing.expectEqualStrings(try std.fmt.bufPrint(&expected, "http://127.0.0.1:{d}/upload", .{server.port}), denied.url);
    try testing.expectError(error.InvalidArgument, plugin.deniedRequest(gpa, 1, null));

    try support.expectJson(plugin, "fetch", try fetchArgs(&args, "GET", server.port, "/again"), "\"200 hello from /again\"");
    try testing.expectEqual(@as(u32, 3), log.calls);

    // The context is released when the last user of the policy is gone.
    host.deinit();
    host_alive = false;
    try testing.expectEqual(@as(u32, 0), log.releases.load(.monotonic));
    plugin.deinit();
    plugin_alive = false;
    try testing.expectEqual(@as(u32, 1), log.releases.load(.monotonic));
}

test "allow-lists, host-wide and per load" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.HttpServer = undefined;
    try server.start();
    defer server.stop();

    var exact_buffer: [64]u8 = undefined;
    var other_buffer: [64]u8 = undefined;
    const exact = try std.fmt.bufPrint(&exact_buffer, "127.0.0.1:{d}", .{server.port});
    const other = try std.fmt.bufPrint(&other_buffer, "127.0.0.1:{d}", .{if (server.port == 65535) 1 else server.port + 1});
    var allowed = try fidius.EgressPolicy.fromAllowList(gpa, &.{ "*.example.com", exact }, null);
    defer allowed.deinit();
    var elsewhere = try fidius.EgressPolicy.fromAllowList(gpa, &.{other}, null);
    defer elsewhere.deinit();
    var nothing = try fidius.EgressPolicy.fromAllowList(gpa, &.{}, null);
    defer nothing.deinit();

    // The host denies everything; a load's own policy overrides it.
    var host = try hostWithPolicy(&nothing);
    defer host.deinit();
    var args: [256]u8 = undefined;

    var denied_by_host = try loadFetcher(&fixtures, host, null, null);
    defer denied_by_host.deinit();
    try support.expectJsonError(denied_by_host, "fetch", try fetchArgs(&args, "GET", server.port, "/x"), error.PluginError, "HttpRequestDenied");
    try testing.expectEqual(@as(usize, 1), denied_by_host.deniedRequestCount());

    var allowed_by_load = try loadFetcher(&fixtures, host, &allowed, null);
    defer allowed_by_load.deinit();
    try support.expectJson(allowed_by_load, "fetch", try fetchArgs(&args, "GET", server.port, "/ok"), "\"200 hello from /ok\"");

    var wrong_port = try loadFetcher(&fixtures, host, &elsewhere, null);
    defer wrong_port.deinit();
    try support.expectJsonError(wrong_port, "fetch", try fetchArgs(&args, "GET", server.port, "/x"), error.PluginError, "HttpRequestDenied");
    try testing.expectEqual(@as(u32, 1), server.requestCount());

    // Bad patterns are refused, naming the pattern.
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.InvalidArgument, fidius.EgressPolicy.fromAllowList(gpa, &.{"*"}, &diag));
    try support.expectContains(diag.message(), "\"*\"");
    try testing.expectError(error.InvalidUtf8, fidius.EgressPolicy.fromAllowList(gpa, &.{"\xff"}, null));
    // No host name has a NUL byte: a pattern with one is refused.
    try testing.expectError(error.InvalidArgument, fidius.EgressPolicy.fromAllowList(gpa, &.{"example.com\x00:8080"}, null));
    try testing.expectError(error.InvalidArgument, fidius.EgressPolicy.fromAllowList(gpa, &.{ "example.com", "" }, &diag));
    try support.expectContains(diag.message(), "no host");
    // Patterns are passed with their length: a slice of a longer text is
    // just that slice.
    const text = "example.com:8080 and more";
    var sliced = try fidius.EgressPolicy.fromAllowList(gpa, &.{text[0..16]}, null);
    sliced.deinit();
}

test "without a policy the fetch guest does not load; odd answers deny" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    var host = try hostWithPolicy(null);
    defer host.deinit();
    try testing.expectError(error.NoEgressPolicy, loadFetcher(&fixtures, host, null, &diag));
    try testing.expectEqual(fidius.Status.no_egress_policy, diag.status());

    // A callback answering something other than "allow" denies.
    var garbage = try fidius.EgressPolicy.fromCallback(void, {}, answerGarbage, null, null);
    defer garbage.deinit();
    var plugin = try loadFetcher(&fixtures, host, &garbage, null);
    defer plugin.deinit();
    try support.expectJsonError(plugin, "fetch", "[\"GET\", \"http://127.0.0.1:1/\"]", error.PluginError, "HttpRequestDenied");

    // A host that denies the capability refuses the package.
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.addDeniedCapability("http", null);
    try builder.setEgressPolicy(&garbage, null);
    var strict = try builder.build(null);
    defer strict.deinit();
    try testing.expectError(error.CapabilityDenied, loadFetcher(&fixtures, strict, null, null));
}

test "several threads fetch through one plugin while its callback runs" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.HttpServer = undefined;
    try server.start();
    defer server.stop();

    var log: PolicyLog = .{};
    var policy = try fidius.EgressPolicy.fromCallback(*PolicyLog, &log, PolicyLog.allowOnlyGet, null, null);
    defer policy.deinit();
    // A fresh instance per call, so the calls (and the callback) really run
    // at the same time rather than one after another on one instance.
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setEgressPolicy(&policy, null);
    try builder.setWasmFreshInstancePerCall(true, null);
    var host = try builder.build(null);
    defer host.deinit();
    var plugin = try loadFetcher(&fixtures, host, null, null);
    defer plugin.deinit();

    const Fetching = struct {
        plugin: fidius.Plugin,
        port: u16,

        fn run(work: *const @This(), thread_index: usize) bool {
            for (0..5) |i| {
                var path_buffer: [64]u8 = undefined;
                var args: [256]u8 = undefined;
                var expected: [128]u8 = undefined;
                const path = std.fmt.bufPrint(&path_buffer, "/t{d}-{d}", .{ thread_index, i }) catch return false;
                const json_args = fetchArgs(&args, "GET", work.port, path) catch return false;
                const want = std.fmt.bufPrint(&expected, "\"200 hello from {s}\"", .{path}) catch return false;
                support.expectJson(work.plugin, "fetch", json_args, want) catch return false;
            }
            return true;
        }
    };
    const work: Fetching = .{ .plugin = plugin, .port = server.port };
    try testing.expectEqual(@as(usize, 0), try support.runThreads(4, &work, Fetching.run));
    try testing.expectEqual(@as(u32, 20), log.calls);
    try testing.expectEqual(@as(u32, 20), server.requestCount());
}

/// What a credential-stamping policy issued and saw. Its HTTP rule runs on
/// the thread calling the plugin (and, for a retry, on an I/O thread of the
/// library, as its response rule does), hence the mutex.
const Credentials = struct {
    mutex: std.Io.Mutex = .init,
    /// How many times the HTTP rule was asked (and stamped a credential).
    issued: u32 = 0,
    observations: [4]Observation = undefined,
    observed: u32 = 0,
    /// What `setHeader("Host", ...)` failed with, and whether its message
    /// named the header (null: it did not fail).
    host_error: ?fidius.AllocError = null,
    host_message_names_it: bool = false,
    /// How many header edits with a NUL byte were refused with
    /// `error.InvalidArgument` (two per HTTP rule, as they should be).
    nul_refusals: u32 = 0,
    /// What editing the request failed with in the response rule.
    response_edit_error: ?fidius.AllocError = null,
    /// Header edits that failed although they should not have.
    unexpected_failures: u32 = 0,
    /// Headers the response rule saw that the HTTP rule removed or never
    /// (validly) set: x-fidius-fixture, x-trace.
    unexpected_headers: u32 = 0,

    /// A response as the response rule saw it, with the credential sent.
    const Observation = struct {
        status: u16,
        retry_available: bool,
        authorization_buffer: [64]u8,
        authorization_len: usize,

        fn authorization(observation: *const Observation) []const u8 {
            return observation.authorization_buffer[0..observation.authorization_len];
        }
    };

    /// Allows every request, sent with "Authorization: Bearer stale" the
    /// first time and "Bearer fresh" after, and without the guest's
    /// x-fidius-fixture; checks on the way what cannot be set.
    fn authorize(credentials: *Credentials, request: fidius.HttpRequest) fidius.EgressDecision {
        credentials.mutex.lockUncancelable(io);
        defer credentials.mutex.unlock(io);
        const credential = if (credentials.issued == 0) "Bearer stale" else "Bearer fresh";
        credentials.issued += 1;
        request.setHeader("Authorization", credential, null) catch {
            credentials.unexpected_failures += 1;
        };
        request.removeHeader("x-fidius-fixture", null) catch {
            credentials.unexpected_failures += 1;
        };
        // A header the library routes the request with is refused (and
        // the edits so far stay).
        var diag: fidius.Diagnostics = .{};
        defer diag.deinit();
        if (request.setHeader("Host", "elsewhere.example", &diag)) |_| {
            credentials.host_error = null;
        } else |err| {
            credentials.host_error = err;
            credentials.host_message_names_it = std.mem.find(u8, diag.message(), "\"host\"") != null;
        }
        // NUL bytes are refused, not cut off at the NUL.
        if (request.setHeader("x-trace", "abc\x00def", null)) |_| {} else |err| {
            if (err == error.InvalidArgument) credentials.nul_refusals += 1;
        }
        if (request.setHeader("x-trace\x00x", "abc", null)) |_| {} else |err| {
            if (err == error.InvalidArgument) credentials.nul_refusals += 1;
        }
        return .allow;
    }

    /// Records each response and has the request sent once more on 401.
    fn retryOn401(credentials: *Credentials, request: fidius.HttpRequest, response: fidius.HttpResponse) fidius.ResponseDirective {
        credentials.mutex.lockUncancelable(io);
        defer credentials.mutex.unlock(io);
        // The request as sent: no edits any more.
        if (request.setHeader("x-late", "1", null)) |_| {
            credentials.response_edit_error = null;
        } else |err| {
            credentials.response_edit_error = err;
        }
        if (request.header("x-fidius-fixture") != null) credentials.unexpected_headers += 1;
        if (request.header("x-trace") != null) credentials.unexpected_headers += 1;
        if (credentials.observed < credentials.observations.len) {
            const observation = &credentials.observations[credentials.observed];
            observation.status = response.status;
            observation.retry_available = response.retry_available;
            const sent = std.fmt.bufPrint(&observation.authorization_buffer, "{s}", .{request.header("authorization") orelse "(none)"}) catch "(too long)";
            observation.authorization_len = sent.len;
        }
        credentials.observed += 1;
        return if (response.status == 401) .retry_once else .forward;
    }
};

test "an HTTP rule sets a credential and a response rule retries once with a fresh one" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var server: support.HttpServer = undefined;
    try server.startRequiring("Bearer fresh");
    defer server.stop();

    var credentials: Credentials = .{};
    var policy = try fidius.EgressPolicy.fromRules(*Credentials, &credentials, .{
        .http = Credentials.authorize,
        .response = Credentials.retryOn401,
    }, null, null);
    defer policy.deinit();
    var host = try hostWithPolicy(&policy);
    defer host.deinit();
    var plugin = try loadFetcher(&fixtures, host, null, null);
    defer plugin.deinit();

    // The stale credential gets a 401 the guest never sees: the request
    // goes to the HTTP rule again and is sent with the fresh one.
    var args: [256]u8 = undefined;
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const result = plugin.callJson(gpa, "fetch", try fetchArgs(&args, "GET", server.port, "/private/report"), &diag) catch |err| {
        std.debug.print("fetch failed: {f}\n", .{diag});
        return err;
    };
    defer gpa.free(result);
    try testing.expect(std.mem.startsWith(u8, result, "\"200 "));
    try testing.expectEqualStrings("\"200 hello from /private/report\"", result);
    try testing.expectEqual(@as(u32, 2), server.requestCount());
    try testing.expectEqual(@as(usize, 0), plugin.deniedRequestCount());

    credentials.mutex.lockUncancelable(io);
    defer credentials.mutex.unlock(io);
    try testing.expectEqual(@as(u32, 2), credentials.issued);
    try testing.expectEqual(@as(u32, 2), credentials.observed);
    const expected = [_]struct { u16, bool, []const u8 }{
        .{ 401, true, "Bearer stale" },
        .{ 200, false, "Bearer fresh" },
    };
    for (expected, credentials.observations[0..2]) |want, *seen| {
        try testing.expectEqual(want[0], seen.status);
        try testing.expectEqual(want[1], seen.retry_available);
        try testing.expectEqualStrings(want[2], seen.authorization());
    }

    // What could not be set, and where nothing can be.
    try testing.expectEqual(@as(?fidius.AllocError, error.InvalidArgument), credentials.host_error);
    try testing.expect(credentials.host_message_names_it);
    try testing.expectEqual(@as(u32, 4), credentials.nul_refusals);
    try testing.expectEqual(@as(?fidius.AllocError, error.Misuse), credentials.response_edit_error);
    try testing.expectEqual(@as(u32, 0), credentials.unexpected_failures);
    try testing.expectEqual(@as(u32, 0), credentials.unexpected_headers);
}

test "a request without edits cannot be edited" {
    const request: fidius.HttpRequest = .{
        .plugin = "p",
        .method = "GET",
        .scheme = "http",
        .authority = "example.com",
        .host = "example.com",
        .port = 80,
        .path_with_query = "/",
        .headers = &.{},
    };
    try testing.expectEqual(@as(?*fidius.c.fidius_host_header_edits_t, null), request.edits);
    try testing.expectError(error.Misuse, request.setHeader("authorization", "Bearer x", null));
    try testing.expectError(error.Misuse, request.removeHeader("authorization", null));
}
