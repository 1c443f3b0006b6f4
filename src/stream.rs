//! Streaming calls: items out of a plugin (`-> Stream<T>`), items into one
//! (a `Stream<T>` argument), or both at once.
//!
//! Everything is pulled, never pushed: the plugin makes an item when the
//! caller asks for one ([`ItemStream::next_raw`]), and reads an input item
//! when its own code asks for one, which calls the caller's
//! [`ItemProducer`] right then, on the same thread. So no queue grows, a
//! producer is read exactly as far as the plugin reads it, and dropping a
//! stream tears the plugin's producer down at once.
//!
//! Items travel in the form their runtime speaks — bincode for native
//! plugins, JSON for WASM and Python — and are transcoded with the
//! interface's item types only when the caller asked for the other form.

use crate::bytes::OutputBytes;
use crate::error::{Error, Result, Status};
use crate::interface::types::WireType;
use crate::interface::{json, Interface, Method};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The form items and arguments travel in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// bincode of the item type (the form native plugins use).
    Bincode,
    /// JSON text of the item (the form WASM and Python plugins use).
    Json,
}

/// One item, or a call's result, in the form its runtime produced.
#[derive(Debug)]
pub enum Item<'a> {
    Bincode(&'a [u8]),
    Json(&'a str),
}

/// The caller's items for a `Stream<T>` argument: bincode or JSON of the
/// item type, as the producer was declared. `Ok(None)` ends the input;
/// an error ends it too, and fails the call.
pub trait ItemProducer: Send {
    /// The next item, in the producer's encoding. The bytes are copied
    /// before the next call.
    fn produce(&mut self) -> Result<Option<&[u8]>>;
}

/// The arguments of a streaming call: every argument but the `Stream<T>`
/// one, as a bincode tuple or a JSON array.
#[derive(Debug, Clone, Copy)]
pub enum StreamArgs<'a> {
    Bincode(&'a [u8]),
    Json(&'a str),
}

impl StreamArgs<'_> {
    /// The arguments as the bincode tuple a native plugin decodes.
    pub fn bincode(&self, interface: &Interface, method: &Method) -> Result<Vec<u8>> {
        match *self {
            StreamArgs::Bincode(bytes) => crate::bytes::try_copy(bytes),
            StreamArgs::Json(text) => json::encode_args(interface, method, text),
        }
    }

    /// The arguments as JSON values, one per argument.
    pub fn json_values(&self, interface: &Interface, method: &Method) -> Result<Vec<serde_json::Value>> {
        match *self {
            StreamArgs::Bincode(bytes) => json::decode_arg_values(interface, method, bytes),
            StreamArgs::Json(text) => json::parse_args(method, text),
        }
    }
}

/// The input of a streaming call, shared by the call and the runtime that
/// reads it. Reading past its end, or after a failure, gives `None`.
#[derive(Clone)]
pub struct Feed(Arc<Mutex<FeedState>>);

struct FeedState {
    /// `None` once the input ended, failed or was closed.
    producer: Option<Box<dyn ItemProducer>>,
    encoding: Encoding,
    interface: Arc<Interface>,
    item: WireType,
    /// `Method 'name'`, for messages.
    method: String,
    /// Items handed to the plugin so far.
    read: u64,
    failure: Option<Error>,
}

impl Feed {
    /// The input of `method`'s `Stream<T>` argument, from `producer`.
    pub fn new(producer: Box<dyn ItemProducer>, encoding: Encoding, interface: Arc<Interface>, method: &Method) -> Result<Feed> {
        let item = method.input_item().cloned().ok_or_else(|| unknown_stream_argument(method))?;
        let state = FeedState { producer: Some(producer), encoding, interface, item, method: method.name.clone(), read: 0, failure: None };
        Ok(Feed(Arc::new(Mutex::new(state))))
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next item as bincode; `None` at the end (or after a failure,
    /// which the call then reports).
    pub fn next_bincode(&self) -> Option<Vec<u8>> {
        self.lock().next(Encoding::Bincode).map(|item| item.into_bytes())
    }

    /// The next item as a JSON value; `None` as for [`Feed::next_bincode`].
    pub fn next_json(&self) -> Option<serde_json::Value> {
        let item = self.lock().next(Encoding::Json)?;
        // Valid JSON: the producer's own, or what the decoder wrote.
        serde_json::from_slice(&item.into_bytes()).ok()
    }

    /// How many items the plugin has read.
    pub fn items_read(&self) -> u64 {
        self.lock().read
    }

    /// Why the input failed, if it did.
    pub fn failure(&self) -> Option<Error> {
        self.lock().failure.clone()
    }

    /// Ends the input and releases the producer (the plugin sees the end).
    pub fn close(&self) {
        let producer = self.lock().producer.take();
        drop(producer);
    }
}

/// An item in one form or the other, owned.
enum OwnedItem {
    Bytes(Vec<u8>),
    Text(String),
}

impl OwnedItem {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            OwnedItem::Bytes(bytes) => bytes,
            OwnedItem::Text(text) => text.into_bytes(),
        }
    }
}

impl FeedState {
    fn next(&mut self, wanted: Encoding) -> Option<OwnedItem> {
        let producer = self.producer.as_mut()?;
        let position = self.read;
        let produced = match producer.produce() {
            Ok(Some(bytes)) => transcode_in(&self.interface, &self.item, self.encoding, wanted, bytes),
            Ok(None) => {
                self.producer = None;
                return None;
            }
            Err(error) => Err(error),
        };
        match produced {
            Ok(item) => {
                self.read += 1;
                Some(item)
            }
            Err(error) => {
                self.producer = None;
                self.failure = Some(Error::new(
                    Status::StreamInputFailed,
                    format!("item {position} of the Stream<{}> argument of '{}': {}", self.item, self.method, error.message()),
                ));
                None
            }
        }
    }
}

/// An input item from the producer's encoding into the one the runtime
/// reads, checked against the item type either way.
fn transcode_in(interface: &Interface, item: &WireType, from: Encoding, to: Encoding, bytes: &[u8]) -> Result<OwnedItem> {
    let invalid = |what: String| Error::new(Status::InvalidArgument, what);
    match (from, to) {
        (Encoding::Bincode, Encoding::Bincode) => {
            json::check_value(interface, item, bytes).map_err(|e| invalid(format!("not a valid bincode {item}: {e}")))?;
            Ok(OwnedItem::Bytes(crate::bytes::try_copy(bytes)?))
        }
        (Encoding::Bincode, Encoding::Json) => {
            let value = json::decode_value(interface, item, bytes).map_err(|e| invalid(format!("not a valid bincode {item}: {e}")))?;
            Ok(OwnedItem::Text(value.to_string()))
        }
        (Encoding::Json, _) => {
            let text = std::str::from_utf8(bytes).map_err(|_| Error::new(Status::InvalidUtf8, "the JSON text is not UTF-8"))?;
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| Error::new(Status::InvalidJson, format!("not JSON: {e}")))?;
            let encoded = json::encode_value(interface, item, &value).map_err(|e| invalid(format!("not a {item}: {e}")))?;
            Ok(match to {
                Encoding::Bincode => OwnedItem::Bytes(encoded),
                Encoding::Json => OwnedItem::Text(value.to_string()),
            })
        }
    }
}

