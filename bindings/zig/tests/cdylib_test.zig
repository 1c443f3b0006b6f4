//! Native (cdylib) plugins: discovery, raw and JSON calls, every call error
//! they can provoke, metadata, builder options and load failures.
const std = @import("std");
const fidius = @import("fidius_host");
const support = @import("support.zig");

const testing = std.testing;
const gpa = testing.allocator;
const io = testing.io;

test "discovery lists the calculator plugins and explains skipped files" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();

    var host = try fixtures.host("plugins");
    defer host.deinit();
    var found = try host.discover(null);
    defer found.deinit();
    try testing.expectEqual(@as(usize, 2), found.pluginCount());
    var saw_basic = false;
    for (0..found.pluginCount()) |i| {
        const info = found.plugin(i).?;
        try testing.expectEqualStrings("Calculator", info.interfaceName());
        try testing.expectEqual(@as(u32, 2), info.interfaceVersion());
        try testing.expectEqual(support.calculator_hash, info.interfaceHash());
        try testing.expectEqual(fidius.BufferStrategy.plugin_allocated, info.bufferStrategy());
        try testing.expectEqual(fidius.Runtime.cdylib, info.runtime());
        try testing.expect(std.mem.endsWith(u8, info.path(), "libcalc_plugin.so"));
        if (std.mem.eql(u8, info.name(), "BasicCalculator")) {
            saw_basic = true;
            try testing.expectEqual(@as(u64, 1), info.capabilities());
        }
    }
    try testing.expect(saw_basic);
    try testing.expectEqual(null, found.plugin(found.pluginCount()));
    try testing.expectEqual(@as(usize, 0), found.skippedCount());

    var crafted_host = try fixtures.host("crafted");
    defer crafted_host.deinit();
    var crafted = try crafted_host.discover(null);
    defer crafted.deinit();
    try testing.expect(crafted.skippedCount() >= 10);
    var saw_magic = false;
    for (0..crafted.skippedCount()) |i| {
        const skipped = crafted.skipped(i).?;
        try support.expectContains(skipped.message, skipped.path);
        if (std.mem.endsWith(u8, skipped.path, "libdefect_magic.so")) {
            saw_magic = true;
            try testing.expectEqual(fidius.Status.invalid_magic, skipped.status);
        }
    }
    try testing.expect(saw_magic);
    try testing.expectEqual(null, crafted.skipped(crafted.skippedCount()));
}

test "raw calls: bincode in, bincode out; plugin errors, panics and bad input" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    var plugin = try host.load("BasicCalculator", null, null);
    defer plugin.deinit();
    host.deinit(); // plugins outlive their host

    try testing.expectEqual(@as(i64, 10), try support.rawAdd(plugin, 3, 7));
    try testing.expectEqual(@as(u32, 8), plugin.methodCount());
    try testing.expectEqualStrings("BasicCalculator", plugin.info().name());

    // greet("hello"): a String is its u64 length, then its bytes.
    const greeting = try plugin.call(gpa, 1, "\x05\x00\x00\x00\x00\x00\x00\x00hello", null);
    defer gpa.free(greeting);
    try testing.expectEqualStrings("\x0d\x00\x00\x00\x00\x00\x00\x00Hello, hello!", greeting);

    // A raw method: bytes travel unencoded. ping returns nothing.
    const reversed = try plugin.call(gpa, 5, "raw!", null);
    defer gpa.free(reversed);
    try testing.expectEqualStrings("!war", reversed);
    const nothing = try plugin.call(gpa, 6, "", null);
    defer gpa.free(nothing);
    try testing.expectEqual(@as(usize, 0), nothing.len);

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    // divide(1, 0): the plugin's own error with code, message and details.
    try testing.expectError(error.PluginError, plugin.call(gpa, 2, &support.encodeI64s(2, .{ 1, 0 }), &diag));
    try testing.expectEqual(fidius.Status.plugin_error, diag.status());
    try testing.expectEqualStrings("DIV_ZERO", diag.pluginCode().?);
    try testing.expectEqualStrings("cannot divide 1 by zero", diag.pluginMessage().?);
    try testing.expectEqualStrings("{\"dividend\":1}", diag.pluginDetails().?);
    try support.expectContains(diag.message(), "BasicCalculator");

    // boom panics; the plugin stays usable.
    try testing.expectError(error.PluginPanic, plugin.call(gpa, 4, "", &diag));
    try support.expectContains(diag.message(), "panicked on purpose");
    try testing.expectEqual(null, diag.pluginCode());
    try testing.expectEqual(@as(i64, 42), try support.rawAdd(plugin, 20, 22));

    try testing.expectError(error.PluginSerialization, plugin.call(gpa, 0, "abc", null));
    try testing.expectError(error.MethodOutOfRange, plugin.call(gpa, 8, "", &diag));
    try support.expectContains(diag.message(), "8 methods");
}

