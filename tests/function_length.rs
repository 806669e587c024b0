//! No function in `src/` over 100 lines (issue 10, item 4): a long function is split into named phases. The
//! scanner masks comments, strings and char literals, then finds each `fn` with a body and counts its lines from
//! the `fn` keyword to the closing brace (attributes and doc comments not counted).

use std::path::{Path, PathBuf};

/// The longest a function may be, in lines.
const MAX_LINES: usize = 100;

/// Functions allowed over the limit, as (file under the crate root, function name): none today. An entry needs a
/// comment saying why; the test fails on an entry whose function is no longer over the limit.
const ALLOWED: &[(&str, &str)] = &[];

/// One function with a body: its name, the line of its `fn` keyword (1-based) and its length in lines.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `src` with every comment, string literal and char literal blanked to spaces (newlines kept, so positions and
/// line numbers stay), so that only the code's own braces remain. Lifetimes and labels (`'a`) are kept.
fn mask(src: &str) -> Vec<char> {
    let s: Vec<char> = src.chars().collect();
    let mut out = s.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in out.iter_mut().take(to.min(s.len())).skip(from) {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let end = match s[i] {
            '/' if s.get(i + 1) == Some(&'/') => line_comment_end(&s, i),
            '/' if s.get(i + 1) == Some(&'*') => block_comment_end(&s, i),
            '"' => string_end(&s, i + 1),
            'r' if raw_string_start(&s, i) => raw_string_end(&s, i),
            '\'' => char_literal_end(&s, i),
            _ => None,
        };
        match end {
            Some(e) => {
                blank(&mut out, i, e);
                i = e;
            }
            None => i += 1,
        }
    }
    out
}

fn line_comment_end(s: &[char], i: usize) -> Option<usize> {
    Some((i..s.len()).find(|&k| s[k] == '\n').unwrap_or(s.len()))
}

/// Block comments nest in Rust.
fn block_comment_end(s: &[char], i: usize) -> Option<usize> {
    let (mut depth, mut k) = (0usize, i);
    while k < s.len() {
        if s[k] == '/' && s.get(k + 1) == Some(&'*') {
            depth += 1;
            k += 2;
        } else if s[k] == '*' && s.get(k + 1) == Some(&'/') {
            depth -= 1;
            k += 2;
            if depth == 0 {
                return Some(k);
            }
        } else {
            k += 1;
        }
    }
    Some(s.len())
}

/// The end (past the closing quote) of a string whose contents start at `k`; escapes skip the next char.
fn string_end(s: &[char], mut k: usize) -> Option<usize> {
    while k < s.len() {
        match s[k] {
            '\\' => k += 2,
            '"' => return Some(k + 1),
            _ => k += 1,
        }
    }
    Some(s.len())
}

/// `r"`, `r#"`, `br"`, `cr#"`... at a token start (not `r#ident`, not the end of an identifier).
fn raw_string_start(s: &[char], i: usize) -> bool {
    let token_start = |k: usize| k == 0 || !is_ident(s[k - 1]);
    let prefixed = i >= 1 && matches!(s[i - 1], 'b' | 'c') && token_start(i - 1);
    if !(token_start(i) || prefixed) {
        return false;
    }
    let mut k = i + 1;
    while s.get(k) == Some(&'#') {
        k += 1;
    }
    s.get(k) == Some(&'"')
}

fn raw_string_end(s: &[char], i: usize) -> Option<usize> {
    let hashes = s[i + 1..].iter().take_while(|&&c| c == '#').count();
    let mut k = i + 1 + hashes + 1;
    while k < s.len() {
        if s[k] == '"' && (1..=hashes).all(|h| s.get(k + h) == Some(&'#')) {
            return Some(k + 1 + hashes);
        }
        k += 1;
    }
    Some(s.len())
}

/// `'x'`, `'\n'`, `'\u{7b}'`, `'\''`; `None` for a lifetime or label (`'a`, `'static`, `'outer:`).
fn char_literal_end(s: &[char], i: usize) -> Option<usize> {
    if s.get(i + 1) == Some(&'\\') {
        let close = (i + 3..s.len()).find(|&k| s[k] == '\'')?;
        return Some(close + 1);
    }
    (s.get(i + 2) == Some(&'\'')).then_some(i + 3)
}

