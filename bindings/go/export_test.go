package fidius

// LiveEgressCallbacks returns how many Go egress callbacks the C library
// still holds, for tests checking that each one is released.
func LiveEgressCallbacks() int64 { return liveEgressCallbacks.Load() }

// LiveHostFunctions returns how many Go host function bindings the C
// library still holds, for tests checking that each one is released.
func LiveHostFunctions() int64 { return liveHostFunctions.Load() }

// LiveStreamInputs returns how many Go stream inputs (Items given to a
// streaming call) the C library still holds, for tests checking that each
// one is released.
func LiveStreamInputs() int64 { return liveStreamInputs.Load() }
