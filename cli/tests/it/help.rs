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
        &["webhooks"],
        &["deliver"],
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
        // The global logging options are listed once, under their own heading, not among the command's.
        let logging = options.find("\nLogging:").unwrap_or_else(|| panic!("no Logging heading in {cmd:?}"));
        let mixed = ["--log <", "--log-format <"].iter().any(|o| options[..logging].contains(o));
        assert!(!mixed, "--log options mixed into {cmd:?}'s options");
        assert!(options[logging..].contains("--log-format"), "{cmd:?}: --log-format not under Logging");
        // The order examples can be pasted: no shortened addresses or hashes.
        if cmd[0] == "order" {
            let examples = &text[text.find("\nExamples").unwrap()..];
            assert!(!examples.contains('…'), "shortened value in the examples of {cmd:?}:\n{examples}");
            for word in examples.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| w.starts_with("0x")) {
                assert!(matches!(word.len(), 42 | 66), "{cmd:?}: {word} is neither an address nor a hash");
            }
        }
        if cmd.len() == 1 {
            assert!(top.contains(&format!("  {}", cmd[0])), "holdfast --help does not list {}", cmd[0]);
        }
    }
}

/// `--log-format human` writes plain text when stderr is not a terminal (a file, a pipe): no colour codes.
#[test]
fn human_logs_have_no_colour_codes_off_a_terminal() {
    let dir = std::env::temp_dir().join(format!("holdfast-ansi-{}", crate::harness::random_hex()));
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["--log-format", "human", "index", "--rpc-url", "http://127.0.0.1:9", "--exit-when-caught-up"])
        .args(["--escrow", "0x0000000000000000000000000000000000000001", "--start-block", "0", "--chain-id"])
        .arg("31337")
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("HOLDFAST_LOG")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO") && err.contains("indexing"), "no human log line:\n{err}");
    assert!(!err.contains('\x1b'), "colour codes in a non-terminal log:\n{err:?}");
}

/// `run --chains` takes a chains file, `dev --chains` a count: a count given to `run` fails at once and says
/// which is which.
#[test]
fn a_chain_count_given_to_run_points_at_dev() {
    let dir = std::env::temp_dir().join(format!("holdfast-chains-{}", crate::harness::random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["run", "--chains", "2", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a missing chains file must fail");
    assert!(err.contains("cannot read chains file 2"), "{err}");
    assert!(err.contains("`holdfast dev --chains N`"), "no hint at dev's --chains:\n{err}");
}