/// Every `fn NAME` with a body in `src`, by brace counting on the masked text.
fn functions(src: &str) -> Vec<Function> {
    let s = mask(src);
    let line_of = |k: usize| 1 + s[..k].iter().filter(|&&c| c == '\n').count();
    let mut found = Vec::new();
    for i in 0..s.len() {
        let keyword = s[i] == 'f'
            && s.get(i + 1) == Some(&'n')
            && (i == 0 || !is_ident(s[i - 1]))
            && s.get(i + 2).is_some_and(|c| c.is_whitespace());
        if !keyword {
            continue;
        }
        let start = (i + 2..s.len()).find(|&k| !s[k].is_whitespace());
        let Some(start) = start.filter(|&k| s[k].is_alphabetic() || s[k] == '_') else {
            continue; // `fn(...)` pointer types, `fn $name` in macros
        };
        let name: String = s[start..].iter().take_while(|&&c| is_ident(c)).collect();
        if let Some(close) = body_end(&s, start + name.len()) {
            let line = line_of(i);
            found.push(Function {
                name,
                line,
                lines: line_of(close) - line + 1,
            });
        }
    }
    found
}

/// The closing brace of the body of a function whose signature continues at `k`; `None` for a declaration
/// without one (`fn f();` in a trait or an extern block). A `;` inside `()` or `[]` (`[u8; 4]`) is part of the
/// signature.
fn body_end(s: &[char], mut k: usize) -> Option<usize> {
    let mut nesting = 0i64;
    while k < s.len() {
        match s[k] {
            '(' | '[' => nesting += 1,
            ')' | ']' => nesting -= 1,
            ';' if nesting == 0 => return None,
            '{' if nesting == 0 => break,
            _ => {}
        }
        k += 1;
    }
    let mut depth = 0i64;
    while k < s.len() {
        match s[k] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
        k += 1;
    }
    None
}

fn rust_files(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path == skip {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, skip, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_function_in_src_is_over_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    // The generated protobuf types are not written by hand.
    rust_files(&root.join("src"), &root.join("src/onnx/proto"), &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "src/ holds only {} .rs files",
        files.len()
    );
    let (mut long, mut allowed_seen) = (Vec::new(), Vec::new());
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
        for f in functions(&text).into_iter().filter(|f| f.lines > MAX_LINES) {
            if ALLOWED.contains(&(rel.as_str(), f.name.as_str())) {
                allowed_seen.push((rel.clone(), f.name.clone()));
            } else {
                long.push(format!("{rel}:{} fn {}: {} lines", f.line, f.name, f.lines));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines (split them into named phases):\n  {}",
        long.join("\n  ")
    );
    let stale: Vec<String> = ALLOWED
        .iter()
        .filter(|(file, name)| !allowed_seen.iter().any(|(f, n)| f == file && n == name))
        .map(|(file, name)| format!("{file} fn {name}"))
        .collect();
    assert!(
        stale.is_empty(),
        "ALLOWED lists functions no longer over {MAX_LINES} lines: remove them from the list:\n  {}",
        stale.join("\n  ")
    );
}

/// A function of `lines` lines in all (signature and closing brace included).
fn function_of(lines: usize) -> String {
    let mut s = String::from("fn long() {\n");
    for k in 0..lines - 2 {
        s.push_str(&format!("    let _x{k} = {k};\n"));
    }
    s.push_str("}\n");
    s
}

#[test]
fn counts_a_function_from_fn_to_its_closing_brace() {
    assert_eq!(functions(&function_of(101))[0].lines, 101);
    assert_eq!(functions(&function_of(100))[0].lines, 100);
    let text = format!("/// doc\n#[inline]\n{}", function_of(101));
    let f = functions(&text);
    assert_eq!(
        f,
        vec![Function {
            name: "long".into(),
            line: 3,
            lines: 101
        }]
    );
    assert!(
        f[0].lines > MAX_LINES,
        "a 101-line function must be over the limit"
    );
}

#[test]
fn braces_in_strings_chars_and_comments_are_not_counted() {
    let text = r####"
pub(crate) fn tricky<'a>(x: &'a str, a: [u8; 4]) -> &'a str {
    let _ = "}}} \" }";
    let _ = '}';
    let _ = b'{';
    let _ = '\'';
    let _ = '\u{7d}';
    let _ = r#"}" }"#;
    let _ = br##"{"#{"##;
    // }
    /* } /* nested } */ } */
    'outer: loop { break 'outer; }
    x
}
fn after() {}
"####;
    let f = functions(text);
    let names: Vec<(&str, usize, usize)> = f
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(names, vec![("tricky", 2, 13), ("after", 15, 1)]);
}

#[test]
fn declarations_and_pointer_types_are_not_functions() {
    let text = "trait T {\n    fn f(&self);\n    fn g(x: [u8; 2]) -> u8 { x[0] }\n}\ntype P = fn(u8) -> u8;\n";
    let f = functions(text);
    assert_eq!(
        f,
        vec![Function {
            name: "g".into(),
            line: 3,
            lines: 1
        }]
    );
}
