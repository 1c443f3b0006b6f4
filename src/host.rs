//! The host: configuration, the library cache, and loading by name or path.

use crate::artifact::package::{Manifest, Package};
use crate::artifact::{self, signature::TrustedKey};
use crate::discovery::{self, Candidate, Discovery, Skipped};
use crate::egress::EgressPolicy;
use crate::error::{Error, Quoted, Result, Status};
use crate::host_functions::{HostBinding, HostBindings};
use crate::interface::Interface;
use crate::plugin_config::{ConfigSource, PluginConfig};
use crate::disk::{FileIdentity, Links, RegularFile};
use crate::plugin::{BufferStrategy, Plugin, PluginDescription, PluginInfo, RuntimeKind};
use crate::runtime::cdylib::{self, library::Library};
use crate::runtime::worker::{self, protocol::LoadRequest, Isolation, RestartPolicy, WorkerSettings, WorkerSpec};
use crate::runtime::{self, wasm, PackageLoad, RuntimeOverrides, RuntimeSettings, Runtimes};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use crate::runtime::cdylib::library::LoadPolicy;

/// Default largest output a call may return: 64 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

/// Default deadline of a call (and of a Python import): 10 seconds.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(10);

/// Collects the options of a [`Host`]. Setters whose value can be wrong
/// check it and say why; [`HostBuilder::build`] checks what only the whole
/// can tell.
#[derive(Debug, Clone)]
pub struct HostBuilder {
    search_paths: Vec<PathBuf>,
    load_policy: LoadPolicy,
    require_signature: bool,
    trusted_keys: Vec<TrustedKey>,
    interface_hash: Option<u64>,
    buffer_strategy: Option<BufferStrategy>,
    max_output_size: usize,
    max_library_size: u64,
    max_package_size: u64,
    call_deadline: Option<Duration>,
    runtimes: RuntimeSettings,
    isolation: Isolation,
    discovery_isolation: Isolation,
    workers: WorkerSettings,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder::new()
    }
}

impl HostBuilder {
    /// No search paths, Strict policy, no signatures, 64 MiB output limit.
    pub fn new() -> HostBuilder {
        HostBuilder {
            search_paths: Vec::new(),
            load_policy: LoadPolicy::Strict,
            require_signature: false,
            trusted_keys: Vec::new(),
            interface_hash: None,
            buffer_strategy: None,
            max_output_size: DEFAULT_MAX_OUTPUT,
            max_library_size: crate::disk::DEFAULT_LIBRARY_LIMIT,
            max_package_size: crate::disk::DEFAULT_PACKAGE_LIMIT,
            call_deadline: Some(DEFAULT_CALL_DEADLINE),
            runtimes: RuntimeSettings::default(),
            isolation: Isolation::InProcess,
            discovery_isolation: Isolation::InProcess,
            workers: WorkerSettings::default(),
        }
    }

