//! Configured instances: the Scaler fixture of each runtime this build
//! has, loaded with a configuration, more instances made from bincode and
//! JSON, and the errors of a missing, malformed or refused configuration.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;

/// bincode of ScaleConfig{ factor, label, mode } (mode 0 Quiet, 1 Loud).
fn scaleConfig(buffer: []u8, factor: i64, label: []const u8, mode: u32) []const u8 {
    std.mem.writeInt(i64, buffer[0..8], factor, .little);
    std.mem.writeInt(u64, buffer[8..16], label.len, .little);
    @memcpy(buffer[16..][0..label.len], label);
    std.mem.writeInt(u32, buffer[16 + label.len ..][0..4], mode, .little);
    return buffer[0 .. 20 + label.len];
}

fn exercise(fixtures: *support.Fixtures, relative: []const u8) !void {
    var host = try fixtures.host(null);
    defer host.deinit();
    var options = try fixtures.options("scaler.toml");
    defer options.deinit();
    const path = try fixtures.path(relative);

    try testing.expectError(error.ConfigRequired, host.loadPath(path, null, &options, null));
    try options.setConfigJson("{\"factor\": 3, \"label\": \"abc\", \"mode\": \"Loud\"}", null);
    var first = try host.loadPath(path, null, &options, null);
    try support.expectJson(first, "scale", "[5]", "15");
    try support.expectJson(first, "label", "[]", "\"ABC\"");
    try support.expectJson(first, "bump", "[]", "1");

    var buffer: [64]u8 = undefined;
    var second = try first.newInstance(scaleConfig(&buffer, -2, "xy", 0), null);
    defer second.deinit();
    try support.expectJson(second, "scale", "[5]", "-10");
    try support.expectJson(second, "bump", "[]", "1");
    try support.expectJson(first, "bump", "[]", "2");

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.ConfigInvalid, first.newInstanceJson("{\"factor\": 1}", &diag));
    try support.expectContains(diag.message(), "label");
    var third = try first.newInstanceJson("{\"factor\": 1, \"label\": \"q\", \"mode\": \"Quiet\"}", null);
    defer third.deinit();
    first.deinit(); // the other instances outlive it
    try support.expectJson(third, "label", "[]", "\"q\"");
    try support.expectJson(second, "bump", "[]", "2");
}

test "configured instances in every runtime" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var iface = try fixtures.interface("scaler.toml");
    defer iface.deinit();
    try testing.expectEqualStrings("ScaleConfig", iface.configType().?);

    try exercise(&fixtures, "configured/libscaler_plugin.so");
    if (fidius.features().wasm) try exercise(&fixtures, "configured/wasm-scaler");
    if (fidius.features().python) try exercise(&fixtures, "configured/python-scaler");
}

test "a Python plugin that refuses its configuration says why" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    try testing.expect(fidius.features().python);
    var host = try fixtures.host(null);
    defer host.deinit();
    var options = try fixtures.options("scaler.toml");
    defer options.deinit();
    try options.setConfigJson("{\"factor\": 0, \"label\": \"z\", \"mode\": \"Quiet\"}", null);
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.ConfigRejected, host.loadPath(try fixtures.path("configured/python-scaler"), null, &options, &diag));
    try testing.expectEqualStrings("ZERO_FACTOR", diag.pluginCode().?);
}

test "a plugin lists the host interfaces it imports" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("hostcall");
    defer host.deinit();
    var plugin = try host.load("LedgerBookkeeper", null, null);
    defer plugin.deinit();
    try testing.expectEqual(@as(usize, 1), plugin.hostImportCount());
    const import = try plugin.hostImport(0, null);
    try testing.expectEqualStrings("Ledger", import.name);
    try testing.expectEqual(@as(u32, 3), import.version);
    var ledger = try fixtures.interface("ledger.toml");
    defer ledger.deinit();
    try testing.expectEqual(ledger.hash(), import.hash);
    try testing.expectError(error.InvalidArgument, plugin.hostImport(1, null));
}
