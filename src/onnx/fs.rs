//! The one place ipuflow opens files it is given (models, external data, calibration `.npy` files and images) and
//! the one place it writes files (models, reports). Every reader and writer of the library and of the `ipuflow`
//! command goes through here, so the rules hold everywhere:
//!
//! Reading ([`open_regular`], [`read_regular`]):
//! - only regular files: a FIFO, device, socket or directory is an error naming the path. On Unix the file is
//!   opened with `O_NONBLOCK` (so opening a FIFO never waits for a writer), checked with `fstat` on the opened
//!   descriptor (no race with a rename), then switched back to blocking;
//! - reads are bounded by the size `fstat` reported: a file that grows while read is not read past that size.
//!
//! External data ([`resolve_external`]): a location must be relative without `..`; it is then resolved with
//! symlinks followed and must stay under the model folder's real path, as ONNX Runtime 1.32 requires ("External
//! data path escapes model directory").
//!
//! Writing ([`AtomicFile`]): the destination must be a regular file or absent (a device, FIFO, socket or
//! directory is refused, never replaced). Bytes go to a temporary file in the destination's folder that is renamed
//! over the destination once complete and fsynced. On Linux the temporary file is created with `O_TMPFILE`: it
//! has no name until the commit, so even SIGKILL cannot strand it. Elsewhere (or on a file system without
//! `O_TMPFILE`) it is a hidden `.NAME.ipuflow-PID-N.tmp` removed on error, on drop (panics included) and by
//! [`remove_temp_files`], which the `ipuflow` command calls from its Ctrl-C/SIGTERM handler; one that a SIGKILL
//! stranded is removed by the next write of the same destination once it is 15 minutes old and its process gone.
//! [`refuse_same_file`] compares file identities (device and inode after resolving symlinks), not path strings.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// What a non-regular file is, for messages.
fn kind_name(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens `path` for reading if it is a regular file; returns the file and its size.
///
/// Errors: `FileNotFound` (naming the path) when it does not exist, `FileRead` when it cannot be opened or is a
/// FIFO, device, socket or directory ("cannot read 'PATH': it is a FIFO (named pipe), not a regular file").
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let not_regular = |meta: &Metadata| {
        let what = kind_name(meta);
        let what = if what.starts_with("not") {
            what.to_string()
        } else {
            format!("it is {what}, not a regular file")
        };
        Error::new(
            ErrorKind::FileRead,
            format!("cannot read '{}': {what}", path.display()),
        )
    };
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file; say what it is instead of "access denied".
        if let Ok(meta) = fs::metadata(path) {
            if !meta.is_file() {
                return Err(not_regular(&meta));
            }
        }
    }
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Without O_NONBLOCK, opening a FIFO blocks until a writer appears: forever for a hostile path.
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = opts.open(path).map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // Regular files ignore O_NONBLOCK today; clear it anyway so reads follow the usual blocking semantics.
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own; no pointers involved.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    Ok((file, meta.len()))
}

/// Reads a whole regular file (see [`open_regular`]), never more than the size it had when opened.
///
/// Errors: those of [`open_regular`]; `OutOfMemory` when its size cannot be allocated; `FileRead` on an I/O error
/// or when the file shrank while being read.
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    let size = usize::try_from(len).map_err(|_| {
        Error::new(
            ErrorKind::OutOfMemory,
            format!("cannot read '{}': {len} bytes", path.display()),
        )
    })?;
    let mut out = Vec::new();
    out.try_reserve_exact(size).map_err(|_| {
        Error::new(
            ErrorKind::OutOfMemory,
            format!("cannot allocate {size} bytes to read '{}'", path.display()),
        )
    })?;
    file.take(len)
        .read_to_end(&mut out)
        .map_err(|e| Error::io("read", path, e))?;
    if out.len() as u64 != len {
        return Err(Error::new(
            ErrorKind::FileRead,
            format!(
                "cannot read '{}': it shrank from {len} to {} bytes while being read",
                path.display(),
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Refuses absolute locations and locations with `..` (or a drive/root) components.
pub(crate) fn check_location(location: &str, what: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::new(
            ErrorKind::PathRefused,
            format!("{what} location '{location}' refused: {why}"),
        ))
    };
    if location.is_empty() {
        return Err(Error::new(
            ErrorKind::ExternalData,
            format!("{what} location is empty"),
        ));
    }
    if location.contains('\0') {
        return refuse("it contains a NUL character");
    }
    let p = Path::new(location);
    if p.is_absolute()
        || p.has_root()
        || location.starts_with(['/', '\\'])
        || location.as_bytes().get(1) == Some(&b':')
    {
        return refuse(
            "absolute paths are not allowed (it must be relative to the model's directory)",
        );
    }
    // Both separators, whatever the platform: a model written on Windows may say `..\weights.bin`.
    if location.split(['/', '\\']).any(|c| c == "..")
        || p.components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return refuse("'..' is not allowed (the file must be inside the model's directory)");
    }
    Ok(())
}

/// Resolves an external-data `location` against the model folder `base`: checked as [`check_location`] does, then
/// resolved with symlinks followed; the result must lie under `base`'s real path (ONNX Runtime 1.32's rule).
/// A location that does not exist is returned unresolved (opening it reports that it is missing).
///
/// Errors: `PathRefused` ("... escapes the model directory"), `ExternalData` for an empty location or a model
/// folder that cannot be resolved.
pub(crate) fn resolve_external(base: &Path, location: &str, what: &str) -> Result<PathBuf> {
    check_location(location, what)?;
    // `Path::new("m.onnx").parent()` is "": the current directory.
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let joined = base.join(location);
    let real = match fs::canonicalize(&joined) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(joined),
        // Not a directory on the way, a loop, a permission: let the open say what exactly.
        Err(_) => return Ok(joined),
    };
    let real_base = fs::canonicalize(base).map_err(|e| {
        Error::new(
            ErrorKind::ExternalData,
            format!(
                "{what} location '{location}': the model directory '{}' cannot be resolved: {e}",
                base.display()
            ),
        )
    })?;
    if !real.starts_with(&real_base) {
        return Err(Error::new(
            ErrorKind::PathRefused,
            format!(
                "{what} location '{location}' refused: External data path escapes model directory (it resolves to \
                 '{}', outside '{}')",
                real.display(),
                real_base.display()
            ),
        ));
    }
    Ok(real)
}