/// A runtime's stream of items out of a plugin. Dropping it cancels the
/// stream: the plugin's producer is torn down then, not drained.
pub trait ItemSource: Send {
    /// Makes the next item; `Ok(false)` at the end. `until` bounds the
    /// wait where the runtime can stop a plugin (WASM, Python).
    fn advance(&mut self, until: Option<Instant>) -> Result<bool>;

    /// The item the last successful [`ItemSource::advance`] made.
    fn item(&self) -> Item<'_>;
}

/// The output of a server-streaming or bidirectional call.
pub struct ItemStream {
    source: Option<Box<dyn ItemSource>>,
    feed: Option<Feed>,
    interface: Arc<Interface>,
    item: WireType,
    method: String,
    plugin: Arc<str>,
    /// The end, or the error that ended the stream: every later `next`
    /// answers it again.
    done: Option<Error>,
    /// A whole-stream deadline.
    deadline: Option<Instant>,
    /// The item handed out last, when it had to be transcoded.
    buffer: Vec<u8>,
}

/// What an [`ItemStream`] is made from.
pub struct StreamParts {
    pub source: Box<dyn ItemSource>,
    pub feed: Option<Feed>,
    pub interface: Arc<Interface>,
    pub method: u32,
    pub plugin: Arc<str>,
}

impl ItemStream {
    pub fn new(parts: StreamParts) -> Result<ItemStream> {
        let method = parts.interface.method(parts.method)?;
        let item = method.output_item().cloned().ok_or_else(|| {
            Error::new(Status::StreamMismatch, format!("method '{}' is {}, not a streaming one", method.name, method.shape().describe()))
        })?;
        Ok(ItemStream {
            method: method.name.clone(),
            source: Some(parts.source),
            feed: parts.feed,
            interface: parts.interface,
            item,
            plugin: parts.plugin,
            done: None,
            deadline: None,
            buffer: Vec::new(),
        })
    }

    /// Ends the stream with TIMEOUT once `deadline` passes: a `next` then
    /// in progress is stopped where the runtime can stop its plugin (WASM,
    /// Python); a native plugin is only checked between items.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// How many items of the input the plugin has read (0 without one).
    pub fn items_read(&self) -> u64 {
        self.feed.as_ref().map_or(0, Feed::items_read)
    }

