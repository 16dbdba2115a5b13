//! The payload's fresh working directory (`spec/jobseal.md` §14.7a): made
//! by the launcher, holding copies of the signed inputs that admission then
//! hashes, handed to the target account only after the permit. Nobody but
//! the launcher can write in it between the hash and the hand-over, so the
//! inputs the payload finds are the inputs that were checked.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::creds::{Caller, as_caller};

/// How many directories one job may get (a job with several allowed uses
/// gets `ID`, `ID.2`, `ID.3`, …).
const MAX_USES_DIRS: u32 = 1000;

/// A fresh working directory being prepared.
#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
    /// Everything made in it, parents first, for the hand-over.
    made: Vec<PathBuf>,
    kept: bool,
}

/// Why the inputs could not be copied: the pilot's (201) or ours (202).
#[derive(Debug)]
pub enum CopyError {
    Client(String),
    Internal(String),
}

/// An input to copy: its signed relative name and size.
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub size: u64,
}

fn dir_builder() -> std::fs::DirBuilder {
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    b
}

impl WorkDir {
    /// A new directory under `root` named after the job (`job_id`, then
    /// `job_id.2`, … if taken). `privileged`: `root` is made if missing,
    /// and must be root-owned and writable by nobody else.
    pub fn make(root: &Path, job_id: &str, privileged: bool) -> Result<Self, String> {
        if privileged {
            if std::fs::symlink_metadata(root).is_err() {
                let mut b = std::fs::DirBuilder::new();
                b.mode(0o711).recursive(true);
                b.create(root)
                    .map_err(|e| format!("work_root {}: {e}", root.display()))?;
            }
            crate::config::check_root_owned(root)?;
            if !std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir()) {
                return Err(format!("work_root {}: not a directory", root.display()));
            }
        }
        let safe_id: String = job_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        let base = if safe_id.is_empty() {
            "job".to_string()
        } else {
            safe_id
        };
        for n in 1..=MAX_USES_DIRS {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let path = root.join(name);
            match dir_builder().create(&path) {
                Ok(()) => {
                    return Ok(Self {
                        made: vec![path.clone()],
                        path,
                        kept: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("working directory {}: {e}", path.display())),
            }
        }
        Err(format!(
            "work_root {}: {MAX_USES_DIRS} directories of job {job_id} already exist",
            root.display()
        ))
    }

    /// Copy the inputs present in `source` into the directory: each source
    /// is opened *and read* with the caller's rights (some files check the
    /// reader at read time), into a copy the launcher created. A missing
    /// input is left out, so that admission decides about it exactly as it
    /// would in `source`; at most the signed size plus one byte is copied,
    /// so an input that grew is still seen to differ.
    pub fn copy_inputs(
        &mut self,
        source: &Path,
        inputs: &[Input],
        caller: &Caller,
    ) -> Result<(), CopyError> {
        let mut copies = Vec::with_capacity(inputs.len());
        for input in inputs {
            let (path, file) = self.create_copy(input).map_err(CopyError::Internal)?;
            copies.push((input, path, file));
        }
        let copied = as_caller(caller, || {
            let mut missing = Vec::new();
            for (input, path, out) in &mut copies {
                let Some(file) =
                    open_input(&source.join(&input.name)).map_err(CopyError::Client)?
                else {
                    missing.push(path.clone());
                    continue;
                };
                std::io::copy(&mut file.take(input.size.saturating_add(1)), out).map_err(|e| {
                    CopyError::Internal(format!("input {}: cannot copy: {e}", input.name))
                })?;
            }
            Ok(missing)
        })
        .map_err(CopyError::Internal)?;
        // An input that is not there has no copy either.
        for path in copied? {
            std::fs::remove_file(&path)
                .map_err(|e| CopyError::Internal(format!("{}: {e}", path.display())))?;
            self.made.retain(|p| *p != path);
        }
        Ok(())
    }

    /// Copy inputs from descriptors the client opened with its own rights
    /// (the launch service, §14.14): `given` pairs a name the client sent
    /// with its descriptor. Every name must be an input of `inputs` (the
    /// manifest's), at most once, and a regular file; at most the signed
    /// size plus one byte is copied. An input the client did not send has
    /// no copy, so admission decides about it as it would in the job's
    /// directory.
    pub fn copy_from(
        &mut self,
        inputs: &[Input],
        given: Vec<(String, File)>,
    ) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (name, file) in given {
            let Some(input) = inputs.iter().find(|i| i.name == name) else {
                return Err(format!("input {name}: not an input of the job's manifest"));
            };
            if !seen.insert(name.clone()) {
                return Err(format!("input {name}: sent twice"));
            }
            let meta = file.metadata().map_err(|e| format!("input {name}: {e}"))?;
            if !meta.file_type().is_file() {
                return Err(format!("input {name}: not a regular file"));
            }
            let (_, mut out) = self.create_copy(input)?;
            // From the descriptor's start, whatever offset the client left.
            std::io::copy(
                &mut ReadAt(file, 0).take(input.size.saturating_add(1)),
                &mut out,
            )
            .map_err(|e| format!("input {name}: cannot copy: {e}"))?;
        }
        Ok(())
    }

