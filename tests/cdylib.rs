//! The host core against real fidius 0.5.9 cdylib plugins and crafted ones.

mod common;

use common::*;
use fidius_host::{BufferStrategy, HostBuilder, LoadPolicy, RuntimeKind, Status};
use std::sync::Arc;

/// The required methods of the fixture's `Calculator`, spelled as the macro spells them.
const CALCULATOR_SIGNATURES: &[&str] = &[
    "add:i64,i64->i64",
    "greet:String->String",
    "divide:i64,i64->Result < i64, PluginError >",
    "describe:bool,f64,Vec < String >,Option < String >->String",
    "boom:->String",
    "reverse:Vec < u8 >->Vec < u8 >!raw",
    "ping:->",
];

fn calculator_hash() -> u64 {
    fidius_host::hash::interface_hash(CALCULATOR_SIGNATURES)
}

#[test]
fn discovery_reports_every_plugin_with_its_facts() {
    let found = host_for(&fixture("plugins")).discover();
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let names: Vec<&str> = found.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"BasicCalculator") && names.contains(&"PartialCalculator"));
    let basic = found.plugins.iter().find(|p| p.name == "BasicCalculator").unwrap();
    assert_eq!(basic.interface_name, "Calculator");
    assert_eq!(basic.interface_hash, calculator_hash(), "hash helper must match the macro");
    assert_eq!(basic.interface_version, 2);
    assert_eq!(basic.capabilities, 1);
    assert_eq!(basic.buffer_strategy, BufferStrategy::PluginAllocated);
    assert_eq!(basic.runtime, RuntimeKind::Cdylib);
    assert!(basic.path.ends_with("libcalc_plugin.so"));
    let partial = found.plugins.iter().find(|p| p.name == "PartialCalculator").unwrap();
    assert_eq!(partial.capabilities, 0);
}

#[test]
fn discovery_explains_skipped_files() {
    let dir = temp_dir("discover-skips");
    copy_into(&dir, &fixture("plugins/libcalc_plugin.so"));
    copy_into(&dir, &fixture("crafted/libdefect_magic.so"));
    std::fs::write(dir.join("notes.so"), b"this is not a library at all, just text that is long enough to have a header").unwrap();
    std::fs::create_dir(dir.join("folder.so")).unwrap();
    let host = HostBuilder::new().search_path(&dir).search_path(dir.join("missing")).build().unwrap();
    let found = host.discover();
    assert_eq!(found.plugins.len(), 2);
    let status_of = |suffix: &str| {
        found.skipped.iter().find(|s| s.path.ends_with(suffix)).map(|s| s.error.status())
    };
    assert_eq!(status_of("libdefect_magic.so"), Some(Status::InvalidMagic));
    assert_eq!(status_of("notes.so"), Some(Status::NotALibrary));
    assert_eq!(status_of("folder.so"), Some(Status::NotARegularFile));
    assert_eq!(status_of("missing"), Some(Status::FileNotFound));
    for skipped in &found.skipped {
        assert!(skipped.error.message().contains(&*skipped.path.to_string_lossy()), "{}", skipped.error);
    }
}

