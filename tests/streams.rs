//! Streaming calls — server, client and bidirectional streams — of the
//! Streamer fixture in every runtime: a native library, a WebAssembly
//! component and a Python package, all real fidius 0.5.9 plugins.

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::stream::{Encoding, ItemProducer, StreamArgs};
use fidius_host::{Interface, Isolation, LoadOptions, Plugin, Status};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const COUNT: u32 = 0;
const BLOBS: u32 = 1;
const FAIL_AFTER: u32 = 2;
const LIVE_PRODUCERS: u32 = 3;
const SUM: u32 = 4;
const CHECKED_SUM: u32 = 5;
const SHOUT: u32 = 6;

fn streamer() -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/streamer.toml")).unwrap())
}

/// The Streamer fixture in each runtime this build has, native and Python
/// in-process and isolated.
fn plugins() -> Vec<(&'static str, Plugin)> {
    let host = host_for(&fixtures());
    let isolated = host_in(Isolation::Isolated, &fixtures());
    let options = LoadOptions::with_interface(streamer());
    let native = fixture("streams/libstream_plugin.so");
    let mut plugins = vec![
        ("cdylib", host.load_path_with(&native, None, &options).unwrap()),
        ("cdylib isolated", isolated.load_path_with(&native, None, &options).unwrap()),
    ];
    if cfg!(feature = "wasm") {
        plugins.push(("wasm", host.load_path_with(&fixture("wasm/stream"), None, &options).unwrap()));
    }
    if cfg!(feature = "python") {
        plugins.push(("python", host.load_path_with(&fixture("python/stream"), None, &options).unwrap()));
        plugins.push(("python isolated", isolated.load_path_with(&fixture("python/stream"), None, &options).unwrap()));
    }
    for (runtime, plugin) in &plugins {
        assert_runs(plugin, if runtime.ends_with("isolated") { Isolation::Isolated } else { Isolation::InProcess });
    }
    plugins
}

/// The runtime of a `plugins()` entry, isolated or not.
fn runtime_of(entry: &str) -> &str {
    entry.split(' ').next().unwrap_or(entry)
}

/// A producer of fixed items that counts how many the plugin read.
struct Items {
    items: Vec<Vec<u8>>,
    read: Arc<AtomicUsize>,
    /// Set when the producer is released.
    released: Arc<AtomicUsize>,
}

impl ItemProducer for Items {
    fn produce(&mut self) -> fidius_host::Result<Option<&[u8]>> {
        let at = self.read.fetch_add(1, Ordering::SeqCst);
        Ok(self.items.get(at).map(Vec::as_slice))
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }
}

/// Items as JSON texts, and the counters of their producer.
fn json_items(items: &[&str]) -> (Box<dyn ItemProducer>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (read, released) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let producer = Items { items: items.iter().map(|i| i.as_bytes().to_vec()).collect(), read: read.clone(), released: released.clone() };
    (Box::new(producer), read, released)
}

/// All the items of a stream as JSON texts, and how it ended.
fn drain(plugin: &Plugin, method: u32, args: &str, input: Option<Box<dyn ItemProducer>>) -> (Vec<String>, fidius_host::Result<()>) {
    let mut stream = plugin.call_stream(method, StreamArgs::Json(args), input.map(|p| (p, Encoding::Json))).unwrap();
    let mut items = Vec::new();
    loop {
        match stream.next_json() {
            Ok(Some(item)) => items.push(item.to_string()),
            Ok(None) => return (items, Ok(())),
            Err(e) => return (items, Err(e)),
        }
    }
}

fn live_producers(plugin: &Plugin) -> u32 {
    plugin.call_json_index(LIVE_PRODUCERS, "[]").unwrap().parse().unwrap()
}

#[test]
fn a_server_stream_yields_its_items_then_ends() {
    for (runtime, plugin) in plugins() {
        let (items, end) = drain(&plugin, COUNT, "[3, 7]", None);
        assert_eq!(items, ["3", "4", "5", "6"], "{runtime}");
        end.unwrap();
        // Raw: bincode items, from a bincode argument tuple.
        let args = encode(&(10u64, 12u64));
        let mut stream = plugin.call_stream(COUNT, StreamArgs::Bincode(&args), None).unwrap();
        assert_eq!(decode::<u64>(stream.next_raw().unwrap().unwrap()), 10, "{runtime}");
        assert_eq!(decode::<u64>(stream.next_raw().unwrap().unwrap()), 11, "{runtime}");
        assert!(stream.next_raw().unwrap().is_none(), "{runtime}");
        assert!(stream.next_raw().unwrap().is_none(), "the end is answered again ({runtime})");
        let (items, _) = drain(&plugin, COUNT, "[5, 5]", None);
        assert!(items.is_empty(), "{runtime}");
    }
}