    /// Adds a directory to scan; directories are scanned in the order added.
    pub fn search_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.search_paths.push(path.into());
        self
    }

    /// Sets what happens to a library with some invalid descriptors.
    pub fn load_policy(&mut self, policy: LoadPolicy) -> &mut Self {
        self.load_policy = policy;
        self
    }

    /// Requires every library to carry a valid detached signature.
    pub fn require_signature(&mut self, required: bool) -> &mut Self {
        self.require_signature = required;
        self
    }

    /// Trusts signatures made by this key.
    pub fn trusted_key(&mut self, key: TrustedKey) -> &mut Self {
        self.trusted_keys.push(key);
        self
    }

    /// Only accepts plugins with this interface hash.
    pub fn interface_hash(&mut self, hash: u64) -> &mut Self {
        self.interface_hash = Some(hash);
        self
    }

    /// Only accepts plugins with this buffer strategy.
    pub fn buffer_strategy(&mut self, strategy: BufferStrategy) -> &mut Self {
        self.buffer_strategy = Some(strategy);
        self
    }

    /// Largest output a call may return (at least 1 byte); larger results
    /// are errors.
    pub fn max_output_size(&mut self, bytes: usize) -> Result<&mut Self> {
        self.max_output_size = at_least_one_byte(bytes, "the output size limit")?;
        Ok(self)
    }

    /// Largest library file the host reads (default 512 MiB); larger files
    /// are refused with [`Status::FileTooLarge`] before they are read.
    pub fn max_library_size(&mut self, bytes: u64) -> Result<&mut Self> {
        self.max_library_size = at_least_one_byte(bytes, "the library size limit")?;
        Ok(self)
    }

    /// Largest package, all its files together (default 512 MiB); a larger
    /// one is refused with [`Status::FileTooLarge`], read no further.
    pub fn max_package_size(&mut self, bytes: u64) -> Result<&mut Self> {
        self.max_package_size = at_least_one_byte(bytes, "the package size limit")?;
        Ok(self)
    }

    /// Default deadline of each call in every runtime that can stop one
    /// (WASM and Python; `None`: no deadline). A runtime's own deadline, when
    /// set, overrides it.
    pub fn call_deadline(&mut self, deadline: Option<Duration>) -> &mut Self {
        self.call_deadline = deadline;
        self
    }

    /// Default deadline of each WASM call (`None`: no deadline), instead of
    /// the call deadline.
    pub fn wasm_deadline(&mut self, deadline: Option<Duration>) -> &mut Self {
        self.runtimes.wasm.deadline = Some(deadline);
        self
    }

    /// Default deadline of each Python call and import (`None`: no
    /// deadline), instead of the call deadline.
    pub fn python_deadline(&mut self, deadline: Option<Duration>) -> &mut Self {
        self.runtimes.python.deadline = Some(deadline);
        self
    }

    /// Where native and Python plugins run by default (loads may say
    /// otherwise): in this process, or each in a worker process.
    pub fn isolation(&mut self, isolation: Isolation) -> &mut Self {
        self.isolation = isolation;
        self
    }

    /// Where unsigned libraries are opened to see what plugins they hold
    /// — by discovery, and by a load by name (which then loads the plugin
    /// found as its isolation says): in this process (the default, the
    /// fastest), or in a worker process, where a library whose loading
    /// crashes or hangs is a skipped file instead of a dead host. With
    /// signatures required only verified bytes are ever mapped, and this
    /// setting is not used.
    pub fn discovery_isolation(&mut self, isolation: Isolation) -> &mut Self {
        self.discovery_isolation = isolation;
        self
    }

    /// The worker executable of isolated plugins (default: the one next
    /// to this library, or in `../libexec` from it).
    pub fn worker_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.workers.executable = Some(path.into());
        self
    }

    /// The address-space cap of each worker process, in bytes (`None`:
    /// none). A plugin that passes it fails to allocate (usually: aborts).
    pub fn worker_memory_limit(&mut self, bytes: Option<u64>) -> Result<&mut Self> {
        if let Some(bytes) = bytes {
            at_least_one_byte(bytes, "the worker memory limit")?;
        }
        self.workers.memory_limit = bytes;
        Ok(self)
    }

    /// The CPU-time cap of each worker process, in whole seconds (`None`:
    /// none): the process is killed (SIGXCPU) when its plugin has used it.
    pub fn worker_cpu_limit(&mut self, seconds: Option<u64>) -> Result<&mut Self> {
        if seconds == Some(0) {
            return Err(Error::new(Status::InvalidArgument, "the worker CPU-time limit must be at least 1 second"));
        }
        self.workers.cpu_limit_seconds = seconds;
        Ok(self)
    }

    /// The confinement each worker process puts itself under (default:
    /// none); see [`Hardening`](crate::runtime::worker::Hardening).
    pub fn worker_hardening(&mut self, hardening: crate::runtime::worker::Hardening) -> &mut Self {
        self.workers.hardening = hardening;
        self
    }

    /// What an isolated plugin's next call does after its worker died.
    pub fn restart_policy(&mut self, policy: RestartPolicy) -> &mut Self {
        self.workers.restarts = policy;
        self
    }

    /// Default cap on a WASM guest's linear memory, in bytes (at least 1).
    pub fn wasm_memory_limit(&mut self, bytes: usize) -> Result<&mut Self> {
        self.runtimes.wasm.memory_limit = wasm::check_memory_limit(bytes)?;
        Ok(self)
    }

    /// Refuses packages that ask for this capability (or, for a prefix such
    /// as `fs` or `env`, any capability under it). It must not be empty.
    pub fn deny_capability(&mut self, capability: impl Into<String>) -> Result<&mut Self> {
        let capability = capability.into();
        wasm::check_capability(&capability)?;
        self.runtimes.wasm.denied_capabilities.push(capability);
        Ok(self)
    }

    /// Whether `.cwasm` files that no verified signature covers may be loaded.
    pub fn allow_unsigned_precompiled(&mut self, allow: bool) -> &mut Self {
        self.runtimes.wasm.allow_unsigned_precompiled = allow;
        self
    }

    /// Keeps compiled WASM components in `dir` (created, mode 0700, when
    /// missing), at most `max_bytes` of them (0: 256 MiB), so that later
    /// processes load them without compiling. The directory and the key
    /// file in it must belong to this user and be writable by nobody else.
    pub fn wasm_compile_cache(&mut self, dir: impl Into<PathBuf>, max_bytes: u64) -> Result<&mut Self> {
        let cache = crate::runtime::wasm::CompileCacheDir {
            dir: dir.into(),
            max_bytes: if max_bytes == 0 { crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES } else { max_bytes },
        };
        if cache.dir.as_os_str().is_empty() {
            return Err(Error::new(Status::InvalidArgument, "the compile cache directory must not be empty"));
        }
        crate::runtime::wasm::open_compile_cache(&cache)?;
        self.runtimes.wasm.compile_cache = Some(cache);
        Ok(self)
    }

    /// Whether every WASM call runs on a fresh instance (default false: one
    /// persistent instance per plugin, state kept between calls).
    pub fn wasm_fresh_instance_per_call(&mut self, fresh: bool) -> &mut Self {
        self.runtimes.wasm.fresh_instance_per_call = fresh;
        self
    }

    /// Takes WASM instances from a pool of `slots` preallocated slots (0,
    /// the default: no pool). Instantiation is then about twice as fast,
    /// which pays with a fresh instance per call; at most `slots` instances
    /// live at once in the host (one per persistent plugin, one per running
    /// fresh call), and each slot reserves address space (not memory) for
    /// a 4 GiB linear memory.
    pub fn wasm_instance_pool(&mut self, slots: u32) -> &mut Self {
        self.runtimes.wasm.instance_pool = slots;
        self
    }

    /// The egress policy of plugins whose load options set none.
    pub fn egress_policy(&mut self, policy: Option<EgressPolicy>) -> &mut Self {
        self.runtimes.wasm.egress = policy;
        self
    }

    /// Builds the host. Fails when signatures are required but no key is
    /// trusted (nothing could ever load).
    pub fn build(&self) -> Result<Host> {
        if self.require_signature && self.trusted_keys.is_empty() {
            return Err(Error::new(
                Status::InvalidArgument,
                "signatures are required but no trusted key was added",
            ));
        }
        Ok(Host {
            config: self.clone(),
            libraries: Mutex::new(HashMap::new()),
            verified_copies: artifact::VerifiedCopies::default(),
            runtimes: Runtimes::default(),
        })
    }
}