/// A file's identity: device and inode on Unix (the same file whatever the path or link used to name it), the
/// canonical path elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileId(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

impl FileId {
    /// The identity of what `path` names (symlinks followed), or `None` if nothing is there.
    pub fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(path).ok()?;
            Some(FileId((m.dev(), m.ino())))
        }
        #[cfg(not(unix))]
        {
            fs::canonicalize(path).ok().map(FileId)
        }
    }
}

/// Fails when `output` names the same file as one of `inputs` (by identity, see [`FileId`]): writing it would
/// replace an input. `what` names the output in the message (e.g. "--output 'out.onnx'"); each input comes with
/// what it is ("the input model").
///
/// Errors: `InvalidArgument` naming both.
pub fn refuse_same_file(output: &Path, what: &str, inputs: &[(&Path, &str)]) -> Result<()> {
    let Some(out) = FileId::of(output) else {
        return Ok(());
    };
    for (p, name) in inputs {
        if FileId::of(p).as_ref() == Some(&out) {
            return Err(Error::invalid_argument(format!(
                "{what} is {name} '{}' (the same file): write to another file",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Fails when `dest` exists and is not a regular file: replacing a device, FIFO, socket or directory with a
/// regular file is never what the caller meant (think `-o /dev/null` run as root). [`AtomicFile`] checks this when
/// created and again just before its rename; a command can call it first to fail before doing any work.
///
/// Errors: `FileWrite` naming the path and what it is.
pub fn check_target(dest: &Path) -> Result<()> {
    match fs::metadata(dest) {
        Ok(m) if !m.is_file() => Err(Error::new(
            ErrorKind::FileWrite,
            format!(
                "cannot write '{}': it is {}; only a regular file is replaced",
                dest.display(),
                kind_name(&m).trim_start_matches("not ")
            ),
        )),
        _ => Ok(()),
    }
}

/// Named temporary files alive in this process, for [`remove_temp_files`].
static LIVE_TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes every named temporary file this process has open (see the module docs). For a signal handler that is
/// about to exit the process, where destructors will not run. Safe to call from any thread.
pub fn remove_temp_files() {
    let list = match LIVE_TEMPS.lock() {
        Ok(l) => l,
        Err(p) => p.into_inner(),
    };
    for p in list.iter() {
        let _ = fs::remove_file(p);
    }
}

fn forget_temp(path: &Path) {
    let mut list = match LIVE_TEMPS.lock() {
        Ok(l) => l,
        Err(p) => p.into_inner(),
    };
    list.retain(|p| p != path);
}

/// A file being written atomically to a destination: committed by [`AtomicFile::commit`] (fsync, rename over the
/// destination, fsync the folder); dropped before that, it leaves nothing behind and the destination untouched.
pub struct AtomicFile {
    dest: PathBuf,
    /// The destination's folder (fsynced after the rename on Unix; Windows has no directory fsync).
    #[cfg_attr(not(unix), allow(dead_code))]
    dir: PathBuf,
    file: File,
    /// The temporary file's name; `None` while it is an unnamed `O_TMPFILE`.
    named: Option<PathBuf>,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing `dest`. Errors: `FileWrite` when `dest` exists and is not a regular file, or when no file can
    /// be created in its folder (naming both).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        if dest.file_name().is_none() {
            return Err(Error::invalid_argument(format!(
                "cannot write '{}': not a file path",
                dest.display()
            )));
        }
        check_target(dest)?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        remove_stale_temps(&dir, dest);
        let (file, named) = match Self::unnamed(&dir) {
            Some(f) => (f, None),
            None => {
                let (f, p) = Self::named(dest, &dir)?;
                (f, Some(p))
            }
        };
        // Keep the permissions of the file being replaced.
        if let Ok(meta) = fs::metadata(dest) {
            let _ = file.set_permissions(meta.permissions());
        }
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            dir,
            file,
            named,
            committed: false,
        })
    }

    /// An `O_TMPFILE` in `dir` (Linux, when the file system supports it and /proc is there to link it later).
    #[cfg(target_os = "linux")]
    fn unnamed(dir: &Path) -> Option<File> {
        use std::os::unix::fs::OpenOptionsExt;
        if !Path::new("/proc/self/fd").is_dir() {
            return None;
        }
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    fn unnamed(_dir: &Path) -> Option<File> {
        None
    }

    fn named(dest: &Path, dir: &Path) -> Result<(File, PathBuf)> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut last_err = None;
        for _ in 0..16 {
            let path = Self::temp_name(dir, &name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    if let Ok(mut l) = LIVE_TEMPS.lock() {
                        l.push(path.clone());
                    }
                    return Ok((file, path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => {
                    return Err(Error::new(
                        write_kind(&e),
                        format!(
                            "cannot write '{}': cannot create a file in '{}': {e}",
                            dest.display(),
                            dir.display()
                        ),
                    ))
                }
            }
        }
        Err(Error::new(
            ErrorKind::FileWrite,
            format!(
                "cannot write '{}': no free temporary file name: {}",
                dest.display(),
                last_err.map(|e| e.to_string()).unwrap_or_default()
            ),
        ))
    }

    fn temp_name(dir: &Path, name: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        dir.join(format!(".{name}.ipuflow-{}-{n}.tmp", std::process::id()))
    }

    /// The destination path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The open temporary file (e.g. to wrap a clone of it in a `BufWriter`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// An I/O error while writing, as `FileWrite` (or `OutOfMemory`) naming the destination.
    pub fn write_error(&self, e: std::io::Error) -> Error {
        Error::new(
            write_kind(&e),
            format!("cannot write '{}': {e}", self.dest.display()),
        )
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| self.write_error(e))
    }

    /// Flushes the data to the disk.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_all().map_err(|e| self.write_error(e))
    }

    /// fsync, give the file its place (rename over the destination), fsync the folder. The destination is
    /// checked again just before: it must still be a regular file or absent.
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        check_target(&self.dest)?;
        let tmp = match &self.named {
            Some(p) => p.clone(),
            None => {
                let p = self.link_unnamed()?;
                self.named = Some(p.clone());
                p
            }
        };
        fs::rename(&tmp, &self.dest).map_err(|e| self.write_error(e))?;
        self.committed = true;
        forget_temp(&tmp);
        #[cfg(unix)]
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Gives the `O_TMPFILE` a temporary name (linkat cannot replace an existing file; rename then does, atomically).
    #[cfg(target_os = "linux")]
    fn link_unnamed(&self) -> Result<PathBuf> {
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let name = self
            .dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let from = CString::new(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
            .map_err(|e| Error::internal(e.to_string()))?;
        let mut last = None;
        for _ in 0..16 {
            let to_path = Self::temp_name(&self.dir, &name);
            let to = CString::new(to_path.as_os_str().as_bytes()).map_err(|_| {
                Error::invalid_argument(format!(
                    "cannot write '{}': the path contains a NUL byte",
                    self.dest.display()
                ))
            })?;
            if let Ok(mut l) = LIVE_TEMPS.lock() {
                l.push(to_path.clone());
            }
            // SAFETY: both strings are NUL-terminated and outlive the call.
            let rc = unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            };
            if rc == 0 {
                return Ok(to_path);
            }
            forget_temp(&to_path);
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(self.write_error(e));
            }
            last = Some(e);
        }
        Err(self.write_error(
            last.unwrap_or_else(|| std::io::Error::other("no free temporary file name")),
        ))
    }
    #[cfg(not(target_os = "linux"))]
    fn link_unnamed(&self) -> Result<PathBuf> {
        Err(Error::internal(
            "unnamed temporary files exist only on Linux",
        ))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            if let Some(p) = &self.named {
                let _ = fs::remove_file(p);
                forget_temp(p);
            }
        }
    }
}

/// A named temporary file untouched for this long, whose process is gone, was stranded by a kill.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Removes the temporary files of earlier writes of `dest` that a SIGKILL (or power loss) stranded: named like ours
/// (`.NAME.ipuflow-PID-N.tmp`), not modified for [`STALE_AFTER`], and (on Unix) from a process that no longer exists.
/// The age test protects a live writer in another PID namespace (a container sharing the folder). Best effort.
fn remove_stale_temps(dir: &Path, dest: &Path) {
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.ipuflow-");
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        let old = e
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if old && pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; no signal is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    false // the age test alone decides
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

fn write_kind(e: &std::io::Error) -> ErrorKind {
    if e.kind() == std::io::ErrorKind::OutOfMemory {
        ErrorKind::OutOfMemory
    } else {
        ErrorKind::FileWrite
    }
}
