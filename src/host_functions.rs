//! Host functions: what a plugin calls back into its host.
//!
//! A fidius plugin imports a host interface (`#[host_interface]` trait) and
//! calls its methods; the host answers them. A [`HostBinding`] is the host's
//! answer for one host interface: the interface (name, version, hash and
//! types) and a [`HostHandler`] that serves each call. Runtimes carry the
//! calls to it — a function table bound into a native library, the
//! `fidius:host-call` import of a WASM component — and speak fidius's wire
//! protocol through [`HostBinding::dispatch`].
//!
//! A call made with a context ([`with_call_context`]) lets the handler know
//! which request it serves: [`call_context`] is that value on the thread
//! that made the call, for as long as the call runs.

use crate::abi::status;
use crate::error::{Error, PluginError, Result, Status};
use crate::interface::{json, Interface, Method, Returns};
use std::cell::Cell;
use std::sync::Arc;

/// Largest result a host function may return to a plugin: results cross
/// as one buffer whose length fidius carries in 32 bits.
pub const MAX_HOST_RESULT: usize = 64 << 20;

/// Why a host function did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFailure {
    /// The host function's own error (`Err(PluginError)`), which the plugin
    /// receives as it is.
    Error(PluginError),
    /// The arguments are not what the method declares: the plugin hears
    /// that the host could not decode them.
    BadArguments(String),
    /// The host could not answer (its callback failed, or gave a result
    /// that is not of the declared type or is too large): the plugin
    /// receives this message as a host failure.
    Failed(String),
}

/// One call of a host function, as the handler sees it.
pub struct HostCall<'a> {
    /// The host interface.
    pub interface: &'a Interface,
    /// The method's index, in declaration order.
    pub method: u32,
    /// The bincode of the argument tuple, as the plugin sent it.
    pub args: &'a [u8],
    /// The context of the plugin call this callback serves ([`call_context`]).
    pub context: usize,
}

impl HostCall<'_> {
    /// The method called (its index was checked before the handler runs).
    pub fn method(&self) -> &Method {
        &self.interface.methods()[self.method as usize]
    }
}

/// Serves the calls of one host interface. Called from any thread a plugin
/// calls from (including threads the plugin started), possibly from several
/// at once, and possibly while the same thread is inside a call into the
/// plugin (a host → plugin → host chain).
pub trait HostHandler: Send + Sync {
    /// Answers `call` with the bincode of the method's result (for a method
    /// returning `Result<T, PluginError>`, of the `T`).
    fn call(&self, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure>;
}

/// Serves the calls of one host interface in JSON: arguments arrive as the
/// JSON array of the method's arguments, and the result is the JSON of its
/// value, both in the forms `docs/interfaces.md` gives for each type.
pub trait JsonHostHandler: Send + Sync {
    /// Answers `call` with the JSON text of the result (`null` for a method
    /// returning nothing).
    fn call(&self, call: &HostCall<'_>, args_json: &str) -> std::result::Result<String, HostFailure>;
}

impl<H: HostHandler + ?Sized> HostHandler for Arc<H> {
    fn call(&self, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
        (**self).call(call)
    }
}

impl<H: JsonHostHandler + ?Sized> JsonHostHandler for Arc<H> {
    fn call(&self, call: &HostCall<'_>, args_json: &str) -> std::result::Result<String, HostFailure> {
        (**self).call(call, args_json)
    }
}

/// The host's functions for one host interface.
pub struct HostBinding {
    interface: Arc<Interface>,
    handler: Box<dyn HostHandler>,
}

impl std::fmt::Debug for HostBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBinding").field("interface", &self.interface.name()).finish()
    }
}

impl HostBinding {
    /// A binding whose handler speaks bincode.
    pub fn new(interface: Arc<Interface>, handler: impl HostHandler + 'static) -> Result<HostBinding> {
        check_host_interface(&interface)?;
        Ok(HostBinding { interface, handler: Box::new(handler) })
    }

    /// A binding whose handler speaks JSON; arguments and results are
    /// transcoded with the interface's types.
    pub fn new_json(interface: Arc<Interface>, handler: impl JsonHostHandler + 'static) -> Result<HostBinding> {
        HostBinding::new(interface, JsonTranscoder(handler))
    }

    /// The host interface served.
    pub fn interface(&self) -> &Arc<Interface> {
        &self.interface
    }

