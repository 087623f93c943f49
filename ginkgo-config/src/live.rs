//! The loaded configuration, live typed values, and reload.

use std::any::{Any, TypeId};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use event_listener::Event;

use super::Settings;
use super::error::{ConfigError, Problem};
use super::load::{Env, Sources, load};
use super::registry::{Registry, SettingInfo, Values};
use super::source::Source;

/// A program's configuration: every declared setting, merged from all layers, reloadable.
///
/// Cheap to clone (it is shared). Services read their settings through [`Live`] handles from
/// [`Config::get`].
///
/// # Examples
///
/// ```
/// use ginkgo_config::{Config, Live, Settings};
/// use ginkgo_macros::Settings;
///
/// /// How often and what to say.
/// #[derive(Settings, serde::Serialize, serde::Deserialize)]
/// #[settings(group = "doc_example", crate = ginkgo_config)]
/// struct Greeting {
///     /// The message to print.
///     #[setting(default = "Hello World")]
///     message: String,
/// }
///
/// let config = Config::builder("demo").set("doc_example.message=hi").no_env().load()?;
/// let greeting: Live<Greeting> = config.get()?;
/// assert_eq!(greeting.get().message, "hi");
/// # Ok::<(), ginkgo_config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    shared: Arc<Shared>,
}

struct Shared {
    program: String,
    sources: Mutex<Sources>,
    values: ArcSwap<Values>,
    slots: Mutex<Vec<Arc<dyn Slot>>>,
    // Serialises reloads, so two reloads never interleave their two phases.
    reloading: Mutex<()>,
    /// Counts the changes a layer made ([`Config::set_layer`]), for whoever reloads the
    /// services on them.
    layer_version: AtomicU64,
    layer_changed: Event,
}

/// Builds a [`Config`]: name the program, add the file and `--set` values, then load.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `load` is called"]
pub struct ConfigBuilder {
    program: String,
    sources: Sources,
}

impl ConfigBuilder {
    /// Reads the TOML file `path` (groups are tables).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.file = Some(path.into());
        self
    }

    /// Reads the file `path` as [`ConfigBuilder::file`] does, except that the first load takes
    /// its contents from `text` (what another process had in force: a prefork worker gets its
    /// master's); reloads read the file.
    pub fn file_text(mut self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        self.sources.file = Some(path.into());
        self.sources.file_text = Some(text.into());
        self
    }

    /// Adds a `PATH=VALUE` assignment from the command line. It outranks the file and the
    /// environment and survives reloads.
    pub fn set(mut self, assignment: impl Into<String>) -> Self {
        self.sources.cli.push(assignment.into());
        self
    }

    /// Uses these variables instead of the process environment.
    pub fn env_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.sources.env = Env::Fixed(vars.into_iter().collect());
        self
    }

    /// Ignores the environment.
    pub fn no_env(mut self) -> Self {
        self.sources.env = Env::Off;
        self
    }

    /// Reads every layer and checks the whole configuration.
    ///
    /// # Errors
    ///
    /// Returns every problem found: unreadable or malformed file (with line and column),
    /// unknown keys (with a suggestion), values of the wrong type, values a validator
    /// rejected. Nothing falls back to a default silently.
    pub fn load(mut self) -> Result<Config, ConfigError> {
        let values = load(&self.sources)?;
        // Given for the first load only: reloads read the file.
        self.sources.file_text = None;
        Ok(Config {
            shared: Arc::new(Shared {
                program: self.program,
                sources: Mutex::new(self.sources),
                values: ArcSwap::from_pointee(values),
                slots: Mutex::new(Vec::new()),
                reloading: Mutex::new(()),
                layer_version: AtomicU64::new(0),
                layer_changed: Event::new(),
            }),
        })
    }
}

