//! Streaming calls of Python plugins, as fidius 0.5.9 makes them: a method
//! that streams out returns an iterable (usually a generator), pulled one
//! item per `next` with the GIL taken for that step and the call deadline
//! (or the stream's, if sooner) on it; cancelling calls the generator's
//! `close()`. A `Stream<T>` argument arrives as an iterator in the first
//! positional place, whatever its place in the Rust signature, whose items
//! are read from the caller's producer when the plugin asks for them.

use super::plugin::{deadline_exception, describe, Module, PythonPlugin};
use super::values;
use crate::error::{Error, Result, Status};
use crate::interface::json;
use crate::interface::types::WireType;
use crate::interface::{Interface, Method};
use crate::stream::{CallResult, Feed, Item, ItemSource, StreamArgs};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyTuple};
use std::sync::Arc;
use std::time::Instant;

/// A Python plugin's output stream: the iterator its method returned.
pub struct PythonStream {
    module: Module,
    /// `None` once closed.
    iterator: Option<Py<PyAny>>,
    method: u32,
    name: String,
    item: WireType,
    /// The last item, as bincode of the item type.
    current: Vec<u8>,
}

impl PythonPlugin {
    /// The arguments of a streaming call as Python objects: the input's
    /// iterator first, when there is one, then the others in order.
    fn stream_arguments<'py>(
        &self,
        py: Python<'py>,
        spec: &Method,
        args: &[serde_json::Value],
        input: Option<&Feed>,
    ) -> Result<Bound<'py, PyTuple>> {
        let interface = &self.module.interface;
        let mut objects = Vec::with_capacity(args.len() + 1);
        if let Some(feed) = input {
            objects.push(input_iterator(py, interface.clone(), spec, feed.clone())?);
        }
        for ((_, ty), value) in spec.tuple_params().zip(args) {
            objects.push(
                values::to_python(py, interface.types(), ty, value)
                    .map_err(|e| Error::new(Status::InternalPanic, format!("cannot build the arguments of '{}': {e}", spec.name)))?,
            );
        }
        PyTuple::new(py, objects).map_err(|e| Error::new(Status::InternalPanic, format!("cannot build the arguments of '{}': {e}", spec.name)))
    }

    /// Starts a server-streaming or bidirectional call: the method runs
    /// until it returns its iterable (a generator's body runs at the first
    /// `next`).
    pub(super) fn start_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<PythonStream> {
        let spec = interface.method(method)?;
        let args = args.json_values(interface, spec)?;
        // Every argument checked against its type before Python sees it.
        json::encode_arg_values(interface, spec, &args)?;
        let item = spec.output_item().cloned().expect("the caller checked the method streams out");
        let iterator = Python::attach(|py| {
            let objects = self.stream_arguments(py, spec, &args, input.as_ref())?;
            let result = self.invoke(py, method, objects, None)?;
            let iterator = result.try_iter().map_err(|e| {
                Error::new(
                    Status::PluginProtocol,
                    format!("Python plugin '{}': '{}' streams, and must return an iterable: {e}", self.module.name, spec.name),
                )
            })?;
            Ok::<_, Error>(iterator.into_any().unbind())
        })?;
        let module = Python::attach(|py| self.module.shared(py));
        Ok(PythonStream { module, iterator: Some(iterator), method, name: spec.name.clone(), item, current: Vec::new() })
    }

    /// A client-streaming call: the plugin reads `input` through the
    /// iterator it is given.
    pub(super) fn client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        let spec = interface.method(method)?;
        let args = args.json_values(interface, spec)?;
        json::encode_arg_values(interface, spec, &args)?;
        let result = Python::attach(|py| {
            let objects = self.stream_arguments(py, spec, &args, Some(input))?;
            let result = self.invoke(py, method, objects, None)?;
            match &spec.returns {
                crate::interface::Returns::Nothing => Ok(serde_json::Value::Null),
                crate::interface::Returns::Value(ty) | crate::interface::Returns::Result(ty) => self.module.read_value(&spec.name, ty, &result),
            }
        })?;
        let bytes = json::encode_result_value(interface, spec, &result)?;
        crate::plugin::check_output_size(&self.module.name, &spec.name, bytes.len(), self.module.max_output)?;
        Ok(CallResult::Bincode(crate::bytes::OutputBytes::from_vec(bytes)))
    }
}