#[test]
fn items_larger_than_the_first_buffers_arrive_whole() {
    for (runtime, plugin) in plugins() {
        let args = encode(&(3u32, 70_000u32));
        let mut stream = plugin.call_stream(BLOBS, StreamArgs::Bincode(&args), None).unwrap();
        for i in 0..3u8 {
            let item: Vec<u8> = decode(stream.next_raw().unwrap().unwrap());
            assert_eq!(item.len(), 70_000, "{runtime}");
            assert!(item.iter().all(|&b| b == i), "{runtime}");
        }
        assert!(stream.next_raw().unwrap().is_none(), "{runtime}");
    }
}

#[test]
fn a_stream_that_fails_ends_with_one_error() {
    for (runtime, plugin) in plugins() {
        let (items, end) = drain(&plugin, FAIL_AFTER, "[2]", None);
        assert_eq!(items, ["0", "1"], "{runtime}");
        let e = end.unwrap_err();
        let expected = match runtime_of(runtime) {
            "cdylib" => Status::PluginPanic,
            "wasm" => Status::PluginTrap,
            _ => Status::PluginError,
        };
        assert_eq!(e.status(), expected, "{runtime}: {}", e.message());
        if runtime_of(runtime) == "python" {
            assert_eq!(e.plugin_error().unwrap().code(), "TOO_FAR");
        }
        // The plugin serves the next call.
        assert_eq!(drain(&plugin, COUNT, "[0, 1]", None).0, ["0"], "{runtime}");
    }
}

#[test]
fn an_error_is_answered_again_and_nothing_follows_it() {
    for (runtime, plugin) in plugins() {
        let mut stream = plugin.call_stream(FAIL_AFTER, StreamArgs::Json("[0]"), None).unwrap();
        let first = stream.next_json().unwrap_err();
        let again = stream.next_json().unwrap_err();
        assert_eq!((first.status(), first.message()), (again.status(), again.message()), "{runtime}");
    }
}

#[test]
fn cancelling_tears_the_producer_down_before_its_end() {
    for (runtime, plugin) in plugins() {
        let started = Instant::now();
        let mut stream = plugin.call_stream(COUNT, StreamArgs::Json(&format!("[0, {}]", u64::MAX)), None).unwrap();
        for expected in 0..3 {
            assert_eq!(stream.next_json().unwrap().unwrap(), expected.to_string(), "{runtime}");
        }
        if runtime != "wasm" {
            // A WASM stream runs in an instance of its own.
            assert_eq!(live_producers(&plugin), 1, "{runtime}");
        }
        drop(stream);
        assert!(started.elapsed() < Duration::from_secs(5), "{runtime}: took {:?}", started.elapsed());
        if runtime != "wasm" {
            assert_eq!(live_producers(&plugin), 0, "{runtime}: the producer is gone");
        }
    }
}

#[test]
fn a_client_stream_is_read_exactly_as_far_as_the_plugin_reads_it() {
    for (runtime, plugin) in plugins() {
        let (input, read, released) = json_items(&["1", "2", "39"]);
        assert_eq!(plugin.call_client_stream_json(SUM, StreamArgs::Json("[]"), input, Encoding::Json).unwrap(), "42", "{runtime}");
        // Three items and the end.
        assert_eq!(read.load(Ordering::SeqCst), 4, "{runtime}");
        assert_eq!(released.load(Ordering::SeqCst), 1, "{runtime}");
        // No items.
        let (input, _, released) = json_items(&[]);
        assert_eq!(plugin.call_client_stream_json(SUM, StreamArgs::Json("[]"), input, Encoding::Json).unwrap(), "0", "{runtime}");
        assert_eq!(released.load(Ordering::SeqCst), 1, "{runtime}");
        // Checked: fails at the first negative item, the rest unread.
        let (input, read, _) = json_items(&["5", "6", "-1", "7", "8"]);
        let e = plugin.call_client_stream_json(CHECKED_SUM, StreamArgs::Json("[100]"), input, Encoding::Json).unwrap_err();
        assert_eq!(e.status(), Status::PluginError, "{runtime}: {}", e.message());
        assert_eq!(e.plugin_error().unwrap().code(), "NEGATIVE", "{runtime}");
        assert!(e.plugin_error().unwrap().message().contains("item 2"), "{runtime}: {}", e.message());
        assert_eq!(read.load(Ordering::SeqCst), 3, "{runtime}: read through the bad item, no further");
        let (input, _, _) = json_items(&["5", "6"]);
        assert_eq!(plugin.call_client_stream_json(CHECKED_SUM, StreamArgs::Json("[100]"), input, Encoding::Json).unwrap(), "11");
        // Raw: bincode arguments, items and result.
        let items = vec![encode(&7u64), encode(&8u64)];
        let (read, released) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let input = Box::new(Items { items, read, released });
        let sum = plugin.call_client_stream_raw(SUM, StreamArgs::Bincode(&[]), input, Encoding::Bincode).unwrap();
        assert_eq!(decode::<u64>(sum.as_slice()), 15, "{runtime}");
    }
}

