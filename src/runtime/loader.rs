//! Finding, opening and checking the ONNX Runtime shared library at run time.
//!
//! Resolution order (the first that is *specified* wins, with no silent fallback):
//! 1. an explicit path given to [`Runtime::load`] (a file, or a directory searched for the library names);
//! 2. the environment variable `IPUFLOW_ORT_LIBRARY` (same forms);
//! 3. automatic discovery: the library names next to the ipuflow module itself, then the system loader's default
//!    names (`LD_LIBRARY_PATH`, the Windows DLL search order, ...).
//!
//! An explicit path or the environment variable is a deliberate choice: when it fails, ipuflow reports it instead of
//! quietly loading some other `onnxruntime` found elsewhere (several copies on one machine is a classic source of
//! crashes on Windows). Only automatic discovery tries several places, and a failure lists every place tried with
//! the loader's error for each.
//!
//! A file that loads but has no `OrtGetApiBase` is `RuntimeInvalid`; an ONNX Runtime without the C API version
//! ipuflow needs is `RuntimeTooOld`. Once loaded, the runtime stays loaded for the life of the process.

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort_sys::{OrtApi, OrtApiBase};
use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// The environment variable naming the ONNX Runtime library (a file or a directory).
pub const ENV_VAR: &str = "IPUFLOW_ORT_LIBRARY";

/// The oldest ONNX Runtime C API version ipuflow accepts: 17, i.e. ONNX Runtime 1.17.
///
/// Why 17: it is the baseline of `ort_sys::OrtApi` (every field not gated by an `api-NN` feature exists in API 17,
/// so the unguarded part of the table is exactly what ORT 1.17 provides), 1.17 is the first release with
/// `SetDeterministicCompute`, and Ryzen AI 1.1 (the first release with the current VitisAI EP flow) ships
/// ONNX Runtime 1.17. Functions added later are called only after [`Runtime::require_api`].
pub const MIN_API_VERSION: u32 = 17;

/// The newest C API version ipuflow was built against (`ort_sys::ORT_API_VERSION`, 24 = ONNX Runtime 1.24).
pub const MAX_API_VERSION: u32 = ort_sys::ORT_API_VERSION;

/// Where the loaded runtime was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeSource {
    /// The path given to [`Runtime::load`].
    Explicit,
    /// The `IPUFLOW_ORT_LIBRARY` environment variable.
    EnvVar,
    /// A file next to the ipuflow library (or executable) itself.
    NextToIpuflow,
    /// The system loader's search for a default name.
    SystemDefault,
}

impl fmt::Display for RuntimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeSource::Explicit => "explicit path",
            RuntimeSource::EnvVar => ENV_VAR,
            RuntimeSource::NextToIpuflow => "next to ipuflow",
            RuntimeSource::SystemDefault => "system loader default",
        })
    }
}

/// The ONNX Runtime shared library, opened and checked.
///
/// The process-wide instance is obtained with [`Runtime::load`] / [`Runtime::get`] and is never unloaded.
pub struct Runtime {
    // Kept open for as long as the `Runtime` lives (forever for the global one): the API table points into it.
    _lib: libloading::Library,
    api: *const OrtApi,
    api_version: u32,
    version: CString,
    path: PathBuf,
    path_c: CString,
    source: RuntimeSource,
}

// SAFETY: the `OrtApi` table is immutable static data inside the loaded library, and ORT's API functions are
// callable from any thread.
unsafe impl Send for Runtime {}
unsafe impl Sync for Runtime {}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("path", &self.path)
            .field("version", &self.version())
            .field("api_version", &self.api_version)
            .field("source", &self.source)
            .finish()
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static LOAD_LOCK: Mutex<()> = Mutex::new(());

type GetApiBaseFn = unsafe extern "system" fn() -> *const OrtApiBase;

/// The file names tried in a directory (next to ipuflow, or a directory given explicitly), in order.
#[cfg(windows)]
const DIR_NAMES: &[&str] = &["onnxruntime.dll"];
#[cfg(target_os = "macos")]
const DIR_NAMES: &[&str] = &["libonnxruntime.dylib"];
#[cfg(all(unix, not(target_os = "macos")))]
const DIR_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1"];

/// The bare names handed to the system loader when nothing else is found.
#[cfg(windows)]
const SYSTEM_NAMES: &[&str] = &["onnxruntime.dll"];
#[cfg(target_os = "macos")]
const SYSTEM_NAMES: &[&str] = &["libonnxruntime.dylib"];
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_NAMES: &[&str] = &["libonnxruntime.so.1", "libonnxruntime.so"];

