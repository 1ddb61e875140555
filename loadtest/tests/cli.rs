//! The command line refuses what it must before touching anything: targets
//! off loopback, scenarios with unknown keys. (The smoke run itself is in
//! `make test`, after `cargo test --workspace` built both binaries.)

use std::process::Command;

fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boxoffice-loadtest"))
}

fn scenario(name: &str) -> String {
    format!("{}/scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn out_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "boxoffice-loadtest-cli-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn refuses_targets_off_loopback() {
    let out = out_dir("remote");
    let o = loadtest()
        .args(["run", "--scenario", &scenario("smoke.toml"), "--out"])
        .arg(&out)
        .args([
            "--target",
            "http://10.1.2.3:8080",
            "--admin-token",
            "a",
            "--service-token",
            "s",
        ])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("loopback"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn refuses_unknown_scenario_keys() {
    let dir = out_dir("typo");
    std::fs::create_dir_all(&dir).expect("dir");
    let text = std::fs::read_to_string(scenario("smoke.toml"))
        .expect("smoke.toml")
        .replace("[limits]", "[limits]\nmax_duraton_s = 1");
    let file = dir.join("typo.toml");
    std::fs::write(&file, text).expect("write");
    let o = loadtest()
        .args(["run", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--server-bin", "/nonexistent/boxoffice"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("max_duraton_s"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn needs_a_server() {
    let out = out_dir("none");
    let o = loadtest()
        .args(["run", "--scenario", &scenario("smoke.toml"), "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--server-bin"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}
