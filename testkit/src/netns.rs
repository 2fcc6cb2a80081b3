//! Network namespaces for the multi-host tests (partition.rs, nat.rs): `ip` commands, and
//! removing what a test made — on drop, also on failure, or at a later run's start when the
//! test itself was killed. A test names its namespaces `<prefix><pid>x...`.

use std::path::Path;
use std::process::Command;

/// Runs `cmd`; its stderr is the error.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args))
}

/// Deletes the namespaces in `made`, the last made first (veths go with them).
pub fn delete_namespaces(made: &mut Vec<String>) {
    for ns in made.drain(..).rev() {
        if let Err(e) = ip(&["netns", "del", &ns]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Deletes namespaces named `<prefix><pid>x...` whose test process is gone.
pub fn remove_stale(prefix: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.split('x').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
