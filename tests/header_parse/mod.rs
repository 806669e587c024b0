//! A small reader of the cbindgen-generated C header, enough for the ABI checks: every exported item (function
//! prototype, struct, typedef, enum value, `#define`) with its normalized declaration and the doc comment above it.
//!
//! The header's shape is fixed by cbindgen.toml (doxygen `/** */` comments, one item per declaration), so a line
//! scanner is enough; anything it cannot place makes the callers' tests fail rather than pass silently.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// What kind of item a declaration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Function,
    Struct,
    Typedef,
    EnumValue,
    Define,
}

/// One exported item.
#[derive(Clone, Debug)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    /// The declaration with comments removed and whitespace collapsed (for a struct: its whole body; for an
    /// enum value or define: the value).
    pub decl: String,
    /// The doc comment right above it, without the comment markers ("" when it has none).
    pub doc: String,
}

fn collapse(s: &str) -> String {
    let mut out = String::new();
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    // `f( a, b )` and `f(a, b)` are the same declaration.
    out.replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(" ;", ";")
}

fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| {
            let t = l.trim();
            let t = t.strip_prefix("/**").unwrap_or(t);
            let t = t.strip_suffix("*/").unwrap_or(t);
            let t = t.trim();
            t.strip_prefix('*').unwrap_or(t).trim().to_string()
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier right before the first `(` of a prototype: `ipuflow_status ipuflow_x(` -> `ipuflow_x`.
fn function_name(decl: &str) -> Option<String> {
    let head = &decl[..decl.find('(')?];
    let name: String = head
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The header with every comment replaced by spaces, line structure kept, so braces and `;` inside comments are
/// never counted.
fn blank_comments(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let b = header.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            let end = header[i + 2..]
                .find("*/")
                .map_or(b.len(), |j| i + 2 + j + 2);
            out.extend(
                header[i..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
        } else if b[i..].starts_with(b"//") {
            let end = header[i..].find('\n').map_or(b.len(), |j| i + j);
            out.extend(std::iter::repeat_n(' ', header[i..end].chars().count()));
            i = end;
        } else {
            let c = header[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Parses the header text into its exported items, in header order.
pub fn parse(header: &str) -> Vec<Item> {
    let lines: Vec<&str> = header.lines().collect();
    let blanked = blank_comments(header);
    let code_lines: Vec<&str> = blanked.lines().collect();
    assert_eq!(
        lines.len(),
        code_lines.len(),
        "comment blanking keeps the lines"
    );
    let mut items = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    let mut i = 0;
    // The file's own preamble comment (before the include guard) documents no item.
    let mut seen_guard = false;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if t.starts_with("/**") {
            doc.clear();
            while i < lines.len() {
                doc.push(lines[i]);
                if lines[i].contains("*/") {
                    break;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if let Some(def) = t.strip_prefix("#define ") {
            let mut parts = def.splitn(2, char::is_whitespace);
            let name = parts.next().unwrap_or("").to_string();
            let value = parts.next().unwrap_or("").trim().to_string();
            if name == "IPUFLOW_H" {
                seen_guard = true;
            } else if seen_guard {
                items.push(Item {
                    kind: Kind::Define,
                    name,
                    decl: value,
                    doc: doc_text(&doc),
                });
            }
            doc.clear();
            i += 1;
            continue;
        }
        let c = code_lines[i].trim();
        if c.is_empty() || c.starts_with('#') || c == "}" {
            // A blank line keeps the doc comment for the item below it; other comments do not.
            if !t.is_empty() && !c.starts_with('#') {
                doc.clear();
            }
            i += 1;
            continue;
        }
        if t.starts_with("extern \"C\"") || t.starts_with("}  // extern") {
            i += 1;
            continue;
        }
        // A declaration: collect lines to the end of the statement (`;` outside braces).
        let start = i;
        let mut depth = 0i32;
        loop {
            let code = code_lines[i];
            // Preprocessor lines inside an enum head (`#if defined(__cplusplus)`) carry no braces to count.
            if !code.trim_start().starts_with('#') {
                depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            }
            if depth <= 0 && code.trim_end().ends_with(';') {
                break;
            }
            i += 1;
            if i >= lines.len() {
                break;
            }
        }
        i += 1;
        let code: String = code_lines[start..i]
            .iter()
            .copied()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let decl = collapse(&code);
        let d = doc_text(&doc);
        doc.clear();
        if let Some(after) = decl.strip_prefix("enum ") {
            // enum NAME [: int32_t] { A = 0, B = 1, };  -> one item per value, each with its own doc comment.
            let name = after
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
                .to_string();
            items.push(Item {
                kind: Kind::Typedef,
                name: name.clone(),
                decl: format!("enum {name}"),
                doc: d,
            });
            let mut vdoc: Vec<&str> = Vec::new();
            for l in &lines[start..i] {
                let lt = l.trim();
                if lt.starts_with("/**")
                    || (!vdoc.is_empty() && !vdoc.last().unwrap().contains("*/"))
                {
                    vdoc.push(l);
                    continue;
                }
                if let Some((n, v)) = lt.trim_end_matches(',').split_once(" = ") {
                    items.push(Item {
                        kind: Kind::EnumValue,
                        name: n.trim().to_string(),
                        decl: v.trim().to_string(),
                        doc: doc_text(&vdoc),
                    });
                    vdoc.clear();
                }
            }
        } else if decl.starts_with("typedef struct") && decl.contains('{') {
            let name = decl
                .trim_end_matches(';')
                .rsplit(' ')
                .next()
                .unwrap_or("")
                .to_string();
            items.push(Item {
                kind: Kind::Struct,
                name,
                decl,
                doc: d,
            });
        } else if decl.starts_with("typedef ") {
            // `typedef struct X X;`, `typedef int32_t (*name)(...)`, `typedef enum X X;`, `typedef int32_t X;`.
            let name = if let Some(p) = decl.find("(*") {
                decl[p + 2..].split(')').next().unwrap_or("").to_string()
            } else {
                decl.trim_end_matches(';')
                    .rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            if name == "ipuflow_status" {
                // The C-only typedefs of the status enum: documented on the enum.
                continue;
            }
            items.push(Item {
                kind: Kind::Typedef,
                name,
                decl,
                doc: d,
            });
        } else if let Some(name) = function_name(&decl) {
            items.push(Item {
                kind: Kind::Function,
                name,
                decl,
                doc: d,
            });
        } else {
            panic!(
                "header line {}: a declaration this reader does not understand: {decl}",
                start + 1
            );
        }
    }
    items
}

/// The items keyed by (kind, name).
pub fn index(items: &[Item]) -> BTreeMap<(Kind, String), &Item> {
    items
        .iter()
        .map(|it| ((it.kind, it.name.clone()), it))
        .collect()
}
