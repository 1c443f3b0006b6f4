//! `fidius_host_error_t`: what failed, in detail.

use super::{entry_value, take_handle, Handle};
use crate::error::{Error, ErrorDetail, Status};
use std::ffi::c_char;
use std::sync::OnceLock;

/// A failure: its status, a message naming what failed (file, plugin,
/// expected vs found), and — for `FIDIUS_HOST_STATUS_PLUGIN_ERROR` — the
/// error the plugin returned.
///
/// Made by the library on failure and owned by the caller; free with
/// `fidius_host_error_free`. Movable: use from one thread at a time.
pub struct fidius_host_error_t {
    _private: [u8; 0],
}

pub(crate) struct ErrorData {
    error: Error,
    /// The texts as C strings, all made in one buffer when one is first
    /// asked for: a caller that only looks at the status pays for none.
    texts: OnceLock<CTexts>,
}

/// The message and the plugin's code, message and details, each ending in
/// NUL, in one allocation.
struct CTexts {
    /// Kept as built (shrinking it would copy it again).
    bytes: String,
    /// Where the plugin's code, message and details start, when it has them.
    plugin_code: Option<usize>,
    plugin_message: Option<usize>,
    plugin_details: Option<usize>,
}

/// Which text of an error a getter reads.
#[derive(Clone, Copy)]
enum Text {
    Message,
    PluginCode,
    PluginMessage,
    PluginDetails,
}

impl CTexts {
    fn of(error: &Error) -> CTexts {
        let texts = CTexts::build(error, |text, _| text.push('\0'));
        // A text holding a NUL of its own is rare: one pass over all of
        // them finds out, and only then are they made again, replacing it.
        let texts_made = 1 + [texts.plugin_code, texts.plugin_message, texts.plugin_details].iter().flatten().count();
        if nul_count(texts.bytes.as_bytes()) == texts_made { texts } else { CTexts::build(error, terminate) }
    }

    /// Writes each text and ends it with `end(text, where_it_starts)`.
    fn build(error: &Error, end: fn(&mut String, usize)) -> CTexts {
        let plugin = error.plugin_error();
        let plugin_len = plugin.map_or(0, |p| p.code().len() + p.message().len() + p.details().map_or(0, str::len));
        // The message quotes the plugin's code and message (and its name).
        let mut text = String::with_capacity(128 + 2 * plugin_len);
        error.write_message(&mut text).expect("a String takes any text");
        end(&mut text, 0);
        let piece = |text: &mut String, piece: &str| {
            let at = text.len();
            text.push_str(piece);
            end(text, at);
            at
        };
        let (mut plugin_code, mut plugin_message, mut plugin_details) = (None, None, None);
        if let Some(p) = plugin {
            plugin_code = Some(piece(&mut text, p.code()));
            plugin_message = Some(piece(&mut text, p.message()));
            plugin_details = p.details().map(|details| piece(&mut text, details));
        }
        CTexts { bytes: text, plugin_code, plugin_message, plugin_details }
    }

    fn get(&self, text: Text) -> *const c_char {
        let at = match text {
            Text::Message => Some(0),
            Text::PluginCode => self.plugin_code,
            Text::PluginMessage => self.plugin_message,
            Text::PluginDetails => self.plugin_details,
        };
        at.map_or(std::ptr::null(), |at| self.bytes.as_bytes()[at..].as_ptr().cast())
    }
}

/// How many NUL bytes `bytes` holds. Counted a chunk at a time into bytes,
/// which the compiler turns into a few vector instructions per chunk: the
/// texts of an error are short, and counted after every failed call that
/// reads one.
fn nul_count(bytes: &[u8]) -> usize {
    bytes.chunks(128).map(|chunk| usize::from(chunk.iter().map(|&b| u8::from(b == 0)).sum::<u8>())).sum()
}

/// Ends the text that starts at `from` with NUL. A NUL inside it would cut
/// it short: each is shown as U+FFFD instead, as `c_string` does.
fn terminate(text: &mut String, from: usize) {
    if text.as_bytes()[from..].contains(&0) {
        let replaced = text[from..].replace('\0', "\u{fffd}");
        text.truncate(from);
        text.push_str(&replaced);
    }
    text.push('\0');
}

impl ErrorData {
    fn text(&self, text: Text) -> *const c_char {
        self.texts.get_or_init(|| CTexts::of(&self.error)).get(text)
    }
}

impl Handle for fidius_host_error_t {
    type Inner = ErrorData;
    const MAGIC: u64 = 0x4644_4552_524f_5231;
    const NAME: &'static str = "fidius_host_error_t";
}

/// Moves an error to the heap for the caller.
pub(crate) fn into_raw(error: Error) -> *mut fidius_host_error_t {
    super::new_handle::<fidius_host_error_t>(ErrorData { error, texts: OnceLock::new() })
}