/// A size limit must leave room for something.
fn at_least_one_byte<T: Copy + PartialEq + Default>(bytes: T, what: &str) -> Result<T> {
    if bytes == T::default() {
        return Err(Error::new(Status::InvalidArgument, format!("{what} must be at least 1 byte")));
    }
    Ok(bytes)
}

/// Options of one load: the interface the plugin must match, and
/// overrides of the host's runtime settings.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    interface: Option<Arc<Interface>>,
    config: Option<ConfigSource>,
    host_bindings: HostBindings,
    runtimes: RuntimeOverrides,
    isolation: Option<Isolation>,
    restarts: Option<RestartPolicy>,
}

impl LoadOptions {
    /// No interface, nothing overridden.
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Options that ask for `interface` and override nothing.
    pub fn with_interface(interface: Arc<Interface>) -> LoadOptions {
        LoadOptions { interface: Some(interface), ..LoadOptions::default() }
    }

    /// The interface the plugin must match (hash, version, method count);
    /// it also enables JSON calls. Package loads need one.
    pub fn interface(&mut self, interface: Option<Arc<Interface>>) -> &mut Self {
        self.interface = interface;
        self
    }

    /// The interface this load asks for.
    pub fn expected_interface(&self) -> Option<&Arc<Interface>> {
        self.interface.as_ref()
    }

    /// The configuration the plugin's instance is constructed with
    /// (`None`: none, as for a plugin without `config = ...`).
    pub fn config(&mut self, config: Option<ConfigSource>) -> &mut Self {
        self.config = config;
        self
    }

    /// Host functions the plugin may call: bound into a native library
    /// that imports their interface (before any of its code runs for this
    /// load), or answered when a WASM component calls them. One per host
    /// interface name; a later one replaces an earlier one.
    pub fn bind_host_functions(&mut self, binding: Arc<HostBinding>) -> &mut Self {
        self.host_bindings.add(binding);
        self
    }

    /// The configuration checked against the interface's config type; a
    /// type declared and no configuration given is CONFIG_REQUIRED.
    fn plugin_config(&self, plugin: &str) -> Result<Option<PluginConfig>> {
        let config = self.config.as_ref().map(|source| PluginConfig::new(source, self.interface.as_ref())).transpose()?;
        crate::plugin_config::check_required(self.interface.as_deref(), config.as_ref(), plugin)?;
        Ok(config)
    }

    /// Overrides the host's WASM call deadline (`None`: no deadline).
    pub fn wasm_deadline(&mut self, deadline: Option<Duration>) -> &mut Self {
        self.runtimes.wasm.deadline = Some(deadline);
        self
    }

    /// Overrides the host's WASM memory cap (at least 1 byte).
    pub fn wasm_memory_limit(&mut self, bytes: usize) -> Result<&mut Self> {
        self.runtimes.wasm.memory_limit = Some(wasm::check_memory_limit(bytes)?);
        Ok(self)
    }

    /// Overrides the host's egress policy (`None`: the host's applies).
    pub fn egress_policy(&mut self, policy: Option<EgressPolicy>) -> &mut Self {
        self.runtimes.wasm.egress = policy;
        self
    }

    /// Overrides whether each WASM call runs on a fresh instance.
    pub fn wasm_fresh_instance_per_call(&mut self, fresh: bool) -> &mut Self {
        self.runtimes.wasm.fresh_instance_per_call = Some(fresh);
        self
    }

    /// Overrides the host's Python deadline (`None`: no deadline).
    pub fn python_deadline(&mut self, deadline: Option<Duration>) -> &mut Self {
        self.runtimes.python.deadline = Some(deadline);
        self
    }

    /// Overrides the host's isolation for this load.
    pub fn isolation(&mut self, isolation: Isolation) -> &mut Self {
        self.isolation = Some(isolation);
        self
    }

    /// Overrides the host's restart policy for this load.
    pub fn restart_policy(&mut self, policy: RestartPolicy) -> &mut Self {
        self.restarts = Some(policy);
        self
    }
}

