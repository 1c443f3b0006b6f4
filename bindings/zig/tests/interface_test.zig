//! Interfaces built in Zig and read from interface files (TOML), their
//! accessors and text form, and the checks a load makes against them.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;

/// The fixtures' Calculator interface, method by method.
fn buildCalculator(builder: *fidius.InterfaceBuilder) !void {
    try builder.setWasmExport("fidius:calculator/calculator@0.1.0", null);
    try builder.addMethod("add: i64, i64 -> i64", .{}, null); // any spacing
    try builder.addMethod("greet:String->String", .{}, null);
    try builder.addMethod("divide:i64,i64->Result<i64,PluginError>", .{}, null);
    try builder.addMethod("describe:bool,f64,Vec<String>,Option < String >->String", .{}, null);
    try builder.addMethod("boom:->String", .{}, null);
    try builder.addMethod("reverse:Vec<u8>->Vec<u8>", .{ .raw = true }, null);
    try builder.addMethod("ping:->", .{}, null);
    try builder.addMethod("multiply:i64,i64->i64", .{ .optional = true }, null);
}

test "an interface built in Zig: accessors, method lookup and TOML round trip" {
    var builder = try fidius.InterfaceBuilder.init("Calculator", 2, null);
    defer builder.deinit();
    try buildCalculator(&builder);
    var calculator = try builder.build(null);
    defer calculator.deinit();

    try testing.expectEqual(support.calculator_hash, calculator.hash());
    try testing.expectEqualStrings("Calculator", calculator.name());
    try testing.expectEqual(@as(u32, 2), calculator.version());
    try testing.expectEqualStrings("fidius:calculator/calculator@0.1.0", calculator.wasmExport().?);
    try testing.expectEqual(@as(u32, 8), calculator.methodCount());
    try testing.expectEqualStrings("reverse:Vec < u8 >->Vec < u8 >!raw", calculator.methodSignature(5).?);
    try testing.expectEqualStrings("describe:bool,f64,Vec < String >,Option < String >->String", calculator.methodSignature(3).?);
    try testing.expectEqual(null, calculator.methodSignature(8));
    try testing.expectEqual(fidius.MethodFlags{ .raw = true }, calculator.methodFlags(5));
    try testing.expectEqual(fidius.MethodFlags{ .optional = true }, calculator.methodFlags(7));
    try testing.expectEqual(fidius.MethodFlags{}, calculator.methodFlags(99));
    try testing.expectEqual(@as(u32, 6), try calculator.methodIndex("ping", null));

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.UnknownMethod, calculator.methodIndex("pong", &diag));
    try support.expectContains(diag.message(), "no method 'pong'");

    const toml = try calculator.toToml(gpa, null);
    defer gpa.free(toml);
    try support.expectContains(toml, "hash = \"0x0271e9b7d21d10f1\"");
    var again = try fidius.Interface.fromToml(toml, null);
    defer again.deinit();
    try testing.expectEqual(support.calculator_hash, again.hash());
    try testing.expectEqual(fidius.MethodFlags{ .optional = true }, again.methodFlags(7));
}

test "interface builders refuse bad methods and types, and stay usable" {
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    var builder = try fidius.InterfaceBuilder.init("Calculator", 2, null);
    defer builder.deinit();
    try buildCalculator(&builder);

    try testing.expectError(error.InvalidInterface, builder.addMethod("add:i64->i64", .{}, &diag));
    try support.expectContains(diag.message(), "'add' is declared twice");
    try testing.expectError(error.InvalidInterface, builder.addMethod("nope", .{}, &diag));
    try support.expectContains(diag.message(), "method signature 'nope'");
    try testing.expectError(error.InvalidInterface, builder.addMethod("r:&str->()", .{}, &diag));
    try support.expectContains(diag.message(), "reference");
    try testing.expectError(error.InvalidArgument, builder.addMethod("f:->()", @bitCast(@as(u32, 64)), &diag));
    try support.expectContains(diag.message(), "flag");
    try testing.expectError(error.InvalidUtf8, builder.addMethod("f:\xff->()", .{}, null));
    try testing.expectError(error.InvalidInterface, builder.addType("struct {", &diag));
    try support.expectContains(diag.message(), "type declaration");
    try testing.expectError(error.InvalidInterface, builder.setWasmExport("has space", null));

    // An unknown type fails the build, naming it; declaring it fixes that.
    try builder.addMethod("at:Point->Point", .{ .optional = true }, null);
    try testing.expectError(error.InvalidInterface, builder.build(&diag));
    try support.expectContains(diag.message(), "unknown type `Point`");
    try builder.addType("struct Point { x: f64, y: f64 }", null);
    var with_point = try builder.build(null);
    defer with_point.deinit();
    // Optional methods do not change the hash.
    try testing.expectEqual(support.calculator_hash, with_point.hash());

    try testing.expectError(error.InvalidInterface, fidius.InterfaceBuilder.init("not an ident", 1, &diag));
    try support.expectContains(diag.message(), "not an identifier");
}