/// The status of `error`; `FIDIUS_HOST_STATUS_NULL_ARGUMENT` for NULL.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_status(error: *const fidius_host_error_t) -> Status {
    super::get(error, Status::NullArgument, |e| e.error.status())
}

/// The message of `error` (UTF-8, NUL-terminated), or NULL for NULL.
/// Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_message(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.text(Text::Message))
}

/// The `code` of the plugin's own error (e.g. `"DIV_ZERO"`), or NULL when
/// the plugin gave none: it is set for `FIDIUS_HOST_STATUS_PLUGIN_ERROR`,
/// and for `FIDIUS_HOST_STATUS_CONFIG_REJECTED` when a Python plugin's
/// `__fidius_configure__` raised. Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_plugin_code(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.text(Text::PluginCode))
}

/// The `message` of the plugin's own error, or NULL when there is none.
/// Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_plugin_message(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.text(Text::PluginMessage))
}

/// The `details` of the plugin's own error (a JSON text), or NULL when the
/// plugin gave none. Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_plugin_details(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.text(Text::PluginDetails))
}

/// For `FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH`,
/// `_INTERFACE_VERSION_MISMATCH`, `_METHOD_COUNT_MISMATCH` and
/// `_BUFFER_STRATEGY_MISMATCH`: stores the expected value in `*expected`
/// and the value found in `*found` (either may be NULL when not wanted) and
/// returns true. Returns false, writing nothing, for any other error and
/// for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_mismatch(
    error: *const fidius_host_error_t,
    expected: *mut u64,
    found: *mut u64,
) -> bool {
    super::get(error, false, |e| match e.error.detail() {
        Some(ErrorDetail::Mismatch { expected: wanted, found: seen }) => {
            write_opt(expected, wanted);
            write_opt(found, seen);
            true
        }
        _ => false,
    })
}

/// For `FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE`: stores the method index
/// asked for in `*index` and the number of methods in `*count` (either may
/// be NULL) and returns true. Returns false, writing nothing, for any other
/// error and for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_method_out_of_range(
    error: *const fidius_host_error_t,
    index: *mut u32,
    count: *mut u32,
) -> bool {
    super::get(error, false, |e| match e.error.detail() {
        Some(ErrorDetail::MethodOutOfRange { index: asked, count: methods }) => {
            write_opt(index, asked);
            write_opt(count, methods);
            true
        }
        _ => false,
    })
}

/// Writes `value` to an optional out-parameter.
fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: a non-NULL out-parameter points to writable memory.
        unsafe { out.write(value) }
    }
}

/// Frees `error`. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_free(error: *mut fidius_host_error_t) {
    entry_value((), || drop(take_handle(error)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PluginError;
    use std::ffi::CStr;

    fn read(texts: &CTexts, text: Text) -> Option<String> {
        let ptr = texts.get(text);
        // SAFETY: a non-NULL text points into `texts`, NUL-terminated.
        (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string())
    }

    #[test]
    fn nuls_are_counted_across_chunks() {
        assert_eq!(nul_count(b""), 0);
        assert_eq!(nul_count(&[0; 300]), 300);
        let mut bytes = vec![b'a'; 1000];
        for at in [0, 127, 128, 999] {
            bytes[at] = 0;
        }
        assert_eq!(nul_count(&bytes), 4);
    }

    #[test]
    fn texts_share_one_buffer_and_never_hide_a_nul() {
        let name: std::sync::Arc<str> = "Calc".into();
        let plugin_error = PluginError::new("DIV\0ZERO", "by zero", None);
        let texts = CTexts::of(&Error::plugin(&name, 2, plugin_error));
        let message = read(&texts, Text::Message).unwrap();
        assert!(message.starts_with("plugin 'Calc' method 2 returned an error"), "{message}");
        assert_eq!(read(&texts, Text::PluginCode).unwrap(), "DIV\u{fffd}ZERO");
        assert_eq!(read(&texts, Text::PluginMessage).unwrap(), "by zero");
        assert_eq!(read(&texts, Text::PluginDetails), None);

        let with_details = PluginError::new("E", "", Some("{\"n\":1}"));
        let texts = CTexts::of(&Error::plugin(&name, 0, with_details));
        assert_eq!(read(&texts, Text::PluginMessage).unwrap(), "");
        assert_eq!(read(&texts, Text::PluginDetails).unwrap(), "{\"n\":1}");

        let plain = CTexts::of(&Error::new(Status::InvalidJson, "bad\0json"));
        assert_eq!(read(&plain, Text::Message).unwrap(), "bad\u{fffd}json");
        assert_eq!(read(&plain, Text::PluginCode), None);
    }
}