impl Runtime {
    /// Loads the process-wide ONNX Runtime (see the module docs for the resolution order) and returns it.
    ///
    /// If a runtime is already loaded: with `path == None` it is returned; with a path naming the same file it is
    /// returned; with a different path the call fails with `InvalidArgument` (a process can hold only one).
    /// A failed load leaves nothing loaded and can be retried. Thread-safe.
    pub fn load(path: Option<&Path>) -> Result<&'static Runtime> {
        let _guard = LOAD_LOCK.lock();
        if let Some(rt) = RUNTIME.get() {
            return match path {
                None => Ok(rt),
                Some(p) if rt.is_same_file(p) => Ok(rt),
                Some(p) => Err(Error::invalid_argument(format!(
                    "ONNX Runtime {} is already loaded from '{}'; a process can load only one, so '{}' was not loaded",
                    rt.version(),
                    rt.path.display(),
                    p.display()
                ))),
            };
        }
        let rt = Runtime::open(path)?;
        Ok(RUNTIME.get_or_init(|| rt))
    }

    /// The process-wide runtime, or `RuntimeNotLoaded` if [`Runtime::load`] has not succeeded yet.
    pub fn get() -> Result<&'static Runtime> {
        RUNTIME.get().ok_or_else(|| {
            Error::new(
                ErrorKind::RuntimeNotLoaded,
                "ONNX Runtime is not loaded: call ipuflow_runtime_load (Runtime::load) first",
            )
        })
    }

    /// The process-wide runtime, loading it with the default resolution (`load(None)`) if needed.
    pub fn get_or_load() -> Result<&'static Runtime> {
        match RUNTIME.get() {
            Some(rt) => Ok(rt),
            None => Runtime::load(None),
        }
    }

    /// Whether the process-wide runtime is loaded.
    pub fn is_loaded() -> bool {
        RUNTIME.get().is_some()
    }

    /// Opens and checks an ONNX Runtime library without installing it as the process-wide one (it is unloaded
    /// when dropped). Same resolution as [`Runtime::load`]. Used for diagnostics and tests.
    pub fn open(path: Option<&Path>) -> Result<Runtime> {
        let (source, candidates) = match path {
            Some(p) => (RuntimeSource::Explicit, expand(p)),
            None => match std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
                Some(v) => (RuntimeSource::EnvVar, expand(Path::new(&v))),
                None => (RuntimeSource::NextToIpuflow, discovery_candidates()),
            },
        };
        let mut tried: Vec<String> = Vec::new();
        for cand in candidates {
            let src = if source == RuntimeSource::NextToIpuflow {
                cand.source
            } else {
                source
            };
            match open_candidate(&cand.path, src) {
                Ok(rt) => return Ok(rt),
                Err(Attempt::NotLoadable(msg)) => {
                    tried.push(format!("'{}' ({src}): {msg}", cand.path.display()))
                }
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
        let how = match source {
            RuntimeSource::Explicit => "at the path given".to_string(),
            RuntimeSource::EnvVar => format!("at the path in {ENV_VAR}"),
            _ => format!(
                "(set {ENV_VAR} to its path, put it next to the ipuflow library, or pass a path to ipuflow_runtime_load)"
            ),
        };
        Err(Error::new(
            ErrorKind::RuntimeNotFound,
            format!(
                "ONNX Runtime was not found {how}; tried: {}",
                tried.join("; ")
            ),
        ))
    }

    /// The ONNX Runtime version string, e.g. "1.32.0".
    pub fn version(&self) -> &str {
        self.version.to_str().unwrap_or("")
    }

    /// The version string as a C string, valid as long as the runtime.
    pub fn version_cstr(&self) -> &CStr {
        &self.version
    }

    /// The C API version obtained from `GetApi` (between [`MIN_API_VERSION`] and [`MAX_API_VERSION`]).
    pub fn api_version(&self) -> u32 {
        self.api_version
    }

    /// The path the library was opened from (a bare name when the system loader found it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a (lossy UTF-8) C string, valid as long as the runtime.
    pub fn path_cstr(&self) -> &CStr {
        &self.path_c
    }

    /// Where the library was found.
    pub fn source(&self) -> RuntimeSource {
        self.source
    }

    /// Fails with `RuntimeTooOld` unless the obtained API version is at least `version`; call before using any
    /// `OrtApi` function added after API 17 (`what` names it in the message).
    pub fn require_api(&self, version: u32, what: &str) -> Result<()> {
        if self.api_version >= version {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::RuntimeTooOld,
                format!(
                    "{what} needs ONNX Runtime C API {version} (ONNX Runtime 1.{version}); the loaded runtime {} provides API {}",
                    self.version(),
                    self.api_version
                ),
            ))
        }
    }

    pub(crate) fn api_ptr(&self) -> *const OrtApi {
        self.api
    }

    fn is_same_file(&self, p: &Path) -> bool {
        if p == self.path {
            return true;
        }
        let a = std::fs::canonicalize(&self.path);
        // A directory names the library inside it.
        let candidates = if p.is_dir() {
            expand(p)
        } else {
            vec![Candidate {
                path: p.to_path_buf(),
                source: self.source,
            }]
        };
        candidates
            .iter()
            .any(|c| matches!((&a, std::fs::canonicalize(&c.path)), (Ok(x), Ok(y)) if *x == y))
    }
}

