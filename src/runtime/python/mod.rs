//! Python plugins: CPython embedded through pyo3.
//!
//! The interpreter starts once per process, at the first Python load (or is
//! the one already running, when the host process is Python itself). Each
//! plugin's modules live in their own namespace and are executed from the
//! bytes the host read, and verified when signatures are required (see
//! `host.py`). The GIL is taken for each call and released after it.

//!
//! Without the `python` feature only the settings remain, and loads answer
//! UNSUPPORTED.

#[cfg(feature = "python")]
mod deadline;
#[cfg(feature = "python")]
mod plugin;
#[cfg(feature = "python")]
mod stream;
#[cfg(feature = "python")]
mod values;

/// Whether this build has the runtime (Cargo feature `python`).
pub const BUILT_IN: bool = cfg!(feature = "python");

use super::PackageLoad;
use crate::error::Result;
use crate::plugin::Plugin;
use std::time::Duration;

/// Host-wide Python settings.
#[derive(Debug, Clone, Default)]
pub struct PythonSettings {
    /// Deadline of each call and import (`Some(None)`: none); `None`: the
    /// host's call deadline.
    pub deadline: Option<Option<Duration>>,
}

/// One load's overrides of the host's Python settings (`None`: the host's).
#[derive(Debug, Clone, Default)]
pub struct PythonOverrides {
    pub deadline: Option<Option<Duration>>,
}

/// The Python runtime (one interpreter per process, shared by all hosts).
#[derive(Debug, Default)]
pub struct PythonLoader;

impl PythonLoader {
    /// Loads the Python plugin of a package; it needs an interface (the
    /// method names, raw flags and hash).
    #[cfg(feature = "python")]
    pub fn load(&self, load: &PackageLoad, settings: &PythonSettings, overrides: &PythonOverrides) -> Result<Plugin> {
        let interface =
            load.require_interface("loading a Python plugin needs an interface (its method names, raw flags and hash)")?;
        if !load.host_bindings.is_empty() {
            return Err(crate::Error::at(
                crate::Status::Unsupported,
                load.package.dir(),
                format!(
                    "host functions were bound ({}), but Python plugins cannot call host functions (fidius 0.5.9 has \
                     no host-call path for Python); load it without host bindings",
                    load.host_bindings.names()
                ),
            ));
        }
        let deadline = overrides.deadline.or(settings.deadline).unwrap_or(load.call_deadline);
        plugin::load(load.package, interface, load.config, load.max_output, deadline)
    }

    /// This build has no Python runtime.
    #[cfg(not(feature = "python"))]
    pub fn load(&self, load: &PackageLoad, _settings: &PythonSettings, _overrides: &PythonOverrides) -> Result<Plugin> {
        Err(crate::Error::at(
            crate::Status::Unsupported,
            load.package.dir(),
            "this build has no Python support (feature `python`)",
        ))
    }
}