test "optional methods: capabilities, and NOT_IMPLEMENTED where missing" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();

    var basic = try host.load("BasicCalculator", null, null);
    defer basic.deinit();
    try testing.expect(basic.hasCapability(0));
    try testing.expect(!basic.hasCapability(64));
    const product = try basic.call(gpa, 7, &support.encodeI64s(2, .{ 6, 7 }), null);
    defer gpa.free(product);
    try testing.expectEqual(@as(i64, 42), std.mem.readInt(i64, product[0..8], .little));

    var partial = try host.loadPath(try fixtures.path("plugins/libcalc_plugin.so"), "PartialCalculator", null, null);
    defer partial.deinit();
    try testing.expect(!partial.hasCapability(0));
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.NotImplemented, partial.call(gpa, 7, &support.encodeI64s(2, .{ 6, 7 }), &diag));
    try testing.expectEqual(fidius.Status.not_implemented, diag.status());
}

test "JSON calls and their errors" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();
    var options = try fixtures.options("calculator.toml");
    defer options.deinit();
    var plugin = try host.load("BasicCalculator", &options, null);
    defer plugin.deinit();

    try support.expectJson(plugin, "add", "[3, 7]", "10");
    try support.expectJson(plugin, "greet", "[\"x\"]", "\"Hello, x!\"");
    try support.expectJson(plugin, "describe", "[true, 0.5, [\"a\", \"b\"], \"n\"]", "\"flag=true ratio=0.5 tags=a+b note=n\"");
    try support.expectJson(plugin, "ping", "[]", "null");
    try support.expectJson(plugin, "reverse", "[[1, 2, 3]]", "[3,2,1]");

    const by_index = try plugin.callJsonIndex(gpa, 0, "[20, 22]", null);
    defer gpa.free(by_index);
    try testing.expectEqualStrings("42", by_index);

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const quotient = plugin.callJson(gpa, "divide", "[7, 0]", &diag);
    try testing.expectError(error.PluginError, quotient);
    try testing.expectEqualStrings("DIV_ZERO", diag.pluginCode().?);
    try testing.expectEqualStrings("cannot divide 7 by zero", diag.pluginMessage().?);
    try testing.expectEqualStrings("{\"dividend\":7}", diag.pluginDetails().?);

    try support.expectJsonError(plugin, "boom", "[]", error.PluginPanic, "panicked on purpose");
    try support.expectJsonError(plugin, "add", "[1, \"x\"]", error.ArgumentMismatch, "argument 2");
    try support.expectJsonError(plugin, "add", "[1]", error.ArgumentMismatch, "expected 2 argument(s) (i64, i64), found 1");
    try support.expectJsonError(plugin, "add", "[1,", error.InvalidJson, "not valid JSON");
    try support.expectJsonError(plugin, "subtract", "[1, 2]", error.UnknownMethod, "subtract");
    try testing.expectError(error.MethodOutOfRange, plugin.callJsonIndex(gpa, 99, "[]", null));

    // Without an interface, JSON calls are refused.
    var bare = try host.load("BasicCalculator", null, null);
    defer bare.deinit();
    try support.expectJsonError(bare, "add", "[1, 2]", error.NoInterface, "without an interface");
    try testing.expectError(error.NoInterface, bare.interface(null));

    // PartialCalculator lacks the optional multiply.
    var partial = try host.load("PartialCalculator", &options, null);
    defer partial.deinit();
    try support.expectJsonError(partial, "multiply", "[6, 7]", error.NotImplemented, "multiply");
    try support.expectJson(partial, "add", "[1, 2]", "3");
}