/// A configured plugin host. Shareable: every method takes `&self` and may
/// be called from several threads at once.
pub struct Host {
    config: HostBuilder,
    /// Libraries currently mapped by this host's plugin handles.
    libraries: Mutex<HashMap<FileIdentity, Weak<Library>>>,
    /// Sealed copies of libraries this host verified, for loading them again.
    verified_copies: artifact::VerifiedCopies,
    /// The package runtimes, each started at its first load.
    runtimes: Runtimes,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("config", &self.config).finish()
    }
}

impl Host {
    /// The search paths, in scan order.
    pub fn search_paths(&self) -> &[PathBuf] {
        &self.config.search_paths
    }

    /// Lists every plugin in the search paths, and why files were skipped.
    /// Packages are listed from their manifest (nothing of them runs); their
    /// interface hash is 0 until a load checks it against an interface.
    pub fn discover(&self) -> Discovery {
        let mut found = Discovery::default();
        let mut probe = None;
        for candidate in discovery::candidates(&self.config.search_paths) {
            let entry = match candidate {
                Ok(Candidate::Library(path)) if self.probes_in_worker() => {
                    match self.describe_in_worker(&mut probe, &path) {
                        Ok((plugins, rejected)) => self.list_library(&mut found, &path, plugins, rejected),
                        Err(error) => found.skipped.push(Skipped { path, error }),
                    }
                    continue;
                }
                Ok(candidate) => self.entry(candidate),
                Err(skip) => Err(skip),
            };
            match entry {
                Err(skip) => found.skipped.push(skip),
                Ok(Entry::Library(library)) => {
                    let plugins = library.plugins().iter().map(|p| p.description.info.clone()).collect();
                    self.list_library(&mut found, library.path(), plugins, library.rejected().to_vec());
                }
                Ok(Entry::Package(dir, manifest)) => match package_info(&dir, &manifest) {
                    Ok(info) => found.plugins.push(info),
                    Err(error) => found.skipped.push(Skipped { path: dir, error }),
                },
            }
        }
        found
    }

    /// Adds what library `path` holds to `found`: the plugins that meet
    /// the host's expectations, and everything else as skipped.
    fn list_library(&self, found: &mut Discovery, path: &Path, plugins: Vec<PluginInfo>, rejected: Vec<Error>) {
        for info in plugins {
            match self.check_expectations(&info) {
                Ok(()) => found.plugins.push(info),
                Err(error) => found.skipped.push(Skipped { path: info.path.clone(), error }),
            }
        }
        found.skipped.extend(rejected.into_iter().map(|error| Skipped { path: path.to_path_buf(), error }));
    }

    /// The plugins of library `path` (as their descriptors say, before the
    /// host's expectations) and the errors of its invalid descriptors. It
    /// is mapped in this process.
    pub fn library_listing(&self, path: &Path) -> Result<(Vec<PluginInfo>, Vec<Error>)> {
        let library = self.open_library(path).map_err(|skipped| skipped.error)?;
        Ok((library.plugins().iter().map(|p| p.description.info.clone()).collect(), library.rejected().to_vec()))
    }

    /// Whether unsigned libraries are opened in a worker to be listed.
    fn probes_in_worker(&self) -> bool {
        self.config.discovery_isolation == Isolation::Isolated && !self.config.require_signature
    }

    /// [`Host::library_listing`] in a worker process (`probe`, started on
    /// first use and kept for the next library): a library whose loading
    /// crashes or hangs is an error naming how, and the next one gets a
    /// new worker.
    fn describe_in_worker(&self, probe: &mut Option<worker::Probe>, path: &Path) -> Result<(Vec<PluginInfo>, Vec<Error>)> {
        let spec = self.worker_spec(path, None, &LoadOptions::default())?;
        let request = spec.request.clone();
        probe.get_or_insert_with(|| worker::Probe::new(spec)).describe(request)
    }

    /// Loads the plugin called `name` from the first library in the search
    /// paths that has it. Libraries that fail to load are skipped; if the
    /// name is not found, the error lists them.
    pub fn load(&self, name: &str) -> Result<Plugin> {
        self.load_with(name, &LoadOptions::default())
    }

    /// [`Host::load`] with options.
    pub fn load_with(&self, name: &str, options: &LoadOptions) -> Result<Plugin> {
        if self.isolated(options) || self.probes_in_worker() {
            return self.load_by_name_through_worker(name, options);
        }
        let mut skipped = Vec::new();
        for entry in self.entries() {
            match entry {
                Err(skip) => skipped.push(skip),
                Ok(Entry::Library(library)) => {
                    if let Some(index) = library.plugins().iter().position(|p| p.description.info.name == name) {
                        return self.instantiate(library, index, options);
                    }
                }
                Ok(Entry::Package(dir, manifest)) if manifest.package.name == name => {
                    return self.load_package(&dir, Some(name), options)
                }
                Ok(Entry::Package(..)) => {}
            }
        }
        Err(not_found(name, &self.config.search_paths, &skipped, self.config.max_library_size))
    }

