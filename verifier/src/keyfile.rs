//! The verifier's key file.
//!
//! Format: the 32-byte Ed25519 seed, either as exactly 32 raw bytes or as
//! its `b64u` text (43 characters; surrounding whitespace and a trailing
//! newline are allowed). A missing file is created with a fresh random
//! seed, written as `b64u` text plus a newline, with permissions 0600
//! (owner read/write only) on Unix; its parent folders are created too.

use rand::RngCore;
use std::io::Write;
use std::path::Path;
use wasm_core::protocol::{b64u_decode, b64u_encode, Keypair};

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or creating failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The content is neither 32 raw bytes nor b64u of 32 bytes.
    #[error("key file {0}: expected a 32-byte seed, raw or as b64u text (43 characters)")]
    Malformed(String),
}

/// Loads the keypair from `path`, creating the file when it does not exist.
/// Returns the keypair and whether the file was created.
pub fn load_or_create(path: &Path) -> Result<(Keypair, bool), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes)
            .map(|kp| (kp, false))
            .ok_or_else(|| KeyFileError::Malformed(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(io)?;
            file.write_all(format!("{}\n", b64u_encode(&seed)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            Ok((Keypair::from_seed(&seed), true))
        }
        Err(e) => Err(io(e)),
    }
}

/// Parses key-file content.
pub fn parse(bytes: &[u8]) -> Option<Keypair> {
    if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
        return Some(Keypair::from_seed(&seed));
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let seed: [u8; 32] = b64u_decode(text).ok()?.try_into().ok()?;
    Some(Keypair::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_with_owner_only_permissions_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/verifier.key");
        let (kp, created) = load_or_create(&path).expect("create");
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim().len(), 43);
        let (again, created) = load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(again.public_b64u(), kp.public_b64u());
    }

    #[test]
    fn accepts_raw_and_text_seeds() {
        let seed = [7u8; 32];
        let expected = Keypair::from_seed(&seed).public_b64u();
        assert_eq!(
            parse(&seed).map(|k| k.public_b64u()),
            Some(expected.clone())
        );
        let text = format!("  {}\r\n", b64u_encode(&seed));
        assert_eq!(
            parse(text.as_bytes()).map(|k| k.public_b64u()),
            Some(expected)
        );
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            &b""[..],
            b"short",
            &[0u8; 31],
            &[0u8; 33],
            b"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(parse(bad).is_none());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Malformed(_))
        ));
    }
}
