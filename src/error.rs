//! One error type for the whole host, and the status code of each failure.
//!
//! Every distinct failure a caller may want to branch on has its own
//! [`Status`]; the message of an [`Error`] names the file or plugin involved
//! and, for mismatches, the expected and the found value.

use std::path::Path;

/// The status code of every failure (0 is success).
///
/// Values are grouped by area and never reused: 1–99 arguments and the host
/// itself, 100–199 finding and validating a library, 200–299 signatures,
/// 300–399 calls, 400–499 interfaces.
///
/// This declaration is the one table of statuses: the C enum is generated
/// from it by cbindgen, and the list and the names by `strum`'s derives.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumIter, strum::IntoStaticStr, strum::FromRepr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument was out of range or malformed.
    InvalidArgument = 2,
    /// A text argument was not valid UTF-8.
    InvalidUtf8 = 3,
    /// The library itself panicked; this is a bug in libfidius_host.
    InternalPanic = 4,
    /// A handle of the wrong type, or one already freed, was passed.
    Misuse = 5,
    /// The operation needs a feature this build does not have.
    Unsupported = 6,
    /// Reading a file or directory failed.
    Io = 7,
    /// The path names a directory, FIFO, socket or device where a regular
    /// file is expected; it was not read.
    NotARegularFile = 8,
    /// A file is larger than the limit for its kind (see the header's
    /// LIMITS section); it was not read past the limit.
    FileTooLarge = 9,
    /// Not an error: a stream has no more items.
    StreamEnd = 10,

    /// The file does not exist.
    FileNotFound = 100,
    /// No plugin of that name was found in the search paths.
    PluginNotFound = 101,
    /// The file is too short or not a shared library format this host knows.
    NotALibrary = 102,
    /// The library is for another OS, CPU, word size or byte order.
    ArchitectureMismatch = 103,
    /// `dlopen` refused the library.
    LibraryLoadFailed = 104,
    /// The library does not export `fidius_get_registry`.
    RegistryMissing = 105,
    /// `fidius_get_registry` returned NULL or a misaligned pointer.
    InvalidRegistry = 106,
    /// The registry does not start with the fidius magic.
    InvalidMagic = 107,
    /// The registry layout version is not 1.
    IncompatibleRegistryVersion = 108,
    /// A descriptor's `abi_version` is not 500 (fidius 0.5).
    IncompatibleAbiVersion = 109,
    /// A descriptor's `descriptor_size` is smaller than the 0.5 layout.
    InvalidDescriptorSize = 110,
    /// A pointer the plugin handed over is NULL, misaligned or outside the library.
    InvalidPluginPointer = 111,
    /// A name or metadata string of the plugin is not UTF-8 (or not terminated).
    InvalidPluginString = 112,
    /// `plugin_count`, `method_count` or a metadata count is not sane.
    InvalidPluginCount = 113,
    /// `buffer_strategy` is neither PluginAllocated (1) nor Arena (2).
    UnknownBufferStrategy = 114,
    /// The plugin's interface hash differs from the expected one.
    InterfaceHashMismatch = 115,
    /// The plugin's buffer strategy differs from the expected one.
    BufferStrategyMismatch = 116,
    /// The plugin's `construct` returned NULL for an empty configuration
    /// (a plugin declared with `config = ...` must be given one).
    ConstructFailed = 117,
    /// Two plugins of one library share a name.
    DuplicatePlugin = 118,
    /// The library holds several plugins and no name was given.
    AmbiguousPlugin = 119,
    /// The plugin's interface version differs from the expected interface's.
    InterfaceVersionMismatch = 120,
    /// The plugin's method count differs from the expected interface's.
    MethodCountMismatch = 121,
    /// A package's `package.toml` is malformed, or names a file outside the package.
    InvalidManifest = 122,
    /// A package asks for a capability that is unknown or refused (the
    /// whole filesystem, raw network access).
    InvalidCapability = 123,
    /// A package asks for a capability the host denies.
    CapabilityDenied = 124,
    /// A WASM component does not compile, link or export what the interface needs.
    InvalidComponent = 125,
    /// A WASM component imports a capability (such as `wasi:http`) its
    /// package does not declare.
    CapabilityMissing = 126,
    /// A WASM component may send HTTP requests but no egress policy is set
    /// (on the builder or the load options): it is not loaded.
    NoEgressPolicy = 127,
    /// A Python plugin fails to import, or lacks `__interface_hash__` or a
    /// required method.
    InvalidPythonPlugin = 128,
    /// The plugin is constructed with a configuration and none was given:
    /// the interface declares a config type, or the Python module has
    /// `__fidius_configure__` and no module-level methods.
    ConfigRequired = 129,
    /// The configuration is not a value of the interface's config type, or
    /// its form cannot reach the plugin's runtime without that type.
    ConfigInvalid = 130,
    /// The plugin refused its configuration: a cdylib `construct` returned
    /// NULL, a WASM `fidius-configure` trapped (or the component has none),
    /// or a Python `__fidius_configure__` raised (or the module has none).
    /// Nothing was created.
    ConfigRejected = 131,
    /// The library is already mapped with different functions bound for
    /// one of its host interfaces (by an earlier load, in this host or
    /// another): fidius binds a host interface once per mapped library.
    HostAlreadyBound = 132,
    /// The plugin's library refused the host functions offered to it (its
    /// bind function returned an error); the message names fidius's reason.
    HostBindFailed = 133,
    /// An isolated load could not start its worker process: the
    /// `fidius-host-worker` executable is missing or cannot run (the
    /// message names the path tried).
    WorkerUnavailable = 134,

    /// Signatures are required and the `.sig` file is missing.
    SignatureRequired = 200,
    /// The signature is malformed or no trusted key verifies it.
    SignatureInvalid = 201,
    /// A trusted key (or key file) is not a valid Ed25519 public key.
    InvalidKey = 202,

    /// The method index is not below the plugin's method count.
    MethodOutOfRange = 300,
    /// The plugin does not implement this (optional) method.
    NotImplemented = 301,
    /// The method returned an error; see the plugin error fields.
    PluginError = 302,
    /// The method panicked inside the plugin.
    PluginPanic = 303,
    /// The plugin could not decode the input or encode its output.
    PluginSerialization = 304,
    /// The result is larger than the host's output limit.
    OutputTooLarge = 305,
    /// The input is larger than the ABI allows (4 GiB - 1).
    InputTooLarge = 306,
    /// The plugin broke the call protocol (bad status, buffer or payload).
    PluginProtocol = 307,
    /// The JSON text of a call is not valid JSON.
    InvalidJson = 308,
    /// JSON arguments do not fit the method: count, type or range.
    ArgumentMismatch = 309,
    /// The interface has no method of that name.
    UnknownMethod = 310,
    /// The call needs an interface, and the plugin was loaded without one.
    NoInterface = 311,
    /// A WASM guest trapped (panic, `unreachable`, bad memory access); the
    /// next call runs on a fresh instance.
    PluginTrap = 312,
    /// A WASM call, a Python call or a Python plugin's import ran past its
    /// deadline and was stopped.
    Timeout = 313,
    /// A WASM guest tried to grow its memory past the cap and was stopped.
    MemoryLimit = 314,
    /// Every slot of the host's WASM instance pool is in use: the load or
    /// call made no instance. Retry when another call or plugin is done.
    InstancePoolExhausted = 315,
    /// The call does not match how the method streams: a unary call of a
    /// streaming method, a streaming call of a unary one, a client-stream
    /// call of a method that returns a stream, or a stream call without
    /// the items its `Stream<T>` argument needs. Nothing was called.
    StreamMismatch = 316,
    /// The items the host supplied for a `Stream<T>` argument failed: the
    /// producer reported an error, or gave an item that is not a value of
    /// the item type. The plugin was told the input ended; its result (or
    /// the rest of its output stream) was discarded.
    StreamInputFailed = 317,
    /// The worker process of an isolated plugin died during the call (a
    /// crash, an abort, an exit, a kill from outside, a cap it hit); the
    /// message says how it ended. The host is unaffected; what the next
    /// call sees is up to the restart policy. No output was delivered.
    WorkerLost = 318,
    /// The call was cancelled through its cancel token: stopped while it
    /// ran (the plugin is left as after a TIMEOUT of its runtime), or
    /// refused before it started (nothing ran). No output was delivered.
    Cancelled = 319,

    /// An interface (signature, type declaration or file) is malformed, or
    /// uses a type that is neither builtin nor declared.
    InvalidInterface = 400,
}