test "metadata of the plugin and its methods" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();
    var plugin = try host.load("BasicCalculator", null, null);
    defer plugin.deinit();

    try testing.expectEqual(@as(usize, 2), plugin.traitMetadataCount());
    const category = try plugin.traitMetadata(1, null);
    try testing.expectEqualStrings("category", category.key);
    try testing.expectEqualStrings("math", category.value);
    try testing.expectError(error.InvalidArgument, plugin.traitMetadata(2, null));

    try testing.expectEqual(@as(usize, 2), try plugin.methodMetadataCount(0, null));
    const doc = try plugin.methodMetadata(0, 0, null);
    try testing.expectEqualStrings("doc", doc.key);
    try testing.expectEqualStrings("adds two integers", doc.value);
    try testing.expectEqual(@as(usize, 0), try plugin.methodMetadataCount(1, null));
    try testing.expectError(error.MethodOutOfRange, plugin.methodMetadataCount(8, null));
    try testing.expectError(error.MethodOutOfRange, plugin.methodMetadata(9, 0, null));
}

test "arena plugins, the output limit and the buffer strategy filter" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.addSearchPath(try fixtures.path("arena"), null);
    try builder.setBufferStrategy(.arena, null);
    try builder.setMaxOutputSize(5000, null);
    var host = try builder.build(null);
    defer host.deinit();
    var plugin = try host.load("ArenaEcho", null, null);
    defer plugin.deinit();
    try testing.expectEqual(fidius.BufferStrategy.arena, plugin.info().bufferStrategy());

    // repeat(text, times): the String "a", then times as u32.
    var input = "\x01\x00\x00\x00\x00\x00\x00\x00a\x00\x00\x00\x00".*;
    std.mem.writeInt(u32, input[9..13], 4500, .little);
    const repeated = try plugin.call(gpa, 0, &input, null);
    defer gpa.free(repeated);
    try testing.expectEqual(@as(usize, 8 + 4500), repeated.len);
    std.mem.writeInt(u32, input[9..13], 100000, .little);
    try testing.expectError(error.OutputTooLarge, plugin.call(gpa, 0, &input, null));

    // A host that only accepts arena plugins refuses the calculator.
    var strict_builder = try fidius.HostBuilder.init();
    defer strict_builder.deinit();
    try strict_builder.setBufferStrategy(.arena, null);
    var strict = try strict_builder.build(null);
    defer strict.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(
        error.BufferStrategyMismatch,
        strict.loadPath(try fixtures.path("plugins/libcalc_plugin.so"), "BasicCalculator", null, &diag),
    );
    const mismatch = diag.mismatch().?;
    try testing.expectEqual(fidius.BufferStrategy.arena, @as(fidius.BufferStrategy, @fromBackingInt(@as(u32, @intCast(mismatch.expected)))));
    try testing.expectEqual(fidius.BufferStrategy.plugin_allocated, @as(fidius.BufferStrategy, @fromBackingInt(@as(u32, @intCast(mismatch.found)))));
}

test "an expected interface hash on the host" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    const library = try fixtures.path("plugins/libcalc_plugin.so");

    var wrong_builder = try fidius.HostBuilder.init();
    defer wrong_builder.deinit();
    try wrong_builder.setInterfaceHash(0x1234, null);
    var wrong = try wrong_builder.build(null);
    defer wrong.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.InterfaceHashMismatch, wrong.loadPath(library, "BasicCalculator", null, &diag));
    try support.expectContains(diag.message(), "0x0271e9b7d21d10f1");
    try testing.expectEqual(fidius.Mismatch{ .expected = 0x1234, .found = support.calculator_hash }, diag.mismatch().?);
    try testing.expectEqual(null, diag.methodOutOfRange());

    var right_builder = try fidius.HostBuilder.init();
    defer right_builder.deinit();
    try right_builder.setInterfaceHash(support.calculator_hash, null);
    var right = try right_builder.build(null);
    defer right.deinit();
    var plugin = try right.loadPath(library, "BasicCalculator", null, null);
    defer plugin.deinit();
    try testing.expectEqual(@as(i64, 3), try support.rawAdd(plugin, 1, 2));
}

