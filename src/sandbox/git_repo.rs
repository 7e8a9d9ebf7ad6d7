//! The sandbox's plain-git config repositories: real bare repositories,
//! made and read by `git` itself in the sandbox directory, for GitOps
//! environments with `transport = "git"`. Gantry pushes to them over the
//! same plain-git transport it uses for any host (`file://` here).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Creates `dir/<name>.git` holding `text` at `path` on `branch`, and
/// answers its `file://` URL.
pub fn create(
    dir: &Path,
    name: &str,
    branch: &str,
    path: &str,
    text: &str,
) -> Result<String, String> {
    let bare = dir.join(format!("{name}.git"));
    let work = dir.join(format!("{name}.seed"));
    let _ = std::fs::remove_dir_all(&bare);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    git(
        None,
        &["init", "--quiet", "--bare", "-b", branch, &shown(&bare)],
    )?;
    git(Some(&work), &["init", "--quiet", "-b", branch])?;
    let file = work.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    git(Some(&work), &["add", "-A"])?;
    git(
        Some(&work),
        &[
            "-c",
            "user.name=sandbox",
            "-c",
            "user.email=sandbox@gantry.invalid",
            "commit",
            "--quiet",
            "-m",
            "pin the images",
        ],
    )?;
    git(
        Some(&work),
        &[
            "push",
            "--quiet",
            &shown(&bare),
            &format!("HEAD:refs/heads/{branch}"),
        ],
    )?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(format!("file://{}", shown(&bare)))
}

/// The file at `path` on `branch` of a `file://` repository; `None` for
/// other URLs or when it is missing.
pub fn read(url: &str, branch: &str, path: &str) -> Option<String> {
    let bare = PathBuf::from(url.strip_prefix("file://")?);
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .args(["show", &format!("{branch}:{path}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn git(dir: Option<&Path>, args: &[&str]) -> Result<(), String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