#[test]
fn calls_every_kind_of_method() {
    for isolation in MODES {
        let plugin = host_in(isolation, &fixture("plugins")).load("BasicCalculator").unwrap();
        assert_runs(&plugin, isolation);
        let out = plugin.call_raw(calc::ADD, &encode(&(3i64, 7i64))).unwrap();
        assert_eq!(out.as_slice(), &[10, 0, 0, 0, 0, 0, 0, 0]);
        let out = plugin.call_raw(calc::GREET, &encode(&("hello".to_string(),))).unwrap();
        assert_eq!(decode::<String>(out.as_slice()), "Hello, hello!");
        let out = plugin.call_raw(calc::DIVIDE, &encode(&(20i64, 4i64))).unwrap();
        assert_eq!(decode::<i64>(out.as_slice()), 5);
        let args = (true, 0.5f64, vec!["a".to_string(), "b".to_string()], Some("n".to_string()));
        let out = plugin.call_raw(calc::DESCRIBE, &encode(&args)).unwrap();
        assert_eq!(decode::<String>(out.as_slice()), "flag=true ratio=0.5 tags=a+b note=n");
        let args = (false, 2.0f64, Vec::<String>::new(), None::<String>);
        let out = plugin.call_raw(calc::DESCRIBE, &encode(&args)).unwrap();
        assert_eq!(decode::<String>(out.as_slice()), "flag=false ratio=2 tags= note=none");
        let out = plugin.call_raw(calc::REVERSE, b"raw!").unwrap();
        assert_eq!(out.as_slice(), b"!war");
        let out = plugin.call_raw(calc::REVERSE, b"").unwrap();
        assert!(out.as_slice().is_empty());
        let out = plugin.call_raw(calc::PING, &[]).unwrap();
        assert!(out.as_slice().is_empty());
        let out = plugin.call_raw(calc::MULTIPLY, &encode(&(6i64, 7i64))).unwrap();
        assert_eq!(decode::<i64>(out.as_slice()), 42);
    }
}