    /// Checks the signature of a library file or package directory against
    /// the trusted keys (whether or not signatures are required), without
    /// loading anything.
    pub fn verify(&self, path: &Path) -> Result<()> {
        if self.config.trusted_keys.is_empty() {
            return Err(Error::at(Status::InvalidArgument, path, "cannot verify: no trusted key was added"));
        }
        let keys = self.config.trusted_keys.as_slice();
        if artifact::archive::is_archive(path) {
            return artifact::archive::read(path, self.config.max_package_size)?.verify(path, keys);
        }
        if Package::is_package(path) {
            return Package::open(path, Some(keys), self.config.max_package_size).map(drop);
        }
        artifact::verify_library(path, keys, self.config.max_library_size)
    }

    /// Unpacks the `.fid` archive at `archive` into `dest` (created when
    /// missing) and returns the package's directory, `dest/{name}-{version}`,
    /// which must not exist yet. The archive is read and checked whole
    /// first; when signatures are required its `package.sig` must verify
    /// over the files read, before anything is written.
    pub fn unpack_archive(&self, archive: &Path, dest: &Path) -> Result<PathBuf> {
        let keys = self.config.require_signature.then_some(self.config.trusted_keys.as_slice());
        artifact::archive::unpack(archive, dest, keys, self.config.max_package_size)
    }

    /// Loads a plugin from one library file or package directory. `name`
    /// may be `None` when the library holds exactly one plugin (a package
    /// always holds one).
    pub fn load_path(&self, path: &Path, name: Option<&str>) -> Result<Plugin> {
        self.load_path_with(path, name, &LoadOptions::default())
    }

    /// [`Host::load_path`] with options.
    pub fn load_path_with(&self, path: &Path, name: Option<&str>, options: &LoadOptions) -> Result<Plugin> {
        if self.isolated(options) && self.runs_in_worker(path)? {
            return self.load_isolated(path, name, options);
        }
        if Package::is_package(path) || artifact::archive::is_archive(path) {
            return self.load_package(path, name, options);
        }
        let library = self.open_library(path).map_err(|skip| skip.error)?;
        let names = || library.plugins().iter().map(|p| p.description.info.name.as_str()).collect::<Vec<_>>().join(", ");
        let index = match name {
            Some(name) => library.plugins().iter().position(|p| p.description.info.name == name).ok_or_else(|| {
                Error::at(Status::PluginNotFound, path, format!("no plugin named '{name}' (it has: [{}])", names()))
            })?,
            None => match library.plugins().len() {
                1 => 0,
                0 => return Err(Error::at(Status::PluginNotFound, path, "the library holds no valid plugin")),
                n => {
                    return Err(Error::at(
                        Status::AmbiguousPlugin,
                        path,
                        format!("the library holds {n} plugins ([{}]); name the one to load", names()),
                    ))
                }
            },
        };
        self.instantiate(library, index, options)
    }

    /// Loads the plugin of a package directory or `.fid` archive: verified
    /// first when signatures are required, then handed to its runtime.
    fn load_package(&self, dir: &Path, name: Option<&str>, options: &LoadOptions) -> Result<Plugin> {
        let trusted = self.config.require_signature.then_some(self.config.trusted_keys.as_slice());
        let package = if artifact::archive::is_archive(dir) {
            Package::from_archive(dir, trusted, self.config.max_package_size)?
        } else {
            Package::open(dir, trusted, self.config.max_package_size)?
        };
        let manifest = package.manifest();
        if let Some(name) = name.filter(|n| *n != manifest.package.name) {
            return Err(Error::at(
                Status::PluginNotFound,
                dir,
                format!("the package holds '{}', not '{name}'", manifest.package.name),
            ));
        }
        let config = options.plugin_config(&manifest.package.name).map_err(|e| e.context(&dir.display().to_string()))?;
        let load = PackageLoad {
            package: &package,
            config: config.as_ref(),
            interface: options.interface.as_ref(),
            host_bindings: &options.host_bindings,
            max_output: self.config.max_output_size,
            call_deadline: self.config.call_deadline,
        };
        let plugin = self.runtimes.load_package(&load, &self.config.runtimes, &options.runtimes)?;
        if let Some(interface) = &options.interface {
            check_interface(plugin.description(), interface)?;
        }
        self.check_expectations(plugin.info())?;
        Ok(plugin)
    }

    fn isolated(&self, options: &LoadOptions) -> bool {
        options.isolation.unwrap_or(self.config.isolation) == Isolation::Isolated
    }

    /// Whether an isolated load of `path` goes to a worker: libraries and
    /// Python packages do; WASM packages are sandboxed in-process.
    fn runs_in_worker(&self, path: &Path) -> Result<bool> {
        let manifest = if Package::is_package(path) {
            Package::read_manifest(path)?
        } else if artifact::archive::is_archive(path) {
            Package::from_archive(path, None, self.config.max_package_size)?.manifest().clone()
        } else {
            return Ok(true);
        };
        Ok(runtime::package_kind(path, &manifest)? != RuntimeKind::Wasm)
    }

