//! The Python the peer benches drive their Python peers with: a virtual environment
//! under `target/peers-venv` with `benches/peers/requirements.txt` installed, made on
//! first use and again whenever the requirements change.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `benches/peers`.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The virtual environment's python, creating it on first use.
pub fn python() -> PathBuf {
    let venv = peers_dir().join("../../target/peers-venv");
    let python = venv.join("bin/python");
    let requirements = peers_dir().join("requirements.txt");
    let stamp = venv.join("requirements.txt");
    let current = std::fs::read(&stamp).ok() == std::fs::read(&requirements).ok();
    if !python.exists() || !current {
        let make_venv = || {
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !make_venv() {
            // Debian's python3 comes without venv; a fresh machine gets it here.
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-qq", "python3-venv"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
            assert!(
                make_venv(),
                "python3 -m venv failed: install python3 and python3-venv"
            );
        }
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "-r"])
            .arg(&requirements)
            .status()
            .expect("pip install");
        assert!(
            status.success(),
            "pip install -r {} failed",
            requirements.display()
        );
        std::fs::copy(&requirements, &stamp).unwrap();
    }
    python
}
