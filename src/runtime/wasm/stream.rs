//! Streaming calls of WASM plugins, as fidius 0.5.9 components make them:
//! a method that streams out returns an owned `<method>-stream` resource
//! whose `next: func() -> result<option<T>, plugin-error>` gives one item
//! per call (dropping the resource cancels the stream); a `Stream<T>`
//! argument is read by the guest through the `fidius:stream-pull` import.
//!
//! A stream runs in an instance of its own (configured like the plugin's),
//! so streams run side by side and beside the plugin's calls. Each `next`
//! has the call deadline (and the stream's, if sooner), the memory cap and
//! the output limit.

use super::backend::{plugin_error, WasmPlugin};
use super::instance::{Live, Shared};
use super::values;
use crate::error::{Result, Status};
use crate::interface::types::WireType;
use crate::interface::Interface;
use crate::stream::{CallResult, Feed, Item, ItemSource, StreamArgs};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{Func, ResourceAny, Val};

/// A WASM plugin's output stream: its instance, the resource and its `next`.
pub struct WasmStream {
    shared: Arc<Shared>,
    live: Live,
    /// `None` once dropped in the guest.
    resource: Option<ResourceAny>,
    next: Func,
    method: u32,
    /// `method 'name'`, for messages.
    what: String,
    item: WireType,
    /// The last item, as JSON text.
    current: String,
}

impl WasmPlugin {
    /// Starts a server-streaming or bidirectional call in a new instance.
    pub(super) fn start_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<WasmStream> {
        let spec = interface.method(method)?;
        let args = args.json_values(interface, spec)?;
        let (params, result_count) = self.lower_args(spec, method, &args)?;
        let item = spec.output_item().cloned().expect("the caller checked the method streams out");
        let what = format!("method '{}'", spec.name);
        let shared = self.shared.clone();
        let mut live = self.instantiate()?;
        let (Some(start), Some(next)) = (live.funcs[method as usize], live.stream_next[method as usize]) else {
            return Err(shared.error(
                Status::InvalidComponent,
                format!("{what} streams, but the component has no `[method]{}-stream.next`", crate::interface::kebab_case(&spec.name)),
            ));
        };
        live.store.data_mut().stream_input = input;
        shared.start_deadline(&mut live.store);
        live.store.data_mut().memory.exceeded = false;
        let mut results = vec![Val::Bool(false); result_count];
        if let Err(e) = start.call(&mut live.store, &params, &mut results) {
            return Err(shared.classify(&what, e, live.store.data().memory.exceeded));
        }
        let resource = match results.into_iter().next() {
            Some(Val::Resource(resource)) => resource,
            Some(Val::Result(Err(payload))) => return Err(plugin_error(&shared.name, method, payload.map(|v| *v))),
            other => {
                return Err(shared.error(Status::PluginProtocol, format!("{what} returned {other:?}, not its stream resource")));
            }
        };
        Ok(WasmStream { shared, live, resource: Some(resource), next, method, what, item, current: String::new() })
    }

    /// A client-streaming call on the plugin's instance: the guest reads
    /// `input` through `fidius:stream-pull` while it runs.
    pub(super) fn client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        let spec = interface.method(method)?;
        let args = args.json_values(interface, spec)?;
        let (params, result_count) = self.lower_args(spec, method, &args)?;
        let mut results = vec![Val::Bool(false); result_count];
        self.with_instance(spec, None, |live| {
            let func = live.funcs[method as usize].expect("lower_args checked the method is there");
            live.store.data_mut().stream_input = Some(input.clone());
            let outcome = func.call(&mut live.store, &params, &mut results);
            live.store.data_mut().stream_input = None;
            outcome
        })?;
        self.result_json(interface, spec, method, results).map(CallResult::Json)
    }
}

impl ItemSource for WasmStream {
    fn advance(&mut self, until: Option<Instant>) -> Result<bool> {
        let Some(resource) = self.resource else { return Ok(false) };
        self.shared.start_deadline_within(&mut self.live.store, until);
        self.live.store.data_mut().memory.exceeded = false;
        let mut results = [Val::Bool(false)];
        let called = self.next.call(&mut self.live.store, &[Val::Resource(resource)], &mut results);
        if let Err(e) = called {
            let stopped = self.shared.classify(&format!("the stream of {}", self.what), e, self.live.store.data().memory.exceeded);
            return Err(stopped);
        }
        let [result] = results;
        let value = match result {
            Val::Result(Ok(Some(inner))) => match *inner {
                Val::Option(Some(item)) => *item,
                Val::Option(None) => return Ok(false),
                other => other,
            },
            Val::Result(Ok(None)) => return Ok(false),
            Val::Result(Err(payload)) => return Err(plugin_error(&self.shared.name, self.method, payload.map(|v| *v))),
            Val::Option(Some(item)) => *item,
            Val::Option(None) => return Ok(false),
            other => other,
        };
        let json = values::lift(&value, Some(&self.item), self.shared.interface.types())
            .map_err(|e| self.shared.error(Status::PluginProtocol, format!("an item of the stream of {} cannot be expressed: {e}", self.what)))?;
        self.current = json.to_string();
        crate::plugin::check_output_size(&self.shared.name, &self.what, self.current.len(), self.shared.max_output)?;
        Ok(true)
    }

    fn item(&self) -> Item<'_> {
        Item::Json(&self.current)
    }
}

impl Drop for WasmStream {
    fn drop(&mut self) {
        if let Some(resource) = self.resource.take() {
            // The guest's destructor (its producer's teardown) runs now,
            // under a deadline; what it fails with no one can be told.
            self.shared.start_deadline(&mut self.live.store);
            let _ = resource.resource_drop(&mut self.live.store);
        }
        self.live.store.data_mut().stream_input = None;
    }
}