impl Status {
    /// Every status, in declaration order.
    pub fn all() -> impl Iterator<Item = Status> {
        <Status as strum::IntoEnumIterator>::iter()
    }

    /// The status with this number, if any.
    pub fn from_code(code: u32) -> Option<Status> {
        Status::from_repr(code)
    }

    /// The constant's name without prefix, e.g. `"PLUGIN_NOT_FOUND"`: the
    /// variant's name in SCREAMING_SNAKE_CASE, as cbindgen spells the C
    /// constant `FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND`.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// [`Status::name`], NUL-terminated.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        // In declaration order, looked up by position: a plain vector of
        // plain strings, which leak checkers see as reachable at exit.
        static NAMES: std::sync::LazyLock<Vec<(Status, std::ffi::CString)>> = std::sync::LazyLock::new(|| {
            Status::all()
                .map(|status| (status, std::ffi::CString::new(status.name()).expect("status names have no NUL")))
                .collect()
        });
        let (_, name) = NAMES.iter().find(|(status, _)| *status == self).expect("every status is in the table");
        name.as_c_str()
    }
}

/// Most bytes of an input that a message quotes.
pub const QUOTE_LIMIT: usize = 200;

/// Input text as messages quote it: whole when short, otherwise its first
/// [`QUOTE_LIMIT`] bytes and its length, so that a message never grows with
/// the input (`"abc…" (3000000 bytes)`).
pub struct Quoted<'a>(pub &'a str);