/// The environment prefix of a program: its name in capitals, other characters as `_`, then
/// `_`: `my-app` reads `MY_APP_GROUP__KEY`.
pub fn env_prefix(program: &str) -> String {
    let mut prefix: String = program
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    prefix.push('_');
    prefix
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks, so a poisoned one still holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One line of [`Config::entries`]: a setting with its default, value and source.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The declaration.
    pub info: SettingInfo,
    /// The current value (`None`: unset).
    pub value: Option<toml::Value>,
    /// Where the current value came from.
    pub source: Source,
}

impl Config {
    /// Starts building the configuration of `program` (its name sets the environment prefix,
    /// see [`env_prefix`]).
    pub fn builder(program: &str) -> ConfigBuilder {
        ConfigBuilder {
            program: program.to_owned(),
            sources: Sources {
                file: None,
                env_prefix: env_prefix(program),
                env: Env::Process,
                cli: Vec::new(),
                forced: Vec::new(),
                layer: Vec::new(),
                file_text: None,
            },
        }
    }

    /// The program's name.
    pub fn program(&self) -> &str {
        &self.shared.program
    }

    /// The config file, if one was given.
    pub fn file(&self) -> Option<PathBuf> {
        lock(&self.shared.sources).file.clone()
    }

    /// The text of the config file as it was read for the configuration in force: after a
    /// rejected reload, still the text of the last accepted one. `None` without a file.
    pub fn file_text(&self) -> Option<Arc<str>> {
        self.shared.values.load().file_text.clone()
    }

    /// The prefix of environment variables read by this configuration.
    pub fn env_prefix(&self) -> String {
        lock(&self.shared.sources).env_prefix.clone()
    }

    /// The current value at `path` and where it came from.
    pub fn value(&self, path: &str) -> Option<(toml::Value, Source)> {
        self.shared.values.load().get(path).cloned()
    }

    /// Every declared setting with its current value and source, sorted by path.
    pub fn entries(&self) -> Vec<Entry> {
        let values = self.shared.values.load();
        Registry::collect()
            .settings
            .into_values()
            .map(|info| {
                let (value, source) = match values.get(&info.path) {
                    Some((value, source)) => (Some(value.clone()), source.clone()),
                    None => (None, Source::Default),
                };
                Entry {
                    info,
                    value,
                    source,
                }
            })
            .collect()
    }

    /// A live handle to the settings group `S`.
    ///
    /// # Errors
    ///
    /// Only if the current values do not fit `S`, which a successful load has ruled out for
    /// every declared group.
    pub fn get<S: Settings>(&self) -> Result<Live<S>, ConfigError> {
        let mut slots = lock(&self.shared.slots);
        if let Some(slot) = slots
            .iter()
            .find(|slot| slot.settings_type() == TypeId::of::<S>())
        {
            let slot: Arc<dyn Any + Send + Sync> = slot.clone().as_any();
            if let Ok(typed) = slot.downcast::<TypedSlot<S>>() {
                let seen = typed.version.load(Ordering::Acquire);
                return Ok(Live { slot: typed, seen });
            }
        }
        let current = S::from_values(&self.shared.values.load())?;
        let typed = Arc::new(TypedSlot {
            current: ArcSwap::from_pointee(current),
            version: AtomicU64::new(0),
            changed: Event::new(),
        });
        slots.push(typed.clone());
        Ok(Live {
            slot: typed,
            seen: 0,
        })
    }

    /// Re-reads the same sources, checks the whole new configuration, and swaps it in only if
    /// it is valid. Returns the paths whose value changed.
    ///
    /// # Errors
    ///
    /// Returns every problem of the new configuration; the old one stays in force, untouched.
    pub fn reload(&self) -> Result<Vec<String>, ConfigError> {
        let _reloading = lock(&self.shared.reloading);
        let sources = lock(&self.shared.sources).clone();
        let changed = self.apply(&sources)?;
        *lock(&self.shared.sources) = sources;
        Ok(changed)
    }