    /// Serves one call from a plugin in fidius's wire protocol: the status
    /// and payload a fidius client decodes. Never unwinds.
    pub fn dispatch(&self, method: u32, args: &[u8]) -> (i32, Vec<u8>) {
        let Some(declared) = self.interface.methods().get(method as usize) else {
            return (status::INVALID_INDEX, Vec::new());
        };
        match self.answer(method, args) {
            Ok(result) => (status::OK, result),
            Err(HostFailure::Error(error)) => (status::PLUGIN_ERROR, error.to_bincode()),
            Err(HostFailure::BadArguments(_)) => (status::SERIALIZATION_ERROR, Vec::new()),
            Err(HostFailure::Failed(why)) => self.failed(declared, &why),
        }
    }

    /// The handler's answer to one call, with the calling thread's context:
    /// a panic in the handler and a result over [`MAX_HOST_RESULT`] are
    /// failures. Never unwinds. An isolated plugin's worker forwards its
    /// host-function calls here and turns the answer into wire statuses
    /// itself, as [`dispatch`](Self::dispatch) does.
    pub fn answer(&self, method: u32, args: &[u8]) -> std::result::Result<Vec<u8>, HostFailure> {
        if method as usize >= self.interface.methods().len() {
            return Err(HostFailure::Failed(format!("method index {method} is out of range")));
        }
        let call = HostCall { interface: &self.interface, method, args, context: call_context() };
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handler.call(&call)))
            .unwrap_or_else(|panic| Err(HostFailure::Failed(format!("panicked: {}", panic_text(&*panic)))));
        match answer {
            Ok(result) if result.len() > MAX_HOST_RESULT => Err(HostFailure::Failed(format!(
                "returned {} bytes, more than the {MAX_HOST_RESULT} a host function may return",
                result.len()
            ))),
            answer => answer,
        }
    }

    fn failed(&self, method: &Method, why: &str) -> (i32, Vec<u8>) {
        let message = format!("host function {}.{} failed: {why}", self.interface.name(), method.name);
        (status::PANIC, bincode::serialize(&message).unwrap_or_default())
    }
}

/// A host interface's methods must be callable the way fidius calls host
/// functions: plain arguments in, one value out.
fn check_host_interface(interface: &Interface) -> Result<()> {
    match interface.methods().iter().find(|m| m.flags.streaming || m.client_streaming || m.flags.optional) {
        None => Ok(()),
        Some(method) => Err(Error::new(
            Status::InvalidInterface,
            format!(
                "interface {}: method '{}' is streaming or optional, which a host interface cannot have",
                interface.name(),
                method.name
            ),
        )),
    }
}

/// Serves bincode calls with a JSON handler.
struct JsonTranscoder<H>(H);

impl<H: JsonHostHandler> HostHandler for JsonTranscoder<H> {
    fn call(&self, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
        let method = call.method();
        let args = json::decode_args(call.interface, method, call.args).map_err(|e| HostFailure::BadArguments(e.message().to_string()))?;
        let result = self.0.call(call, &args)?;
        if matches!(method.returns, Returns::Nothing) && result.trim() != "null" && !result.trim().is_empty() {
            return Err(HostFailure::Failed(format!("returned {} for a method that returns nothing (expected null)", crate::error::Quoted(&result))));
        }
        json::encode_result(call.interface, method, &result).map_err(|e| HostFailure::Failed(e.message().to_string()))
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

thread_local! {
    static CALL_CONTEXT: Cell<usize> = const { Cell::new(0) };
}

/// The context of the innermost [`with_call_context`] running on this
/// thread; 0 outside one (and so on threads a plugin started).
pub fn call_context() -> usize {
    CALL_CONTEXT.with(Cell::get)
}

/// Runs `f` with `context` as this thread's call context, and restores the
/// previous one after it, also when `f` unwinds.
pub fn with_call_context<T>(context: usize, f: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_CONTEXT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CALL_CONTEXT.with(|c| c.replace(context)));
    f()
}

/// The bindings of one load, at most one per host interface name.
#[derive(Debug, Clone, Default)]
pub struct HostBindings(Vec<Arc<HostBinding>>);

impl HostBindings {
    /// Adds `binding`, replacing one for the same interface name.
    pub fn add(&mut self, binding: Arc<HostBinding>) {
        let name = binding.interface.name();
        self.0.retain(|b| b.interface.name() != name);
        self.0.push(binding);
    }

    /// The binding for the host interface called `name`.
    pub fn find(&self, name: &str) -> Option<&Arc<HostBinding>> {
        self.0.iter().find(|b| b.interface.name() == name)
    }

