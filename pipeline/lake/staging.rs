//! Staged writes and their publication: every command stages its files
//! under `OUT/.staging/`, journals the moves and carries them out at the end
//! (a killed run's moves are completed by the next); the output folder's
//! lock.

use super::*;

/// Holds the output folder's lock until dropped.
#[derive(Debug)]
pub struct RunLock {
    pub(super) _file: fs::File,
}

/// A private folder inside `OUT/` where a run builds what it will publish.
/// Being on the same file system as the targets makes the final renames
/// atomic. Dropped without [`Staging::publish`], it is removed and nothing
/// published changes.
#[derive(Debug)]
pub struct Staging {
    pub(super) dir: PathBuf,
    pub(super) out: OutDir,
    /// (staged path, final path), in publication order.
    pub(super) moves: Vec<(PathBuf, PathBuf)>,
}

/// The journal a publication writes before its first rename: if the run
/// dies part-way, the next run completes the publication from it.
pub(super) const JOURNAL: &str = "journal.tsv";

impl Staging {
    pub fn new(out: &OutDir) -> Result<Staging> {
        let root = out.staging_root();
        if root.exists() {
            recover(out, &root)?;
            remove_tree(&root).with_context(|| format!("cannot clear {}", root.display()))?;
        }
        let dir = root.join(format!("run-{}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| {
            format!(
                "cannot create {}: is the output folder writable?",
                dir.display()
            )
        })?;
        Ok(Staging {
            dir,
            out: out.clone(),
            moves: Vec::new(),
        })
    }

    /// A staged path mirroring `final_path`; registered for publication.
    pub fn stage(&mut self, final_path: &Path) -> PathBuf {
        let rel = final_path
            .strip_prefix(&self.out.root)
            .unwrap_or(final_path);
        let staged = self.dir.join("new").join(rel);
        self.moves.push((staged.clone(), final_path.to_path_buf()));
        self.out
            .overlay
            .lock()
            .expect("overlay lock")
            .push((final_path.to_path_buf(), staged.clone()));
        staged
    }

    /// A scratch folder for intermediate files of this run: never
    /// published, removed with the staging folder.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join("scratch").join(name)
    }

    /// Stages a small file's bytes.
    pub fn write(&mut self, final_path: &Path, bytes: &[u8]) -> Result<()> {
        let staged = self.stage(final_path);
        if let Some(parent) = staged.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&staged, bytes).with_context(|| format!("cannot write {}", staged.display()))
    }

    /// Moves every staged file or folder into place, in the order staged. A
    /// folder replaces the old folder whole. The moves are journalled first,
    /// so a run killed part-way is completed by the next one.
    pub fn publish(mut self) -> Result<()> {
        let moves = std::mem::take(&mut self.moves);
        let rel = |p: &Path| {
            p.strip_prefix(&self.out.root)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        let journal: String = moves
            .iter()
            .map(|(s, t)| format!("{}\t{}\n", rel(s), rel(t)))
            .collect();
        let path = self.dir.join(JOURNAL);
        {
            use std::io::Write;
            let mut f = fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            f.write_all(journal.as_bytes())?;
            f.sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        apply(&self.dir, &moves)?;
        self.out.overlay.lock().expect("overlay lock").clear();
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        Ok(())
    }
}

/// Carries out journalled moves; a move whose staged side is gone was done.
pub(super) fn apply(run_dir: &Path, moves: &[(PathBuf, PathBuf)]) -> Result<()> {
    let old_dir = run_dir.join("old");
    for (i, (staged, target)) in moves.iter().enumerate() {
        if !staged.exists() {
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if target.is_dir() {
            let aside = old_dir.join(i.to_string());
            fs::create_dir_all(&old_dir)?;
            fs::rename(target, &aside)
                .with_context(|| format!("cannot move aside {}", target.display()))?;
        }
        fs::rename(staged, target).with_context(|| {
            format!("cannot move {} into {}", staged.display(), target.display())
        })?;
        if i == 0 {
            crate::runtime::failpoint("publish");
        }
    }
    Ok(())
}

/// Completes the publication of a run that died after journalling it;
/// staging without a journal held nothing published and is dropped.
pub(super) fn recover(out: &OutDir, root: &Path) -> Result<()> {
    for entry in fs::read_dir(root)? {
        let run_dir = entry?.path();
        let journal = run_dir.join(JOURNAL);
        if !journal.is_file() {
            continue;
        }
        let text = fs::read_to_string(&journal)
            .with_context(|| format!("cannot read {}", journal.display()))?;
        let moves: Vec<(PathBuf, PathBuf)> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, t)| (out.root.join(s), out.root.join(t)))
            .collect();
        apply(&run_dir, &moves)?;
        fs::remove_file(&journal)?;
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Ok(mut o) = self.out.overlay.lock() {
            o.clear();
        }
        let _ = remove_tree(&self.dir);
        if let Some(root) = self.dir.parent() {
            let _ = fs::remove_dir(root);
        }
    }
}

/// Removes a folder and everything in it, its files by several threads at
/// once. What a run leaves behind holds the last run's site (about 11 k
/// pages on the standard set): removed one file after another, most of the
/// time went to waiting for the file system, which serves several removals
/// at once (1.5 s against 0.8 s with four at a time).
pub fn remove_tree(root: &Path) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const AT_ONCE: usize = 4;
    let (mut folders, mut files) = (vec![root.to_path_buf()], Vec::new());
    let mut i = 0;
    while i < folders.len() {
        for e in fs::read_dir(&folders[i])? {
            let e = e?;
            if e.file_type()?.is_dir() {
                folders.push(e.path());
            } else {
                files.push(e.path());
            }
        }
        i += 1;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE.min(files.len()) {
            s.spawn(|| {
                while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let _ = fs::remove_file(f);
                }
            });
        }
    });
    // Deepest first; whatever is left (a file made meanwhile) goes the
    // ordinary way, with its error.
    for f in folders.iter().rev() {
        let _ = fs::remove_dir(f);
    }
    match root.exists() {
        true => fs::remove_dir_all(root),
        false => Ok(()),
    }
}
