//! Versions, status names, signature hashes and how `Diagnostics` behaves.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;

test "versions and status names" {
    try testing.expectEqualStrings(fidius.header_version_string, fidius.version());
    try testing.expectEqual(fidius.header_version_number, fidius.versionNumber());
    try testing.expectEqualStrings("OK", fidius.statusName(0));
    try testing.expectEqualStrings("PLUGIN_NOT_FOUND", fidius.Status.plugin_not_found.name());
    try testing.expectEqualStrings("UNKNOWN", fidius.statusName(123456));
    try testing.expectEqual(error.NoEgressPolicy, fidius.errorFromStatus(.no_egress_policy));
    try testing.expectEqual(fidius.Status.timeout, fidius.statusFromError(error.Timeout).?);
}

test "features of the library" {
    const features = fidius.features();
    try testing.expectEqual(fidius.header_features, features);
    // The fixtures' library is built with both runtimes.
    try testing.expect(features.wasm);
    try testing.expect(features.python);
    try testing.expectEqual(@as(u32, 0), features._unused);
}

test "signature hashes" {
    try testing.expectEqual(@as(u64, 0xbe30b9d096b2c49e), try fidius.signaturesHash(gpa, &.{"add:i64,i64->i64"}, null));
    // Any spacing: the hash is of the canonical spelling.
    try testing.expectEqual(@as(u64, 0xbe30b9d096b2c49e), try fidius.signaturesHash(gpa, &.{"add: i64, i64 -> i64"}, null));
    // No signatures: the FNV-1a offset basis.
    try testing.expectEqual(@as(u64, 0xcbf29ce484222325), try fidius.signaturesHash(gpa, &.{}, null));

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.InvalidUtf8, fidius.signaturesHash(gpa, &.{"\xff\xfe"}, &diag));
    try testing.expectEqual(fidius.Status.invalid_utf8, diag.status());
    try testing.expectError(error.InvalidInterface, fidius.signaturesHash(gpa, &.{"nope"}, &diag));
    try support.expectContains(diag.message(), "nope");
}

test "one Diagnostics describes the last call it was passed to" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectEqual(fidius.Status.ok, diag.status());
    try testing.expectEqualStrings("", diag.message());

    try testing.expectError(error.PluginNotFound, host.load("Nobody", null, &diag));
    try testing.expectEqual(fidius.Status.plugin_not_found, diag.status());
    try support.expectContains(diag.message(), "'Nobody'");
    try testing.expectEqual(null, diag.pluginCode());

    var formatted: [512]u8 = undefined;
    try support.expectContains(try std.fmt.bufPrint(&formatted, "{f}", .{diag}), "PLUGIN_NOT_FOUND: ");

    // A successful call clears it.
    var plugin = try host.load("BasicCalculator", null, &diag);
    defer plugin.deinit();
    try testing.expectEqual(fidius.Status.ok, diag.status());
    try testing.expectEqualStrings("", diag.message());
}
