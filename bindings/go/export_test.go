package fidius

// LiveEgressCallbacks returns how many Go egress callbacks the C library
// still holds, for tests checking that each one is released.
func LiveEgressCallbacks() int64 { return liveEgressCallbacks.Load() }
