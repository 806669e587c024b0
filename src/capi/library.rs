//! Library-wide exports: version, status names, the last error message, string ownership.

use std::ffi::c_char;

use super::{guard_value, ipuflow_status, last_error_ptr};

/// Major version of the library. Compare `ipuflow_version()` with `IPUFLOW_VERSION_NUMBER` at start-up.
pub const IPUFLOW_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const IPUFLOW_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const IPUFLOW_VERSION_PATCH: u32 = 0;
/// `MAJOR * 1000000 + MINOR * 1000 + PATCH` of the header the host was compiled with.
pub const IPUFLOW_VERSION_NUMBER: u32 = 1000;

/// Returns the version of the loaded library as `MAJOR * 1000000 + MINOR * 1000 + PATCH`.
///
/// A host compares it with `IPUFLOW_VERSION_NUMBER` from the header it was built with; the ABI is stable within a
/// major version, so `ipuflow_version() / 1000000 == IPUFLOW_VERSION_MAJOR` is the check that matters.
/// Never fails. Thread-safe.
///
/// Takes no argument, so no NULL handling or ownership applies; never fails. Thread-safe.
#[no_mangle]
pub extern "C" fn ipuflow_version() -> u32 {
    crate::VERSION_NUMBER
}

/// Returns the version of the loaded library as a static string, e.g. "0.1.0".
///
/// The string is owned by the library, never NULL, and valid for the life of the process. Thread-safe.
///
/// Never fails.
#[no_mangle]
pub extern "C" fn ipuflow_version_string() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Returns the name of a status code, e.g. "IPUFLOW_STATUS_FILE_NOT_FOUND".
///
/// `code` is taken as a plain integer: any value is accepted, and an unknown one gives "IPUFLOW_STATUS_UNKNOWN".
/// The string is static (never NULL, never freed). Thread-safe.
#[no_mangle]
pub extern "C" fn ipuflow_status_str(code: i32) -> *const c_char {
    let name = ipuflow_status::ALL
        .iter()
        .find(|s| **s as i32 == code)
        .map(|s| s.name())
        .unwrap_or("IPUFLOW_STATUS_UNKNOWN\0");
    name.as_ptr() as *const c_char
}

/// Returns the detailed message of the calling thread's most recent ipuflow call that returns a status: the file,
/// tensor or option involved and what is wrong. It is "" after a success.
///
/// The string is owned by the library and stays valid until the same thread makes its next ipuflow call; copy it
/// to keep it. Never NULL. Thread-safe (each thread has its own message).
///
/// Never fails.
#[no_mangle]
pub extern "C" fn ipuflow_last_error() -> *const c_char {
    last_error_ptr()
}

/// Frees a string that ipuflow returned as `char*` (for example from `ipuflow_model_summary_json`).
///
/// `s` may be NULL (no-op). Passing a pointer not returned by ipuflow, or freeing twice, is undefined behaviour.
/// Thread-safe.
///
/// Never fails (returns nothing; a panic inside is contained).
#[no_mangle]
pub unsafe extern "C" fn ipuflow_string_free(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            drop(std::ffi::CString::from_raw(s));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_match_the_crate_version() {
        // The header's macros are literals (cbindgen cannot evaluate paths); they must equal Cargo's version.
        let v: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            [
                IPUFLOW_VERSION_MAJOR,
                IPUFLOW_VERSION_MINOR,
                IPUFLOW_VERSION_PATCH
            ],
            [v[0], v[1], v[2]]
        );
        assert_eq!(
            IPUFLOW_VERSION_NUMBER,
            v[0] * 1_000_000 + v[1] * 1_000 + v[2]
        );
        assert_eq!(ipuflow_version(), IPUFLOW_VERSION_NUMBER);
    }
}