    /// The next item as bincode of the item type, borrowed until the next
    /// call; `Ok(None)` at the end.
    pub fn next_raw(&mut self) -> Result<Option<&[u8]>> {
        self.next(Encoding::Bincode).map(|item| item.map(str_or_bytes_as_bytes))
    }

    /// The next item as JSON text, borrowed until the next call.
    pub fn next_json(&mut self) -> Result<Option<&str>> {
        self.next(Encoding::Json).map(|item| {
            item.map(|i| match i {
                Item::Json(text) => text,
                Item::Bincode(_) => unreachable!("JSON was asked for"),
            })
        })
    }

    fn next(&mut self, wanted: Encoding) -> Result<Option<Item<'_>>> {
        if let Some(done) = &self.done {
            return match done.status() {
                Status::StreamEnd => Ok(None),
                _ => Err(done.clone()),
            };
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(self.finish(Error::new(
                Status::Timeout,
                format!("plugin '{}': the stream of '{}' ran past its deadline and was stopped", self.plugin, self.method),
            )));
        }
        let source = self.source.as_mut().expect("a stream not done has its source");
        let advanced = source.advance(self.deadline);
        // Input that failed fails the stream, whatever the plugin made of it.
        if let Some(failure) = self.feed.as_ref().and_then(Feed::failure) {
            return Err(self.finish(failure));
        }
        match advanced {
            Ok(true) => {}
            Ok(false) => {
                self.finish(Error::new(Status::StreamEnd, "the stream has ended"));
                return Ok(None);
            }
            Err(error) => return Err(self.finish(error)),
        }
        // The runtime bounded the item by the output limit; transcoding
        // changes its size by a small factor at most.
        let source = self.source.as_ref().expect("advanced above");
        let produced = source.item();
        let same_form = matches!((&produced, wanted), (Item::Bincode(_), Encoding::Bincode) | (Item::Json(_), Encoding::Json));
        if !same_form {
            if let Err(error) = transcode_out(&self.interface, &self.item, produced, wanted, &mut self.buffer) {
                return Err(self.finish(error));
            }
        }
        let source = self.source.as_ref().expect("advanced above");
        Ok(Some(match (source.item(), wanted) {
            (item @ Item::Bincode(_), Encoding::Bincode) | (item @ Item::Json(_), Encoding::Json) => item,
            (_, Encoding::Bincode) => Item::Bincode(&self.buffer),
            (_, Encoding::Json) => Item::Json(std::str::from_utf8(&self.buffer).expect("JSON text is UTF-8")),
        }))
    }

    /// Ends the stream with `error` (or the end): the plugin's producer and
    /// the input are released now.
    fn finish(&mut self, error: Error) -> Error {
        self.source = None;
        if let Some(feed) = &self.feed {
            feed.close();
        }
        self.done = Some(error.clone());
        error
    }
}

impl Drop for ItemStream {
    fn drop(&mut self) {
        // The source first: a bidirectional plugin may read its input
        // while it tears down.
        self.source = None;
        if let Some(feed) = &self.feed {
            feed.close();
        }
    }
}

fn str_or_bytes_as_bytes(item: Item<'_>) -> &[u8] {
    match item {
        Item::Bincode(bytes) => bytes,
        Item::Json(text) => text.as_bytes(),
    }
}

/// An output item into `buffer` in the other form.
fn transcode_out(interface: &Interface, ty: &WireType, item: Item<'_>, wanted: Encoding, buffer: &mut Vec<u8>) -> Result<()> {
    buffer.clear();
    let protocol = |what: String| Error::new(Status::PluginProtocol, what);
    match (item, wanted) {
        (Item::Bincode(bytes), Encoding::Bincode) => buffer.extend_from_slice(bytes),
        (Item::Bincode(bytes), Encoding::Json) => {
            let value = json::decode_value(interface, ty, bytes).map_err(|e| protocol(format!("a stream item is not a valid {ty}: {e}")))?;
            serde_json::to_writer(&mut *buffer, &value).map_err(|e| protocol(e.to_string()))?;
        }
        (Item::Json(text), Encoding::Json) => buffer.extend_from_slice(text.as_bytes()),
        (Item::Json(text), Encoding::Bincode) => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| protocol(format!("a stream item is not JSON: {e}")))?;
            *buffer = json::encode_value(interface, ty, &value).map_err(|e| protocol(format!("a stream item is not a {ty}: {e}")))?;
        }
    }
    Ok(())
}

/// A client-streaming call's result, in its runtime's form.
pub enum CallResult {
    Bincode(OutputBytes),
    Json(String),
}

/// STREAM_MISMATCH for a `<stream` method whose stream argument the
/// interface does not place.
pub fn unknown_stream_argument(method: &Method) -> Error {
    Error::new(
        Status::StreamMismatch,
        format!(
            "method '{}' takes a Stream<T> argument, but its signature does not say which argument that is (write it as \
             Stream<T> in the signature)",
            method.name
        ),
    )
}