    /// Create the (empty) copy of `input`, and its parent directories.
    fn create_copy(&mut self, input: &Input) -> Result<(PathBuf, File), String> {
        let relative = Path::new(&input.name);
        // The manifest's decoder already refuses these; never trust twice-
        // removed data with a path.
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!("input {}: not a plain relative path", input.name));
        }
        let mut dir = self.path.clone();
        if let Some(parent) = relative.parent() {
            for part in parent.components() {
                dir.push(part);
                match dir_builder().create(&dir) {
                    Ok(()) => self.made.push(dir.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(format!("input {}: {e}", input.name)),
                }
            }
        }
        let target = self.path.join(relative);
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&target)
            .map_err(|e| format!("input {}: {e}", input.name))?;
        self.made.push(target.clone());
        Ok((target, out))
    }

    /// A new file in the directory, created now by the launcher (`O_EXCL`,
    /// never through a symbolic link, mode 0600) and handed over with the
    /// rest: for the proxy copy, written before the hand-over, so that it
    /// can never replace a verified input.
    pub fn create_file(&mut self, name: &str) -> Result<(PathBuf, File), String> {
        if Path::new(name).components().count() != 1
            || !matches!(
                Path::new(name).components().next(),
                Some(Component::Normal(_))
            )
        {
            return Err(format!("{name}: not a plain file name"));
        }
        let target = self.path.join(name);
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&target)
            .map_err(|e| format!("{}: {e}", target.display()))?;
        self.made.push(target.clone());
        Ok((target, out))
    }

    /// Give the directory and everything in it to the target account, and
    /// keep it (it holds the payload's outputs). Deepest first and the
    /// directory itself last: until then only root can enter it, so nothing
    /// below can be swapped for a symbolic link while it is handed over.
    pub fn hand_over(&mut self, uid: u32, gid: u32) -> Result<(), String> {
        for p in self.made.iter().rev() {
            // The target's alone again (see `share_with_group`).
            set_private_mode(p)?;
            std::os::unix::fs::lchown(p, Some(uid), Some(gid))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        self.kept = true;
        Ok(())
    }
}

impl WorkDir {
    /// Let group `gid` read the directory and the copies in it (0750 and
    /// 0640): the launch service's verifier process, which runs as the
    /// service account, checks the inputs there. Nobody but root can write
    /// in it; [`WorkDir::hand_over`] makes it private again.
    pub fn share_with_group(&self, gid: u32) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        for p in &self.made {
            let meta = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mode = if meta.is_dir() { 0o750 } else { 0o640 };
            std::os::unix::fs::lchown(p, None, Some(gid))
                .map_err(|e| format!("{}: {e}", p.display()))?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }
}

/// Directories 0700, files 0600, as the launcher made them.
fn set_private_mode(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{}: a symbolic link", p.display()));
    }
    let mode = if meta.is_dir() { 0o700 } else { 0o600 };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", p.display()))
}

impl Drop for WorkDir {
    /// A directory whose job was refused is removed.
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Reads a file from `offset` on with `pread`, leaving the descriptor's
/// own offset (shared with the client) alone.
struct ReadAt(File, u64);

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(&self.0, buf, self.1)?;
        self.1 += n as u64;
        Ok(n)
    }
}

/// Open an input for copying: `None` if it does not exist; a regular file
/// (symbolic links followed, with the caller's rights), non-blocking so that
/// a FIFO cannot hang the launcher.
fn open_input(path: &Path) -> Result<Option<File>, String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("input {}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("input {}: {e}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(format!("input {}: not a regular file", path.display()));
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inputs_are_copied_bounded_and_a_refused_job_leaves_nothing() {
        let src = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("data")).unwrap();
        std::fs::write(src.path().join("data/a.txt"), b"hello").unwrap();
        std::fs::write(src.path().join("grown"), b"0123456789").unwrap();
        let inputs = [
            Input {
                name: "data/a.txt".into(),
                size: 5,
            },
            Input {
                name: "grown".into(),
                size: 3,
            },
            Input {
                name: "missing".into(),
                size: 1,
            },
        ];
        let me = Caller::current();
        let mut w = WorkDir::make(root.path(), "ab12", false).unwrap();
        assert_eq!(w.path, root.path().join("ab12"));
        assert_eq!(w.made.first(), Some(&w.path), "the directory comes first");
        w.copy_inputs(src.path(), &inputs, &me).unwrap();
        assert_eq!(std::fs::read(w.path.join("data/a.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(w.path.join("grown")).unwrap(), b"0123");
        assert!(!w.path.join("missing").exists());
        // A second use of the same job gets its own directory.
        let second = WorkDir::make(root.path(), "ab12", false).unwrap();
        assert_eq!(second.path, root.path().join("ab12.2"));
        let path = w.path.clone();
        drop(w);
        assert!(!path.exists(), "a refused job's directory is removed");
        let mut kept = second;
        kept.hand_over(
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
        .unwrap();
        let kept_path = kept.path.clone();
        drop(kept);
        assert!(kept_path.is_dir(), "a permitted job's directory is kept");
    }

    #[test]
    fn a_fifo_or_a_directory_as_input_is_refused() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        assert!(open_input(&src.path().join("d")).is_err());
        assert!(open_input(&src.path().join("none")).unwrap().is_none());
    }
}