    /// The bindings, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<HostBinding>> {
        self.0.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names of the bound interfaces, for messages.
    pub fn names(&self) -> String {
        self.0.iter().map(|b| b.interface.name()).collect::<Vec<_>>().join(", ")
    }
}

/// The load error for a plugin built against another revision of a host
/// interface than the host binds, naming both sides as fidius does.
pub fn mismatch_error(binding: &HostBinding, plugin_version: u32, plugin_hash: u64) -> Option<Error> {
    let host = &binding.interface;
    if plugin_version != host.version() {
        return Some(
            Error::new(
                Status::InterfaceVersionMismatch,
                format!(
                    "host interface '{}' version mismatch: plugin was built against v{plugin_version}, host provides v{}",
                    host.name(),
                    host.version()
                ),
            )
            .mismatch(u64::from(host.version()), u64::from(plugin_version)),
        );
    }
    if plugin_hash != host.hash() {
        return Some(
            Error::new(
                Status::InterfaceHashMismatch,
                format!(
                    "host interface '{}' signature hash mismatch: plugin was built against {plugin_hash:#x}, host provides {:#x}",
                    host.name(),
                    host.hash()
                ),
            )
            .mismatch(host.hash(), plugin_hash),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::{InterfaceBuilder, MethodFlags};

    fn ledger() -> Arc<Interface> {
        let mut b = InterfaceBuilder::new("Ledger", 3).unwrap();
        b.method("log:String->", MethodFlags::default()).unwrap();
        b.method("lookup:String->Option<u64>", MethodFlags::default()).unwrap();
        b.method("charge:String,u64->Result<u64,PluginError>", MethodFlags::default()).unwrap();
        Arc::new(b.build().unwrap())
    }

    struct Echo;
    impl JsonHostHandler for Echo {
        fn call(&self, call: &HostCall<'_>, args: &str) -> std::result::Result<String, HostFailure> {
            match call.method {
                0 => Ok("null".into()),
                1 if args == r#"["seven"]"# => Ok("7".into()),
                1 => Ok("\"not a number\"".into()),
                _ => Err(HostFailure::Error(PluginError::new("BROKE", "no funds", None))),
            }
        }
    }

    #[test]
    fn json_calls_speak_fidius_wire() {
        let binding = HostBinding::new_json(ledger(), Echo).unwrap();
        let args = bincode::serialize(&("seven".to_string(),)).unwrap();
        assert_eq!(binding.dispatch(1, &args), (0, bincode::serialize(&Some(7u64)).unwrap()));
        let (status, payload) = binding.dispatch(1, &bincode::serialize(&("x".to_string(),)).unwrap());
        assert_eq!(status, status::PANIC);
        let message: String = bincode::deserialize(&payload).unwrap();
        assert!(message.starts_with("host function Ledger.lookup failed:"), "{message}");
        let (status, payload) = binding.dispatch(2, &bincode::serialize(&("a".to_string(), 5u64)).unwrap());
        assert_eq!(status, status::PLUGIN_ERROR);
        assert_eq!(PluginError::from_bincode(&payload).unwrap().code(), "BROKE");
        assert_eq!(binding.dispatch(0, &[1, 2]).0, status::SERIALIZATION_ERROR);
        assert_eq!(binding.dispatch(3, &[]).0, status::INVALID_INDEX);
    }

    #[test]
    fn a_panicking_handler_is_a_failure_for_the_plugin() {
        struct Panics;
        impl HostHandler for Panics {
            fn call(&self, _: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
                panic!("boom")
            }
        }
        let (status, payload) = HostBinding::new(ledger(), Panics).unwrap().dispatch(0, &[]);
        assert_eq!(status, status::PANIC);
        assert!(bincode::deserialize::<String>(&payload).unwrap().contains("panicked: boom"));
    }

    #[test]
    fn a_result_over_the_limit_is_a_failure_for_the_plugin() {
        struct Huge;
        impl HostHandler for Huge {
            fn call(&self, _: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
                Ok(vec![0; MAX_HOST_RESULT + 1])
            }
        }
        let (status, payload) = HostBinding::new(ledger(), Huge).unwrap().dispatch(1, &[]);
        assert_eq!(status, status::PANIC);
        let message: String = bincode::deserialize(&payload).unwrap();
        assert!(message.contains("Ledger.lookup failed: returned 67108865 bytes, more than the 67108864"), "{message}");
    }

    #[test]
    fn call_context_nests_and_restores() {
        assert_eq!(call_context(), 0);
        with_call_context(7, || {
            assert_eq!(call_context(), 7);
            with_call_context(9, || assert_eq!(call_context(), 9));
            assert_eq!(call_context(), 7);
            assert_eq!(std::thread::spawn(call_context).join().unwrap(), 0);
        });
        assert_eq!(call_context(), 0);
    }
}
