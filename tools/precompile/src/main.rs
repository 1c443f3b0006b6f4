//! `fidius-precompile`: compiles a WebAssembly component ahead of time for
//! this version of libfidius_host (same wasmtime, same settings).
//!
//! ```text
//! fidius-precompile <component.wasm> [-o <component.cwasm>]
//! ```
//!
//! Without `-o` the output is the input with the extension `.cwasm`, which
//! is where a package's component looks for its sibling precompiled file.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(out) => {
            eprintln!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("fidius-precompile: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<PathBuf, String> {
    const USAGE: &str = "usage: fidius-precompile <component.wasm> [-o <component.cwasm>]";
    let (input, output) = match args.as_slice() {
        [input] => (PathBuf::from(input), PathBuf::from(input).with_extension("cwasm")),
        [input, flag, output] if flag == "-o" => (PathBuf::from(input), PathBuf::from(output)),
        _ => return Err(USAGE.to_string()),
    };
    let component = std::fs::read(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let compiled = fidius_host::runtime::wasm::precompile(&component).map_err(|e| format!("{}: {e}", input.display()))?;
    std::fs::write(&output, compiled).map_err(|e| format!("{}: {e}", output.display()))?;
    Ok(output)
}