struct Candidate {
    path: PathBuf,
    source: RuntimeSource,
}

enum Attempt {
    /// The loader could not open this candidate: try the next one.
    NotLoadable(String),
    /// The file was opened and is wrong (not ORT, too old): report it, do not look further.
    Fatal(Error),
}

/// A file, or the library names inside a directory.
fn expand(p: &Path) -> Vec<Candidate> {
    if p.is_dir() {
        dir_candidates(p, RuntimeSource::Explicit)
    } else {
        vec![Candidate {
            path: p.to_path_buf(),
            source: RuntimeSource::Explicit,
        }]
    }
}

/// The library names present in `dir`; every name is listed (so a failure shows where it looked), existing ones
/// first. On Linux `libonnxruntime.so.1.*` files are included, newest name first.
fn dir_candidates(dir: &Path, source: RuntimeSource) -> Vec<Candidate> {
    #[allow(unused_mut)] // extended on Linux only
    let mut names: Vec<String> = DIR_NAMES.iter().map(|s| s.to_string()).collect();
    #[cfg(all(unix, not(target_os = "macos")))]
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut versioned: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("libonnxruntime.so.1.") && !n.contains("providers"))
            .collect();
        versioned.sort_by(|a, b| b.cmp(a));
        names.extend(versioned);
    }
    names
        .into_iter()
        .map(|n| Candidate {
            path: dir.join(n),
            source,
        })
        .collect()
}

fn discovery_candidates() -> Vec<Candidate> {
    let mut v = Vec::new();
    if let Some(dir) = own_module_path().as_deref().and_then(Path::parent) {
        v.extend(dir_candidates(dir, RuntimeSource::NextToIpuflow));
    }
    v.extend(SYSTEM_NAMES.iter().map(|n| Candidate {
        path: PathBuf::from(n),
        source: RuntimeSource::SystemDefault,
    }));
    v
}

/// The file of the module (shared library or executable) this code is part of.
#[cfg(unix)]
pub fn own_module_path() -> Option<PathBuf> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = own_module_path as *const () as *const libc::c_void;
    // SAFETY: dladdr only inspects the address and fills `info`.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    let p = PathBuf::from(OsStr::from_bytes(
        unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes(),
    ));
    Some(std::fs::canonicalize(&p).unwrap_or(p))
}

/// The file of the module (DLL or executable) this code is part of.
#[cfg(windows)]
pub fn own_module_path() -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleExW(
            flags: u32,
            name: *const u16,
            module: *mut *mut std::ffi::c_void,
        ) -> i32;
        fn GetModuleFileNameW(module: *mut std::ffi::c_void, name: *mut u16, size: u32) -> u32;
    }
    const FROM_ADDRESS: u32 = 0x4;
    const UNCHANGED_REFCOUNT: u32 = 0x2;
    let mut module = std::ptr::null_mut();
    let addr = own_module_path as *const () as *const u16;
    // SAFETY: documented use of GetModuleHandleExW with an address inside this module; no reference taken.
    if unsafe { GetModuleHandleExW(FROM_ADDRESS | UNCHANGED_REFCOUNT, addr, &mut module) } == 0 {
        return None;
    }
    let mut buf = vec![0u16; 1024];
    loop {
        let n = unsafe { GetModuleFileNameW(module, buf.as_mut_ptr(), buf.len() as u32) } as usize;
        if n == 0 {
            return None;
        }
        if n < buf.len() {
            return Some(PathBuf::from(std::ffi::OsString::from_wide(&buf[..n])));
        }
        if buf.len() >= 1 << 16 {
            return None;
        }
        let len = buf.len() * 2;
        buf.resize(len, 0);
    }
}

#[cfg(not(any(unix, windows)))]
pub fn own_module_path() -> Option<PathBuf> {
    None
}