    /// How a worker would load `path`: this host's settings, the load's.
    fn worker_spec(&self, path: &Path, name: Option<&str>, options: &LoadOptions) -> Result<WorkerSpec> {
        let python = Package::is_package(path) || artifact::archive::is_archive(path);
        let deadline = match python {
            true => options.runtimes.python.deadline.or(self.config.runtimes.python.deadline).unwrap_or(self.config.call_deadline),
            false => self.config.call_deadline,
        };
        let request = LoadRequest {
            path: path.to_path_buf(),
            name: name.map(str::to_string),
            interface: options.interface.as_deref().map(crate::interface::file::to_toml),
            config: options.config.clone(),
            host_interfaces: options.host_bindings.iter().map(|b| crate::interface::file::to_toml(b.interface())).collect(),
            require_signature: self.config.require_signature,
            trusted_keys: self.config.trusted_keys.iter().map(TrustedKey::to_bytes).collect(),
            lenient: self.config.load_policy == LoadPolicy::Lenient,
            max_library_size: self.config.max_library_size,
            max_package_size: self.config.max_package_size,
            max_output: self.config.max_output_size as u64,
            memory_limit: self.config.workers.memory_limit,
            cpu_limit_seconds: self.config.workers.cpu_limit_seconds,
            hardening: self.config.workers.hardening,
        };
        Ok(WorkerSpec {
            executable: WorkerSpec::executable(&self.config.workers)?,
            request,
            host_bindings: options.host_bindings.iter().cloned().collect(),
            interface: options.interface.clone(),
            deadline,
            restarts: options.restarts.unwrap_or(self.config.workers.restarts),
            max_output: self.config.max_output_size,
        })
    }

    /// Loads the plugin at `path` in a worker process of its own.
    fn load_isolated(&self, path: &Path, name: Option<&str>, options: &LoadOptions) -> Result<Plugin> {
        let (description, backend) = worker::start(self.worker_spec(path, name, options)?)?;
        self.isolated_plugin(description, backend, options)
    }

    /// The plugin called `name`, from the first candidate of the search
    /// paths that has it, every library probed by a worker process (one
    /// that crashes its loader is a skipped file): loaded in that worker
    /// when the load is isolated — no library is mapped here then — or,
    /// found by the worker's listing, loaded in-process.
    fn load_by_name_through_worker(&self, name: &str, options: &LoadOptions) -> Result<Plugin> {
        let mut skipped = Vec::new();
        let mut probe: Option<worker::Probe> = None;
        for candidate in discovery::candidates(&self.config.search_paths) {
            let path = match candidate {
                Err(skip) => {
                    skipped.push(skip);
                    continue;
                }
                Ok(Candidate::Library(path)) => path,
                Ok(Candidate::Package(dir)) => match Package::read_manifest(&dir) {
                    Ok(manifest) if manifest.package.name == name => return self.load_path_with(&dir, Some(name), options),
                    Ok(_) => continue,
                    Err(error) => {
                        skipped.push(Skipped { path: dir, error });
                        continue;
                    }
                },
                Ok(Candidate::Archive(path)) => match Package::from_archive(&path, None, self.config.max_package_size) {
                    Ok(package) if package.manifest().package.name == name => return self.load_path_with(&path, Some(name), options),
                    Ok(_) => continue,
                    Err(error) => {
                        skipped.push(Skipped { path, error });
                        continue;
                    }
                },
            };
            if !self.isolated(options) {
                match self.describe_in_worker(&mut probe, &path) {
                    Ok((plugins, _)) if plugins.iter().any(|p| p.name == name) => return self.load_path_with(&path, Some(name), options),
                    Ok(_) => {}
                    Err(error) if error.status() == Status::WorkerUnavailable => return Err(error),
                    Err(error) => skipped.push(Skipped { path, error }),
                }
                continue;
            }
            let spec = self.worker_spec(&path, Some(name), options)?;
            let request = spec.request.clone();
            let probe = probe.get_or_insert_with(|| worker::Probe::new(spec));
            match probe.try_load(request) {
                Ok((description, backend)) => return self.isolated_plugin(description, backend, options),
                Err(error) if error.status() == Status::PluginNotFound => {}
                Err(error) if error.status() == Status::WorkerUnavailable => return Err(error),
                // Found, but refused (a mismatch, a configuration): the load's answer.
                Err(error) if is_refusal_of_the_plugin(&error) => return Err(error),
                Err(error) => skipped.push(Skipped { path, error }),
            }
        }
        Err(not_found(name, &self.config.search_paths, &skipped, self.config.max_library_size))
    }

    /// The plugin handle of a plugin a worker loaded, checked as an
    /// in-process load would be.
    fn isolated_plugin(&self, description: PluginDescription, backend: worker::IsolatedPlugin, options: &LoadOptions) -> Result<Plugin> {
        self.check_expectations(&description.info)?;
        if let Some(interface) = &options.interface {
            check_interface(&description, interface)?;
        }
        Ok(Plugin::new(description, Box::new(backend)).with_interface(options.interface.clone()))
    }

