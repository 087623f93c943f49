//! The commented TOML template of every declared setting at its default.

use std::fmt::Write;

use std::collections::{BTreeMap, BTreeSet};

use super::registry::{Group, SettingInfo};

/// A commented TOML file of every declared setting at its default, grouped in tables. Loading
/// it back gives the default values; settings without a default are written commented out.
///
/// # Examples
///
/// ```
/// let text = ginkgo_config::template();
/// assert!(text.starts_with('#'));
/// ```
pub fn template() -> String {
    // Groups sorted by path, settings in the order they are declared.
    let mut by_group: BTreeMap<&str, Vec<SettingInfo>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for group in inventory::iter::<Group> {
        let settings = by_group.entry(group.path).or_default();
        for info in (group.settings)() {
            if seen.insert(info.path.clone()) {
                settings.push(info);
            }
        }
    }
    let mut out = String::from(
        "# Configuration of every declared setting, at its default.\n\
         # Uncommented values load back to these same defaults.\n",
    );
    for (group, settings) in by_group {
        out.push('\n');
        if !group.is_empty() {
            let _ = writeln!(out, "[{group}]");
        }
        for info in settings {
            let key = info.path.rsplit('.').next().unwrap_or(&info.path);
            for line in wrap(info.help, 88) {
                let _ = writeln!(out, "# {line}");
            }
            let _ = writeln!(out, "# type: {}", info.type_name);
            match &info.default {
                Some(value) => {
                    let _ = writeln!(out, "{key} = {value}");
                }
                None => {
                    let _ = writeln!(out, "# {key} =   (unset by default)");
                }
            }
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