/// The iterator a plugin reads a `Stream<T>` argument through:
/// `iter(pull, END)`, where `pull` gives the next item as a Python object
/// of the item type, or `END`.
fn input_iterator<'py>(py: Python<'py>, interface: Arc<Interface>, spec: &Method, feed: Feed) -> Result<Bound<'py, PyAny>> {
    let setup = |e: PyErr| Error::new(Status::InternalPanic, format!("cannot build the input of '{}': {e}", spec.name));
    let item = spec.input_item().cloned().ok_or_else(|| crate::stream::unknown_stream_argument(spec))?;
    let builtins = py.import("builtins").map_err(setup)?;
    let end = builtins.getattr("object").and_then(|o| o.call0()).map_err(setup)?.unbind();
    let end_marker = end.clone_ref(py);
    let pull = PyCFunction::new_closure(py, None, None, move |args: &Bound<'_, PyTuple>, _| -> PyResult<Py<PyAny>> {
        let py = args.py();
        // The producer runs without the GIL: it is the caller's code.
        let next = py.detach(|| feed.next_json());
        match next {
            None => Ok(end_marker.clone_ref(py)),
            Some(value) => Ok(values::to_python(py, interface.types(), &item, &value)?.unbind()),
        }
    })
    .map_err(setup)?;
    builtins.getattr("iter").and_then(|iter| iter.call1((pull, end))).map_err(setup)
}

impl ItemSource for PythonStream {
    fn advance(&mut self, until: Option<Instant>) -> Result<bool> {
        let Some(iterator) = &self.iterator else { return Ok(false) };
        let deadline = match (self.module.deadline, until.map(|u| u.saturating_duration_since(Instant::now()))) {
            (Some(d), Some(left)) => Some(d.min(left)),
            (d, left) => d.or(left),
        };
        let module = &self.module;
        let next = Python::attach(|py| {
            let exception = deadline_exception(py)?;
            let outcome = super::deadline::run(py, deadline, None, exception, || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: the iterator protocol on an owned iterator;
                    // NULL without an error set is the end.
                    let raw = unsafe { pyo3::ffi::PyIter_Next(iterator.as_ptr()) };
                    if raw.is_null() {
                        return PyErr::take(py).map_or(Ok(None), Err);
                    }
                    // SAFETY: PyIter_Next returns a new reference.
                    Ok(Some(unsafe { Bound::from_owned_ptr(py, raw) }))
                }))
            })?;
            if outcome.timed_out {
                return Err(Error::new(
                    Status::Timeout,
                    format!("Python plugin '{}': the stream of '{}' ran past its deadline and was stopped", module.name, self.name),
                ));
            }
            let object = match outcome.value {
                Ok(Ok(Some(object))) => object,
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(raised)) => return Err(Error::plugin(&module.name, self.method, describe(py, &raised))),
                Err(_) => {
                    let panic = crate::error::PluginError::new("PanicException", "the plugin raised pyo3's PanicException", None);
                    return Err(Error::plugin(&module.name, self.method, panic));
                }
            };
            module.read_value(&self.name, &self.item, &object).map(Some)
        })?;
        let Some(value) = next else { return Ok(false) };
        self.current = json::encode_value(&module.interface, &self.item, &value).map_err(|e| {
            Error::new(Status::PluginProtocol, format!("Python plugin '{}': an item of the stream of '{}': {e}", module.name, self.name))
        })?;
        crate::plugin::check_output_size(&module.name, &self.name, self.current.len(), module.max_output)?;
        Ok(true)
    }

    fn item(&self) -> Item<'_> {
        Item::Bincode(&self.current)
    }
}

impl Drop for PythonStream {
    fn drop(&mut self) {
        let Some(iterator) = self.iterator.take() else { return };
        // A generator's `close()` runs its `finally` blocks now: the
        // producer is torn down, not drained. Under the call deadline.
        let deadline = self.module.deadline;
        let _ = Python::try_attach(|py| {
            let iterator = iterator.into_bound(py);
            if let (Ok(close), Ok(exception)) = (iterator.getattr("close"), deadline_exception(py)) {
                let _ = super::deadline::run(py, deadline, None, exception, || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| close.call0().map(drop)))
                });
            }
            drop(iterator);
        });
    }
}
