//! The README's first command, as a test: `gantry demo --fast` plays the
//! whole delivery story through the real server and exits 0 only when every
//! step did what the story says.

use std::process::Command;

#[test]
fn the_demo_story_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("GANTRY_CONFIG")
        .args(["demo", "--fast", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "── 1. alice deploys a feature branch to dev ──",
        "✓ closing the pull request removed the preview namespace",
        "dave (on Discord) › /gantry approve",
        "✓ prod was approved by bob and dave, not alice",
        "cannot approve it too",
        "✓ a GitHub deployment for prod went from in_progress to success",
        "✓ Gantry's PR comment shows the deploy succeeded",
        "✓ dev is locked after the rollback",
        "the chain is intact",
        "demo: every step did what the story says",
        // Chapter 3's release is verified in staging.
        "── 3. alice promotes dev to staging; carol (qa) approves with a reaction; the release is verified ──",
        "verifying: ",
        "✓ health: status 200",
        "✓ R-4 is verified in staging",
        "── 5. staging verifies every release",
    ] {
        assert!(stdout.contains(line), "`{line}` missing from:\n{stdout}");
    }
    // With Prometheus the faulty release fails its error rate and staging
    // goes back to the verified release; without it the chapter says why
    // it is skipped. CI installs Prometheus, so there it must have run.
    let prometheus = gantry::sandbox::prometheus::find().is_some();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        prometheus || !ci,
        "CI=true needs the `prometheus` binary on PATH (Debian's prometheus package)"
    );
    let chapter: &[&str] = if prometheus {
        &[
            "verified: 2 check(s) held for 8s",
            "✗ error-rate: ",
            "✓ the error-rate check failed on the faulty release",
            "✓ staging went back to sha256:",
            "the last verified release (R-4)",
            "not verified: carol completed it early",
            "✓ R-7 went ahead without being verified",
            "✓ it skipped R-7, the release just before it, which was not verified",
            "from the first failing probe to the rollback starting: ",
            "✓ status says staging runs R-4, verified",
        ]
    } else {
        &[
            gantry::sandbox::stack::PROMETHEUS_MISSING,
            "verified: 1 check(s) held for 8s",
            "skipped: without Prometheus staging is verified by its health check only",
        ]
    };
    for line in chapter {
        assert!(stdout.contains(line), "`{line}` missing from:\n{stdout}");
    }
    // The store is left behind and verifies with the real CLI.
    let verify = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["audit", "verify", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // A directory that is not a previous demo's is refused, not wiped.
    let other = dir.path().join("precious");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "x").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--fast", "--data"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(other.join("keep.txt").exists());
}