impl Quoted<'_> {
    /// Writes the quote to `out`; a short text is written as it is,
    /// without the formatting machinery.
    fn write_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        let text = self.0;
        if text.len() <= QUOTE_LIMIT {
            return out.write_str(text);
        }
        let mut end = QUOTE_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        write!(out, "{}… ({} bytes)", &text[..end], text.len())
    }
}

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write_to(f)
    }
}

/// An error a plugin method returned (`Err(PluginError)`): a code, a
/// message and optional details.
///
/// The three texts live in one buffer: an error on a hot path costs one
/// allocation, not three.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginError {
    /// `code`, then `message`, then `details` when there are any.
    texts: String,
    code_end: usize,
    message_end: usize,
    has_details: bool,
}

impl PluginError {
    /// An error with these texts.
    pub fn new(code: &str, message: &str, details: Option<&str>) -> PluginError {
        let mut texts = String::with_capacity(code.len() + message.len() + details.map_or(0, str::len));
        texts.push_str(code);
        let code_end = texts.len();
        texts.push_str(message);
        let message_end = texts.len();
        if let Some(details) = details {
            texts.push_str(details);
        }
        PluginError { texts, code_end, message_end, has_details: details.is_some() }
    }

    /// Decodes the bincode a fidius plugin returns with `PLUGIN_ERROR`: the
    /// fields of fidius's `PluginError` in order (code, message, details).
    pub fn from_bincode(bytes: &[u8]) -> std::result::Result<PluginError, bincode::Error> {
        let (code, message, details) = bincode::deserialize::<(&str, &str, Option<&str>)>(bytes)?;
        Ok(PluginError::new(code, message, details))
    }

    /// The bincode of fidius's `PluginError` with these texts, as a plugin
    /// (or a host function) sends it with `PLUGIN_ERROR`.
    pub fn to_bincode(&self) -> Vec<u8> {
        bincode::serialize(&(self.code(), self.message(), self.details())).expect("strings always encode")
    }

    /// Machine-readable code, e.g. `"DIV_ZERO"`.
    pub fn code(&self) -> &str {
        &self.texts[..self.code_end]
    }

    /// Human-readable message.
    pub fn message(&self) -> &str {
        &self.texts[self.code_end..self.message_end]
    }

