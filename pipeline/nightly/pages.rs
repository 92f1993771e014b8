//! What render keeps for the next run (`OUT/cache/pages/`): a digest of
//! every page's inputs, so that a night renders only the pages whose
//! inputs changed and links the others from the published site.
//!
//! A page's inputs are its template, its context (the rows it shows, its
//! links, its locale) and the program. The context is hashed value by
//! value, without the parts every page shares (labels, style
//! sheet, script), which the folder's fingerprint covers with the program,
//! the policy text and the templates' sources. A page is linked only when
//! its digest is the one kept for its path and the published file is the
//! one this store saw written (same size and modification time), so a
//! published file edited or replaced by hand is rendered again. The folder
//! holds `digests.json` (page -> digest: the same for the same inputs),
//! `stamps.json` (page -> size and time) and `fingerprint`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use minijinja::value::{Value, ValueKind};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use xxhash_rust::xxh3::Xxh3;

use super::CacheFolder;
use crate::lake::{OutDir, Staging};
use crate::policy::{hex, LoadedPolicy};

/// Changes whenever what the folder holds, or what a digest covers,
/// changes in a way the program version would not show.
const FORMAT: &str = "pages/1";

/// The top-level context keys every page shares: left out of a page's
/// digest, covered by the fingerprint.
const SHARED_KEYS: [&str; 3] = ["t", "css", "script"];

/// A page as it was written: its inputs' digest, and the file's size and
/// modification time (nanoseconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
struct Written {
    digest: String,
    stamp: Stamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Stamp {
    len: u64,
    modified: u128,
}

/// The kept digests of the last run's pages, and this run's.
pub struct PageStore {
    /// Pages of the last run, when its fingerprint is this run's.
    old: BTreeMap<String, Written>,
    new: Mutex<BTreeMap<String, Written>>,
    folder: std::path::PathBuf,
    fingerprint: String,
}

impl PageStore {
    /// Opens the last run's digests and stages this run's folder;
    /// `templates` are the templates' names and sources in use.
    pub fn open(
        out: &OutDir,
        staging: &mut Staging,
        policy: &LoadedPolicy,
        templates: &[(&str, String)],
    ) -> Result<PageStore> {
        let CacheFolder {
            old,
            new,
            mut base,
            enabled,
        } = CacheFolder::stage(out.pages_cache(), staging, FORMAT, policy)?;
        for (name, source) in templates {
            super::feed(&mut base, name.as_bytes());
            super::feed(&mut base, source.as_bytes());
        }
        let fingerprint = hex(&base.finalize());
        let kept = fs::read_to_string(old.join("fingerprint")).ok();
        let pages = match kept {
            Some(k) if enabled && k.trim() == fingerprint => read_kept(&old).unwrap_or_default(),
            _ => BTreeMap::new(),
        };
        Ok(PageStore {
            old: pages,
            new: Mutex::new(BTreeMap::new()),
            folder: new,
            fingerprint,
        })
    }

    /// Links the published page `rel` of `published` into `staged` when its
    /// inputs' digest is `digest` and the file is the one written with it;
    /// true when it did, and then the page need not be rendered.
    pub fn reuse(&self, rel: &str, digest: &str, published: &Path, staged: &Path) -> bool {
        let Some(kept) = self.old.get(rel) else {
            return false;
        };
        let same = kept.digest == digest
            && stamp(published) == Some(kept.stamp)
            && fs::hard_link(published, staged).is_ok();
        if same {
            self.record(rel, kept.clone());
        }
        same
    }

    /// Records the page `rel`, rendered from inputs of `digest` and now in
    /// the file `staged`.
    pub fn wrote(&self, rel: &str, digest: String, staged: &Path) -> Result<()> {
        let stamp = stamp(staged)
            .with_context(|| format!("cannot read the time of {}", staged.display()))?;
        self.record(rel, Written { digest, stamp });
        Ok(())
    }

    fn record(&self, rel: &str, page: Written) {
        self.new
            .lock()
            .expect("no page digest is recorded by a panicking thread")
            .insert(rel.to_string(), page);
    }

