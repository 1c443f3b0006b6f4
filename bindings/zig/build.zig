//! Builds the `fidius_host` Zig module: a Zig API over libfidius_host's C
//! header, linked dynamically against libfidius_host.so.
//!
//!   zig build test -Dinclude-dir=/path/to/include -Dlib-dir=/path/to/lib
//!
//! Without the options the header and library are looked up where this
//! repository keeps them (../../include and ../../target/release). Relative
//! directories are resolved against the current directory.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const include_dir = directoryOption(b, "include-dir", "Directory holding fidius_host.h", "../../include");
    const lib_dir = directoryOption(b, "lib-dir", "Directory holding libfidius_host.so", "../../target/release");

    // The C declarations, translated once by the build system. The Zig
    // module below imports them as "fidius_host_c"; users never need to.
    const translate_header = b.addTranslateC(.{
        .root_source_file = include_dir.path(b, "fidius_host.h"),
        .target = target,
        .optimize = optimize,
    });
    translate_header.addIncludePath(include_dir);
    const c_module = translate_header.createModule();

    const fidius_host = b.addModule("fidius_host", .{
        .root_source_file = b.path("src/fidius_host.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .imports = &.{.{ .name = "fidius_host_c", .module = c_module }},
    });
    fidius_host.addLibraryPath(lib_dir);
    // The rpath lets programs (and the tests) find libfidius_host.so
    // without LD_LIBRARY_PATH.
    fidius_host.addRPath(lib_dir);
    fidius_host.linkSystemLibrary("fidius_host", .{ .preferred_link_mode = .dynamic });

    // Unit tests inside the module (status/error tables), and the tests of
    // the whole API against the fixture plugins.
    const unit_tests = b.addTest(.{ .name = "unit", .root_module = fidius_host });
    const api_tests = b.addTest(.{
        .name = "api",
        .root_module = b.createModule(.{
            .root_source_file = b.path("tests/all.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
            .imports = &.{.{ .name = "fidius_host", .module = fidius_host }},
        }),
    });

    const run_api_tests = b.addRunArtifact(api_tests);
    // The tests read the fixtures named by $FIDIUS_TEST_FIXTURES and call
    // into libfidius_host.so, neither of which the build cache tracks: run
    // them every time instead of reusing a cached pass.
    run_api_tests.has_side_effects = true;
    // Some fixtures panic on purpose (PLUGIN_PANIC); keep their reports on
    // stderr to the panic message.
    run_api_tests.setEnvironmentVariable("RUST_BACKTRACE", "0");
    // Temporary files of the tests (std.testing.tmpDir) go to .zig-cache/tmp
    // of the working directory: keep them in this package's cache wherever
    // `zig build` is started from.
    run_api_tests.setCwd(b.path("."));

    const test_step = b.step("test", "Run the binding's tests (needs FIDIUS_TEST_FIXTURES)");
    test_step.dependOn(&b.addRunArtifact(unit_tests).step);
    test_step.dependOn(&run_api_tests.step);
}

/// A directory given as `-D<name>=<dir>` (relative to the current directory)
/// or else `default` (relative to this file's directory), as an absolute
/// path: it also becomes the rpath, which must not depend on the directory a
/// program is started from.
fn directoryOption(b: *std.Build, name: []const u8, description: []const u8, default: []const u8) std.Build.LazyPath {
    const graph = b.graph;
    const dir = b.option([]const u8, name, description) orelse
        (b.root.joinString(graph.arena, default) catch @panic("OOM"));
    const base = if (std.fs.path.isAbsolute(dir)) "/" else blk: {
        // Resolving a relative path observes the working directory, which
        // the configuration cache does not track.
        graph.poisonCache();
        break :blk std.process.currentPathAlloc(graph.io, graph.arena) catch |err|
            std.debug.panic("cannot resolve -D{s}={s}: {t}", .{ name, dir, err });
    };
    const absolute = std.fs.path.resolveAlloc(graph.arena, &.{ base, dir }) catch @panic("OOM");
    return graph.cwdRelativePath(absolute);
}