test "interface files" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    var calculator = try fixtures.interface("calculator.toml");
    defer calculator.deinit();
    try testing.expectEqual(support.calculator_hash, calculator.hash());
    var types = try fixtures.interface("type_echo.toml");
    defer types.deinit();
    try testing.expectEqual(@as(u32, 20), types.methodCount());

    try testing.expectError(error.FileNotFound, fidius.Interface.fromFile(try fixtures.path("interfaces/missing.toml"), &diag));
    try support.expectContains(diag.message(), "missing.toml");
    try testing.expectError(error.InvalidInterface, fidius.Interface.fromToml("name = \"X\"\nversion = \"one\"\n", &diag));
    try support.expectContains(diag.message(), "not a valid interface file");
    try testing.expectError(error.InterfaceHashMismatch, fidius.Interface.fromToml("name = \"X\"\nversion = 1\nhash = \"0x5\"\n", &diag));
    try support.expectContains(diag.message(), "0x0000000000000005");
    try testing.expectError(error.InvalidInterface, fidius.Interface.fromToml("name = \"X\"\nversion = 1\n[[methods]]\nsignature = \"f:Nope->()\"\n", &diag));
    try support.expectContains(diag.message(), "unknown type `Nope`");
}

test "a load checks the interface's hash, version and method count" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    // The plugin keeps its own reference to the interface and options.
    var plugin = blk: {
        var options = try fixtures.options("calculator.toml");
        defer options.deinit();
        break :blk try host.load("BasicCalculator", &options, null);
    };
    defer plugin.deinit();
    var got = try plugin.interface(null);
    defer got.deinit();
    try testing.expectEqual(support.calculator_hash, got.hash());
    try support.expectJson(plugin, "add", "[3, 7]", "10");

    var options = try fidius.LoadOptions.init();
    defer options.deinit();

    // Other methods: another hash.
    var other_builder = try fidius.InterfaceBuilder.init("Calculator", 3, null);
    defer other_builder.deinit();
    try other_builder.addMethod("add:i64,i64->i64", .{}, null);
    var other = try other_builder.build(null);
    defer other.deinit();
    try options.setInterface(&other, null);
    try testing.expectError(error.InterfaceHashMismatch, host.load("BasicCalculator", &options, &diag));
    try support.expectContains(diag.message(), "expected 0xbe30b9d096b2c49e, found 0x0271e9b7d21d10f1");

    // Same methods, another version; then one method more.
    var calculator = try fixtures.interface("calculator.toml");
    defer calculator.deinit();
    const text = try calculator.toToml(gpa, null);
    defer gpa.free(text);
    const version_5 = try std.mem.replaceOwned(u8, gpa, text, "version = 2", "version = 5");
    defer gpa.free(version_5);
    var newer = try fidius.Interface.fromToml(version_5, null);
    defer newer.deinit();
    try options.setInterface(&newer, null);
    try testing.expectError(error.InterfaceVersionMismatch, host.load("BasicCalculator", &options, &diag));
    try support.expectContains(diag.message(), "expected 5, found 2");

    const longer_text = try std.mem.concat(gpa, u8, &.{ text, "\n[[methods]]\nsignature = \"later:->()\"\noptional = true\n" });
    defer gpa.free(longer_text);
    var longer = try fidius.Interface.fromToml(longer_text, null);
    defer longer.deinit();
    try options.setInterface(&longer, null);
    try testing.expectError(error.MethodCountMismatch, host.loadPath(try fixtures.path("plugins/libcalc_plugin.so"), "BasicCalculator", &options, &diag));
    try support.expectContains(diag.message(), "expected 9, found 8");

    // Clearing the interface: the load works, JSON calls do not.
    try options.setInterface(null, null);
    var bare = try host.load("BasicCalculator", &options, null);
    defer bare.deinit();
    try support.expectJsonError(bare, "add", "[1, 2]", error.NoInterface, "without an interface");
    try testing.expectError(error.NoInterface, bare.interface(&diag));
    try support.expectContains(diag.message(), "BasicCalculator");
}

test "JSON forms of structs, enums, options and maps" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("types");
    defer host.deinit();
    var options = try fixtures.options("type_echo.toml");
    defer options.deinit();
    var echo = try host.load("TypeEchoes", &options, null);
    defer echo.deinit();

    try support.expectJson(echo, "echo_point", "[{\"y\": 2, \"label\": \"p\", \"x\": 1.5}]", "{\"x\":1.5,\"y\":2.0,\"label\":\"p\"}");
    try support.expectJson(echo, "echo_shape", "[{\"Rect\": {\"w\": 1, \"h\": 2}}]", "{\"Rect\":{\"w\":1.0,\"h\":2.0}}");
    try support.expectJson(echo, "echo_shape", "[\"Empty\"]", "\"Empty\"");
    try support.expectJson(echo, "echo_option", "[null]", "null");
    try support.expectJson(echo, "echo_btree_map", "[[[2, \"b\"], [1, \"a\"]]]", "[[1,\"a\"],[2,\"b\"]]");
    try support.expectJson(echo, "checked", "[4]", "4");
    try support.expectJsonError(echo, "checked", "[-4]", error.PluginError, "NEGATIVE");
    try support.expectJsonError(echo, "echo_unsigned", "[256, 0, 0, 0, 0]", error.ArgumentMismatch, "argument 1 (u8): 256 is out of range for u8 (0..=255)");
    try support.expectJsonError(echo, "echo_point", "[{\"x\": 1, \"y\": 2}]", error.ArgumentMismatch, "missing field `label`");
    try support.expectJsonError(echo, "echo_shape", "[{\"Square\": 1}]", error.ArgumentMismatch, "no variant `Square`");
}
