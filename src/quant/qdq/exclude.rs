//! Node exclusions beyond exact names and op types: node-name glob patterns and `start..end` subgraphs
//! ([`crate::quant::QuantConfig::exclude_patterns`], [`crate::quant::QuantConfig::exclude_subgraphs`]), resolved
//! against the graph once, before the per-node rules.
//!
//! A subgraph is every node on a path from one of its start nodes to one of its end nodes (both included), along
//! tensor edges: the nodes reachable from a start that also reach an end. That is how a detector's
//! post-processing (decode, NMS) is named without listing its nodes.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::onnx::proto::GraphProto;
use crate::quant::config::ExcludeSubgraph;

/// Whether `name` matches the glob `pattern`: `*` any run of characters (empty included), `?` one character,
/// everything else itself (case-sensitive, like node names).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point (the last `*`): linear in practice, never exponential.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a `--exclude` value is a glob pattern rather than a plain name.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The main graph's nodes (by index) that the patterns and subgraphs exclude, each with the reason the report
/// gives. Errors (`InvalidArgument`, naming the value): a pattern that matches no node, a start or end that is
/// not a node name, a subgraph with no path from its starts to its ends.
pub fn resolve(
    g: &GraphProto,
    patterns: &[String],
    subgraphs: &[ExcludeSubgraph],
) -> Result<HashMap<usize, String>> {
    let mut out: HashMap<usize, String> = HashMap::new();
    if patterns.is_empty() && subgraphs.is_empty() {
        return Ok(out);
    }
    let names: Vec<&str> = g
        .node
        .iter()
        .map(|n| n.name.as_deref().unwrap_or(""))
        .collect();
    for p in patterns {
        let mut any = false;
        for (i, n) in names.iter().enumerate() {
            if !n.is_empty() && glob_match(p, n) {
                any = true;
                out.entry(i)
                    .or_insert_with(|| format!("excluded by name pattern '{p}'"));
            }
        }
        if !any {
            return Err(Error::invalid_argument(format!(
                "exclude pattern '{p}' matches no node name of the model"
            )));
        }
    }
    for sg in subgraphs {
        let label = sg.to_string();
        for i in subgraph_nodes(g, &names, sg)? {
            out.entry(i)
                .or_insert_with(|| format!("excluded as part of subgraph '{label}'"));
        }
    }
    Ok(out)
}

/// The nodes on a path from `sg.start` to `sg.end` (see the module docs).
fn subgraph_nodes(g: &GraphProto, names: &[&str], sg: &ExcludeSubgraph) -> Result<Vec<usize>> {
    let index = |what: &str, list: &[String]| -> Result<Vec<usize>> {
        if list.is_empty() {
            return Err(Error::invalid_argument(format!(
                "exclude subgraph '{sg}': no {what} node given"
            )));
        }
        list.iter()
            .map(|s| {
                names
                    .iter()
                    .position(|n| !n.is_empty() && n == s)
                    .ok_or_else(|| {
                        Error::invalid_argument(format!(
                            "exclude subgraph '{sg}': the model has no node named '{s}' ({what})"
                        ))
                    })
            })
            .collect()
    };
    let starts = index("start", &sg.start)?;
    let ends = index("end", &sg.end)?;
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in n.output.iter().filter(|s| !s.is_empty()) {
            producer.insert(o, i);
        }
        for x in n.input.iter().filter(|s| !s.is_empty()) {
            consumers.entry(x).or_default().push(i);
        }
    }
    let walk = |from: &[usize], next: &dyn Fn(usize) -> Vec<usize>| -> HashSet<usize> {
        let mut seen: HashSet<usize> = from.iter().copied().collect();
        let mut stack: Vec<usize> = from.to_vec();
        while let Some(i) = stack.pop() {
            for j in next(i) {
                if seen.insert(j) {
                    stack.push(j);
                }
            }
        }
        seen
    };
    let down = walk(&starts, &|i| {
        g.node[i]
            .output
            .iter()
            .filter_map(|o| consumers.get(o.as_str()))
            .flatten()
            .copied()
            .collect()
    });
    let up = walk(&ends, &|i| {
        g.node[i]
            .input
            .iter()
            .filter_map(|x| producer.get(x.as_str()))
            .copied()
            .collect()
    });
    let mut on_path: Vec<usize> = down.intersection(&up).copied().collect();
    if on_path.is_empty() {
        return Err(Error::invalid_argument(format!(
            "exclude subgraph '{sg}': no path leads from the start node(s) to the end node(s)"
        )));
    }
    on_path.sort_unstable();
    Ok(on_path)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("head/*", "head/conv_1"));
        assert!(!glob_match("head/*", "backbone/conv_1"));
        assert!(glob_match("conv_?", "conv_7"));
        assert!(!glob_match("conv_?", "conv_17"));
        assert!(glob_match("*post*nms*", "model/postprocess/nms_3"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
