//! README.md says what the code does: its first command block is exactly the two commands, its C++ quickstart is
//! tests/cpp/readme_quickstart.cpp word for word (which tests/CMakeLists.txt builds with -Werror and runs), and its
//! command reference lists every `ipuflow` subcommand.

use std::path::Path;
use std::process::Command;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The fenced code blocks of a Markdown text: (info string, body).
fn blocks(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in md.lines() {
        match (&mut cur, line.strip_prefix("```")) {
            (None, Some(info)) => cur = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => out.push(cur.take().unwrap()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn first_block_is_the_two_commands() {
    let md = read("README.md");
    let (info, body) = blocks(&md)
        .into_iter()
        .next()
        .expect("README has a code block");
    assert_eq!(info, "sh");
    assert_eq!(
        body, "scripts/demo.sh\nscripts/test.sh\n",
        "the README's first block must be exactly the two commands"
    );
    assert!(md.contains("## Tests"), "the Tests section is kept");
}

#[test]
fn quickstart_is_the_compiled_file() {
    let md = read("README.md");
    let file = read("tests/cpp/readme_quickstart.cpp");
    let (_, body) = file.split_once('\n').expect("the file has a header line");
    let cpp: Vec<String> = blocks(&md)
        .into_iter()
        .filter(|(i, _)| i == "cpp")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(cpp.len(), 1, "one C++ block in the README");
    assert_eq!(cpp[0], body, "README's C++ quickstart differs from tests/cpp/readme_quickstart.cpp (after its first line)");
}

#[test]
fn command_reference_lists_every_subcommand() {
    let md = read("README.md");
    let help = Command::new(env!("CARGO_BIN_EXE_ipuflow"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let subs: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("help lists commands")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .take_while(|w| !w.ends_with(':'))
        .filter(|w| *w != "help")
        .collect();
    assert!(subs.len() >= 7, "{subs:?}");
    for s in subs {
        assert!(
            md.contains(&format!("ipuflow {s} ")),
            "README's command reference lacks `ipuflow {s}`"
        );
    }
}