#[test]
fn input_that_fails_fails_the_call() {
    for (runtime, plugin) in plugins() {
        // An item that is not a value of the item type.
        let (input, read, released) = json_items(&["1", "\"two\"", "3"]);
        let e = plugin.call_client_stream_json(SUM, StreamArgs::Json("[]"), input, Encoding::Json).unwrap_err();
        assert_eq!(e.status(), Status::StreamInputFailed, "{runtime}: {}", e.message());
        assert!(e.message().contains("item 1") && e.message().contains("'sum'"), "{runtime}: {}", e.message());
        assert_eq!(read.load(Ordering::SeqCst), 2, "{runtime}");
        assert_eq!(released.load(Ordering::SeqCst), 1, "{runtime}");
        // A producer that reports an error.
        struct Failing;
        impl ItemProducer for Failing {
            fn produce(&mut self) -> fidius_host::Result<Option<&[u8]>> {
                Err(fidius_host::Error::new(Status::Io, "the feed broke"))
            }
        }
        let e = plugin.call_client_stream_json(SUM, StreamArgs::Json("[]"), Box::new(Failing), Encoding::Json).unwrap_err();
        assert_eq!(e.status(), Status::StreamInputFailed, "{runtime}");
        assert!(e.message().contains("the feed broke"), "{runtime}: {}", e.message());
        // Raw bytes that are not bincode of the item type.
        let (read, released) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let input = Box::new(Items { items: vec![vec![1, 2]], read, released });
        let e = plugin.call_client_stream_raw(SUM, StreamArgs::Bincode(&[]), input, Encoding::Bincode).unwrap_err();
        assert_eq!(e.status(), Status::StreamInputFailed, "{runtime}: {}", e.message());
    }
}

#[test]
fn a_bidirectional_stream_reads_its_input_lazily() {
    for (runtime, plugin) in plugins() {
        let (input, read, released) = json_items(&["\"hey\"", "\"you\"", "\"there\""]);
        let mut stream = plugin.call_stream(SHOUT, StreamArgs::Json("[\"!\"]"), Some((input, Encoding::Json))).unwrap();
        assert_eq!(stream.next_json().unwrap(), Some("\"HEY!\""), "{runtime}");
        assert_eq!(read.load(Ordering::SeqCst), 1, "{runtime}: one in for one out");
        assert_eq!(stream.items_read(), 1, "{runtime}");
        assert_eq!(stream.next_json().unwrap(), Some("\"YOU!\""), "{runtime}");
        assert_eq!(read.load(Ordering::SeqCst), 2, "{runtime}");
        // Cancelled with input left: the rest is never read.
        drop(stream);
        assert_eq!(read.load(Ordering::SeqCst), 2, "{runtime}");
        assert_eq!(released.load(Ordering::SeqCst), 1, "{runtime}");
        // To the end.
        let (input, _, _) = json_items(&["\"a\"", "\"b\""]);
        let (items, end) = drain(&plugin, SHOUT, "[\"?\"]", Some(input));
        end.unwrap();
        assert_eq!(items, ["\"A?\"", "\"B?\""], "{runtime}");
        // An input item that does not fit fails the stream.
        let (input, _, _) = json_items(&["\"a\"", "7"]);
        let (items, end) = drain(&plugin, SHOUT, "[\"?\"]", Some(input));
        assert_eq!(items, ["\"A?\""], "{runtime}");
        assert_eq!(end.unwrap_err().status(), Status::StreamInputFailed, "{runtime}");
    }
}

