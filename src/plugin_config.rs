//! Configurations of plugin instances (`#[plugin_impl(Trait, config = C)]`
//! in fidius): given as bincode or JSON, checked against the config type
//! the interface declares, and kept in the forms the runtimes take —
//! bincode for cdylib and WASM plugins, a JSON value for Python plugins
//! (which fidius hands `serde_json` of the config).

use crate::error::{Error, Result, Status};
use crate::interface::{json, ConfigType, Interface};
use serde_json::Value;
use std::sync::Arc;

/// A configuration as the caller gave it. Its `Debug` shows only its form
/// and size: configurations may hold secrets.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ConfigSource {
    /// bincode of the config type.
    Bincode(Vec<u8>),
    /// JSON text, in the form docs/interfaces.md gives each type.
    Json(String),
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Bincode(bytes) => write!(f, "Bincode({} bytes)", bytes.len()),
            ConfigSource::Json(text) => write!(f, "Json({} bytes)", text.len()),
        }
    }
}

/// A configuration, checked against the interface's config type when it
/// declares one.
#[derive(Clone, PartialEq)]
pub struct PluginConfig {
    /// `None` for JSON without a declared type.
    bincode: Option<Vec<u8>>,
    /// JSON without a declared type, as given.
    untyped: Option<Value>,
    /// The interface that declares the config type, if it does.
    declared: Option<Arc<Interface>>,
}

impl std::fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let typed = self.declared.as_ref().and_then(|i| i.config_type()).map(|c| c.text.as_str());
        write!(f, "PluginConfig {{ bincode: {:?} bytes, typed: {typed:?} }}", self.bincode.as_ref().map(Vec::len))
    }
}

impl PluginConfig {
    /// Checks `source` against the config type of `interface`, if any.
    /// Without a declared type, bincode is passed on as it is and JSON
    /// reaches only the runtimes that take JSON (Python).
    pub fn new(source: &ConfigSource, interface: Option<&Arc<Interface>>) -> Result<PluginConfig> {
        let declared = interface.filter(|i| i.config_type().is_some());
        let invalid = |config: &ConfigType, e: String| {
            Error::new(Status::ConfigInvalid, format!("the configuration is not a valid {}: {e}", config.text))
        };
        match source {
            ConfigSource::Bincode(bytes) => {
                check_config_size(bytes.len())?;
                if let Some(interface) = declared {
                    let config = interface.config_type().expect("declared");
                    json::check_value(interface, &config.ty, bytes).map_err(|e| invalid(config, e))?;
                }
                Ok(PluginConfig { bincode: Some(bytes.clone()), untyped: None, declared: declared.cloned() })
            }
            ConfigSource::Json(text) => {
                check_config_size(text.len())?;
                let value: Value = serde_json::from_str(text)
                    .map_err(|e| Error::new(Status::InvalidJson, format!("the configuration is not valid JSON: {e}")))?;
                match declared {
                    None => Ok(PluginConfig { bincode: None, untyped: Some(value), declared: None }),
                    Some(interface) => {
                        let config = interface.config_type().expect("declared");
                        let bytes = json::encode_value(interface, &config.ty, &value).map_err(|e| invalid(config, e))?;
                        Ok(PluginConfig { bincode: Some(bytes), untyped: None, declared: Some(interface.clone()) })
                    }
                }
            }
        }
    }

    /// The bincode of the configuration, for plugin `plugin`.
    pub fn bincode(&self, plugin: &str) -> Result<&[u8]> {
        self.bincode.as_deref().ok_or_else(|| {
            Error::new(
                Status::ConfigInvalid,
                format!(
                    "plugin '{plugin}' takes its configuration as bincode: a JSON configuration needs the config type \
                     declared in the interface (`config = \"Type\"`)"
                ),
            )
        })
    }

    /// The configuration as it could be given again: bincode when there is
    /// any, else the JSON as given.
    pub fn source(&self) -> ConfigSource {
        match (&self.bincode, &self.untyped) {
            (Some(bytes), _) => ConfigSource::Bincode(bytes.clone()),
            (None, Some(value)) => ConfigSource::Json(value.to_string()),
            (None, None) => ConfigSource::Bincode(Vec::new()),
        }
    }

    /// The configuration as a JSON value, for plugin `plugin`: with a
    /// declared type, the value its bincode holds (so JSON and bincode give
    /// a plugin the same value); without, the JSON as given.
    pub fn value(&self, plugin: &str) -> Result<Value> {
        if let (Some(interface), Some(bytes)) = (&self.declared, &self.bincode) {
            let config = interface.config_type().expect("declared");
            return json::decode_value(interface, &config.ty, bytes)
                .map_err(|e| Error::new(Status::InternalPanic, format!("a checked configuration does not decode: {e}")));
        }
        self.untyped.clone().ok_or_else(|| {
            Error::new(
                Status::ConfigInvalid,
                format!(
                    "plugin '{plugin}' takes its configuration as a value: a bincode configuration needs the config \
                     type declared in the interface (`config = \"Type\"`)"
                ),
            )
        })
    }
}

/// A configuration travels whole in memory, so its size is bounded as
/// JSON arguments are.
pub fn check_config_size(len: usize) -> Result<()> {
    if len > json::MAX_ARGS_TEXT {
        return Err(Error::new(
            Status::InputTooLarge,
            format!("the configuration is {len} bytes, more than the limit of {}", json::MAX_ARGS_TEXT),
        ));
    }
    Ok(())
}

