package fidius

// The C side of stream inputs. This file holds only the //export functions
// (cgo allows no C definitions next to them).

/*
#include <stdint.h>
#include "fidius_host.h"
*/
import "C"

import "runtime/cgo"

// fidiusGoStreamProduce is the producer of every input given from Go:
// userdata is the cgo.Handle of its *streamInput. It runs on the goroutine
// calling the plugin or pulling the stream, and never panics (the input
// recovers its source's panics).
//
//export fidiusGoStreamProduce
func fidiusGoStreamProduce(userdata C.uintptr_t, item **C.uint8_t, itemLen *C.size_t) C.uint32_t {
	return cgo.Handle(userdata).Value().(*streamInput).produce(item, itemLen)
}

// fidiusGoStreamRelease is the free_userdata of every input given from Go:
// the library calls it once, when the call or stream no longer uses the
// input (on every failure too). It stops the source and deletes the handle.
//
//export fidiusGoStreamRelease
func fidiusGoStreamRelease(userdata C.uintptr_t) {
	handle := cgo.Handle(userdata)
	handle.Value().(*streamInput).release()
	handle.Delete()
	liveStreamInputs.Add(-1)
}
