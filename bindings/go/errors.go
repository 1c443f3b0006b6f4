package fidius

/*
#include "fidius_host.h"
*/
import "C"

// Error is a failure reported by the library: its Status, a Message naming
// what failed (file, plugin, expected versus found) and, when Status is
// StatusPluginError, the error the plugin itself returned.
//
// Match a kind of failure with errors.Is and the sentinel of its status
// (errors.Is(err, ErrNotImplemented)), or get at the fields with errors.As:
//
//	var ferr *fidius.Error
//	if errors.As(err, &ferr) && ferr.Status == fidius.StatusPluginError {
//		fmt.Println(ferr.PluginCode, ferr.PluginDetails)
//	}
type Error struct {
	// Status says what kind of failure this is.
	Status Status
	// Message is the library's explanation; empty only for the sentinels.
	Message string
	// PluginCode is the code of the plugin's own error (e.g. "DIV_ZERO");
	// empty unless Status is StatusPluginError, or StatusConfigRejected when a
	// Python plugin's __fidius_configure__ raised.
	PluginCode string
	// PluginMessage is the message of the plugin's own error, or empty.
	PluginMessage string
	// PluginDetails is the details of the plugin's own error as JSON text,
	// or empty when the plugin gave none.
	PluginDetails string

	// The numbers of the failure, when the library gave them (Mismatch,
	// MethodOutOfRange).
	mismatch         *mismatch
	methodOutOfRange *methodOutOfRange

	// cause is the Go error behind the failure, when Go code caused it (the
	// error of a stream's Items for StatusStreamInputFailed, the context's
	// error for StatusCancelled); see Unwrap.
	cause error
}

type mismatch struct{ expected, found uint64 }

type methodOutOfRange struct{ index, count uint32 }

// Mismatch returns the value the host expected and the value the plugin
// has, for StatusInterfaceHashMismatch, StatusInterfaceVersionMismatch,
// StatusMethodCountMismatch and StatusBufferStrategyMismatch (a
// BufferStrategy number); ok is false for every other error.
func (e *Error) Mismatch() (expected, found uint64, ok bool) {
	if e.mismatch == nil {
		return 0, 0, false
	}
	return e.mismatch.expected, e.mismatch.found, true
}

// MethodOutOfRange returns the method index a call asked for and the
// plugin's method count, for StatusMethodOutOfRange; ok is false for every
// other error.
func (e *Error) MethodOutOfRange() (index, count uint32, ok bool) {
	if e.methodOutOfRange == nil {
		return 0, 0, false
	}
	return e.methodOutOfRange.index, e.methodOutOfRange.count, true
}

// Error returns "fidius: STATUS: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return "fidius: " + e.Status.String()
	}
	return "fidius: " + e.Status.String() + ": " + e.Message
}

// Unwrap returns the Go error that caused the failure, or nil: for
// StatusStreamInputFailed, the error the Items of a Stream<T> argument
// reported (for a panic, an error naming the panic value); for
// StatusCancelled, the Err of the context that cancelled the call
// (context.Canceled or context.DeadlineExceeded). errors.Is and errors.As
// reach it too:
//
//	_, err := p.CallJSONContext(ctx, "parse", `["..."]`)
//	errors.Is(err, context.DeadlineExceeded) // the deadline stopped it
//	errors.Is(err, fidius.ErrCancelled)      // as does this
func (e *Error) Unwrap() error {
	return e.cause
}

// Is reports whether target is an *Error of the same status, so that
// errors.Is(err, ErrTimeout) holds for every timeout whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status
}

// takeError turns what a C function returned into a Go error: nil for
// StatusOK, otherwise an *Error with every field of cerr copied into Go
// memory. It always frees cerr, which must not be used afterwards.
func takeError(status C.fidius_host_status, cerr *C.fidius_host_error_t) error {
	defer C.fidius_host_error_free(cerr)
	if status == C.FIDIUS_HOST_STATUS_OK {
		return nil
	}
	e := &Error{Status: Status(status)}
	if cerr != nil {
		// The accessors return NULL for absent fields; GoString maps NULL to "".
		e.Message = C.GoString(C.fidius_host_error_message(cerr))
		e.PluginCode = C.GoString(C.fidius_host_error_plugin_code(cerr))
		e.PluginMessage = C.GoString(C.fidius_host_error_plugin_message(cerr))
		e.PluginDetails = C.GoString(C.fidius_host_error_plugin_details(cerr))
		var expected, found C.uint64_t
		if C.fidius_host_error_mismatch(cerr, &expected, &found) {
			e.mismatch = &mismatch{uint64(expected), uint64(found)}
		}
		var index, count C.uint32_t
		if C.fidius_host_error_method_out_of_range(cerr, &index, &count) {
			e.methodOutOfRange = &methodOutOfRange{uint32(index), uint32(count)}
		}
	}
	return e
}

// closedError is what a method of a closed handle returns: the Go
// counterpart of the C library's MISUSE for a freed handle (which in C
// would be undefined behaviour, and here is caught).
func closedError(what string) error {
	return &Error{Status: StatusMisuse, Message: "the " + what + " is closed"}
}
