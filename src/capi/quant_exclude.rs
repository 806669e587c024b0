//! Exclusions by node-name pattern and by subgraph for `ipuflow_quant_config` (issue 11): what `--exclude` takes
//! on the command line beyond exact node names and op types. Kept in its own file until the C layer's
//! restructuring moves it beside the other configuration setters.

use std::ffi::c_char;

use super::quantize::ipuflow_quant_config;
use super::{arg_str, guard, ipuflow_status, null_arg, BoxHandle};
use crate::error::{Error, Result};
use crate::quant::ExcludeSubgraph;

/// Leaves in float every node whose name matches the glob `pattern`: `*` matches any run of characters (none
/// included), `?` one character, anything else itself (case-sensitive), e.g. `"decode_*"`. Adding a pattern twice is
/// harmless.
///
/// - `config`: the configuration to change (borrowed).
/// - `pattern`: UTF-8, NUL-terminated, not empty; copied.
///
/// A pattern that matches no node of the model makes `ipuflow_quantize` fail with IPUFLOW_STATUS_INVALID_ARGUMENT
/// naming it (before calibration).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`, `pattern`), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (empty pattern). On error the config is unchanged. Not thread-safe on the same
/// config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_pattern(
    config: *mut ipuflow_quant_config,
    pattern: *const c_char,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let p = unsafe { arg_str(pattern, "pattern") }?;
        if p.is_empty() {
            return Err(Error::invalid_argument("argument 'pattern' is empty"));
        }
        if !c.exclude_patterns.iter().any(|x| x == p) {
            c.exclude_patterns.push(p.to_string());
        }
        Ok(())
    })
}

/// Leaves in float the subgraph from the start nodes to the end nodes: every node on a path (along tensor edges)
/// from one of the `start_count` nodes named in `start_nodes` to one of the `end_count` nodes named in `end_nodes`,
/// both ends included, e.g. a detector's post-processing.
///
/// - `config`: the configuration to change (borrowed).
/// - `start_nodes`, `end_nodes`: arrays of UTF-8, NUL-terminated, non-empty node names; copied. Neither count may
///   be 0.
///
/// A name that is not a node of the model, or ends that no path joins, make `ipuflow_quantize` fail with
/// IPUFLOW_STATUS_INVALID_ARGUMENT naming the subgraph (before calibration).
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT (`config`, an array or one of its entries), IPUFLOW_STATUS_INVALID_UTF8,
/// IPUFLOW_STATUS_INVALID_ARGUMENT (a count of 0, an empty name). On error the config is unchanged. Not
/// thread-safe on the same config.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_quant_config_exclude_subgraph(
    config: *mut ipuflow_quant_config,
    start_nodes: *const *const c_char,
    start_count: usize,
    end_nodes: *const *const c_char,
    end_count: usize,
) -> ipuflow_status {
    guard(|| {
        let c = ipuflow_quant_config::try_mut(config, "config")?;
        let start = unsafe { names(start_nodes, start_count, "start_nodes") }?;
        let end = unsafe { names(end_nodes, end_count, "end_nodes") }?;
        let sg = ExcludeSubgraph { start, end };
        if !c.exclude_subgraphs.contains(&sg) {
            c.exclude_subgraphs.push(sg);
        }
        Ok(())
    })
}

/// `count` node names from the C array `p` (argument `what`): checked non-NULL, UTF-8 and non-empty.
unsafe fn names(p: *const *const c_char, count: usize, what: &str) -> Result<Vec<String>> {
    if p.is_null() {
        return Err(null_arg(what));
    }
    if count == 0 {
        return Err(Error::invalid_argument(format!(
            "argument '{what}' holds no name (count 0)"
        )));
    }
    (0..count)
        .map(|i| {
            let what = format!("{what}[{i}]");
            let s = unsafe { arg_str(*p.add(i), &what) }?;
            if s.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "argument '{what}' is empty"
                )));
            }
            Ok(s.to_string())
        })
        .collect()
}