test "load failures name the file and the problem" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();

    const cases = [_]struct { []const u8, fidius.Error }{
        .{ "crafted/libdefect_magic.so", error.InvalidMagic },
        .{ "crafted/libdefect_registry_version.so", error.IncompatibleRegistryVersion },
        .{ "crafted/libdefect_abi.so", error.IncompatibleAbiVersion },
        .{ "crafted/libdefect_descriptor_size.so", error.InvalidDescriptorSize },
        .{ "crafted/libdefect_null_vtable.so", error.InvalidPluginPointer },
        .{ "crafted/libdefect_bad_utf8_name.so", error.InvalidPluginString },
        .{ "crafted/libdefect_construct_returns_null.so", error.ConstructFailed },
        .{ "crafted/libdefect_null_registry.so", error.InvalidRegistry },
        .{ "crafted/libdefect_huge_count.so", error.InvalidPluginCount },
        .{ "crafted/libdefect_no_symbol.so", error.RegistryMissing },
        .{ "keys/trusted.public", error.NotALibrary },
        .{ "plugins/libnothing.so", error.FileNotFound },
        .{ "plugins/libcalc_plugin.so", error.AmbiguousPlugin },
    };
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    for (cases) |case| {
        const file, const expected = case;
        try testing.expectError(expected, host.loadPath(try fixtures.path(file), null, null, &diag));
        try testing.expectEqual(fidius.statusFromError(expected).?, diag.status());
        try support.expectContains(diag.message(), file);
    }
    try testing.expectError(error.PluginNotFound, host.load("BasicCalculator", null, &diag));
    try testing.expectError(error.InvalidUtf8, host.load("Basic\xc3", null, &diag));
}

test "a library over the host's size limit is refused unread" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    const library = try fixtures.path("plugins/libcalc_plugin.so");

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setMaxLibrarySize(1000, null);
    var small = try builder.build(null);
    defer small.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.FileTooLarge, small.loadPath(library, "BasicCalculator", null, &diag));
    try testing.expectEqual(fidius.Status.file_too_large, diag.status());
    try support.expectContains(diag.message(), "limit of 1000 bytes");

    // The default limit takes it.
    var host = try fixtures.host(null);
    defer host.deinit();
    var plugin = try host.loadPath(library, "BasicCalculator", null, null);
    defer plugin.deinit();
    try testing.expectEqual(@as(i64, 3), try support.rawAdd(plugin, 1, 2));

    // A zero limit is refused: by the setter, or at the latest by build.
    var zero = try fidius.HostBuilder.init();
    defer zero.deinit();
    if (zero.setMaxLibrarySize(0, null)) |_| {
        try testing.expectError(error.InvalidArgument, zero.build(null));
    } else |err| try testing.expectEqual(error.InvalidArgument, err);
    var zero_package = try fidius.HostBuilder.init();
    defer zero_package.deinit();
    if (zero_package.setMaxPackageSize(0, null)) |_| {
        try testing.expectError(error.InvalidArgument, zero_package.build(null));
    } else |err| try testing.expectEqual(error.InvalidArgument, err);
}

extern "c" fn mkfifo(path: [*:0]const u8, mode: std.c.mode_t) c_int;

test "a FIFO where a library is expected is refused without waiting for a writer" {
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const dir = try tmp.dir.realPathFileAlloc(io, ".", gpa);
    defer gpa.free(dir);
    const fifo = try std.fs.path.joinZ(gpa, &.{ dir, "libx.so" });
    defer gpa.free(fifo);
    try testing.expectEqual(@as(c_int, 0), mkfifo(fifo.ptr, 0o600));

    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host(null);
    defer host.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    const started = std.Io.Clock.awake.now(io);
    try testing.expectError(error.NotARegularFile, host.loadPath(fifo, null, null, &diag));
    try testing.expect(started.untilNow(io, .awake).toMilliseconds() < 10_000);
    try testing.expectEqual(fidius.Status.not_a_regular_file, diag.status());
    try support.expectContains(diag.message(), "libx.so");
}

