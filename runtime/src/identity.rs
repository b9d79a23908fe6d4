//! Node identity: an Ed25519 libp2p keypair kept in a file readable by its owner only.
//!
//! The file holds libp2p's protobuf encoding of the keypair (`Keypair::to_protobuf_encoding`).
//! It is written with mode 0600 through a temporary file and a rename (never a half-written key),
//! and refused on load when group or others may read it (as ssh does), when it is larger than
//! [`MAX_KEY_FILE`], or when it does not decode to an Ed25519 keypair.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::identity::{Keypair, PeerId};
use zeroize::Zeroizing;

/// A key file is far smaller than this; anything larger is not one.
pub const MAX_KEY_FILE: u64 = 4096;

/// Why an identity could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file may be read by group or others.
    #[error("{path}: permissions {mode:o} let others read the key; expected 600")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is too large to be a key.
    #[error("{path}: {len} bytes is too large for a key file (max {MAX_KEY_FILE})")]
    TooLarge {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The contents do not decode to a keypair.
    #[error("{path}: not a libp2p keypair: {source}")]
    Decode {
        /// The key file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: libp2p::identity::DecodingError,
    },
    /// The keypair is not Ed25519.
    #[error("{path}: key type {kind:?} is not Ed25519")]
    NotEd25519 {
        /// The key file.
        path: PathBuf,
        /// The key type found.
        kind: libp2p::identity::KeyType,
    },
    /// The string is not a peer id.
    #[error("{0:?} is not a peer id")]
    BadPeerId(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A fresh Ed25519 keypair from the OS random source.
pub fn generate() -> Keypair {
    Keypair::generate_ed25519()
}

/// The peer id of a keypair.
pub fn peer_id(keypair: &Keypair) -> PeerId {
    keypair.public().to_peer_id()
}

/// Parses a peer id (`12D3KooW...`).
pub fn parse_peer_id(s: &str) -> Result<PeerId, IdentityError> {
    s.trim()
        .parse()
        .map_err(|_| IdentityError::BadPeerId(s.to_string()))
}

/// Writes `keypair` to `path` with mode 0600 (atomically: temporary file, fsync, rename).
pub fn save(path: &Path, keypair: &Keypair) -> Result<(), IdentityError> {
    let bytes =
        Zeroizing::new(
            keypair
                .to_protobuf_encoding()
                .map_err(|source| IdentityError::Decode {
                    path: path.to_path_buf(),
                    source,
                })?,
        );
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    // `mode` applies only on creation: force 0600 on a pre-existing temporary file too.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(&tmp))?;
    file.write_all(&bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    // Make the rename itself durable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// Loads an Ed25519 keypair from `path`, checking permissions, size and encoding.
pub fn load(path: &Path) -> Result<Keypair, IdentityError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(IdentityError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(io_err(path))?);
    let keypair =
        Keypair::from_protobuf_encoding(&bytes).map_err(|source| IdentityError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
    if keypair.key_type() != libp2p::identity::KeyType::Ed25519 {
        return Err(IdentityError::NotEd25519 {
            path: path.to_path_buf(),
            kind: keypair.key_type(),
        });
    }
    Ok(keypair)
}

/// Loads the keypair at `path`, or generates and saves one if the file does not exist.
pub fn load_or_generate(path: &Path) -> Result<Keypair, IdentityError> {
    if path.exists() {
        return load(path);
    }
    let keypair = generate();
    save(path, &keypair)?;
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_roundtrip_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let k = load_or_generate(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_generate(&path).unwrap();
        assert_eq!(peer_id(&k), peer_id(&again));
        assert_eq!(
            parse_peer_id(&peer_id(&k).to_string()).unwrap(),
            peer_id(&k)
        );
    }

    #[test]
    fn refuses_insecure_garbage_and_large() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        save(&path, &generate()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load(&path),
            Err(IdentityError::InsecurePermissions { mode: 0o644, .. })
        ));
        fs::write(&path, b"not a key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(IdentityError::Decode { .. })));
        fs::write(&path, vec![0u8; 5000]).unwrap();
        assert!(matches!(
            load(&path),
            Err(IdentityError::TooLarge { len: 5000, .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing")),
            Err(IdentityError::Io { .. })
        ));
        assert!(parse_peer_id("nope").is_err());
    }
}
