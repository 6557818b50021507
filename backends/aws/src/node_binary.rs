//! Checking a local `paas-node` before it is delivered to instances: it must run on the AMI
//! (a Linux x86_64 ELF needing no newer glibc than Debian 12's), and its sha256 names it.

use std::path::{Path, PathBuf};

use paas_core::resource::NodeBinary;
use sha2::{Digest, Sha256};

/// The newest glibc the default AMI (Debian 12) has: 2.36.
pub const MAX_GLIBC_MINOR: u32 = 36;

/// Why a file cannot be the node binary.
#[derive(Debug, thiserror::Error)]
pub enum NodeBinaryError {
    #[error("reading the node binary {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a Linux x86_64 executable ({why})", path.display())]
    NotLinuxX86_64 { path: PathBuf, why: &'static str },
    #[error("{} needs glibc 2.{minor}, newer than the AMI's 2.{MAX_GLIBC_MINOR} (Debian 12): build it on Debian 12 or older", path.display())]
    GlibcTooNew { path: PathBuf, minor: u32 },
}

/// Reads `path`, checks it runs on the AMI and hashes it. Fails naming the file and why.
pub fn inspect(path: &Path) -> Result<NodeBinary, NodeBinaryError> {
    let bytes = std::fs::read(path).map_err(|source| NodeBinaryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_elf(&bytes).map_err(|why| NodeBinaryError::NotLinuxX86_64 {
        path: path.to_path_buf(),
        why,
    })?;
    if let Some(minor) = newest_glibc(&bytes).filter(|&m| m > MAX_GLIBC_MINOR) {
        return Err(NodeBinaryError::GlibcTooNew {
            path: path.to_path_buf(),
            minor,
        });
    }
    let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok(NodeBinary {
        path: path.to_path_buf(),
        sha256,
    })
}

/// Whether the ELF header says: 64-bit, little-endian, System V or Linux ABI, an executable or
/// a position-independent one, for x86_64.
pub fn check_elf(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file");
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF");
    }
    if !matches!(bytes[7], 0 | 3) {
        return Err("not for the System V or Linux ABI");
    }
    if !matches!(u16::from_le_bytes([bytes[16], bytes[17]]), 2 | 3) {
        return Err("not an executable");
    }
    if u16::from_le_bytes([bytes[18], bytes[19]]) != 62 {
        return Err("built for another architecture than x86_64");
    }
    Ok(())
}

/// The newest `GLIBC_2.N` symbol version the file names (its dynamic string table lists
/// every version it needs), if any.
fn newest_glibc(bytes: &[u8]) -> Option<u32> {
    const TAG: &[u8] = b"GLIBC_2.";
    let mut newest = None;
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(TAG.len()).position(|w| w == TAG) {
        let start = i + at + TAG.len();
        let digits = bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        if let Some(minor) = std::str::from_utf8(&bytes[start..start + digits])
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
        {
            newest = newest.max(Some(minor));
        }
        i = start;
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header: 64-bit LE, `osabi`, type `kind`, machine `machine`.
    pub fn elf(osabi: u8, kind: u16, machine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[7] = osabi;
        b[16..18].copy_from_slice(&kind.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b
    }

    #[test]
    fn only_linux_x86_64_executables_pass() {
        assert_eq!(check_elf(&elf(0, 3, 62)), Ok(()));
        assert_eq!(check_elf(&elf(3, 2, 62)), Ok(()));
        assert!(check_elf(&elf(0, 3, 183)).unwrap_err().contains("architecture"), "aarch64");
        assert!(check_elf(&elf(9, 3, 62)).is_err(), "FreeBSD");
        assert!(check_elf(&elf(0, 1, 62)).is_err(), "an object file");
        assert!(check_elf(b"#!/bin/sh\necho hi\n").is_err());
    }

    #[test]
    fn the_newest_glibc_version_named_decides() {
        let mut b = elf(0, 3, 62);
        b.extend_from_slice(b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0");
        assert_eq!(newest_glibc(&b), Some(34));
        b.extend_from_slice(b"GLIBC_2.39\0");
        assert_eq!(newest_glibc(&b), Some(39));
        assert_eq!(newest_glibc(&elf(0, 3, 62)), None);
    }

    #[test]
    fn inspect_hashes_a_good_binary_and_names_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("paas-node");
        std::fs::write(&good, elf(0, 3, 62)).unwrap();
        let binary = inspect(&good).unwrap();
        assert_eq!(binary.sha256.len(), 64);
        assert_eq!(binary.sha256, format!("{:x}", Sha256::digest(elf(0, 3, 62))));
        let mut new = elf(0, 3, 62);
        new.extend_from_slice(b"GLIBC_2.41\0");
        std::fs::write(&good, new).unwrap();
        let err = inspect(&good).unwrap_err().to_string();
        assert!(err.contains("2.41") && err.contains("paas-node"), "{err}");
        let err = inspect(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
