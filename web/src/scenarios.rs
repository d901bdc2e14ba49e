//! The scenarios and their narrations, from `web/narration/<key>.toml`: read on every request,
//! so a presenter edits the words while the demo runs, without rebuilding anything.
//!
//! ```toml
//! id = "S1"
//! title = "Transfer"
//! sentence = "Transfer $1,000 from checking to savings."   # what the button asks Charlie
//! hint = ""                                                  # for scenarios without a sentence
//! action = ""               # or a control: "kill_session" (S5), "attack" (S6: a toggle picker)
//! intro = "What the audience should watch for."
//! [hops]                                                     # said before each hop (presenter mode)
//! exchange = "Charlie asks the identity provider for a token for this one transfer."
//! ```

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

use crate::views::ScenarioButton;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(skip)]
    pub key: String,
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub sentence: String,
    #[serde(default)]
    pub hint: String,
    /// A control instead of a sentence: `kill_session` (S5), `attack` (S6: the button runs the
    /// attack toggle picked next to it).
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub intro: String,
    /// Narration by hop name (`plan`, `exchange`, `dispatch`, `approval`, `issuance`, `sql`, ...);
    /// `"exchange.2"` names the second pause of that hop in one run.
    #[serde(default)]
    pub hops: BTreeMap<String, String>,
}

/// Every scenario file in `dir`, by file name. A file whose name is not a plain id is skipped;
/// one that does not parse is skipped and logged (the presenter sees the others, and the log
/// says which line is wrong).
pub fn load(dir: &Path) -> Vec<Scenario> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "no narration directory: no scenario buttons");
        return vec![];
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| find(dir, p.file_stem()?.to_str()?))
        .collect()
}

/// One scenario by key (`s1`): `dir/<key>.toml`, if the key is a plain id and the file parses.
/// Presenter mode polls with it, so it reads that one file, not the directory.
pub fn find(dir: &Path, key: &str) -> Option<Scenario> {
    if !kit::plain_id(key) {
        return None;
    }
    let path = dir.join(format!("{key}.toml"));
    let text = std::fs::read_to_string(&path).ok()?;
    match toml::from_str::<Scenario>(&text) {
        Ok(s) => Some(Scenario {
            key: key.to_owned(),
            ..s
        }),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "skipping a narration file");
            None
        }
    }
}

pub fn buttons(dir: &Path) -> Vec<ScenarioButton> {
    load(dir)
        .into_iter()
        .map(|s| ScenarioButton {
            key: s.key,
            id: s.id,
            title: s.title,
            sentence: s.sentence,
            hint: s.hint,
            action: s.action,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped narration files parse, and each scenario the demo steps through is there.
    #[test]
    fn the_shipped_scenarios_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("narration");
        let all = load(&dir);
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["S1", "S2", "S3", "S4", "S5", "S6"], "{all:?}");
        let s1 = find(&dir, "s1").expect("s1");
        assert!(
            find(&dir, "../narration/s1").is_none(),
            "a key is a file name, not a path"
        );
        assert_eq!(s1.sentence, "Transfer $1,000 from checking to savings.");
        for hop in ["plan", "exchange", "dispatch"] {
            assert!(s1.hops.contains_key(hop), "s1 narrates {hop}");
        }
    }

    #[test]
    fn a_broken_file_is_skipped_not_fatal() {
        let dir = std::env::temp_dir().join(format!("narration-{}", kit::random_id(6)));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a.toml"), "id = \"A\"\ntitle = \"ok\"\n").expect("write");
        std::fs::write(dir.join("b.toml"), "id = \n").expect("write");
        let all = load(&dir);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].key, "a");
        std::fs::remove_dir_all(&dir).ok();
    }
}
