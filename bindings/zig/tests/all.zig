//! The tests of the fidius_host Zig binding, run by `zig build test`
//! against the fixture plugins in $FIDIUS_TEST_FIXTURES.
test {
    _ = @import("basics_test.zig");
    _ = @import("cdylib_test.zig");
    _ = @import("interface_test.zig");
    _ = @import("wasm_test.zig");
    _ = @import("python_test.zig");
    _ = @import("egress_test.zig");
    _ = @import("socket_egress_test.zig");
    _ = @import("threads_test.zig");
    _ = @import("configured_test.zig");
    _ = @import("host_functions_test.zig");
    _ = @import("streams_test.zig");
    _ = @import("isolated_test.zig");
    _ = @import("cancel_test.zig");
}
