//! `--help` on every command is complete: a description, every option documented, and examples.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "holdfast {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_command_has_help_with_examples() {
    let commands: &[&[&str]] = &[
        &["dev"],
        &["run"],
        &["index"],
        &["serve"],
        &["reindex"],
        &["order"],
        &["order", "lock"],
        &["order", "relay"],
        &["order", "deliver"],
        &["order", "release"],
        &["order", "refund"],
        &["order", "freeze"],
        &["order", "resolve"],
        &["order", "show"],
    ];
    let top = help(&[]);
    for cmd in commands {
        let text = help(cmd);
        assert!(text.contains("\nExamples"), "holdfast {} --help has no examples:\n{text}", cmd.join(" "));
        assert!(text.contains(&format!("holdfast {}", cmd.join(" "))), "examples of {cmd:?} don't use it");
        // Every option has a description: no flag line directly followed by another flag line or the end.
        let options = &text[..text.find("\nExamples").unwrap()];
        let lines: Vec<&str> = options.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            if l.starts_with("      --") || l.starts_with("  -") {
                let next = lines.get(i + 1).map(|n| n.trim()).unwrap_or("");
                assert!(!next.is_empty() && !next.starts_with('-'), "undocumented option in {cmd:?}: {t}");
            }
        }
        if cmd.len() == 1 {
            assert!(top.contains(&format!("  {}", cmd[0])), "holdfast --help does not list {}", cmd[0]);
        }
    }
}