test "the lenient load policy skips only the bad descriptor" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    const library = try fixtures.path("crafted/libdefect_second_bad.so");

    var strict = try fixtures.host(null);
    defer strict.deinit();
    try testing.expectError(error.IncompatibleAbiVersion, strict.loadPath(library, "Crafted", null, null));

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.setLoadPolicy(.lenient, null);
    var lenient = try builder.build(null);
    defer lenient.deinit();
    var plugin = try lenient.loadPath(library, "Crafted", null, null);
    defer plugin.deinit();
    try testing.expectEqual(@as(i64, 3), try support.rawAdd(plugin, 1, 2));
    // Lenient never relaxes registry-level checks.
    try testing.expectError(error.InvalidMagic, lenient.loadPath(try fixtures.path("crafted/libdefect_magic.so"), null, null, null));
}

test "signatures: required, trusted keys, untrusted and unsigned libraries" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();

    var host = try fixtures.signedHost("signed");
    defer host.deinit();

    var plugin = try host.load("BasicCalculator", null, null);
    defer plugin.deinit();
    try testing.expectEqual(@as(i64, 3), try support.rawAdd(plugin, 1, 2));

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.SignatureRequired, host.loadPath(try fixtures.path("plugins/libcalc_plugin.so"), "BasicCalculator", null, &diag));
    try support.expectContains(diag.message(), "libcalc_plugin.so");
    try testing.expectError(error.SignatureInvalid, host.loadPath(try fixtures.path("signed/libmarker.so"), null, null, &diag));
    try testing.expectError(error.PluginNotFound, host.load("Nobody", null, &diag));
    try support.expectContains(diag.message(), "libmarker.so");

    // A key given as raw bytes works like the key file.
    var key_bytes: [32]u8 = undefined;
    const key_file = try std.Io.Dir.cwd().readFile(testing.io, try fixtures.path("keys/trusted.public"), &key_bytes);
    try testing.expectEqual(@as(usize, 32), key_file.len);
    var raw_key_builder = try fidius.HostBuilder.init();
    defer raw_key_builder.deinit();
    try raw_key_builder.setRequireSignature(true, null);
    try raw_key_builder.addTrustedKey(&key_bytes, null);
    var raw_key_host = try raw_key_builder.build(null);
    defer raw_key_host.deinit();
    var again = try raw_key_host.loadPath(try fixtures.path("signed/libcalc_plugin.so"), "BasicCalculator", null, null);
    defer again.deinit();

    // Only the untrusted key: the signed library does not verify.
    var untrusted_builder = try fidius.HostBuilder.init();
    defer untrusted_builder.deinit();
    try untrusted_builder.setRequireSignature(true, null);
    try untrusted_builder.addTrustedKeyFile(try fixtures.path("keys/untrusted.public"), null);
    var untrusted = try untrusted_builder.build(null);
    defer untrusted.deinit();
    try testing.expectError(error.SignatureInvalid, untrusted.loadPath(try fixtures.path("signed/libcalc_plugin.so"), "BasicCalculator", null, null));
}