    /// Optional details, a JSON text.
    pub fn details(&self) -> Option<&str> {
        self.has_details.then(|| &self.texts[self.message_end..])
    }
}

impl std::fmt::Debug for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginError")
            .field("code", &self.code())
            .field("message", &self.message())
            .field("details", &self.details())
            .finish()
    }
}

/// Every failure of the host: a status and a message, plus the plugin's own
/// error when a plugin method returned one.
///
/// Boxed: a `Result` carrying one stays small on the call path, where
/// errors are rare.
#[derive(Debug, Clone)]
pub struct Error(Box<ErrorParts>);

#[derive(Debug, Clone)]
struct ErrorParts {
    status: Status,
    message: Message,
    plugin_error: Option<PluginError>,
    detail: Option<ErrorDetail>,
}

/// An error's message: written when the error is made, or, for the error a
/// plugin returned (a path a program may take at every call without ever
/// reading the text), formatted when first read.
#[derive(Debug, Clone)]
enum Message {
    Text(String),
    PluginReturned { plugin: std::sync::Arc<str>, method: u32, text: std::sync::OnceLock<String> },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// The values behind a failure, for statuses a program may want to branch
/// on by value rather than by reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDetail {
    /// What was expected and what was found, for
    /// [`Status::InterfaceHashMismatch`], [`Status::InterfaceVersionMismatch`],
    /// [`Status::MethodCountMismatch`] and [`Status::BufferStrategyMismatch`].
    Mismatch { expected: u64, found: u64 },
    /// The method asked for and how many there are, for
    /// [`Status::MethodOutOfRange`].
    MethodOutOfRange { index: u32, count: u32 },
}

/// Shorthand for results of the host.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this status and message.
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error(Box::new(ErrorParts { status, message: Message::Text(bounded(message.into())), plugin_error: None, detail: None }))
    }

    /// An error about one file: the message starts with the path.
    pub fn at(status: Status, path: &Path, message: impl std::fmt::Display) -> Error {
        Error::new(status, format!("{}: {message}", path.display()))
    }

    /// The error a plugin method returned. Its message is formatted when
    /// first read.
    pub fn plugin(plugin: &std::sync::Arc<str>, method: u32, error: PluginError) -> Error {
        // The plugin's name is shared, not copied: errors on a hot path
        // cost one allocation fewer.
        let message = Message::PluginReturned { plugin: plugin.clone(), method, text: std::sync::OnceLock::new() };
        Error(Box::new(ErrorParts { status: Status::PluginError, message, plugin_error: Some(error), detail: None }))
    }

    /// An argument was NULL.
    pub fn null_argument(name: &str) -> Error {
        Error::new(Status::NullArgument, format!("argument '{name}' must not be NULL"))
    }

    /// An `std::io::Error` while reading `path`.
    pub fn io(path: &Path, err: &std::io::Error) -> Error {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::at(Status::FileNotFound, path, "no such file")
        } else {
            Error::at(Status::Io, path, err)
        }
    }

    /// The status code.
    pub fn status(&self) -> Status {
        self.0.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        match &self.0.message {
            Message::Text(text) => text,
            Message::PluginReturned { text, .. } => text.get_or_init(|| {
                let mut message = String::new();
                self.write_message(&mut message).expect("a String takes any text");
                message
            }),
        }
    }

    /// Writes [`Error::message`] to `out`, without keeping a copy of a
    /// message that is made when first asked for.
    pub fn write_message(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        match &self.0.message {
            Message::Text(text) => out.write_str(text),
            Message::PluginReturned { text, .. } if text.get().is_some() => out.write_str(self.message()),
            Message::PluginReturned { plugin, method, .. } => {
                let (code, message) = self.0.plugin_error.as_ref().map_or(("", ""), |e| (e.code(), e.message()));
                // Piece by piece: a program may read this message after
                // every failed call.
                out.write_str("plugin '")?;
                Quoted(plugin).write_to(out)?;
                write!(out, "' method {method} returned an error: [")?;
                Quoted(code).write_to(out)?;
                out.write_str("] ")?;
                Quoted(message).write_to(out)
            }
        }
    }

    /// The plugin's own error, for [`Status::PluginError`] (and for
    /// [`Status::ConfigRejected`] when the plugin said why).
    pub fn plugin_error(&self) -> Option<&PluginError> {
        self.0.plugin_error.as_ref()
    }

    /// The same error, carrying the plugin's own account of it.
    pub fn with_plugin_error(mut self, error: PluginError) -> Error {
        self.0.plugin_error = Some(error);
        self
    }

    /// The values behind the failure, where its status has them.
    pub fn detail(&self) -> Option<ErrorDetail> {
        self.0.detail
    }

    /// The same error, carrying `detail`.
    pub fn with_detail(mut self, detail: ErrorDetail) -> Error {
        self.0.detail = Some(detail);
        self
    }

    /// A mismatch between an expected and a found value.
    pub fn mismatch(self, expected: u64, found: u64) -> Error {
        self.with_detail(ErrorDetail::Mismatch { expected, found })
    }

    /// A method index past the end of `count` methods.
    pub fn method_out_of_range(self, index: u32, count: usize) -> Error {
        self.with_detail(ErrorDetail::MethodOutOfRange { index, count: u32::try_from(count).unwrap_or(u32::MAX) })
    }

    /// The same error with more context in front of the message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Error {
        self.0.message = Message::Text(bounded(format!("{context}: {}", self.message())));
        self
    }
}