    /// Forces `path` to `value` (Ginkgo's `set(..., force=True)`): it outranks every other
    /// layer and survives reloads.
    ///
    /// # Errors
    ///
    /// Fails, changing nothing, if the path is not declared or the value does not fit.
    pub fn force(&self, path: &str, value: impl serde::Serialize) -> Result<(), ConfigError> {
        let value = toml::Value::try_from(value).map_err(|err| {
            ConfigError::one(Problem::BadAssignment {
                argument: path.to_owned(),
                reason: format!("the value cannot be written as TOML: {err}"),
            })
        })?;
        let _reloading = lock(&self.shared.reloading);
        let mut sources = lock(&self.shared.sources).clone();
        sources.forced.retain(|(p, _)| p != path);
        sources.forced.push((path.to_owned(), value));
        self.apply(&sources)?;
        *lock(&self.shared.sources) = sources;
        Ok(())
    }

    /// Replaces the layer of a key-value store (`store`, such as `kv:settings`) with `values`:
    /// `(path, value)` pairs, each value TOML text as with `--set` (`8080`, `"text"`). The
    /// layer ranks above the file and below the environment and `--set`, and survives reloads
    /// of the file. The whole new configuration is checked and swapped in only if valid, as
    /// on a reload; the paths that changed are returned, and those waiting in
    /// [`Config::layer_changed`] are woken when any did.
    ///
    /// # Errors
    ///
    /// Every problem of the new configuration (each naming `store/key` as its source); the old
    /// one stays in force, untouched.
    ///
    /// # Examples
    ///
    /// ```
    /// use ginkgo_config::{Config, Settings};
    /// use ginkgo_macros::Settings;
    ///
    /// /// A port.
    /// #[derive(Settings, serde::Serialize, serde::Deserialize)]
    /// #[settings(group = "layer_example", crate = ginkgo_config)]
    /// struct Port {
    ///     /// The port.
    ///     #[setting(default = 80)]
    ///     port: u16,
    /// }
    ///
    /// let config = Config::builder("demo").no_env().load()?;
    /// let changed = config.set_layer("kv:settings", [("layer_example.port", "8080")])?;
    /// assert_eq!(changed, ["layer_example.port"]);
    /// let (_, source) = config.value("layer_example.port").unwrap();
    /// assert_eq!(source.to_string(), "kv:settings/layer_example.port");
    /// assert!(config.set_layer("kv:settings", [("layer_example.port", "\"high\"")]).is_err());
    /// assert_eq!(config.get::<Port>()?.get().port, 8080);
    /// # Ok::<(), ginkgo_config::ConfigError>(())
    /// ```
    pub fn set_layer<I, P, V>(&self, store: &str, values: I) -> Result<Vec<String>, ConfigError>
    where
        I: IntoIterator<Item = (P, V)>,
        P: Into<String>,
        V: Into<String>,
    {
        let store: Arc<str> = store.into();
        let layer: Vec<(String, String, Source)> = values
            .into_iter()
            .map(|(path, value)| {
                let path = path.into();
                let source = Source::Store {
                    store: store.clone(),
                    key: path.clone(),
                };
                (path, value.into(), source)
            })
            .collect();
        let _reloading = lock(&self.shared.reloading);
        let mut sources = lock(&self.shared.sources).clone();
        sources.layer = layer;
        let changed = self.apply(&sources)?;
        *lock(&self.shared.sources) = sources;
        if !changed.is_empty() {
            self.shared.layer_version.fetch_add(1, Ordering::AcqRel);
            self.shared.layer_changed.notify(usize::MAX);
        }
        Ok(changed)
    }

    /// How many times a layer changed a value ([`Config::set_layer`]) so far.
    pub fn layer_version(&self) -> u64 {
        self.shared.layer_version.load(Ordering::Acquire)
    }