test "verifyPath checks signatures without loading" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    // A host that trusts the key but does not require signatures.
    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try builder.addTrustedKeyFile(try fixtures.path("keys/trusted.public"), null);
    var host = try builder.build(null);
    defer host.deinit();

    for ([_][]const u8{ "signed/libcalc_plugin.so", "wasm-signed/calc", "python-signed/calc" }) |signed| {
        try host.verifyPath(try fixtures.path(signed), &diag);
    }
    try testing.expectError(error.SignatureRequired, host.verifyPath(try fixtures.path("plugins/libcalc_plugin.so"), &diag));
    try support.expectContains(diag.message(), "libcalc_plugin.so.sig");
    try testing.expectError(error.SignatureRequired, host.verifyPath(try fixtures.path("wasm/calc"), &diag));
    try support.expectContains(diag.message(), "package.sig");
    // Signed by a key the host does not trust.
    try testing.expectError(error.SignatureInvalid, host.verifyPath(try fixtures.path("signed/libmarker.so"), &diag));
    try support.expectContains(diag.message(), "libmarker.so");
    try testing.expectError(error.FileNotFound, host.verifyPath(try fixtures.path("signed/nothing.so"), null));

    // A signed library with one byte changed no longer verifies.
    var tmp = testing.tmpDir(.{});
    defer tmp.cleanup();
    const library = try std.Io.Dir.cwd().readFileAlloc(io, try fixtures.path("signed/libcalc_plugin.so"), gpa, .unlimited);
    defer gpa.free(library);
    var signature: [64]u8 = undefined;
    const signature_bytes = try std.Io.Dir.cwd().readFile(io, try fixtures.path("signed/libcalc_plugin.so.sig"), &signature);
    library[library.len / 2] ^= 0xff;
    try tmp.dir.writeFile(io, .{ .sub_path = "libcalc_plugin.so", .data = library });
    try tmp.dir.writeFile(io, .{ .sub_path = "libcalc_plugin.so.sig", .data = signature_bytes });
    const tampered = try tmp.dir.realPathFileAlloc(io, "libcalc_plugin.so", gpa);
    defer gpa.free(tampered);
    try testing.expectError(error.SignatureInvalid, host.verifyPath(tampered, &diag));
    try support.expectContains(diag.message(), "tampered");

    // A host without a trusted key cannot verify.
    var keyless = try fixtures.host(null);
    defer keyless.deinit();
    try testing.expectError(error.InvalidArgument, keyless.verifyPath(try fixtures.path("signed/libcalc_plugin.so"), &diag));
    try support.expectContains(diag.message(), "no trusted key");
}

test "a method index out of range says which, and how many there are" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var host = try fixtures.host("plugins");
    defer host.deinit();
    var plugin = try host.load("BasicCalculator", null, null);
    defer plugin.deinit();

    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();
    try testing.expectError(error.MethodOutOfRange, plugin.call(gpa, 99, "", &diag));
    try testing.expectEqual(fidius.MethodOutOfRange{ .index = 99, .count = 8 }, diag.methodOutOfRange().?);
    try testing.expectEqual(null, diag.mismatch());
    // Other failures carry neither.
    try testing.expectError(error.PluginError, plugin.call(gpa, 2, &support.encodeI64s(2, .{ 1, 0 }), &diag));
    try testing.expectEqual(null, diag.methodOutOfRange());
    try testing.expectEqual(null, diag.mismatch());
    // Nor does a Diagnostics of a call that succeeded.
    try testing.expectEqual(@as(i64, 3), try support.rawAdd(plugin, 1, 2));
    var fresh: fidius.Diagnostics = .{};
    try testing.expectEqual(null, fresh.methodOutOfRange());
}

test "builder arguments are checked, and build consumes the builder" {
    var fixtures = try support.Fixtures.init();
    defer fixtures.deinit();
    var diag: fidius.Diagnostics = .{};
    defer diag.deinit();

    var builder = try fidius.HostBuilder.init();
    defer builder.deinit();
    try testing.expectError(error.InvalidArgument, builder.addSearchPath("", null));
    try testing.expectError(error.InvalidUtf8, builder.addSearchPath("bad\xff", &diag));
    try support.expectContains(diag.message(), "'path'");
    try testing.expectError(error.InvalidArgument, builder.setMaxOutputSize(0, null));
    const short_key: [31]u8 = @splat(0);
    try testing.expectError(error.InvalidKey, builder.addTrustedKey(&short_key, null));
    try testing.expectError(error.FileNotFound, builder.addTrustedKeyFile(try fixtures.path("keys/nothing.public"), null));
    try testing.expectError(error.InvalidKey, builder.addTrustedKeyFile(try fixtures.path("crafted/libcrafted.so"), null));
    try testing.expectError(error.InvalidArgument, builder.addDeniedCapability("", null));
    try testing.expectError(error.InvalidArgument, builder.setWasmMemoryLimit(0, null));

    // Signatures required without a trusted key: the build fails, and the
    // builder is gone all the same.
    try builder.setRequireSignature(true, null);
    try testing.expectError(error.InvalidArgument, builder.build(&diag));
    try support.expectContains(diag.message(), "no trusted key");
    try testing.expectEqual(null, builder.handle);
    try testing.expectError(error.NullArgument, builder.setRequireSignature(false, null));
}