#[test]
fn calls_that_do_not_match_how_a_method_streams_are_refused() {
    for (runtime, plugin) in plugins() {
        let mismatch = |e: fidius_host::Error| {
            assert_eq!(e.status(), Status::StreamMismatch, "{runtime}: {}", e.message());
            e.message().to_string()
        };
        // Unary calls of streaming methods.
        mismatch(plugin.call_json_index(COUNT, "[0, 1]").unwrap_err());
        mismatch(plugin.call_raw(COUNT, &encode(&(0u64, 1u64))).unwrap_err());
        mismatch(plugin.call_raw(SUM, &[]).unwrap_err());
        // Stream calls of a unary method.
        let message = mismatch(plugin.call_stream(LIVE_PRODUCERS, StreamArgs::Json("[]"), None).err().unwrap());
        assert!(message.contains("'live_producers'") && message.contains("unary"), "{message}");
        let (input, _, released) = json_items(&[]);
        mismatch(plugin.call_client_stream_json(LIVE_PRODUCERS, StreamArgs::Json("[]"), input, Encoding::Json).unwrap_err());
        assert_eq!(released.load(Ordering::SeqCst), 1, "{runtime}: the producer is released");
        // A bidirectional method without input, a server stream with input.
        mismatch(plugin.call_stream(SHOUT, StreamArgs::Json("[\"!\"]"), None).err().unwrap());
        let (input, _, _) = json_items(&[]);
        mismatch(plugin.call_stream(COUNT, StreamArgs::Json("[0, 1]"), Some((input, Encoding::Json))).err().unwrap());
        // Arguments are checked before anything runs.
        let e = plugin.call_stream(COUNT, StreamArgs::Json("[0]"), None).err().unwrap();
        assert_eq!(e.status(), Status::ArgumentMismatch, "{runtime}: {}", e.message());
    }
}

#[test]
fn streams_of_one_plugin_run_side_by_side_and_on_other_threads() {
    for (runtime, plugin) in plugins() {
        let mut a = plugin.call_stream(COUNT, StreamArgs::Json("[0, 100]"), None).unwrap();
        let mut b = plugin.call_stream(COUNT, StreamArgs::Json("[100, 200]"), None).unwrap();
        for i in 0..50u64 {
            assert_eq!(a.next_json().unwrap().unwrap(), i.to_string(), "{runtime}");
            assert_eq!(b.next_json().unwrap().unwrap(), (100 + i).to_string(), "{runtime}");
        }
        // A stream moves to another thread.
        let rest = std::thread::spawn(move || {
            let mut n = 0;
            while a.next_json().unwrap().is_some() {
                n += 1;
            }
            n
        });
        assert_eq!(rest.join().unwrap(), 50, "{runtime}");
        let plugin = Arc::new(plugin);
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let plugin = plugin.clone();
                std::thread::spawn(move || {
                    let mut stream = plugin.call_stream(COUNT, StreamArgs::Json(&format!("[{t}, {}]", t + 20)), None).unwrap();
                    let mut total = 0u64;
                    while let Some(item) = stream.next_json().unwrap() {
                        total += item.parse::<u64>().unwrap();
                    }
                    total
                })
            })
            .collect();
        for (t, worker) in workers.into_iter().enumerate() {
            let t = t as u64;
            assert_eq!(worker.join().unwrap(), (t..t + 20).sum::<u64>(), "{runtime}");
        }
    }
}

/// A hand-written native plugin (tests/fixtures/crafted) whose streaming
/// method fails to start with a PluginError: the error is decoded and its
/// buffer freed (fidius's own host reports an unknown status and leaks it).
#[test]
fn a_plugin_error_from_a_stream_start_is_reported_and_freed() {
    let mut ticker = fidius_host::InterfaceBuilder::new("Ticker", 1).unwrap();
    ticker.method("tick:u32->Stream<u32>", Default::default()).unwrap();
    let ticker = Arc::new(ticker.build().unwrap());
    let options = LoadOptions::with_interface(ticker);
    let plugin = host_for(&fixtures()).load_path_with(&fixture("crafted/libstream_start_fails.so"), None, &options).unwrap();
    let e = plugin.call_stream(0, StreamArgs::Json("[5]"), None).err().unwrap();
    assert_eq!(e.status(), Status::PluginError, "{}", e.message());
    let error = e.plugin_error().unwrap();
    assert_eq!((error.code(), error.message()), ("NOT_NOW", "the ticker is stopped"));
    // A unary call of it is refused before the plugin runs.
    assert_eq!(plugin.call_raw(0, &encode(&5u32)).unwrap_err().status(), Status::StreamMismatch);
}