/// CONFIG_REQUIRED for plugin `plugin` of an interface that declares a
/// config type, loaded without a configuration.
pub(crate) fn check_required(interface: Option<&Interface>, config: Option<&PluginConfig>, plugin: &str) -> Result<()> {
    match (interface.and_then(Interface::config_type), config) {
        (Some(declared), None) => Err(Error::new(
            Status::ConfigRequired,
            format!(
                "plugin '{plugin}': interface {} declares the config type {}, and no configuration was given \
                 (set one in the load options)",
                interface.map(Interface::name).unwrap_or_default(),
                declared.text
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::{InterfaceBuilder, MethodFlags};

    fn interface(config: Option<&str>) -> Arc<Interface> {
        let mut builder = InterfaceBuilder::new("Scaler", 1).unwrap();
        builder.declare("struct ScaleConfig { factor: i64, label: String }").unwrap();
        builder.method("scale:i64->i64", MethodFlags::default()).unwrap();
        if let Some(config) = config {
            builder.config_type(config).unwrap();
        }
        Arc::new(builder.build().unwrap())
    }

    fn bincode_of(factor: i64, label: &str) -> Vec<u8> {
        let mut out = factor.to_le_bytes().to_vec();
        out.extend((label.len() as u64).to_le_bytes());
        out.extend(label.as_bytes());
        out
    }

    #[test]
    fn json_and_bincode_of_a_declared_type_give_the_same_configuration() {
        let iface = interface(Some("ScaleConfig"));
        let from_json = PluginConfig::new(&ConfigSource::Json(r#"{"factor": 3, "label": "x"}"#.into()), Some(&iface)).unwrap();
        let from_bincode = PluginConfig::new(&ConfigSource::Bincode(bincode_of(3, "x")), Some(&iface)).unwrap();
        assert_eq!(from_json, from_bincode);
        assert_eq!(from_json.bincode("p").unwrap(), bincode_of(3, "x").as_slice());
        assert_eq!(from_json.value("p").unwrap()["factor"], 3);
    }

    #[test]
    fn with_a_declared_type_json_reaches_a_plugin_as_its_bincode_would() {
        let mut builder = InterfaceBuilder::new("Sizer", 1).unwrap();
        builder.method("size:->f64", MethodFlags::default()).unwrap();
        builder.config_type("(f64, i128)").unwrap();
        let iface = Arc::new(builder.build().unwrap());
        let config = PluginConfig::new(&ConfigSource::Json(r#"[3, "-170141183460469231731687303715884105728"]"#.into()), Some(&iface)).unwrap();
        let value = config.value("p").unwrap();
        assert!(value[0].is_f64(), "an f64 field is a float whichever way it was written: {value}");
        let from_bytes = PluginConfig::new(&ConfigSource::Bincode(config.bincode("p").unwrap().to_vec()), Some(&iface)).unwrap();
        assert_eq!(from_bytes.value("p").unwrap(), value);
    }

    #[test]
    fn a_configuration_does_not_show_its_contents_in_debug_output() {
        let secret = ConfigSource::Json(r#"{"password": "hunter2"}"#.into());
        assert!(!format!("{secret:?}").contains("hunter2"));
        let config = PluginConfig::new(&secret, None).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn a_configuration_that_is_not_of_the_declared_type_is_refused() {
        let iface = interface(Some("ScaleConfig"));
        let wrong = PluginConfig::new(&ConfigSource::Json(r#"{"factor": "3", "label": "x"}"#.into()), Some(&iface)).unwrap_err();
        assert_eq!(wrong.status(), Status::ConfigInvalid);
        assert!(wrong.message().contains("ScaleConfig") && wrong.message().contains("factor"), "{}", wrong.message());
        let short = PluginConfig::new(&ConfigSource::Bincode(vec![1, 2, 3]), Some(&iface)).unwrap_err();
        assert_eq!(short.status(), Status::ConfigInvalid);
        let mut long = bincode_of(3, "x");
        long.push(0);
        let long = PluginConfig::new(&ConfigSource::Bincode(long), Some(&iface)).unwrap_err();
        assert!(long.message().contains("1 byte(s) follow"), "{}", long.message());
        let text = PluginConfig::new(&ConfigSource::Json("{".into()), Some(&iface)).unwrap_err();
        assert_eq!(text.status(), Status::InvalidJson);
    }

    #[test]
    fn without_a_declared_type_each_form_reaches_only_its_runtimes() {
        let iface = interface(None);
        let bytes = PluginConfig::new(&ConfigSource::Bincode(vec![9]), Some(&iface)).unwrap();
        assert_eq!(bytes.bincode("p").unwrap(), &[9]);
        assert_eq!(bytes.value("p").unwrap_err().status(), Status::ConfigInvalid);
        let json = PluginConfig::new(&ConfigSource::Json("[1]".into()), None).unwrap();
        assert_eq!(json.bincode("p").unwrap_err().status(), Status::ConfigInvalid);
        assert_eq!(json.value("p").unwrap(), serde_json::json!([1]));
    }

    #[test]
    fn a_declared_config_type_must_be_given_a_configuration() {
        let iface = interface(Some("ScaleConfig"));
        let e = check_required(Some(&*iface), None, "scaler").unwrap_err();
        assert_eq!(e.status(), Status::ConfigRequired);
        assert!(e.message().contains("ScaleConfig"), "{}", e.message());
        assert!(check_required(Some(&*interface(None)), None, "scaler").is_ok());
    }
}