    /// Waits until a layer has changed a value since [`Config::layer_version`] was `seen`, and
    /// returns the new version: the runner reloads the services then, as on SIGHUP.
    pub async fn layer_changed(&self, seen: u64) -> u64 {
        loop {
            let version = self.layer_version();
            if version != seen {
                return version;
            }
            let listener = self.shared.layer_changed.listen();
            if self.layer_version() != seen {
                continue;
            }
            listener.await;
        }
    }

    /// Loads `sources`, prepares every live group, then commits all of them: either the whole
    /// new configuration is in force afterwards, or none of it. Returns the changed paths.
    fn apply(&self, sources: &Sources) -> Result<Vec<String>, ConfigError> {
        let values = load(sources)?;
        let slots = lock(&self.shared.slots).clone();
        let mut prepared = Vec::with_capacity(slots.len());
        for slot in &slots {
            prepared.push(slot.prepare(&values)?);
        }
        let old = self.shared.values.swap(Arc::new(values));
        let new = self.shared.values.load();
        for (slot, value) in slots.iter().zip(prepared) {
            let changed = !old.same_group(&new, slot.group());
            slot.commit(value, changed);
        }
        Ok(diff(&old, &new))
    }
}

fn diff(old: &Values, new: &Values) -> Vec<String> {
    let mut paths: Vec<String> = old
        .entries
        .keys()
        .chain(new.entries.keys())
        .filter(|path| old.get(path).map(|v| &v.0) != new.get(path).map(|v| &v.0))
        .cloned()
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("program", &self.program())
            .field("file", &self.file())
            .finish()
    }
}

/// A live group of settings: reads the current values without locking, and can wait for a
/// reload to change them (Ginkgo's `changed`).
pub struct Live<S> {
    slot: Arc<TypedSlot<S>>,
    seen: u64,
}

impl<S> Clone for Live<S> {
    fn clone(&self) -> Self {
        Self {
            slot: self.slot.clone(),
            seen: self.seen,
        }
    }
}

impl<S: Send + Sync + 'static> Live<S> {
    /// The current values (an atomic load of a shared pointer; never blocks).
    pub fn get(&self) -> Arc<S> {
        self.slot.current.load_full()
    }

    /// Waits until a reload changes this group's values, then returns the new ones.
    pub async fn changed(&mut self) -> Arc<S> {
        loop {
            let version = self.slot.version.load(Ordering::Acquire);
            if version != self.seen {
                self.seen = version;
                return self.get();
            }
            let listener = self.slot.changed.listen();
            if self.slot.version.load(Ordering::Acquire) != self.seen {
                continue;
            }
            listener.await;
        }
    }
}

impl<S> std::fmt::Debug for Live<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("type", &std::any::type_name::<S>())
            .finish()
    }
}

/// A group's live value, type-erased so the config can prepare and commit all of them.
trait Slot: Send + Sync {
    fn settings_type(&self) -> TypeId;
    fn group(&self) -> &'static str;
    fn prepare(&self, values: &Values) -> Result<Box<dyn Any + Send>, ConfigError>;
    fn commit(&self, prepared: Box<dyn Any + Send>, changed: bool);
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

struct TypedSlot<S> {
    current: ArcSwap<S>,
    version: AtomicU64,
    changed: Event,
}

impl<S: Settings> Slot for TypedSlot<S> {
    fn settings_type(&self) -> TypeId {
        TypeId::of::<S>()
    }

    fn group(&self) -> &'static str {
        S::GROUP
    }

    fn prepare(&self, values: &Values) -> Result<Box<dyn Any + Send>, ConfigError> {
        Ok(Box::new(S::from_values(values)?))
    }

    fn commit(&self, prepared: Box<dyn Any + Send>, changed: bool) {
        let Ok(value) = prepared.downcast::<S>() else {
            return; // prepared by this same slot, so always an `S`
        };
        self.current.store(Arc::from(value));
        if changed {
            self.version.fetch_add(1, Ordering::AcqRel);
            self.changed.notify(usize::MAX);
        }
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