    fn instantiate(&self, library: Arc<Library>, index: usize, options: &LoadOptions) -> Result<Plugin> {
        let description = &library.plugins()[index].description;
        self.check_expectations(&description.info)?;
        if let Some(interface) = &options.interface {
            check_interface(description, interface)?;
        }
        let config = options.plugin_config(&description.info.name).map_err(|e| e.context(&library.path().display().to_string()))?;
        let plugin = cdylib::instantiate(library, index, self.config.max_output_size, config.as_ref(), &options.host_bindings)?;
        Ok(plugin.with_interface(options.interface.clone()))
    }

    /// The builder's expected interface hash and buffer strategy.
    fn check_expectations(&self, info: &PluginInfo) -> Result<()> {
        if let Some(expected) = self.config.interface_hash {
            if info.interface_hash != expected {
                return Err(Error::at(
                    Status::InterfaceHashMismatch,
                    &info.path,
                    format!(
                        "plugin '{}': interface hash mismatch: expected {expected:#018x}, found {:#018x} (interface {})",
                        info.name, info.interface_hash, info.interface_name
                    ),
                )
                .mismatch(expected, info.interface_hash));
            }
        }
        if let Some(expected) = self.config.buffer_strategy {
            if info.buffer_strategy != expected {
                return Err(Error::at(
                    Status::BufferStrategyMismatch,
                    &info.path,
                    format!(
                        "plugin '{}': buffer strategy mismatch: expected {expected:?}, found {:?}",
                        info.name, info.buffer_strategy
                    ),
                )
                .mismatch(expected as u64, info.buffer_strategy as u64));
            }
        }
        Ok(())
    }

    /// Every plugin source of the search paths: libraries mapped one at a
    /// time as the iterator advances (and unmapped again unless the caller
    /// keeps them), packages with their manifest read.
    fn entries(&self) -> impl Iterator<Item = std::result::Result<Entry, Skipped>> + '_ {
        discovery::candidates(&self.config.search_paths).into_iter().map(|candidate| self.entry(candidate?))
    }

    /// A candidate opened: a library mapped, a package's manifest read.
    fn entry(&self, candidate: Candidate) -> std::result::Result<Entry, Skipped> {
        match candidate {
            Candidate::Library(path) => self.open_library(&path).map(Entry::Library),
            Candidate::Package(dir) => match Package::read_manifest(&dir) {
                Ok(manifest) => Ok(Entry::Package(dir, manifest)),
                Err(error) => Err(Skipped { path: dir, error }),
            },
            // Read whole and checked (signatures are checked at load).
            Candidate::Archive(path) => match Package::from_archive(&path, None, self.config.max_package_size) {
                Ok(package) => Ok(Entry::Package(path, package.manifest().clone())),
                Err(error) => Err(Skipped { path, error }),
            },
        }
    }

    /// Maps a library once per file version; later calls share the mapping.
    fn open_library(&self, path: &Path) -> std::result::Result<Arc<Library>, Skipped> {
        let skip = |error: Error| Skipped { path: path.to_path_buf(), error };
        // The identity of the file opened, not of whatever the path names later.
        let file = RegularFile::open(path, Links::Follow).map_err(skip)?;
        let identity = FileIdentity::of_open(path, &file);
        // Held across the load so two threads never map the same file twice.
        let mut libraries = self.libraries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(library) = libraries.get(&identity).and_then(Weak::upgrade) {
            return Ok(library);
        }
        let trust = self
            .config
            .require_signature
            .then_some(artifact::Trust { keys: &self.config.trusted_keys, copies: &self.verified_copies });
        let mapped = artifact::open_library(path, file, trust, self.config.max_library_size).map_err(skip)?;
        let library = Arc::new(Library::new(path, mapped, self.config.load_policy).map_err(skip)?);
        libraries.retain(|_, weak| weak.strong_count() > 0);
        libraries.insert(identity, Arc::downgrade(&library));
        Ok(library)
    }
}

/// A plugin matches an interface when hash, version and method count agree.
fn check_interface(description: &PluginDescription, interface: &Interface) -> Result<()> {
    let info = &description.info;
    let mismatch = |status: Status, what: &str, values: (u64, u64), expected: String, found: String| {
        Err(Error::at(
            status,
            &info.path,
            format!(
                "plugin '{}' does not match interface {}: {what} mismatch: expected {expected}, found {found}",
                info.name,
                interface.name()
            ),
        )
        .mismatch(values.0, values.1))
    };
    if info.interface_hash != interface.hash() {
        return mismatch(
            Status::InterfaceHashMismatch,
            "interface hash",
            (interface.hash(), info.interface_hash),
            format!("{:#018x}", interface.hash()),
            format!("{:#018x} (interface {})", info.interface_hash, info.interface_name),
        );
    }
    if info.interface_version != interface.version() {
        return mismatch(
            Status::InterfaceVersionMismatch,
            "interface version",
            (u64::from(interface.version()), u64::from(info.interface_version)),
            interface.version().to_string(),
            info.interface_version.to_string(),
        );
    }
    let methods = interface.methods().len();
    if description.method_count as usize != methods {
        return mismatch(
            Status::MethodCountMismatch,
            "method count",
            (methods as u64, u64::from(description.method_count)),
            methods.to_string(),
            description.method_count.to_string(),
        );
    }
    Ok(())
}