/// An isolated plugin's stream lives in its worker: when that worker is
/// lost the stream ends with WORKER_LOST, and a restarted worker does not
/// pretend to continue it.
#[test]
fn an_isolated_stream_ends_with_the_worker_that_served_it() {
    let isolated = host_in(Isolation::Isolated, &fixtures());
    let options = LoadOptions::with_interface(streamer());
    let kill = |plugin: &Plugin| {
        let pid = plugin.worker_usage().unwrap().pid;
        // SAFETY: plain syscall on the plugin's own worker.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    };
    let mut paths = vec![fixture("streams/libstream_plugin.so")];
    if cfg!(feature = "python") {
        paths.push(fixture("python/stream"));
    }
    for path in paths {
        let plugin = isolated.load_path_with(&path, None, &options).unwrap();
        // Lost while the stream is being read.
        let mut stream = plugin.call_stream(COUNT, StreamArgs::Json("[0, 1000]"), None).unwrap();
        assert_eq!(stream.next_json().unwrap().unwrap(), "0");
        kill(&plugin);
        let e = stream.next_json().unwrap_err();
        assert_eq!(e.status(), Status::WorkerLost, "{path:?}: {}", e.message());
        assert_eq!(stream.next_json().unwrap_err().message(), e.message(), "the stream stays ended");

        // Lost, then restarted by another call: the old stream is not the new worker's.
        let mut stream = plugin.call_stream(COUNT, StreamArgs::Json("[0, 1000]"), None).unwrap();
        assert_eq!(stream.next_json().unwrap().unwrap(), "0");
        kill(&plugin);
        assert_eq!(plugin.call_json_index(LIVE_PRODUCERS, "[]").unwrap_err().status(), Status::WorkerLost);
        assert_eq!(live_producers(&plugin), 0, "a new worker, with no stream");
        let e = stream.next_json().unwrap_err();
        assert_eq!(e.status(), Status::WorkerLost, "{path:?}: {}", e.message());
        assert!(e.message().contains("the worker process that served this stream was lost"), "{}", e.message());
        drop(stream);
        assert_eq!(drain(&plugin, COUNT, "[5, 8]", None).0, ["5", "6", "7"], "{path:?}");
    }
}

/// A producer whose first item takes `delay`.
struct Slow(Duration);

impl ItemProducer for Slow {
    fn produce(&mut self) -> fidius_host::Result<Option<&[u8]>> {
        std::thread::sleep(self.0);
        Ok(Some(b"\"late\""))
    }
}

/// An isolated stream's deadline bounds each item as a call deadline does:
/// passed while the worker is at it, the worker is killed.
#[test]
fn an_isolated_stream_past_its_deadline_kills_its_worker() {
    let isolated = host_in(Isolation::Isolated, &fixtures());
    let plugin = isolated.load_path_with(&fixture("streams/libstream_plugin.so"), None, &LoadOptions::with_interface(streamer())).unwrap();
    let input: Box<dyn ItemProducer> = Box::new(Slow(Duration::from_millis(600)));
    let mut stream = plugin.call_stream(SHOUT, StreamArgs::Json("[\"!\"]"), Some((input, Encoding::Json))).unwrap();
    stream.set_deadline(Some(Instant::now() + Duration::from_millis(200)));
    let started = Instant::now();
    let e = stream.next_json().unwrap_err();
    assert_eq!(e.status(), Status::Timeout, "{}", e.message());
    assert!(e.message().contains("its worker process was killed"), "{}", e.message());
    assert!(started.elapsed() < Duration::from_secs(5));
    let usage = plugin.worker_usage().unwrap();
    assert_eq!((usage.timeouts, usage.pid), (1, 0), "{usage:?}");
    drop(stream);
    assert_eq!(drain(&plugin, COUNT, "[1, 3]", None).0, ["1", "2"], "a new worker serves the next call");
}
