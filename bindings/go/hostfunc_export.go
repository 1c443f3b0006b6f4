package fidius

// The C side of host function bindings. This file holds only the //export
// functions and what they use (cgo allows no C definitions next to them).

/*
#include <stdint.h>
#include <stdlib.h>
#include "fidius_host.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"strings"
	"unsafe"
)

// fidiusGoHostRaw is the C callback of every NewRawBinding binding:
// userdata is the cgo.Handle of its hostFunctions, callContext the
// cgo.Handle of the plugin call's context (or NULL).
//
//export fidiusGoHostRaw
func fidiusGoHostRaw(userdata, callContext C.uintptr_t, method C.uint32_t, args *C.uint8_t, argsLen C.size_t,
	result **C.uint8_t, resultLen *C.size_t, cerr *C.fidius_host_callback_error_t) C.uint32_t {
	return serveHostCall(cerr, func() error {
		functions := cgo.Handle(userdata).Value().(*hostFunctions)
		call := HostCall{Context: callContextOf(callContext), Method: uint32(method), Name: functions.name(uint32(method))}
		call.Args = []byte{}
		if argsLen > 0 {
			call.Args = append(call.Args, unsafe.Slice((*byte)(unsafe.Pointer(args)), int(argsLen))...)
		}
		out, err := functions.raw(call)
		if err != nil {
			return err
		}
		if len(out) > 0 {
			*result = (*C.uint8_t)(C.CBytes(out))
			*resultLen = C.size_t(len(out))
		}
		return nil
	})
}

// fidiusGoHostJSON is the C callback of every NewJSONBinding binding, as
// fidiusGoHostRaw with JSON text.
//
//export fidiusGoHostJSON
func fidiusGoHostJSON(userdata, callContext C.uintptr_t, method C.uint32_t, argsJSON *C.char, argsLen C.size_t,
	result **C.char, resultLen *C.size_t, cerr *C.fidius_host_callback_error_t) C.uint32_t {
	return serveHostCall(cerr, func() error {
		functions := cgo.Handle(userdata).Value().(*hostFunctions)
		call := HostCall{Context: callContextOf(callContext), Method: uint32(method), Name: functions.name(uint32(method))}
		args := strings.Clone(unsafe.String((*byte)(unsafe.Pointer(argsJSON)), int(argsLen)))
		out, err := functions.json(call, args)
		if err != nil {
			return err
		}
		if out != "" { // "" is null, as a NULL result
			*result = C.CString(out)
			*resultLen = C.size_t(len(out))
		}
		return nil
	})
}

// fidiusGoHostRelease is the free_userdata of every binding: the library
// calls it once, when nothing uses the binding any more.
//
//export fidiusGoHostRelease
func fidiusGoHostRelease(userdata C.uintptr_t) {
	cgo.Handle(userdata).Delete()
	liveHostFunctions.Add(-1)
}

// callContextOf returns the context.Context whose cgo.Handle the library
// passed as a callback's call_context, or context.Background() for none.
func callContextOf(callContext C.uintptr_t) context.Context {
	if callContext == 0 {
		return context.Background()
	}
	return cgo.Handle(callContext).Value().(context.Context)
}

// serveHostCall runs serve and turns its outcome into the status a
// callback returns, with the error set on cerr. A panic in serve is
// recovered: a Go panic must not unwind through the C library.
func serveHostCall(cerr *C.fidius_host_callback_error_t, serve func() error) (status C.uint32_t) {
	defer func() {
		if v := recover(); v != nil {
			status = hostFailure(cerr, StatusInternalPanic, fmt.Sprintf("the Go host function panicked: %v", v))
		}
	}()
	err := serve()
	if err == nil {
		return C.FIDIUS_HOST_STATUS_OK
	}
	var perr *PluginError
	if errors.As(err, &perr) {
		return pluginError(cerr, perr.Code, perr.Message, perr.Details)
	}
	var ferr *Error
	if errors.As(err, &ferr) {
		switch ferr.Status {
		case StatusPluginError:
			return pluginError(cerr, ferr.PluginCode, ferr.PluginMessage, ferr.PluginDetails)
		case StatusOK: // no failure to pass on: a plain error
		default:
			return hostFailure(cerr, ferr.Status, err.Error())
		}
	}
	return hostFailure(cerr, StatusInvalidArgument, err.Error())
}

// pluginError sets the host function's PluginError on cerr; details that
// are not JSON (or any text the library refuses) make it a host failure
// saying so.
func pluginError(cerr *C.fidius_host_callback_error_t, code, message, details string) C.uint32_t {
	if strings.IndexByte(details, 0) >= 0 {
		return hostFailure(cerr, StatusInvalidJSON, "the details of the host function's PluginError "+code+" are not JSON text: they contain a NUL byte")
	}
	cCode, cMessage := cText(code), cText(message)
	defer C.free(unsafe.Pointer(cCode))
	defer C.free(unsafe.Pointer(cMessage))
	var cDetails *C.char
	if details != "" {
		cDetails = C.CString(details)
		defer C.free(unsafe.Pointer(cDetails))
	}
	var setErr *C.fidius_host_error_t
	status := C.fidius_host_callback_error_set(cerr, cCode, cMessage, cDetails, &setErr)
	if err := takeError(status, setErr); err != nil {
		return hostFailure(cerr, Status(status), "the host function's PluginError "+code+" was refused: "+err.Error())
	}
	return C.FIDIUS_HOST_STATUS_PLUGIN_ERROR
}

// hostFailure sets message on cerr and returns status: the plugin's host
// call fails with a host failure naming both.
func hostFailure(cerr *C.fidius_host_callback_error_t, status Status, message string) C.uint32_t {
	cCode, cMessage := cText("HOST_FAILURE"), cText(message)
	defer C.free(unsafe.Pointer(cCode))
	defer C.free(unsafe.Pointer(cMessage))
	// Sanitized text is always accepted; should it not be, the plugin still
	// gets the status.
	_ = C.fidius_host_callback_error_set(cerr, cCode, cMessage, nil, nil)
	return C.uint32_t(status)
}

// cText returns s as a malloc'd NUL-terminated C string the library
// accepts: invalid UTF-8 and NUL bytes (which would cut the text short)
// become U+FFFD.
func cText(s string) *C.char {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	return C.CString(s)
}