/// Whether a failed load by name found the plugin and refused it (rather
/// than the file failing to be a library with that plugin).
fn is_refusal_of_the_plugin(error: &Error) -> bool {
    matches!(
        error.status(),
        Status::InterfaceHashMismatch
            | Status::InterfaceVersionMismatch
            | Status::MethodCountMismatch
            | Status::ConfigRequired
            | Status::ConfigInvalid
            | Status::ConfigRejected
            | Status::ConstructFailed
    )
}

/// A plugin source in the search paths.
enum Entry {
    Library(Arc<Library>),
    Package(PathBuf, Manifest),
}

/// What discovery says of a package before anything of it is loaded.
fn package_info(dir: &Path, manifest: &Manifest) -> Result<PluginInfo> {
    let runtime = runtime::package_kind(dir, manifest)?;
    Ok(PluginInfo {
        name: manifest.package.name.clone(),
        interface_name: manifest.package.interface.clone(),
        interface_hash: 0,
        interface_version: manifest.package.interface_version,
        capabilities: 0,
        buffer_strategy: BufferStrategy::PluginAllocated,
        runtime,
        path: dir.to_path_buf(),
    })
}

/// No plugin called `name` was found. When a library that was refused (for
/// its signature, say) holds the name as the C string a fidius descriptor
/// points to — it was never mapped, so its registry cannot be asked — the
/// refusal is the status and leads the message, as a load by its path
/// would report it.
fn not_found(name: &str, search_paths: &[PathBuf], skipped: &[Skipped], max_library_size: u64) -> Error {
    const LISTED: usize = 10;
    let paths: Vec<String> = search_paths.iter().map(|p| p.display().to_string()).collect();
    let mut message = format!("no plugin named '{}' in the search paths [{}]", Quoted(name), Quoted(&paths.join(", ")));
    if !skipped.is_empty() {
        message.push_str(&format!("; {} file(s) were skipped: ", skipped.len()));
        let reasons: Vec<&str> = skipped.iter().take(LISTED).map(|s| s.error.message()).collect();
        message.push_str(&reasons.join("; "));
        if skipped.len() > LISTED {
            message.push_str(&format!("; and {} more", skipped.len() - LISTED));
        }
    }
    // Each look reads a file: a failed load reads a bounded number of them.
    const LOOKED_AT: usize = 16;
    let refused = skipped.iter().take(LOOKED_AT).find(|s| library_mentions(&s.path, name, max_library_size));
    match refused {
        Some(refusal) => Error::new(refusal.error.status(), format!("{}; {message}", refusal.error.message())),
        None => Error::new(Status::PluginNotFound, message),
    }
}

/// Whether the library at `path` holds `name` as a NUL-terminated string.
fn library_mentions(path: &Path, name: &str, max_library_size: u64) -> bool {
    let limit = crate::disk::Limit::new(max_library_size, "library file");
    let Ok(bytes) = crate::disk::read(path, crate::disk::Links::Follow, limit) else { return false };
    let needle = [name.as_bytes(), b"\0"].concat();
    !name.is_empty() && bytes.windows(needle.len()).any(|window| window == needle)
}

/// Compiles a WebAssembly component ahead of time for this library (same
/// wasmtime version and settings): the `.cwasm` a package may carry next to
/// its component. UNSUPPORTED in a build without WASM.
pub fn precompile_component(component: &[u8]) -> Result<Vec<u8>> {
    runtime::precompile_component(component)
}

/// Whether this build has the runtime of `kind` (native libraries always).
pub fn runtime_built_in(kind: RuntimeKind) -> bool {
    runtime::built_in(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rust callers get the checks C callers get, where they set the option.
    #[test]
    fn options_are_checked_where_they_are_set() {
        let mut builder = HostBuilder::new();
        let refused = |result: Result<&mut HostBuilder>| result.map(drop).unwrap_err().status();
        assert_eq!(refused(builder.max_output_size(0)), Status::InvalidArgument);
        assert_eq!(refused(builder.max_library_size(0)), Status::InvalidArgument);
        assert_eq!(refused(builder.max_package_size(0)), Status::InvalidArgument);
        assert_eq!(refused(builder.wasm_memory_limit(0)), Status::InvalidArgument);
        assert_eq!(refused(builder.deny_capability("")), Status::InvalidArgument);
        assert!(builder.max_output_size(1).is_ok() && builder.deny_capability("fs").is_ok());
        let mut options = LoadOptions::new();
        assert_eq!(options.wasm_memory_limit(0).map(drop).unwrap_err().status(), Status::InvalidArgument);
        assert_eq!(LoadPolicy::try_from(2).unwrap_err().status(), Status::InvalidArgument);
        assert_eq!(BufferStrategy::try_from(0).unwrap_err().status(), Status::InvalidArgument);
        assert_eq!(BufferStrategy::try_from(2).unwrap(), BufferStrategy::Arena);
        let unkeyed = HostBuilder::new().require_signature(true).build().unwrap_err();
        assert_eq!(unkeyed.status(), Status::InvalidArgument);
    }
}