    /// Writes this run's digests (`digests.json`, the same for the same
    /// pages) and the files' stamps (`stamps.json`), then the fingerprint.
    pub fn seal(self) -> Result<()> {
        let pages = self
            .new
            .into_inner()
            .expect("no page digest is recorded by a panicking thread");
        let digests: BTreeMap<&String, &String> =
            pages.iter().map(|(p, w)| (p, &w.digest)).collect();
        let stamps: BTreeMap<&String, Stamp> = pages.iter().map(|(p, w)| (p, w.stamp)).collect();
        fs::write(
            self.folder.join("digests.json"),
            serde_json::to_vec_pretty(&digests)?,
        )?;
        fs::write(
            self.folder.join("stamps.json"),
            serde_json::to_vec(&stamps)?,
        )?;
        fs::write(
            self.folder.join("fingerprint"),
            format!("{}\n", self.fingerprint),
        )?;
        Ok(())
    }
}

/// The digest of a page's inputs: its template's name and its context
/// without the keys every page shares.
pub fn page_digest(template: &str, ctx: &Value) -> Result<String> {
    let mut h = Xxh3::new();
    feed_value(&mut h, &Value::from(template));
    let keys = ctx
        .try_iter()
        .map_err(|e| anyhow::anyhow!("a page's context is not a map: {e}"))?;
    for key in keys {
        if key.as_str().is_some_and(|k| SHARED_KEYS.contains(&k)) {
            continue;
        }
        let value = ctx
            .get_item(&key)
            .map_err(|e| anyhow::anyhow!("a page's context has no {key}: {e}"))?;
        feed_value(&mut h, &key);
        feed_value(&mut h, &value);
    }
    Ok(format!("{:032x}", h.digest128()))
}

/// Adds a template value to a digest: its kind, then its content, so that
/// values that render differently (an integer and a float, a safe string
/// and one to escape, none and undefined) differ.
fn feed_value(h: &mut Xxh3, v: &Value) {
    let text = |h: &mut Xxh3, tag: &[u8], bytes: &[u8]| {
        h.update(tag);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    match v.kind() {
        ValueKind::Undefined => h.update(b"u"),
        ValueKind::None => h.update(b"n"),
        ValueKind::Bool => h.update(if v.is_true() { b"T" } else { b"F" }),
        ValueKind::Number => match v.as_i64().filter(|_| v.is_integer()) {
            Some(i) => text(h, b"i", &i.to_le_bytes()),
            None => match f64::try_from(v.clone()) {
                Ok(x) => text(h, b"f", &x.to_bits().to_le_bytes()),
                Err(_) => text(h, b"N", v.to_string().as_bytes()),
            },
        },
        ValueKind::String => {
            let tag: &[u8] = if v.is_safe() { b"S" } else { b"s" };
            text(h, tag, v.as_str().unwrap_or_default().as_bytes())
        }
        ValueKind::Bytes => text(h, b"b", v.as_bytes().unwrap_or_default()),
        ValueKind::Map => {
            h.update(b"{");
            if let Some(pairs) = v.as_object().and_then(|o| o.try_iter_pairs()) {
                for (key, value) in pairs {
                    feed_value(h, &key);
                    feed_value(h, &value);
                }
            }
            h.update(b"}");
        }
        ValueKind::Seq | ValueKind::Iterable => {
            h.update(b"[");
            if let Ok(items) = v.try_iter() {
                for item in items {
                    feed_value(h, &item);
                }
            }
            h.update(b"]");
        }
        // Plain objects and invalid values: as they render.
        _ => text(h, b"?", v.to_string().as_bytes()),
    }
}

/// The last run's pages, from its `digests.json` and `stamps.json`.
fn read_kept(folder: &Path) -> Option<BTreeMap<String, Written>> {
    let read = |name: &str| fs::read(folder.join(name)).ok();
    let digests: BTreeMap<String, String> = serde_json::from_slice(&read("digests.json")?).ok()?;
    let mut stamps: BTreeMap<String, Stamp> = serde_json::from_slice(&read("stamps.json")?).ok()?;
    Some(
        digests
            .into_iter()
            .filter_map(|(page, digest)| {
                let stamp = stamps.remove(&page)?;
                Some((page, Written { digest, stamp }))
            })
            .collect(),
    )
}

/// A file's size and modification time.
fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    meta.is_file().then_some(Stamp {
        len: meta.len(),
        modified: modified.as_nanos(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn digest(ctx: Value) -> String {
        page_digest("page.html", &ctx).unwrap()
    }

    #[test]
    fn values_that_render_differently_have_different_digests() {
        // Each pair renders differently in a template ("2" and "2.0",
        // escaped and not, "none" and nothing, one list and two items).
        let pairs = [
            (context! { x => 2 }, context! { x => 2.0 }),
            (
                context! { x => "<b>" },
                context! { x => Value::from_safe_string("<b>".into()) },
            ),
            (context! { x => () }, context! { x => Value::UNDEFINED }),
            (
                context! { x => vec!["ab"] },
                context! { x => vec!["a", "b"] },
            ),
            (
                context! { x => "ab", y => "" },
                context! { x => "a", y => "b" },
            ),
            (context! { x => true }, context! { x => 1 }),
        ];
        for (a, b) in pairs {
            assert_ne!(digest(a.clone()), digest(b.clone()), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn the_shared_parts_and_only_they_are_left_out() {
        let page = |css: &str, title: &str| context! { css => css, t => css, title => title };
        assert_eq!(digest(page("a", "x")), digest(page("b", "x")));
        assert_ne!(digest(page("a", "x")), digest(page("a", "y")));
        assert_ne!(
            page_digest("a.html", &page("a", "x")).unwrap(),
            page_digest("b.html", &page("a", "x")).unwrap()
        );
    }
}
