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
	// empty unless Status is StatusPluginError.
	PluginCode string
	// PluginMessage is the message of the plugin's own error, or empty.
	PluginMessage string
	// PluginDetails is the details of the plugin's own error as JSON text,
	// or empty when the plugin gave none.
	PluginDetails string
}

// Error returns "fidius: STATUS: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return "fidius: " + e.Status.String()
	}
	return "fidius: " + e.Status.String() + ": " + e.Message
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
	}
	return e
}

// closedError is what a method of a closed handle returns: the Go
// counterpart of the C library's MISUSE for a freed handle (which in C
// would be undefined behaviour, and here is caught).
func closedError(what string) error {
	return &Error{Status: StatusMisuse, Message: "the " + what + " is closed"}
}