#[test]
fn plugin_errors_carry_code_message_and_details() {
    for isolation in MODES {
        let plugin = host_in(isolation, &fixture("plugins")).load("BasicCalculator").unwrap();
        let err = plugin.call_raw(calc::DIVIDE, &encode(&(9i64, 0i64))).unwrap_err();
        assert_eq!(err.status(), Status::PluginError);
        let plugin_error = err.plugin_error().unwrap();
        assert_eq!(plugin_error.code(), "DIV_ZERO");
        assert_eq!(plugin_error.message(), "cannot divide 9 by zero");
        assert_eq!(plugin_error.details(), Some(r#"{"dividend":9}"#));
    }
}

#[test]
fn a_panicking_method_is_an_error_and_the_plugin_keeps_working() {
    for isolation in MODES {
        let plugin = host_in(isolation, &fixture("plugins")).load("BasicCalculator").unwrap();
        for _ in 0..3 {
            let err = plugin.call_raw(calc::BOOM, &[]).unwrap_err();
            assert_eq!(err.status(), Status::PluginPanic);
            assert!(err.message().contains("boom: the fixture panicked on purpose"), "{err}");
        }
        let out = plugin.call_raw(calc::ADD, &encode(&(1i64, 1i64))).unwrap();
        assert_eq!(decode::<i64>(out.as_slice()), 2);
    }
}

#[test]
fn bad_input_and_bad_indices_are_errors() {
    for isolation in MODES {
        let plugin = host_in(isolation, &fixture("plugins")).load("BasicCalculator").unwrap();
        let err = plugin.call_raw(calc::ADD, &[1, 2, 3]).unwrap_err();
        assert_eq!(err.status(), Status::PluginSerialization);
        // An empty input must reach the plugin as a non-NULL pointer: a debug
        // fidius plugin would abort the process otherwise.
        let err = plugin.call_raw(calc::ADD, &[]).unwrap_err();
        assert_eq!(err.status(), Status::PluginSerialization);
        let err = plugin.call_raw(8, &[]).unwrap_err();
        assert_eq!(err.status(), Status::MethodOutOfRange);
        assert!(err.message().contains("has 8 methods"), "{err}");
        assert_eq!(plugin.call_raw(u32::MAX, &[]).unwrap_err().status(), Status::MethodOutOfRange);
    }
}

#[test]
fn optional_methods_and_capabilities() {
    for isolation in MODES {
        let host = host_in(isolation, &fixture("plugins"));
        let basic = host.load("BasicCalculator").unwrap();
        let partial = host.load("PartialCalculator").unwrap();
        assert!(basic.has_capability(0));
        assert!(!partial.has_capability(0));
        assert!(!basic.has_capability(1) && !basic.has_capability(64));
        let err = partial.call_raw(calc::MULTIPLY, &encode(&(2i64, 3i64))).unwrap_err();
        assert_eq!(err.status(), Status::NotImplemented);
        assert!(err.message().contains("PartialCalculator"), "{err}");
        // Its required methods work.
        let out = partial.call_raw(calc::ADD, &encode(&(2i64, 3i64))).unwrap();
        assert_eq!(decode::<i64>(out.as_slice()), 5);
    }
}

#[test]
fn method_and_trait_metadata() {
    for isolation in MODES {
        let plugin = host_in(isolation, &fixture("plugins")).load("BasicCalculator").unwrap();
        let pairs = |entries: &[fidius_host::MetaEntry]| {
            entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect::<Vec<_>>()
        };
        assert_eq!(
            pairs(plugin.trait_metadata()),
            vec![("author".into(), "fidius-host fixtures".into()), ("category".into(), "math".into())]
        );
        assert_eq!(
            pairs(plugin.method_metadata(calc::ADD).unwrap()),
            vec![("doc".into(), "adds two integers".into()), ("pure".into(), "true".into())]
        );
        assert_eq!(pairs(plugin.method_metadata(calc::DIVIDE).unwrap()), vec![("errors".into(), "DIV_ZERO".into())]);
        assert!(plugin.method_metadata(calc::GREET).unwrap().is_empty());
        assert!(plugin.method_metadata(8).is_none());
    }
}

#[test]
fn arena_outputs_grow_past_the_first_arena_within_the_limit() {
    for isolation in MODES {
        let host = host_in(isolation, &fixture("arena"));
        let plugin = host.load("ArenaEcho").unwrap();
        assert_eq!(plugin.info().buffer_strategy, BufferStrategy::Arena);
        let out = plugin.call_raw(echo::REPEAT, &encode(&("ab".to_string(), 5000u32))).unwrap();
        assert_eq!(decode::<String>(out.as_slice()), "ab".repeat(5000));
        let out = plugin.call_raw(echo::UPPER, b"shout").unwrap();
        assert_eq!(out.as_slice(), b"SHOUT");
        let err = plugin.call_raw(echo::FAIL, &encode(&("nope".to_string(),))).unwrap_err();
        assert_eq!(err.plugin_error().unwrap().code(), "ECHO_FAIL");
        assert_eq!(err.plugin_error().unwrap().message(), "nope");
        assert_eq!(plugin.call_raw(echo::BOOM, &[]).unwrap_err().status(), Status::PluginPanic);

        let limited = builder_in(isolation).search_path(fixture("arena")).max_output_size(1000).unwrap().build().unwrap();
        let plugin = limited.load("ArenaEcho").unwrap();
        let err = plugin.call_raw(echo::REPEAT, &encode(&("x".to_string(), 1_000_000u32))).unwrap_err();
        assert_eq!(err.status(), Status::OutputTooLarge);
        assert!(err.message().contains("1000008 bytes exceeds the host's limit of 1000 bytes"), "{err}");
        let err = plugin.call_raw(echo::REPEAT, &encode(&("x".to_string(), 995u32))).unwrap_err();
        assert_eq!(err.status(), Status::OutputTooLarge, "within the first arena, still over the limit");
        let out = plugin.call_raw(echo::REPEAT, &encode(&("x".to_string(), 100u32))).unwrap();
        assert_eq!(decode::<String>(out.as_slice()).len(), 100);
    }
}

#[test]
fn plugin_allocated_outputs_over_the_limit_are_errors() {
    for isolation in MODES {
        let host = builder_in(isolation).search_path(fixture("plugins")).max_output_size(16).unwrap().build().unwrap();
        let plugin = host.load("BasicCalculator").unwrap();
        let err = plugin.call_raw(calc::REVERSE, &[7u8; 17]).unwrap_err();
        assert_eq!(err.status(), Status::OutputTooLarge);
        assert_eq!(plugin.call_raw(calc::REVERSE, &[7u8; 16]).unwrap().as_slice(), &[7u8; 16]);
    }
}

#[test]
fn concurrent_calls_on_one_handle() {
    for isolation in MODES {
        let host = builder_in(isolation).search_path(fixture("plugins")).search_path(fixture("arena")).build().unwrap();
        let calc_plugin = Arc::new(host.load("BasicCalculator").unwrap());
        let echo_plugin = Arc::new(host.load("ArenaEcho").unwrap());
        let threads: Vec<_> = (0..8i64)
            .map(|t| {
                let (calc_plugin, echo_plugin) = (calc_plugin.clone(), echo_plugin.clone());
                std::thread::spawn(move || {
                    for i in 0..500i64 {
                        let out = calc_plugin.call_raw(calc::ADD, &encode(&(t, i))).unwrap();
                        assert_eq!(decode::<i64>(out.as_slice()), t + i);
                        let times = (i % 7 + 1) as u32 * 1000;
                        let out = echo_plugin.call_raw(echo::REPEAT, &encode(&(t.to_string(), times))).unwrap();
                        assert_eq!(decode::<String>(out.as_slice()).len(), times as usize * t.to_string().len());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
}

#[test]
fn outputs_outlive_the_plugin_handle() {
    for isolation in MODES {
        let plugin = host_in(isolation, &fixture("plugins")).load("BasicCalculator").unwrap();
        let out = plugin.call_raw(calc::GREET, &encode(&("late".to_string(),))).unwrap();
        drop(plugin);
        assert_eq!(decode::<String>(out.as_slice()), "Hello, late!");
    }
}

#[test]
fn load_by_path_and_by_name() {
    let host = HostBuilder::new().build().unwrap();
    let path = fixture("plugins/libcalc_plugin.so");
    let err = host.load_path(&path, None).unwrap_err();
    assert_eq!(err.status(), Status::AmbiguousPlugin);
    assert!(err.message().contains("BasicCalculator") && err.message().contains("PartialCalculator"), "{err}");
    let plugin = host.load_path(&path, Some("PartialCalculator")).unwrap();
    assert_eq!(plugin.info().name, "PartialCalculator");
    let err = host.load_path(&path, Some("Nope")).unwrap_err();
    assert_eq!(err.status(), Status::PluginNotFound);
    let single = host.load_path(&fixture("arena/libarena_plugin.so"), None).unwrap();
    assert_eq!(single.info().name, "ArenaEcho");
    let err = host.load_path(&fixture("plugins/libnothing.so"), None).unwrap_err();
    assert_eq!(err.status(), Status::FileNotFound);
}

#[test]
fn unknown_names_explain_what_was_skipped() {
    let dir = temp_dir("unknown-name");
    copy_into(&dir, &fixture("plugins/libcalc_plugin.so"));
    copy_into(&dir, &fixture("crafted/libdefect_abi.so"));
    let err = host_for(&dir).load("Missing").unwrap_err();
    assert_eq!(err.status(), Status::PluginNotFound);
    assert!(err.message().contains("no plugin named 'Missing'"), "{err}");
    assert!(err.message().contains("libdefect_abi.so") && err.message().contains("abi_version is 400"), "{err}");
}

#[test]
fn one_bad_file_never_blocks_a_good_plugin() {
    let dir = temp_dir("bad-neighbour");
    for defect in ["magic", "abi", "null_registry", "no_symbol", "huge_count"] {
        copy_into(&dir, &fixture(&format!("crafted/libdefect_{defect}.so")));
    }
    std::fs::write(dir.join("aaa.so"), b"\x7fELF").unwrap();
    copy_into(&dir, &fixture("plugins/libcalc_plugin.so"));
    let plugin = host_for(&dir).load("BasicCalculator").unwrap();
    assert_eq!(plugin.info().name, "BasicCalculator");
}

#[test]
fn expectations_of_the_builder_are_enforced() {
    let host = HostBuilder::new().search_path(fixture("plugins")).interface_hash(calculator_hash()).build().unwrap();
    assert!(host.load("BasicCalculator").is_ok());
    let host = HostBuilder::new().search_path(fixture("plugins")).interface_hash(0x1234).build().unwrap();
    let err = host.load("BasicCalculator").unwrap_err();
    assert_eq!(err.status(), Status::InterfaceHashMismatch);
    assert!(err.message().contains("expected 0x0000000000001234"), "{err}");
    assert!(err.message().contains(&format!("found {:#018x}", calculator_hash())), "{err}");
    assert_eq!(host.discover().plugins.len(), 0);
    assert_eq!(host.discover().skipped[0].error.status(), Status::InterfaceHashMismatch);

    let host = HostBuilder::new().search_path(fixture("plugins")).buffer_strategy(BufferStrategy::Arena).build().unwrap();
    let err = host.load("BasicCalculator").unwrap_err();
    assert_eq!(err.status(), Status::BufferStrategyMismatch);
    assert!(err.message().contains("expected Arena, found PluginAllocated"), "{err}");
}

#[test]
fn builder_rejects_unusable_configurations() {
    let err = HostBuilder::new().require_signature(true).build().unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
    assert_eq!(HostBuilder::new().max_output_size(0).unwrap_err().status(), Status::InvalidArgument);
}

fn load_status(file: &std::path::Path) -> Status {
    HostBuilder::new().build().unwrap().load_path(file, None).unwrap_err().status()
}

#[test]
fn crafted_defects_each_have_their_status() {
    let cases = [
        ("magic", Status::InvalidMagic),
        ("registry_version", Status::IncompatibleRegistryVersion),
        ("abi", Status::IncompatibleAbiVersion),
        ("descriptor_size", Status::InvalidDescriptorSize),
        ("null_vtable", Status::InvalidPluginPointer),
        ("bad_utf8_name", Status::InvalidPluginString),
        ("null_construct", Status::InvalidPluginPointer),
        ("construct_returns_null", Status::ConstructFailed),
        ("null_registry", Status::InvalidRegistry),
        ("huge_count", Status::InvalidPluginCount),
        ("no_free_buffer", Status::InvalidPluginPointer),
        ("second_bad", Status::IncompatibleAbiVersion),
        ("no_symbol", Status::RegistryMissing),
        ("host_imports_magic", Status::InvalidMagic),
        ("host_imports_null_array", Status::InvalidPluginPointer),
        ("host_imports_null_bind", Status::InvalidPluginPointer),
        ("host_imports_bad_name", Status::InvalidPluginString),
        ("host_imports_huge_count", Status::InvalidPluginCount),
    ];
    for (defect, expected) in cases {
        let file = fixture(&format!("crafted/libdefect_{defect}.so"));
        let err = HostBuilder::new().build().unwrap().load_path(&file, None).unwrap_err();
        assert_eq!(err.status(), expected, "{defect}: {err}");
        assert!(err.message().contains(&*file.to_string_lossy()), "{defect}: message must name the file: {err}");
    }
    // A valid host-import registry is read as it is.
    let imports = HostBuilder::new().build().unwrap().load_path(&fixture("crafted/libhost_imports.so"), None).unwrap();
    let import = &imports.host_imports()[0];
    assert_eq!((import.interface_name.as_str(), import.interface_version, import.interface_hash), ("Clock", 2, 0x1234abcd));
    // The valid crafted library loads and computes.
    let plugin = HostBuilder::new().build().unwrap().load_path(&fixture("crafted/libcrafted.so"), None).unwrap();
    let out = plugin.call_raw(0, &encode(&(40i64, 2i64))).unwrap();
    assert_eq!(decode::<i64>(out.as_slice()), 42);
}

#[test]
fn malformed_files_are_rejected_before_dlopen() {
    let dir = temp_dir("malformed");
    let real = std::fs::read(fixture("crafted/libcrafted.so")).unwrap();
    let truncated = dir.join("truncated.so");
    std::fs::write(&truncated, &real[..40]).unwrap();
    assert_eq!(load_status(&truncated), Status::NotALibrary);
    let cut = dir.join("cut.so");
    std::fs::write(&cut, &real[..real.len() / 2]).unwrap();
    assert_eq!(load_status(&cut), Status::NotALibrary);
    let text = dir.join("text.so");
    std::fs::write(&text, "#!/bin/sh\necho this is a script, not a shared library at all\n").unwrap();
    assert_eq!(load_status(&text), Status::NotALibrary);
    let mut foreign = real.clone();
    foreign[18..20].copy_from_slice(&183u16.to_le_bytes()); // aarch64
    let arm = dir.join("arm.so");
    std::fs::write(&arm, &foreign).unwrap();
    let err = HostBuilder::new().build().unwrap().load_path(&arm, None).unwrap_err();
    assert_eq!(err.status(), Status::ArchitectureMismatch);
    assert!(err.message().contains("expected x86_64, found aarch64"), "{err}");
    let mut class32 = real.clone();
    class32[4] = 1;
    let elf32 = dir.join("elf32.so");
    std::fs::write(&elf32, &class32).unwrap();
    assert_eq!(load_status(&elf32), Status::ArchitectureMismatch);
    let mut executable = real;
    executable[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    let exec = dir.join("exec.so");
    std::fs::write(&exec, &executable).unwrap();
    assert_eq!(load_status(&exec), Status::NotALibrary);
}

#[test]
fn lenient_policy_skips_only_the_bad_descriptor() {
    let file = fixture("crafted/libdefect_second_bad.so");
    let strict = HostBuilder::new().build().unwrap();
    assert_eq!(strict.load_path(&file, Some("Crafted")).unwrap_err().status(), Status::IncompatibleAbiVersion);

    let dir = temp_dir("lenient");
    copy_into(&dir, &file);
    let lenient = HostBuilder::new().search_path(&dir).load_policy(LoadPolicy::Lenient).build().unwrap();
    let plugin = lenient.load("Crafted").unwrap();
    let out = plugin.call_raw(0, &encode(&(1i64, 2i64))).unwrap();
    assert_eq!(decode::<i64>(out.as_slice()), 3);
    let found = lenient.discover();
    assert_eq!(found.plugins.len(), 1);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].error.status(), Status::IncompatibleAbiVersion);
    assert!(found.skipped[0].error.message().contains("descriptor #1"), "{}", found.skipped[0].error);
    // Lenient never relaxes registry-level checks.
    let bad_magic = fixture("crafted/libdefect_magic.so");
    assert_eq!(lenient.load_path(&bad_magic, None).unwrap_err().status(), Status::InvalidMagic);
}

#[test]
fn plugins_of_one_library_share_one_mapping() {
    let host = host_for(&fixture("plugins"));
    let a = host.load("BasicCalculator").unwrap();
    let b = host.load("PartialCalculator").unwrap();
    let c = host.load("BasicCalculator").unwrap();
    for plugin in [&a, &b, &c] {
        assert_eq!(plugin.call_raw(calc::ADD, &encode(&(2i64, 2i64))).unwrap().as_slice()[0], 4);
    }
}

/// The structure checks refuse no real library: every shared object of the
/// system and of the Rust and Python installations passes them (a check
/// that is too strict would refuse good plugins built by other toolchains).
#[test]
fn structure_checks_accept_every_real_library() {
    use fidius_host::artifact::header;
    let mut accepted = 0;
    let mut pending: Vec<std::path::PathBuf> =
        ["/usr/lib", "/usr/local/lib"].iter().map(std::path::PathBuf::from).collect();
    pending.push(fixture("plugins"));
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            if !meta.is_file() || !path.to_string_lossy().contains(".so") || meta.len() > 256 << 20 {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else { continue };
            if header::check_head(&path, &bytes).is_err() {
                continue; // not a shared object for this machine
            }
            if let Err(e) = header::check(&path, &bytes[..]) {
                panic!("a real library was refused: {e}");
            }
            // Unsigned loads read the file by offset instead: the same verdict.
            let limit = fidius_host::disk::Limit::new(256 << 20, "library file");
            let file = fidius_host::disk::RegularFile::open(&path, fidius_host::disk::Links::Follow).unwrap();
            if let Err(e) = header::check(&path, &file.into_chunks(&path, limit).unwrap()) {
                panic!("a real library was refused when read by offset: {e}");
            }
            accepted += 1;
        }
    }
    assert!(accepted > 50, "only {accepted} libraries were checked");
}