/// Longest message an error keeps; inputs are quoted with [`Quoted`], this
/// is the last line of defence for the message as a whole.
pub const MESSAGE_LIMIT: usize = 16 << 10;

fn bounded(message: String) -> String {
    if message.len() <= MESSAGE_LIMIT {
        return message;
    }
    let mut end = MESSAGE_LIMIT;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &message[..end], message.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_are_unique_and_named() {
        let mut seen = std::collections::HashSet::new();
        for status in Status::all() {
            assert!(seen.insert(status as u32), "duplicate number for {status:?}");
            assert_eq!(Status::from_code(status as u32), Some(status));
            assert_eq!(status.c_name().to_str().unwrap(), status.name());
        }
        assert_eq!(Status::from_code(9999), None);
        assert_eq!(Status::NotARegularFile.name(), "NOT_A_REGULAR_FILE");
        assert_eq!(Status::InvalidUtf8.name(), "INVALID_UTF8");
    }

    #[test]
    fn the_header_spells_every_status_as_the_table_does() {
        let header = include_str!("../include/fidius_host.h");
        for status in Status::all() {
            let constant = format!("FIDIUS_HOST_STATUS_{} = {},", status.name(), status as u32);
            assert!(header.contains(&constant), "the header lacks `{constant}`");
        }
        let declared = header.lines().filter(|line| line.starts_with("  FIDIUS_HOST_STATUS_") && line.contains(" = ")).count();
        assert_eq!(declared, Status::all().count(), "the header declares statuses the table lacks");
    }

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(Quoted("short").to_string(), "short");
        let long = "é".repeat(1000);
        let quoted = Quoted(&long).to_string();
        assert!(quoted.len() < QUOTE_LIMIT + 30, "{quoted}");
        assert!(quoted.ends_with("… (2000 bytes)"), "{quoted}");
    }

    #[test]
    fn plugin_error_decodes_fidius_bytes() {
        // PluginError{code:"E", message:"m", details:Some("{}")}, from the fidius docs.
        let bytes = [
            1, 0, 0, 0, 0, 0, 0, 0, b'E', 1, 0, 0, 0, 0, 0, 0, 0, b'm', 1, 2, 0, 0, 0, 0, 0, 0,
            0, b'{', b'}',
        ];
        let e = PluginError::from_bincode(&bytes).unwrap();
        assert_eq!((e.code(), e.message(), e.details()), ("E", "m", Some("{}")));
        assert_eq!(e, PluginError::new("E", "m", Some("{}")));
        assert_ne!(e, PluginError::new("E", "m", None));
        assert_ne!(e, PluginError::new("Em", "", Some("{}")), "the boundaries between the texts are part of the error");
        assert!(PluginError::from_bincode(&bytes[..bytes.len() - 1]).is_err());
    }
}