fn open_library(path: &Path) -> std::result::Result<libloading::Library, libloading::Error> {
    #[cfg(windows)]
    {
        use libloading::os::windows::{Library, LOAD_WITH_ALTERED_SEARCH_PATH};
        // A full path: let the DLL's own directory be searched for its dependencies
        // (onnxruntime_providers_shared.dll, the VitisAI provider) before the usual places.
        // SAFETY: loading ONNX Runtime runs its initialisers, which are trusted.
        if path.is_absolute() {
            return unsafe { Library::load_with_flags(path, LOAD_WITH_ALTERED_SEARCH_PATH) }
                .map(Into::into);
        }
        unsafe { Library::new(path) }.map(Into::into)
    }
    #[cfg(not(windows))]
    {
        // SAFETY: as above; RTLD_LAZY | RTLD_LOCAL keeps its symbols out of the global namespace.
        unsafe { libloading::Library::new(path) }
    }
}

fn open_candidate(path: &Path, source: RuntimeSource) -> std::result::Result<Runtime, Attempt> {
    let lib = open_library(path).map_err(|e| Attempt::NotLoadable(e.to_string()))?;
    let fatal = |kind, msg: String| Attempt::Fatal(Error::new(kind, msg));
    let get_base: GetApiBaseFn = match unsafe { lib.get::<GetApiBaseFn>(b"OrtGetApiBase\0") } {
        Ok(sym) => *sym,
        Err(e) => {
            return Err(fatal(
                ErrorKind::RuntimeInvalid,
                format!(
                    "'{}' ({source}) is not ONNX Runtime: it has no OrtGetApiBase ({e})",
                    path.display()
                ),
            ))
        }
    };
    // SAFETY: OrtGetApiBase takes no arguments and returns a pointer to a static struct.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(fatal(
            ErrorKind::RuntimeInvalid,
            format!("'{}': OrtGetApiBase returned NULL", path.display()),
        ));
    }
    let base: OrtApiBase = unsafe { std::ptr::read(base) };
    let vptr: *const c_char = unsafe { (base.GetVersionString)() };
    let version = if vptr.is_null() {
        CString::default()
    } else {
        unsafe { CStr::from_ptr(vptr) }.to_owned()
    };
    let vstr = version.to_string_lossy().into_owned();
    let (major, minor) = parse_version(&vstr);

    // ORT's C API version equals the 1.x minor version; asking an older runtime for a newer API makes it print an
    // error on stderr, so start at the newest version it can have.
    let too_old = || {
        fatal(
            ErrorKind::RuntimeTooOld,
            format!(
                "ONNX Runtime {vstr} at '{}' is too old: ipuflow needs C API version {MIN_API_VERSION} (ONNX Runtime 1.{MIN_API_VERSION}) or newer, up to {MAX_API_VERSION}",
                path.display()
            ),
        )
    };
    let start = match (major, minor) {
        (Some(1), Some(m)) if m < MIN_API_VERSION => return Err(too_old()),
        (Some(1), Some(m)) => m.min(MAX_API_VERSION),
        _ => MAX_API_VERSION,
    };
    let mut api: *const OrtApi = std::ptr::null();
    let mut api_version = 0;
    for v in (MIN_API_VERSION..=start).rev() {
        // SAFETY: GetApi accepts any version and returns NULL for those it does not provide.
        let p = unsafe { (base.GetApi)(v) };
        if !p.is_null() {
            api = p;
            api_version = v;
            break;
        }
    }
    if api.is_null() {
        return Err(too_old());
    }
    let path_c = CString::new(path.to_string_lossy().replace('\0', "")).unwrap_or_default();
    Ok(Runtime {
        _lib: lib,
        api,
        api_version,
        version,
        path: path.to_path_buf(),
        path_c,
        source,
    })
}

fn parse_version(v: &str) -> (Option<u32>, Option<u32>) {
    let mut it = v.split('.');
    let major = it.next().and_then(|s| s.trim().parse().ok());
    let minor = it.next().and_then(|s| s.trim().parse().ok());
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("1.32.0"), (Some(1), Some(32)));
        assert_eq!(parse_version("1.17.3-rc1"), (Some(1), Some(17)));
        assert_eq!(parse_version(""), (None, None));
    }

    #[test]
    fn own_module_is_found() {
        let p = own_module_path().expect("own module path");
        assert!(p.exists(), "{}", p.display());
    }

    #[test]
    fn explicit_missing_path_is_not_found_and_lists_it() {
        let e = Runtime::open(Some(Path::new("/nonexistent/dir/libonnxruntime.so.1.32.0")))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RuntimeNotFound);
        assert!(
            e.message()
                .contains("/nonexistent/dir/libonnxruntime.so.1.32.0"),
            "{}",
            e.message()
        );
    }
}
